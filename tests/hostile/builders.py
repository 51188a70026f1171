"""Hostile submissions, each a real attack built from the tiny test models (nothing from a hub).

Every builder writes one submission folder and returns it. Attacks that would leave a trace (a pickle payload,
shipped model code) create a marker file when they take effect, so a test can show they did not.
"""
from __future__ import annotations

import json
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import torch

MANIFEST = "team: {team}\nname: {name}\nkind: hf-causal\nmodel: model\n"


def manifest(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "submission.yaml").write_text(text, encoding="utf-8")
    return folder


def good(root: Path, name: str, model_dir: str) -> Path:
    shutil.copytree(model_dir, root / name / "model")
    return manifest(root / name, MANIFEST.format(team=f"team-{name}", name=name))


class _Touch:
    """Unpickling this calls `open(marker, "w")`: the file appears if and only if something unpickled it."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def pickle_payload(marker: Path) -> bytes:
    return pickle.dumps(_Touch(marker), protocol=4)


def pickle_entry(root: Path, name: str, model_dir: str, marker: Path, variant: str) -> Path:
    """A working model plus a pickle: `bin` as pytorch_model.bin, `zip` as torch.save's zip layout under a
    harmless name, `disguised` as a raw pickle with an innocent suffix."""
    folder = good(root, name, model_dir)
    payload = pickle_payload(marker)
    model = folder / "model"
    if variant == "bin":
        (model / "pytorch_model.bin").write_bytes(payload)
    elif variant == "zip":
        with zipfile.ZipFile(model / "extra_state.data", "w") as archive:
            archive.writestr("archive/data.pkl", payload)
            archive.writestr("archive/version", "3\n")
    elif variant == "disguised":
        (model / "vocab_extra.dat").write_bytes(payload)
    else:
        raise ValueError(variant)
    return folder


_EVIL_MODULE = '''\
import os
import pathlib

for _where in ({marker!r}, os.path.join(os.environ.get("HOME", "."), "shipped-code-ran")):
    try:  # in the sandbox the organizer's folders are not there: the job's home is
        pathlib.Path(_where).write_text("shipped model code ran")
    except OSError:
        pass

from transformers import GPT2Config, GPT2LMHeadModel


class EvilModel(GPT2LMHeadModel):
    config_class = GPT2Config
'''


def remote_code_entry(root: Path, name: str, model_dir: str, marker: Path) -> Path:
    """A model whose config points at shipped code (auto_map) that writes a marker file when imported."""
    folder = good(root, name, model_dir)
    model = folder / "model"
    config = json.loads((model / "config.json").read_text(encoding="utf-8"))
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilModel"}
    (model / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    (model / "modeling_evil.py").write_text(_EVIL_MODULE.format(marker=str(marker)), encoding="utf-8")
    return manifest(folder, MANIFEST.format(team="team-evil", name=name) + "trust_remote_code: true\n")


def symlinked_weights_entry(root: Path, name: str, model_dir: str, target: Path) -> Path:
    """The weights file is a link to a file outside the submission (another entry's weights)."""
    folder = good(root, name, model_dir)
    (folder / "model" / "model.safetensors").unlink()
    os.symlink(target, folder / "model" / "model.safetensors")
    return folder


def symlinked_manifest_entry(root: Path, name: str, secret_file: Path) -> Path:
    """submission.yaml is a link to a file of the organizer's: reading it would quote it in the error."""
    folder = root / name
    folder.mkdir(parents=True)
    os.symlink(secret_file, folder / "submission.yaml")
    return folder


def symlinked_predictions_entry(root: Path, name: str, target: Path, task: str) -> Path:
    """A predictions entry whose file links to another entry's stored predictions."""
    folder = manifest(root / name, f"team: copycat\nname: {name}\nkind: predictions\n")
    (folder / "predictions").mkdir()
    os.symlink(target, folder / "predictions" / f"{task}.jsonl")
    return folder


def model_entry(root: Path, name: str, model: str) -> Path:
    """An hf-causal entry whose `model:` is whatever is given: a path that leaves the folder, a hub id."""
    return manifest(root / name, f"team: t\nname: {name}\nkind: hf-causal\nmodel: {model}\n")


def interpolation_entry(root: Path, name: str, variable: str) -> Path:
    """A malformed manifest (an unknown key too) that would read a secret if it were composed as config."""
    return manifest(root / name, f"team: ${{oc.env:{variable}}}\nname: {name}\nkind: hf-causal\n"
                                 f"model: ${{oc.env:{variable}}}\nnote: ${{oc.env:{variable}}}\n")


def _load(model_dir: str):
    from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

    return GPT2LMHeadModel.from_pretrained(model_dir), PreTrainedTokenizerFast.from_pretrained(model_dir)


def _save(root: Path, name: str, model, tokenizer) -> Path:
    model.save_pretrained(str(root / name / "model"), safe_serialization=True)
    tokenizer.save_pretrained(str(root / name / "model"))
    return manifest(root / name, MANIFEST.format(team=f"team-{name}", name=name))


def nan_entry(root: Path, name: str, model_dir: str) -> Path:
    """Valid safetensors whose final layer norm is NaN: every logit is NaN."""
    model, tokenizer = _load(model_dir)
    with torch.no_grad():
        model.transformer.ln_f.weight.fill_(float("nan"))
    return _save(root, name, model, tokenizer)


def crash_entry(root: Path, name: str, model_dir: str) -> Path:
    """A model with an 8-token embedding behind a 500-token tokenizer: loads, then fails in its forward pass."""
    from transformers import GPT2Config, GPT2LMHeadModel

    model, tokenizer = _load(model_dir)
    config = GPT2Config(vocab_size=8, n_positions=128, n_embd=16, n_layer=1, n_head=2,
                        bos_token_id=1, eos_token_id=2, pad_token_id=0)
    return _save(root, name, GPT2LMHeadModel(config).eval(), tokenizer)


HUGE_TOKEN_CHARS = 100_000


def huge_output_entry(root: Path, name: str, model_dir: str) -> Path:
    """A tokenizer with one 100,000-character token and a model that always predicts it: every generated
    token is 100 KB of text."""
    from transformers import GPT2LMHeadModel

    _, tokenizer = _load(model_dir)
    tokenizer.add_tokens(["Z" * HUGE_TOKEN_CHARS])
    huge = len(tokenizer) - 1
    source, _ = _load(model_dir)
    source.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    model: GPT2LMHeadModel = source
    with torch.no_grad():
        direction = torch.ones(model.config.n_embd)
        model.transformer.ln_f.weight.zero_()  # the final hidden state is the bias: the same at every position
        model.transformer.ln_f.bias.copy_(direction)
        model.transformer.wte.weight[huge] = 100 * direction  # tied output embedding: its logit dominates
    return _save(root, name, model, tokenizer)


def slow_entry(root: Path, name: str, model_dir: str) -> Path:
    """A long-context model that never emits EOS or a stop string: generation runs to max_new_tokens.

    The window is long enough that, even on a fast machine, decoding to the end takes far longer than any test
    budget: each step costs at least generate()'s per-token overhead, so tens of thousands of steps cannot finish
    in seconds."""
    from transformers import GPT2Config, GPT2LMHeadModel

    _, tokenizer = _load(model_dir)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=65536, n_embd=32, n_layer=2, n_head=2,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id)
    model = GPT2LMHeadModel(config).eval()
    letter = tokenizer.convert_tokens_to_ids("a")
    with torch.no_grad():
        direction = torch.ones(config.n_embd)
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.copy_(direction)
        model.transformer.wte.weight[letter] = 100 * direction  # always "a": never EOS, never a newline
    return _save(root, name, model, tokenizer)


