"""Model backends. Only this package imports torch and transformers, lazily, when a model is really run."""
