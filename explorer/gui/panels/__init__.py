"""The panels of the main window, in navigation order.

Only panels that work are listed. Each is imported lazily so the window can
paint before torch loads.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class PanelSpec:
    key: str  # used by --panel and in settings
    title: str
    module: str
    cls: str

    def load(self) -> type:
        return getattr(importlib.import_module(self.module), self.cls)


PANELS: tuple[PanelSpec, ...] = (
    PanelSpec(
        "data", "Data & Model", "explorer.gui.panels.data_model.panel", "DataModelPanel"
    ),
    PanelSpec(
        "attack", "Attack Lab", "explorer.gui.panels.attack_lab.panel", "AttackLabPanel"
    ),
    PanelSpec("training", "Training", "explorer.gui.panels.training.panel", "TrainingPanel"),
    PanelSpec(
        "evaluate", "Evaluate & Compare", "explorer.gui.panels.evaluate.panel",
        "EvaluatePanel",
    ),
    PanelSpec(
        "playground", "Playground", "explorer.gui.panels.playground.panel", "PlaygroundPanel"
    ),
    PanelSpec("inside", "Look Inside", "explorer.gui.panels.inside.panel", "InsidePanel"),
    PanelSpec(
        "denoise", "Denoiser Lab", "explorer.gui.panels.denoise.panel", "DenoiserLabPanel"
    ),
)


def keys() -> list[str]:
    return [p.key for p in PANELS]
