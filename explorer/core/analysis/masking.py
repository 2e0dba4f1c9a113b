"""Gradient-masking checks: does the robust accuracy PGD reports deserve trust?

A defense that hides, zeroes or randomises its gradients makes gradient
attacks weak without making the model robust (Athalye et al. 2018; the sanity
checks of AutoAttack). Each check here compares attacks whose order is known
for an honest model and turns a violation into a warning with one line saying
what it means. Accuracies follow :mod:`explorer.core.attacks.jobs`: an image
counts as robust when it is classified correctly before and after the attack.

A sixth check, after AutoAttack's, asks whether two calls on the same input
give the same logits: a randomized defense (Mixup Inference drawing afresh
each call) needs attacks averaging over its randomness. Mixup Inference with
a fixed seed is a deterministic, differentiable function, and on the built-in
models PGD breaks it as it breaks the bare model, so no check warns there.

Default attack sizes (about 10 s for 100 images of the built-in small CNN on
one idle CPU core, summed from per-attack timings): FGSM at ``eps``; PGD
with 10 steps of 2.5·eps/10 and a random start; the stronger PGD with 50
steps of 2.5·eps/50 and 3 restarts; PGD-10 at doubling budgets up to the
large budget (0.5 for l-inf, 0.5·√d for l2, d pixels per image); Square with
300 queries; SPSA (l-inf only) with 10 steps of 16 directions on the first
32 images.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from explorer.core.analysis import masking_verdicts as verdicts
from explorer.core.analysis.masking_verdicts import (
    STRONG_RESTARTS,
    STRONGER,
    CheckResult,
)
from explorer.core.attacks import create, is_success
from explorer.core.device import device_of
from explorer.core.inference import logits_of
from explorer.core.jobs import CancelToken, Done, Event, Log, Metric, Progress
from explorer.core.params import Param, ParamError, validate

NORMS = ("linf", "l2")
__all__ = ["MASKING_PARAMS", "CheckResult", "masking_checks"]


def _robust(model: nn.Module, atk, x: Tensor, y: Tensor, batch_size: int) -> Tensor:
    """Per image: correct before and after the attack (bool, on x's device)."""
    flags = []
    for lo in range(0, len(x), batch_size):
        xb, yb = x[lo:lo + batch_size], y[lo:lo + batch_size]
        x_adv = atk(xb, yb)
        clean_ok = logits_of(model, xb).argmax(1) == yb
        flags.append(clean_ok & ~is_success(logits_of(model, x_adv), yb, None))
    return torch.cat(flags)


def _large_eps(norm: str, x: Tensor) -> float:
    return 0.5 if norm == "linf" else 0.5 * math.sqrt(x[0].numel())


def _pgd(eps: float, norm: str, steps: int, restarts: int = 1) -> dict[str, Any]:
    return {"eps": eps, "alpha": 2.5 * eps / steps, "steps": steps, "norm": norm,
            "restarts": restarts}


def _sweep_values(eps: float, large: float) -> list[float]:
    """Doubling budgets after ``eps``, ending at ``large``."""
    values = [eps * 2**k for k in range(1, 20) if eps * 2**k < large]
    return [*values, large]


MASKING_PARAMS = (
    Param("eps", float, 0.1, "budget of the checked threat model (pixel units)",
          minimum=0.0, maximum=1000.0, unit="px"),
    Param("norm", str, "linf", "threat model", choices=NORMS),
    Param("steps", int, 10, "steps of the base PGD", minimum=1, maximum=1000),
    Param("tolerance", float, 0.03, "accuracy gap still counted as a pass",
          minimum=0.0, maximum=0.5),
    Param("square_queries", int, 300, "Square queries per image", minimum=1,
          maximum=100_000),
    Param("spsa_images", int, 32, "images SPSA attacks (l-inf only; 0 skips it)",
          minimum=0, maximum=100_000),
)  # fmt: skip


def _check_inputs(x: Tensor, y: Tensor, values: dict[str, Any]) -> dict[str, Any]:
    cfg = validate(MASKING_PARAMS, values)
    if x.dim() != 4 or len(x) == 0 or len(x) != len(y):
        raise ParamError(f"x must be a non-empty batch N×C×H×W with one label "
                         f"each; got x {tuple(x.shape)} and y {tuple(y.shape)}")
    large = _large_eps(cfg["norm"], x)
    if not 0 < cfg["eps"] < large:
        raise ParamError(f"eps must be in (0, {large:.3g}) for {cfg['norm']} (the "
                         f"large-budget check uses {large:.3g}), got {cfg['eps']:g}")
    return cfg


def _loss_trace(model, x, y, params, seed, batch_size, token):
    """Per-image attack loss at PGD's first and last iterate (2, N), and
    whether each image stays robust; the live path yields every iterate."""
    atk = create("pgd", model, seed=seed, **params)
    losses, flags = [], []
    for lo in range(0, len(x), batch_size):
        xb, yb = x[lo:lo + batch_size], y[lo:lo + batch_size]
        first = last = final = None
        with contextlib.closing(atk.run(xb, yb)) as steps:
            for step in steps:
                token.check()
                if step.step < step.total:
                    first = step.loss if first is None else first
                    last = step.loss
                final = step
        clean_ok = logits_of(model, xb).argmax(1) == yb
        flags.append(clean_ok & ~is_success(logits_of(model, final.x_adv), yb, None))
        losses.append(torch.stack([first, last]))
    return torch.cat(losses, 1), torch.cat(flags)


def masking_checks(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    norm: str = "linf",
    *,
    steps: int = 10,
    tolerance: float = 0.03,
    square_queries: int = 300,
    spsa_images: int = 32,
    batch_size: int = 256,
    seed: int | None = 0,
    device: torch.device | str | None = None,
    token: CancelToken | None = None,
) -> Iterator[Event]:
    """Run the gradient-masking checks on images ``x`` (N×C×H×W) and labels
    ``y`` at budget ``eps`` in ``norm`` ("linf" or "l2").

    Checks (keys): ``iterative-vs-single-step`` PGD-``steps`` accuracy ≤ FGSM
    accuracy (l2: one normalised step of size eps); ``white-vs-black-box`` PGD
    ≤ Square and, for l-inf with ``spsa_images`` > 0, ≤ SPSA on the first
    ``spsa_images`` images; ``large-eps`` PGD accuracy at the large budget
    ≤ the slack (≈ 0);
    ``more-steps-restarts`` 5× the steps with 3 restarts lowers accuracy by at
    most the slack; ``loss-rises`` the attack loss rises from PGD's first to its
    last iterate for at least 90% of the images; ``deterministic`` two forward
    passes of ``x`` give the same logits. The slack is ``max(tolerance, 1.5/N)``
    (at least one image's worth of accuracy, so one image is never a warning).
    Default sizes: see the module docstring; ``MASKING_PARAMS`` describes the
    options for forms. Bad values raise ParamError naming the parameter.

    Events: ``Progress`` per stage, ``Metric("acc_<attack>")``, a warning
    ``Log`` per failed check. ``Done``: ``checks`` (list of
    :class:`CheckResult`, in the order above), ``check_dicts`` (the same as
    JSON-friendly dicts, for run records), ``accuracies`` (``clean``,
    ``single_step``, ``pgd``, ``pgd_strong``, ``square``, ``spsa`` when run,
    on its images only, and ``pgd_large``), ``warnings`` (count), ``eps``,
    ``norm``, ``n``, ``seconds``.
    """
    token = token or CancelToken()
    cfg = _check_inputs(x, y, {"eps": eps, "norm": norm, "steps": steps,
                               "tolerance": tolerance,
                               "square_queries": square_queries,
                               "spsa_images": spsa_images})
    eps, norm, steps = cfg["eps"], cfg["norm"], cfg["steps"]
    dev = device_of(model, device)
    x = x.detach().to(dev, torch.float32)
    y = torch.as_tensor(y).long().to(dev)
    n = len(x)
    slack = max(tolerance, 1.5 / n)
    started = time.perf_counter()
    large = _large_eps(norm, x)
    stages = 7
    acc: dict[str, float] = {}
    checks: list[CheckResult] = []

    def stage(i: int, label: str) -> Progress:
        token.check()
        return Progress(i, stages, label)

    def measure(key: str, name: str, params: dict[str, Any], xs=x, ys=y) -> Tensor:
        flags = _robust(model, create(name, model, seed=seed, **params), xs, ys,
                        batch_size)
        acc[key] = float(flags.float().mean())
        return flags

    yield stage(0, "clean and single-step")
    acc["clean"] = float((logits_of(model, x).argmax(1) == y).float().mean())
    single = ("fgsm", {"eps": eps}) if norm == "linf" else (
        "pgd", {"eps": eps, "alpha": eps, "steps": 1, "norm": norm,
                "random_start": False})
    measure("single_step", *single)

    yield stage(1, f"PGD-{steps} with its loss trace")
    base = _pgd(eps, norm, steps)
    losses, pgd_flags = _loss_trace(model, x, y, base, seed, batch_size, token)
    acc["pgd"] = float(pgd_flags.float().mean())
    checks.append(verdicts.single_step_check(acc, steps, slack))

    yield stage(2, f"PGD-{STRONGER * steps} × {STRONG_RESTARTS} restarts")
    measure("pgd_strong", "pgd", _pgd(eps, norm, STRONGER * steps, STRONG_RESTARTS))
    checks.append(verdicts.more_steps_check(acc, steps, slack))

    yield stage(3, "Square (black-box)")
    measure("square", "square", {"eps": eps, "norm": norm,
                                          "queries": square_queries})
    spsa = None
    if norm == "linf" and spsa_images > 0:
        yield stage(4, "SPSA (black-box)")
        m = min(spsa_images, n)
        spsa_flags = measure("spsa", "spsa", {"eps": eps, "steps": 10, "samples": 16},
                             x[:m], y[:m])
        spsa = (m, float(pgd_flags[:m].float().mean()),
                float(spsa_flags.float().mean()))
    checks.append(verdicts.black_box_check(acc, spsa, steps, slack))

    yield stage(5, "PGD up to a large budget")
    sweep: dict[str, list[float]] = {"eps": [], "robust_acc": []}
    for e in _sweep_values(eps, large):
        token.check()
        measure("pgd_large", "pgd", _pgd(e, norm, 10))
        sweep["eps"].append(e)
        sweep["robust_acc"].append(acc["pgd_large"])
    checks.append(verdicts.large_eps_check(acc, sweep, large, slack))

    yield stage(6, "loss trace and repeatability")
    checks.append(verdicts.loss_check(losses))
    checks.append(verdicts.deterministic_check(model, x[:batch_size]))

    for key, value in acc.items():
        yield Metric(f"acc_{key}", value)
    for c in checks:
        if not c.passed:
            yield Log(f"{c.name}: {c.explanation}", "warning")
    yield Progress(stages, stages, "done")
    yield Done({"checks": checks, "check_dicts": [c.as_dict() for c in checks],
                "accuracies": acc, "eps": eps, "norm": norm,
                "n": n, "warnings": sum(not c.passed for c in checks),
                "seconds": time.perf_counter() - started})
