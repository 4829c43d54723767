"""That a session scores its own run's adapter: not the base model, not another run's adapter.

Two checks, both refusals (they decide no byte of a correct session's outputs):

- before anything is loaded, the sha256 of the adapter's weights file against what was recorded
  for the session's run when it was made: ``import.json`` in the adapter folder (import_adapters:
  its run id and file hashes), else the train stage's ``<train_metrics>/<run>/summary.json``
  (``adapter_model_sha256``). That summary is written by the same ``train@<run>`` that writes the
  adapter folder, which ``evaluate@<run>`` depends on, so it is there whenever the folder is;
  it is read, not declared, because the baseline's session has none and dvc.yaml's foreach
  cannot give one session a dependency the others lack;
- after the hf backend has loaded the adapter, every tensor of that file against the loaded
  model's LoRA weights: PEFT only warns when a checkpoint's keys miss the model's modules and
  then leaves those LoRA layers at their initial values (B = 0: the base model's answers).
"""

from __future__ import annotations

import json
from pathlib import Path

from stages.lib.paths import BASELINE
from stages.lib.evaluation import EvaluateError
from stages.lib.evaluation.grid import Session
from stages.lib.provenance import file_sha256

WEIGHTS = "adapter_model.safetensors"


def default_train_metrics(models_dir: Path) -> Path:
    """``metrics/train`` of the workspace whose ``models/`` is ``models_dir`` (the stage's: ./metrics/train)."""
    return Path(models_dir).parent / "metrics" / "train"


def recorded_sha256(session: Session, folder: Path, train_metrics: Path) -> tuple[str, Path]:
    """(sha256 the session's weights file must have, the record that says so)."""
    imported = folder / "import.json"
    if imported.is_file():
        record = json.loads(imported.read_text(encoding="utf-8"))
        if record.get("run_id") != session.id:
            raise EvaluateError(f"{session.id}: {folder} holds the imported adapter of run {record.get('run_id')!r} "
                                f"({imported}), not this session's")
        return record["files_sha256"][WEIGHTS], imported
    summary = train_metrics / session.id / "summary.json"
    if not summary.is_file():
        raise EvaluateError(
            f"{session.id}: no record of the adapter this run made, so nothing to check {folder / WEIGHTS} against: "
            f"neither {summary} (train@{session.id}) nor {imported} (import_adapters) exists"
        )
    return json.loads(summary.read_text(encoding="utf-8"))["adapter_model_sha256"], summary


def checked_adapter(session: Session, models_dir: Path, train_metrics: Path) -> dict | None:
    """``{"path", "sha256"}`` of the adapter the session loads (None for the baseline), or an EvaluateError."""
    if session.id == BASELINE:
        return None
    if not session.adapter:
        raise EvaluateError(f"{session.id}: a run's session with no adapter would score the base model")
    folder = models_dir / session.adapter
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise EvaluateError(f"{session.id}: adapter {weights} does not exist; run `dvc repro train@{session.id}`")
    found = file_sha256(weights)
    expected, record = recorded_sha256(session, folder, train_metrics)
    if found != expected:
        raise EvaluateError(
            f"{session.id}: {weights} is not this run's adapter: its sha256 is {found}, {record} recorded {expected}; "
            f"refusing to score it (retrain with `dvc repro train@{session.id}` or point evaluate.sessions at its folder)"
        )
    return {"path": session.adapter, "sha256": found}


def check_loaded(model, weights: Path, session_id: str) -> None:
    """Every tensor of ``weights`` is in the loaded PEFT model, with the same values (cast to the model's dtype)."""
    import torch
    from peft.utils import get_peft_model_state_dict
    from peft.utils.constants import EMBEDDING_LAYER_NAMES
    from safetensors.torch import load_file

    saved = load_file(weights)
    # explicit, so that PEFT's "auto" never looks for the base's config (on the Hub, for a repo id)
    embeddings = any(layer in name for name in saved for layer in EMBEDDING_LAYER_NAMES)
    loaded = get_peft_model_state_dict(model, save_embedding_layers=embeddings)
    missing = sorted(set(saved) - set(loaded))
    if missing:
        raise EvaluateError(f"{session_id}: the loaded model has no place for {len(missing)} of the {len(saved)} tensors "
                            f"of {weights} (e.g. {missing[0]}): those LoRA layers would stay untrained")
    differ = [name for name, tensor in saved.items()
              if not torch.equal(loaded[name].detach().cpu(), tensor.to(loaded[name].dtype))]
    if differ:
        raise EvaluateError(f"{session_id}: {len(differ)} LoRA tensors of the loaded model differ from {weights} "
                            f"(e.g. {differ[0]}): the model does not hold this adapter")
