"""Where the bundled data, weights and icons live."""

from __future__ import annotations

import os
from pathlib import Path


def resources_dir() -> Path:
    """``resources/`` beside the package (source checkout or editable install).

    ``EXPLORER_RESOURCES`` overrides it, e.g. for a frozen desktop bundle.
    """
    override = os.environ.get("EXPLORER_RESOURCES")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "resources"


def resource_path(*parts: str) -> Path:
    return resources_dir().joinpath(*parts)
