"""Universal adversarial perturbations (Moosavi-Dezfooli et al., CVPR 2017).

One perturbation ``v`` for a whole set of images. The paper's loop: visit the
images in random order; for each one ``v`` does not yet fool, find a small
extra push ``dv`` that sends ``x + v + dv`` across the decision boundary and
set ``v <- P(v + dv)``, the projection onto the ball ``||v||_p <= eps``;
repeat passes until the fooling rate reaches ``1 - delta`` or the passes run
out. Two pushes are offered, both computed on a mini-batch of the images
``v`` still fails on:

* ``pgd`` (default, fast): one signed-gradient (l-inf) or normalised-gradient
  (l2) step of size ``alpha`` on the summed cross-entropy of that batch.
* ``deepfool``: the paper's choice. DeepFool's minimal l2 push (with 2%
  overshoot) for each image of the batch at the current ``v``; the pushes are
  then added one by one, projecting after each, as in the paper's inner loop
  (the batch shares one ``v`` for the DeepFool step; that is the shortcut).

"Fooled" means misclassified with respect to the labels given (the model's
clean predictions when ``fit_universal`` gets none), so images the model
already gets wrong are skipped.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor, nn

from explorer.core.attacks.base import Attack, AttackStep
from explorer.core.inference import make_generator, model_frozen
from explorer.core.params import Param, ParamError

_TINY = 1e-12
PUSHES = ("pgd", "deepfool")


def _project(v: Tensor, norm: str, eps: float) -> Tensor:
    if norm == "linf":
        return v.clamp(-eps, eps)
    return v * (eps / v.norm().clamp_min(_TINY)).clamp(max=1.0)


def _predict(model: nn.Module, x: Tensor) -> Tensor:
    with torch.no_grad():
        return model(x).argmax(1)


@torch.enable_grad()
def _pgd_push(model: nn.Module, x: Tensor, y: Tensor, v: Tensor, norm: str,
              alpha: float) -> Tensor:
    v = v.detach().requires_grad_(True)
    loss = nn.functional.cross_entropy(model((x + v).clamp(0, 1)), y, reduction="sum")
    (g,) = torch.autograd.grad(loss, v)
    if norm == "linf":
        return alpha * g.sign()
    return alpha * g / g.norm().clamp_min(_TINY)


@torch.enable_grad()
def deepfool_pushes(model: nn.Module, x: Tensor, y: Tensor, *, iters: int = 10,
                    overshoot: float = 0.02) -> Tensor:
    """Per-image DeepFool (l2) perturbation that moves ``x`` off class ``y``."""
    rows = torch.arange(x.shape[0], device=x.device)
    total = torch.zeros_like(x)
    for _ in range(iters):
        xr = (x + (1 + overshoot) * total).requires_grad_(True)
        logits = model(xr)
        active = logits.argmax(1) == y
        if not bool(active.any()):
            break
        grads = torch.stack([
            torch.autograd.grad(logits[:, k].sum(), xr, retain_graph=True)[0]
            for k in range(logits.shape[1])
        ], 1).flatten(2)
        w = grads - grads[rows, y][:, None]
        f = (logits - logits[rows, y][:, None]).detach()
        w_norm = w.norm(dim=2).clamp_min(_TINY)
        dist = (f.abs() / w_norm).scatter(1, y[:, None], torch.inf)
        k = dist.argmin(1)
        step = ((dist[rows, k] + 1e-4) / w_norm[rows, k])[:, None] * w[rows, k]
        total = total + step.view_as(x) * active.view(-1, *[1] * (x.dim() - 1))
    return ((1 + overshoot) * total).detach()


def universal_steps(
    model: nn.Module, x: Tensor, y: Tensor, generator: torch.Generator, *,
    eps: float, norm: str = "linf", epochs: int = 5, push: str = "pgd",
    alpha: float = 0.02, delta: float = 0.2, batch_size: int = 32,
) -> Iterator[tuple[int, int, Tensor]]:
    """Build ``v``, yielding ``(step, total, v)`` after each mini-batch; the
    last ``v`` is the result (zero if nothing was yielded: the batch was
    fooled already). The model must already be frozen."""
    v = torch.zeros_like(x[0])
    n = x.shape[0]
    per_epoch = -(-n // batch_size)
    total, done = epochs * per_epoch, 0
    for _ in range(epochs):
        if (_predict(model, (x + v).clamp(0, 1)) != y).float().mean() >= 1 - delta:
            break
        order = torch.randperm(n, generator=generator, device=x.device)
        for lo in range(0, n, batch_size):
            idx = order[lo:lo + batch_size]
            xs, ys = x[idx], y[idx]
            still = (_predict(model, (xs + v).clamp(0, 1)) == ys).nonzero(
                as_tuple=True)[0]
            if still.numel():
                xs, ys = xs[still], ys[still]
                if push == "pgd":
                    v = _project(v + _pgd_push(model, xs, ys, v, norm, alpha),
                                 norm, eps)
                else:
                    for dv in deepfool_pushes(model, (xs + v).clamp(0, 1), ys):
                        v = _project(v + dv, norm, eps)
            done += 1
            yield done, total, v


def fit_universal(
    model: nn.Module, x: Tensor, y: Tensor | None = None, *, eps: float = 0.1,
    norm: str = "linf", epochs: int = 5, push: str = "pgd", alpha: float = 0.02,
    delta: float = 0.2, batch_size: int = 32, seed: int | None = 0,
) -> Tensor:
    """The universal perturbation (C×H×W) of ``model`` on the images ``x``
    (e.g. ``data.load(name).as_tensors(0, 1000)``), labels ``y`` or, without
    them, the model's own clean predictions."""
    x = x.detach()
    generator = make_generator(seed, x.device)
    v = torch.zeros_like(x[0])
    with model_frozen(model):
        labels = _predict(model, x) if y is None else y.to(x.device)
        for _, _, v in universal_steps(  # noqa: B007 - the last v is the result
            model, x, labels, generator, eps=eps, norm=norm, epochs=epochs,
            push=push, alpha=alpha, delta=delta, batch_size=batch_size,
        ):
            pass
    return v


