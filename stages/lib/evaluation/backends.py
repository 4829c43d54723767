"""The evaluation backends and the distributions that decide a session's bytes.

Backends (``evaluate.backend``): ``hf`` (transformers ``generate``, batched; the default, CPU
or GPU), ``vllm`` (GPU; the ``vllm`` package, the adapter as a LoRA request) and ``served``
(an OpenAI-compatible server already running, e.g. ``vllm serve`` with the adapters as LoRA
modules: stages/lib/served.py; the tokenisation stays this module's). The vLLM path is written
against vLLM's public API but has not been run here (no GPU in this environment).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from stages.lib.base_weights import base_source
from stages.lib.evaluation import EvaluateError
from stages.lib.evaluation.adapters import check_loaded
from stages.lib.evaluation.grid import Session
from stages.lib.loading import load_adapter, load_causal_lm, load_tokenizer, nf4_config, require_safetensors
from stages.lib.params import Evaluate, Params
from stages.lib.served import ServedModel, model_name
from stages.lib.tasks import find_benchmark

EVAL_PACKAGES = ("accelerate", "datasets", "peft", "safetensors", "tokenizers", "torch", "transformers")


def eval_packages(evaluate: dict) -> tuple[str, ...]:
    """The distributions that decide a session's bytes: bitsandbytes only for a 4-bit base, vllm only for its
    backend, so that a plain install and a dev install (which carries bitsandbytes) write the same bytes."""
    extra = ("bitsandbytes",) * bool(evaluate.get("load_in_4bit")) + ("vllm",) * (evaluate.get("backend") == "vllm")
    return tuple(sorted(EVAL_PACKAGES + extra))


class Backend:
    """What every backend shares: the original's tokenisation, and log-likelihood choice.

    A backend implements ``generate`` and ``_scores``: the summed log-probability of each
    (context ids, continuation ids) pair's continuation."""

    def __init__(self, tokenizer, evaluate: Evaluate):
        self.tokenizer = tokenizer
        self.evaluate = evaluate
        # the last encode call's prompts (a block's, which choose() then encodes again cell by cell) and every
        # choice's ids: tokenising is a pure function of the text, and a tenth of a smoke session's CPU went to it
        self._encoded: dict[str, list[int]] = {}
        self._choice_ids: dict[str, list[int]] = {}

    def encode(self, prompts: Sequence[str]) -> list[list[int]]:
        """Special tokens added, no padding, right-truncated at ``max_length`` (as the original)."""
        if not all(prompt in self._encoded for prompt in prompts):
            encoded = self.tokenizer(
                list(prompts), padding=False, truncation=True, max_length=self.evaluate.max_length,
                add_special_tokens=True,
            )
            self._encoded = dict(zip(prompts, encoded["input_ids"]))
        return [list(self._encoded[prompt]) for prompt in prompts]

    def choose(self, prompts: Sequence[str], choices: Sequence[str]) -> list[str]:
        """Per prompt, the choice whose continuation ``" " + choice`` has the highest summed log-probability."""
        contexts = self.encode(prompts)
        for choice in choices:
            if choice not in self._choice_ids:
                self._choice_ids[choice] = self.tokenizer(" " + choice, add_special_tokens=False)["input_ids"]
        continuations = [self._choice_ids[choice] for choice in choices]
        scores = self._scores([(ctx, cont) for ctx in contexts for cont in continuations])
        best = []
        for index in range(len(contexts)):
            row_scores = scores[index * len(choices) : (index + 1) * len(choices)]
            best.append(choices[max(range(len(choices)), key=row_scores.__getitem__)])  # ties: the first choice
        return best

    def _scores(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]]) -> list[float]:
        raise NotImplementedError


# generate() keeps its prompts' first-step log-probabilities for choose() up to this size
PREFILL_MEMO_BYTES = 64 * 2**20


