"""Attack jobs: the Attack Lab's live batch, a data-set attack, an eps sweep.

Each job is a generator of :mod:`explorer.core.jobs` events whose last event
is :class:`~explorer.core.jobs.Done`; events carry CPU NumPy copies, never
live tensors, and the jobs check their ``token`` between steps or batches.
The model must already be on ``device`` (default: where its parameters
live); the data are moved there. ``attack_live`` lives in
:mod:`explorer.core.attacks.live`, ``save_examples`` and
``perturbation_norms`` in :mod:`explorer.core.attacks.examples`; all are
importable from here.

Definitions (over the ``n`` attacked images):

- ``clean_acc``: share classified correctly before the attack.
- ``robust_acc``: share classified correctly before *and* after the attack
  (AutoAttack's convention, so ``robust_acc <= clean_acc``).
- success of one image: untargeted, the adversarial prediction differs from
  the label; targeted, it equals the target.
- ``success_rate`` (data-set jobs): successes among the clean-correct images
  (NaN when there are none); ``success_rate_all``: successes among all.
  ``attack_live`` reports ``success_rate`` over its whole batch.
- ``mean_linf``, ``mean_l2``, ``mean_l1``: means of the per-image norms of
  ``x_adv - x``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from explorer.core.attacks import attack_class, create
from explorer.core.attacks.base import Attack
from explorer.core.attacks.examples import (
    NORMS,
    check_budget,
    perturbation_norms,
    save_examples,
)
from explorer.core.attacks.live import attack_live, to_numpy
from explorer.core.data.batching import batches, check_batching, num_batches
from explorer.core.device import device_of
from explorer.core.inference import logits_of
from explorer.core.jobs import (
    CancelToken,
    Done,
    Event,
    Metric,
    Progress,
    ProgressThrottle,
    Snapshot,
)

__all__ = [
    "attack_dataset", "attack_live", "check_budget", "eps_sweep",
    "perturbation_norms", "save_examples",
]  # fmt: skip


class _Batch(NamedTuple):
    index: int
    total: int
    x: Tensor
    x_adv: Tensor
    y: Tensor
    target: Tensor | None
    pred_clean: Tensor
    pred_adv: Tensor
    norms: dict[str, np.ndarray]


def _fast(atk: Attack, x: Tensor, y: Tensor,
          ids: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """The fast path's result and, for targeted modes, the target it chose."""
    last = atk.result(x, y, ids=ids)
    return last.x_adv, last.target


def _attacked_batches(model, dataset, atk, n, batch_size, dev, token,
                      first: int | None = None):
    """``first`` not None: the global index of the data set's first image;
    the attack then draws per image (see attacks/draws.py)."""
    total = num_batches(dataset, batch_size, n)
    start = first
    for i, (x, y) in enumerate(batches(dataset, batch_size, n)):
        token.check()
        x, y = x.to(dev), y.to(dev)
        ids = None
        if start is not None:
            ids = torch.arange(start, start + len(x), device=dev)
            start += len(x)
        x_adv, target = _fast(atk, x, y, ids)
        norms = check_budget(atk, x, x_adv)
        pred_clean = logits_of(model, x).argmax(1)
        pred_adv = logits_of(model, x_adv).argmax(1)
        yield _Batch(i, total, x, x_adv.detach(), y, target, pred_clean, pred_adv,
                     norms)


class _Tally:
    def __init__(self) -> None:
        self.n = self.clean = self.robust = self.fooled = self.fooled_correct = 0
        self.norm_sums = dict.fromkeys(NORMS, 0.0)

    def add(self, b: _Batch) -> None:
        correct = b.pred_clean == b.y
        success = (b.pred_adv != b.y) if b.target is None else (
            b.pred_adv == b.target)
        self.n += len(b.y)
        self.clean += int(correct.sum())
        self.robust += int((correct & (b.pred_adv == b.y)).sum())
        self.fooled += int(success.sum())
        self.fooled_correct += int((success & correct).sum())
        for k in NORMS:
            self.norm_sums[k] += float(b.norms[k].sum())

    def results(self) -> dict[str, float]:
        n = max(self.n, 1)
        return {
            "clean_acc": self.clean / n, "robust_acc": self.robust / n,
            "success_rate": (self.fooled_correct / self.clean if self.clean
                             else float("nan")),
            "success_rate_all": self.fooled / n,
            **{f"mean_{k}": s / n for k, s in self.norm_sums.items()}, "n": self.n,
        }  # fmt: skip


