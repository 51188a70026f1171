"""Prompting: chat templates applied once with BOS once, shots as turns, seeded shots, truncation counted (shots
dropped before the field is cut), reasoning blocks stripped, capped generation overrides, prompt hashes that
change exactly when the prompt config does, and correct prompts for causal and seq2seq models on every kind."""
from __future__ import annotations

import shutil
from pathlib import Path

import jinja2
import pytest
import torch
from tiny_models import tiny_corpus, train_tokenizer

from harness.compose import compose
from harness.errors import ConfigError, SubmissionError
from harness.execution.cells import Cell
from harness.execution.evaluator import Evaluator
from harness.models.hf import HFCausalBackend, HFSeq2SeqBackend
from harness.prompting import prompt_config_sha256, select_shots
from harness.requests import GenerateRequest, LoglikelihoodRequest, PromptParts, strip_reasoning
from harness.submission import load_submission
from harness.validate import print_report, validate
from tasks.examples import load_examples

CORPUS = tiny_corpus()
# A chat template that writes the BOS token itself, as Llama's do, and marks each turn's role: [S]ystem, [U]ser,
# [A]ssistant (short markers: the tiny models read 128 tokens).
CHAT_TEMPLATE = ("{{ bos_token }}{% for m in messages %}[{{ m['role'][0] | upper }}]{{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}[A]{% endif %}")
QUERY = "Review: The cat watched the red door yesterday.\nSentiment:"
SHOTS = (("Review: A farmer painted seven apples.\nSentiment:", "positive"),
         ("Review: The river ignored the morning news.\nSentiment:", "negative"))


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs single-threaded (see conftest.one_torch_thread)."""


def chat_model(model_dir: str, folder: Path, add_bos: bool) -> str:
    """A copy of a tiny model whose tokenizer has a chat template (and, with add_bos, adds <s> itself too)."""
    for name in ("config.json", "generation_config.json", "model.safetensors"):
        shutil.copy(Path(model_dir) / name, folder / name)
    tokenizer = train_tokenizer(CORPUS, add_bos=add_bos)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(str(folder))
    return str(folder)


@pytest.fixture(scope="module")
def chat_dir(tiny_gpt2_dir, tmp_path_factory) -> str:
    return chat_model(tiny_gpt2_dir, tmp_path_factory.mktemp("chat_bos"), add_bos=True)


@pytest.fixture(scope="module")
def chat(chat_dir):
    """Llama-like: the tokenizer adds <s> and the template writes <s>: it must appear once."""
    return HFCausalBackend(chat_dir, device="cpu", batch_size=8, chat_template=True,
                           reasoning=("<think>", "</think>"))


@pytest.fixture(scope="module")
def chat_no_prefix(tiny_gpt2_dir, tmp_path_factory):
    """GPT-2-like tokenizer (adds nothing) with the same template: the template's <s> is the one BOS."""
    folder = chat_model(tiny_gpt2_dir, tmp_path_factory.mktemp("chat_plain"), add_bos=False)
    return HFCausalBackend(folder, device="cpu", batch_size=8, chat_template=True)


@pytest.fixture(scope="module")
def gpt2(tiny_gpt2_dir):
    return HFCausalBackend(tiny_gpt2_dir, device="cpu", batch_size=8)


@pytest.fixture(scope="module")
def t5(tiny_t5_dir):
    return HFSeq2SeqBackend(tiny_t5_dir, device="cpu", batch_size=8)


def fitted_ids(backend, parts: PromptParts, reserved: int = 4, side: str = "right"):
    """(ids the model reads, truncated, shots dropped) for a prompt."""
    return backend._fit_prompt(parts, backend._layouts([parts])[0], side, reserved)


def request(parts: PromptParts, max_new_tokens: int = 4) -> GenerateRequest:
    text, cut = parts.plain()
    return GenerateRequest(text, max_new_tokens, ("\n",), cut, "right", parts)


# ---------------------------------------------------------------- chat template and BOS


