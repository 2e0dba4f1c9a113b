"""The Data & Model panel, driven like a user."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.core.data.idx import write_idx
from explorer.gui.panels.data_model.panel import DataModelPanel


@pytest.fixture
def panel(qtbot, ctx):
    p = DataModelPanel(ctx)
    qtbot.addWidget(p)
    p.resize(1100, 750)
    p.show()
    return p


def _wait_for_accuracy(qtbot, panel, timeout=60_000):
    with qtbot.waitSignal(panel.evaluated, timeout=timeout) as blocker:
        pass
    return blocker.args[0]


def test_opens_on_builtin_data_and_model_with_accuracy(qtbot, panel, ctx):
    result = _wait_for_accuracy(qtbot, panel)
    assert ctx.session.data_name == "fashion-mnist-mini"
    assert ctx.session.model is not None
    assert result["n"] == 1000
    assert result["clean_acc"] >= 0.88
    headline = panel.accuracy.headline.text()
    assert f"{100 * result['clean_acc']:.1f}%" in headline
    # sample grid shows images with class names
    assert len(panel.grid.captions) == 20
    assert set(panel.grid.captions) <= set(ctx.session.dataset.classes)
    # per-class bars and the confusion matrix are filled in
    assert len(panel.accuracy.bars.values) == 10
    assert panel.accuracy.confusion.matrix.sum() == 1000
    # the evaluation was recorded in the workspace
    runs = ctx.workspace.runs(kind="eval")
    qtbot.waitUntil(lambda: ctx.workspace.get(runs[0].id).status == "finished")
    assert ctx.workspace.get(runs[0].id).summary["clean_acc"] == pytest.approx(
        result["clean_acc"])


def test_switching_split_reevaluates(qtbot, panel, ctx):
    _wait_for_accuracy(qtbot, panel)
    panel.split_combo.setCurrentText("train")
    result = _wait_for_accuracy(qtbot, panel)
    assert ctx.session.split == "train"
    assert result["n"] == 6000
    assert ctx.settings.value("data/split") == "train"


def test_toy_set_with_image_model_shows_why_not(qtbot, panel, ctx):
    _wait_for_accuracy(qtbot, panel)
    panel.data_combo.setCurrentIndex(panel.data_combo.findData("moons"))
    qtbot.waitUntil(lambda: ctx.session.data_name == "moons"
                    and ctx.session.dataset is not None, timeout=10_000)
    assert panel.samples.currentWidget() is panel.scatter
    assert panel.banner.isVisible()
    text = panel.banner.text()
    assert "1×28×28" in text or "1x28x28" in text
    assert "moons" in text


def test_toy_params_reload_the_set(qtbot, panel, ctx):
    panel.data_combo.setCurrentIndex(panel.data_combo.findData("blobs"))
    qtbot.waitUntil(lambda: ctx.session.data_name == "blobs"
                    and ctx.session.dataset is not None, timeout=10_000)
    panel.data_form.editor("n").setValue(123)
    qtbot.waitUntil(lambda: ctx.session.dataset is not None
                    and len(ctx.session.dataset) == 123, timeout=10_000)


def test_folder_set_without_folder_asks_for_one(qtbot, panel, ctx):
    panel.data_combo.setCurrentIndex(panel.data_combo.findData("mnist"))
    assert panel.folder_button.isVisible()
    assert "choose the folder" in panel.data_status.text()
    assert ctx.session.dataset is None


def _write_mnist(root, n=20, side=28):
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, count in (("train", n), ("t10k", n)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte",
                  rng.integers(0, 256, (count, side, side), dtype=np.uint8))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte",
                  (np.arange(count) % 10).astype(np.uint8))


def test_user_folder_of_mnist_files_loads(qtbot, panel, ctx, tmp_path):
    _write_mnist(tmp_path / "mnist")
    panel.open_folder(str(tmp_path / "mnist"))
    qtbot.waitUntil(lambda: ctx.session.data_name == "mnist"
                    and ctx.session.dataset is not None, timeout=10_000)
    assert len(ctx.session.dataset) == 20
    result = _wait_for_accuracy(qtbot, panel)
    assert result["n"] == 20


def test_bad_folder_gives_a_message_naming_the_file(qtbot, panel, ctx, tmp_path):
    _write_mnist(tmp_path / "bad", side=32)
    panel.data_combo.setCurrentIndex(panel.data_combo.findData("mnist"))
    panel.set_folder(str(tmp_path / "bad"))
    qtbot.waitUntil(lambda: "idx" in panel.data_status.text().lower()
                    or "32" in panel.data_status.text(), timeout=10_000)
    assert ctx.session.dataset is None
    assert "Traceback" not in panel.data_status.text()


def test_bad_model_file_is_reported_and_app_keeps_running(qtbot, panel, ctx, tmp_path):
    _wait_for_accuracy(qtbot, panel)
    bad = tmp_path / "weights.safetensors"
    bad.write_bytes(b"not really a model")
    panel.model_box.open_file(str(bad))
    qtbot.waitUntil(lambda: "not a model file" in panel.model_box.info.text(),
                    timeout=10_000)
    assert str(bad) in panel.model_box.info.text()
    assert ctx.session.model is None
    assert "Choose a model" in panel.accuracy.headline.text()
    # choosing the built-in again recovers
    panel.model_box.choose_builtin("fmnist-cnn-standard")
    result = _wait_for_accuracy(qtbot, panel)
    assert result["clean_acc"] > 0.8


def _endless_accuracy(model, dataset, *, device, token):
    from explorer.core.jobs import Progress

    i = 0
    while True:  # stops only when the user cancels
        token.check()
        i += 1
        yield Progress(i % 100, 100, "clean accuracy")
        token._event.wait(0.005)


def test_cancel_evaluation(qtbot, panel, ctx, monkeypatch):
    _wait_for_accuracy(qtbot, panel)
    monkeypatch.setattr("explorer.gui.panels.data_model.panel.clean_accuracy",
                        _endless_accuracy)
    panel.eval_button.click()
    job = panel._eval_job
    assert panel.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: job.state == "running", timeout=10_000)
    with qtbot.waitSignal(job.finished, timeout=10_000):
        panel.cancel_button.click()
    assert panel.accuracy.headline.text() == "Clean accuracy: cancelled"
    assert not panel.cancel_button.isEnabled()
    runs = ctx.workspace.runs(kind="eval")
    assert runs[0].status == "cancelled"


def test_demo_finishes(qtbot, panel):
    with qtbot.waitSignal(panel.demo_finished, timeout=60_000):
        panel.run_demo()


def test_download_button_fetches_then_loads(qtbot, panel, ctx, tmp_path, monkeypatch):
    import hashlib

    from torchvision import datasets as tvd

    server = tmp_path / "server"
    server.mkdir()
    rng = np.random.default_rng(1)
    files = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (30, 28, 28), np.uint8),
        "train-labels-idx1-ubyte.gz": np.arange(30, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (12, 28, 28), np.uint8),
        "t10k-labels-idx1-ubyte.gz": np.arange(12, dtype=np.uint8) % 10,
    }
    for name, array in files.items():
        write_idx(server / name, array)
    md5 = {n: hashlib.md5((server / n).read_bytes(), usedforsecurity=False)
           .hexdigest() for n in files}
    monkeypatch.setattr(tvd.FashionMNIST, "mirrors", [server.as_uri() + "/"])
    monkeypatch.setattr(tvd.FashionMNIST, "resources", list(md5.items()))
    target = tmp_path / "downloads"
    target.mkdir()

    panel.data_combo.setCurrentIndex(panel.data_combo.findData("fashion-mnist"))
    assert panel.download_button.isVisible()
    ctx.settings.setValue("data/root/fashion-mnist", str(target))
    panel.download_button.click()
    assert not panel.download_button.isEnabled()
    qtbot.waitUntil(lambda: ctx.session.data_name == "fashion-mnist"
                    and ctx.session.dataset is not None, timeout=20_000)
    assert len(ctx.session.dataset) == 12  # the test split
    assert panel.download_button.isEnabled()
    assert (target / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte").exists()


def test_download_failure_is_reported(qtbot, panel, ctx, tmp_path, monkeypatch):
    from torchvision import datasets as tvd

    monkeypatch.setattr(tvd.MNIST, "mirrors", [(tmp_path / "nowhere").as_uri() + "/"])
    panel.data_combo.setCurrentIndex(panel.data_combo.findData("mnist"))
    ctx.settings.setValue("data/root/mnist", str(tmp_path / "mnist"))
    panel.download_button.click()
    qtbot.waitUntil(lambda: panel.download_button.isEnabled(), timeout=20_000)
    text = panel.data_status.text()
    assert "train-images-idx3-ubyte.gz" in text
    assert "Traceback" not in text


def test_own_image_folder_is_converted_to_the_model_input(qtbot, panel, ctx, tmp_path):
    from PIL import Image as PILImage

    _wait_for_accuracy(qtbot, panel)
    for cls, colour in (("shoes", (200, 10, 10)), ("shirts", (10, 200, 10))):
        (tmp_path / "mine" / cls).mkdir(parents=True)
        for i, size in enumerate(((64, 48), (100, 100))):
            PILImage.new("RGB", size, colour).save(tmp_path / "mine" / cls / f"{i}.png")
    ctx.settings.setValue("data/root/image-folder", str(tmp_path / "mine"))
    panel.data_combo.setCurrentIndex(panel.data_combo.findData("image-folder"))
    qtbot.waitUntil(lambda: ctx.session.data_name == "image-folder"
                    and ctx.session.dataset is not None, timeout=10_000)
    x, _ = ctx.session.dataset[0]
    assert tuple(x.shape) == (1, 28, 28)  # the built-in model's input
    assert ctx.session.dataset.classes == ("shirts", "shoes")
    assert panel.data_form.values()["height"] == 28


def test_image_folder_as_people_have_it(qtbot, panel, ctx, tmp_path):
    """Notes and thumbnail caches are ignored; unreadable images are skipped
    and counted, with their names and reasons in the tooltip."""
    from PIL import Image as PILImage

    _wait_for_accuracy(qtbot, panel)
    mine = tmp_path / "mine"
    for cls in ("shoes", "shirts"):
        (mine / cls).mkdir(parents=True)
        PILImage.new("RGB", (32, 32), (200, 10, 10)).save(mine / cls / "ok.png")
    (mine / "shoes" / "notes.txt").write_text("bought in May")
    (mine / "shoes" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0" * 8)
    (mine / "shirts" / ".DS_Store").write_bytes(b"Bud1" * 8)
    broken = mine / "shirts" / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 but then nothing")
    ctx.settings.setValue("data/root/image-folder", str(mine))
    panel.data_combo.setCurrentIndex(panel.data_combo.findData("image-folder"))
    qtbot.waitUntil(lambda: ctx.session.data_name == "image-folder"
                    and ctx.session.dataset is not None, timeout=10_000)
    assert len(ctx.session.dataset) == 2
    skipped = panel.data_box.skipped
    assert skipped.isVisible()
    assert skipped.text().startswith("1 unreadable image file skipped")
    assert str(broken) in skipped.toolTip()
    assert "Traceback" not in skipped.toolTip()
    broken.unlink()
    panel.data_box.load_data()
    qtbot.waitUntil(lambda: not skipped.isVisible(), timeout=10_000)


def test_a_torchvision_checkpoint_opens_with_a_searched_arch(qtbot, panel, ctx,
                                                              tmp_path):
    """Type part of a name in the weights-only arch box, pick it, open the
    file: the model box says what was built."""
    import torch
    import torchvision
    from PySide6.QtCore import Qt

    _wait_for_accuracy(qtbot, panel)
    path = tmp_path / "resnet18.pth"
    torch.save({"state_dict": torchvision.models.resnet18(num_classes=10)
                .state_dict()}, path)
    combo = panel.model_box.arch_combo
    completer = combo.completer()
    qtbot.keyClicks(combo.lineEdit(), "resnet1")
    completer.setCompletionPrefix("resnet1")
    shown = [completer.completionModel().index(i, 0).data()
             for i in range(completer.completionCount())]
    assert "torchvision:resnet18" in shown
    assert "torchvision:resnet101" in shown
    assert "torchvision:vgg11" not in shown
    combo.lineEdit().clear()
    qtbot.keyClicks(combo.lineEdit(), "torchvision:resnet18")
    qtbot.keyClick(combo.lineEdit(), Qt.Key.Key_Return)
    assert panel.model_box.arch() == "torchvision:resnet18"
    panel.model_box.open_file(str(path))
    qtbot.waitUntil(lambda: "torchvision:resnet18 —" in panel.model_box.info.text(),
                    timeout=30_000)
    assert ctx.session.model.meta.arch == "torchvision:resnet18"
    # the built-in Fashion-MNIST set is 1-channel: said, not run
    qtbot.waitUntil(lambda: "expects 3×32×32" in panel.accuracy.headline.text()
                    or "expects 3×32×32" in panel.data_status.text(), timeout=10_000)


def test_a_typed_unknown_arch_is_a_message(qtbot, panel, ctx, tmp_path):
    import torch

    _wait_for_accuracy(qtbot, panel)
    path = tmp_path / "w.pth"
    torch.save({"x": torch.zeros(2)}, path)
    panel.model_box.arch_combo.setEditText("torchvision:resnet1000")
    panel.model_box.open_file(str(path))
    qtbot.waitUntil(lambda: "unknown torchvision architecture 'resnet1000'"
                    in panel.model_box.info.text(), timeout=10_000)


def test_export_the_loaded_model_as_pt2(qtbot, panel, ctx, tmp_path, monkeypatch):
    import torch
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QFileDialog

    from explorer.core import models

    _wait_for_accuracy(qtbot, panel)
    box = panel.model_box
    assert box.export_button.isEnabled()
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *a, **k: (str(tmp_path / "mine"), ""))
    qtbot.mouseClick(box.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "exported to" in box.export_status.text(),
                    timeout=30_000)
    program = models.load(tmp_path / "mine.pt2")
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(program(x), ctx.session.model.cpu()(x), atol=1e-5)
    assert box.export_button.isEnabled()


def test_a_normalisation_preset_wraps_the_file(qtbot, panel, ctx, tmp_path):
    import torch
    import torchvision

    _wait_for_accuracy(qtbot, panel)
    net = torchvision.models.resnet18(num_classes=10).eval()
    torch.save(net.state_dict(), tmp_path / "r.pth")
    box = panel.model_box
    box.arch_combo.setEditText("torchvision:resnet18")
    box.norm_combo.setCurrentIndex(box.norm_combo.findText("CIFAR-10"))
    box.open_file(str(tmp_path / "r.pth"))
    qtbot.waitUntil(lambda: ctx.session.model is not None
                    and ctx.session.model.meta.arch == "torchvision:resnet18",
                    timeout=30_000)
    assert ctx.session.model.meta.mean == (0.4914, 0.4822, 0.4465)


def test_guardrails_show_as_a_badge(qtbot, panel, ctx, tmp_path):
    """A model that returns probabilities: 'softmax' on load, and 'near chance'
    once its accuracy is measured; the tooltip says the fix."""
    import torch

    _wait_for_accuracy(qtbot, panel)
    box = panel.model_box
    assert not box.badge.isVisible()  # the built-in is clean
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10),
                              torch.nn.Softmax(dim=1))
    # Zero weights: every image gets the uniform distribution, so the answer
    # is class 0 and accuracy is its share, 10 %. A randomly drawn layer
    # scored above 15 % for some states of the global generator, which other
    # tests move: the test then failed or passed with the test order.
    torch.nn.init.zeros_(net[1].weight)
    torch.nn.init.zeros_(net[1].bias)
    path = tmp_path / "probs.pt2"
    torch.export.save(torch.export.export(
        net, (torch.rand(2, 1, 28, 28),),
        dynamic_shapes=({0: torch.export.Dim("batch")},)), path)
    box.open_file(str(path))
    qtbot.waitUntil(lambda: "near chance" in box.badge.text(), timeout=30_000)
    assert box.badge.isVisible()
    assert box.badge.text() == "⚠ softmax, near chance"
    assert "wrap the model with log" in box.badge.toolTip()
    box.choose_builtin("fmnist-cnn-standard")
    qtbot.waitUntil(lambda: not box.badge.isVisible(), timeout=30_000)