def endpoint_entry(root: Path, name: str, base_url: str, model: str = "fake-model") -> Path:
    """A model behind an OpenAI-compatible server (nothing of it is local)."""
    return manifest(root / name, f"team: team-{name}\nname: {name}\nkind: endpoint\n"
                                 f"endpoint: {{base_url: \"{base_url}\", model: \"{model}\"}}\n")


_ATTACK_MODULE = '''\
import glob, json, os, socket, subprocess, sys

REPORT = {{}}


def attempt(name, action):
    try:
        REPORT[name] = "succeeded: " + repr(action())[:200]
    except BaseException as e:
        REPORT[name] = ("blocked: " + type(e).__name__ + ": " + str(e))[:300]


def environ_with_secret():
    for path in glob.glob("/proc/[0-9]*/environ"):
        try:
            if {secret!r}.encode() in open(path, "rb").read():
                return path
        except OSError:
            pass
    raise LookupError("no readable process environment holds the secret")


attempt("parent environ", lambda: open("/proc/{parent}/environ", "rb").read(64))
attempt("any environ", environ_with_secret)
attempt("parent memory", lambda: open("/proc/{parent}/mem", "rb").close())  # opening it is the ptrace check
for label, path in {reads!r}.items():
    attempt("read " + label, lambda path=path: open(path, "rb").read(64))
for label, path in {writes!r}.items():
    attempt("write " + label, lambda path=path: open(path, "w").write("written by the entry"))
attempt("network", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=3).close())
GRANDCHILD = subprocess.Popen([sys.executable, "-c", "import os, time; os.setsid(); time.sleep(120)", {token!r}],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
REPORT["grandchild started"] = "succeeded"
with open(os.path.join(os.environ["HOME"], "attack.json"), "w") as f:
    json.dump(REPORT, f)

from transformers import GPT2Config, GPT2LMHeadModel


class AttackModel(GPT2LMHeadModel):
    config_class = GPT2Config
'''


def attack_entry(root: Path, name: str, model_dir: str, *, parent: int, secret: str, reads: dict, writes: dict,
                 port: int, token: str) -> Path:
    """A model entry whose shipped code (allowed by the organizer) tries, on import in the model process, to read
    the harness's environment and memory and the organizer's files, to write outside its job folder, to reach the
    network and to leave a daemonised grandchild behind. It writes what each attempt got to `$HOME/attack.json`
    (the job folder) and then serves as a working GPT-2."""
    folder = good(root, name, model_dir)
    model = folder / "model"
    config = json.loads((model / "config.json").read_text(encoding="utf-8"))
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_attack.AttackModel"}
    (model / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    (model / "modeling_attack.py").write_text(_ATTACK_MODULE.format(
        secret=secret, parent=parent, reads=reads, writes=writes, port=port, token=token), encoding="utf-8")
    return manifest(folder, MANIFEST.format(team="team-attack", name=name) + "trust_remote_code: true\n")
