"""Checks before an attack or an evaluation that catch the classic ways to
report robustness that is not there.

- ``softmax``: the model returns probabilities (every row non-negative and
  summing to 1). Gradients of a loss on probabilities vanish where the model
  is confident, so gradient attacks look weak.
- ``random output``: two identical calls disagree (noise layers, randomized
  defenses, dropout left on). A single gradient is then a sample, and a
  single attack run underestimates what an expectation over the randomness
  (EOT) finds.
- ``train mode``: the model or one of its dropout / batch-norm layers is in
  training mode, so its outputs depend on the batch or on chance.
- ``near chance``: clean accuracy on a labelled set is close to guessing:
  usually the wrong input range or normalisation.

Each warning says what was measured and the one-line fix. Nothing here
changes the model: the output checks run on a frozen model (eval mode),
and training mode is read from the modules' flags.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from explorer.core.inference import model_frozen

_TRAIN_SENSITIVE = ("Dropout", "BatchNorm", "InstanceNorm", "AlphaDropout")


@dataclass(frozen=True)
class ModelWarning:
    code: str  # softmax, random output, train mode, near chance
    message: str
    fix: str

    def text(self) -> str:
        return f"{self.code}: {self.message}; {self.fix}"


def probe_warnings(model: nn.Module) -> list[ModelWarning]:
    """:func:`output_warnings` on 8 noise images drawn with seed 0 at the
    model's input shape (none when the shape is unknown): cheap, and the
    same for every caller."""
    meta = getattr(model, "meta", None)
    if meta is None or meta.in_shape is None:
        return []
    probe = torch.rand(8, *meta.in_shape, generator=torch.Generator().manual_seed(0))
    return output_warnings(model, probe)


def output_warnings(model: nn.Module, x: Tensor) -> list[ModelWarning]:
    """Softmax, random-output and train-mode checks on a small batch ``x``."""
    found = []
    training = _training_layers(model)
    if training:
        found.append(ModelWarning(
            "train mode",
            f"{', '.join(training[:3])} {'is' if len(training) == 1 else 'are'} in "
            f"training mode, so outputs depend on the batch or on chance",
            "call model.eval() before attacking or evaluating it"))
    with model_frozen(model), torch.no_grad():
        first = model(x)
        second = model(x)
    rows = first.float()
    if bool((rows >= 0).all()) and torch.allclose(
            rows.sum(1), torch.ones(len(rows), device=rows.device), atol=1e-3):
        found.append(ModelWarning(
            "softmax",
            "the outputs are probabilities (non-negative, every row sums to 1), "
            "not logits: gradient attacks on them are weak",
            "return logits, or wrap the model with log (log-probabilities are "
            "logits up to a constant)"))
    if not torch.allclose(first, second, atol=1e-6, rtol=1e-5):
        gap = float((first - second).abs().max())
        found.append(ModelWarning(
            "random output",
            f"two identical calls differ (by up to {gap:.3g}): one attack run "
            f"sees one sample of the randomness",
            "use EOT (average gradients over several calls) before reporting "
            "robust accuracy"))
    return found


def accuracy_warning(clean_acc: float, num_classes: int) -> ModelWarning | None:
    """``near chance`` when accuracy is under 1.5 times guessing."""
    chance = 1.0 / max(num_classes, 1)
    if num_classes < 2 or clean_acc >= 1.5 * chance:
        return None
    return ModelWarning(
        "near chance",
        f"clean accuracy {100 * clean_acc:.1f}% is close to guessing "
        f"({100 * chance:.1f}% for {num_classes} classes)",
        "wrong input range or normalisation? The app feeds [0, 1] pixels: set "
        "the model's normalisation (--normalize, --mean/--std) or check its classes")


def _training_layers(model: nn.Module) -> list[str]:
    """Names of the layers whose training flag changes what they compute."""
    names = []
    for name, module in model.named_modules():
        kind = getattr(module, "original_name", type(module).__name__)
        if module.training and any(k in kind for k in _TRAIN_SENSITIVE):
            names.append(name or kind)
    return names


def check(model: nn.Module, x: Tensor, *, clean_acc: float | None = None,
          num_classes: int | None = None, eot: int = 1) -> list[str]:
    """Every warning as text, for a ``warnings`` list in a result. With
    ``eot`` > 1 the attacks already average over the randomness: the random
    output warning says so instead of asking for EOT."""
    found = output_warnings(model, x)
    if eot > 1:
        found = [replace(w, fix=f"EOT is on: each gradient averages {eot} calls")
                 if w.code == "random output" else w for w in found]
    if clean_acc is not None and num_classes is not None:
        near = accuracy_warning(clean_acc, num_classes)
        if near is not None:
            found.append(near)
    return [w.text() for w in found]
