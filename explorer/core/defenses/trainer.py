"""The training job: any defense, checkpointed, resumable, cancellable.

``train(...)`` is a generator of events (see :mod:`explorer.core.jobs`). Per
batch it yields a throttled ``batch_loss`` metric and progress; per epoch the
train/test metrics, then a ``Snapshot`` labelled ``adversarial`` (see
:func:`~explorer.core.defenses.evaluation.adversarial_strip`).
``run_dir/last.pt`` is rewritten atomically after every epoch, every
``checkpoint_minutes`` and on cancel; ``best.safetensors`` holds
the weights of the best robust accuracy so far. ``resume=True`` continues from
``last.pt`` exactly where it stopped (same batches, same random draws).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from explorer.core import accel, models
from explorer.core import device as devices
from explorer.core.attacks.base import make_generator
from explorer.core.defenses import checkpoint
from explorer.core.defenses.evaluation import (
    adversarial_strip,
    clean_and_robust,
    step_size,
)
from explorer.core.defenses.registry import create
from explorer.core.defenses.schedules import check_schedule, lr_factor, make_optimizer
from explorer.core.jobs import (
    Artifact,
    Cancelled,
    CancelToken,
    Done,
    Event,
    Log,
    Metric,
    Progress,
    ProgressThrottle,
)

MAX_LOSS = 1e4
# Must match for a resume: the rest (epochs, eval settings) may change.
FIXED_KEYS = ("method", "params", "batch_size", "optimizer", "n_train")


class TrainingDiverged(RuntimeError):
    """The loss became NaN, infinite or absurdly large."""


@dataclasses.dataclass
class _Position:
    """Where training stands: everything but weights, optimizer and RNGs."""

    epoch: int = 0  # epochs finished
    batch: int = 0  # batches finished within the current epoch
    step: int = 0  # updates finished in all
    perm: Tensor | None = None  # this epoch's order of the training set
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    epoch_seconds: float = 0.0
    seconds: float = 0.0
    best_robust: float = -1.0
    best_epoch: int = 0
    history: list[dict[str, float]] = dataclasses.field(default_factory=list)

    def state(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["perm"] = self.perm if self.perm is not None else torch.empty(0)
        return out

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> _Position:
        pos = cls(**state)
        pos.perm = pos.perm if pos.perm.numel() else None
        return pos


def _arrays(dataset) -> tuple[Tensor, Tensor]:
    """The whole set in memory (uint8 images stay uint8 until batched)."""
    images, labels = getattr(dataset, "images", None), getattr(dataset, "labels", None)
    if isinstance(images, Tensor) and isinstance(labels, Tensor):
        return images, labels
    return dataset.as_tensors(0, len(dataset))


def _batch(xs: Tensor, ys: Tensor, idx: Tensor, device) -> tuple[Tensor, Tensor]:
    x = xs[idx].to(device)
    x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
    return x, ys[idx].to(device)


def train(
    model: nn.Module,
    train_set,
    test_set,
    *,
    method: str,
    params: dict[str, Any] | None = None,
    epochs: int,
    run_dir: str | Path,
    batch_size: int = 128,
    optimizer: str = "sgd",
    lr: float | None = None,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    schedule: str = "piecewise",
    seed: int = 0,
    eval_eps: float = 0.1,
    eval_steps: int = 10,
    eval_n: int = 500,
    device: str | torch.device | None = None,
    checkpoint_minutes: float = 5.0,
    resume: bool = False,
    token: CancelToken | None = None,
) -> Iterator[Event]:
    """Train ``model`` in place with defense ``method``; see the module doc.

    ``lr`` defaults to 0.1 for SGD and 1e-3 for Adam. A fresh run seeds
    torch's global generator with ``seed`` (dropout and the like draw there).
    """
    token = token or CancelToken()
    device = torch.device(device) if device is not None else devices.pick()
    defense = create(method, **(params or {}))
    check_schedule(schedule)
    lr = lr if lr is not None else (0.1 if optimizer == "sgd" else 1e-3)
    xs, ys = _arrays(train_set)
    n_batches = math.ceil(len(ys) / batch_size)
    total = epochs * n_batches * defense.replays
    config = {"method": method, "params": defense.cfg, "epochs": epochs,
              "batch_size": batch_size, "optimizer": optimizer, "lr": lr,
              "momentum": momentum, "weight_decay": weight_decay,
              "schedule": schedule, "seed": seed, "eval_eps": eval_eps,
              "eval_steps": eval_steps, "eval_n": eval_n, "n_train": len(ys)}
    run_dir = Path(run_dir)
    last_path, best_path = run_dir / "last.pt", run_dir / "best.safetensors"
    prepared = defense.prepare(model)
    model = prepared if prepared is not None else model
    model = accel.place(model, device)
    opt = make_optimizer(model.parameters(), optimizer, lr=lr, momentum=momentum,
                         weight_decay=weight_decay)
    shuffle = torch.Generator().manual_seed(seed)
    method_rng = make_generator(seed + 1, device)
    eval_x, eval_y = test_set.as_tensors(0, min(eval_n, len(test_set)))

    saved: dict[str, int] = {}

    def save() -> None:
        saved.update(epoch=pos.epoch, batch=pos.batch)
        checkpoint.save(last_path, {
            "format": 1, "config": config, "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": {"name": schedule, "step": pos.step, "total": total},
            "position": pos.state(), "rng": checkpoint.rng_state(),
            "shuffle_rng": shuffle.get_state(), "method_rng": method_rng.get_state(),
            "method": defense.state_dict()})

    if resume:
        state = checkpoint.load(last_path)
        for key in FIXED_KEYS:
            if state["config"].get(key) != config[key]:
                raise checkpoint.CheckpointError(
                    f"cannot resume {last_path}: its {key} is "
                    f"{state['config'].get(key)!r}, this run's is {config[key]!r}")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        pos = _Position.from_state(state["position"])
        checkpoint.set_rng_state(state["rng"])
        shuffle.set_state(state["shuffle_rng"])
        method_rng.set_state(state["method_rng"])
        defense.load_state_dict(state["method"])
        saved.update(epoch=pos.epoch, batch=pos.batch)
        yield Log(f"resumed from {last_path} at epoch {pos.epoch + 1}, "
                  f"batch {pos.batch}")
    else:
        torch.manual_seed(seed)
        pos = _Position()
        save()

    throttle = ProgressThrottle()
    unsaved_logged = False  # a prepared model models.save cannot describe
    every = max(1, n_batches // 100)
    started = time.monotonic()
    base_seconds = pos.seconds
    try:
        for epoch in range(pos.epoch, epochs):
            if pos.perm is None:
                pos.perm = torch.randperm(len(ys), generator=shuffle)
            epoch_start = time.monotonic() - pos.epoch_seconds
            last_save = time.monotonic()
            window: list[float] = []
            model.train()
            for b in range(pos.batch, n_batches):
                token.check()
                x, y = _batch(xs, ys, pos.perm[b * batch_size:(b + 1) * batch_size],
                              device)
                for _ in range(defense.replays):
                    for group in opt.param_groups:
                        group["lr"] = lr * lr_factor(schedule, pos.step, total)
                    loss, logits = defense.loss(model, x, y, method_rng)
                    value = float(loss.detach())
                    if not math.isfinite(value) or value > MAX_LOSS:
                        raise TrainingDiverged(_diverged(value, epoch, b, last_path,
                                                         saved))
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    defense.after_backward()
                    opt.step()
                    pos.step += 1
                    pos.loss_sum += value * len(y)
                    pos.correct += int((logits.detach().argmax(1) == y).sum())
                    pos.seen += len(y)
                    window.append(value)
                pos.batch = b + 1
                pos.epoch_seconds = time.monotonic() - epoch_start
                if time.monotonic() - last_save >= checkpoint_minutes * 60:
                    pos.seconds = base_seconds + time.monotonic() - started
                    save()
                    last_save = time.monotonic()
                if (b + 1) % every == 0 or b + 1 == n_batches:
                    yield Metric("batch_loss", sum(window) / len(window), pos.step)
                    window = []
                if throttle.due(pos.step, total):
                    yield Progress(pos.step, total, f"epoch {epoch + 1}/{epochs}")
            pos.epoch_seconds = time.monotonic() - epoch_start
            clean, robust = clean_and_robust(model, eval_x, eval_y, eps=eval_eps,
                                             steps=eval_steps, device=device,
                                             token=token)
            strip = adversarial_strip(model, eval_x, eval_y, eps=eval_eps,
                                      steps=eval_steps, device=device,
                                      epoch=epoch + 1, epochs=epochs)
            model.train()
            metrics = {"train_loss": pos.loss_sum / max(pos.seen, 1),
                       "train_acc": pos.correct / max(pos.seen, 1),
                       "test_clean_acc": clean, "test_robust_acc": robust,
                       "lr": opt.param_groups[0]["lr"],
                       "epoch_seconds": pos.epoch_seconds}
            defense.end_epoch(metrics)
            improved = robust > pos.best_robust
            if improved:
                pos.best_robust, pos.best_epoch = robust, epoch + 1
            pos = dataclasses.replace(
                pos, epoch=epoch + 1, batch=0, perm=None, loss_sum=0.0, correct=0,
                seen=0, epoch_seconds=0.0, history=[*pos.history, metrics],
                seconds=base_seconds + time.monotonic() - started)
            if improved and getattr(model, "meta", None) is not None:
                _save_best(model, best_path, config, epoch + 1, metrics, train_set)
                yield Artifact("best", best_path)
            elif improved and not unsaved_logged:
                unsaved_logged = True
                yield Log(f"{method}: the trained {type(model).__name__} has no "
                          "model metadata (an architecture models.load cannot "
                          "rebuild); best.safetensors is not written, last.pt "
                          "holds its weights")
            save()
            for name, value in metrics.items():
                yield Metric(name, value, epoch + 1)
            yield strip
    except Cancelled:
        pos.seconds = base_seconds + time.monotonic() - started
        save()
        raise
    last = pos.history[-1] if pos.history else {}
    yield Done({"epochs": pos.epoch, "clean_acc": last.get("test_clean_acc"),
                "robust_acc": last.get("test_robust_acc"),
                "best_robust_acc": max(pos.best_robust, 0.0),
                "best_epoch": pos.best_epoch,
                "seconds": base_seconds + time.monotonic() - started,
                "checkpoint": str(last_path),
                "best": str(best_path) if best_path.exists() else None})


def _diverged(value: float, epoch: int, batch: int, path: Path,
              saved: dict[str, int]) -> str:
    what = "nan" if math.isnan(value) else f"{value:g}"
    return (f"loss became {what} at epoch {epoch + 1} batch {batch + 1}; the last "
            f"good checkpoint is kept: {path} (after {saved['epoch']} epochs and "
            f"{saved['batch']} batches)")


def _save_best(model, path: Path, config: dict[str, Any], epoch: int,
               metrics: dict[str, float], train_set) -> None:
    info = getattr(train_set, "info", None)
    training = {**config, "epoch": epoch,
                "clean_acc": metrics["test_clean_acc"],
                "robust_acc": metrics["test_robust_acc"],
                "eval": {"attack": "pgd", "norm": "linf", "eps": config["eval_eps"],
                         "steps": config["eval_steps"],
                         "alpha": step_size(config["eval_eps"],
                                            config["eval_steps"]),
                         "n": config["eval_n"]},
                "data": getattr(info, "name", "")}
    meta = dataclasses.replace(model.meta, training=training)
    models.save(model, path, meta)
