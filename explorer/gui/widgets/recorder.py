"""Record any live view to an animated GIF or MP4.

:class:`Recorder` grabs a widget (``QWidget.grab``) on a timer while it
records, dropping a frame identical to the one before (a view that does not
change adds nothing). :class:`RecordControl` is the "● Record" toggle a page
puts next to its view: stopping asks for a file and writes it through the
runner (off the UI thread) with :func:`explorer.core.recording.write_job`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QToolButton,
    QWidget,
)

from explorer.core import recording
from explorer.core.params import ParamError

INTERVAL_MS = 200  # 5 frames a second
MAX_FRAMES = 300  # a minute at 5 frames a second; a full-window frame is ~2 MB
RECORD_TEXT = "● Record"


def image_to_rgb(image: QImage) -> np.ndarray:
    """A QImage → an owned HxWx3 uint8 array."""
    img = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w, stride = img.height(), img.width(), img.bytesPerLine()
    buf = np.frombuffer(img.constBits(), dtype=np.uint8, count=h * stride)
    return buf.reshape(h, stride)[:, : 3 * w].reshape(h, w, 3).copy()


def grab_rgb(widget: QWidget, size: QSize | None = None) -> np.ndarray:
    """What ``widget`` shows now (device-independent pixels), optionally
    scaled to ``size`` (a recording keeps its first frame's size)."""
    pixmap = widget.grab()
    pixmap.setDevicePixelRatio(1.0)
    image = pixmap.toImage()
    if size is not None and image.size() != size:
        image = image.scaled(size, Qt.AspectRatioMode.IgnoreAspectRatio,
                             Qt.TransformationMode.SmoothTransformation)
    return image_to_rgb(image)


class Recorder(QObject):
    """Frames of ``widget`` every ``interval_ms`` between :meth:`start` and
    :meth:`stop` (at most ``max_frames``); ``frame_added`` counts them."""

    frame_added = Signal(int)

    def __init__(self, widget: QWidget, interval_ms: int = INTERVAL_MS,
                 max_frames: int = MAX_FRAMES, parent: QObject | None = None):
        super().__init__(parent if parent is not None else widget)
        self.widget = widget
        self.max_frames = max_frames
        self.frames: list[np.ndarray] = []
        self._size: QSize | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.capture)

    @property
    def duration(self) -> float:
        """Seconds each frame is shown (the grab interval: real time)."""
        return self._timer.interval() / 1000

    @property
    def recording(self) -> bool:
        return self._timer.isActive()

    def start(self) -> None:
        self.frames, self._size = [], None
        self.capture()
        self._timer.start()

    def stop(self) -> list[np.ndarray]:
        self._timer.stop()
        frames, self.frames = self.frames, []
        return frames

    @Slot()
    def capture(self) -> None:
        if len(self.frames) >= self.max_frames:
            self._timer.stop()
            return
        frame = grab_rgb(self.widget, self._size)
        if self._size is None:
            self._size = QSize(frame.shape[1], frame.shape[0])
        if self.frames and np.array_equal(frame, self.frames[-1]):
            return
        self.frames.append(frame)
        self.frame_added.emit(len(self.frames))


def ask_path(parent: QWidget) -> str:
    """The file to save a recording to ('' when the user cancels)."""
    path, _ = QFileDialog.getSaveFileName(
        parent, "Save recording", "recording.gif",
        "Animated GIF (*.gif);;MP4 video (*.mp4)")
    return path


class RecordControl(QWidget):
    """A "● Record" toggle and a one-line status for the view ``target``.

    Stopping asks for a file (:func:`ask_path`) and writes it with
    ``runner`` (a :class:`~explorer.gui.runner.JobRunner`) off the UI
    thread; without a runner it writes at once. ``saved`` gives the path."""

    saved = Signal(str)

    def __init__(self, target: QWidget, runner=None, parent: QWidget | None = None,
                 *, interval_ms: int = INTERVAL_MS) -> None:
        super().__init__(parent)
        self.runner = runner
        self.recorder = Recorder(target, interval_ms, parent=self)
        self.button = QToolButton()
        self.button.setText(RECORD_TEXT)
        self.button.setCheckable(True)
        self.button.setToolTip("Record this view to an animated GIF or MP4; "
                               "click again to stop and save")
        self.button.toggled.connect(self._toggled)
        self.label = QLabel()
        self.label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse)
        self.recorder.frame_added.connect(self._on_frame)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.button)
        row.addWidget(self.label)
        self._job = None

    @Slot(int)
    def _on_frame(self, n: int) -> None:
        full = n >= self.recorder.max_frames
        self.label.setText(f"recording… {n} frame(s)" + (
            " — the limit: click ■ Stop to save" if full else ""))

    def _say(self, text: str, error: bool = False) -> None:
        self.label.setStyleSheet("color: #b00020;" if error else "")
        self.label.setText(text)

    @Slot(bool)
    def _toggled(self, on: bool) -> None:
        if on:
            self.button.setText("■ Stop")
            self._say("")
            self.recorder.start()
            return
        self.button.setText(RECORD_TEXT)
        frames = self.recorder.stop()
        path = ask_path(self)
        if not path:
            self._say(f"recording discarded ({len(frames)} frame(s))")
            return
        if not Path(path).suffix:
            path += ".gif"
        try:
            recording.check_path(path)
        except ParamError as exc:
            self._say(str(exc), error=True)
            return
        if self.runner is None:
            self._write_now(path, frames)
            return
        self._say(f"writing {Path(path).name}…")
        job = self.runner.start(recording.write_job, name="recording",
                                slot=f"recording/{id(self)}",
                                job_args=(path, frames, self.recorder.duration))
        job.done.connect(self._on_done)
        job.failed.connect(lambda message: self._say(message, error=True))
        self._job = job

    def _write_now(self, path: str, frames: list[np.ndarray]) -> None:
        try:
            recording.write_frames(path, frames, self.recorder.duration)
        except (ParamError, OSError) as exc:
            self._say(str(exc), error=True)
            return
        self._on_done({"path": path, "frames": len(frames)})

    @Slot(dict)
    def _on_done(self, result: dict) -> None:
        self._say(f"saved {Path(result['path']).name} ({result['frames']} frames)")
        self.label.setToolTip(result["path"])
        self.saved.emit(result["path"])
