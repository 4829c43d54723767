"""The typed schema of params.yaml: one place for every knob a stage reads.

Every model forbids unknown keys and checks types strictly, so a typo such as
``subset.sede: 42`` fails loudly instead of silently being ignored.
Errors are reported as ``params.yaml: <dotted.key>: <what is wrong>``.

The schema describes; it holds no values. Every value lives in stages/profiles/ (which
``python -m tools.configure`` renders into params.yaml), so every field is required; the only
defaults left are structural ones, listed in tests/test_params.py's SCHEMA_DEFAULTS.

Stages call :func:`load_params` and read only their own section; ``dvc.yaml``
declares that same section under the stage's ``params:``, so DVC re-runs exactly
the stages whose knobs changed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from stages.lib.errors import StageError
from stages.lib.paths import BASELINE, eval_folder

# Every params value that becomes a path component or reaches a shell through dvc.yaml's ``cmd``
# (run ids, sources, datasets, sessions, folders) must be one plain name: no '/', '..', '.', '@', blank,
# quote or shell character. Matched with fullmatch, so no trailing newline slips through either.
RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
LANG_RE = re.compile(r"[a-z]{2,3}")
TIER_RE = re.compile(r"[0-9]+k")

# The paper profiles' revision for Hub repositories whose commit nobody has chosen yet
# (the original pinned none); every stage that reads the Hub refuses to run with it.
UNPINNED = "PIN-ME"


def _check_langs(value: list | str) -> list | str:
    for lang in [value] if isinstance(value, str) else value:
        if not LANG_RE.fullmatch(lang):
            raise ValueError(f"language {lang!r} must be an ISO 639 code such as 'zh'")
    return value


def _check_tiers(value: list | str) -> list | str:
    for tier in [value] if isinstance(value, str) else value:
        if not TIER_RE.fullmatch(tier):
            raise ValueError(f"tier {tier!r} must look like '5k'")
    return value


def _check_names(value: list | str | None) -> list | str | None:
    """Names that become a folder or file name (datasets, packs, benchmarks, templates): one plain name each."""
    for name in [] if value is None else [value] if isinstance(value, str) else value:
        if not RUN_ID_RE.fullmatch(name):
            raise ValueError(f"{name!r} must be a plain name: letters, digits, '-' and '_' (no '/', '.' or spaces)")
    return value


class ParamsError(StageError, ValueError):
    """A params file that does not match the schema; the message names the key."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# --------------------------------------------------------------------------- fetch


class InstalledSource(Strict):
    """Python files of distributions installed with the project (smoke scale).

    Each file is verified against the sha256 in its wheel ``RECORD`` and the
    distribution's version must equal the pin, so every machine reads the same bytes.
    """

    kind: Literal["installed"]
    distributions: dict[str, str] = Field(min_length=1, description="distribution name -> pinned version")
    limit: int | None = Field(gt=0, description="stop after this many accepted files")


class HubSource(Strict):
    """A Hugging Face dataset of source files streamed with ``datasets`` (paper scale).

    ``content: s3`` hydrates each row's ``blob_id`` from the Software Heritage bucket
    (The Stack v2); ``content: inline`` reads the row's own ``content`` column (v1).
    """

    kind: Literal["hub"]
    dataset: str
    config: str | None
    data_dir: str | None
    split: str
    revision: str = Field(description="a pinned commit of the dataset repository, never 'main'")
    content: Literal["inline", "s3"]
    s3_bucket: str
    s3_prefix: str
    s3_endpoint_url: str | None
    fetch_workers: int = Field(gt=0)
    failed_fetch_mode: Literal["fixed", "original"] = Field(
        description="fixed: a failed S3 fetch is yielded as a fetch_failed record, so record_index stays the stream "
        "position; original: it is dropped uncounted and later record indices drift, as stream_the_stack.py did",
    )
    limit: int | None = Field(gt=0)

    @field_validator("revision")
    @classmethod
    def _pinned(cls, value: str) -> str:
        if value in {"main", "master", ""}:
            raise ValueError("pin a commit sha (or tag), not a moving branch")
        return value


Source = Annotated[Union[InstalledSource, HubSource], Field(discriminator="kind")]


class NearDedup(Strict):
    enabled: bool
    num_perm: int = Field(gt=0)
    threshold: float = Field(gt=0, le=1)
    shingle_size: int = Field(gt=0)


class Filters(Strict):
    """The original's filter chain, in its order (``stages/lib/filters.py``)."""

    license_mode: Literal["fixed", "original"] = Field(
        description="fixed: every licence of a file must be allowed, empty lists fall through to the next field; "
        "original: the first allowed entry wins (accepts ['GPL-3.0', 'MIT'] as MIT), as stream_the_stack.py did",
    )
    licenses: list[str]
    min_lines: int = Field(ge=0)
    max_lines: int = Field(gt=0)
    min_stars: int | None = Field(description="null disables the stars filter (sources without stars)")
    include_tests: bool
    max_bytes: int | None = Field(gt=0, description="null: no byte cap, as the original")
    near_dedup: NearDedup


