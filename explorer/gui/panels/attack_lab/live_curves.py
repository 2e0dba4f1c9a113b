"""Loss and confidence per attack step, one thin curve per image, mean bold."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtWidgets import QHBoxLayout, QWidget

from explorer.gui.widgets.plots import CLASS_COLORS, OutsideLegend

MAX_CURVES = 48
_THIN = (120, 120, 120, 90)


def _plot(layout: pg.GraphicsLayoutWidget, title: str, y_label: str) -> pg.PlotItem:
    plot = layout.addPlot(title=title)
    plot.setLabel("bottom", "step")
    plot.setLabel("left", y_label)
    plot.showGrid(x=True, y=True, alpha=0.25)
    # A few hundred points per curve: clip-to-view and downsampling would
    # only add per-update work here.
    plot.setMenuEnabled(False)
    plot.hideButtons()
    # Ranges are set from the data we already have (see LiveCurves._fit):
    # pyqtgraph's auto-range walks every curve's bounds on each update, which
    # measured as the largest share of the UI thread's time during an attack.
    plot.disableAutoRange()
    plot.getAxis("left").setWidth(44)  # tick labels of new widths: no re-layout
    return plot


class LiveCurves(QWidget):
    """Two plots built once: the attack loss, and the confidence in the true
    class (plus the target class when the attack is targeted).

    Each plot has its own view and they are updated in turn, one per pass of
    the event loop, so a live update stalls the UI for one plot's repaint,
    not both (the UI-latency bench measured p99 halved).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loss_view = pg.GraphicsLayoutWidget()
        self.conf_view = pg.GraphicsLayoutWidget()
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        row.addWidget(self.loss_view)
        row.addWidget(self.conf_view)
        self.loss_plot = _plot(self.loss_view, "Attack loss", "loss")
        self.conf_plot = _plot(self.conf_view, "Confidence", "probability (%)")
        self.conf_plot.setYRange(0, 100, padding=0.02)
        self.legend = OutsideLegend(self.conf_plot)
        # All per-image lines of a plot are one item, NaN-separated: one path
        # to paint instead of dozens of items (each repaint measured ~3x
        # cheaper), and no antialiasing for these thin grey lines.
        self.loss_lines = self.loss_plot.plot(
            pen=pg.mkPen(_THIN, width=1), connect="finite", antialias=False)
        self.conf_lines = self.conf_plot.plot(
            pen=pg.mkPen(_THIN, width=1), connect="finite", antialias=False)
        self.loss_mean = self.loss_plot.plot(pen=pg.mkPen(CLASS_COLORS[0], width=3))
        self.conf_mean = self.conf_plot.plot(
            pen=pg.mkPen(CLASS_COLORS[0], width=3), name="true class (mean)")
        self.target_mean = self.conf_plot.plot(
            pen=pg.mkPen(CLASS_COLORS[3], width=3, style=Qt.PenStyle.DashLine))
        self.focus_loss = self.loss_plot.plot(pen=pg.mkPen(CLASS_COLORS[1], width=2))
        self.focus_conf = self.conf_plot.plot(
            pen=pg.mkPen(CLASS_COLORS[1], width=2), name="focused image")
        self.cursors = []
        for plot in (self.loss_plot, self.conf_plot):
            line = pg.InfiniteLine(angle=90, movable=False,
                                   pen=pg.mkPen(CLASS_COLORS[2], width=1.5))
            plot.addItem(line)
            self.cursors.append(line)
        self.n_curves = 0
        self._ranges: dict[int, tuple[float, float, float]] = {}
        empty = np.zeros(0)
        self._series: tuple = (empty, empty[:, None], empty[:, None], None, -1, 0)
        self._conf_timer = QTimer(self)
        self._conf_timer.setSingleShot(True)
        self._conf_timer.setInterval(0)
        self._conf_timer.timeout.connect(self._draw_conf)
        self._legend_has_target = False
        self._x_max: float | None = None

    def _fit(self, plot: pg.PlotItem, x_max: float, y_lo: float, y_hi: float) -> None:
        """Change the view only when the data leave it.

        ``x_max`` is the run's last step, known from the start, and the y
        range gets a quarter of headroom: a rising loss then re-ranges (and
        re-lays out the axes, the costly part of a repaint) a few times per
        run instead of at every update.
        """
        if not (np.isfinite(y_lo) and np.isfinite(y_hi)):
            return
        if y_hi - y_lo < 1e-6:
            y_lo, y_hi = y_lo - 0.5, y_hi + 0.5
        x_top = max(x_max, 1.0)
        old = self._ranges.get(id(plot))
        if old is not None:
            ox, olo, ohi = old
            if ox == x_top and olo <= y_lo and y_hi <= ohi:
                return
        room = 0.25 * (y_hi - y_lo)
        y_lo, y_hi = y_lo - 0.05 * room, y_hi + room
        plot.setRange(xRange=(0, x_top), yRange=(y_lo, y_hi), padding=0.02)
        self._ranges[id(plot)] = (x_top, y_lo, y_hi)

    def reset(self) -> None:
        """Empty every curve (not `clear`: GraphicsLayoutWidget binds its
        layout's clear, which would remove the plots, onto the instance)."""
        self._conf_timer.stop()
        for curve in (self.loss_lines, self.conf_lines, self.loss_mean,
                      self.conf_mean, self.target_mean, self.focus_loss,
                      self.focus_conf):
            curve.setData([], [])
        self.n_curves = 0
        self._ranges.clear()

    def set_series(
        self,
        steps: np.ndarray,
        loss: np.ndarray,
        true_conf: np.ndarray,
        target_conf: np.ndarray | None,
        focus: int,
        immediate: bool = True,
        x_max: float | None = None,
    ) -> None:
        """``steps`` (S,); ``loss``, ``true_conf``, ``target_conf`` (S, B),
        confidences as probabilities; ``focus`` is drawn in orange.

        With ``immediate=False`` (live updates) the confidence plot is drawn
        on the next pass of the event loop, after the loss plot has painted.
        """
        n = min(loss.shape[1], MAX_CURVES) if loss.ndim == 2 else 0
        self.n_curves = n
        self._x_max = float(steps[-1]) if x_max is None and len(steps) else x_max
        self._series = (steps, loss, true_conf, target_conf, focus, n)
        self._draw_loss()
        if immediate:
            self._conf_timer.stop()
            self._draw_conf()
        elif not self._conf_timer.isActive():
            self._conf_timer.start()

    @Slot()
    def _draw_loss(self) -> None:
        steps, loss, _, _, focus, n = self._series
        if not n:
            for curve in (self.loss_lines, self.loss_mean, self.focus_loss):
                curve.setData([], [])
            return
        x = _joined(np.repeat(steps[:, None], n, axis=1))
        self.loss_lines.setData(x, _joined(loss[:, :n]))
        self.loss_mean.setData(steps, loss.mean(1))
        shown = loss[:, :n]
        self._fit(self.loss_plot, self._x_max or 1.0, float(np.nanmin(shown)),
                  float(np.nanmax(shown)))
        if 0 <= focus < n:
            self.focus_loss.setData(steps, loss[:, focus])

    @Slot()
    def _draw_conf(self) -> None:
        steps, _, true_conf, target_conf, focus, n = self._series
        if not n:
            for curve in (self.conf_lines, self.conf_mean, self.focus_conf,
                          self.target_mean):
                curve.setData([], [])
            return
        x = _joined(np.repeat(steps[:, None], n, axis=1))
        self.conf_lines.setData(x, _joined(100 * true_conf[:, :n]))
        self.conf_mean.setData(steps, 100 * true_conf.mean(1))
        self._fit(self.conf_plot, self._x_max or 1.0, 0.0, 100.0)
        if target_conf is None:
            self.target_mean.setData([], [])
        else:
            self.target_mean.setData(steps, 100 * target_conf.mean(1))
        if (target_conf is not None) != self._legend_has_target:
            self._legend_has_target = target_conf is not None
            if self._legend_has_target:
                self.legend.addItem(self.target_mean, "target class (mean)")
            else:
                self.legend.removeItem(self.target_mean)
        if 0 <= focus < n:
            self.focus_conf.setData(steps, 100 * true_conf[:, focus])

    def set_cursor(self, step: float) -> None:
        for line in self.cursors:
            line.setValue(step)


def _joined(columns: np.ndarray) -> np.ndarray:
    """(S, B) columns → one array of the B series separated by NaN."""
    s, b = columns.shape
    out = np.full((b, s + 1), np.nan)
    out[:, :s] = columns.T
    return out.ravel()
