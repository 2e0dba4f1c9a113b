"""EOT and BPDA: gradient attacks on randomized and non-differentiable models.

Both are adaptive-attack remedies of Athalye et al. (2018), "Obfuscated
gradients give a false sense of security", implemented once here and used by
every attack built on the shared gradient loops: FGSM, FGSM-RS, BIM, PGD and
MIM (:mod:`~explorer.core.attacks.iterative`), APGD-CE and APGD-DLR/T
(:mod:`~explorer.core.attacks.apgd`). Their parameters ``eot`` and ``bpda``
are :data:`EOT` and :data:`BPDA`.

**EOT** (expectation over transformation). A randomized model (Mixup
Inference drawing afresh at each call, a model adding input noise) gives a
different gradient at every call, and one call's gradient is a poor step
direction. With ``eot`` = K the attack takes the gradient of the expected
loss: the mean of K gradients, one per forward/backward pass
(:func:`loss_and_grad`), and the mean of the K losses wherever it compares
losses (APGD's step-size checkpoints, restarts). Success is judged on the
logits averaged over the K passes (:func:`mean_logits`): near the decision
boundary one pass of a randomized model is a coin flip, and a single lucky
pass would count a point the model still mostly classifies right. Which
iterate is kept changes too, since every per-step figure is now an estimate
from K passes and the highest of many estimates is biased upwards: PGD and
its kin keep each restart's last iterate (restarts compared on fresh
passes), APGD keeps the latest iterate that fools the averaged logits and
no longer drops a sample at its first one. Both choices were measured on a
noisy model with the same draws against the alternatives (the best
estimate; the first fooling iterate) and left less robust accuracy. These
rules apply per sample where the K passes differed (:class:`Passes`); where
they agree (a deterministic model) the attack runs exactly as without EOT,
at K times the cost.

The K passes are separate calls, one after another (memory as for one
pass), not one call on K copies of the batch: a model's randomness may
depend on the call (a fixed-seed Mixup Inference repeats its draws at every
call, so it is deterministic and EOT has nothing to average).
``eot`` = 1 runs exactly the arithmetic of a plain attack.

Not covered: CW, EAD, DeepFool and JSMA (minimum-distance attacks whose
line searches and stopping rules assume one deterministic boundary) and the
black-box attacks (no gradients; their queries meet the randomness directly).

**BPDA** (backward pass differentiable approximation). An input
transformation without a useful gradient (quantisation, JPEG, a median
filter: "shattered gradients") stops gradient attacks. Mark its module with
the attribute ``non_differentiable = True``; with ``bpda`` = "identity" the
attack runs the real transformation forward and passes gradients back as if
it were the identity, with "blur" as if it were a 3×3 blur (closer for
smoothing filters). It works by forward hooks installed for the attack
(:func:`bpda_applied`): the output keeps the transformation's value bit for
bit (``out.detach() + (a - a.detach())``, the second term exactly zero,
where ``a`` is the approximation), and the hooks act only in the thread that
runs the attack, so another job on the same model keeps the true gradients.
``bpda`` other than "off" on a model with no marked module is a ParamError.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import NamedTuple

import torch
from torch import Tensor, nn

from explorer.core.params import Param, ParamError, validate

EOT = Param("eot", int, 1, "EOT: average the gradient over this many forward "
            "passes, for randomized models (1 = off)", minimum=1, maximum=1000,
            label="EOT passes")
BPDA_MODES = ("off", "identity", "blur")
BPDA = Param("bpda", str, "off", "BPDA: the gradient of modules marked "
             "non_differentiable (quantisation, JPEG...) taken as that of the "
             "identity or a 3×3 blur; off = their own", choices=BPDA_MODES,
             label="BPDA")
GRADIENT_PARAMS = (EOT, BPDA)
MARK = "non_differentiable"  # the attribute that marks a module for BPDA


def check_options(eot: int = 1, bpda: str = "off") -> dict[str, int | str]:
    """Validated ``{"eot", "bpda"}``; ParamError naming the bad one."""
    return validate(GRADIENT_PARAMS, {"eot": eot, "bpda": bpda})


# -- EOT -------------------------------------------------------------------------
class Passes(NamedTuple):
    """Means over the passes; ``random`` per sample: whether they differed.

    A sample whose passes all agree (a deterministic model) gets the first
    pass's values exactly, so EOT changes nothing there but the cost."""

    logits: Tensor
    loss: Tensor
    grad: Tensor | None
    random: Tensor


def _combine(first: list[Tensor], sums: list[Tensor], differ: Tensor,
             passes: int) -> list[Tensor]:
    out = []
    for a, total in zip(first, sums, strict=True):
        rows = differ.view(-1, *([1] * (a.dim() - 1)))
        out.append(torch.where(rows, total / passes, a))
    return out