class Fetch(Strict):
    sources: dict[str, Source] = Field(min_length=1)
    filters: Filters

    @field_validator("sources")
    @classmethod
    def _source_ids(cls, value: dict) -> dict:
        for key in value:
            if not RUN_ID_RE.fullmatch(key):
                raise ValueError(f"source id {key!r} may hold only letters, digits, '-' and '_'")
        return value


# --------------------------------------------------------------------------- subset


class Subset(Strict):
    """The original's draw: sorted paths, random.Random(seed).sample, HF train_test_split."""

    source: str = Field(description="the fetch source whose pool is sampled")
    seed: int
    test_size: float = Field(gt=0, lt=1)
    tiers: dict[str, int] = Field(min_length=1, description="tier name (the run ids' size label) -> number of files")

    _source = field_validator("source")(_check_names)

    @field_validator("tiers")
    @classmethod
    def _tier_names(cls, value: dict) -> dict:
        for key, size in value.items():
            if not TIER_RE.fullmatch(key):
                raise ValueError(f"tier {key!r} must look like '5k'")
            if size <= 1:
                raise ValueError(f"tier {key!r} needs at least 2 files, got {size}")
        return value


# --------------------------------------------------------------------------- transpile


class Transpile(Strict):
    packs: str = Field(description="folder of language packs under stages/lib/langpacks/, e.g. phase3")
    langs: list[str] = Field(min_length=1)
    tiers: list[str] = Field(min_length=1)
    scope: Literal["aware", "unaware"] = Field(
        description="aware: builtins translated only where they name the builtin, user names that collide with a "
        "target word escaped; unaware: every name token equal to a pack key translated, as Legesher's token backend",
    )
    min_bytes: int = Field(ge=0)
    max_bytes: int = Field(gt=0)
    verify_roundtrip: bool

    _langs = field_validator("langs")(_check_langs)
    _tiers = field_validator("tiers")(_check_tiers)
    _packs = field_validator("packs")(_check_names)


# --------------------------------------------------------------------------- translate


class Sampling(Strict):
    """Sampling params sent with every call; part of the response cache key."""

    temperature: float = Field(ge=0)
    p: float | None = Field(gt=0, le=1, description="nucleus sampling (top_p); null: the server's default")
    max_tokens: int = Field(gt=0)
    seed: int | None = Field(description="sent to servers that honour it; the cache is what makes reruns exact")


class Translate(Strict):
    """Condition 5: the condition-2 files with identifiers, comments, docstrings and strings translated."""

    backend: Literal["offline", "cohere", "openai"] = Field(
        description="offline: the project's glossaries (crude, labelled offline-glossary); cohere: the Cohere SDK, key "
        "from COHERE_API_KEY; openai: any OpenAI-compatible server (vllm, SGLang) at base_url, key from OPENAI_API_KEY"
    )
    model: str = Field(description="the model name sent to the backend (offline: the glossary label)")
    base_url: str | None = Field(description="null: the SDK's default endpoint")
    sampling: Sampling
    lead_lang: str = Field(description="translated first, on every row (dvc.yaml: translate-lead)")
    langs: list[str] = Field(description="translated after lead_lang (dvc.yaml: translate)")
    tiers: list[str] = Field(min_length=1)
    allowlist_from: str | None = Field(
        description="null: every language attempts every row; a language (the lead): the others attempt only the idx "
        "whose translation into it shipped, as the original's --idx-allowlist",
    )
    attempts: int = Field(ge=1, description="requests per chunk until its answer is usable (the original: 2)")
    keep_invalid: bool = Field(
        description="false: a file whose translation fails the AST/skeleton check is left out; true: it ships, "
        "marked in the ledger, as the original shipped its ~20% AST failures",
    )
    chunk_chars: int = Field(gt=0, description="segment characters per request, at most")
    chunk_segments: int = Field(gt=0, description="segments per request, at most")
    min_call_gap_s: float = Field(ge=0, description="pacing: least time between the starts of two calls")
    concurrency: int = Field(gt=0, description="files in flight; the output does not depend on it")
    timeout_s: float = Field(gt=0)
    max_retries: int = Field(ge=0, description="retries of one call on 429, 5xx, timeouts, connection errors")
    backoff_s: float = Field(ge=0, description="first retry delay, doubled per retry")
    max_backoff_s: float = Field(ge=0)
    min_success_rate: float = Field(
        ge=0, le=1,
        description="per split, the least share of attempted files whose answers were usable; below it the stage "
        "fails, naming the reasons (the original's lowest observed rate: ur validation, 381 of 500)",
    )
    max_connection_failures: int = Field(
        gt=0,
        description="connection failures in a row, across all files, after which the stage stops (the server is down)",
    )

    _langs = field_validator("langs")(_check_langs)
    _tiers = field_validator("tiers")(_check_tiers)

    @model_validator(mode="after")
    def _lead(self) -> "Translate":
        if not LANG_RE.fullmatch(self.lead_lang):
            raise ValueError(f"lead_lang: {self.lead_lang!r} must be an ISO 639 code such as 'ur'")
        if self.lead_lang in self.langs:
            raise ValueError(f"langs: {self.lead_lang!r} is the lead_lang; list only the languages translated after it")
        if self.allowlist_from not in (None, self.lead_lang):
            raise ValueError(f"allowlist_from: {self.allowlist_from!r} must be null or the lead_lang {self.lead_lang!r}")
        return self

    def all_langs(self) -> list[str]:
        return [self.lead_lang, *self.langs]


