"""The pages of the main window, in navigation order.

Each page is a folder, ``panels/<page>/``, holding its panel (``panel.py``)
and every box and view only it uses; ``explorer.gui.widgets`` holds what two
or more pages share. Panels are imported lazily so the window can paint
before torch loads.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class PanelSpec:
    key: str  # used by --panel and in settings
    title: str
    page: str  # the page's folder: explorer/gui/panels/<page>/
    cls: str

    @property
    def module(self) -> str:
        return f"explorer.gui.panels.{self.page}.panel"

    def load(self) -> type:
        return getattr(importlib.import_module(self.module), self.cls)


PANELS: tuple[PanelSpec, ...] = (
    PanelSpec("data", "Data & Model", "data_model", "DataModelPanel"),
    PanelSpec("attack", "Attack Lab", "attack_lab", "AttackLabPanel"),
    PanelSpec("training", "Training", "training", "TrainingPanel"),
    PanelSpec("evaluate", "Evaluate & Compare", "evaluate", "EvaluatePanel"),
    PanelSpec("playground", "Playground", "playground", "PlaygroundPanel"),
    PanelSpec("inside", "Look Inside", "inside", "InsidePanel"),
    PanelSpec("denoise", "Denoiser Lab", "denoise", "DenoiserLabPanel"),
    PanelSpec("certify", "Certify & Detect", "certify", "CertifyPanel"),
)


def keys() -> list[str]:
    return [p.key for p in PANELS]
