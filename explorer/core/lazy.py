"""Import heavy optional modules on first use, not at start-up."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule(ModuleType):
    """Stands in for a module; the real import happens at the first attribute.

    torchvision costs ~1.6 s to import; the app and the CLI need it only when a
    torchvision data set is actually read or downloaded.
    """

    def __init__(self, name: str) -> None:
        super().__init__(name)

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self.__name__), attr)
