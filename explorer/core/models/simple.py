"""Small architectures: a multi-layer perceptron, a compact CNN and LeNet-5."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

from explorer.core.models import cifs as cifs_block
from explorer.core.models.base import ImageClassifier

ACTIVATIONS = ("relu", "softplus", "gelu", "silu")


def activation_module(name: str) -> nn.Module:
    """The hidden-layer non-linearity; smooth ones for the "smooth" defense."""
    if name == "relu":
        return nn.ReLU(inplace=True)
    return {"softplus": nn.Softplus, "gelu": nn.GELU, "silu": nn.SiLU}[name]()


class MLP(ImageClassifier):
    """Flatten, then ``depth`` hidden layers of ``hidden`` units with ReLU."""

    def __init__(
        self,
        in_shape: Sequence[int],
        num_classes: int,
        mean: Sequence[float],
        std: Sequence[float],
        *,
        hidden: int = 256,
        depth: int = 2,
        activation: str = "relu",
    ) -> None:
        super().__init__(mean, std)
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(in_shape)
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), activation_module(activation)]
            width = hidden
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)


class SmallCNN(ImageClassifier):
    """Three 3×3 conv stages (``width``, 2×, 4× channels) and one dense layer.

    Cheap on purpose: it is the model interactive attacks run against on CPU.
    ``cifs`` puts a CIFS block after the third stage (see ``cifs.py``).
    The full-resolution stage has few channels; adaptive pooling to 3×3 makes
    it accept any image size of at least 8×8.
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        num_classes: int,
        mean: Sequence[float],
        std: Sequence[float],
        *,
        width: int = 16,
        dense: int = 256,
        activation: str = "relu",
        cifs: bool = False,
        cifs_k: int = 10,
        cifs_temperature: float = 1.0,
    ) -> None:
        super().__init__(mean, std)
        c1, c2, c3 = width, 2 * width, 4 * width
        last = cifs_block.after(activation_module(activation), c3, num_classes,
                                cifs=cifs, cifs_k=cifs_k,
                                cifs_temperature=cifs_temperature)
        self.body = nn.Sequential(
            nn.Conv2d(in_shape[0], c1, 3, padding=1),
            activation_module(activation),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1),
            activation_module(activation),
            nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1),
            last,  # the activation, then the CIFS block when asked for
            nn.AdaptiveMaxPool2d(3),
            nn.Flatten(),
            nn.Linear(c3 * 9, dense),
            activation_module(activation),
        )
        self.head = nn.Linear(dense, num_classes)


class LeNet5(ImageClassifier):
    """LeCun et al.'s LeNet-5 with ReLU and max pooling, for any image size."""

    def __init__(
        self,
        in_shape: Sequence[int],
        num_classes: int,
        mean: Sequence[float],
        std: Sequence[float],
        *,
        activation: str = "relu",
    ) -> None:
        super().__init__(mean, std)
        self.body = nn.Sequential(
            nn.Conv2d(in_shape[0], 6, 5, padding=2),
            activation_module(activation),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            activation_module(activation),
            nn.MaxPool2d(2),
            # 28×28 inputs reach exactly 5×5 here; other sizes are pooled to it.
            nn.AdaptiveAvgPool2d(5),
            nn.Flatten(),
            nn.Linear(16 * 25, 120),
            activation_module(activation),
            nn.Linear(120, 84),
            activation_module(activation),
        )
        self.head = nn.Linear(84, num_classes)
