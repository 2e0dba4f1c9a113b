"""Damaged files through the window: a message naming the file, the app runs on.

Each format's damaged versions (tests/damage.py) go where a user would open
them: the model box, the data box, Look Inside's "Open result", the
workspace at start-up and File > Choose workspace.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from damage import (
    REFUSED,
    TRIED,
    cifar_folder,
    database_bytes,
    fixed_damage,
    mnist_folder,
    npz_bytes,
    svhn_file,
    valid_bytes,
    write,
)
from PySide6.QtWidgets import QFileDialog, QMessageBox

from explorer.gui.panels.data_model.panel import DataModelPanel

TIMEOUT = 30_000


def _named(fmt: str, text: str, path: Path) -> None:
    TRIED[f"gui {fmt}"] += 1
    assert str(path) in text, text
    assert "Traceback" not in text
    assert "\n" not in text.strip()
    REFUSED[f"gui {fmt}"] += 1


@pytest.fixture(scope="module")
def valid_models():
    """Each format's valid file, made before any page starts a job: making
    the TorchScript one silences torch.jit's deprecation inside
    ``warnings.catch_warnings``, which is not thread-safe — a worker thread
    leaving its own ``catch_warnings`` meanwhile restores the filters it saw
    and turns the silenced warning back into an error (one stress run in a
    few)."""
    return {fmt: valid_bytes(fmt) for fmt in ("safetensors", "pt", "torchscript")}


@pytest.fixture
def panel(qtbot, ctx):
    p = DataModelPanel(ctx)
    qtbot.addWidget(p)
    p.show()
    qtbot.waitUntil(lambda: ctx.session.model is not None, timeout=TIMEOUT)
    return p


@pytest.mark.parametrize("fmt", ["safetensors", "pt", "torchscript"])
def test_damaged_model_files_in_the_model_box(qtbot, valid_models, panel, ctx,
                                             tmp_path, fmt):
    box = panel.model_box
    for damage, raw in fixed_damage(valid_models[fmt]).items():
        path = write(tmp_path / damage.replace(" ", "-") / f"model.{fmt}", raw)
        box.open_file(str(path))
        qtbot.waitUntil(lambda p=path: str(p) in box.info.text(), timeout=TIMEOUT)
        _named(fmt, box.info.text(), path)
        assert ctx.session.model is None  # nothing half-loaded stays in use
        assert box.combo.isEnabled()


def _choose(qtbot, panel, ctx, name: str, root: Path) -> str:
    ctx.settings.setValue(f"data/root/{name}", str(root))
    box = panel.data_box
    if box.current_data() == name:
        box.load_data()
    else:
        panel.data_combo.setCurrentIndex(panel.data_combo.findData(name))
    qtbot.waitUntil(lambda: str(root) in box.status.text(), timeout=TIMEOUT)
    return box.status.text()


def test_damaged_data_files_in_the_data_box(qtbot, panel, ctx, tmp_path):
    cases = [
        ("idx", "fashion-mnist", lambda r: mnist_folder(r) / "t10k-images-idx3-ubyte"),
        ("cifar-pickle", "cifar10", lambda r: cifar_folder(r) / "test_batch"),
        ("svhn-mat", "svhn", lambda r: svhn_file(r)),
    ]
    for fmt, name, make in cases:
        original = make(tmp_path / f"{fmt}-valid").read_bytes()
        for i, raw in enumerate(fixed_damage(original).values()):
            root = tmp_path / f"{fmt}-{i}"
            path = make(root)
            write(path, raw)
            _named(fmt, _choose(qtbot, panel, ctx, name, root), path)
            assert ctx.session.dataset is None


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_damaged_pictures_in_an_image_folder(qtbot, panel, ctx, tmp_path, fmt):
    folder = tmp_path / "pics"
    for damage, raw in fixed_damage(valid_bytes(fmt)).items():
        write(folder / f"{damage.replace(' ', '-')}.{fmt}", raw)
    text = _choose(qtbot, panel, ctx, "image-folder", folder)
    _named(fmt, text, sorted(folder.iterdir())[0])


def test_damaged_result_files_in_look_inside(qtbot, ctx, tmp_path):
    from explorer.gui.panels.inside.panel import InsidePanel

    inside = InsidePanel(ctx)
    qtbot.addWidget(inside)
    for damage, raw in fixed_damage(npz_bytes()).items():
        path = write(tmp_path / f"{damage.replace(' ', '-')}.npz", raw)
        assert not inside.open_result(path)
        _named("npz", inside.message.text(), path)


def test_damaged_workspace_at_start_up_and_when_chosen(qtbot, tmp_path, monkeypatch):
    from explorer.gui.main_window import MainWindow

    raw = fixed_damage(database_bytes())["random behind magic"]
    home = tmp_path / "home-ws"
    path = write(home / "runs.sqlite", raw)
    monkeypatch.setenv("EXPLORER_HOME", str(home))
    window = MainWindow(ask_on_close=False)
    qtbot.addWidget(window)
    window.show()
    window.finish_loading()
    text = window.workspace_label.text()
    assert text.startswith("Workspace unavailable: ")
    _named("sqlite", text, path)
    assert window.ctx.workspace is None
    assert window.data_panel is not None  # the app runs without a workspace

    other = tmp_path / "other-ws"
    other_db = write(other / "runs.sqlite", fixed_damage(database_bytes())["truncated"])
    warnings: list[str] = []
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a: str(other))
    monkeypatch.setattr(QMessageBox, "warning", lambda *a: warnings.append(a[2]))
    window.choose_workspace()
    assert len(warnings) == 1
    _named("sqlite", warnings[0], other_db)
    window.close()