def attack_dataset(
    model: nn.Module,
    dataset: Dataset,
    *,
    attack: str,
    params: Mapping[str, Any],
    n: int | None = None,
    batch_size: int = 256,
    seed: int | None = 0,
    device: torch.device | str | None = None,
    keep_examples: int = 0,
    token: CancelToken | None = None,
) -> Iterator[Event]:
    """Attack the first ``n`` images (all if None), in order, batch by batch.

    Events: ``Progress`` per batch (throttled), ``Metric("clean_acc")`` and
    ``Metric("robust_acc")`` (running values, step = batch index). ``Done``:
    ``clean_acc``, ``robust_acc``, ``success_rate``, ``success_rate_all``,
    ``mean_linf``, ``mean_l2``, ``mean_l1``, ``n``, ``seconds``,
    ``images_per_second``, ``attack``, ``params``; with ``keep_examples=k``
    also the first k ``x``, ``x_adv``, ``y``, ``pred_clean``, ``pred_adv``
    and ``target`` (None when untargeted). Every batch is checked against the
    attack's budget and [0, 1] (RuntimeError naming the attack).
    """
    token = token or CancelToken()
    check_batching(n, batch_size)
    dev = device_of(model, device)
    atk = create(attack, model, seed=seed, **dict(params))
    tally, throttle = _Tally(), ProgressThrottle(0.01)
    kept: dict[str, list[np.ndarray]] = {}
    n_kept = 0
    started = time.perf_counter()
    for b in _attacked_batches(model, dataset, atk, n, batch_size, dev, token):
        tally.add(b)
        room = keep_examples - n_kept
        if room > 0:
            for key in ("x", "x_adv", "y", "pred_clean", "pred_adv", "target"):
                value = getattr(b, key)
                if value is not None:
                    kept.setdefault(key, []).append(to_numpy(value[:room]))
            n_kept += min(room, len(b.y))
        running = tally.results()
        yield Metric("clean_acc", running["clean_acc"], b.index)
        yield Metric("robust_acc", running["robust_acc"], b.index)
        if throttle.due(b.index + 1, b.total):
            yield Progress(b.index + 1, b.total, atk.name)
    seconds = time.perf_counter() - started
    results: dict[str, Any] = {
        **tally.results(), "seconds": seconds,
        "images_per_second": tally.n / seconds if seconds > 0 else float("nan"),
        "attack": atk.name, "params": dict(atk.cfg),
    }  # fmt: skip
    if keep_examples > 0:
        results.update({k: np.concatenate(v) for k, v in kept.items()})
        results.setdefault("target", None)
    yield Done(results)


def eps_sweep(
    model: nn.Module,
    dataset: Dataset,
    *,
    attack: str,
    params: Mapping[str, Any],
    eps_values: list[float],
    n: int | None = 200,
    batch_size: int = 256,
    seed: int | None = 0,
    device: torch.device | str | None = None,
    token: CancelToken | None = None,
    first: int | None = None,
) -> Iterator[Event]:
    """Robust accuracy for each eps, so an accuracy-vs-eps curve grows live.

    ``first`` (the global index of ``dataset``'s first image) draws each
    image's random numbers from (seed, its index), independent of batches;
    None draws per batch.

    After each eps: ``Metric("robust_acc", acc, step=i)`` and
    ``Snapshot(i, len(eps_values), {"eps": ..., "robust_acc": ...})`` with
    float64 arrays of the values so far; ``Progress`` over all batches.
    ``Done``: ``eps``, ``robust_acc``, ``success_rate`` (lists),
    ``clean_acc``, ``n``, ``seconds``, ``attack``, ``params`` (without eps).
    """
    token = token or CancelToken()
    check_batching(n, batch_size)
    if "eps" not in {p.name for p in attack_class(attack).all_params()}:
        raise ValueError(f"attack {attack} has no eps parameter to sweep")
    if not eps_values:
        raise ValueError("eps_values must hold at least one value")
    dev = device_of(model, device)
    base = {k: v for k, v in dict(params).items() if k != "eps"}
    attacks = [create(attack, model, seed=seed, **base, eps=e) for e in eps_values]
    done_eps: list[float] = []
    accs: list[float] = []
    rates: list[float] = []
    clean_acc = float("nan")
    throttle, started = ProgressThrottle(0.01), time.perf_counter()
    total = len(eps_values) * num_batches(dataset, batch_size, n)
    count, tally = 0, _Tally()
    for i, atk in enumerate(attacks):
        tally = _Tally()
        for b in _attacked_batches(model, dataset, atk, n, batch_size, dev, token,
                                   first):
            tally.add(b)
            count += 1
            if throttle.due(count, total):
                yield Progress(count, total, f"eps {atk.cfg['eps']:.4g}")
        res = tally.results()
        clean_acc = res["clean_acc"] if i == 0 else clean_acc
        done_eps.append(float(atk.cfg["eps"]))
        accs.append(res["robust_acc"])
        rates.append(res["success_rate"])
        yield Metric("robust_acc", res["robust_acc"], i)
        yield Snapshot(i, len(attacks), {"eps": np.array(done_eps),
                                         "robust_acc": np.array(accs)}, attack)
    yield Done({"eps": done_eps, "robust_acc": accs, "success_rate": rates,
                "clean_acc": clean_acc, "n": tally.n,
                "seconds": time.perf_counter() - started, "attack": attack,
                "params": {k: v for k, v in attacks[0].cfg.items() if k != "eps"}})