# --------------------------------------------------------------------------- condition 3


class Published(Strict):
    dataset: str
    config: str
    revision: str


class Native(Strict):
    """Condition 3. ``blend`` (smoke) rebuilds the original's blend from fetched native files
    and a transpiled fill; ``import`` (paper) reads the published corpus, a fixed artefact.
    The blend's inputs stay declared in import mode too, so dvc.yaml reads the same."""

    mode: Literal["blend", "import"]
    lang: str
    tier: str
    seed: int
    test_size: float = Field(gt=0, lt=1)
    source: str = Field(description="blend: the fetch source of native-language code")
    fill_from: str = Field(description="blend: the condition-2 dataset folder under data/ that supplies the fill")
    exclude_from: str = Field(description="blend: the dataset folder whose files the fill must not reuse")
    published: Published

    _lang = field_validator("lang")(_check_langs)
    _tier = field_validator("tier")(_check_tiers)
    _folders = field_validator("source", "fill_from", "exclude_from")(_check_names)


# --------------------------------------------------------------------------- the base model and the packaged datasets


class Base(Strict):
    """The base model. ``tiny`` (smoke): a tiny model of the base model's architecture built
    from ``config`` with ``seed``, and a tokenizer trained on ``tokenizer_datasets``, saved
    with save_pretrained under models/base/. ``hub`` (paper): ``repo`` at ``revision`` from
    the Hugging Face cache, never a DVC output."""

    kind: Literal["tiny", "hub"]
    repo: str
    revision: str
    seed: int
    vocab_size: int = Field(gt=256)
    config: dict[str, int | float] = Field(description="Cohere2Config overrides for the tiny model")
    tokenizer_datasets: list[str]
    pretrain: "Pretrain | None" = Field(
        description="tiny only: a short pre-training on the benchmark fixtures' training items (never the "
        "evaluation items), so that the smoke base answers in the benchmarks' format",
    )

    _datasets = field_validator("tokenizer_datasets")(_check_names)


class Pretrain(Strict):
    """The smoke base's answer-format pre-training (stages/lib/pretrain.py); the items are the
    train parts of evaluate.benchmarks in evaluate.data_langs, rendered with evaluate's templates."""

    steps: int = Field(gt=0)
    batch_size: int = Field(gt=0)
    learning_rate: float = Field(gt=0)
    max_length: int = Field(gt=0)
    seed: int


Base.model_rebuild()


class Package(Strict):
    """The training datasets: every dataset a run trains on, with token_count and a card."""

    datasets: list[str] = Field(min_length=1, description="generated from runs by tools.configure")

    _datasets = field_validator("datasets")(_check_names)


# --------------------------------------------------------------------------- training


class Lora(Strict):
    """The adapter: the original's r 16, alpha 32, no dropout, no bias, on every projection."""

    r: int = Field(gt=0)
    alpha: int = Field(gt=0)
    dropout: float = Field(ge=0, lt=1)
    bias: Literal["none", "all", "lora_only"]
    target_modules: list[str] = Field(min_length=1)


