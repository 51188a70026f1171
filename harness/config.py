"""Typed config schemas (Hydra structured configs) and the one place configs are composed.

Every YAML under `harness/conf`, `tasks/task` and `tasks/suite` is merged onto these dataclasses, so a
misspelled key or a wrong type fails at load time with the key named.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from omegaconf import MISSING, OmegaConf

from harness.errors import ConfigError


@dataclass
class PathsConfig:
    submissions: str = "submissions"
    results: str = "leaderboards/_store"
    leaderboards: str = "leaderboards"
    contests: str = "${paths.leaderboards}/_contests"  # contest state: the lock and the submission ledger (no scores)


@dataclass
class DataConfig:
    # local: `path` is a file (jsonl/csv/tsv/parquet/json/squad) or `files` maps field -> line-aligned text file.
    # hub: `path` is a script-free dataset id, with `name` (config) and `split`.
    source: str = "local"
    format: str = "auto"  # auto | jsonl | csv | tsv | parquet | json | squad | text
    path: Optional[str] = None
    files: Dict[str, str] = field(default_factory=dict)
    name: Optional[str] = None
    split: str = "test"
    revision: Optional[str] = None
    column_names: Optional[List[str]] = None  # for headerless csv/tsv
    limit: Optional[int] = None  # keep the first N examples (smoke runs)


@dataclass
class FieldsConfig:
    """Maps the logical fields a task kind needs onto the dataset's columns."""
    id: Optional[str] = None  # the dataset's own id column; default: row index / line number
    source: Optional[str] = None  # translation
    document: Optional[str] = None  # summarization
    context: Optional[str] = None  # qa
    question: Optional[str] = None  # qa
    text: Optional[str] = None  # classification, language_modeling
    label: Optional[str] = None  # classification
    answers: Optional[str] = None  # qa: a list of answer strings (squad format flattens to it)
    references: List[str] = field(default_factory=list)  # one column per reference, or one list column


@dataclass
class GenerationConfig:
    # Decoding is always greedy. A submission may raise max_new_tokens up to the run's generation_caps; it never
    # sets stop strings or sampling.
    max_new_tokens: int = 64
    stop: List[str] = field(default_factory=lambda: ["\n"])


@dataclass
class FewShotConfig:
    """Solved examples shown before each query; never from the scored split (harness.prompting checks)."""
    num_fewshot: int = 0
    source: str = "train"  # train: sampled from the task's `train` data | fixed: the first num_fewshot of `fixed`
    seed: int = 1234  # with the example id, decides an example's shots: the same example always gets the same
    fixed: List[Dict[str, Any]] = field(default_factory=list)  # each: the input fields and `target` (the answer)
    separator: str = "\n\n"  # between blocks of a plain-text prompt (system, instruction, shots, query)
    target_delimiter: str = " "  # between a shot's prompt and its answer


@dataclass
class TruncationConfig:
    """What is cut when a prompt is too long for the model (after dropping shots, last first); always counted."""
    field: Optional[str] = None  # the input field cut; null: the kind's default (qa: context, translation: source,
    # summarization: document, classification: text)
    side: str = "right"  # right: cut the field's end | left: cut its start


@dataclass
class TaskConfig:
    name: str = MISSING
    kind: str = MISSING
    description: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    train: Optional[DataConfig] = None  # for baselines that learn (majority class, unigram LM); never scored
    fields: FieldsConfig = field(default_factory=FieldsConfig)
    prompt: str = "{{ text }}"  # jinja2 over the input fields: the query's (user turn's) text
    instruction: str = ""  # said once before the shots (plain) / at the start of the first user turn (chat)
    system_prompt: str = ""  # a system turn for chat entries; the first block of a plain-text prompt
    target_prefix: str = ""  # the answer follows it (for chat entries: after the assistant header)
    fewshot: FewShotConfig = field(default_factory=FewShotConfig)
    truncation: TruncationConfig = field(default_factory=TruncationConfig)
    truncate_field: Optional[str] = None  # older spelling of truncation.field (cut from the end); still read
    labels: Dict[str, str] = field(default_factory=dict)  # classification: dataset label value -> verbaliser
    classify_by: str = "loglikelihood"  # loglikelihood | generate
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    window: Optional[int] = None  # language_modeling: tokens per window (default: the model's maximum)
    stride: Optional[int] = None  # language_modeling: tokens the window advances (default: window)
    metrics: List[str] = field(default_factory=list)
    primary_metric: str = MISSING
    metric_options: Dict[str, Any] = field(default_factory=dict)
    budget_s: float = 1800.0  # wall-clock budget for a model on this task
    # language_modeling: the context of a long document's last window: "full" moves it back to read a whole
    # window (lm-evaluation-harness's rule), "own" reads only the tokens after the previous window's start + stride
    last_window: str = "full"
    transform: Optional[str] = None  # a registered text transform (tasks.transforms) applied to the model's text
    count_on: str = "original"  # language_modeling: count words and bytes on the "original" or "transformed" text
    # The references' language, a BCP-47 tag (translation: the target); its primary subtag picks the metric
    # defaults (harness.language). Absent: scored as English, with a warning. Never part of the prediction key.
    language: Optional[str] = None
    source_language: Optional[str] = None  # translation: the source's BCP-47 tag
    config_file: Optional[str] = None  # filled by harness.compose: the YAML the task came from (for messages)


