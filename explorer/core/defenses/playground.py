"""The 2-D playground: one or two MLPs trained side by side on a toy set.

The toy points are mapped into the unit square (one common scale, so balls
stay round) and fed to the models as 2×1×1 "images": every contract of the
image models holds (pixels in [0, 1], normalisation inside the model, eps in
box units), so the defenses and attacks run unchanged.

:class:`Playground` is stateful and cheap to drive from a GUI timer or
worker: ``step(n)`` does n updates of every model, ``snapshot()`` returns a
:class:`~explorer.core.jobs.Snapshot` with the decision regions on a grid,
losses, accuracies and the PGD points of a few probes. :func:`playground_job`
wraps it for the CLI and the runner: ``steps_per_snapshot`` updates, then a
snapshot, until ``steps`` updates are done. Pause = stop calling ``step``
(or cancel the job and start a new one from the same ``Playground``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from explorer.core import attacks, data, models
from explorer.core.data.toy import TOY_INFOS
from explorer.core.defenses.registry import create
from explorer.core.inference import make_generator
from explorer.core.jobs import CancelToken, Done, Event, Snapshot
from explorer.core.models.simple import ACTIVATIONS
from explorer.core.params import Param, ParamError, validate

METHODS = ("standard", "pgd-at", "fast-at", "trades")
SNAPSHOT = "playground"

PARAMS = (
    Param("data", str, "moons", "toy data set", choices=tuple(TOY_INFOS)),
    Param("n", int, 400, "training points", minimum=10, maximum=20_000),
    Param("noise", float, -1.0, "noise of the toy set (-1 = the set's default)",
          minimum=-1.0, maximum=5.0),
    Param("grid", int, 100, "decision-region grid per side", minimum=2,
          maximum=400),
    Param("batch_size", int, 64, "points per update", minimum=1, maximum=20_000),
    Param("lr", float, 0.01, "Adam learning rate", minimum=1e-6, maximum=1.0),
    Param("probes", int, 6, "points shown with their eps-ball and PGD point",
          minimum=0, maximum=100),
    Param("eps", float, 0.05, "eps of the probes' PGD (box units)", minimum=0.0,
          maximum=0.5, unit="px"),
    Param("seed", int, 0, "seed of data, weights and attacks", minimum=0,
          maximum=2**31 - 1),
)


@dataclass(frozen=True)
class Learner:
    """One side of the playground: an MLP and its training method."""

    method: str = "standard"
    method_params: dict[str, Any] = field(default_factory=dict)
    hidden: int = 32
    depth: int = 2
    activation: str = "relu"

    def check(self) -> None:
        if self.method not in METHODS:
            raise ParamError(f"method must be one of {', '.join(METHODS)}, got "
                             f"{self.method!r}")
        if self.activation not in ACTIVATIONS:
            raise ParamError(f"activation must be one of {', '.join(ACTIVATIONS)}, "
                             f"got {self.activation!r}")


def _method_values(learner: Learner) -> dict[str, Any]:
    values = dict(learner.method_params)
    # A step size that suits the chosen eps when only eps is given.
    if "eps" in values and "alpha" not in values and learner.method != "fast-at":
        steps = values.get("steps", 7)
        values["alpha"] = 2.5 * float(values["eps"]) / int(steps)
    return values


class Playground:
    """Train ``learners`` (one or two) on one toy set; see the module doc."""

    def __init__(self, learners: Sequence[Learner] = (Learner(),), **params: Any):
        if not 1 <= len(learners) <= 4:
            raise ParamError(f"the playground trains 1 to 4 models, got "
                             f"{len(learners)}")
        for learner in learners:
            learner.check()
        self.learners = tuple(learners)
        self.cfg = validate(PARAMS, params)
        self.defenses = [create(lr.method, **_method_values(lr))
                         for lr in self.learners]
        self._load_data()
        self.reset()

    def _load_data(self) -> None:
        c = self.cfg
        extra = {} if c["noise"] < 0 else {"noise": c["noise"]}
        ds = data.load(c["data"], "train", n=c["n"], seed=c["seed"], **extra)
        raw, self.labels = ds.images.numpy(), ds.labels
        self.classes = ds.classes
        lo, hi = raw.min(0), raw.max(0)
        # One scale for both axes, 10% margin: balls stay round, no point
        # touches the box (where PGD's clamp would stop it).
        self.scale = float((hi - lo).max()) * 1.25 or 1.0
        self.offset = (lo + hi) / 2 - self.scale / 2
        self.points = torch.from_numpy((raw - self.offset) / self.scale).float()
        g = self.cfg["grid"]
        self.grid_coords = (torch.arange(g, dtype=torch.float32) + 0.5) / g
        gx, gy = torch.meshgrid(self.grid_coords, self.grid_coords, indexing="xy")
        self._grid = torch.stack([gx.flatten(), gy.flatten()], 1).view(-1, 2, 1, 1)
        k, n = len(self.classes), len(self.labels)
        rng = np.random.default_rng(c["seed"])
        per_class = [rng.permutation(np.flatnonzero(self.labels.numpy() == i))
                     for i in range(k)]
        order = [idx[j] for j in range(n) for idx in per_class if j < len(idx)]
        self.probe_index = torch.tensor(order[: c["probes"]], dtype=torch.int64)

    def reset(self) -> None:
        """Fresh weights and optimizers; the data and probes stay."""
        c = self.cfg
        self.models = []
        # Initial weights from the seed without touching torch's global RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(c["seed"])
            for learner in self.learners:
                model = models.create(
                    "mlp", in_shape=(2, 1, 1), num_classes=len(self.classes),
                    mean=(0.5, 0.5), std=(0.25, 0.25), classes=self.classes,
                    dataset=c["data"], hidden=learner.hidden, depth=learner.depth,
                    activation=learner.activation)
                self.models.append(model.train())
        self.optimizers = [torch.optim.Adam(m.parameters(), lr=c["lr"])
                           for m in self.models]
        self.generators = [make_generator(c["seed"] + 1 + i, torch.device("cpu"))
                           for i in range(len(self.models))]
        self.order = torch.Generator().manual_seed(c["seed"])
        self._perm = torch.randperm(len(self.labels), generator=self.order)
        self._cursor = 0
        self.steps = 0
        self.last_loss = [math.nan] * len(self.models)

    @property
    def epoch(self) -> float:
        return self.steps * self.cfg["batch_size"] / len(self.labels)

    def _next_batch(self) -> tuple[Tensor, Tensor]:
        b = self.cfg["batch_size"]
        if self._cursor + b > len(self._perm):
            self._perm = torch.randperm(len(self.labels), generator=self.order)
            self._cursor = 0
        idx = self._perm[self._cursor:self._cursor + b]
        self._cursor += b
        return self.points[idx].view(-1, 2, 1, 1), self.labels[idx]

    def step(self, n: int = 1) -> None:
        """``n`` updates of every model, each on the same minibatch."""
        for _ in range(n):
            x, y = self._next_batch()
            for i, (model, opt, defense) in enumerate(
                    zip(self.models, self.optimizers, self.defenses, strict=True)):
                loss, _ = defense.loss(model, x, y, self.generators[i])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                self.last_loss[i] = float(loss.detach())
            self.steps += 1

    def snapshot(self) -> Snapshot:
        """Arrays (M = models, G = grid, K = classes, P = probes, N = points):
        ``probs`` M×G×G×K (``probs[m, i, j]`` at x = grid[j], y = grid[i]),
        ``grid`` G, ``points`` N×2, ``labels`` N, ``probe_index`` P,
        ``probe_adv`` M×P×2, ``probe_adv_pred`` M×P, ``probe_pred`` M×P (clean
        prediction of the probes), ``loss`` M (last
        training batch), ``acc`` M (all points, clean), ``eps``, ``epoch``,
        ``extent`` (x0, x1, y0, y1 of the unit square in the toy set's own
        coordinates). All coordinates are in the unit square."""
        g, k = self.cfg["grid"], len(self.classes)
        x = self.points.view(-1, 2, 1, 1)
        probes = x[self.probe_index]
        probs, acc, adv, adv_pred, probe_pred = [], [], [], [], []
        for i, model in enumerate(self.models):
            with attacks.model_frozen(model), torch.inference_mode():
                probs.append(model(self._grid).softmax(1).view(g, g, k))
                pred = model(x).argmax(1)
                acc.append(float((pred == self.labels).float().mean()))
                probe_pred.append(pred[self.probe_index])
            if len(probes) and self.cfg["eps"] > 0:
                atk = attacks.create("pgd", model, seed=self.cfg["seed"] + i,
                                     eps=self.cfg["eps"], steps=10,
                                     alpha=0.25 * self.cfg["eps"], use_best=False)
                step = atk.result(probes, self.labels[self.probe_index])
                adv.append(step.x_adv.view(-1, 2))
                with attacks.model_frozen(model), torch.inference_mode():
                    adv_pred.append(model(step.x_adv).argmax(1))
            else:
                adv.append(probes.view(-1, 2))
                adv_pred.append(self.labels[self.probe_index])
        arrays = {
            "probs": torch.stack(probs).numpy(),
            "grid": self.grid_coords.numpy(),
            "points": self.points.numpy().copy(),
            "labels": self.labels.numpy().copy(),
            "probe_index": self.probe_index.numpy().copy(),
            "probe_adv": torch.stack(adv).numpy(),
            "probe_adv_pred": torch.stack(adv_pred).numpy(),
            "probe_pred": torch.stack(probe_pred).numpy(),
            "loss": np.array(self.last_loss, np.float32),
            "acc": np.array(acc, np.float32),
            "eps": np.float32(self.cfg["eps"]),
            "epoch": np.float32(self.epoch),
            "extent": np.array([self.offset[0], self.offset[0] + self.scale,
                                self.offset[1], self.offset[1] + self.scale],
                               np.float32),
        }
        return Snapshot(self.steps, 0, arrays, SNAPSHOT)


def playground_job(
    playground: Playground,
    *,
    steps: int = 1000,
    steps_per_snapshot: int = 5,
    max_interval: float = 0.05,
    token: CancelToken | None = None,
) -> Iterator[Event]:
    """Train ``steps`` more updates with a snapshot after every
    ``steps_per_snapshot`` updates (the speed control), or sooner when the
    updates took ``max_interval`` seconds (so slow methods still redraw
    often; at least one update per snapshot). Done holds the final loss and
    accuracy per model."""
    token = token or CancelToken()
    if steps < 0 or steps_per_snapshot < 1 or not max_interval > 0:
        raise ParamError(f"steps must be >= 0, steps_per_snapshot >= 1 and "
                         f"max_interval > 0, got {steps}, {steps_per_snapshot} "
                         f"and {max_interval}")
    target = playground.steps + steps
    snap = playground.snapshot()
    yield snap
    while playground.steps < target:
        token.check()
        due = time.perf_counter() + max_interval
        for _ in range(min(steps_per_snapshot, target - playground.steps)):
            playground.step(1)
            if time.perf_counter() >= due:
                break
        snap = playground.snapshot()
        yield snap
    yield Done({"steps": playground.steps, "epoch": playground.epoch,
                "loss": [float(v) for v in snap.arrays["loss"]],
                "acc": [float(v) for v in snap.arrays["acc"]],
                "methods": [lr.method for lr in playground.learners]})