class Train(Strict):
    """QLoRA training of one adapter per run (the original's Unsloth QLoRA recipe and seeds).

    ``backend``: ``peft-cpu`` (plain PEFT in float32 on CPU; smoke), ``peft-bnb`` (PEFT on a
    bitsandbytes NF4 base, on a GPU), ``unsloth`` (the original's ``FastModel`` path, on a GPU).
    The original ran per-device batch 8 on ``world_size`` 2 GPUs (DDP), a global batch of 16
    with no accumulation. ``processes`` is how many this stage runs (torchrun); each accumulates
    ``world_size / processes`` micro-batches (:meth:`gradient_accumulation_steps`), so one
    device and two processes both train with the global batch 16, steps = ceil(train rows / 16).
    """

    backend: Literal["peft-cpu", "peft-bnb", "unsloth"]
    model_name: str = Field(description="model_config_name in training_metrics.json; the folder is adapters_dir")
    lora: Lora
    load_in_4bit: bool = Field(description="NF4 4-bit base (QLoRA); peft-cpu trains a float32 base")
    learning_rate: float = Field(gt=0)
    num_train_epochs: int = Field(gt=0)
    warmup_ratio: float = Field(ge=0, lt=1, description="warmup steps = ceil(warmup_ratio * steps)")
    lr_scheduler_type: Literal["cosine", "linear", "constant", "constant_with_warmup"]
    max_grad_norm: float = Field(gt=0)
    optim: str = Field(description="a transformers optimizer name: adamw_torch (CPU), paged_adamw_8bit (the original)")
    weight_decay: float = Field(ge=0)
    fp16: bool
    max_seq_length: int = Field(gt=0, description="each file one example, truncated to this many tokens")
    per_device_train_batch_size: int = Field(gt=0)
    world_size: int = Field(
        gt=0, description="the original's GPUs (DDP): global batch = per_device_train_batch_size x world_size"
    )
    processes: int = Field(
        gt=0,
        description="processes this stage trains with (DDP under torchrun, which `python -m stages.train` starts "
        "itself); each accumulates world_size / processes micro-batches per step: 1 on one device, 2 as the original",
    )
    logging_steps: int = Field(gt=0)
    max_steps: int | None = Field(gt=0, description="null: num_train_epochs over the train split; else a cap")
    adapters_dir: str = Field(
        description="the folder that holds one adapter folder per run: models/<model_name> (Phase 3, the card's "
        "tiny-aya-base/ prefix) or models (Phase 2, the card's flat top-level folders); dvc.yaml: outs",
    )
    save_steps: int | None = Field(
        gt=0,
        description="a resumable checkpoint every this many optimizer steps under logs/checkpoints/<run>/ "
        "(never a DVC output; removed after success); null: no checkpoints, a killed run starts over",
    )

    @field_validator("model_name")
    @classmethod
    def _folder(cls, value: str) -> str:
        if not RUN_ID_RE.fullmatch(value) or value == "base":
            raise ValueError(f"{value!r} must be a plain folder name under models/ other than 'base'")
        return value

    @field_validator("adapters_dir")
    @classmethod
    def _adapters_dir(cls, value: str) -> str:
        parts = value.split("/")
        if parts[0] != "models" or len(parts) > 2 or not all(RUN_ID_RE.fullmatch(p) for p in parts) or parts[1:] == ["base"]:
            raise ValueError(f"{value!r} must be 'models' or 'models/<folder>' (not models/base)")
        return value

    @model_validator(mode="after")
    def _backend(self) -> "Train":
        if self.backend == "peft-cpu":
            if self.load_in_4bit:
                raise ValueError("backend peft-cpu trains a float32 base: set load_in_4bit false")
            if self.fp16:
                raise ValueError("backend peft-cpu trains in float32: set fp16 false")
            if "8bit" in self.optim or "bnb" in self.optim:
                raise ValueError(f"backend peft-cpu cannot use the bitsandbytes optimizer {self.optim!r}")
        elif self.backend == "unsloth" and not self.load_in_4bit:
            raise ValueError("backend unsloth is the original's 4-bit path: set load_in_4bit true")
        if self.world_size % self.processes:
            raise ValueError(
                f"processes {self.processes} must divide world_size {self.world_size}: each process accumulates "
                "world_size / processes micro-batches, so the global batch stays per_device x world_size"
            )
        if self.save_steps is not None and self.save_steps % self.logging_steps:
            # the loss accumulated since the last log is not checkpointed: a resume there would log another mean
            raise ValueError(f"save_steps {self.save_steps} must be a multiple of logging_steps {self.logging_steps}")
        return self

    @property
    def global_batch_size(self) -> int:
        """The original's global batch: per-device batch x world size (8 x 2 = 16)."""
        return self.per_device_train_batch_size * self.world_size

    @property
    def gradient_accumulation_steps(self) -> int:
        """Micro-batches each process accumulates per step: world_size on one process, 1 under DDP of world_size."""
        return self.world_size // self.processes


# --------------------------------------------------------------------------- the run grid


# --------------------------------------------------------------------------- evaluation


class EvalSession(Strict):
    """One evaluate@<session> stage: what it evaluates, the weights it depends on and the folders it writes.
    ``condition`` and ``seed`` are the published layout's (the grid entry's ``condition_folder``, the run's
    seed; the baseline: ``baseline`` and none): every file name of the session is made from them."""

    condition: str = Field(description="the published condition folder: baseline, condition-3-zh-5k-native-code, ...")
    seed: int | None = Field(description="the run's seed; null for the baseline")
    weights: str = Field(description="dvc.yaml dep: the adapter folder, or models/base for the baseline")
    out: str = Field(description="metrics/eval/<phase>/conditions/<condition>/seed<N|none> (Phase 2: .../results)")
    reparsed: str = Field(description="where the reparse stage writes this session: metrics/reparsed/<the same layout>")

    _condition = field_validator("condition")(_check_names)

    @field_validator("weights", "out", "reparsed")
    @classmethod
    def _relative(cls, value: str) -> str:
        if not all(RUN_ID_RE.fullmatch(part) for part in value.split("/")):
            raise ValueError(f"{value!r} must be a relative path of plain names (no '..', no leading '/')")
        return value

    @property
    def adapter(self) -> str | None:
        """The adapter's subfolder under models/ (as the seed card loads it); None for the baseline."""
        return None if self.condition == BASELINE else self.weights.split("/", 1)[1]


