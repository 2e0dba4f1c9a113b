"""The detectors behind :mod:`explorer.core.certify.detect`: one interface,
``fit(model, fit_set)`` then ``score(x)`` / the differentiable ``score_t(x)``,
higher = more adversarial (the module doc of ``detect`` says what each is)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from explorer.core.defenses.rce import KDensityDetector
from explorer.core.params import ParamError

BATCH = 250
DETECTORS = ("kd", "lid", "non-me")
TITLES = {"kd": "kernel density + Bayesian uncertainty (Feinman et al. 2017)",
          "lid": "local intrinsic dimensionality (Ma et al. 2018)",
          "non-me": "non-maximal entropy (Pang et al. 2018)"}


# -- the detectors ---------------------------------------------------------------
@dataclass
class FitSet:
    """Training-split examples a detector learns from: a clean reference
    (``ref_x``, ``ref_y``: density / neighbour reference), and, disjoint from
    it, clean and noisy negatives and adversarial positives."""

    ref_x: Tensor
    ref_y: Tensor
    clean_x: Tensor
    adv_x: Tensor
    noisy_x: Tensor


def training_method(model: nn.Module) -> str:
    """The training method the model's metadata records ("rce", "standard",
    ...), or "" when it records none."""
    training = getattr(getattr(model, "meta", None), "training", None) or {}
    return str(training.get("method", "") or "")


def _has_features(model: nn.Module) -> bool:
    return callable(getattr(model, "features", None)) and isinstance(
        getattr(model, "head", None), nn.Module)


class _LogReg:
    """Logistic regression on standardised features (Newton, small L2), a
    differentiable decision function: the logit of "adversarial"."""

    def fit(self, neg: Tensor, pos: Tensor, l2: float = 1e-3) -> None:
        f = torch.cat([neg, pos]).double().cpu()
        t = torch.cat([torch.zeros(len(neg)), torch.ones(len(pos))]).double()
        self.mean = f.mean(0)
        self.std = f.std(0).clamp_min(1e-8) if len(f) > 1 else torch.ones(f.shape[1])
        z = (f - self.mean) / self.std
        a = torch.cat([z, torch.ones(len(z), 1, dtype=z.dtype)], 1)
        reg = torch.full((a.shape[1],), l2, dtype=z.dtype)
        reg[-1] = 0.0  # the bias is not penalised
        theta = torch.zeros(a.shape[1], dtype=z.dtype)
        for _ in range(50):  # Newton's method (IRLS): a handful of features
            p = torch.sigmoid(a @ theta)
            grad = a.T @ (p - t) / len(t) + 2 * reg * theta
            hess = (a.T * (p * (1 - p))) @ a / len(t) + torch.diag(2 * reg + 1e-9)
            step = torch.linalg.solve(hess, grad)
            theta = theta - step
            if step.abs().max() < 1e-8:
                break
        self.w, self.b = theta[:-1], theta[-1:]

    def logit(self, f: Tensor) -> Tensor:
        dev, dt = f.device, f.dtype
        z = (f - self.mean.to(dev, dt)) / self.std.to(dev, dt)
        return z @ self.w.to(dev, dt) + self.b.to(dev, dt)


class Detector:
    """``fit(model, fit_set)``, then ``score(x)`` (no graph, batched) or
    ``score_t(x)`` (differentiable, for the adaptive attack); higher =
    more adversarial. ``notes`` say what was approximated."""

    name = ""
    needs_adversarial = False

    def __init__(self) -> None:
        self.model: nn.Module | None = None
        self.notes: list[str] = []

    def fit(self, model: nn.Module, fit: FitSet | None) -> None:
        self.model = model

    def score_t(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def score(self, x: Tensor, batch: int = BATCH) -> Tensor:
        return torch.cat([self.score_t(x[i:i + batch]) for i in range(0, len(x), batch)]
                         ) if len(x) else torch.zeros(0)


def non_max_entropy(logits: Tensor) -> Tensor:
    """Entropy of the softmax outputs without the largest one, renormalised."""
    p = logits.softmax(1)
    top = p.argmax(1, keepdim=True)
    rest = p.scatter(1, top, 0.0)
    rest = rest / rest.sum(1, keepdim=True).clamp_min(1e-30)
    return -(rest * rest.clamp_min(1e-30).log()).sum(1)


class NonMaxEntropy(Detector):
    name = "non-me"

    def fit(self, model: nn.Module, fit: FitSet | None) -> None:
        super().fit(model, fit)
        method = training_method(model)
        if method != "rce":
            self.notes.append(
                "non-me: the model was not trained with reverse cross-entropy "
                f"(training method {method or 'unknown'}); non-ME is scored all the "
                "same, but it separates adversarial examples mainly for RCE models")

    def score_t(self, x: Tensor) -> Tensor:
        return -non_max_entropy(self.model(x))


class KernelDensityUncertainty(Detector):
    """Feinman et al.: log kernel density and MC-dropout uncertainty, combined
    by a logistic regression."""

    name = "kd"
    needs_adversarial = True

    def __init__(self, samples: int = 20, dropout: float = 0.5, seed: int = 0) -> None:
        super().__init__()
        self.samples, self.dropout, self.seed = samples, dropout, seed
        self.lr = _LogReg()

    def fit(self, model: nn.Module, fit: FitSet | None) -> None:
        super().fit(model, fit)
        if not _has_features(model):
            raise ParamError("detector kd needs a model with penultimate features "
                             "(features() and head), like the app's architectures")
        self.kd = KDensityDetector(model, fit.ref_x, fit.ref_y)
        self.notes.append(
            f"kd: Bayesian uncertainty from dropout p {self.dropout} applied to the "
            f"penultimate features at test time ({self.samples} masks fixed by the "
            "seed); the model's own layers run without dropout")
        self.lr.fit(self._features(fit.clean_x, fit.noisy_x),
                    self._features(fit.adv_x))

    @torch.no_grad()
    def _features(self, *xs: Tensor) -> Tensor:
        x = torch.cat(xs)
        return torch.cat([self.raw(x[i:i + BATCH]) for i in range(0, len(x), BATCH)])

    def _masks(self, dim: int, device: torch.device) -> Tensor:
        gen = torch.Generator().manual_seed(self.seed)
        keep = torch.rand(self.samples, dim, generator=gen) >= self.dropout
        return keep.to(device).float() / (1 - self.dropout)

    def raw(self, x: Tensor) -> Tensor:
        """(N, 2): log KD for the predicted class and the BU variance."""
        z = self.model.features(x)
        logits = self.model.head(z)
        log_kd = self.kd.score_features(z, logits.argmax(1)).clamp_min(-1e3)
        masks = self._masks(z.shape[1], z.device)  # T×D
        probs = self.model.head(z.unsqueeze(0) * masks.unsqueeze(1)).softmax(-1)
        bu = probs.square().sum(-1).mean(0) - probs.mean(0).square().sum(-1)
        return torch.stack([log_kd, bu], 1)

    def score_t(self, x: Tensor) -> Tensor:
        return self.lr.logit(self.raw(x))


def _layer_outputs(model: nn.Module, x: Tensor) -> list[Tensor]:
    """Flattened activations of a Sequential body after each non-linearity,
    the penultimate features and the logits (or features and logits only)."""
    body = getattr(model, "body", None)
    outs: list[Tensor] = []
    if isinstance(body, nn.Sequential) and hasattr(model, "normalize"):
        h = model.normalize(x)
        for layer in body:
            h = layer(h)
            if not isinstance(layer, nn.Conv2d | nn.Linear | nn.Flatten
                              | nn.BatchNorm2d | nn.BatchNorm1d):
                outs.append(h.flatten(1))
        z = h.flatten(1)
        if outs and outs[-1] is z:
            outs.pop()  # the features are appended below
    else:
        z = model.features(x)
    outs += [z, model.head(z)]
    return outs


def lid_estimates(acts: Tensor, ref: Tensor, k: int, exclude_self: bool = False
                  ) -> Tensor:
    """Maximum-likelihood LID of each row of ``acts`` from its ``k`` nearest
    rows of ``ref`` (Levina & Bickel, as used by Ma et al.)."""
    d = torch.cdist(acts, ref)
    if exclude_self:
        d = d + torch.eye(len(acts), len(ref), device=d.device) * 1e30
    r = d.topk(k, dim=1, largest=False).values.clamp_min(1e-12)
    return -1.0 / (torch.log(r / r[:, -1:]).mean(1) - 1e-12)


class LocalIntrinsicDimensionality(Detector):
    name = "lid"
    needs_adversarial = True

    def __init__(self, k: int = 20, reference: int = 100) -> None:
        super().__init__()
        self.k, self.reference = k, reference
        self.lr = _LogReg()

    def fit(self, model: nn.Module, fit: FitSet | None) -> None:
        super().fit(model, fit)
        if not _has_features(model):
            raise ParamError("detector lid needs a model with penultimate features "
                             "(features() and head), like the app's architectures")
        ref = fit.ref_x[:self.reference]
        self.k_used = min(self.k, len(ref) - 1)
        if self.k_used < 2:
            raise ParamError(f"detector lid needs at least 3 reference images, got "
                             f"{len(ref)}; raise fit_n")
        with torch.no_grad():
            self.refs = [a.detach() for a in _layer_outputs(model, ref)]
        self.notes.append(
            f"lid: estimates against one fixed batch of {len(ref)} clean training "
            f"images (k {self.k_used}) at {len(self.refs)} layers, the same batch at "
            "fit and test time (Ma et al. use each minibatch's own clean images)")
        with torch.no_grad():
            neg = self.raw(torch.cat([fit.clean_x, fit.noisy_x]))
            pos = self.raw(fit.adv_x)
        self.lr.fit(neg, pos)

    def raw(self, x: Tensor) -> Tensor:
        acts = _layer_outputs(self.model, x)
        return torch.stack([lid_estimates(a, r.to(a.device), self.k_used)
                            for a, r in zip(acts, self.refs, strict=True)], 1)

    def score_t(self, x: Tensor) -> Tensor:
        return self.lr.logit(self.raw(x))


def make_detector(name: str, seed: int = 0) -> Detector:
    if name == "kd":
        return KernelDensityUncertainty(seed=seed)
    if name == "lid":
        return LocalIntrinsicDimensionality()
    if name == "non-me":
        return NonMaxEntropy()
    raise ParamError(f"unknown detector {name!r} (choose from {', '.join(DETECTORS)})")
