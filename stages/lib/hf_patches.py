"""Workarounds for behaviours of the pinned transformers and PEFT that would change a run's bytes.

Each names the private attribute or quirk it depends on, so the next upgrade knows where to look;
tests/test_train.py's resume test fails if the Trainer attribute moves.
"""

from __future__ import annotations

import json
from pathlib import Path

from stages.lib.provenance import write_json

# written last (after the Trainer's own files): its presence marks a complete checkpoint
LOSS_TOTAL_FILE = "loss_total.json"


def loss_total_callback(resume_from: Path | None):
    """Carries the Trainer's running loss sum across a resume, so ``train_loss`` comes out the same.

    transformers 5.17 resets ``Trainer._total_loss_scalar`` (the sum behind the final
    ``train_loss``) to 0 when it resumes: a resumed run would report the mean of the steps after
    the resume over all steps. The sum is written into each checkpoint and restored at
    ``on_train_begin``, which the Trainer calls right after that reset. ``save_steps`` is a
    multiple of ``logging_steps``, so at a save the sum holds every step so far. Private
    attribute of the pinned transformers: tests/test_train.py's resume test fails if it moves.
    """
    from transformers import TrainerCallback

    class LossTotal(TrainerCallback):
        trainer = None  # set once the Trainer exists

        def on_train_begin(self, args, state, control, **kwargs):
            if resume_from is not None:
                saved = json.loads((resume_from / LOSS_TOTAL_FILE).read_text(encoding="utf-8"))
                self.trainer._total_loss_scalar = saved["total_loss_scalar"]

        def on_save(self, args, state, control, **kwargs):
            if not state.is_world_process_zero:
                return
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            total = {"global_step": state.global_step, "total_loss_scalar": self.trainer._total_loss_scalar}
            write_json(folder / LOSS_TOTAL_FILE, total)

    return LossTotal()


def normalise_adapter_config(path: Path) -> None:
    """PEFT keeps target_modules as a set and writes it in set order, which follows the
    process's string-hash seed (PYTHONHASHSEED): two processes write different bytes.
    Rewritten with sorted lists and sorted keys; PEFT reads it back unchanged in meaning."""
    config = json.loads(path.read_text(encoding="utf-8"))
    for key in ("target_modules", "modules_to_save", "exclude_modules"):
        if isinstance(config.get(key), list):
            config[key] = sorted(config[key])
    write_json(path, config)