class Served(Strict):
    """``evaluate.backend: served``: an OpenAI-compatible ``/v1/completions`` server (vLLM, SGLang,
    ``transformers serve``) scores the cells (stages/lib/served.py). The API key, where the server
    wants one, is read from the environment variable ``api_key_env`` only."""

    url: str = Field(description="the server's OpenAI base URL, ending in /v1")
    base_model: str = Field(
        description="the name the server serves the base under (vllm serve <path>: that path; or --served-model-name)",
    )
    adapter_model: str = Field(
        description="the name a session's adapter is served under, {session} and {adapter} (its folder under "
        "models/) filled in: vllm serve --enable-lora --lora-modules <name>=models/<adapter>",
    )
    prompt: Literal["token_ids", "text"] = Field(
        description="token_ids: this run's tokenisation is sent (vLLM, SGLang); text: for servers that take text "
        "only (transformers serve), checked against the server's prompt token count",
    )
    loglik_via: Literal["prompt_logprobs", "echo"] = Field(
        description="vLLM's prompt_logprobs, or OpenAI's echo + logprobs"
    )
    api_key_env: str = Field(description="environment variable with the API key, if any")
    concurrency: int = Field(gt=0, description="requests in flight; the results do not depend on it")
    timeout_s: float = Field(gt=0)
    retries: int = Field(ge=0, description="tries after a transient failure (no connection, 429, 502-504)")
    backoff_s: float = Field(ge=0, description="the wait before the first retry, doubled on each")

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not re.fullmatch(r"https?://[^\s/]+(/[^\s]*)?", value):
            raise ValueError(f"{value!r} must be an http(s) URL such as http://127.0.0.1:8000/v1")
        return value.rstrip("/")

    @field_validator("adapter_model")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        try:
            value.format(session="s", adapter="a")
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(f"{value!r}: only {{session}} and {{adapter}} may be filled in ({error})") from None
        return value


class Evaluate(Strict):
    """Scoring the baseline and every adapter. The benchmarks
    themselves are data: stages/lib/tasks/<name>.yaml."""

    protocol: Literal["phase3", "phase2"] = Field(description="which templates of the benchmark definitions")
    backend: Literal["hf", "vllm", "served"]
    benchmarks: list[str] = Field(min_length=1, description="definitions in stages/lib/tasks/, in loop order")
    tasks_dirs: list[str] = Field(
        description="more folders of benchmark definitions (<name>.yaml), searched before stages/lib/tasks/"
    )
    templates: list[str] = Field(min_length=1, description="template wordings, e.g. template1, template2")
    data_langs: list[str] = Field(min_length=1)
    instr_langs: list[str] = Field(min_length=1)
    anchor_lang: str = Field(
        description="the baseline and runs trained on it get every instr_lang; others this and their own"
    )
    source: Literal["fixtures", "hub"] = Field(description="fixtures: local files in the Hub's layout (smoke)")
    fixtures_dir: str
    n_samples: int | None = Field(gt=0, description="the first N rows only (the original's _smoke<N>)")
    max_length: int = Field(gt=0, description="prompts right-truncated to this many tokens")
    max_new_tokens: dict[str, int] = Field(description="per benchmark, with a 'default'")
    batch_size: int = Field(gt=0)
    dtype: Literal["float32", "float16", "bfloat16"]
    load_in_4bit: bool
    extractor: str = Field(description="stages/lib/extractors.py; reparse applies the refined one")
    loglik: bool = Field(description="also score each cell by log-likelihood of the choices")
    xnli_skip_empty: bool = Field(
        description="Phase 2 only: the original's rescore_xnli.py left XNLI rows with an empty output out of the "
        "denominator; false (every profile) counts them as wrong",
    )
    seed: int
    processes: int = Field(
        gt=0,
        description="worker processes a session's cells are split over (one GPU each where there are GPUs); "
        "the merged files are byte-identical to one process's, so dvc.yaml does not track it",
    )
    split_by: Literal["cell", "template"] = Field(
        description="cell: cells dealt round-robin to the workers; template: one template wording per worker "
        "(the original: one template per GPU)",
    )
    served: Served = Field(description="the server of backend: served")
    sessions: dict[str, EvalSession] = Field(default_factory=dict, description="generated by tools.configure")

    _langs = field_validator("data_langs", "instr_langs", "anchor_lang")(_check_langs)
    _names = field_validator("benchmarks", "templates")(_check_names)

    @field_validator("sessions")
    @classmethod
    def _session_ids(cls, value: dict) -> dict:
        _check_names(list(value))
        return value

    @model_validator(mode="after")
    def _phase2_one_wording(self) -> "Evaluate":
        if self.protocol == "phase2" and len(self.templates) != 1:
            raise ValueError("protocol phase2 has one template wording (templates: [phase2])")
        return self

    @model_validator(mode="after")
    def _vllm_not_4bit(self) -> "Evaluate":
        if self.backend == "vllm" and self.load_in_4bit:
            # vLLM 0.32 has no bitsandbytes loader: it would serve the 16-bit base while eval_config.json said 4-bit
            raise ValueError("backend vllm cannot load the base in 4-bit (vLLM 0.32 has no bitsandbytes loader): "
                             "set load_in_4bit false (vLLM then serves the dtype base), or use backend hf")
        return self

    @field_validator("max_new_tokens")
    @classmethod
    def _default_tokens(cls, value: dict) -> dict:
        if "default" not in value:
            raise ValueError("needs a 'default' entry")
        return value


