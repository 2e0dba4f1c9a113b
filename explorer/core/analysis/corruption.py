"""Accuracy under random corruptions, and the adversarial confusion matrix.

Pang's evaluations report accuracy under Gaussian noise and under rotations
beside the attacks: a model robust to PGD but broken by a 15° turn is robust
only in one narrow sense. The corruptions are the registry's
``gaussian-noise`` and ``rotation`` attacks; each batch draws its noise from
``seed + batch index``, and every sigma reuses the same draws (scaled), so a
curve over sigma compares like with like.

:func:`corruption_report` runs both for one model (``explorer eval
--corruptions``); :func:`corruptions_job` runs it for several models in turn
(the Evaluate page's Corruptions tab).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from explorer.core.analysis.compare import ModelSource, load_for_data
from explorer.core.analysis.compare_stages import rescaled
from explorer.core.attacks import create
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
from explorer.core.params import ParamError

MAX_SIGMA = 10.0  # the gaussian-noise attack's own limit
MAX_DEGREES = 180.0
SIGMAS = (0.0, 0.05, 0.1, 0.2, 0.3)
ANGLES = (0.0, 10.0, 20.0, 30.0, 45.0)
CONFUSION_ATTACK = "pgd"
CONFUSION_STEPS = 20


def _values(name: str, values: Sequence[float], top: float, unit: str) -> list[float]:
    out = []
    for v in values:
        number = isinstance(v, int | float) and not isinstance(v, bool)
        if not number or not math.isfinite(v):
            raise ParamError(f"{name} must hold finite numbers, got {v!r}")
        if not 0 <= v <= top:
            raise ParamError(f"each of {name} must be in [0, {top:g}]{unit}, "
                             f"got {v:g}")
        out.append(float(v))
    return out


def corruption_accuracy(
    model: nn.Module,
    dataset: Dataset,
    *,
    sigmas: Sequence[float] = SIGMAS,
    angles: Sequence[float] = ANGLES,
    n: int | None = 500,
    batch_size: int = 256,
    seed: int = 0,
    device: torch.device | str | None = None,
    token: CancelToken | None = None,
) -> Iterator[Event]:
    """Accuracy of the first ``n`` images under Gaussian noise of each standard
    deviation in ``sigmas`` (pixel units, in [0, 10]) and rotated by each
    angle in ``angles`` (degrees, in [0, 180], counter-clockwise, corners
    filled black). Either list may be empty, not both.

    Accuracy here is the share classified correctly *after* the corruption
    (not the attack jobs' "correct before and after"). Events: ``Progress``
    over all (setting, batch) pairs; after each setting
    ``Metric("noise_acc" | "rotation_acc", acc, step=i)`` and a ``Snapshot``
    with arrays ``sigma``/``noise_acc`` or ``angle``/``rotation_acc`` so far.
    ``Done``: ``sigmas``, ``noise_acc``, ``angles``, ``rotation_acc`` (lists),
    ``clean_acc``, ``n``, ``seed``, ``seconds``.
    """
    token = token or CancelToken()
    sigmas = _values("sigmas", sigmas, MAX_SIGMA, "")
    angles = _values("angles", angles, MAX_DEGREES, " degrees")
    if not sigmas and not angles:
        raise ParamError("give at least one sigma or one angle")
    check_batching(n, batch_size)
    dev = device_of(model, device)
    settings = [("noise", "gaussian-noise", {"sigma": s}) for s in sigmas] + [
        ("rotation", "rotation", {"degrees": a, "random_angle": False})
        for a in angles]
    per_setting = num_batches(dataset, batch_size, n)
    total = len(settings) * per_setting
    throttle, count, started = ProgressThrottle(0.01), 0, time.perf_counter()
    curves: dict[str, list[float]] = {"noise": [], "rotation": []}
    clean_right = seen = 0
    for i, (kind, attack, params) in enumerate(settings):
        right = seen = 0
        for b, (x, y) in enumerate(batches(dataset, batch_size, n)):
            token.check()
            x, y = x.to(dev, torch.float32), y.to(dev)
            atk = create(attack, model, seed=seed + b, **params)
            right += int((logits_of(model, atk(x, y)).argmax(1) == y).sum())
            if i == 0:
                clean_right += int((logits_of(model, x).argmax(1) == y).sum())
            seen += len(y)
            count += 1
            if throttle.due(count, total):
                yield Progress(count, total, f"{attack} {_label(params)}")
        curves[kind].append(right / seen)
        j = len(curves[kind]) - 1
        yield Metric(f"{kind}_acc", curves[kind][-1], j)
        key = "sigma" if kind == "noise" else "angle"
        xs = (sigmas if kind == "noise" else angles)[: j + 1]
        yield Snapshot(j, len(sigmas if kind == "noise" else angles),
                       {key: np.array(xs), f"{kind}_acc": np.array(curves[kind])},
                       kind)
    yield Done({"sigmas": sigmas, "noise_acc": curves["noise"], "angles": angles,
                "rotation_acc": curves["rotation"], "clean_acc": clean_right / seen,
                "n": seen, "seed": seed, "seconds": time.perf_counter() - started})


def _label(params: Mapping[str, Any]) -> str:
    if "sigma" in params:
        return f"sigma {params['sigma']:g}"
    return f"{params['degrees']:g}°"


def adversarial_confusion(
    model: nn.Module,
    dataset: Dataset,
    *,
    attack: str,
    params: Mapping[str, Any],
    n: int | None = 500,
    batch_size: int = 256,
    seed: int | None = 0,
    device: torch.device | str | None = None,
    token: CancelToken | None = None,
) -> Iterator[Event]:
    """Confusion matrices of the first ``n`` images: rows are the true class,
    columns the class predicted on the clean image (``clean_confusion``) and
    on its adversarial example from ``attack`` with ``params``
    (``confusion``). Row i of either sums to the number of images of class i.

    Events: ``Progress`` per batch. ``Done``: ``confusion``,
    ``clean_confusion`` (int64 arrays K×K), ``classes`` (names, from the data
    set, else "0".."K-1"), ``support`` (images per class), ``robust_acc``
    (correct before and after), ``adv_acc`` (correct after), ``n``,
    ``attack``, ``params``, ``seconds``.
    """
    token = token or CancelToken()
    check_batching(n, batch_size)
    dev = device_of(model, device)
    atk = create(attack, model, seed=seed, **dict(params))
    classes = list(getattr(dataset, "classes", ()))
    started = time.perf_counter()
    total = num_batches(dataset, batch_size, n)
    throttle = ProgressThrottle(0.01)
    trues, cleans, advs = [], [], []
    for i, (x, y) in enumerate(batches(dataset, batch_size, n)):
        token.check()
        x, y = x.to(dev, torch.float32), y.to(dev)
        x_adv = atk(x, y)
        trues.append(y.cpu().numpy())
        cleans.append(logits_of(model, x).argmax(1).cpu().numpy())
        advs.append(logits_of(model, x_adv).argmax(1).cpu().numpy())
        if throttle.due(i + 1, total):
            yield Progress(i + 1, total, atk.name)
    true, clean, adv = (np.concatenate(a).astype(np.int64)
                        for a in (trues, cleans, advs))
    k = max(len(classes), int(max(true.max(), clean.max(), adv.max())) + 1)
    names = classes + [str(c) for c in range(len(classes), k)]
    confusion = np.zeros((k, k), dtype=np.int64)
    clean_confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (true, adv), 1)
    np.add.at(clean_confusion, (true, clean), 1)
    yield Done({"confusion": confusion, "clean_confusion": clean_confusion,
                "classes": names, "support": confusion.sum(1),
                "robust_acc": float(((clean == true) & (adv == true)).mean()),
                "adv_acc": float((adv == true).mean()), "n": len(true),
                "attack": atk.name, "params": dict(atk.cfg),
                "seconds": time.perf_counter() - started})


def confusion_params(eps: float, steps: int = CONFUSION_STEPS) -> dict[str, Any]:
    """The confusion matrix's attack: PGD-``steps`` at l-inf ``eps`` with the
    usual step size 2.5·eps/steps."""
    number = isinstance(eps, int | float) and not isinstance(eps, bool)
    if not number or not 0 < eps <= 1:
        raise ParamError(f"eps must be in (0, 1] (pixel units), got {eps!r}")
    return {"eps": float(eps), "alpha": 2.5 * eps / steps, "steps": steps,
            "norm": "linf"}


def corruption_report(
    model: nn.Module,
    dataset: Dataset,
    *,
    eps: float = 0.1,
    sigmas: Sequence[float] = SIGMAS,
    angles: Sequence[float] = ANGLES,
    n: int | None = 200,
    batch_size: int = 256,
    seed: int = 0,
    device: torch.device | str | None = None,
    token: CancelToken | None = None,
) -> Iterator[Event]:
    """One model: :func:`corruption_accuracy`, then the
    :func:`adversarial_confusion` of PGD-20 at ``eps`` on the same images.

    Events: those of :func:`corruption_accuracy` (its ``Progress`` scaled to
    its share of the whole), ``Progress`` of the attack, and a
    ``Snapshot(0, 1, {"confusion", "clean_confusion"}, "confusion")``.
    ``Done``: ``corruptions`` (sigmas, noise_acc, angles, rotation_acc,
    clean_acc, n) and ``adversarial_confusion`` (attack, params, n,
    robust_acc, adv_acc, classes, confusion and clean_confusion as nested
    lists), ``seconds``: JSON as it is.
    """
    token = token or CancelToken()
    params = confusion_params(eps)
    # the attack's batches cost about 3 passes per step, a corruption's one
    settings = len(sigmas) + len(angles)
    share = settings / (settings + 3 * params["steps"])
    started = time.perf_counter()
    noise: dict[str, Any] = {}
    for event in corruption_accuracy(model, dataset, sigmas=sigmas, angles=angles,
                                     n=n, batch_size=batch_size, seed=seed,
                                     device=device, token=token):
        if isinstance(event, Done):
            noise = event.results
        elif isinstance(event, Progress):
            yield _scaled(event, 0.0, share)
        else:
            yield event
    adv: dict[str, Any] = {}
    for event in adversarial_confusion(model, dataset, attack=CONFUSION_ATTACK,
                                       params=params, n=n, batch_size=batch_size,
                                       seed=seed, device=device, token=token):
        if isinstance(event, Done):
            adv = event.results
        elif isinstance(event, Progress):
            yield _scaled(event, share, 1.0)
    yield Snapshot(0, 1, {"confusion": adv["confusion"],
                          "clean_confusion": adv["clean_confusion"]}, "confusion")
    yield Done({
        "corruptions": {k: noise[k] for k in ("sigmas", "noise_acc", "angles",
                                              "rotation_acc", "clean_acc", "n")},
        "adversarial_confusion": {
            "attack": CONFUSION_ATTACK, "params": params, "n": adv["n"],
            "robust_acc": adv["robust_acc"], "adv_acc": adv["adv_acc"],
            "classes": adv["classes"], "confusion": adv["confusion"].tolist(),
            "clean_confusion": adv["clean_confusion"].tolist()},
        "seconds": time.perf_counter() - started})


def _scaled(event: Progress, lo: float, hi: float) -> Progress:
    """``event`` as the span [lo, hi] of a job counted in thousandths."""
    return Progress(round(1000 * (lo + (hi - lo) * event.fraction)), 1000,
                    event.label)


def corruptions_job(
    models: Mapping[str, ModelSource],
    dataset: Dataset,
    n: int | None = 200,
    *,
    eps: float = 0.1,
    sigmas: Sequence[float] = SIGMAS,
    angles: Sequence[float] = ANGLES,
    batch_size: int = 256,
    seed: int = 0,
    device: torch.device | str | None = None,
    token: CancelToken | None = None,
) -> Iterator[Event]:
    """:func:`corruption_report` for each of ``models`` (name → module, or a
    loader called in the job; each is checked against the data first) on the
    same first ``n`` images.

    Events name their model by index ``i``: ``Snapshot(i, n_models,
    {"sigma", "noise_acc"}, "noise")`` and ``{"angle", "rotation_acc"}``
    ``"rotation"`` as each setting is done, ``{"confusion",
    "clean_confusion"}`` ``"confusion"`` at the end of the model;
    ``Metric("clean_acc" | "robust_acc", value, step=i)``; ``Progress`` over
    the whole job. ``Done``: ``models`` (name → :func:`corruption_report`'s
    results), ``names`` (in order), ``classes``, ``eps``, ``n``, ``seconds``.
    """
    token = token or CancelToken()
    if not models:
        raise ParamError("choose at least one model")
    confusion_params(eps)  # bad settings fail before any model loads
    check_batching(n, batch_size)
    _values("sigmas", sigmas, MAX_SIGMA, "")
    _values("angles", angles, MAX_DEGREES, " degrees")
    started = time.perf_counter()
    info = getattr(dataset, "info", None)
    loaded = {name: load_for_data(name, source, info, device)
              for name, source in models.items()}
    results: dict[str, dict[str, Any]] = {}
    count = len(loaded)
    for i, (name, model) in enumerate(loaded.items()):
        token.check()
        for event in corruption_report(model, dataset, eps=eps, sigmas=sigmas,
                                       angles=angles, n=n, batch_size=batch_size,
                                       seed=seed, device=device, token=token):
            if isinstance(event, Progress):
                yield rescaled(event, i / count, (i + 1) / count, 1000, name)
            elif isinstance(event, Snapshot):  # the curves so far, by model
                yield Snapshot(i, count, event.arrays, event.label)
            elif isinstance(event, Done):
                results[name] = event.results
        report = results[name]
        yield Metric("clean_acc", report["corruptions"]["clean_acc"], i)
        yield Metric("robust_acc", report["adversarial_confusion"]["robust_acc"], i)
    first = next(iter(results.values()))
    yield Done({"models": results, "names": list(results),
                "classes": first["adversarial_confusion"]["classes"],
                "eps": float(eps), "n": first["corruptions"]["n"],
                "seconds": time.perf_counter() - started})