class HFBackend(Backend):
    """transformers ``generate`` over left-padded batches, and summed log-likelihoods.

    A block of cells (stages/lib/evaluation/blocks.py) generates over its prompts, then each cell
    scores its choices over its own prompts: the log-probabilities of a choice's first token are
    those of generation's first step. So ``generate`` keeps that step's log-probabilities of each
    prompt (its prefill; the last call's only, while prompts x vocabulary x 4 bytes fits
    ``PREFILL_MEMO_BYTES``: every smoke block, at most 256 prompts of a 4,096-token vocabulary; 64
    prompts of tiny-aya's 262k) and ``choose`` runs no second forward over those prompts. The kept values equal a separate forward's to float32 rounding, not bit for bit: under
    MKL's COMPATIBLE branch (stages/lib/numerics.py) a product's last bits depend on the batch it is
    computed in. Both paths are deterministic, so the outputs still rebuild byte for byte
    (tests/test_evaluate.py)."""

    def __init__(self, model, tokenizer, evaluate: Evaluate):
        import torch

        super().__init__(tokenizer, evaluate)
        self.torch = torch
        self.model = model
        self.device = next(model.parameters()).device
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.prefill: dict[tuple[int, ...], object] = {}  # prompt ids -> first-step log-probabilities

    def _left_padded(self, batch: Sequence[Sequence[int]]):
        width = max(len(ids) for ids in batch)
        input_ids = [[self.pad_id] * (width - len(ids)) + list(ids) for ids in batch]
        mask = [[0] * (width - len(ids)) + [1] * len(ids) for ids in batch]
        tensor = self.torch.tensor
        return tensor(input_ids, device=self.device), tensor(mask, device=self.device)

    def generate(self, prompts: Sequence[str], max_new_tokens: int) -> list[str]:
        """Batches of prompts of similar length: the prompts in order of token count (ties in their own
        order), cut into ``batch_size`` batches, the outputs returned in the prompts' order. A block of
        cells mixes benchmarks whose prompts differ several-fold in length; batched in the given order,
        each batch would be padded to its longest prompt (and run until its slowest row stops)."""
        ids = self.encode(prompts)
        keep = len(ids) * self.model.config.get_text_config().vocab_size * 4 <= PREFILL_MEMO_BYTES
        self.prefill = {}
        order = sorted(range(len(ids)), key=lambda index: len(ids[index]))  # a pure function of the prompts
        outputs: list[str] = [""] * len(ids)
        for start in range(0, len(ids), self.evaluate.batch_size):
            rows = order[start : start + self.evaluate.batch_size]
            batch = [ids[index] for index in rows]
            input_ids, mask = self._left_padded(batch)
            with self.torch.inference_mode():
                generated = self.model.generate(
                    input_ids=input_ids,
                    attention_mask=mask,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    temperature=None,
                    top_p=None,
                    top_k=None,
                    use_cache=True,
                    pad_token_id=self.tokenizer.eos_token_id,
                    return_dict_in_generate=True,
                    output_logits=keep,
                )
            if keep:
                first = self.torch.nn.functional.log_softmax(generated.logits[0].float(), dim=-1)
                for row, prompt_ids in enumerate(batch):
                    self.prefill.setdefault(tuple(prompt_ids), first[row])
            width = input_ids.shape[1]
            for index, row in zip(rows, generated.sequences.tolist()):
                outputs[index] = self.tokenizer.decode(row[width:], skip_special_tokens=True).strip()
        return outputs

    def _scores(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]]) -> list[float]:
        """Each distinct context runs once, and its last position scores every continuation's first
        token: a prompt with K one-token choices costs one forward, not K (a third of evaluate's
        time went to the K-fold repeats). Tokens after the first come from a forward over context +
        continuation, only for the continuations that have them."""
        firsts = self._first_token_logprobs(pairs)
        rest = iter(self._later_token_logprobs([(ctx, cont) for ctx, cont in pairs if len(cont) > 1]))
        return [first + (next(rest) if len(cont) > 1 else 0.0) for first, (_, cont) in zip(firsts, pairs)]

    def _forward_last(self, batch: Sequence[Sequence[int]], keep: int):
        """Log-probabilities at the last ``keep`` positions of left-padded sequences: [batch, keep, vocab]."""
        torch = self.torch
        input_ids, mask = self._left_padded(batch)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            logits = self.model(
                input_ids=input_ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep
            ).logits.float()
        return torch.nn.functional.log_softmax(logits, dim=-1)

    def _first_token_logprobs(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]]) -> list[float]:
        contexts = list(dict.fromkeys(tuple(ctx) for ctx, _ in pairs))
        wanted: dict[tuple[int, ...], dict[int, float]] = {ctx: {} for ctx in contexts}
        for ctx, cont in pairs:
            if cont:
                wanted[tuple(ctx)][cont[0]] = 0.0
        for ctx in contexts:
            if ctx in self.prefill:  # generation's first step over this prompt
                for token in wanted[ctx]:
                    wanted[ctx][token] = float(self.prefill[ctx][token])
        contexts = [ctx for ctx in contexts if ctx not in self.prefill]
        size = self.evaluate.batch_size
        for start in range(0, len(contexts), size):
            chunk = contexts[start : start + size]
            logprobs = self._forward_last(chunk, 1)
            for row, ctx in enumerate(chunk):
                for token in wanted[ctx]:
                    wanted[ctx][token] = float(logprobs[row, 0, token])
        return [wanted[tuple(ctx)][cont[0]] if cont else 0.0 for ctx, cont in pairs]

    def _later_token_logprobs(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]]) -> list[float]:
        """Summed log-probabilities of each continuation's tokens after the first. Sequences are
        left-padded, so every continuation ends at the last position and only the last
        ``longest continuation`` logits are computed (``logits_to_keep``)."""
        if not pairs:
            return []
        torch = self.torch
        keep = max(len(cont) for _, cont in pairs)
        scores: list[float] = []
        for start in range(0, len(pairs), self.evaluate.batch_size):
            chunk = pairs[start : start + self.evaluate.batch_size]
            logprobs = self._forward_last([list(ctx) + list(cont) for ctx, cont in chunk], keep)
            for row, (_, cont) in enumerate(chunk):
                # the logits at kept position j predict the token at kept position j + 1
                steps = torch.arange(keep - len(cont), keep - 1, device=self.device)
                targets = torch.tensor(cont[1:], device=self.device)
                scores.append(float(logprobs[row, steps, targets].sum()))
        return scores


