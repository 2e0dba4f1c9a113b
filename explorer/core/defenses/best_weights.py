"""The best weights of a training run: which file holds them, and writing it.

``best.safetensors`` holds the best epoch's weights with the run's training
metadata (settings, epoch, figures, evaluation); a fine-tuned torch.export
program is re-exported as ``best.pt2`` instead. A model neither format can
hold (ONNX, TorchScript, model code) gets no best file: :func:`save_best`
says why and the trainer logs it once.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from torch import nn

from explorer.core import models
from explorer.core.defenses.evaluation import step_size
from explorer.core.models import exported

BEST_FILES = ("best.safetensors", "best.pt2")  # what save_best may write
EXPORT_NOTE = ("fine-tuning a torch.export program: its dropout/batch-norm stay "
               "as exported (eval)")


def best_file(run_dir: str | Path) -> Path | None:
    """The best weights a training run wrote (``best.safetensors`` or, for a
    fine-tuned torch.export program, ``best.pt2``), or None."""
    found = [Path(run_dir) / name for name in BEST_FILES]
    found = [p for p in found if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def is_program(model: nn.Module) -> bool:
    """A torch.export program (ONNX graphs share its class, not its format)."""
    meta = getattr(model, "meta", None)
    return (isinstance(model, exported.ExportedModel) and meta is not None
            and meta.format == "export")


def save_best(model, path: Path, config: dict[str, Any], epoch: int,
               metrics: dict[str, float], train_set) -> str | None:
    """Write the best weights to ``path``; None, or why they cannot be."""
    if getattr(model, "meta", None) is None:
        return (f"the trained {type(model).__name__} has no model metadata: an "
                "architecture models.load cannot rebuild")
    info = getattr(train_set, "info", None)
    training = {**config, "epoch": epoch,
                "clean_acc": metrics["test_clean_acc"],
                "robust_acc": metrics["test_robust_acc"],
                **{k: metrics[k] for k in ("val_clean_acc", "val_robust_acc")
                   if k in metrics},
                "eval": {"attack": "pgd", "norm": "linf", "eps": config["eval_eps"],
                         "steps": config["eval_steps"],
                         "alpha": step_size(config["eval_eps"],
                                            config["eval_steps"]),
                         "n": config["eval_n"]},
                "data": getattr(info, "name", "")}
    meta = dataclasses.replace(model.meta, training=training)
    try:
        if path.suffix == ".pt2":
            _export_with(model, meta, path)
        else:
            models.save(model, path, meta)
    except models.ModelError as exc:  # ONNX, TorchScript, model code, ...
        return str(exc)
    return None


def _export_with(model: nn.Module, meta: models.ModelMeta, path: Path) -> None:
    """``exported.export`` with ``meta`` in the archive (it reads the model's)."""
    kept = model.meta
    model.meta = meta
    try:
        exported.export(model, path)
    finally:
        model.meta = kept