class UniversalPerturbation(Attack):
    """One image-agnostic perturbation for the whole batch."""

    name = "universal"
    title = "Universal perturbation"
    targeted_ok = False
    description = ("Moosavi-Dezfooli et al.: a single perturbation, built over the "
                   "batch, that fools most of its images at once.")
    params = (
        Param("eps", float, 0.1, "budget of the one perturbation (pixel units)",
              minimum=0.0, maximum=1000.0, unit="px"),
        Param("norm", str, "linf", "threat model", choices=("linf", "l2")),
        Param("epochs", int, 5, "passes over the batch", minimum=1, maximum=1000),
        Param("push", str, "pgd", "per-batch update: one gradient step, or the "
              "paper's DeepFool step (slower)", choices=PUSHES),
        Param("alpha", float, 0.02, "pgd push: step size in the norm",
              minimum=0.0, maximum=1000.0, unit="px"),
        Param("delta", float, 0.2, "stop once the fooling rate reaches 1 - delta",
              minimum=0.0, maximum=1.0),
        Param("batch_size", int, 32, "images per update", minimum=1,
              maximum=100_000),
    )  # fmt: skip

    perturbation: Tensor | None = None

    def _check(self) -> None:
        if self.cfg["norm"] == "linf":
            for key in ("eps", "alpha"):
                if self.cfg[key] > 1:
                    raise ParamError(f"{key} must be in [0, 1] for the l-inf threat "
                                     f"model, got {self.cfg[key]:g}")

    def budget(self) -> tuple[str, float]:
        return self.cfg["norm"], self.cfg["eps"]

    def _steps(self, x, y, target, generator, live) -> Iterator[AttackStep]:
        c = self.cfg
        v = torch.zeros_like(x[0])
        step = total = 0
        for step, total, v in universal_steps(
            self.model, x, y, generator, eps=c["eps"], norm=c["norm"],
            epochs=c["epochs"], push=c["push"], alpha=c["alpha"], delta=c["delta"],
            batch_size=c["batch_size"],
        ):
            if live:
                x_adv = (x + v).clamp(0, 1)
                yield AttackStep(step, total, x_adv, *self.evaluate(x_adv, y, None),
                                 None)
        self.perturbation = v.detach().clone()
        x_adv = (x + v).clamp(0, 1)
        yield AttackStep(step, total, x_adv, *self.evaluate(x_adv, y, None), None)
