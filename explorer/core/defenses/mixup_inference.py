"""Mixup Inference (MI), Pang et al. (ICLR 2020): an inference-time defense.

Each input x is mixed with clean samples x_s, x̃ = λ·x + (1-λ)·x_s, and the
predictions F(x̃) are averaged over N draws. MI-PL draws x_s from the class the
model predicts for x; MI-OL draws the class y_s uniformly among the other
labels, then x_s from it. The output is log of the mean softmax.

The draws are random: a fixed ``seed`` restarts the same draws on every call
(deterministic), ``seed=None`` draws anew each call. Either way evaluating it
with gradient attacks needs care (randomness and averaging mask gradients).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from explorer.core.defenses.bit_depth import BIT_DEPTH_PARAMS, BitDepth
from explorer.core.params import Param, ParamError, validate


class MixupInference(nn.Module):
    def __init__(self, model: nn.Module, mix_set_x: Tensor, mix_set_y: Tensor,
                 lam: float = 0.6, samples: int = 15, mode: str = "pl",
                 seed: int | None = 0) -> None:
        super().__init__()
        if mode not in ("pl", "ol"):
            raise ParamError(f"mode must be 'pl' or 'ol', got {mode!r}")
        if len(mix_set_x) == 0 or len(mix_set_x) != len(mix_set_y):
            raise ParamError("the mixup set needs images and as many labels")
        self.model, self.lam, self.samples = model, float(lam), int(samples)
        self.mode, self.seed = mode, seed
        x = mix_set_x.float() / 255.0 if mix_set_x.dtype == torch.uint8 else mix_set_x
        order = torch.argsort(mix_set_y.long(), stable=True)
        self.register_buffer("mix_x", x[order].float(), persistent=False)
        ys = mix_set_y.long()[order]
        self.classes = torch.unique(ys)  # the labels present, sorted
        self.starts = torch.searchsorted(ys, self.classes)
        self.counts = torch.searchsorted(ys, self.classes, right=True) - self.starts

    def _draw(self, pred: Tensor, gen: torch.Generator) -> Tensor:
        """Indices into ``mix_x``, one per row of ``pred``."""
        pred = pred.cpu()
        slot = torch.searchsorted(self.classes, pred).clamp_max(len(self.classes) - 1)
        present = self.classes[slot] == pred
        m = len(self.classes)
        if self.mode == "pl":
            # Classes absent from the mixup set fall back to a uniform class.
            other = torch.randint(0, m, pred.shape, generator=gen)
            slot = torch.where(present, slot, other)
        else:
            drop = present & (m > 1)
            r = torch.randint(0, max(m - 1 if m > 1 else m, 1), pred.shape,
                              generator=gen)
            r = torch.where(~drop, torch.randint(0, m, pred.shape, generator=gen), r)
            slot = torch.where(drop & (r >= slot), r + 1, r)
        u = torch.rand(pred.shape, generator=gen)
        idx = self.starts[slot] + (u * self.counts[slot]).long().clamp_max(
            self.counts[slot] - 1)
        return idx.to(self.mix_x.device)

    def forward(self, x: Tensor) -> Tensor:
        gen = torch.Generator()
        if self.seed is None:
            gen.seed()
        else:
            gen.manual_seed(self.seed)
        with torch.no_grad():
            pred = self.model(x).argmax(1)
        outs = []
        for _ in range(self.samples):
            xs = self.mix_x[self._draw(pred, gen)].to(x.dtype)
            outs.append(F.log_softmax(self.model(self.lam * x + (1 - self.lam) * xs),
                                      dim=1))
        return torch.logsumexp(torch.stack(outs), dim=0) - math.log(self.samples)


MIXUP_PARAMS = (
    Param("lam", float, 0.6, "λ, weight of the input in each mixture",
          minimum=0.0, maximum=1.0),
    Param("samples", int, 15, "mixtures averaged per input", minimum=1,
          maximum=1000),
    Param("mode", str, "pl", "pl: mix with the predicted class; ol: other labels",
          choices=("pl", "ol")),
    Param("seed", int, -1, "-1: new draws at every call, as published; a seed "
          "restarts the same draws at every call (deterministic)", minimum=-1,
          maximum=2**31 - 1),
)

# name -> (wrapper class, its parameters, the data arguments it also needs).
# bit-depth (bit_depth.py) is the shattered-gradient counterpart of this
# randomized one: each calls for its own adaptive attack (BPDA, EOT).
INFERENCE_WRAPPERS: dict[str, tuple[type[nn.Module], tuple[Param, ...],
                                    tuple[str, ...]]] = {
    "mixup-inference": (MixupInference, MIXUP_PARAMS, ("mix_set_x", "mix_set_y")),
    "bit-depth": (BitDepth, BIT_DEPTH_PARAMS, ()),
}


def inference_wrappers() -> list[str]:
    return list(INFERENCE_WRAPPERS)


def wrapper_spec(name: str) -> tuple[Param, ...]:
    return _entry(name)[1]


def _entry(name: str):
    if name not in INFERENCE_WRAPPERS:
        raise ParamError(f"unknown inference wrapper {name!r} "
                         f"(choose from {', '.join(INFERENCE_WRAPPERS)})")
    return INFERENCE_WRAPPERS[name]


def wrap(name: str, model: nn.Module, **params: Any) -> nn.Module:
    """``model`` wrapped by inference defense ``name``; data arguments (e.g.
    ``mix_set_x``, ``mix_set_y``) are passed with the parameters."""
    cls, spec, data_args = _entry(name)
    missing = [a for a in data_args if a not in params]
    if missing:
        raise ParamError(f"{name} needs {', '.join(missing)}")
    data = {a: params.pop(a) for a in data_args}
    values = validate(spec, params)
    if values.get("seed") == -1:
        values["seed"] = None
    return cls(model, **data, **values)
