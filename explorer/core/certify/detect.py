"""Adversarial-example detectors, their ROC curves and an adaptive attack.

Three detectors share one interface (:class:`Detector`): ``fit`` on
training-split examples, then ``score(x)``, higher = more adversarial.

- ``kd``: Feinman et al. (2017). Kernel density of the penultimate features
  for the predicted class (:class:`~explorer.core.defenses.rce.
  KDensityDetector`, its reference the clean half of the fit images) and
  Bayesian uncertainty from Monte-Carlo dropout (the variance of ``T``
  stochastic softmax outputs); a logistic regression on the two, trained on
  clean and noisy (negative) and adversarial (positive) examples. The
  built-in small-cnn has no dropout layer, so dropout (p 0.5) is applied to
  the penultimate features at test time, with masks fixed by the seed.
- ``lid``: Ma et al. (2018). Local intrinsic dimensionality per layer, from
  the ``k`` nearest neighbours among a fixed batch of clean reference
  activations, ``LID = -(1/k Σ log(r_i / r_k))⁻¹``; a logistic regression
  on the per-layer estimates (clean and noisy vs adversarial).
- ``non-me``: Pang et al. (2018, seed 003). The entropy of the normalised
  non-maximal predictions; reverse cross-entropy (RCE) training keeps it high
  on clean inputs, so a low value flags an adversarial one. Nothing to fit;
  a model not trained with RCE can be scored, but the detector is weak there.

:func:`roc` turns clean and adversarial scores into a ROC curve, its AUC,
the true-positive rate at 5 % false positives and that threshold.
:func:`adaptive_attack` is PGD l-inf that fools the model while also
minimising a detector's (differentiable) score — Carlini & Wagner's lesson
that a detector is only as good as the attack that knows it.
:func:`detect_job` runs it all as one cancellable job; only the clean test
images the model classifies right, and the adversarial ones that fool it,
enter the ROC, as in the papers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from explorer.core import attacks
from explorer.core.analysis.cascade import inside_budget
from explorer.core.analysis.custom_suite import custom_plan, eps_attacks
from explorer.core.analysis.suites import PlannedAttack
from explorer.core.attacks.threat import linf_budget_error
from explorer.core.certify.detectors import (
    DETECTORS,
    TITLES,
    Detector,
    FitSet,
    lid_estimates,
    make_detector,
    non_max_entropy,
    training_method,
)
from explorer.core.data.batching import batches
from explorer.core.device import device_of
from explorer.core.inference import model_frozen
from explorer.core.jobs import CancelToken, Done, Event, Log, Progress, Snapshot
from explorer.core.params import ParamError

DEFAULT_ATTACK = "pgd"
DEFAULT_EPS = 0.1
DEFAULT_STEPS = 20
DEFAULT_N = 200
DEFAULT_FIT_N = 400
FPR_TARGET = 0.05
BATCH = 250
__all__ = ["DETECTORS", "TITLES", "Detector", "FitSet", "Roc", "adaptive_attack",
           "check_settings", "detect_attack", "detect_job", "lid_estimates",
           "make_detector", "non_max_entropy", "roc", "training_method"]


# -- ROC -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Roc:
    """A ROC curve (``fpr``, ``tpr`` ascending; ``thresholds[i]`` flags a
    score ``>= thresholds[i]``), its area and the operating point at 5 % FPR."""

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    auc: float
    tpr_at_5fpr: float
    threshold: float

    def summary(self) -> dict[str, float]:
        return {"auc": self.auc, "tpr_at_5fpr": self.tpr_at_5fpr,
                "threshold": self.threshold}


def roc(clean_scores: Any, adv_scores: Any, fpr_target: float = FPR_TARGET) -> Roc:
    """The ROC of a detector whose higher scores mean adversarial: clean
    examples are the negatives, adversarial ones the positives. Ties count
    half (the AUC is the Mann–Whitney probability that an adversarial score
    beats a clean one). ``threshold`` is the one with the highest TPR whose
    FPR is at most ``fpr_target`` (``inf`` when only flagging nothing is)."""
    neg = np.asarray(clean_scores, dtype=np.float64).ravel()
    pos = np.asarray(adv_scores, dtype=np.float64).ravel()
    if len(neg) == 0 or len(pos) == 0:
        raise ParamError(f"a ROC needs clean and adversarial scores, got "
                         f"{len(neg)} clean and {len(pos)} adversarial")
    if np.isnan(neg).any() or np.isnan(pos).any():
        raise ParamError("detector scores must not be NaN")
    thresholds = np.unique(np.concatenate([neg, pos]))[::-1]
    neg_sorted, pos_sorted = np.sort(neg), np.sort(pos)
    # count of scores >= t for each threshold t
    fp = len(neg) - np.searchsorted(neg_sorted, thresholds, side="left")
    tp = len(pos) - np.searchsorted(pos_sorted, thresholds, side="left")
    fpr = np.concatenate([[0.0], fp / len(neg)])
    tpr = np.concatenate([[0.0], tp / len(pos)])
    thresholds = np.concatenate([[np.inf], thresholds])
    auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    ok = np.flatnonzero(fpr <= fpr_target + 1e-12)
    best = ok[np.argmax(tpr[ok])]
    return Roc(fpr, tpr, thresholds, auc, float(tpr[best]), float(thresholds[best]))


# -- attacks ---------------------------------------------------------------
def detect_attack(attack: str = DEFAULT_ATTACK, eps: float = DEFAULT_EPS,
                  steps: int | None = DEFAULT_STEPS) -> PlannedAttack:
    """The attack crafting the examples, validated: a registered l-inf attack
    with an eps budget (ParamError naming it otherwise)."""
    if attack in attacks.names() and attack not in eps_attacks():
        raise ParamError(f"attack {attack!r} has no eps budget (choose from "
                         f"{', '.join(eps_attacks())})")
    return custom_plan([attack], [eps], "linf", steps=steps)[0]


def _margin(logits: Tensor, y: Tensor) -> Tensor:
    """Best other logit minus the true one (> 0: misclassified)."""
    true = logits.gather(1, y[:, None])[:, 0]
    other = logits.scatter(1, y[:, None], -math.inf).max(1).values
    return other - true


def adaptive_attack(model: nn.Module, detector: Detector, x: Tensor, y: Tensor,
                    eps: float, steps: int, *, weight: float = 1.0,
                    kappa: float = 2.0, seed: int = 0,
                    token: CancelToken | None = None) -> Tensor:
    """PGD l-inf (random start, step 2.5·eps/steps) ascending
    ``min(margin, kappa) - weight · score``: misclassify by a logit margin of
    ``kappa``, then lower the detector's score. Keeps, per image, the iterate
    with the lowest score among those that fool the model (the last one when
    none does)."""
    gen = torch.Generator().manual_seed(seed)
    alpha = 2.5 * eps / steps
    delta = (torch.rand(x.shape, generator=gen) * 2 - 1).to(x.device) * eps
    x_adv = (x + delta).clamp(0, 1)
    best = x_adv.clone()
    best_score = torch.full((len(x),), math.inf, device=x.device)
    for step in range(steps + 1):
        if token is not None:
            token.check()
        x_adv = x_adv.detach().requires_grad_(True)
        with torch.enable_grad():
            margin = _margin(model(x_adv), y)
            score = detector.score_t(x_adv)
            objective = margin.clamp(max=kappa) - weight * score
            grad, = torch.autograd.grad(objective.sum(), x_adv)
        with torch.no_grad():
            better = (margin > 0) & (score < best_score)
            best[better] = x_adv[better]
            best_score[better] = score[better]
            if step == steps:
                break
            x_adv = x_adv + alpha * grad.sign()
            x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
    found = torch.isfinite(best_score)
    return torch.where(found.view(-1, 1, 1, 1), best, x_adv.detach())


def _craft(model: nn.Module, stage: PlannedAttack, x: Tensor, y: Tensor,
           seed: int, token: CancelToken) -> Tensor:
    atk = attacks.create(stage.name, model, seed=seed, **stage.params)
    out = []
    for lo in range(0, len(x), BATCH):
        token.check()
        xb, yb = x[lo:lo + BATCH], y[lo:lo + BATCH]
        adv = atk(xb, yb).detach()
        valid = inside_budget(stage, adv, xb)
        out.append(torch.where(valid.view(-1, 1, 1, 1), adv, xb))
    return torch.cat(out) if out else x[:0]


@torch.no_grad()
def _predict(model: nn.Module, x: Tensor) -> Tensor:
    return torch.cat([model(x[i:i + BATCH]).argmax(1) for i in range(0, len(x), BATCH)]
                     ) if len(x) else torch.zeros(0, dtype=torch.long, device=x.device)


def _noisy_like(x: Tensor, adv: Tensor, seed: int) -> Tensor:
    """Gaussian noise with each adversarial perturbation's l2 size, clipped
    to the pixel box (the papers' "noisy" negatives)."""
    gen = torch.Generator().manual_seed(seed + 1)
    noise = torch.randn(x.shape, generator=gen).to(x.device)
    size = (adv - x).flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    noise = noise / noise.flatten(1).norm(dim=1).view(-1, 1, 1, 1).clamp_min(1e-12)
    return (x + noise * size).clamp(0, 1)


# -- the job ---------------------------------------------------------------
@dataclass
class DetectSettings:
    detectors: tuple[str, ...]
    stage: PlannedAttack
    n: int
    fit_n: int
    steps: int
    extras: dict[str, Any] = field(default_factory=dict)


def check_settings(detector: str | Sequence[str] = "kd", attack: str = DEFAULT_ATTACK,
                   eps: float = DEFAULT_EPS, n: int = DEFAULT_N,
                   steps: int = DEFAULT_STEPS, fit_n: int = DEFAULT_FIT_N
                   ) -> DetectSettings:
    """The validated settings; ParamError naming the first bad one."""
    names = (detector,) if isinstance(detector, str) else tuple(detector)
    if not names:
        raise ParamError(f"choose at least one detector ({', '.join(DETECTORS)})")
    for name in names:
        if name not in DETECTORS:
            raise ParamError(f"unknown detector {name!r} (choose from "
                             f"{', '.join(DETECTORS)})")
    if isinstance(eps, int | float) and not isinstance(eps, bool) and eps > 1 \
            and math.isfinite(eps):
        raise linf_budget_error("eps", eps)
    if isinstance(eps, bool) or not isinstance(eps, int | float) or \
            not math.isfinite(eps) or not 0 < eps <= 1:
        raise ParamError(f"eps must be in (0, 1] (an l-inf budget in pixels), "
                         f"got {eps!r}")
    for key, value, low in (("n", n, 1), ("steps", steps, 1), ("fit_n", fit_n, 20)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ParamError(f"{key} must be an integer of at least {low}, "
                             f"got {value!r}")
    stage = detect_attack(attack, float(eps), steps)
    return DetectSettings(tuple(dict.fromkeys(names)), stage, n, fit_n, steps)


def _read(dataset: Any, n: int) -> tuple[Tensor, Tensor]:
    xs, ys = zip(*batches(dataset, 1000, n), strict=True)
    return torch.cat(xs), torch.cat([torch.as_tensor(y) for y in ys]).long()


def detect_job(
    model: nn.Module,
    dataset: Any,
    *,
    detector: str | Sequence[str] = "kd",
    attack: str = DEFAULT_ATTACK,
    eps: float = DEFAULT_EPS,
    n: int = DEFAULT_N,
    steps: int = DEFAULT_STEPS,
    adaptive: bool = False,
    fit_n: int = DEFAULT_FIT_N,
    fit_dataset: Any = None,
    seed: int = 0,
    token: CancelToken | None = None,
    device: torch.device | str | None = None,
) -> Iterator[Event]:
    """Fit ``detector`` (one name or several) on ``fit_n`` images of
    ``fit_dataset`` (a data set, or a callable returning one, read in the job;
    the training split — ``None``: the images after the first ``n`` of
    ``dataset``), attack the first ``n`` images of ``dataset`` and score them.

    Events: ``Progress``; per detector ``Snapshot(i, k, {"fpr", "tpr", "auc"},
    "roc:NAME")`` and with ``adaptive`` ``Snapshot(i, k, {"fpr", "tpr", "auc"},
    "roc-adaptive:NAME")``; a ``Log`` per curve. ``Done``: ``detectors``
    {name: {auc, tpr_at_5fpr, threshold, n_adv, and with adaptive
    auc_adaptive, tpr_at_5fpr_adaptive, threshold_adaptive, n_adv_adaptive}},
    the first detector's ``auc``, ``tpr_at_5fpr``, ``threshold`` at the top
    level, ``n``, ``n_clean`` (test images classified right), ``n_adv`` (of
    those, fooled by the attack), ``fit_n``, ``attack``, ``eps``, ``steps``,
    ``training_method`` (what the model's metadata records, or None),
    ``notes``, ``seconds``."""
    s = check_settings(detector, attack, eps, n, steps, fit_n)
    token = token or CancelToken()
    started = time.perf_counter()
    yield Progress(0, 1, "reading images")
    x, y = _read(dataset, n)
    notes: list[str] = []
    if fit_dataset is None:
        fit_x, fit_y = _read(dataset, n + fit_n)
        fit_x, fit_y = fit_x[n:], fit_y[n:]
        notes.append(f"fitted on images {n}.. of the evaluated split (no training "
                     "split given), disjoint from the evaluated ones")
    else:
        fit_source = fit_dataset() if callable(fit_dataset) else fit_dataset
        fit_x, fit_y = _read(fit_source, fit_n)
    if len(fit_x) < 20:
        raise ParamError(f"fit_n: only {len(fit_x)} images to fit the detectors on; "
                         "at least 20 are needed")
    token.check()
    dev = device_of(model, device, fallback="cpu")
    model = model.to(dev)
    x, y, fit_x, fit_y = x.to(dev), y.to(dev), fit_x.to(dev), fit_y.to(dev)
    k = len(s.detectors)
    adv_needed = any(make_detector(d).needs_adversarial for d in s.detectors)
    phases = 1 + int(adv_needed) + k * (1 + int(adaptive))
    done = 0
    with model_frozen(model):
        yield Progress(done, phases, f"attacking {len(x)} test images")
        ok = _predict(model, x) == y
        x_ok, y_ok = x[ok], y[ok]
        x_adv = _craft(model, s.stage, x_ok, y_ok, seed, token)
        fooled = _predict(model, x_adv) != y_ok
        adv_ok = x_adv[fooled]
        done += 1
        if len(x_ok) == 0 or len(adv_ok) == 0:
            raise ParamError(
                f"no ROC: of {len(x)} test images the model classifies "
                f"{len(x_ok)} right and the attack fools it on {len(adv_ok)}; "
                "raise n or eps")
        fit = None
        if adv_needed:
            yield Progress(done, phases, f"crafting {len(fit_x) // 2} fit examples")
            half = len(fit_x) // 2
            ref_x, ref_y = fit_x[:half], fit_y[:half]
            lx, ly = fit_x[half:], fit_y[half:]
            lok = _predict(model, lx) == ly
            lx, ly = lx[lok], ly[lok]
            ladv = _craft(model, s.stage, lx, ly, seed + 1, token)
            lfool = _predict(model, ladv) != ly
            if int(lfool.sum()) < 2:
                raise ParamError(f"the attack fools the model on only "
                                 f"{int(lfool.sum())} fit images; raise fit_n or eps")
            fit = FitSet(ref_x, ref_y, lx, ladv[lfool],
                         _noisy_like(lx[lfool], ladv[lfool], seed))
            done += 1
        per: dict[str, dict[str, Any]] = {}
        for i, name in enumerate(s.detectors):
            token.check()
            yield Progress(done, phases, f"fitting and scoring {name}")
            det = make_detector(name, seed)
            det.fit(model, fit)
            notes += det.notes
            clean_scores = det.score(x_ok).cpu().numpy()
            curve = roc(clean_scores, det.score(adv_ok).cpu().numpy())
            done += 1
            per[name] = {**curve.summary(), "n_adv": len(adv_ok)}
            yield Snapshot(i, k, {"fpr": curve.fpr, "tpr": curve.tpr,
                                  "auc": np.array([curve.auc])}, f"roc:{name}")
            yield Log(f"{name}: AUC {curve.auc:.3f}, TPR {curve.tpr_at_5fpr:.3f} at "
                      f"5% FPR ({len(x_ok)} clean, {len(adv_ok)} adversarial)")
            if not adaptive:
                continue
            yield Progress(done, phases, f"adaptive attack on {name}")
            out = []
            for lo in range(0, len(x_ok), BATCH):
                out.append(adaptive_attack(model, det, x_ok[lo:lo + BATCH],
                                           y_ok[lo:lo + BATCH], s.stage.eps, steps,
                                           seed=seed, token=token).detach())
            x_ad = torch.cat(out)
            ad_ok = x_ad[_predict(model, x_ad) != y_ok]
            done += 1
            if len(ad_ok) == 0:
                yield Log(f"{name}: the adaptive attack fooled the model on no image",
                          "warning")
                per[name].update(auc_adaptive=None, tpr_at_5fpr_adaptive=None,
                                 threshold_adaptive=None, n_adv_adaptive=0)
                continue
            after = roc(clean_scores, det.score(ad_ok).cpu().numpy())
            per[name].update(auc_adaptive=after.auc,
                             tpr_at_5fpr_adaptive=after.tpr_at_5fpr,
                             threshold_adaptive=after.threshold,
                             n_adv_adaptive=len(ad_ok))
            yield Snapshot(i, k, {"fpr": after.fpr, "tpr": after.tpr,
                                  "auc": np.array([after.auc])}, f"roc-adaptive:{name}")
            yield Log(f"{name}, adaptive attack: AUC {after.auc:.3f} (was "
                      f"{curve.auc:.3f}), {len(ad_ok)} adversarial")
    yield Progress(phases, phases, "done")
    first = per[s.detectors[0]]
    yield Done({
        "detectors": per, "detector": s.detectors[0], "auc": first["auc"],
        "tpr_at_5fpr": first["tpr_at_5fpr"], "threshold": first["threshold"],
        **({"auc_adaptive": first.get("auc_adaptive")} if adaptive else {}),
        "n": len(x), "n_clean": len(x_ok), "n_adv": len(adv_ok), "fit_n": len(fit_x),
        "attack": s.stage.name, "eps": s.stage.eps, "steps": steps,
        "adaptive": adaptive, "seed": seed,
        "training_method": training_method(model) or None,
        "notes": list(dict.fromkeys(notes)),
        "seconds": time.perf_counter() - started,
    })