# vLLM 0.32's allowed max_lora_rank values (vllm/config/lora.py, MaxLoRARanks)
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def vllm_lora_rank(adapter_path: Path | None) -> int:
    """The adapter's own rank (``r``, or the largest of ``rank_pattern``) from its adapter_config.json,
    rounded up to the next rank vLLM accepts; 16 (vLLM's default) without an adapter."""
    if adapter_path is None:
        return 16
    path = adapter_path / "adapter_config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise EvaluateError(f"{path}: cannot read the adapter's rank ({error})") from None
    rank = max([int(config.get("r") or 0), *(int(r) for r in (config.get("rank_pattern") or {}).values())])
    fitting = [allowed for allowed in VLLM_LORA_RANKS if allowed >= rank]
    if rank < 1 or not fitting:
        raise EvaluateError(f"{path}: LoRA rank {rank} is outside what vLLM accepts ({VLLM_LORA_RANKS})")
    return fitting[0]


def import_vllm():
    """``vllm`` in this process, or a clear error: vLLM 0.27.1-0.32.0 pin torch 2.13 but need numpy < 2.4 on
    Python <= 3.12 (mistral_common), so it does not install beside the project's pins."""
    try:
        import vllm
    except ImportError as error:
        raise EvaluateError(
            f"evaluate.backend vllm: cannot import vllm ({error}). vLLM does not install beside this project's "
            "pins (numpy 2.4 against mistral_common's numpy<2.4); serve the model from vLLM's own environment "
            "(`vllm serve ... --enable-lora`) and evaluate through the served backend (README, paper recipe)"
        ) from None
    return vllm


