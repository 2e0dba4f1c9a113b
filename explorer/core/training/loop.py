"""The task-agnostic training loop both trainers delegate to.

:class:`Position` is where a run stands (everything but weights, optimizer
and generators); a trainer subclasses it for its own counters and best score.
:class:`RunState` writes and reads ``last.pt``: model, optimizer, position,
the global generators, the trainer's named generators and any extra state,
refusing to resume a run whose fixed settings differ. :class:`TrainingLoop`
runs one epoch's batches (``yield from loop.epoch(...)``): the shuffle, the
learning rate per step, a ``last.pt`` every ``checkpoint_minutes``, throttled
``batch_loss`` metrics and progress; :meth:`TrainingLoop.save` is the save on
cancel. The trainer keeps its loss, evaluation, metrics and best-model rule.

With several processes (a ``world`` under torchrun) only the writer (rank 0,
``writes=True``) writes ``last.pt``; every rank reads it on resume. The
ranks agree on a stop before each batch (one small all-reduce), so all of
them stop at the same batch and rank 0's checkpoint matches every rank.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from explorer.core import distributed
from explorer.core.fileio import remove_stale_temporaries
from explorer.core.jobs import (
    Cancelled,
    CancelToken,
    Event,
    Metric,
    Progress,
    ProgressThrottle,
)
from explorer.core.training import checkpoint
from explorer.core.training.precision import Precision
from explorer.core.training.schedules import lr_factor

P = TypeVar("P", bound="Position")


@dataclasses.dataclass
class Position:
    """Where training stands: everything but weights, optimizer and RNGs."""

    epoch: int = 0  # epochs finished
    batch: int = 0  # batches finished within the current epoch
    step: int = 0  # updates finished in all
    perm: Tensor | None = None  # this epoch's order of the training set
    loss_sum: float = 0.0
    seen: int = 0
    epoch_seconds: float = 0.0
    seconds: float = 0.0
    best_epoch: int = 0
    history: list[dict[str, float]] = dataclasses.field(default_factory=list)

    def state(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["perm"] = self.perm if self.perm is not None else torch.empty(0)
        return out

    @classmethod
    def from_state(cls: type[P], state: dict[str, Any]) -> P:
        pos = cls(**state)
        pos.perm = pos.perm if pos.perm.numel() else None
        return pos

    def next_epoch(self, metrics: dict[str, float], seconds: float) -> None:
        """Close the epoch: record ``metrics`` and reset the running sums."""
        self.epoch += 1
        self.batch, self.perm, self.loss_sum, self.seen = 0, None, 0.0, 0
        self.epoch_seconds, self.seconds = 0.0, seconds
        self.history = [*self.history, metrics]


class RunState:
    """Saves and restores a run's ``last.pt``.

    ``generators`` are stored under their names; ``extra(position)`` adds
    trainer-specific entries on save and ``load_extra(state)`` reads them
    back on resume. ``saved_at`` is the (epoch, batch) of the last save.
    ``defaults`` stand in for fixed keys a checkpoint written before they
    existed lacks.
    """

    def __init__(self, path: Path, config: dict[str, Any], fixed_keys: Sequence[str],
                 model: nn.Module, optimizer: torch.optim.Optimizer,
                 generators: dict[str, torch.Generator], *,
                 extra: Callable[[Position], dict[str, Any]] = lambda pos: {},
                 load_extra: Callable[[dict[str, Any]], None] = lambda state: None,
                 defaults: dict[str, Any] | None = None,
                 writes: bool = True) -> None:
        self.path, self.config, self.fixed_keys = path, config, tuple(fixed_keys)
        self.defaults = dict(defaults or {})
        self.model, self.optimizer, self.generators = model, optimizer, generators
        self.extra, self.load_extra = extra, load_extra
        self.saved_at = (0, 0)
        self.writes = writes  # False: another process (rank 0) writes last.pt

    def save(self, pos: Position) -> None:
        self.saved_at = (pos.epoch, pos.batch)
        if not self.writes:
            return
        checkpoint.save(self.path, {
            "format": 1, "config": self.config, "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(), **self.extra(pos),
            "position": pos.state(), "rng": checkpoint.rng_state(),
            **{name: gen.get_state() for name, gen in self.generators.items()}})

    def start(self, position: type[P], *, seed: int, resume: bool) -> P:
        """A fresh position (global seed set, first save) or the saved one."""
        if not resume:
            torch.manual_seed(seed)
            pos = position()
            self.save(pos)
            return pos
        # A run killed while it saved left a temporary file beside its files.
        remove_stale_temporaries(Path(self.path).parent)
        state = checkpoint.load(self.path)
        for key in self.fixed_keys:
            stored = state["config"].get(key, self.defaults.get(key))
            if stored != self.config[key]:
                raise checkpoint.CheckpointError(
                    f"cannot resume {self.path}: its {key} is {stored!r}, this "
                    f"run's is {self.config[key]!r}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        pos = position.from_state(state["position"])
        checkpoint.set_rng_state(state["rng"])
        for name, gen in self.generators.items():
            gen.set_state(state[name])
        self.load_extra(state)
        self.saved_at = (pos.epoch, pos.batch)
        return pos


class TrainingLoop:
    """One run's batch loop, timing and checkpoint cadence (see module doc)."""

    def __init__(self, run: RunState, pos: Position, *, shuffle: torch.Generator,
                 n_items: int, batch_size: int, epochs: int, total: int, lr: float,
                 schedule: str, checkpoint_minutes: float,
                 token: CancelToken,
                 world: distributed.World = distributed.SINGLE,
                 precision: Precision | None = None) -> None:
        self.run, self.pos, self.shuffle = run, pos, shuffle
        self.n_items, self.batch_size, self.epochs = n_items, batch_size, epochs
        self.n_batches = math.ceil(n_items / batch_size)
        self.total, self.lr, self.schedule = total, lr, schedule
        self.checkpoint_seconds = checkpoint_minutes * 60
        self.token, self.world = token, world
        self.precision = precision  # mixed precision of the update, if any
        self.throttle = ProgressThrottle()
        self.every = max(1, self.n_batches // 100)  # batch_loss about 100 times
        self.started, self.base_seconds = time.monotonic(), pos.seconds

    def seconds(self) -> float:
        """Training time in all, earlier sessions of a resumed run included."""
        return self.base_seconds + time.monotonic() - self.started

    def save(self) -> None:
        """``last.pt`` now, e.g. on cancel."""
        self.pos.seconds = self.seconds()
        self.run.save(self.pos)

    def update(self, loss: Tensor, after_backward: Callable[[], None] | None = None,
               *, sync: Callable[[], None] | None = None) -> None:
        """One optimizer step at the scheduled learning rate. ``sync`` runs
        right after the backward pass (the ranks' gradient average, on the
        still-scaled gradients under fp16, so every rank's grad scaler sees
        the same gradients), ``after_backward`` after it (the defense's hook,
        on unscaled gradients)."""
        opt = self.run.optimizer
        for group in opt.param_groups:
            group["lr"] = self.lr * lr_factor(self.schedule, self.pos.step, self.total)
        opt.zero_grad(set_to_none=True)
        if self.precision is not None:  # fp16: scale, backward, unscale, step
            self.precision.step(loss, opt, after_backward, sync=sync)
        else:
            loss.backward()
            if sync is not None:
                sync()
            if after_backward is not None:
                after_backward()
            opt.step()
        self.pos.step += 1

    def epoch(self, train_batch: Callable[[int, Tensor], list[float]],
              ) -> Iterator[Event]:
        """The rest of the current epoch's batches.

        ``train_batch(b, indices)`` trains on batch ``b`` and returns its
        losses (one per update); it updates the position's sums.
        """
        pos = self.pos
        if pos.perm is None:
            pos.perm = torch.randperm(self.n_items, generator=self.shuffle)
        epoch_start = time.monotonic() - pos.epoch_seconds
        last_save = time.monotonic()
        window: list[float] = []
        self.run.model.train()
        for b in range(pos.batch, self.n_batches):
            self._check_stop()
            window += train_batch(
                b, pos.perm[b * self.batch_size:(b + 1) * self.batch_size])
            pos.batch = b + 1
            pos.epoch_seconds = time.monotonic() - epoch_start
            if time.monotonic() - last_save >= self.checkpoint_seconds:
                self.save()
                last_save = time.monotonic()
            if (b + 1) % self.every == 0 or b + 1 == self.n_batches:
                yield Metric("batch_loss", sum(window) / len(window), pos.step)
                window = []
            if self.throttle.due(pos.step, self.total):
                yield Progress(pos.step, self.total,
                               f"epoch {pos.epoch + 1}/{self.epochs}")
        pos.epoch_seconds = time.monotonic() - epoch_start

    def _check_stop(self) -> None:
        """Cancelled if the token is, on any rank (all ranks stop here at
        the same batch)."""
        if not self.world.distributed:
            self.token.check()
            return
        stop = self.world.all_sum(torch.tensor([float(self.token.cancelled)]))
        if stop[0] > 0:
            raise Cancelled
