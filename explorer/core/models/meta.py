"""What a model is: its architecture, inputs, classes and how it was trained."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

FORMATS = ("safetensors", "state_dict", "torchscript", "export", "onnx")


class ModelError(ValueError):
    """A model cannot be created, loaded or used; the message says why."""


@dataclass
class ModelMeta:
    """Everything needed to rebuild a model and to know what it expects.

    ``in_shape`` is ``None`` only for TorchScript models loaded without one.
    """

    arch: str
    arch_params: dict[str, Any] = field(default_factory=dict)
    in_shape: tuple[int, ...] | None = (1, 28, 28)
    num_classes: int = 10
    classes: tuple[str, ...] = ()
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)
    dataset: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    format: str = "safetensors"
    source: str = ""

    def __post_init__(self) -> None:
        if self.in_shape is not None:
            self.in_shape = tuple(int(n) for n in self.in_shape)
        self.num_classes = int(self.num_classes)
        self.classes = tuple(str(c) for c in self.classes)
        self.mean = tuple(float(m) for m in self.mean)
        self.std = tuple(float(s) for s in self.std)
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}")
        if not self.classes:
            self.classes = tuple(str(i) for i in range(self.num_classes))

    def describe_input(self) -> str:
        """``"1×28×28 inputs and 10 classes"``, the wording of mismatch messages."""
        shape = "×".join(map(str, self.in_shape)) if self.in_shape else "unknown-size"
        return f"{shape} inputs and {self.num_classes} classes"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["in_shape"] = list(self.in_shape) if self.in_shape is not None else None
        for key in ("classes", "mean", "std"):
            out[key] = list(out[key])
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any) -> ModelMeta:
        if not isinstance(data, dict):
            raise ModelError("model metadata must be a JSON object")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ModelError(f"unknown model metadata field {unknown[0]!r}")
        if "arch" not in data or not isinstance(data["arch"], str):
            raise ModelError("model metadata lacks the architecture name ('arch')")
        for key in ("arch_params", "training"):
            if not isinstance(data.get(key, {}), dict):
                raise ModelError(f"model metadata field {key!r} must be an object")
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"invalid model metadata: {exc}") from None

    @classmethod
    def from_json(cls, text: str) -> ModelMeta:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelError(f"model metadata is not valid JSON: {exc}") from None
        return cls.from_dict(data)
