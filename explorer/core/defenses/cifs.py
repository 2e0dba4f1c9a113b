"""CIFS training (Yan et al., ICML 2021): PGD-AT of a model with CIFS blocks.

The model carries CIFS blocks (``explorer.core.models.cifs``: a probe on a
conv stage's channels whose top-k gradient re-weights them). Training is
Madry et al.'s PGD-AT with the probes' own classification loss added:

    L = CE(f(x'), y) + β · mean over blocks of CE(probe(x'), y),

x' the PGD-k example from a random start in the l-inf ball ∩ [0, 1] box,
crafted by the same attack as ``pgd-at`` (the mask is part of the model, so
the attack sees it). The paper uses β = 2.

A model without CIFS blocks is rebuilt as its architecture's CIFS variant
(arch param ``cifs=true``) in :meth:`prepare`, its existing weights copied
(only the probe starts fresh); architectures without the option are a
ParamError naming those that have it.
"""

from __future__ import annotations

import dataclasses

import torch.nn.functional as F
from torch import nn

from explorer.core.defenses.base import Defense
from explorer.core.defenses.methods import ALPHA, EPS, _pgd_linf
from explorer.core.models import cifs as cifs_block
from explorer.core.params import Param, ParamError


def with_cifs(model: nn.Module) -> nn.Module:
    """``model`` itself when it has CIFS blocks, else its architecture's CIFS
    variant with ``model``'s weights (and metadata, ``cifs`` set)."""
    if cifs_block.blocks(model):
        return model
    from explorer.core import models

    meta = getattr(model, "meta", None)
    arch = meta.arch if meta is not None else type(model).__name__
    if meta is None or arch not in cifs_block.ARCHITECTURES:
        raise ParamError(
            f"cifs needs a model with a CIFS block; {arch!r} has none and no such "
            f"option (architectures with arch param cifs: "
            f"{', '.join(cifs_block.ARCHITECTURES)})")
    params = {**meta.arch_params, "cifs": True}
    variant = models.create(arch, in_shape=meta.in_shape,
                            num_classes=meta.num_classes, mean=meta.mean,
                            std=meta.std, classes=meta.classes,
                            dataset=meta.dataset, **params)
    missing, unexpected = variant.load_state_dict(model.state_dict(), strict=False)
    fresh = {n for n, _ in variant.named_parameters() if ".probe." in n}
    if unexpected or set(missing) - fresh:  # pragma: no cover - layouts agree
        raise ParamError(f"cannot copy the weights of {arch!r} into its CIFS "
                         f"variant (missing {sorted(set(missing) - fresh)}, "
                         f"unexpected {unexpected})")
    variant.meta = dataclasses.replace(meta, arch_params=variant.meta.arch_params)
    device = next(model.parameters()).device
    return variant.to(device)


class CIFSTraining(Defense):
    name = "cifs"
    attack_steps = "steps"
    title = "CIFS (channel-wise importance-based feature selection)"
    params = (EPS, ALPHA,
              Param("steps", int, 7, "PGD steps per batch", minimum=1,
                    maximum=1000),
              Param("beta", float, 2.0, "β, weight of the probes' cross-entropy",
                    minimum=0.0, maximum=100.0))  # fmt: skip
    description = ("Yan et al. 2021: a probe on the last conv stage rates each "
                   "channel by the gradient of its top-k logits and re-weights "
                   "the channels by softmax(relevance); PGD-AT with loss "
                   "CE + beta · CE(probe). Builds the arch's CIFS variant "
                   f"({', '.join(cifs_block.ARCHITECTURES)}).")

    def prepare(self, model: nn.Module) -> nn.Module:
        return with_cifs(model)

    def adversarial(self, model, x, y, generator):
        c = self.cfg
        return _pgd_linf(model, x, y, generator, eps=c["eps"], alpha=c["alpha"],
                         steps=c["steps"])

    def loss(self, model, x, y, generator):
        c = self.cfg
        x_adv = self.adversarial(model, x, y, generator)
        with cifs_block.probe_logits(model) as probes:
            logits = model(x_adv)
        loss = F.cross_entropy(logits, y)
        if probes and c["beta"]:
            probe_ce = sum(F.cross_entropy(p, y) for p in probes) / len(probes)
            loss = loss + c["beta"] * probe_ce
        return loss, logits