class GridEntry(Strict):
    """One block of the study's design: a condition over languages, size tiers and seeds."""

    condition: int = Field(ge=0)
    langs: list[str] = Field(min_length=1)
    tiers: list[str] = Field(min_length=1)
    seeds: list[int] = Field(min_length=1)
    run_name: str = Field(description="run id (the published adapter folder) template with {lang}, {tier} and {seed}")
    condition_folder: str = Field(
        description="the published results folder of the condition (conditions/<condition_folder>/...), "
        "template with {lang} and {tier}"
    )
    dataset: str = Field(description="training dataset name template with {lang} and {tier}")

    _langs = field_validator("langs")(_check_langs)
    _tiers = field_validator("tiers")(_check_tiers)

    @field_validator("run_name", "condition_folder", "dataset")
    @classmethod
    def _template(cls, value: str) -> str:
        # the placeholders stand for names checked above; what is around them must be a plain name too
        _check_names(value.replace("{lang}", "x").replace("{tier}", "x").replace("{seed}", "0"))
        return value


class Run(Strict):
    condition: int
    data_lang: str
    tier: str
    seed: int
    dataset: str

    _lang = field_validator("data_lang")(_check_langs)
    _names = field_validator("tier", "dataset")(_check_names)


def _grid_runs(grid: list[GridEntry]):
    """(run id, condition folder, run) of every run of the grid, in grid order; a run id made twice is an error."""
    seen: set[str] = set()
    for entry in grid:
        for lang in entry.langs:
            for tier in entry.tiers:
                for seed in entry.seeds:
                    fields = {"lang": lang, "tier": tier, "seed": seed}
                    run_id = entry.run_name.format(**fields)
                    if run_id in seen:
                        raise ValueError(f"grid: run id {run_id!r} is produced twice")
                    seen.add(run_id)
                    run = Run(condition=entry.condition, data_lang=lang, tier=tier, seed=seed,
                              dataset=entry.dataset.format(**fields))
                    yield run_id, entry.condition_folder.format(**fields), run


def expand_grid(grid: list[GridEntry]) -> dict[str, Run]:
    """The run grid as the study ran it, keyed by the published adapter names."""
    return {run_id: run for run_id, _, run in _grid_runs(grid)}


def evaluation_sessions(phase: str, adapters_dir: str, grid: list[GridEntry]) -> dict[str, EvalSession]:
    """The baseline and every run of the grid: what each evaluates, its weights and its published-layout folders
    (stages/lib/paths.py: the phase decides the layout, and nothing else decides it)."""
    def session(condition: str, seed: int | None, weights: str) -> EvalSession:
        where = eval_folder(phase, condition, seed)
        return EvalSession(condition=condition, seed=seed, weights=weights, out=f"metrics/eval/{where}",
                           reparsed=f"metrics/reparsed/{where}")

    sessions = {BASELINE: session(BASELINE, None, "models/base")}
    for run_id, condition, run in _grid_runs(grid):
        sessions[run_id] = session(condition, run.seed, f"{adapters_dir}/{run_id}")
    return sessions


# --------------------------------------------------------------------------- LLINK


class LlinkData(Strict):
    """The parallel pairs. ``synthetic`` (smoke): English templates and a Khmer-script foreign side
    (stages/lib/llink/data.py); ``jsonl`` (paper): the user's ``{"english", "foreign"}`` file at ``path``."""

    source: Literal["synthetic", "jsonl"]
    path: str | None = Field(description="jsonl: the parallel file, e.g. ParaCrawl en-km")
    n_train: int = Field(gt=0)
    n_dev: int = Field(gt=1, description="dev = the first n_dev pairs after the seeded shuffle (the original)")
    seed: int
    lexicon_seed: int = Field(description="synthetic: the foreign pseudo-words")
    max_foreign_chars: int = Field(gt=0, description="the foreign side clipped to this many characters")

    @model_validator(mode="after")
    def _path(self) -> "LlinkData":
        if self.source == "jsonl" and not self.path:
            raise ValueError("source jsonl needs a path")
        return self


class LlinkEncoder(Strict):
    """The frozen encoder: ``repo`` at ``revision`` (pretrained), or a tiny XLM-R of these sizes."""

    repo: str
    revision: str
    hidden_size: int = Field(gt=0)
    intermediate_size: int = Field(gt=0)
    num_layers: int = Field(gt=0)
    num_heads: int = Field(gt=0)
    max_positions: int = Field(gt=0)
    initializer_range: float = Field(gt=0)


class LlinkDecoder(LlinkEncoder):
    """The frozen decoder: ``repo`` at ``revision`` (pretrained), or a tiny Llama with a BPE of ``vocab_size``."""

    num_kv_heads: int = Field(gt=0)
    vocab_size: int = Field(gt=300, description="tiny: the byte-level BPE trained on the English side")


