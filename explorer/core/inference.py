"""Running a model for a computation that is not training it.

``model_frozen`` puts it in eval mode with its parameters out of autograd
(attacks, evaluations, analyses), restored afterwards; ``logits_of`` is one
forward pass that way; ``make_generator`` the seeded random generator every
job draws from (reproducible per seed, on the model's device).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn


@contextlib.contextmanager
def model_frozen(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and no parameter gradients; both restored after.

    Turning ``requires_grad`` off also skips recording the parameters in the
    autograd graph, which makes each attack step cheaper.
    """
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)


@torch.no_grad()
def logits_of(model: nn.Module, x: Tensor) -> Tensor:
    """Outputs in eval mode without a graph; the model's mode is restored."""
    with model_frozen(model):
        return model(x)


def make_generator(seed: int | None, device: torch.device | str) -> torch.Generator:
    """A generator on ``device``, seeded (``None``: a fresh random seed)."""
    gen = torch.Generator(device=device)
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    return gen


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Torch's global generator at ``seed`` inside (a new model's initial
    weights), as it was outside."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