@pytest.mark.parametrize("which", ["chat", "chat_no_prefix"])
def test_chat_template_is_applied_once_and_bos_is_not_doubled(which, request_fixture):
    backend = request_fixture(which)
    parts = PromptParts(user=QUERY, system="Be brief.")
    ids, truncated, dropped = fitted_ids(backend, parts)
    bos = backend.tokenizer.bos_token_id
    assert ids[0] == bos and ids.count(bos) == 1 and not truncated and dropped == 0
    assert backend.tokenizer.decode(ids) == f"<s>[S]Be brief.\n[U]{QUERY}\n[A]"
    assert backend.rendered_prompt(request(parts)) == backend.tokenizer.decode(ids)


@pytest.fixture
def request_fixture(request):
    return request.getfixturevalue


def test_a_plain_model_gets_plain_text_and_the_same_text_as_before_without_shots(gpt2):
    parts = PromptParts(user=QUERY)
    assert parts.plain() == (QUERY, None)
    assert gpt2.rendered_prompt(request(parts)) == QUERY  # no role markers, no special tokens (GPT-2 adds none)
    with_system = PromptParts(user=QUERY, system="Be brief.", instruction="Classify.", shots=SHOTS[:1])
    assert gpt2.rendered_prompt(request(with_system)) == (
        f"Be brief.\n\nClassify.\n\n{SHOTS[0][0]} positive\n\n{QUERY}")


def test_shots_appear_as_alternating_turns_with_the_target_prefix(chat):
    shots = (("A farmer painted.", "positive"), ("The river ran.", "negative"))
    parts = PromptParts(user="The cat watched.", shots=shots, instruction="Classify.", prefix="Sentiment:")
    ids, truncated, dropped = fitted_ids(chat, parts)
    assert (dropped, truncated) == (0, False)
    assert chat.tokenizer.decode(ids) == (
        "<s>[U]Classify.\n\nA farmer painted.\n[A]Sentiment: positive\n"
        "[U]The river ran.\n[A]Sentiment: negative\n"
        "[U]The cat watched.\n[A]Sentiment:")
    assert [m["role"] for m in parts.messages()] == ["user", "assistant", "user", "assistant", "user"]


def test_loglikelihood_on_a_chat_model_scores_the_continuation_after_the_assistant_prefix(chat):
    parts = PromptParts(user=QUERY, shots=SHOTS)
    context, cut = parts.plain()
    result = chat.loglikelihood([LoglikelihoodRequest(context, " positive", cut, "right", parts)])[0]
    tokenizer = chat.tokenizer
    rendered = tokenizer.apply_chat_template(parts.messages(), tokenize=False, add_generation_prompt=True)
    assert rendered.startswith("<s>")
    body = tokenizer(rendered[3:], add_special_tokens=False)["input_ids"]
    # no target prefix: the answer opens the assistant turn, as the shots' answers do (no delimiter before it)
    whole = tokenizer(rendered[3:] + "positive", add_special_tokens=False)["input_ids"]
    continuation = whole[len(body):]
    ids = torch.tensor([[tokenizer.bos_token_id] + body + continuation[:-1]])
    with torch.no_grad():
        logprobs = torch.log_softmax(chat.model(input_ids=ids).logits[0].float(), dim=-1)
    expected = sum(logprobs[len(body) + i, token].item() for i, token in enumerate(continuation))
    assert result.logprob == pytest.approx(expected, abs=1e-4)
    assert result.dropped_shots == 0 and not result.truncated


def test_a_declared_chat_template_needs_one_in_the_tokenizer(tiny_gpt2_dir):
    with pytest.raises(ValueError, match="chat_template: true"):
        HFCausalBackend(tiny_gpt2_dir, device="cpu", chat_template=True)


# ---------------------------------------------------------------- shots


def qa_fewshot(*overrides: str):
    return compose(["task=demo_qa_fewshot", *overrides]).task


