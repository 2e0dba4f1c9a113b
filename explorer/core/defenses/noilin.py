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

:class:`NoiLInWrapper` does this around any adversarial-training method
(``explorer train --defense trades --noilin``): the wrapped method crafts its
examples and computes its loss on the noisy labels. The method ``noilin`` is
PGD-AT so wrapped, with the flat parameters stored runs have.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from explorer.core.defenses.base import Defense
from explorer.core.defenses.methods import ALPHA, EPS
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


RATE = Param("rate", float, 0.05, "initial share of flipped labels", minimum=0.0,
             maximum=1.0)
GROWTH = Param("growth", float, 0.05, "relative rate increase after a drop in "
               "validation robust accuracy", minimum=0.0, maximum=10.0)
RATE_MAX = Param("rate_max", float, 0.6, "largest share of flipped labels",
                 minimum=0.0, maximum=1.0)
WRAPPER_PARAMS = (RATE, GROWTH, RATE_MAX)


def adversarial(name: str, params: tuple[Param, ...]) -> bool:
    """Whether the wrapper may wrap method ``name``: one that trains on
    examples crafted in a budget (a parameter ``eps`` or ``eps_*``), but not
    ``noilin`` itself (already wrapped)."""
    return name != "noilin" and any(p.name.startswith("eps") for p in params)


class NoiLInWrapper(Defense):
    """NoiLIn around any adversarial-training method ``inner``: the labels
    are flipped at the current rate and the inner method crafts its
    adversarial examples and computes its loss on the noisy labels; the
    rate's schedule reads the validation split (see the module doc)."""

    name = "noilin-wrapper"
    title = "NoiLIn wrapper"
    params = WRAPPER_PARAMS

    def __init__(self, inner: Defense | None = None, **values) -> None:
        super().__init__(**values)
        self.inner = inner
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
        return self.inner.loss(model, x, self.noisy(model, x, y, generator),
                               generator)

    @property
    def method_cfg(self) -> dict:
        """The wrapped method's parameters (what a run records as params)."""
        return self.inner.cfg

    @property
    def replays(self) -> int:
        return self.inner.replays

    def prepare(self, model: nn.Module) -> nn.Module | None:
        return self.inner.prepare(model)

    def after_backward(self) -> None:
        self.inner.after_backward()

    @property
    def selection_key(self) -> str:  # type: ignore[override]
        return self.inner.selection_key

    def extra_scores(self, model, x, y, **kwargs) -> dict[str, float]:
        return self.inner.extra_scores(model, x, y, **kwargs)

    def end_epoch(self, metrics: dict[str, float]) -> None:
        self.inner.end_epoch(metrics)
        robust = metrics.get("val_robust_acc")
        if robust is None:
            return
        if self.last_robust is not None and robust < self.last_robust:
            self.rate = min(self.rate * (1 + self.cfg["growth"]),
                            self.cfg["rate_max"])
        self.last_robust = float(robust)

    def state_dict(self):
        inner = {f"inner.{k}": v for k, v in self.inner.state_dict().items()}
        return {"rate": self.rate,
                "last_robust": -1.0 if self.last_robust is None
                else self.last_robust, **inner}

    def load_state_dict(self, state):
        self.rate = float(state.get("rate", self.cfg["rate"]))
        last = float(state.get("last_robust", -1.0))
        self.last_robust = None if last < 0 else last
        self.inner.load_state_dict({k[len("inner."):]: v for k, v in state.items()
                                    if k.startswith("inner.")})

    def __repr__(self) -> str:
        return f"NoiLIn({self.inner!r}, rate={self.rate:g})"


def wrap(inner_name: str, inner: Defense, **values) -> NoiLInWrapper:
    """``inner`` wrapped by NoiLIn with the wrapper's ``values`` (rate,
    growth, rate_max); a method that is not adversarial is a ParamError."""
    if not adversarial(inner_name, type(inner).params):
        raise ParamError(f"NoiLIn wraps adversarial-training methods only, not "
                         f"{inner_name!r}")
    return NoiLInWrapper(inner, **values)


class NoiLIn(NoiLInWrapper):
    """The stored method ``noilin``: PGD-AT wrapped by NoiLIn (its flat
    parameters and state keys are those of runs stored before the wrapper)."""

    name = "noilin"
    attack_steps = "steps"
    title = "NoiLIn (noisy labels in adversarial training)"
    params = (
        EPS, ALPHA,
        Param("steps", int, 7, "PGD steps per batch", minimum=1, maximum=1000),
        RATE, GROWTH, RATE_MAX,
    )  # fmt: skip
    description = ("Zhang et al. 2022: PGD-AT on labels flipped symmetrically "
                   "with probability rate; the rate grows by (1 + growth) "
                   "whenever validation robust accuracy drops, up to rate_max. "
                   "--noilin wraps any adversarial method the same way.")

    def __init__(self, **values) -> None:
        from explorer.core.defenses.methods import PGDAdversarialTraining

        super().__init__(None, **values)
        self.inner = PGDAdversarialTraining(
            **{k: self.cfg[k] for k in ("eps", "alpha", "steps")})

    @property
    def method_cfg(self) -> dict:
        return self.cfg