@dataclass
class SuiteConfig:
    name: str = MISSING
    description: str = ""


# ---------------------------------------------------------------- the contest group (harness/conf/contest/*.yaml)
# Checked beyond types (times, names, choices) by harness.contest.check_contest, which names the key and the value.


@dataclass
class LimitsConfig:
    per_day: Optional[int] = None  # counted submissions a team may make per UTC day; null: no limit
    total: Optional[int] = None  # counted submissions a team may make in the phase; null: no limit


@dataclass
class PhaseConfig:
    name: str = MISSING
    start: str = MISSING  # ISO 8601 with a time zone, e.g. "2025-03-01T00:00:00Z"; the phase is open start <= t < end
    end: str = MISSING
    suite: str = MISSING  # the suite this phase scores; a suite belongs to at most one phase
    split: str = "public"  # public: boards use the public part, `reveal` the private part | full: nothing hidden
    limits: LimitsConfig = field(default_factory=LimitsConfig)


@dataclass
class PartitionConfig:
    public_fraction: float = 0.5  # share of each test set on the public board
    seed: int = MISSING  # keep it long and out of public view if the split itself should stay secret
    stratify: bool = True  # classification: the same label proportions in both parts


@dataclass
class TeamConfig:
    members: List[str] = field(default_factory=list)


@dataclass
class SelectionConfig:
    rule: str = "best_public"  # best_public | last | chosen (by `harness select`)
    max: int = 1  # submissions per team that count on the private board
    fallback: str = "best_public"  # rule chosen: what counts for a team that chose none: best_public | last | none


@dataclass
class ContestRankingConfig:
    policy: str = "mean_normalized"  # one of harness.board.policies.POLICIES
    missing: str = "worst"  # worst | unranked: what a failed, missing or n/a cell does to an entry


@dataclass
class GenerationCapsConfig:
    """How far a submission's manifest may raise a task's generation settings; null: not at all."""
    max_new_tokens: Optional[int] = None  # largest `max_new_tokens` a submission.yaml may ask for


@dataclass
class ContestConfig:
    name: str = MISSING
    description: str = ""
    phases: List[PhaseConfig] = field(default_factory=list)
    partition: PartitionConfig = field(default_factory=PartitionConfig)
    teams: Dict[str, TeamConfig] = field(default_factory=dict)
    baselines: List[str] = field(default_factory=list)  # submission names: anchors, marked, never ranked
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    ranking: ContestRankingConfig = field(default_factory=ContestRankingConfig)
    # Locked with the contest; replaces the run config's generation_caps for its entries.
    generation_caps: GenerationCapsConfig = field(default_factory=GenerationCapsConfig)


# ---------------------------------------------------------------- the executor group (harness/conf/executor/*.yaml)
# Checked beyond types by harness.executors.check_executor, which names the key and the value.


@dataclass
class ExecutorConfig:
    name: str = "local"  # local: jobs one after another in this process | ray: one Ray task per job
    address: Optional[str] = None  # ray: null starts a local cluster; "auto", "HOST:6379", "ray://HOST:10001" join one
    num_gpus: float = 0  # ray: GPUs each job requests (Ray sets the job's CUDA_VISIBLE_DEVICES)
    num_cpus: float = 1  # ray: CPUs each job requests
    max_retries: int = 2  # ray: a job whose worker or node is lost runs again at most this many times
    cluster_cpus: Optional[int] = None  # ray, local cluster only: CPUs it offers (null: this machine's)
    cluster_gpus: Optional[int] = None  # ray, local cluster only: GPUs it offers (null: detected; N: N logical GPUs)
    runtime_env: Dict[str, Any] = field(default_factory=dict)  # ray: Ray's runtime_env (working_dir, env_vars, ...)


@dataclass
class BackendConfig:
    name: str = "hf"  # the engine that runs model entries: one of harness.models.BACKENDS
    options: Dict[str, Any] = field(default_factory=dict)  # engine options, part of the prediction key


