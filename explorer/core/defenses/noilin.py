"""NoiLIn (Zhang et al., TMLR 2022): noisy labels injected into PGD-AT.

Every training label is flipped, with probability ``rate``, to a class drawn
uniformly from the other classes (symmetric noise); PGD crafts the
adversarial batch against the noisy labels and the update minimises CE on
them, as adversarial training on the noisy-label set. After each epoch, if
the validation robust accuracy (``val_robust_acc``: the held-out training
images, never the test ones) fell below the previous epoch's, the rate
grows: rate ← min(rate · (1 + growth), rate_max). Without a validation split
the rate stays where it started. The rate and the last robust accuracy are
method state, so a resumed run keeps them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from explorer.core.defenses.base import Defense
from explorer.core.defenses.methods import ALPHA, EPS, _pgd_linf
from explorer.core.inference import model_frozen
from explorer.core.params import Param, ParamError


def flip_labels(y: Tensor, rate: float, num_classes: int,
                generator: torch.Generator) -> Tensor:
    """Symmetric label noise: each label moves with probability ``rate`` to
    one of the other ``num_classes - 1`` classes, uniformly."""
    device = generator.device
    flip = torch.rand(y.shape, generator=generator, device=device) < rate
    shift = torch.randint(1, num_classes, y.shape, generator=generator,
                          device=device)
    flip, shift = flip.to(y.device), shift.to(y.device)
    return torch.where(flip, (y + shift) % num_classes, y)


class NoiLIn(Defense):
    name = "noilin"
    title = "NoiLIn (noisy labels in adversarial training)"
    params = (
        EPS, ALPHA,
        Param("steps", int, 7, "PGD steps per batch", minimum=1, maximum=1000),
        Param("rate", float, 0.05, "initial share of flipped labels", minimum=0.0,
              maximum=1.0),
        Param("growth", float, 0.05, "relative rate increase after a drop in "
              "validation robust accuracy", minimum=0.0, maximum=10.0),
        Param("rate_max", float, 0.6, "largest share of flipped labels",
              minimum=0.0, maximum=1.0),
    )  # fmt: skip
    description = ("Zhang et al. 2022: PGD-AT on labels flipped symmetrically "
                   "with probability rate; the rate grows by (1 + growth) "
                   "whenever validation robust accuracy drops, up to rate_max.")

    def __init__(self, **values) -> None:
        super().__init__(**values)
        self.rate = float(self.cfg["rate"])
        self.last_robust: float | None = None
        self._classes: int | None = None

    def _check(self) -> None:
        super()._check()
        if self.cfg["rate"] > self.cfg["rate_max"]:
            raise ParamError(f"rate must be at most rate_max "
                             f"({self.cfg['rate_max']:g}), got {self.cfg['rate']:g}")

    def num_classes(self, model: nn.Module, x: Tensor) -> int:
        if self._classes is None:
            with model_frozen(model), torch.no_grad():
                self._classes = int(model(x[:1]).shape[1])
        return self._classes

    def noisy(self, model: nn.Module, x: Tensor, y: Tensor,
              generator: torch.Generator) -> Tensor:
        return flip_labels(y, self.rate, self.num_classes(model, x), generator)

    def loss(self, model, x, y, generator):
        c = self.cfg
        y_noisy = self.noisy(model, x, y, generator)
        x_adv = _pgd_linf(model, x, y_noisy, generator, eps=c["eps"],
                          alpha=c["alpha"], steps=c["steps"])
        logits = model(x_adv)
        return F.cross_entropy(logits, y_noisy), logits

    def end_epoch(self, metrics: dict[str, float]) -> None:
        robust = metrics.get("val_robust_acc")
        if robust is None:
            return
        if self.last_robust is not None and robust < self.last_robust:
            self.rate = min(self.rate * (1 + self.cfg["growth"]),
                            self.cfg["rate_max"])
        self.last_robust = float(robust)

    def state_dict(self):
        return {"rate": self.rate,
                "last_robust": -1.0 if self.last_robust is None
                else self.last_robust}

    def load_state_dict(self, state):
        self.rate = float(state.get("rate", self.cfg["rate"]))
        last = float(state.get("last_robust", -1.0))
        self.last_robust = None if last < 0 else last
