"""Presenter mode: full screen, large type, no navigation, a caption bar, and
the story driven by the keyboard.

Right/Space next step, Left previous, 1–9 or the Steps menu jump to a step,
Ctrl+PageDown/PageUp show the other pages (and Right returns to the story),
Esc leaves. Entering a step starts its page's real jobs; leaving it cancels
the jobs it started that still run.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QAction, QFont, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QMenu,
    QToolBar,
    QToolButton,
    QWidget,
)

from explorer.gui.presenter.story import StepRun, Story, default_story

FONT_SCALE = 1.6
CAPTION_SCALE = 1.5  # the caption, relative to the (already larger) app font
HINT = "←  →   Esc"


class CaptionBar(QWidget):
    """The current step's big caption, where we are, and the keys."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.caption.setTextFormat(Qt.TextFormat.PlainText)
        self.where = QLabel()
        self.hint = QLabel(HINT)
        self.hint.setStyleSheet("color: #777;")
        self.steps_button = QToolButton()
        self.steps_button.setText("Steps")
        self.steps_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.steps_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        row = QHBoxLayout(self)
        row.setContentsMargins(16, 8, 16, 8)
        row.addWidget(self.caption, 1)
        row.addWidget(self.where)
        row.addWidget(self.steps_button)
        row.addWidget(self.hint)

    def set_caption_font(self, base: QFont) -> None:
        font = QFont(base)
        font.setPointSizeF(base.pointSizeF() * CAPTION_SCALE)
        font.setBold(True)
        self.caption.setFont(font)