def test_the_same_seed_gives_the_same_shots_whatever_the_order():
    task = qa_fewshot()
    pool = load_examples(task, task.train, "train")
    ids = [e.id for e in load_examples(task)[:12]]
    first = dict(zip(ids, select_shots(task, ids, lambda: pool)))
    again = dict(zip(reversed(ids), select_shots(task, list(reversed(ids)), lambda: pool)))
    assert first == again and all(len(shots) == 2 for shots in first.values())
    assert len({str(shots) for shots in first.values()}) > 1, "examples get different shots"
    pool_items = [(dict(e.inputs), e.target[0]) for e in pool]
    assert all(shot in pool_items for shots in first.values() for shot in shots), "shots come from the train pool"
    reseeded = dict(zip(ids, select_shots(qa_fewshot("task.fewshot.seed=7"), ids, lambda: pool)))
    assert reseeded != first


def test_fixed_shots_are_the_same_for_every_example():
    task = compose(["task=demo_translation", "task.fewshot.num_fewshot=1", "task.fewshot.source=fixed",
                    "task.fewshot.fixed=[{source: Guten Morgen., target: Good morning.}]"]).task
    shots = select_shots(task, ["a", "b"], lambda: pytest.fail("a fixed list reads no pool"))
    assert shots == [[({"source": "Guten Morgen."}, "Good morning.")]] * 2


@pytest.mark.parametrize("overrides, match", [
    (["task=demo_qa", "task.fewshot.num_fewshot=2"], r"task demo_qa: fewshot.num_fewshot is 2.*no pool"),
    (["task=demo_qa_fewshot", "task.train.path=pkg://tasks/data/demo/qa_test.jsonl"],
     r"task demo_qa_fewshot: train is the scored data"),
    (["task=demo_translation", "task.fewshot.num_fewshot=3", "task.fewshot.source=fixed",
      "task.fewshot.fixed=[{source: a, target: b}]"], r"fewshot.fixed lists only 1"),
    (["task=demo_language_modeling", "task.fewshot.num_fewshot=1"], r"language_modeling tasks .* take no shots"),
    (["task=demo_qa_fewshot", "task.fewshot.source=dev"], r"fewshot.source 'dev' is not valid; use one of train"),
    (["task=demo_qa", "task.truncation.field=question2"], r"truncation.field 'question2'.*use one of context"),
    (["task=demo_qa", "task.truncation.side=middle"], r"truncation.side 'middle' is not valid"),
])
def test_bad_prompt_settings_fail_naming_the_task_and_key(overrides, match):
    from tasks import kind_of

    task = compose(overrides).task

    def prepare():
        Cell(task, "x", "sha", compose([]))  # every cell checks the few-shot pool, whatever the entry's kind
        kind_of(task).requests(task, [e.inputs for e in load_examples(task)[:1]])

    with pytest.raises(ConfigError, match=match):
        prepare()


def test_unknown_prompt_keys_fail_loudly():
    with pytest.raises(ConfigError, match="fewshot.n_shots"):
        compose(["task=demo_qa", "task.fewshot.n_shots=2"])


# ---------------------------------------------------------------- too long: drop shots, then cut, all counted


def long_shot(n_sentences: int, offset: int):
    return (" ".join(CORPUS[offset:offset + n_sentences]), "positive")


def test_shots_are_dropped_last_first_before_the_field_is_cut(chat):
    budget = chat._budget(16, [chat.tokenizer.bos_token_id])
    query = PromptParts(user="Review: " + CORPUS[0] + "\nSentiment:", cut=(8, 8 + len(CORPUS[0])))
    for n in range(1, 12):  # shots long enough that two do not fit and one does
        parts = PromptParts(user=query.user, cut=query.cut, shots=(long_shot(n, 10), long_shot(n, 30)))
        sizes = [len(chat._encode([chat._layout(parts, k).text])[0]) for k in (1, 2)]
        if sizes[0] <= budget < sizes[1]:
            break
    else:
        pytest.fail("no shot length makes exactly one shot fit")
    ids, truncated, dropped = fitted_ids(chat, parts, reserved=16)
    text = chat.tokenizer.decode(ids)
    assert (dropped, truncated) == (1, False)
    assert parts.shots[0][0] in text and parts.shots[1][0] not in text, "the last shot goes first"
    generated = chat.generate([request(parts, max_new_tokens=16)])[0]
    assert (generated.dropped_shots, generated.truncated) == (1, False)


