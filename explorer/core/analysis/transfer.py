"""Transferability between models: a transfer matrix, as one job.

Adversarial examples are crafted on each *source* model (white-box, PGD l-inf
at ``eps`` by default, or any registered attack with an ``eps`` budget) and
every model is then evaluated on them: ``matrix[source][target]`` is the
accuracy of ``target`` on the examples crafted on ``source``. The diagonal is
each model's white-box robust accuracy under that attack; off the diagonal
is how well one model's examples transfer to another (Pang et al.'s
transferability among ensemble members, Tramèr et al.'s black-box transfer).

Accuracy here is the share of *all* ``n`` images whose adversarial version
the target classifies correctly, the usual definition in transfer tables (an
image the target already gets wrong counts as wrong). An example the attack
left outside its budget or the pixel box is replaced by its clean image
(never happens with the registered attacks; the check is the cascade's).

The attack's parameters come from the custom suite's defaults
(:func:`~explorer.core.analysis.custom_suite.custom_plan`): PGD takes
2.5·eps/steps per step, MIM eps/steps, the rest its registered defaults;
``steps`` goes to attacks that have it. Each batch's attack draws from
``seed`` (the attack's generator is seeded per call), so the same images,
batch size and seed give the same matrix.

Events: ``Snapshot(0, n_models, {"clean_acc"}, "clean")`` once the clean
accuracies are known; per source ``i``, ``Progress`` per batch labelled
``crafting on NAME`` and ``Snapshot(i, n_models, {"row"}, "transfer")`` with
the targets' accuracies once its row is complete, and a ``Log`` line.
``Done``: ``models`` (names, rows and columns in this order), ``matrix``
(lists of floats), ``clean_acc`` and ``white_box_acc`` (lists per model),
``attack``, ``params`` (what ran), ``eps``, ``n``, ``seed``, ``config``,
``seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from explorer.core import attacks
from explorer.core.analysis.cascade import inside_budget
from explorer.core.analysis.compare import ModelSource, load_for_data
from explorer.core.analysis.custom_suite import custom_plan, eps_attacks
from explorer.core.analysis.suites import PlannedAttack
from explorer.core.data.batching import batches
from explorer.core.device import device_of
from explorer.core.inference import logits_of
from explorer.core.jobs import CancelToken, Done, Event, Log, Progress, Snapshot
from explorer.core.params import ParamError

DEFAULT_ATTACK = "pgd"
DEFAULT_STEPS = 20


def transfer_attack(attack: str = DEFAULT_ATTACK, eps: float = 0.1,
                    steps: int | None = DEFAULT_STEPS,
                    params: Mapping[str, Any] | None = None) -> PlannedAttack:
    """The attack that crafts the examples, validated (ParamError naming the
    attack or parameter): a registered attack with an ``eps`` budget, l-inf."""
    if attack in attacks.names() and attack not in eps_attacks():
        raise ParamError(f"attack {attack!r} has no eps budget, so it cannot craft "
                         f"the examples of a transfer matrix (choose from "
                         f"{', '.join(eps_attacks())})")
    own = {attack: dict(params)} if params else None
    return custom_plan([attack], [eps], "linf", own, steps=steps)[0]


def _check_models(models: Mapping[str, Any]) -> None:
    if len(models) < 2:
        given = f" ({', '.join(models)})" if models else ""
        raise ParamError(f"a transfer matrix needs at least 2 models, got "
                         f"{len(models)}{given}")


@torch.no_grad()
def _correct(model: nn.Module, x: Tensor, y: Tensor) -> int:
    dev = device_of(model, fallback=x.device)
    pred = logits_of(model, x.to(dev)).argmax(1)
    return int((pred == y.to(dev)).sum())


def transfer_job(
    models: Mapping[str, ModelSource],
    x: Tensor,
    y: Tensor,
    attack: str = DEFAULT_ATTACK,
    eps: float = 0.1,
    *,
    steps: int | None = DEFAULT_STEPS,
    attack_params: Mapping[str, Any] | None = None,
    info: Any = None,
    config: Mapping[str, Any] | None = None,
    batch_size: int = 500,
    seed: int | None = 0,
    device: torch.device | str | None = None,
    token: CancelToken | None = None,
) -> Iterator[Event]:
    """The transfer matrix of ``models`` (name → module, or a loader called in
    the job) on images ``x`` (N×C×H×W in [0, 1]) and labels ``y``; see the
    module doc. ``info`` (a data set's info) checks each model against the
    data before any attack runs."""
    token = token or CancelToken()
    _check_models(models)
    if x.dim() != 4 or len(x) == 0 or len(x) != len(y):
        raise ParamError(f"x must be a non-empty batch N×C×H×W with one label each;"
                         f" got x {tuple(x.shape)} and y {tuple(y.shape)}")
    if batch_size < 1:
        raise ParamError(f"batch_size must be at least 1, got {batch_size}")
    stage = transfer_attack(attack, eps, steps, attack_params)  # fails first
    started = time.perf_counter()
    loaded = {name: load_for_data(name, source, info, device)
              for name, source in models.items()}
    names, nets = list(loaded), list(loaded.values())
    k, n = len(nets), len(x)
    x, y = x.detach(), torch.as_tensor(y).long()
    clean = [0] * k
    for lo in range(0, n, batch_size):
        token.check()
        for j, net in enumerate(nets):
            clean[j] += _correct(net, x[lo:lo + batch_size], y[lo:lo + batch_size])
    clean_acc = [c / n for c in clean]
    yield Snapshot(0, k, {"clean_acc": np.array(clean_acc)}, "clean")
    matrix: list[list[float]] = []
    for i, (name, source) in enumerate(zip(names, nets, strict=True)):
        token.check()
        dev = device_of(source, fallback=x.device)
        atk = attacks.create(stage.name, source, seed=seed, **stage.params)
        hits, outside = [0] * k, 0
        for lo in range(0, n, batch_size):
            token.check()
            xb, yb = x[lo:lo + batch_size].to(dev), y[lo:lo + batch_size].to(dev)
            x_adv = atk(xb, yb).detach()
            valid = inside_budget(stage, x_adv, xb)
            outside += int((~valid).sum())
            x_adv = torch.where(valid.view(-1, 1, 1, 1), x_adv, xb)
            for j, target in enumerate(nets):
                hits[j] += _correct(target, x_adv, yb)
            yield Progress(i * n + lo + len(xb), k * n, f"crafting on {name}")
        row = [h / n for h in hits]
        matrix.append(row)
        yield Snapshot(i, k, {"row": np.array(row)}, "transfer")
        others = [r for j, r in enumerate(row) if j != i]
        yield Log(f"crafted on {name}: white-box {100 * row[i]:.2f}%, other models "
                  f"{100 * min(others):.2f}–{100 * max(others):.2f}%")
        if outside:
            yield Log(f"crafted on {name}: {outside} adversarial examples outside "
                      "the budget or [0, 1] were replaced by the clean images",
                      "warning")
    yield Done({
        "models": names, "matrix": matrix, "clean_acc": clean_acc,
        "white_box_acc": [matrix[i][i] for i in range(k)],
        "attack": stage.name, "params": dict(stage.params), "eps": stage.eps,
        "n": n, "seed": seed, "config": dict(config or {}),
        "seconds": time.perf_counter() - started,
    })


def transfer_dataset_job(models: Mapping[str, ModelSource], dataset: Any,
                         n: int | None = None, *, token: CancelToken | None = None,
                         **kwargs: Any) -> Iterator[Event]:
    """:func:`transfer_job` on the first ``n`` images of ``dataset`` (read in
    the job); its ``info`` is passed on."""
    if n is not None and n < 1:
        raise ParamError(f"the number of images must be at least 1, got {n}")
    _check_models(models)  # bad settings fail before any image is read
    transfer_attack(kwargs.get("attack", DEFAULT_ATTACK), kwargs.get("eps", 0.1),
                    kwargs.get("steps", DEFAULT_STEPS), kwargs.get("attack_params"))
    token = token or CancelToken()
    yield Progress(0, 1, "reading images")
    xs, ys = zip(*batches(dataset, 1000, n), strict=True)
    token.check()
    kwargs.setdefault("info", getattr(dataset, "info", None))
    yield from transfer_job(models, torch.cat(xs),
                            torch.cat([torch.as_tensor(y) for y in ys]),
                            token=token, **kwargs)
