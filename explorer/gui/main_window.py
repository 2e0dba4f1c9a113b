"""The main window: navigation, panels, status bar, menus, drag and drop.

Only Qt is imported at module level: the window paints first, then
:meth:`MainWindow.finish_loading` imports torch and builds the panels.
"""

from __future__ import annotations

import gc
import logging
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer, QUrl, Signal, Slot
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QWidget,
)

from explorer.gui import menus, theme
from explorer.gui import settings as settings_mod

log = logging.getLogger(__name__)
# the same as explorer.core.models.files.SUFFIXES (tested); not imported
# from there, because that would load torch before the window paints
MODEL_SUFFIXES = {".safetensors", ".pt", ".pth", ".pt2", ".onnx", ".ts", ".jit"}
# After start-up, once the user is looking at the window: pay torch's lazy
# imports in the background (explorer.core.training.warmup).
WARM_UP_DELAY_MS = 1500


class MainWindow(QMainWindow):
    loaded = Signal()

    def __init__(
        self,
        workspace: str | None = None,
        device: str | None = None,
        settings: QSettings | None = None,
        ask_on_close: bool = True,
        panel: str | None = None,
        tour: bool = False,
    ) -> None:
        super().__init__()
        self.setWindowTitle("Robustness Explorer")
        self.settings = settings or settings_mod.open_settings()
        self.ask_on_close = ask_on_close
        self._workspace_arg, self._device_arg = workspace, device
        self._panel_arg = panel  # explorer gui --panel: the page to open first
        # No page was ever opened: a new user starts on Data & Model, where the
        # built-in data set and model load (later launches: the last page).
        self.first_launch = not self.settings.contains("window/panel")
        self._tour_arg = tour  # the first-run tour (interactive launches only)
        self.tour = None
        self.ctx = None
        self._retired: list = []  # replaced workspaces that jobs still record into
        self._closed = False
        self.panels: dict[str, object] = {}
        self.nav = QListWidget()
        self.nav.setFixedWidth(150)
        self.stack = QStackedWidget()
        self.placeholder = QLabel("Loading PyTorch and the built-in data…")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stack.addWidget(self.placeholder)
        central = QWidget()
        row = QHBoxLayout(central)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.nav)
        row.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self.device_label = QLabel()
        self.workspace_label = QLabel()
        self.statusBar().addWidget(self.device_label)
        self.statusBar().addWidget(self.workspace_label, 1)
        self.setAcceptDrops(True)
        self.resize(1280, 800)
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        theme.apply_saved(self.settings)  # font size and theme chosen last time
        self._menus()

    # -- start-up ------------------------------------------------------------
    @Slot()
    def finish_loading(self) -> None:
        """Import the heavy parts and build the panels (after the first paint)."""
        from explorer.core import device as devices
        from explorer.gui.context import AppContext
        from explorer.gui.panels import PANELS
        from explorer.gui.runner import JobRunner
        from explorer.gui.session import Session
        from explorer.gui.widgets.current_model import CurrentModelStrip
        from explorer.gui.widgets.jobs_bar import JobsBar

        devices.configure_threads(leave_for_ui=1)
        try:
            device = devices.pick(self._device_arg)
        except devices.DeviceError as exc:
            self.statusBar().showMessage(str(exc), 10000)
            device = devices.pick("cpu")
        runner = JobRunner(self)
        self.ctx = AppContext(
            Session(device, self), runner, self._open_workspace(self._workspace_path()),
            self.settings,
        )
        runner.jobs_changed.connect(self._close_retired)
        self.jobs_bar = JobsBar(runner)
        self.statusBar().addPermanentWidget(self.jobs_bar)
        self.device_label.setText(f"Device: {devices.describe(device)}")
        self.ctx.session.device_changed.connect(self._on_device)
        self.model_strip = CurrentModelStrip(self.ctx.session, compact=True)
        self.statusBar().insertWidget(1, self.model_strip, 3)
        for spec in PANELS:
            panel = spec.load()(self.ctx)
            self.panels[spec.key] = panel
            self.stack.addWidget(panel)
            self.nav.addItem(spec.title)
        self.nav.currentRowChanged.connect(self._show_row)
        # "Change…" on any page's current-model strip, and the status bar's
        for strip in self.findChildren(CurrentModelStrip):
            strip.change_requested.connect(self.show_data_page)
        # Move the start-up objects (torch, Qt wrappers) out of the collector's
        # way: full collections then take ~1 ms instead of tens of ms that
        # would stall the UI thread while jobs allocate.
        gc.collect()
        gc.freeze()
        last = self._panel_arg or ("data" if self.first_launch else str(
            self.settings.value("window/panel", PANELS[0].key)))
        self.show_panel(last if last in self.panels else PANELS[0].key)
        self.warm_up_handle = None
        QTimer.singleShot(WARM_UP_DELAY_MS, self, self.warm_up)
        if theme.is_dark(self.settings):
            theme.style_plots(True)  # the plots exist now
        if self._tour_arg:
            from explorer.gui import tour

            self.tour = tour.maybe_start(self)
        self.loaded.emit()

    @Slot()
    def warm_up(self) -> None:
        """Import what the first training run would otherwise import mid-run."""
        from explorer.core.training.warmup import warm_up

        if self.ctx is not None and self.warm_up_handle is None and not self._closed:
            self.warm_up_handle = self.ctx.runner.start(
                warm_up, name="warm up", background=True
            )

    def _workspace_path(self) -> str | None:
        """--workspace, then EXPLORER_HOME, then the folder chosen last time."""
        import os

        if self._workspace_arg or os.environ.get("EXPLORER_HOME"):
            return self._workspace_arg
        return self.settings.value("workspace/path") or None

    def _open_workspace(self, path: str | None):
        """The start-up workspace; without one the app runs but keeps no runs."""
        from explorer.store import Workspace, WorkspaceError

        try:
            ws = Workspace.open(path)
        except WorkspaceError as exc:
            # No dialog here: a modal box before the panels exist would hang
            # unattended runs (--screenshot, the start-up probe). The status bar
            # says why, and File > Choose workspace... recovers.
            log.warning("workspace unavailable: %s", exc)
            self.workspace_label.setText(f"Workspace unavailable: {exc}")
            return None
        self.workspace_label.setText(f"Workspace: {_home_relative(ws.path)}")
        self.workspace_label.setToolTip(str(ws.path))
        return ws

    def show_panel(self, key: str) -> None:
        keys = list(self.panels)
        self.nav.setCurrentRow(keys.index(key))
        self._show_row(keys.index(key))

    @Slot()
    def show_data_page(self) -> None:
        """Where the session's model and data are chosen."""
        if "data" in self.panels:
            self.show_panel("data")

    @Slot(int)
    def _show_row(self, row: int) -> None:
        if row < 0:
            return
        key = list(self.panels)[row]
        self.stack.setCurrentWidget(self.panels[key])
        self.settings.setValue("window/panel", key)

    @Slot()
    def _on_device(self) -> None:
        from explorer.core import device as devices

        device = self.ctx.session.device
        self.device_label.setText(f"Device: {devices.describe(device)}")

    # -- menus ---------------------------------------------------------------
    def _menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        for text, slot, key in (
            ("Open data folder…", self.open_data_folder, None),
            ("Open model…", self.open_model, QKeySequence.StandardKey.Open),
            ("Choose workspace…", self.choose_workspace, None),
            ("Show workspace folder", self.show_workspace, None),
            ("Quit", self.close, QKeySequence.StandardKey.Quit),
        ):
            action = QAction(text, self)
            if key is not None:
                action.setShortcut(key)
            action.triggered.connect(slot)
            file_menu.addAction(action)
        menus.install(self)  # Edit, View, Help
        self.presenter_action = QAction("Presenter mode", self)
        self.presenter_action.setShortcut(QKeySequence(Qt.Key.Key_F11))
        self.presenter_action.triggered.connect(self.toggle_presenter)
        first = self.view_menu.actions()[0] if self.view_menu.actions() else None
        self.view_menu.insertAction(first, self.presenter_action)
        self.addAction(self.presenter_action)  # F11 works with the menus hidden

    @Slot()
    def toggle_presenter(self) -> None:
        """Presenter mode (explorer.gui.presenter) on or off."""
        if self.ctx is not None:
            self._presenter().toggle()

    def start_presenter(self, step: int = 0) -> None:
        if self.ctx is not None:
            self._presenter().enter(step)

    def _presenter(self):
        if getattr(self, "presenter", None) is None:
            from explorer.gui.presenter import Presenter

            self.presenter = Presenter(self)
        return self.presenter

    @property
    def data_panel(self):
        return self.panels.get("data")

    @Slot()
    def open_data_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open data folder")
        if folder and self.data_panel is not None:
            self.show_panel("data")
            self.data_panel.open_folder(folder)

    @Slot()
    def open_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open model", "", "Models (*.safetensors *.pt *.pth *.ts *.jit)"
        )
        if path:
            self.open_model_file(path)

    def open_model_file(self, path: str) -> None:
        if self.data_panel is not None:
            self.show_panel("data")
            self.data_panel.model_box.open_file(path)

    @Slot()
    def choose_workspace(self) -> None:
        from explorer.store import Workspace, WorkspaceError

        folder = QFileDialog.getExistingDirectory(self, "Choose workspace folder")
        if not folder or self.ctx is None:
            return
        old = self.ctx.workspace
        if old is not None and Path(folder).resolve() == old.path.resolve():
            return
        try:
            ws = Workspace.open(folder)
        except WorkspaceError as exc:
            QMessageBox.warning(self, "Workspace", str(exc))
            return
        if old is not None:
            self._retired.append(old)
        self.ctx.workspace = ws
        self.workspace_label.setText(f"Workspace: {_home_relative(ws.path)}")
        self.workspace_label.setToolTip(str(ws.path))
        self.settings.setValue("workspace/path", folder)
        self._close_retired()

    @Slot()
    def _close_retired(self) -> None:
        """Close replaced workspaces once no job can still record into them."""
        # A job records its outcome before it stops counting as active.
        if self.ctx is not None and self.ctx.runner.active():
            return
        while self._retired:
            self._retired.pop().close()

    @Slot()
    def show_workspace(self) -> None:
        if self.ctx is not None and self.ctx.workspace is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.ctx.workspace.path)))

    @Slot()
    def about(self) -> None:
        self.about_dialog().exec()

    def about_dialog(self):
        from explorer.core import device as devices
        from explorer.gui.about import AboutDialog

        device = ("not chosen yet" if self.ctx is None
                  else devices.describe(self.ctx.session.device))
        return AboutDialog(device, self)

    # -- drag and drop -------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if any(Path(u.toLocalFile()).suffix.lower() in MODEL_SUFFIXES | {".toml"}
               for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        for url in event.mimeData().urls():
            path = url.toLocalFile()
            if Path(path).suffix.lower() in MODEL_SUFFIXES:
                self.open_model_file(path)
                event.acceptProposedAction()
                return
            if Path(path).suffix.lower() == ".toml":  # a recipe: its page's form
                from explorer.gui.widgets.recipes import open_recipe

                self.statusBar().showMessage(open_recipe(self, path), 15000)
                event.acceptProposedAction()
                return

    # -- shutdown ------------------------------------------------------------
    def closeEvent(self, event) -> None:
        runner = self.ctx.runner if self.ctx is not None else None
        active = runner.active() if runner is not None else []
        if active and self.ask_on_close:
            names = ", ".join(h.name for h in active)
            answer = QMessageBox.question(
                self, "Jobs are running",
                f"Cancel the running jobs ({names}) and quit?",
            )
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        self._closed = True
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.sync()
        if runner is not None:
            runner.shutdown()
        if self.ctx is not None and self.ctx.workspace is not None:
            self.ctx.workspace.close()
        while self._retired:
            self._retired.pop().close()
        event.accept()


def _home_relative(path: Path) -> str:
    """``~/…`` for paths under the home folder: shorter, and says the same."""
    try:
        return "~/" + str(Path(path).resolve().relative_to(Path.home().resolve()))
    except ValueError:
        return str(path)