@pytest.mark.parametrize("side", ["right", "left"])
def test_a_query_too_long_alone_loses_every_shot_then_its_field_is_cut_from_the_declared_side(chat, side):
    document = " ".join(CORPUS[40:80])
    user = f"Review: {document}\nSentiment:"
    parts = PromptParts(user=user, shots=SHOTS, cut=(8, 8 + len(document)))
    ids, truncated, dropped = fitted_ids(chat, parts, reserved=16, side=side)
    text = chat.tokenizer.decode(ids)
    assert (dropped, truncated) == (2, True) and len(ids) <= chat.max_length - 16
    assert text.startswith("<s>[U]Review: ") and text.endswith("\nSentiment:\n[A]")
    kept = CORPUS[40] if side == "right" else CORPUS[79]
    lost = CORPUS[79] if side == "right" else CORPUS[40]
    assert kept in text and lost not in text


# ---------------------------------------------------------------- reasoning blocks


def test_a_reasoning_block_is_stripped_and_stops_apply_after_it(chat):
    tokens = chat._encode(["<think>a farmer\nthe cat</think> seven apples\nmore"])[0]
    assert chat._finish_text(tokens, ["\n"]) == " seven apples"
    assert chat._finish_text(chat._encode(["<think>still thinking\n"])[0], ["\n"]) == ""  # never closed: empty
    assert chat._finish_text(chat._encode(["seven apples\nmore"])[0], ["\n"]) == "seven apples"
    criteria = chat._stop_criteria([["\n"]], new_from=0)
    assert not criteria(torch.tensor([chat._encode(["<think>a\nb"])[0]]), None)[0]
    assert criteria(torch.tensor([chat._encode(["<think>a\nb</think> c\n"])[0]]), None)[0]
    assert strip_reasoning("x</think>y</think>z", "<think>", "</think>") == "z"


# ---------------------------------------------------------------- what a submission may declare


def hf_entry(root: Path, model_dir: str, extra: str = "", name: str = "mine") -> Path:
    folder = root / name
    shutil.copytree(model_dir, folder / "model")
    (folder / "submission.yaml").write_text(f"team: t\nname: {name}\nkind: hf-causal\nmodel: model\n{extra}",
                                            encoding="utf-8")
    return folder


@pytest.mark.parametrize("extra, match", [
    ("reasoning: {begin: '<think>', end: '</think>'}\n", r"field 'reasoning': expected exactly the keys"),
    ("reasoning: {start: '', end: '</think>'}\n", r"field 'reasoning.start': expected a non-empty"),
    ("reasoning: {start: '<t>', end: '<t>'}\n", r"start and end are the same marker"),
    ("reasoning: '<think>'\n", r"field 'reasoning': expected dict"),
    ("max_new_tokens: 0\n", r"field 'max_new_tokens': 0 must be a positive integer"),
])
def test_bad_prompting_manifest_fields_are_named(tmp_path, tiny_gpt2_dir, extra, match):
    with pytest.raises(SubmissionError, match=match):
        load_submission(hf_entry(tmp_path, tiny_gpt2_dir, extra))


def test_a_raised_token_budget_is_honoured_only_up_to_the_organizers_cap(tmp_path, tiny_gpt2_dir):
    folder = hf_entry(tmp_path, tiny_gpt2_dir, "max_new_tokens: 100\n")
    for overrides, match in ([[], "is not allowed; the organizer allows no raise"],
                             [["generation_caps.max_new_tokens=50"], "100 exceeds the organizer's cap of 50"]):
        cfg = compose(["task=demo_qa", f"paths.results={tmp_path / 'store'}", "progress=false", *overrides])
        records = Evaluator(cfg, {"demo_qa": cfg.task}, echo=lambda m: None).evaluate(folder)
        assert records[0]["status"] == "invalid"
        assert "submission.yaml: field 'max_new_tokens'" in records[0]["reason"] and match in records[0]["reason"]
    cfg = compose(["task=demo_qa", "generation_caps.max_new_tokens=128"])
    task, _, _ = Evaluator(cfg, {}).prepare(cfg.task, load_examples(cfg.task)[:1], load_submission(folder).manifest)
    assert task.generation.max_new_tokens == 100 and cfg.task.generation.max_new_tokens == 24


