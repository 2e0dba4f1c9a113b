"""The house rules: core knows no Qt; modules stay small."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_PROBE = """
import importlib, pkgutil, sys
import explorer.core, explorer.store
for pkg in (explorer.core, explorer.store):
    for mod in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        importlib.import_module(mod.name)
bad = sorted(k for k in sys.modules
             if k.split(".")[0] in {"PySide6", "shiboken6", "pyqtgraph", "superqt",
                                    "qtpy"} or k.startswith("explorer.gui"))
print(",".join(bad))
"""


def test_core_and_store_import_no_qt():
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True,
        cwd=ROOT,
    )
    assert out.stdout.strip() == "", f"Qt modules loaded by core/store: {out.stdout}"


def test_no_module_past_500_lines():
    sizes = {
        str(p.relative_to(ROOT)): len(p.read_text().splitlines())
        for p in (ROOT / "explorer").rglob("*.py")
    }
    too_big = {k: v for k, v in sizes.items() if v > 500}
    assert not too_big, f"split these modules: {too_big}"


def test_no_panel_imports_another_panel():
    panels = ROOT / "explorer" / "gui" / "panels"
    names = {p.stem for p in panels.glob("*.py")} - {"__init__"}
    for path in panels.glob("*.py"):
        if path.stem == "__init__":
            continue  # the registry names every panel
        text = path.read_text()
        for other in names - {path.stem}:
            assert f"explorer.gui.panels.{other}" not in text, (path.name, other)


def test_startup_path_does_not_import_torchvision():
    """torchvision costs ~1.6 s; only reading or downloading its sets needs it."""
    probe = (
        "import sys, explorer.core.data, explorer.core.models, explorer.core.loading,"
        " explorer.core.analysis.accuracy, explorer.store, explorer.cli;"
        " print('torchvision' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True,
                         text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"
