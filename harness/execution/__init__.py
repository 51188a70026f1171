"""Running the cells: their keys and records (cells), the evaluator that decides and does each cell's work, where
jobs run (executors), the isolated child process that runs a model (isolation, worker)."""