def test_a_contest_declares_the_cap_and_the_run_config_cannot_widen_it(tmp_path, tiny_gpt2_dir):
    from harness.prompting import check_generation_request

    manifest = load_submission(hf_entry(tmp_path, tiny_gpt2_dir, "max_new_tokens: 100\n")).manifest
    base = ["suite=demo", "contest=demo_contest", f"paths.leaderboards={tmp_path / 'boards'}"]
    with pytest.raises(SubmissionError, match="organizer allows no raise.*contest demo_contest: generation_caps"):
        check_generation_request(manifest, "submission.yaml", compose(base + ["contest.generation_caps.max_new_tokens=null"]))
    with pytest.raises(ConfigError, match="declares its own generation caps"):
        compose(base + ["generation_caps.max_new_tokens=500"])
    with pytest.raises(SubmissionError, match="100 exceeds the organizer's cap of 64"):  # demo_contest.yaml's cap
        check_generation_request(manifest, "submission.yaml", compose(base))
    check_generation_request(manifest, "submission.yaml", compose(base + ["contest.generation_caps.max_new_tokens=128"]))
    with pytest.raises(ConfigError, match="generation_caps.max_new_tokens: 0 must be a positive integer"):
        compose(base + ["contest.generation_caps.max_new_tokens=0"])


# ---------------------------------------------------------------- what is recorded


def hashes(task, chat_template=False):
    manifest = type("M", (), {"chat_template": chat_template, "max_new_tokens": None, "reasoning": None})()
    examples = load_examples(task)[:4]
    return list(Evaluator(compose([]), {}).prepare(task, examples, manifest)[2].values())


@pytest.mark.parametrize("override", ["task.system_prompt=Be brief.", "task.instruction=Answer briefly.",
                                      "task.target_prefix=' Answer:'", "task.fewshot.seed=99",
                                      "task.fewshot.num_fewshot=1", "task.prompt='Q: {{ question }} C: {{ context }}'",
                                      "task.fewshot.separator='\n'", "task.train.limit=40"])
def test_prompt_hashes_change_exactly_when_the_prompt_config_changes(override):
    base = qa_fewshot("task.data.limit=4")
    changed = qa_fewshot("task.data.limit=4", override)
    before, after = hashes(base), hashes(changed)
    assert before == hashes(qa_fewshot("task.data.limit=4")) and len(set(before)) == 4
    assert all(a != b for a, b in zip(before, after)), f"{override} changes every example's prompt"
    assert prompt_config_sha256(base) != prompt_config_sha256(changed)
    run = compose([])
    assert Cell(base, "x", "s", run).prediction_key != Cell(changed, "x", "s", run).prediction_key


@pytest.mark.parametrize("override", ["+task.metric_options.squad={}", "task.budget_s=60", "task.description=x",
                                      "task.generation.max_new_tokens=8"])
def test_prompt_hashes_stay_when_nothing_the_model_reads_changes(override):
    base, changed = qa_fewshot("task.data.limit=4"), qa_fewshot("task.data.limit=4", override)
    assert hashes(base) == hashes(changed)
    generation = override.startswith("task.generation")
    assert (prompt_config_sha256(base) != prompt_config_sha256(changed)) == generation
    assert hashes(base, chat_template=True) != hashes(base)