@dataclass
class RunConfig:
    paths: PathsConfig = field(default_factory=PathsConfig)
    suite: Optional[SuiteConfig] = None
    tasks: Dict[str, TaskConfig] = field(default_factory=dict)  # filled by the suite's defaults list
    task: Optional[TaskConfig] = None  # `harness evaluate task=NAME`
    submission: Optional[str] = None  # `harness evaluate submission=DIR`
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    batch_size: Any = 8  # N (rows a batch) | auto | auto:N (GPU: start at 64 / N, shrink on out-of-memory)
    seed: int = 1234
    fail_on_error: bool = False
    ranking: str = "mean_normalized"  # one of harness.board.policies.POLICIES (a contest declares its own)
    missing_cells: str = "worst"  # worst | unranked: how failed, missing or n/a cells rank (a contest declares its own)
    allow_remote_code: List[str] = field(default_factory=list)  # submission names allowed trust_remote_code
    progress: bool = True
    readme: Optional[str] = None  # a markdown file whose <!-- leaderboard:SUITE:start/end --> block is replaced
    contest: Optional[ContestConfig] = None  # `contest=NAME`: phases, partition, limits, teams (harness/conf/contest)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)  # `executor=local|ray` (harness/conf/executor)
    backend: BackendConfig = field(default_factory=BackendConfig)  # `backend=hf` (harness/conf/backend)
    generation_caps: GenerationCapsConfig = field(default_factory=GenerationCapsConfig)
    # `kind: endpoint` entries (a model behind an OpenAI-compatible server the organizer names):
    allow_endpoints: List[str] = field(default_factory=list)  # hosts (host or host:port) they may use; empty: none
    endpoint_api_key_env: Optional[str] = None  # the environment variable holding their API key (never written)
    reuse_endpoint_predictions: bool = False  # a remote model can change under its name: predict again every run
    # processes that score predictions and baseline entries at once (executor=local); 0: one per CPU, 1: serial
    scoring_workers: int = 0
    # What one submission may hold, checked by stat before anything is read or hashed (an entry over either is
    # invalid): all its files together, and any one file.
    max_submission_bytes: int = 200 * 10**9
    max_file_bytes: int = 20 * 10**9
    scoring_budget_s: float = 600  # scoring one cell in this process; over it the cell is `timeout` ("scoring")
    allow_damaged: bool = False  # a board with damaged stored records shows them as missing instead of refusing
    # memory cap of each model job (a cgroup, where the machine lets the harness make one); null: 90% of the machine's
    job_memory_bytes: Optional[int] = None
    retries: int = 2  # attempts a timeout / out-of-memory / crashed cell gets across runs (not Ray's max_retries)
    retry_failed: bool = False  # true: every failed cell (whatever its status) is attempted once more in this run
    best_per_team: bool = False  # boards show each team's best entry only (Kaggle's default), ranked among teams


# ---------------------------------------------------------------- values checked beyond their types

AUTO_BATCH_START = 64


def parse_batch_size(batch_size: Any) -> Tuple[int, bool]:
    """(rows a batch, auto) of `batch_size`: N, "auto" (start at 64) or "auto:N" (start at N), the auto forms
    shrinking on CUDA out-of-memory. Raises ValueError naming the valid forms."""
    text = batch_size.strip().lower() if isinstance(batch_size, str) else batch_size
    try:
        if text == "auto":
            return AUTO_BATCH_START, True
        if isinstance(text, str) and text.startswith("auto:"):
            return positive_int(text[len("auto:"):], "batch_size"), True
        return positive_int(text, "batch_size"), False
    except ValueError:
        raise ValueError(f"batch_size must be a positive integer, 'auto' or 'auto:N', got {batch_size!r}") from None


def positive_int(value: Any, name: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive integer, got {value!r}") from None
    if number < 1 or isinstance(value, bool) or (isinstance(value, float) and value != number):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return number


def register_configs() -> None:
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="run_schema", node=RunConfig)


def plain(node: Any) -> Any:
    """A config node as plain dicts and lists (resolved); plain data as it is."""
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def config_hash(node: Any) -> str:
    """sha256 of a resolved config node (or plain data), key order independent."""
    data = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    blob = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def as_dict(node: Any, resolve: bool = True) -> Dict[str, Any]:
    """A mapping config node as plain data (OmegaConf.to_container, typed for the mappings this project holds)."""
    data = OmegaConf.to_container(node, resolve=resolve) if OmegaConf.is_config(node) else dict(node)
    if not isinstance(data, dict):
        raise TypeError(f"expected a mapping config, got {type(data).__name__}")
    return {str(key): value for key, value in data.items()}


def contest_of(cfg: RunConfig) -> ContestConfig:
    """The run's contest, for the code that runs only under one (submit, select, reveal, the contest board)."""
    if cfg.contest is None:
        raise ConfigError("this command needs a contest: add contest=NAME")
    return cfg.contest


def suite_of(cfg: RunConfig) -> SuiteConfig:
    """The run's suite, for the code that runs only on one (boards, contests)."""
    if cfg.suite is None:
        raise ConfigError("this command needs a suite: add suite=NAME")
    return cfg.suite
