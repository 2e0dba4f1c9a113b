"""Help > About: the app's version, the versions it runs on, licence, device."""

from __future__ import annotations

import html
import importlib.metadata
import platform
from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

DIST = "robustness-explorer"
SOURCE_ROOT = Path(__file__).resolve().parents[2]  # a checkout: LICENSE, docs/


def app_version() -> str:
    try:
        from explorer import __version__
        return str(__version__)
    except ImportError:
        return importlib.metadata.version(DIST)


def licence_name() -> str:
    """The LICENSE file's first line, else the installed package's licence."""
    path = SOURCE_ROOT / "LICENSE"
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip():
                return line.strip()
    try:
        meta = importlib.metadata.metadata(DIST)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
    return meta.get("License-Expression") or meta.get("License") or "unknown"


def versions() -> list[tuple[str, str]]:
    """(name, version) of what the app runs on."""
    import pyqtgraph
    import PySide6
    import torch
    import torchvision

    return [
        ("PyTorch", torch.__version__),
        ("torchvision", torchvision.__version__),
        ("PySide6", PySide6.__version__),
        ("pyqtgraph", pyqtgraph.__version__),
        ("Python", platform.python_version()),
    ]


def docs_url() -> QUrl | None:
    """The architecture notes of a source checkout (a wheel has none)."""
    path = SOURCE_ROOT / "docs" / "architecture.md"
    return QUrl.fromLocalFile(str(path)) if path.is_file() else None


def about_html(device: str) -> str:
    rows = "".join(f"<tr><td>{html.escape(n)}</td><td>&nbsp;{html.escape(v)}</td></tr>"
                   for n, v in [*versions(), ("Device", device)])
    url = docs_url()
    docs = (f"<a href=\"{url.toString()}\">docs/architecture.md</a>" if url is not None
            else "README.md and docs/architecture.md in the source")
    return (
        f"<h3>Robustness Explorer {html.escape(app_version())}</h3>"
        "<p>Craft adversarial examples, train defenses and compare them.</p>"
        f"<table>{rows}</table>"
        f"<p>Licence: {html.escape(licence_name())}</p>"
        f"<p>Documentation: {docs}</p>"
    )


class AboutDialog(QDialog):
    def __init__(self, device: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About Robustness Explorer")
        self.label = QLabel(about_html(device))
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setOpenExternalLinks(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok)
        buttons.accepted.connect(self.accept)
        box = QVBoxLayout(self)
        box.addWidget(self.label)
        box.addWidget(buttons)

    def text(self) -> str:
        """What the dialog says, as plain text."""
        from PySide6.QtGui import QTextDocument

        doc = QTextDocument()
        doc.setHtml(self.label.text())
        return doc.toPlainText()
