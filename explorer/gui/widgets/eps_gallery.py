"""The images that break at a budget, opened by a click on an accuracy-vs-eps
curve (the Attack Lab's sweep and the Evaluate page's curves).

A non-modal window: the page stays usable beside it, and a second click on
the curve refills it. Each image's minimal eps comes from a core job
(:func:`~explorer.core.analysis.min_eps_gallery.min_eps_examples`: DeepFool,
then a binary search with PGD) run through the runner with progress and
cancel; its result is cached per model, images and norm, so clicking another
point of the same curve, or the same point again, fills the window at once.

Shown: the images correct on the clean image whose minimal eps is at most the
clicked eps, smallest minimal eps first, each as one tile of the shared
:class:`~explorer.gui.widgets.image_grid.ImageGrid`: the clean image and its
adversarial image side by side, captioned "minimal eps: true → adversarial
label". The adversarial image is the one found at the image's own minimal eps
(so it is within the clicked budget). Images the model already gets wrong are
left out, and the header says how many.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import numpy as np
from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from explorer.core.analysis.min_eps_gallery import (
    GALLERY_NORMS,
    Breaking,
    breaking_at,
    min_eps_examples,
)
from explorer.gui.widgets.image_grid import ImageGrid, chw_to_hwc
from explorer.gui.widgets.job_controls import ERROR_STYLE, JobControls

MAX_SHOWN = 60  # pairs; the header says how many more there are
PAIRS_PER_ROW = 5
TILE = 156  # px, a pair's width
CACHE_SIZE = 4  # searches kept (model, images, norm)
NORM_NAMES = {"linf": "l-inf", "l2": "l2", "l1": "l1"}


@dataclass(frozen=True)
class GallerySource:
    """What a curve's images come from. ``model`` is a module or a function
    loading one (called in the job); ``key`` names model, images and norm in
    the cache (the cache holds the source, so ids in the key stay unique)."""

    model: Any
    dataset: Any
    n: int
    norm: str
    name: str
    key: tuple
    device: Any = None
    classes: tuple[str, ...] = ()


def nearest_eps(eps_values: Sequence[float], x: float) -> float | None:
    """The budget of ``eps_values`` closest to ``x`` (None when there are none)."""
    if not len(eps_values):
        return None
    values = np.asarray(eps_values, dtype=float)
    return float(values[np.argmin(np.abs(values - x))])


def eps_text(eps: float, norm: str) -> str:
    """``0.03137 = 8.0/255`` for l-inf budgets, the number alone otherwise."""
    text = f"{eps:.4g}"
    return f"{text} = {255 * eps:.1f}/255" if norm == "linf" and eps > 0 else text


def side_by_side(clean: np.ndarray, adversarial: np.ndarray) -> np.ndarray:
    """Two C×H×W images as one H×(2W+2)×C picture, a grey line between."""
    a, b = chw_to_hwc(clean), chw_to_hwc(adversarial)
    line = np.full((a.shape[0], 2, *a.shape[2:]), 0.5, dtype=a.dtype)
    return np.concatenate([a, line, b], axis=1)


class EpsGallery(QDialog):
    """The images that break at a clicked eps; call :meth:`show_budget`."""

    filled = Signal()  # the images for the current budget are on screen

    def __init__(self, runner, slot: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Images that break at this eps")
        self.setModal(False)
        self.resize(940, 620)  # fits beside the page on a 1280x800 screen
        self.runner, self.slot = runner, slot
        self.search_params: dict[str, Any] = {}  # the search's own settings
        self.header = QLabel()
        self.header.setWordWrap(True)
        self.explain = QLabel()
        self.explain.setWordWrap(True)
        self.explain.setStyleSheet("font-size: 11px; color: #444;")
        self.controls = JobControls("Search", cancel_text="Cancel search",
                                    status=False)  # the header says it
        self.controls.run_button.hide()  # a click on the curve starts it
        self.grid = ImageGrid(columns=PAIRS_PER_ROW, tile=TILE)
        inner = QWidget()
        row = QHBoxLayout()
        row.addWidget(self.grid)
        row.addStretch(1)
        column = QVBoxLayout(inner)
        column.setContentsMargins(2, 2, 2, 2)
        column.addLayout(row)
        column.addStretch(1)
        self.scroll = QScrollArea()
        self.scroll.setWidget(inner)
        self.scroll.setWidgetResizable(True)
        box = QVBoxLayout(self)
        box.addWidget(self.header)
        box.addWidget(self.explain)
        box.addWidget(self.controls)
        box.addWidget(self.scroll, 1)
        self._cache: OrderedDict[tuple, tuple[GallerySource, dict]] = OrderedDict()
        self._searching: GallerySource | None = None
        self.source: GallerySource | None = None
        self.eps: float | None = None
        self.result: dict[str, Any] | None = None  # the current source's search
        self.breaking: Breaking | None = None
        self.shown: list[int] = []  # image indices shown, in order

    # -- public -----------------------------------------------------------------
    def show_budget(self, source: GallerySource, eps: float) -> None:
        """Show the images of ``source`` that break at ``eps``: at once when
        its search is cached, else after the search (started here)."""
        self.source, self.eps = source, float(eps)
        self.show()
        self.raise_()
        if source.norm not in GALLERY_NORMS:
            self._clear()
            names = " or ".join(NORM_NAMES[n] for n in GALLERY_NORMS)
            self._say(f"No gallery for this curve: the minimal eps is searched in "
                      f"{names}, and this sweep's norm is "
                      f"{NORM_NAMES.get(source.norm, source.norm)}.", error=True)
            return
        cached = self._cache.get(source.key)
        if cached is not None:
            self._cache.move_to_end(source.key)
            self._fill(cached[1])
            return
        if self.searching and self._searching is not None \
                and self._searching.key == source.key:
            self._say_searching()
            return
        self._start(source)

    @property
    def searching(self) -> bool:
        return self.controls.running

    @Slot()
    def cancel(self) -> None:
        self.controls.cancel()

    # -- the search ---------------------------------------------------------------
    def _start(self, source: GallerySource) -> None:
        self._clear()
        self._searching = source
        handle = self.runner.start(
            min_eps_examples, name=f"minimal eps: {source.name}", slot=self.slot,
            job_args=(source.model, source.dataset), n=source.n, norm=source.norm,
            device=source.device, **self.search_params)
        handle.done.connect(self._on_done)
        handle.failed.connect(self._on_failed)
        handle.cancelled.connect(self._on_cancelled)
        self.controls.follow(handle, "")
        self._say_searching()

    def _say_searching(self) -> None:
        s = self.source
        self._say(f"Searching the minimal eps of {s.n} images for "
                  f"{escape(s.name)} ({NORM_NAMES[s.norm]})… The gallery for eps "
                  f"{eps_text(self.eps, s.norm)} opens when it is done.")

    @Slot(dict)
    def _on_done(self, result: dict) -> None:
        source, self._searching = self._searching, None
        if source is None:
            return
        self._cache[source.key] = (source, result)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        if self.source is not None and self.source.key == source.key:
            self._fill(result)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self._searching = None
        self._say(f"The minimal-eps search failed: {escape(message)}", error=True)

    @Slot()
    def _on_cancelled(self) -> None:
        self._searching = None
        self._say("Search cancelled: click the curve again to start it anew.")

    def closeEvent(self, event) -> None:
        self.cancel()  # nobody is looking any more
        super().closeEvent(event)

    # -- showing ----------------------------------------------------------------
    def _say(self, html: str, error: bool = False) -> None:
        self.header.setText(html)
        self.header.setStyleSheet(ERROR_STYLE if error else "font-size: 14px;")

    def _clear(self) -> None:
        self.result, self.breaking, self.shown = None, None, []
        self.grid.set_images([], [])
        self.explain.setText("")

    def _fill(self, result: dict[str, Any]) -> None:
        s, eps = self.source, self.eps
        picked = breaking_at(result, eps, MAX_SHOWN)
        self.result, self.breaking = result, picked
        self.shown = [int(i) for i in picked.indices]
        images = [side_by_side(result["x"][i], result["x_adv"][i])
                  for i in self.shown]
        captions = [f"{result['min_eps'][i]:.3g}: {self._name(result['y'][i])} → "
                    f"{self._name(result['pred_adv'][i])}" for i in self.shown]
        self.grid.set_images(images, captions)
        budget = f"eps {eps_text(eps, s.norm)} ({NORM_NAMES[s.norm]})"
        where = f"{escape(s.name)}, first {picked.n} images"
        if picked.count == 0:
            self._say(f"<b>No image breaks at {budget}</b> — {where}.")
        else:
            more = (f"; the {len(self.shown)} with the smallest minimal eps are "
                    f"shown" if picked.count > len(self.shown) else "")
            self._say(f"<b>{picked.count} of the {picked.n_correct} images "
                      f"classified correctly break at {budget}</b>{more} — {where}.")
        unbroken = (f"; {_images(picked.n_unbroken)} that no eps inside the "
                    f"pixel box breaks" if picked.n_unbroken else "")
        self.explain.setText(
            f"Sorted by each image's minimal eps (DeepFool, then a binary search "
            f"with PGD; the curve's own attack may break a few more or fewer). "
            f"Each tile: the clean image, and beside it the adversarial image "
            f"found at the image's own minimal eps (within the budget); caption: "
            f"minimal eps: true label → the label the model gives the adversarial "
            f"image. Left out: {_images(picked.n_wrong)} already misclassified "
            f"on the clean image{unbroken}.")
        self.filled.emit()

    def _name(self, k: Any) -> str:
        classes = self.source.classes if self.source is not None else ()
        k = int(k)
        return classes[k] if 0 <= k < len(classes) else str(k)


def _images(count: int) -> str:
    return f"{count} image" if count == 1 else f"{count} images"