def _run_passes(model: nn.Module, x: Tensor, loss_fn: Callable[[Tensor], Tensor],
                passes: int, grad: bool) -> Passes:
    first: list[Tensor] = []
    sums: list[Tensor] = []
    differ = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    for i in range(passes):
        logits = model(x)
        loss = loss_fn(logits)
        values = [logits.detach(), loss.detach()]
        if grad:
            values.append(torch.autograd.grad(loss.sum(), x)[0])
        if i == 0:
            first, sums = values, list(values)
            continue
        differ |= (values[0] != first[0]).flatten(1).any(1)
        sums = [a + b for a, b in zip(sums, values, strict=True)]
    if passes > 1:
        first = _combine(first, sums, differ, passes)
    return Passes(first[0], first[1], first[2] if grad else None, differ)


@torch.enable_grad()
def loss_and_grad(model: nn.Module, x: Tensor, loss_fn: Callable[[Tensor], Tensor],
                  passes: int = 1) -> Passes:
    """Logits, per-sample loss and the gradient of the summed loss w.r.t.
    ``x``, each the mean over ``passes`` forward/backward passes (logits and
    loss detached). One pass is exactly ``model(x)``, the loss and its
    gradient."""
    return _run_passes(model, x.detach().requires_grad_(True), loss_fn, passes,
                       grad=True)


@torch.no_grad()
def logits_and_loss(model: nn.Module, x: Tensor, loss_fn: Callable[[Tensor], Tensor],
                    passes: int = 1) -> Passes:
    """:func:`loss_and_grad` without the gradient: the mean logits and the
    mean per-pass loss (not the loss of the mean logits, which is smaller for
    a convex loss and would make this point look worse than the others)."""
    return _run_passes(model, x, loss_fn, passes, grad=False)


def mean_logits(model: nn.Module, x: Tensor, passes: int = 1) -> Tensor:
    """The logits averaged over ``passes`` calls (one call: ``model(x)``)."""
    return logits_and_loss(model, x, lambda z: z.new_zeros(z.shape[0]),
                           passes).logits


# -- BPDA ------------------------------------------------------------------------
def marked_modules(model: nn.Module) -> list[nn.Module]:
    """The modules of ``model`` marked ``non_differentiable = True``."""
    return [m for m in model.modules() if getattr(m, MARK, False) is True]


def check_bpda(model: nn.Module, mode: str) -> None:
    """ParamError when ``mode`` asks for BPDA and ``model`` has nothing to
    approximate."""
    if mode != "off" and not marked_modules(model):
        raise ParamError(
            f"bpda={mode}: the model has no non-differentiable input "
            f"transformation to approximate (BPDA needs a module marked "
            f"{MARK} = True; for a model without one, trust a black-box "
            f"attack such as Square)")


def blur(x: Tensor) -> Tensor:
    """3×3 binomial blur per channel, edges replicated (N×C×H×W)."""
    if x.dim() != 4:
        raise ParamError(f"bpda=blur needs image batches N×C×H×W, got shape "
                         f"{tuple(x.shape)}")
    k = torch.tensor([1.0, 2.0, 1.0], device=x.device, dtype=x.dtype)
    kernel = (k[:, None] * k[None, :] / 16).expand(x.shape[1], 1, 3, 3)
    padded = nn.functional.pad(x, (1, 1, 1, 1), mode="replicate")
    return nn.functional.conv2d(padded, kernel, groups=x.shape[1])


APPROXIMATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "identity": lambda x: x,
    "blur": blur,
}


def _hook(approx: Callable[[Tensor], Tensor], thread: int):
    def hook(module: nn.Module, args: tuple, out: Tensor) -> Tensor | None:
        if threading.get_ident() != thread or not args:
            return None
        x = args[0]
        if not (isinstance(x, Tensor) and isinstance(out, Tensor)):
            return None
        if not x.requires_grad:
            return None  # nothing to differentiate (a no-grad evaluation)
        if x.shape != out.shape:
            raise ParamError(f"bpda: {type(module).__name__} maps {tuple(x.shape)} "
                             f"to {tuple(out.shape)}; BPDA approximates only "
                             f"transformations that keep the input's shape")
        a = approx(x)
        return out.detach() + (a - a.detach()).to(out.dtype)
    return hook


@contextlib.contextmanager
def bpda_applied(model: nn.Module, mode: str) -> Iterator[None]:
    """Inside: the marked modules of ``model`` pass gradients back through
    ``mode``'s approximation (in this thread); "off" changes nothing."""
    mode = BPDA.validate(mode)
    if mode == "off":
        yield
        return
    check_bpda(model, mode)
    hook = _hook(APPROXIMATIONS[mode], threading.get_ident())
    handles = [m.register_forward_hook(hook) for m in marked_modules(model)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
