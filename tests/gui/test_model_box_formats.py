"""The Data & Model page's model box opens every format a researcher brings,
giving the network's own logits (1e-5); model code asks once per content."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from model_files import (
    onnx_export,
    paper_net,
    write_model_code,
    write_robustbench_checkpoint,
)
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

from explorer.core.models import onnx_format, robustbench_zoo, zoo
from explorer.gui.panels.data_model.code_row import CodeRow

ONNX = onnx_format.available()
ROBUSTBENCH = robustbench_zoo.available()
TIMM = zoo.timm_available()


@pytest.fixture
def panel(evaluated_data_panel):
    return evaluated_data_panel


def _assert_session_logits(ctx, net, shape=(3, 32, 32)):
    x = torch.rand(4, *shape, generator=torch.Generator().manual_seed(0))
    model = ctx.session.model
    with torch.no_grad():
        assert (model.cpu().eval()(x) - net.eval()(x)).abs().max().item() < 1e-5


def _open(qtbot, panel, ctx, path, arch_text):
    panel.model_box.open_file(str(path))
    qtbot.waitUntil(lambda: ctx.session.model is not None
                    and ctx.session.model.meta.source == str(Path(path).resolve())
                    and arch_text in panel.model_box.info.text(), timeout=30_000)


def test_a_torch_export_program(qtbot, panel, ctx, tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(),
                              torch.nn.Flatten(), torch.nn.Linear(4 * 30 * 30, 10))
    net.eval()
    torch.export.save(torch.export.export(
        net, (torch.rand(2, 3, 32, 32),),
        dynamic_shapes=({0: torch.export.Dim("batch")},)), tmp_path / "n.pt2")
    _open(qtbot, panel, ctx, tmp_path / "n.pt2", "export —")
    _assert_session_logits(ctx, net)


@pytest.mark.skipif(not ONNX, reason="onnx2torch (the [onnx] extra) is not installed")
def test_an_onnx_model(qtbot, panel, ctx, tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                              torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 30 * 30, 10))
    onnx_export(net, tmp_path / "n.onnx")
    _open(qtbot, panel, ctx, tmp_path / "n.onnx", "onnx —")
    _assert_session_logits(ctx, net)
    assert not panel.model_box.badge.isVisible()  # eval mode: no "train mode"


def _user_picks(monkeypatch, path, name, trust=True):
    """The file dialog returns ``path``, the name list ``name``; counts the
    trust questions."""
    asked = []
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        lambda *a, **k: (str(path), ""))
    monkeypatch.setattr(QInputDialog, "getItem",
                        lambda _p, _t, _l, items, *a: (name, name in items))

    def question(*args, **kwargs):
        asked.append(args[2])
        buttons = QMessageBox.StandardButton
        return buttons.Yes if trust else buttons.No

    monkeypatch.setattr(QMessageBox, "question", question)
    return asked


def test_model_code_asks_once_per_content(qtbot, panel, ctx, tmp_path, monkeypatch):
    code = write_model_code(tmp_path / "repo")
    torch.manual_seed(0)
    net = paper_net(tmp_path / "repo", "paper_net_wide")
    torch.save({"state_dict": net.state_dict()}, tmp_path / "wide.pth")
    box = panel.model_box
    # declined: nothing changes, nothing runs
    asked = _user_picks(monkeypatch, code, "paper_net_wide", trust=False)
    qtbot.mouseClick(box.code_row.button, Qt.MouseButton.LeftButton)
    assert len(asked) == 1
    assert "runs the Python code" in asked[0]
    assert box.code_row.ref is None
    # accepted: the open weights file is loaded into the code's network
    asked = _user_picks(monkeypatch, code, "paper_net_wide")
    qtbot.mouseClick(box.code_row.button, Qt.MouseButton.LeftButton)
    assert len(asked) == 1
    assert box.code_row.label.text() == "papernet.py:paper_net_wide"
    _open(qtbot, panel, ctx, tmp_path / "wide.pth", "code:paper_net_wide —")
    _assert_session_logits(ctx, net)
    # the same content again: not asked
    qtbot.mouseClick(box.code_row.button, Qt.MouseButton.LeftButton)
    assert len(asked) == 1
    # kept between launches while the content is the trusted one
    assert CodeRow(ctx.settings).ref == box.code_row.ref
    # changed content: asked again, and a stale trust is refused at load
    code.write_text(code.read_text() + "\n# edited\n")
    assert CodeRow(ctx.settings).ref is None
    box.load(str((tmp_path / "wide.pth").resolve()))
    qtbot.waitUntil(lambda: "changed since it was trusted" in box.info.text(),
                    timeout=30_000)
    qtbot.mouseClick(box.code_row.button, Qt.MouseButton.LeftButton)
    assert len(asked) == 2


def test_model_code_that_raises_is_a_message(qtbot, panel, ctx, tmp_path, monkeypatch):
    bad = tmp_path / "bad.py"
    bad.write_text("from torch import nn\n\n\ndef Net():\n"
                   "    raise RuntimeError('needs a GPU')\n")
    torch.save({"w": torch.zeros(2)}, tmp_path / "w.pt")
    box = panel.model_box
    _user_picks(monkeypatch, bad, "Net")
    qtbot.mouseClick(box.code_row.button, Qt.MouseButton.LeftButton)
    box.open_file(str(tmp_path / "w.pt"))
    qtbot.waitUntil(lambda: "RuntimeError: needs a GPU (line 5)" in box.info.text(),
                    timeout=30_000)
    assert str(bad) in box.info.text()
    assert ctx.session.model is None
    # clearing the code goes back to plain weights files
    qtbot.mouseClick(box.code_row.clear_button, Qt.MouseButton.LeftButton)
    assert box.code_row.ref is None
    assert box.code_row.label.text() == "none"


def test_a_file_that_is_not_python_is_a_message(qtbot, panel, tmp_path, monkeypatch):
    bad = tmp_path / "notes.py"
    bad.write_text("this is not python (\n")
    _user_picks(monkeypatch, bad, "Net")
    qtbot.mouseClick(panel.model_box.code_row.button, Qt.MouseButton.LeftButton)
    assert f"{bad}: not valid Python (line 1)" in panel.model_box.problem.text()
    assert panel.model_box.problem.isVisible()
    assert panel.model_box.code_row.ref is None
    assert panel.ctx.session.model is not None  # the loaded model stays


def test_the_window_accepts_every_model_suffix_the_loader_knows():
    from explorer.core.models import files
    from explorer.gui.main_window import MODEL_SUFFIXES

    assert set(files.SUFFIXES) == MODEL_SUFFIXES
    assert all(f"*{s}" in files.FILE_FILTER for s in files.SUFFIXES)


def test_a_custom_normalisation_wraps_the_file(qtbot, panel, ctx, tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
    torch.save(net.state_dict(), tmp_path / "lin.pt")
    box = panel.model_box
    box.norm_combo.setCurrentIndex(box.norm_combo.findText("custom…"))
    assert box.custom_norm.isVisible()
    box.arch_combo.setEditText("mlp")
    # a bad value: a message naming the field, the loaded model stays
    qtbot.keyClicks(box.mean_edit, "0.5, zero, 0.5")
    qtbot.keyClicks(box.std_edit, "0.25")
    before = ctx.session.model
    box.open_file(str(tmp_path / "lin.pt"))
    assert "Normalisation mean: expected 1 or 3" in box.problem.text()
    assert ctx.session.model is before
    box.mean_edit.setText("0.5, 0.4, 0.3")
    box.std_edit.setText("0.25, 0.2, 0.1")
    path = tmp_path / "n.pt2"
    torch.export.save(torch.export.export(
        net.eval(), (torch.rand(2, 3, 32, 32),),
        dynamic_shapes=({0: torch.export.Dim("batch")},)), path)
    box.arch_combo.setEditText("from file")
    _open(qtbot, panel, ctx, path, "export —")
    assert not box.problem.isVisible()
    x = torch.rand(4, 3, 32, 32)
    mean = torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)
    std = torch.tensor([0.25, 0.2, 0.1]).view(1, 3, 1, 1)
    with torch.no_grad():
        got = ctx.session.model.cpu()(x)
        assert (got - net((x - mean) / std)).abs().max().item() < 1e-5


@pytest.mark.skipif(not ROBUSTBENCH, reason="robustbench is not installed")
def test_a_robustbench_checkpoint_where_robustbench_keeps_it(qtbot, panel, ctx,
                                                             tmp_path):
    net, path = write_robustbench_checkpoint(tmp_path / "models", "Ding2020MMA")
    panel.model_box.open_file(str(path))
    qtbot.waitUntil(lambda: "robustbench:Ding2020MMA —" in panel.model_box.info.text(),
                    timeout=60_000)
    assert ctx.session.model.meta.arch == "robustbench:Ding2020MMA"
    _assert_session_logits(ctx, net)



@pytest.mark.parametrize("arch", [
    "torchvision:resnet18",
    pytest.param("timm:resnet18", marks=pytest.mark.skipif(
        not TIMM, reason="timm (the [zoo] extra) is not installed")),
])
def test_a_library_checkpoint_as_a_training_script_saved_it(qtbot, panel, ctx,
                                                            tmp_path, arch):
    """A DDP-wrapped state dict of a library network, its arch typed in the
    weights-only box."""
    import torchvision

    torch.manual_seed(0)
    if arch.startswith("timm:"):
        import timm

        net = timm.create_model("resnet18", pretrained=False, num_classes=10)
    else:
        net = torchvision.models.resnet18(num_classes=10)
    path = tmp_path / "ckpt.pth"
    torch.save({"epoch": 90, "model": {f"module.{k}": v
                                       for k, v in net.state_dict().items()}}, path)
    panel.model_box.arch_combo.setEditText(arch)
    _open(qtbot, panel, ctx, path, f"{arch} —")
    _assert_session_logits(ctx, net)
