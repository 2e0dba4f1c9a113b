"""The Attack Lab's job: one small batch, attacked iterate by iterate.

The job sets no grad mode across a ``yield``: the attack enables gradients
inside its own steps, and the bookkeeping here runs in ``no_grad`` helpers
that return before anything is yielded. Stopping early (cancel, or a consumer
that drops the generator) closes the attack's generator, which restores the
model's mode at once.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from explorer.core.attacks import create
from explorer.core.attacks.base import Attack, AttackStep, attack_loss, is_success
from explorer.core.attacks.examples import check_budget
from explorer.core.device import device_of
from explorer.core.inference import logits_of
from explorer.core.jobs import CancelToken, Done, Event, Metric, Progress, Snapshot


def to_numpy(t: Tensor | None, dtype: Any = None) -> np.ndarray | None:
    if t is None:
        return None
    out = t.detach().cpu().numpy()
    return out.astype(dtype, copy=False) if dtype is not None else out


@torch.no_grad()
def _arrays(model, x_adv, y, target, logits=None, loss=None, success=None):
    """CPU arrays of one iterate (computing what the fast path left out)."""
    logits = logits_of(model, x_adv) if logits is None else logits
    loss = attack_loss(logits, y, target) if loss is None else loss
    success = is_success(logits, y, target) if success is None else success
    arrays = {"x_adv": to_numpy(x_adv, np.float32),
              "loss": to_numpy(loss, np.float32),
              "probs": to_numpy(logits.float().softmax(1), np.float32),
              "success": to_numpy(success).astype(bool)}
    if target is not None:  # a view can draw the target's confidence live
        arrays["target"] = to_numpy(target).astype(np.int64)
    return arrays


def _step_arrays(model, step, y) -> dict[str, np.ndarray]:
    return _arrays(model, step.x_adv, y, step.target, step.logits, step.loss,
                   step.success)


def _iterate_events(arrays, step: AttackStep, label: str, every: int):
    total = step.total
    step = step.step
    if step % every == 0:
        yield Snapshot(step, total, arrays, label)
    yield Metric("loss", float(arrays["loss"].mean()), step)
    yield Metric("success_rate", float(arrays["success"].mean()), step)
    yield Progress(min(step, total), total, label)


def attack_live(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    attack: str,
    params: Mapping[str, Any],
    seed: int | None = 0,
    target: Tensor | None = None,
    device: torch.device | str | None = None,
    snapshot_every: int = 1,
    token: CancelToken | None = None,
) -> Iterator[Event]:
    """Attack one small batch (B, C, H, W), iterate by iterate.

    Events: first ``Snapshot(0, total, ..., label="clean")`` of the clean
    images (sent with the first iterate, once the target is known); then per
    iterate ``Snapshot(step, total, arrays, label=attack)`` every
    ``snapshot_every`` steps and always for the last, plus ``Metric("loss")``
    (mean), ``Metric("success_rate")`` and ``Progress(step, total)``.
    Snapshot arrays: ``x_adv`` (B, C, H, W) float32, ``loss`` (B,) float32
    (the objective the attack maximises), ``probs`` (B, K) float32 softmax,
    ``success`` (B,) bool. ``Done`` results: see ``_live_results``; the
    definitions are those of :mod:`explorer.core.attacks.jobs`.
    """
    token = token or CancelToken()
    if snapshot_every < 1:
        raise ValueError(f"snapshot_every must be at least 1, got {snapshot_every}")
    dev = device_of(model, device)
    x = torch.as_tensor(x, dtype=torch.float32).to(dev)
    x = x.unsqueeze(0) if x.dim() == 3 else x
    y = torch.as_tensor(y, dtype=torch.long).reshape(-1).to(dev)
    target = None if target is None else torch.as_tensor(target).long().to(dev)
    atk = create(attack, model, seed=seed, **dict(params))
    token.check()
    started = time.perf_counter()
    prev = None
    with contextlib.closing(atk.run(x, y, target)) as steps:
        for step in steps:
            token.check()
            if prev is None:
                clean = _arrays(model, x, y, step.target)
                yield Snapshot(0, step.total, clean, "clean")
            else:
                yield from _iterate_events(_step_arrays(model, prev, y), prev,
                                           atk.name, snapshot_every)
            prev = step
    if prev is None:
        raise RuntimeError(f"attack {atk.name} yielded no result")
    final = _step_arrays(model, prev, y)
    yield from _iterate_events(final, prev, atk.name, 1)
    yield Done(_live_results(model, atk, x, y, prev, final,
                             time.perf_counter() - started))


def _live_results(model, atk: Attack, x, y, last, final, seconds) -> dict[str, Any]:
    """``x``, ``x_adv``, ``y``, ``target`` (or None), ``probs_clean``,
    ``probs_adv``, ``pred_clean``, ``pred_adv``, ``success``, ``loss``,
    ``norms`` (per-image linf/l2/l1) and the scalars."""
    norms = check_budget(atk, x, last.x_adv)
    probs_clean = to_numpy(logits_of(model, x).float().softmax(1), np.float32)
    y_np = to_numpy(y)
    pred_clean = probs_clean.argmax(1)
    pred_adv = final["probs"].argmax(1)
    return {
        "x": to_numpy(x, np.float32), "x_adv": final["x_adv"], "y": y_np,
        "target": to_numpy(last.target), "probs_clean": probs_clean,
        "probs_adv": final["probs"], "pred_clean": pred_clean, "pred_adv": pred_adv,
        "success": final["success"], "loss": final["loss"], "norms": norms,
        "success_rate": float(final["success"].mean()),
        "clean_acc": float((pred_clean == y_np).mean()),
        "robust_acc": float(((pred_clean == y_np) & (pred_adv == y_np)).mean()),
        **{f"mean_{k}": float(v.mean()) for k, v in norms.items()},
        "seconds": seconds, "attack": atk.name, "params": dict(atk.cfg),
    }  # fmt: skip
