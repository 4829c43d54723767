"""Loading base models and adapters: safetensors weights only, never remote code.

A pickled checkpoint (``pytorch_model.bin``, ``adapter_model.bin``) runs code when it is
unpickled, and ``trust_remote_code`` runs a repository's own Python. Neither is ever needed
here: the base is a stock ``transformers`` architecture saved as safetensors, and every
adapter, trained or imported, is PEFT's ``adapter_model.safetensors``. So every load is to go
through one of these functions:

- :func:`load_causal_lm`: ``AutoModelForCausalLM.from_pretrained(..., use_safetensors=True,
  trust_remote_code=False)``; a local folder without ``model.safetensors`` (or its sharded
  index) is refused, with a message naming the folder, before ``transformers`` opens it;
- :func:`load_adapter`: ``PeftModel.from_pretrained`` falls back to ``adapter_model.bin``
  when the safetensors file is missing and has no option to forbid that, so the adapter
  folder is checked first.

- :func:`load_tokenizer`: the folder's ``tokenizer.json`` run by its own pipeline.

Tokenizers hold no weights, but ``AutoTokenizer`` does not keep a ``tokenizer.json`` as written:
in transformers 5.17 a ``cohere2`` repo resolves to ``CohereTokenizer``, whose ``__init__`` keeps
only the vocabulary and merges of the file (``TokenizersBackend.convert_to_native_format`` hands a
class with its own ``__init__`` vocab/merges only) and installs a fixed ``NFC + Digits(individual)
+ ByteLevel`` pipeline. tiny-aya's own file groups digits in threes, so its ids differed.
:func:`load_tokenizer` loads through the generic ``PreTrainedTokenizerFast`` (``TokenizersBackend``),
which wraps ``tokenizers.Tokenizer.from_file`` unchanged and reads the special tokens from
``tokenizer_config.json``; the ids equal ``tokenizers.Tokenizer.from_file(...).encode`` (tests/test_base.py).

``tests/test_faults.py`` walks every ``from_pretrained(`` call under ``stages/`` and holds
them to the same rules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stages.lib.errors import StageError

# what every model load must pass; a caller may repeat these values, never change them
SAFE_MODEL_KWARGS = {"use_safetensors": True, "trust_remote_code": False}
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


class UnsafeWeightsError(StageError, OSError):
    """Weights that would have to be unpickled, or a request for remote code; the message names the folder."""


def require_safetensors(folder: Path | str, stem: str = "model") -> Path:
    """``folder`` if it holds ``<stem>.safetensors`` (or a sharded index of it); otherwise refuse."""
    folder = Path(folder)
    if (folder / f"{stem}.safetensors").is_file() or (folder / f"{stem}.safetensors.index.json").is_file():
        return folder
    if not folder.is_dir():
        found = "no such folder"
    else:
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
        found = f"it holds only {', '.join(pickles)}" if pickles else "no weights at all"
    raise UnsafeWeightsError(
        f"{folder}: no {stem}.safetensors ({found}); weights are loaded from safetensors only, never unpickled"
    )


def _checked(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` without the safe flags, after checking that none of them was turned off."""
    for key, value in SAFE_MODEL_KWARGS.items():
        if key in kwargs and kwargs[key] != value:
            raise UnsafeWeightsError(f"{key}={kwargs[key]!r} is refused: models load with {key}={value!r} only")
    return {key: value for key, value in kwargs.items() if key not in SAFE_MODEL_KWARGS}


def load_causal_lm(source: Path | str, **kwargs: Any):
    """A causal LM from a local folder (checked first) or a Hub id (``use_safetensors`` refuses pickles there)."""
    kwargs = _checked(kwargs)
    if Path(source).is_dir():
        require_safetensors(source, "model")
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(source, use_safetensors=True, trust_remote_code=False, **kwargs)


def load_adapter(model, models_dir: Path | str, subfolder: str, **kwargs: Any):
    """A LoRA adapter the seed card's way, ``PeftModel.from_pretrained(model, models_dir, subfolder=...)``."""
    require_safetensors(Path(models_dir) / subfolder, "adapter_model")
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(models_dir), subfolder=subfolder, **kwargs)



def load_tokenizer(folder: Path | str):
    """The tokenizer saved in ``folder``, with ``tokenizer.json``'s own normaliser, pre-tokeniser and
    post-processor (never a class's imposed pipeline), special tokens from ``tokenizer_config.json``."""
    path = Path(folder) / "tokenizer.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no tokenizer.json; build the base first (`dvc repro base`)")
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast.from_pretrained(str(folder), trust_remote_code=False)


def nf4_config(compute_dtype):
    """The one 4-bit config of training (peft-bnb) and evaluation (hf): NF4 with double quantisation, as
    Unsloth 2026.10.9 loads its 4-bit base (``bnb_4bit_use_double_quant=True``, unsloth/models/vision.py),
    so the three paths quantise the base alike; ``compute_dtype`` a torch dtype."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute_dtype, bnb_4bit_use_double_quant=True
    )
