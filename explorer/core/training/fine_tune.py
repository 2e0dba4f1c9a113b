"""What a fine-tune trains: every weight, or the classifier head only.

``freeze="none"`` is full fine-tuning. ``freeze="features"`` is linear
probing: every parameter but the classifier head's is taken out of autograd
(``requires_grad`` False, so the optimizer gets the head's only), and the
frozen part stays in eval mode however often the trainer or an attack calls
``model.train()`` (a forward pre-hook puts it back), so its batch-norm
statistics and dropout never change. Attacks still differentiate through
the frozen body with respect to the input.

The head is the ``head`` of the app's own architectures
(:class:`~explorer.core.models.base.ImageClassifier`) or the last linear layer
of a library network (:class:`~explorer.core.models.zoo.ZooModel`). Other
models (a torch.export program, ONNX, TorchScript, an ensemble) have no head
we can name: :func:`head_of` says so with a ParamError.
:func:`reset_head` re-initialises the head from a seed (``new_head``), so a
linear probe learns its classifier from scratch.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch import nn

from explorer.core.inference import seeded
from explorer.core.params import ParamError

FREEZE = ("none", "features")
KINDS = {"export": "a torch.export program", "onnx": "an ONNX graph",
         "torchscript": "a TorchScript module"}


def check_freeze(value: object) -> str:
    """``value`` if it is a freeze mode, else a ParamError naming it."""
    if value not in FREEZE:
        raise ParamError(f"freeze must be one of {', '.join(FREEZE)} (none = full "
                         f"fine-tuning, features = linear probing), got {value!r}")
    return str(value)


def _kind(model: nn.Module) -> str:
    from explorer.core.models.ensemble import Ensemble

    if isinstance(model, Ensemble):
        return "an ensemble"
    meta = getattr(model, "meta", None)
    if meta is not None and meta.format in KINDS:
        return KINDS[meta.format]
    return f"a {type(model).__name__}"


def head_of(model: nn.Module, name: str, why: str) -> nn.Module:
    """The classifier head of ``model`` (called ``name`` in messages), or a
    ParamError naming the model and saying why ``why`` (what needs the
    head, e.g. "freeze features") cannot work on it."""
    from explorer.core.models.base import ImageClassifier
    from explorer.core.models.meta import ModelError
    from explorer.core.models.zoo import ZooModel

    if isinstance(model, ImageClassifier):
        head = model.head
    elif isinstance(model, ZooModel):
        try:
            head = model.head
        except ModelError as exc:
            raise ParamError(f"{why}: {name}: {exc}") from None
    else:
        raise ParamError(f"{why}: {name} is {_kind(model)}, whose classifier head "
                         f"cannot be identified (only the app's architectures and "
                         f"torchvision/timm networks); use freeze none")
    if not any(p.requires_grad for p in head.parameters()):
        raise ParamError(f"{why}: the classifier head of {name} "
                         f"({type(head).__name__}) has no trainable weights")
    return head


def _stay_in_eval(module: nn.Module, _args: object) -> None:
    if module.training:
        module.eval()


def _frozen_roots(module: nn.Module, head: nn.Module) -> Iterator[nn.Module]:
    """The largest submodules of ``module`` that hold no part of ``head``."""
    for child in module.children():
        if child is head:
            continue
        if any(m is head for m in child.modules()):
            yield from _frozen_roots(child, head)
        else:
            yield child


def freeze_features(model: nn.Module, head: nn.Module) -> list[nn.Parameter]:
    """Freeze everything in ``model`` but ``head`` (see the module doc);
    the parameters left to train: the head's."""
    mine = {id(p) for p in head.parameters()}
    for p in model.parameters():
        if id(p) not in mine:
            p.requires_grad_(False)
    for part in _frozen_roots(model, head):
        part.eval()
        part.register_forward_pre_hook(_stay_in_eval)
    return [p for p in head.parameters() if p.requires_grad]


def reset_head(head: nn.Module, seed: int) -> None:
    """Draw the head's weights afresh (each layer's own initialisation),
    from ``seed``; the global generator is left as it was."""
    with seeded(seed):
        for module in head.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
