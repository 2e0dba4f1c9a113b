"""Render explorer/resources/icons/explorer.svg to the PNG sizes a desktop
wants (16, 32, 48, 128, 256): explorer-SIZE.png next to the SVG.

Run after editing the SVG: ``python scripts/make_icons.py`` (offscreen works).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

ICONS = Path(__file__).resolve().parents[1] / "explorer" / "resources" / "icons"
SIZES = (16, 32, 48, 128, 256)


def render(svg: Path, size: int) -> QImage:
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"error: {svg} is not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    return image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--svg", type=Path, default=ICONS / "explorer.svg")
    parser.add_argument("--out", type=Path, default=ICONS)
    args = parser.parse_args(argv)
    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    args.out.mkdir(parents=True, exist_ok=True)
    for size in SIZES:
        path = args.out / f"explorer-{size}.png"
        if not render(args.svg, size).save(str(path)):
            raise SystemExit(f"error: could not write {path}")
        print(f"{path.name}: {size}x{size}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