@pytest.mark.slow  # validate runs the chat model in a child, ~14 s
def test_validate_shows_the_final_chat_prompt_and_records_dropped_shots(tmp_path, chat_dir, capsys):
    folder = hf_entry(tmp_path, chat_dir, "chat_template: true\nreasoning: {start: '<think>', end: '</think>'}\n")
    cfg = compose(["suite=demo", "progress=false"])
    tasks = {name: compose([f"task={name}", "task.generation.max_new_tokens=4"]).task
             for name in ("demo_qa_fewshot", "demo_classification")}
    report = validate(folder, cfg, tasks, n_examples=2)
    assert report["accepted"], [c for c in report["checks"] if not c["ok"]]
    qa = report["tasks"]["demo_qa_fewshot"]
    prompt = qa["prompts"]["qa-0001"]
    assert prompt.startswith("<s>[U]Answer with a span from the passage.\n\nPassage: ")
    assert prompt.count("<s>") == 1 and prompt.endswith("\n[A]\nAnswer:")
    assert qa["counts"]["dropped_shots"] > 0, "two demo shots do not fit the tiny model's 128 tokens"
    print_report(report, as_json=False)
    text = capsys.readouterr().out
    assert "shot(s) dropped" in text and '[qa-0001] prompt: "<s>[U]Answer with a span' in text
    classification = report["tasks"]["demo_classification"]["prompts"]
    assert all(p.startswith("<s>[U]Review: ") and "\nSentiment:\n[A]  [scored continuations: "
               in p for p in classification.values())


# ---------------------------------------------------------------- every kind, causal and seq2seq


KIND_TASKS = ["demo_translation", "demo_summarization", "demo_qa", "demo_classification"]


def expected_text(task, inputs, shot_inputs, shot_answer):
    """The plain prompt written out by hand: the shot's prompt, its answer, a blank line, the query's prompt."""
    template = jinja2.Template(task.prompt, keep_trailing_newline=True)
    return f"{template.render(**shot_inputs)} {shot_answer}\n\n{template.render(**inputs)}"


@pytest.mark.parametrize("backend_name", ["gpt2", "t5"])
@pytest.mark.parametrize("name", KIND_TASKS)
def test_causal_and_seq2seq_models_get_the_right_prompt_for_every_kind(name, backend_name, request_fixture):
    from tasks import kind_of

    backend = request_fixture(backend_name)
    kind = kind_of(compose([f"task={name}"]).task)
    shot = {field: "the red door" for field in kind.input_fields}
    fixed = "[{" + ", ".join(f"{k}: {v}" for k, v in shot.items()) + ", target: yes}]"
    task = compose([f"task={name}", "task.fewshot.num_fewshot=1", "task.fewshot.source=fixed",
                    f"task.fewshot.fixed={fixed}", "task.generation.max_new_tokens=4"]).task
    # short inputs of the kind's fields, so prompt and shot fit the tiny models' 128 tokens
    inputs = [{field: " ".join(CORPUS[i + j].split()[:4]) for j, field in enumerate(kind.input_fields)} for i in (0, 5)]
    requests = kind.requests(task, inputs, select_shots(task, ["a", "b"], list))
    for item_inputs, item in zip(inputs, requests):
        first = item[0] if isinstance(item, list) else item
        assert backend.rendered_prompt(first) == expected_text(task, item_inputs, shot, "yes")
        if isinstance(item, list):  # classification by log-likelihood: the labels follow the prompt
            assert [r.continuation for r in item] == [" positive", " negative", " neutral"]
    answers = backend.generate([r for r in requests if isinstance(r, GenerateRequest)])
    assert all(a.dropped_shots == 0 and not a.truncated for a in answers)


def test_language_modeling_reads_the_document_alone(gpt2):
    from tasks import kind_of

    task = compose(["task=demo_language_modeling"]).task
    example = load_examples(task)[0]
    [rolling] = kind_of(task).requests(task, [example.inputs])
    assert gpt2.rendered_prompt(rolling) == example.inputs["text"]


def test_the_train_pool_is_read_once_per_run_however_many_entries_draw_from_it(monkeypatch):
    import harness.execution.evaluator as runner

    cfg = compose(["task=demo_qa_fewshot"])
    reads = []
    real = runner.load_examples
    monkeypatch.setattr(runner, "load_examples", lambda task, data=None, part="data": reads.append(part) or
                        real(task, data, part))
    evaluator = Evaluator(cfg, {"demo_qa_fewshot": cfg.task}, echo=lambda m: None)
    examples = evaluator.examples(cfg.task)[:4]
    first, second = evaluator.shots(cfg.task, examples), evaluator.shots(cfg.task, examples)
    assert first == second and len(first) == 4 and all(len(s) == 2 for s in first)
    assert reads == ["data", "train"]