class Presenter(QObject):
    """Turns a :class:`MainWindow` into a presentation and back."""

    entered = Signal()
    left = Signal()
    step_shown = Signal(int)  # a step's page is on screen (it may still run)
    step_ready = Signal(int)  # the step's caption has its numbers

    def __init__(self, window, story: Story | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.story = story or default_story()
        self.index = -1
        self.run: StepRun | None = None
        self.browsing: str | None = None  # a page shown outside the story
        self.active = False
        self._step_jobs: list = []
        self._saved: dict = {}
        self.bar = CaptionBar()
        self.toolbar = QToolBar("Presenter")
        self.toolbar.setMovable(False)
        self.toolbar.setFloatable(False)
        self.toolbar.addWidget(self.bar)
        self.toolbar.hide()
        window.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.toolbar)
        menu = QMenu(self.bar.steps_button)
        for i, step in enumerate(self.story.steps):
            action = QAction(f"{i + 1}. {step.title}", menu)
            action.triggered.connect(lambda _=False, i=i: self.go(i))
            menu.addAction(action)
        self.bar.steps_button.setMenu(menu)
        self.shortcuts: list[QShortcut] = []
        keys = [(Qt.Key.Key_Right, self.next), (Qt.Key.Key_Space, self.next),
                (Qt.Key.Key_Left, self.previous), (Qt.Key.Key_Escape, self.leave),
                (QKeySequence("Ctrl+PgDown"), lambda: self.browse(1)),
                (QKeySequence("Ctrl+PgUp"), lambda: self.browse(-1))]
        for i in range(min(9, len(self.story.steps))):
            keys.append((Qt.Key(Qt.Key.Key_1 + i), lambda i=i: self.go(i)))
        for key, slot in keys:
            shortcut = QShortcut(QKeySequence(key), window)
            shortcut.setEnabled(False)
            shortcut.activated.connect(slot)
            self.shortcuts.append(shortcut)

    # -- entering and leaving ---------------------------------------------------
    def enter(self, step: int | None = None) -> None:
        """Present, from ``step`` (0-based; where it was left by default)."""
        if self.active:
            if step is not None and step != self.index:
                self.go(step)
            return
        if self.window.ctx is None:
            return
        w, app = self.window, QApplication.instance()
        self.active = True
        self._saved = {"font": QFont(app.font()), "state": w.windowState(),
                       "menu": w.menuBar().isVisible(),
                       "status": w.statusBar().isVisible(),
                       "panel": list(w.panels)[w.nav.currentRow()]
                       if w.nav.currentRow() >= 0 else None}
        font = QFont(app.font())
        font.setPointSizeF(font.pointSizeF() * FONT_SCALE)
        app.setFont(font)
        self.bar.set_caption_font(font)
        w.nav.hide()
        w.menuBar().hide()
        w.statusBar().hide()
        self.toolbar.show()
        for shortcut in self.shortcuts:
            shortcut.setEnabled(True)
        w.showFullScreen()
        self.entered.emit()
        self.go(step if step is not None else max(self.index, 0))

    @Slot()
    def leave(self) -> None:
        if not self.active:
            return
        self._stop_step()
        w, saved = self.window, self._saved
        self.active, self.browsing = False, None
        for shortcut in self.shortcuts:
            shortcut.setEnabled(False)
        self.toolbar.hide()
        QApplication.instance().setFont(saved["font"])
        w.nav.show()
        w.menuBar().setVisible(saved["menu"])
        w.statusBar().setVisible(saved["status"])
        w.setWindowState(saved["state"])
        if not saved["state"] & Qt.WindowState.WindowFullScreen:
            w.showNormal() if saved["state"] == Qt.WindowState.WindowNoState \
                else w.show()
        self.left.emit()

    @Slot()
    def toggle(self) -> None:
        self.leave() if self.active else self.enter()

    # -- moving through the story ------------------------------------------------
    @Slot()
    def next(self) -> None:
        if self.browsing is not None:  # back to the story where it was
            self.go(self.index)
        elif self.index < len(self.story.steps) - 1:
            self.go(self.index + 1)

    @Slot()
    def previous(self) -> None:
        if self.browsing is not None:
            self.go(self.index)
        elif self.index > 0:
            self.go(self.index - 1)

    def go(self, index: int) -> None:
        """Show step ``index`` and start it (stopping the step shown before)."""
        if not self.active or not 0 <= index < len(self.story.steps):
            return
        self._stop_step()
        self.browsing = None
        self.index = index
        step = self.story.steps[index]
        self.window.show_panel(step.page)
        self.bar.where.setText(f"{index + 1} / {len(self.story.steps)}")
        self.bar.caption.setText(step.waiting)
        self.bar.setFocus()
        runner = self.window.ctx.runner
        self._before = set(runner.active())
        runner.jobs_changed.connect(self._collect_jobs)
        self.run = StepRun(self.window, step, self.story)
        self.run.finished.connect(self._on_step_finished)
        self.step_shown.emit(index)
        step.start(self.run)
        self._collect_jobs()

    def browse(self, delta: int) -> None:
        """Show the next/previous page of the app; the story waits."""
        if not self.active:
            return
        keys = list(self.window.panels)
        current = self.browsing or self.story.steps[self.index].page
        key = keys[(keys.index(current) + delta) % len(keys)]
        self.browsing = key
        self.window.show_panel(key)
        self.bar.caption.setText(
            f"{self.window.panels[key].title} — → returns to the story")

    @Slot(str)
    def _on_step_finished(self, caption: str) -> None:
        if self.browsing is None:
            self.bar.caption.setText(caption)
        self.step_ready.emit(self.index)

    @Slot()
    def _collect_jobs(self) -> None:
        for handle in self.window.ctx.runner.active():
            if handle not in self._before and handle not in self._step_jobs:
                self._step_jobs.append(handle)

    def step_jobs(self) -> list:
        """The current step's jobs that still run."""
        return [h for h in self._step_jobs if h.running]

    def _stop_step(self) -> None:
        if self.run is None:
            return
        self.window.ctx.runner.jobs_changed.disconnect(self._collect_jobs)
        self.run.stop()
        self.run = None
        for handle in self.step_jobs():
            handle.cancel()
        self._step_jobs = []