class VLLMBackend(Backend):
    """vLLM with the adapter as a LoRA request; the same pre-tokenised, truncated prompts."""

    def __init__(self, source: str, revision: str | None, tokenizer, evaluate: Evaluate, adapter_path: Path | None):
        import_vllm()
        from vllm import LLM
        from vllm.lora.request import LoRARequest

        super().__init__(tokenizer, evaluate)
        self.llm = LLM(
            model=source,
            revision=revision,
            tokenizer=source,
            dtype=evaluate.dtype,
            seed=evaluate.seed,
            max_model_len=evaluate.max_length + max(evaluate.max_new_tokens.values()) + 16,
            enable_lora=adapter_path is not None,
            max_lora_rank=vllm_lora_rank(adapter_path),
            trust_remote_code=False,
            load_format="safetensors",
        )
        if adapter_path is not None:
            require_safetensors(adapter_path, "adapter_model")
        self.lora = LoRARequest("adapter", 1, str(adapter_path)) if adapter_path is not None else None

    def generate(self, prompts: Sequence[str], max_new_tokens: int) -> list[str]:
        from vllm import SamplingParams

        sampling = SamplingParams(temperature=0.0, max_tokens=max_new_tokens)
        requests = [{"prompt_token_ids": ids} for ids in self.encode(prompts)]
        done = self.llm.generate(requests, sampling, lora_request=self.lora, use_tqdm=False)
        return [self.tokenizer.decode(out.outputs[0].token_ids, skip_special_tokens=True).strip() for out in done]

    def _scores(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]]) -> list[float]:
        from vllm import SamplingParams

        requests = [{"prompt_token_ids": list(ctx) + list(cont)} for ctx, cont in pairs]
        sampling = SamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=0)
        done = self.llm.generate(requests, sampling, lora_request=self.lora, use_tqdm=False)
        return [
            sum(step[token].logprob for step, token in zip(out.prompt_logprobs[len(ctx) :], cont))
            for out, (ctx, cont) in zip(done, pairs)
        ]


class ServedBackend(Backend):
    """A model behind an OpenAI-compatible server (stages/lib/served.py), fed this run's tokenisation."""

    def __init__(self, model: ServedModel, tokenizer, evaluate: Evaluate):
        super().__init__(tokenizer, evaluate)
        self.model = model

    def generate(self, prompts: Sequence[str], max_new_tokens: int) -> list[str]:
        return self.model.generate(prompts, self.encode(prompts), max_new_tokens)

    def _scores(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]]) -> list[float]:
        return self.model.scores(pairs)


def load_backend(params: Params, session: Session, base_dir: Path, models_dir: Path):
    evaluate = params.evaluate
    tokenizer = load_tokenizer(base_dir)  # tokenizer.json's own pipeline (stages/lib/loading.py)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    if evaluate.backend == "served":  # the server holds the weights: no base to load here
        model = ServedModel(evaluate.served, model_name(evaluate.served, session.id, session.adapter))
        probe = "The answer is"
        loglik = evaluate.loglik and any(find_benchmark(name, evaluate.tasks_dirs).choices for name in evaluate.benchmarks)
        model.check(probe, Backend(tokenizer, evaluate).encode([probe])[0], loglik)
        return ServedBackend(model, tokenizer, evaluate)
    source, pinned = base_source(params.base, base_dir)  # pinned: {"revision": ...} for a Hub base
    if evaluate.backend == "vllm":
        adapter = models_dir / session.adapter if session.adapter else None
        return VLLMBackend(source, pinned.get("revision"), tokenizer, evaluate, adapter)

    import torch

    kwargs: dict = {"dtype": getattr(torch, evaluate.dtype), **pinned}
    if evaluate.load_in_4bit:  # NF4 with double quantisation, as training loads it (stages/lib/loading.py)
        kwargs["quantization_config"] = nf4_config(kwargs["dtype"])
        kwargs["device_map"] = {"": 0 if torch.cuda.is_available() else "cpu"}
    torch.manual_seed(evaluate.seed)  # the original's EVAL_RNG_SEED; irrelevant under greedy decoding
    model = load_causal_lm(source, **kwargs)
    if session.adapter:
        # exactly as the seed card loads a published adapter (safetensors only)
        model = load_adapter(model, models_dir, session.adapter)
        check_loaded(model, models_dir / session.adapter / "adapter_model.safetensors", session.id)
    if not evaluate.load_in_4bit and torch.cuda.is_available():
        model = model.to("cuda")
    model.eval()
    return HFBackend(model, tokenizer, evaluate)

