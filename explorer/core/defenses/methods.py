"""Training objectives: standard, PGD-AT, Fast-AT and TRADES.

Every adversarial example is crafted with the model frozen and projected onto
the l-inf ball ∩ [0, 1] box after every step (see the shared attack loop),
then the model is back in train mode for the update.
"""

from __future__ import annotations

import collections

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from explorer.core.attacks import LinfBall
from explorer.core.attacks.iterative import gradient_ascent
from explorer.core.defenses.base import Defense
from explorer.core.inference import model_frozen
from explorer.core.params import Param

EPS = Param("eps", float, 0.1, "l-inf training budget (pixel units)",
            minimum=0.0, maximum=1.0, unit="px")
ALPHA = Param("alpha", float, 0.025, "attack step size (pixel units)",
              minimum=0.0, maximum=1.0, unit="px")


def _pgd_linf(model: nn.Module, x: Tensor, y: Tensor, generator: torch.Generator,
              *, eps: float, alpha: float, steps: int) -> Tensor:
    """Untargeted l-inf PGD from a uniform random start, model frozen."""
    with model_frozen(model):
        (last,) = collections.deque(gradient_ascent(
            model, x.detach(), y, None, LinfBall(eps), generator, steps=steps,
            alpha=alpha, random_start=True, live=False), maxlen=1)
    return last.x_adv.detach()


class Standard(Defense):
    name = "standard"
    title = "Standard training"
    params = ()
    description = "Cross-entropy on clean images: the undefended baseline."

    def loss(self, model, x, y, generator):
        logits = model(x)
        return F.cross_entropy(logits, y), logits


class PGDAdversarialTraining(Defense):
    name = "pgd-at"
    attack_steps = "steps"
    title = "PGD adversarial training"
    params = (EPS, ALPHA, Param("steps", int, 7, "PGD steps per batch",
                                minimum=1, maximum=1000))
    description = ("Madry et al. 2018: minimise cross-entropy on PGD-k examples "
                   "from a random start in the l-inf ball.")

    def adversarial(self, model, x, y, generator) -> Tensor:
        c = self.cfg
        return _pgd_linf(model, x, y, generator, eps=c["eps"], alpha=c["alpha"],
                         steps=c["steps"])

    def loss(self, model, x, y, generator):
        logits = model(self.adversarial(model, x, y, generator))
        return F.cross_entropy(logits, y), logits


class FastAdversarialTraining(Defense):
    name = "fast-at"
    attack_steps = 1
    title = "Fast adversarial training (FGSM-RS)"
    params = (EPS, Param("alpha_ratio", float, 1.25, "FGSM step as a multiple of eps",
                         minimum=0.0, maximum=10.0))
    description = ("Wong et al. 2020: one FGSM step of 1.25·eps from a uniform "
                   "random start in [-eps, eps], projected onto ball ∩ box.")

    def adversarial(self, model, x, y, generator) -> Tensor:
        eps = self.cfg["eps"]
        return _pgd_linf(model, x, y, generator, eps=eps,
                         alpha=self.cfg["alpha_ratio"] * eps, steps=1)

    def loss(self, model, x, y, generator):
        logits = model(self.adversarial(model, x, y, generator))
        return F.cross_entropy(logits, y), logits


def _kl(logits_adv: Tensor, probs_nat: Tensor, reduction: str) -> Tensor:
    """KL(p_nat ‖ p_adv), as TRADES' code writes it with ``KLDivLoss``."""
    return F.kl_div(F.log_softmax(logits_adv, dim=1), probs_nat,
                    reduction=reduction)


class Trades(Defense):
    name = "trades"
    attack_steps = "steps"
    title = "TRADES"
    params = (Param("beta", float, 6.0, "weight of the robustness (KL) term",
                    minimum=0.0, maximum=1000.0),
              EPS, ALPHA, Param("steps", int, 7, "PGD steps maximising the KL",
                                minimum=1, maximum=1000))  # fmt: skip
    description = ("Zhang et al. 2019: CE(f(x), y) + beta · KL(f(x) ‖ f(x')), with "
                   "x' maximising the KL by PGD from x + 0.001·N(0, 1).")

    @torch.enable_grad()
    def adversarial(self, model, x, generator) -> Tensor:
        c = self.cfg
        x = x.detach()
        project = LinfBall(c["eps"]).projector(x)
        with model_frozen(model):
            with torch.no_grad():
                probs_nat = F.softmax(model(x), dim=1)
            noise = torch.randn(x.shape, generator=generator, device=x.device,
                                dtype=x.dtype)
            x_adv = project(x + 0.001 * noise)
            for _ in range(c["steps"]):
                x_adv.requires_grad_(True)
                loss = _kl(model(x_adv), probs_nat, "sum")
                (grad,) = torch.autograd.grad(loss, x_adv)
                x_adv = project(x_adv.detach() + c["alpha"] * grad.sign())
        return x_adv.detach()

    def loss(self, model, x, y, generator):
        x_adv = self.adversarial(model, x, generator)
        logits = model(x)
        natural = F.cross_entropy(logits, y)
        if self.cfg["beta"] == 0:
            return natural, logits
        robust = _kl(model(x_adv), F.softmax(logits, dim=1), "batchmean")
        return natural + self.cfg["beta"] * robust, logits


class FreeAdversarialTraining(Defense):
    name = "free-at"
    attack_steps = 1  # one signed step per replay
    title = "Free adversarial training"
    params = (EPS, Param("replays", int, 4, "replays m of each minibatch",
                         minimum=1, maximum=100))
    description = ("Shafahi et al. 2019: replay each minibatch m times; one "
                   "backward pass gives the weight gradient and the input "
                   "gradient, which moves a perturbation carried from batch to "
                   "batch by a signed step of eps, projected onto ball ∩ box. "
                   "Train for epochs/m to match standard training's cost.")

    def __init__(self, **values) -> None:
        super().__init__(**values)
        self._delta: Tensor | None = None
        self._x: Tensor | None = None
        self._x_adv: Tensor | None = None

    @property
    def replays(self) -> int:
        return self.cfg["replays"]

    def _delta_for(self, x: Tensor) -> Tensor:
        d = self._delta
        if d is None or d.numel() == 0 or d.shape[1:] != x.shape[1:]:
            d = torch.zeros_like(x)
        elif len(d) < len(x):  # a larger batch than before: new rows start at 0
            d = torch.cat([d, torch.zeros_like(x[len(d):])])
        self._delta = d.to(device=x.device, dtype=x.dtype)
        return self._delta[:len(x)]

    def loss(self, model, x, y, generator):
        # The model stays in train mode: the input gradient comes from the
        # very pass that updates the weights (that is what makes it free).
        project = LinfBall(self.cfg["eps"]).projector(x)
        self._x = x
        self._x_adv = project(x + self._delta_for(x)).requires_grad_(True)
        logits = model(self._x_adv)
        return F.cross_entropy(logits, y), logits

    def after_backward(self) -> None:
        x, x_adv = self._x, self._x_adv
        if x is None or x_adv is None or x_adv.grad is None or self._delta is None:
            return
        eps = self.cfg["eps"]
        moved = LinfBall(eps).project(x_adv.detach() + eps * x_adv.grad.sign(), x)
        self._delta[:len(x)] = moved - x
        self._x = self._x_adv = None

    def state_dict(self):
        delta = self._delta
        return {"delta": delta.detach().cpu() if delta is not None
                else torch.empty(0)}

    def load_state_dict(self, state):
        delta = state.get("delta")
        self._delta = delta if delta is not None and delta.numel() else None