class LlinkBackbones(Strict):
    kind: Literal["tiny", "pretrained"]
    seed: int = Field(description="tiny: the models' initialisation; both: the reserved tokens' new rows")
    encoder: LlinkEncoder
    decoder: LlinkDecoder
    max_src_tokens: int = Field(gt=1, description="teacher text: BOS + text truncated, then <foreign_emb>")
    max_foreign_tokens: int = Field(gt=0, description="encoder input length")
    batch_size: int = Field(gt=0, description="feature extraction batch")


class LlinkStageA(Strict):
    """The contrastive projector of LLINK Stage A. The contrastive batch is the micro-batch; an optimizer
    step accumulates ``grad_accum`` of them (the original: 8 x 16)."""

    steps: int = Field(gt=0)
    micro_batch: int = Field(gt=1)
    grad_accum: int = Field(gt=0)
    lr: float = Field(gt=0)
    min_lr: float = Field(ge=0)
    warmup_steps: int = Field(ge=0)
    betas: list[float] = Field(min_length=2, max_length=2)
    eps: float = Field(gt=0)
    weight_decay: float = Field(ge=0)
    clip: float = Field(gt=0)
    tau_start: float = Field(gt=0)
    tau_end: float = Field(gt=0)
    queue_size: int = Field(gt=0)
    hard_negatives: int = Field(ge=0)
    align_cos_w: float = Field(ge=0)
    lognorm_w: float = Field(ge=0)
    hidden_mult: int = Field(gt=0)
    dropout: float = Field(ge=0, lt=1)
    eval_every: int = Field(gt=0)
    eval_pairs: int = Field(gt=1)
    seed: int
    eval_dropout: bool = Field(description="true: the original's evaluation with dropout on (an ablation)")


class LlinkLora(Strict):
    r: int = Field(gt=0)
    alpha: int = Field(gt=0)
    dropout: float = Field(ge=0, lt=1)
    target_modules: list[str] = Field(min_length=1)


class LlinkUsage(Strict):
    """The ablation-based usage term, every ``every`` optimizer steps. ``sign: paper`` penalises
    relu(L_inj - L_abl + margin); ``repo`` is the original code's inverted relu(L_abl - L_inj)."""

    every: int = Field(ge=0, description="0: never")
    weight: float = Field(ge=0)
    sign: Literal["paper", "repo"]
    margin: float = Field(ge=0)


class LlinkStageB(Strict):
    """K slots + LoRA (LLINK Stage B). The original's bugs are fixed in the profiles and kept as ablations:
    ``usage.sign: repo``, ``label_mask: half``, ``gate_clamp_infer: 0.4``, ``prompt: drift``,
    ``placeholder_rows: reseed`` (and ``llink.eval.eval_dropout``)."""

    steps: int = Field(gt=0)
    micro_batch: int = Field(gt=1)
    grad_accum: int = Field(gt=0)
    warmup_frac: float = Field(ge=0, lt=1)
    lr_lora: float = Field(gt=0)
    lr_adapter: float = Field(gt=0, description="adapter and expander")
    lr_bow: float = Field(gt=0)
    lr_scale: float = Field(gt=0)
    weight_decay: float = Field(ge=0)
    clip: float = Field(gt=0)
    lora: LlinkLora
    align_cos_w: float = Field(ge=0)
    info_nce_w: float = Field(ge=0)
    info_nce_tau: float = Field(gt=0)
    bow_loss_w: float = Field(ge=0)
    usage: LlinkUsage
    gate_init: float
    gate_clamp: float = Field(gt=0, le=1)
    gate_clamp_infer: float | None = Field(
        gt=0, le=1, description="null: gate_clamp at inference too; 0.4: the original's split"
    )
    label_mask: Literal["target", "half"] = Field(
        description="target: target + EOS exactly; half: the original's first-half mask, no EOS"
    )
    prompt: Literal["shared", "drift"] = Field(
        description="drift: evaluation uses the original's different inference prompt"
    )
    placeholder_rows: Literal["snapshot", "reseed"] = Field(
        description="reseed: the <f_i> rows are redrawn at evaluation, as the original's every process"
    )
    seq_len: int = Field(gt=0)
    seed: int


class LlinkEval(Strict):
    n_gen: int = Field(gt=0, description="dev rows decoded greedily")
    max_new_tokens: int = Field(gt=0)
    batch_size: int = Field(gt=1)
    gate_boosts: list[float] = Field(min_length=1)
    eval_dropout: bool = Field(description="true: the original's dropout at evaluation (an ablation)")
    n_probe: int = Field(gt=0, description="dev rows of the lexeme probe")
    probe_top: int = Field(gt=0)
    seed: int


