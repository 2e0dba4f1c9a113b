"""Mixed precision and compilation for the trainer (``--amp``, ``--compile``).

:class:`Precision` is a run's choice, ``amp``:

- ``"off"``: float32, the plain ``backward`` → hook → ``step``.
- ``"bf16"``: the defense's loss (its forward passes, and the forwards of
  any attack it runs to make its adversarial batch) under ``torch.autocast``
  with bfloat16. bfloat16 keeps float32's exponent range, so gradients do
  not underflow and no loss scaling is needed (as :mod:`explorer.core.accel`
  says for the attacks). On CPUs and on GPUs from Ampere on.
- ``"fp16"``: autocast with float16 and a ``torch.amp.GradScaler``: the loss
  is scaled before ``backward`` (so small gradients survive float16), the
  optimizer's gradients are unscaled before the defense's ``after_backward``
  hook and the step, a step whose gradients overflowed is skipped and the
  scale adapts. CUDA only (:func:`check_device` refuses it elsewhere: on
  CPUs float16 is slow and bfloat16 is the better choice).

Under autocast, matrix products and convolutions run in the low precision;
the input stays float32, so an attack's iterate, its input gradient (the
gradient of a float32 leaf is float32) and every projection onto the
ε-ball and the [0, 1] box stay float32, and the cross-entropy losses are
computed in float32 (autocast's float32 list) — what
:class:`accel.Autocast` gives the attacks. The per-epoch evaluation runs
outside autocast, in float32, so the scores of runs with and without AMP
compare.

Input gradients under loss scaling: Free-AT reads the gradient of its
perturbed batch and GAT steps its heads from their gradients in
``after_backward``; those tensors are leaves of the loss's graph that the
run's optimizer does not hold, so ``unscale_`` would miss them. They are
found in the graph before ``backward`` and divided by the scale too, so the
hook sees true gradients; when one of them overflowed, the hook is skipped
for that update (its gradients are cleared) as the scaler skips the step.

``compile`` (``torch.compile``) compiles the model's ``forward`` in place,
so the module, its class and its ``state_dict`` keys stay those of the
model (no ``_orig_mod.`` prefix in ``last.pt`` or the best file). A
platform where it does not work (no C++ compiler, an unsupported
operation) fails when it is called or at the first call: training then
continues uncompiled, and :meth:`Precision.compile` or, after the first
call, :meth:`Precision.take_note` says why, once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from explorer.core.params import ParamError

AMP_MODES = ("off", "bf16", "fp16")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_amp(mode: Any) -> str:
    """``mode`` if it is one of :data:`AMP_MODES`, else a ParamError naming it."""
    if mode not in AMP_MODES:
        raise ParamError(f"amp must be one of {', '.join(AMP_MODES)}, got {mode!r}")
    return mode


def check_device(mode: str, device: torch.device | str, *, name: str = "amp") -> None:
    """A ParamError when ``device`` cannot train with ``mode`` (``name``: how
    the front end calls the setting)."""
    device = torch.device(device)
    if mode == "fp16" and device.type != "cuda":
        raise ParamError(f"{name} fp16 needs a CUDA GPU (float16 with loss "
                         f"scaling); this run is on {device.type}: choose {name} "
                         "bf16 or off")
    if (mode == "bf16" and device.type == "cuda" and torch.cuda.is_available()
            and not torch.cuda.is_bf16_supported()):
        raise ParamError(f"{name} bf16: this GPU has no bfloat16 support; choose "
                         f"{name} fp16 or off")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first[:200]}" if first else type(exc).__name__


class _CompiledForward:
    """A model's compiled ``forward`` that falls back to the eager one (for
    good) when the compiled call fails; the eager call then runs, so a real
    error in the model still surfaces, as itself."""

    def __init__(self, precision: Precision, model: nn.Module,
                 compiled: Callable[..., Any]) -> None:
        self.precision, self.model, self.compiled = precision, model, compiled

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self.compiled(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - any compiler failure falls back
            self.precision.uncompile(self.model)
            self.precision.note = (f"compile: torch.compile failed ({_reason(exc)}); "
                                   "training continues uncompiled")
            return self.model.forward(*args, **kwargs)


class Precision:
    """A run's mixed precision (``amp``) and compilation; see the module doc.

    ``Precision(amp, device)`` does not check the device (tests drive the
    float16 scaler on CPU); :meth:`for_run` does.
    """

    def __init__(self, amp: str = "off", device: torch.device | str = "cpu", *,
                 compile: bool = False) -> None:
        self.amp = check_amp(amp)
        self.device = torch.device(device)
        self.dtype = DTYPES.get(self.amp)
        self.scaler = (torch.amp.GradScaler(self.device.type)
                       if self.amp == "fp16" else None)
        self.compile_model = bool(compile)
        self.note: str | None = None  # a compile fallback, for the log

    @classmethod
    def for_run(cls, amp: str, device: torch.device | str, *,
                compile: bool = False) -> Precision:
        check_device(check_amp(amp), device)
        return cls(amp, device, compile=compile)

    # -- autocast ------------------------------------------------------------------
    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The context the defense's loss (its forward passes) runs in."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    # -- the update ----------------------------------------------------------------
    def step(self, loss: Tensor, optimizer: torch.optim.Optimizer,
             after_backward: Callable[[], None] | None = None, *,
             sync: Callable[[], None] | None = None) -> None:
        """backward → ``sync`` → ``after_backward`` → optimizer step
        (gradients zeroed by the caller), through the grad scaler under fp16.
        ``sync`` (averaging the gradients over the ranks) sees them still
        scaled, so every rank unscales the same gradients and agrees on
        skipping an overflowed step."""
        if self.scaler is None:
            loss.backward()
            if sync is not None:
                sync()
            if after_backward is not None:
                after_backward()
            optimizer.step()
            return
        scaler = self.scaler
        others = _other_leaves(loss, optimizer)
        scaler.scale(loss).backward()
        if sync is not None:
            sync()
        scaler.unscale_(optimizer)
        finite = True
        if others:
            inverse = 1.0 / scaler.get_scale()
            for leaf in others:
                if leaf.grad is not None:
                    leaf.grad.mul_(inverse)
                    finite = finite and bool(torch.isfinite(leaf.grad).all())
            if not finite:  # the scaler skips this step; so does the hook
                for leaf in others:
                    leaf.grad = None
        if finite and after_backward is not None:
            after_backward()
        scaler.step(optimizer)  # skipped if the optimizer's gradients overflowed
        scaler.update()

    def scale(self) -> float | None:
        """The loss scale (fp16), else None."""
        return None if self.scaler is None else float(self.scaler.get_scale())

    # -- last.pt ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The grad scaler's state (empty without one)."""
        return {} if self.scaler is None else dict(self.scaler.state_dict())

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Restore :meth:`state_dict`; a run resumed with another ``amp`` keeps
        a fresh scaler (or none)."""
        if self.scaler is not None and state:
            self.scaler.load_state_dict(dict(state))

    # -- compile -----------------------------------------------------------------------
    def compile(self, model: nn.Module) -> str | None:
        """Compile ``model.forward`` in place if this run asked for it; what
        was done or why it could not be, for the log (None: not asked)."""
        if not self.compile_model:
            return None
        eager = model.forward
        try:
            compiled = torch.compile(eager)
        except Exception as exc:  # noqa: BLE001 - unavailable here: run eager
            return (f"compile: torch.compile is not available ({_reason(exc)}); "
                    "training continues uncompiled")
        model.forward = _CompiledForward(self, model, compiled)  # type: ignore[method-assign]
        return ("compile: the model's forward is compiled with torch.compile (the "
                "first batches and the first evaluation are slow while it compiles)")

    @staticmethod
    def uncompile(model: nn.Module) -> None:
        """The model's own ``forward`` again."""
        if isinstance(model.__dict__.get("forward"), _CompiledForward):
            del model.forward

    def take_note(self) -> str | None:
        """The compile fallback's reason, once."""
        note, self.note = self.note, None
        return note


def _other_leaves(loss: Tensor, optimizer: torch.optim.Optimizer) -> list[Tensor]:
    """The leaves of ``loss``'s graph that ``optimizer`` does not hold (an
    input that asked for its gradient, another module's weights)."""
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    out: list[Tensor] = []
    for node in _nodes(loss.grad_fn):
        leaf = getattr(node, "variable", None)
        if isinstance(leaf, Tensor) and id(leaf) not in held:
            out.append(leaf)
    return out


def _nodes(root: Any) -> Iterator[Any]:
    stack, seen = [root], set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        stack.extend(fn for fn, _ in node.next_functions)
