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

Tokenizers hold no weights: ``AutoTokenizer.from_pretrained(..., trust_remote_code=False)`` is enough.

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