class Llink(Strict):
    """LLINK (a language as a modality): dvc.yaml llink_* stages, stages/lib/llink/."""

    k_slots: int = Field(gt=0)
    threads: int = Field(gt=0, description="torch threads: a fixed count, so reruns write the same bytes")
    device: Literal["cpu", "cuda"] = Field(
        description="where the llink stages run torch: cpu (smoke, byte-identical reruns) or cuda "
        "(paper: Llama-3.2-1B for 20k + 939 steps; GPU kernels are not bit-exact)",
    )
    data: LlinkData
    backbones: LlinkBackbones
    stage_a: LlinkStageA
    stage_b: LlinkStageB
    eval: LlinkEval



# --------------------------------------------------------------------------- the published study


class PublishedRepo(Strict):
    """A Hub repository of the study's published outputs, read at one commit."""

    repo: str = Field(min_length=1)
    revision: str  # a commit sha; PIN-ME, a branch or a tag is refused when enabled


class Published(Strict):
    """The published experiments and adapters as pipeline stages (stages/import_published.py,
    stages/import_adapters.py, reparse/report_published in dvc.yaml). Disabled, the stages only write
    a status file saying so (the smoke default: no network); enabled, the revisions must be pinned."""

    enabled: bool
    experiments: PublishedRepo
    adapters: PublishedRepo


# --------------------------------------------------------------------------- the whole file


class Reproduction(Strict):
    """stages/reproduction.py: our report against a published one in the same format. ``published_report``
    is that folder (e.g. ``reports/published``, which the published-import stages write); null (smoke, and
    until someone imports the published run) makes the stage write a ``skipped`` status and nothing else."""

    published_report: str | None
    scoring: Literal["refined", "strict"] = Field(
        description="the accuracy compared: refined (Phase 3, the paper's), strict (Phase 2 has no other)")


class Params(Strict):
    scale: Literal["smoke", "paper"]
    phase: Literal["phase3", "phase2"]
    fetch: Fetch
    subset: Subset
    transpile: Transpile
    translate: Translate
    native: Native
    base: Base
    package: Package
    train: Train
    evaluate: Evaluate
    llink: Llink
    published: Published
    grid: list[GridEntry] = Field(min_length=1)
    runs: dict[str, Run] = Field(min_length=1)
    reproduction: Reproduction

    @field_validator("runs")
    @classmethod
    def _run_ids(cls, value: dict) -> dict:
        for key in value:
            if not RUN_ID_RE.fullmatch(key):
                raise ValueError(f"run id {key!r} may hold only letters, digits, '-' and '_' (no '.' or '@')")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "Params":
        if self.subset.source not in self.fetch.sources:
            raise ValueError(f"subset.source {self.subset.source!r} is not one of fetch.sources")
        for tier in self.transpile.tiers:
            if tier not in self.subset.tiers:
                raise ValueError(f"transpile.tiers: {tier!r} is not one of subset.tiers")
        for lang in self.translate.all_langs():
            if lang not in self.transpile.langs:
                raise ValueError(f"translate: language {lang!r} is not one of transpile.langs")
        for tier in self.translate.tiers:
            if tier not in self.transpile.tiers:
                raise ValueError(f"translate.tiers: {tier!r} is not one of transpile.tiers")
        if self.native.tier not in self.subset.tiers:
            raise ValueError(f"native.tier: {self.native.tier!r} is not one of subset.tiers")
        if self.native.source not in self.fetch.sources:
            raise ValueError(f"native.source {self.native.source!r} is not one of fetch.sources")
        wanted = sorted({run.dataset for run in self.runs.values()})
        if self.package.datasets != wanted:
            raise ValueError(
                f"package.datasets must list the runs' datasets {wanted}; regenerate it with `python -m tools.configure`"
            )
        expected = expand_grid(self.grid)
        if set(expected) != set(self.runs) or any(expected[k] != self.runs[k] for k in expected):
            missing = sorted(set(expected) - set(self.runs))
            extra = sorted(set(self.runs) - set(expected))
            raise ValueError(
                "runs does not match grid (missing %s, extra %s); regenerate it with "
                "`python -m tools.configure`" % (missing or "none", extra or "none")
            )
        made = evaluation_sessions(self.phase, self.train.adapters_dir, self.grid)
        sessions = {key: made[key] for key in (BASELINE, *self.runs)}  # in the runs' order
        if list(self.evaluate.sessions.items()) != list(sessions.items()):
            raise ValueError(
                "evaluate.sessions must be the baseline plus every run, in order; regenerate it with "
                "`python -m tools.configure`"
            )
        return self


def _format_errors(path: Path, error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"] if not str(part).startswith("function-"))
        # discriminated unions add the tag ('installed'/'hub') to the location: drop it for readability
        lines.append(f"{path}: {key or '<top>'}: {item['msg']}")
    return "\n".join(lines)


def parse_params(data: object, path: Path | str = "params.yaml") -> Params:
    path = Path(path)
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: the top level must be a mapping of sections")
    try:
        return Params.model_validate(data)
    except ValidationError as error:
        raise ParamsError(_format_errors(path, error)) from None


def load_params(path: Path | str = "params.yaml") -> Params:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"{path}: no such params file") from None
    except yaml.YAMLError as error:
        raise ParamsError(f"{path}: not valid YAML: {error}") from None
    return parse_params(data, path)
