"""The per-model stages of :func:`~explorer.core.analysis.compare.compare_job`
after the suite: the accuracy-vs-eps sweep, the gradient-masking checks and
the adversarial examples; each reports its events under its model's index."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from explorer.core import attacks
from explorer.core.analysis.masking import masking_checks
from explorer.core.attacks.jobs import eps_sweep
from explorer.core.device import device_of
from explorer.core.inference import logits_of
from explorer.core.jobs import Done, Log, Progress, Snapshot

SWEEP_ATTACK = "apgd-ce"


class Tensors(torch.utils.data.Dataset):
    """In-memory images for the sweep job (sliced directly, no DataLoader)."""

    def __init__(self, x: Tensor, y: Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.x[i], self.y[i]

    def as_tensors(self, start: int, stop: int) -> tuple[Tensor, Tensor]:
        return self.x[start:stop], self.y[start:stop]


def rescaled(event: Progress, lo: float, hi: float, total: int,
              name: str) -> Progress:
    frac = lo + (hi - lo) * event.fraction
    label = f"{name}: {event.label}" if event.label else name
    return Progress(round(frac * total), total, label)


def sweep(model, x, y, values, steps, clean_acc, i, n_models, where, batch_size,
           seed, token, extra=None, first=0):
    """``first``: the global index of ``x[0]``; attacks draw per image."""
    a, b, total, name = where
    curve: dict[str, list[float]] = {"eps": [0.0], "robust_acc": [clean_acc]}
    yield Snapshot(i, n_models, {k: np.array(v) for k, v in curve.items()}, "sweep")
    for event in eps_sweep(model, Tensors(x, y), attack=SWEEP_ATTACK,
                           params={"steps": steps, "norm": "linf", **(extra or {})},
                           eps_values=list(values), n=None, batch_size=batch_size,
                           seed=seed, token=token, first=first):
        if isinstance(event, Progress):
            yield rescaled(event, a, b, total, f"{name}: sweep")
        elif isinstance(event, Snapshot):
            eps_done = [0.0, *event.arrays["eps"].tolist()]
            accs = [clean_acc, *event.arrays["robust_acc"].tolist()]
            curve = {"eps": eps_done, "robust_acc": accs}
            yield Snapshot(i, n_models, {k: np.array(v) for k, v in curve.items()},
                           "sweep")
    return {**curve, "attack": SWEEP_ATTACK, "steps": steps}


def checks(model, x, y, eps, options, i, n_models, where, seed, token):
    a, b, total, name = where
    results: dict[str, Any] = {}
    for event in masking_checks(model, x, y, eps, "linf", seed=seed, token=token,
                                **dict(options or {})):
        if isinstance(event, Progress):
            yield rescaled(event, a, b, total, f"{name}: masking checks")
        elif isinstance(event, Log):
            yield Log(f"{name}: {event.message}", event.level)
        elif isinstance(event, Done):
            results = event.results
    found = results.get("check_dicts") or [c.as_dict()
                                            for c in results.get("checks", [])]
    yield Snapshot(i, n_models, {
        key: np.array([c[key] for c in found])
        for key in ("key", "name", "passed", "value_text", "explanation")
    }, "checks")
    return found


def examples(model: nn.Module, x: Tensor, y: Tensor, stage, seed) -> dict:
    dev = device_of(model, None)
    x, y = x.to(dev), y.to(dev)
    atk = attacks.create(stage.name, model, seed=seed, **stage.params)
    x_adv = atk(x, y)
    return {
        "x": x.detach().cpu().float().numpy(),
        "x_adv": x_adv.detach().cpu().float().numpy(),
        "y": y.cpu().numpy(),
        "pred_clean": logits_of(model, x).argmax(1).cpu().numpy(),
        "pred_adv": logits_of(model, x_adv).argmax(1).cpu().numpy(),
        "attack": np.array(stage.label),
    }


def example_table(shown: dict[str, dict[str, np.ndarray]]) -> dict[str, Any]:
    """The shared clean images once, then each model's adversarial versions."""
    if not shown:
        return {}
    first = next(iter(shown.values()))
    return {"x": first["x"], "y": first["y"].tolist(),
            "attack": str(first["attack"]),
            "x_adv": {m: s["x_adv"] for m, s in shown.items()},
            "pred_clean": {m: s["pred_clean"].tolist() for m, s in shown.items()},
            "pred_adv": {m: s["pred_adv"].tolist() for m, s in shown.items()}}
