"""Choices kept between launches (QSettings in an ini file)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings


def settings_path() -> Path:
    """``EXPLORER_CONFIG_DIR`` if set, else the user's config dir."""
    override = os.environ.get("EXPLORER_CONFIG_DIR")
    if override:
        base = Path(override)
    else:
        import platformdirs

        base = platformdirs.user_config_path("robustness-explorer")
    return base / "settings.ini"


def open_settings() -> QSettings:
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    return QSettings(str(path), QSettings.Format.IniFormat)


def read(settings: QSettings, key: str, default: Any = None, kind: type | None = None):
    """Read a value, falling back to ``default`` when absent or unreadable."""
    value = settings.value(key, default)
    if kind is None or value is None:
        return value
    try:
        if kind is bool and isinstance(value, str):
            return value.lower() in {"1", "true", "yes"}
        return kind(value)
    except (TypeError, ValueError):
        return default
