"""The house rules: core knows no Qt; modules stay small."""

from __future__ import annotations

import ast
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


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (functions, TYPE_CHECKING)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_a_page_folder_is_imported_only_by_its_page():
    """panels/<page>/ serves that page alone; widgets/ never reaches into panels."""
    panels = ROOT / "explorer" / "gui" / "panels"
    pages = sorted(p.name for p in panels.iterdir() if (p / "__init__.py").exists())
    assert len(pages) == 8, pages
    for path in (ROOT / "explorer").rglob("*.py"):
        name = _module_name(path)
        for target in _imports(path):
            if not target.startswith("explorer.gui.panels."):
                continue
            page = target.split(".")[3]
            if page in pages:
                assert name.startswith(f"explorer.gui.panels.{page}"), (
                    f"{name} imports {target}: a module of the {page} page"
                )
        if name.startswith("explorer.gui.widgets"):
            reaches = [t for t in _imports(path) if t.startswith("explorer.gui.panels")]
            assert not reaches, f"{name} imports {reaches}: move it into widgets/"


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
