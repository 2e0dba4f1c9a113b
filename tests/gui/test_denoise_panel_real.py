"""The Denoiser Lab on a user's real noisy image, driven like a user: the file
dialog, the tiles without a clean image ("—"), with a clean reference
(scikit-image's PSNR), bad files, the settings; and the Train tab's hint."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtWidgets import QFileDialog
from skimage.metrics import peak_signal_noise_ratio

from explorer.gui.panels.denoise.attack_form import REAL
from explorer.gui.panels.denoise.panel import DenoiserLabPanel

TIMEOUT = 30_000
BUILTIN = "dncnn-fmnist-standard"



@pytest.fixture
def panel(qtbot, ctx, fmnist):
    p = DenoiserLabPanel(ctx)
    qtbot.addWidget(p)
    p.resize(1130, 760)
    p.show()
    ctx.session.set_data(fmnist, "fashion-mnist-mini", "test")
    p.denoisers.set_checked([BUILTIN])
    p.form.steps.setValue(5)
    yield p
    if p.running:
        with qtbot.waitSignal(p.ctx.runner.jobs_changed, timeout=TIMEOUT):
            p.cancel()


@pytest.fixture
def files(tmp_path, fmnist):
    """A 28×28 gray noisy photo with its clean reference, a 40×36 colour one."""
    rng = np.random.default_rng(0)
    clean = (fmnist.as_tensors(0, 1)[0][0, 0].numpy() * 255).round()
    noisy = np.clip(clean + 25 * rng.standard_normal(clean.shape), 0, 255)
    colour = rng.integers(0, 256, (36, 40, 3), np.uint8)
    out = {}
    for name, array in (("noisy", noisy), ("clean", clean), ("colour", colour)):
        out[name] = tmp_path / f"{name}.png"
        Image.fromarray(array.astype(np.uint8)).save(out[name])
    return out


def pick(monkeypatch, button, path):
    """Choose ``path`` through the button's file dialog."""
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        lambda *args, **kw: (str(path), "Images"))
    button.click()


def run(qtbot, panel):
    with qtbot.waitSignal(panel.attack_finished, timeout=TIMEOUT):
        panel.run_button.click()
    qtbot.waitUntil(lambda: not panel.running, timeout=TIMEOUT)


def test_a_real_image_without_reference_shows_dashes(qtbot, monkeypatch, panel,
                                                      files):
    panel.form.kind.setCurrentText(REAL)
    assert panel.real_box.isVisible()
    assert not panel.boxes["Images"].isVisible()
    assert not panel.form.level.isVisible()
    pick(monkeypatch, panel.real_box.noisy_button, files["noisy"])
    assert panel.real_box.info.text().startswith("noisy.png: 28×28 gray")
    assert "ρ = 0.439" in panel.form.budget.text()  # 4/255 on 1×28×28
    run(qtbot, panel)
    rows = panel.rows
    captions = rows.captions(BUILTIN)
    assert captions[0] == "—"
    assert captions[1:5] == ["PSNR —\nSSIM —"] * 4
    assert "no clean ground truth" in rows.tiles[BUILTIN][2].toolTip()
    assert "||f(v+d) − f(v)||²" in rows.tiles[BUILTIN][3].toolTip()
    assert [rows.headers[c].text() for c in (0, 3)] == ["no clean image",
                                                        "ObsAtk vs f(v)"]
    tiles = rows.tiles[BUILTIN]
    assert tiles[0].picture.pixmap().isNull()
    assert not any(t.picture.pixmap().isNull() for t in tiles[1:])
    assert panel.table.cell_text(0, 2) == "—"
    assert "no clean ground truth" in panel.table.item(0, 2).toolTip()
    gains = [float(g) for g in panel.table.cell_text(0, 5).split(" / ")]
    assert gains[0] > gains[1] > 0  # the pass-through needs no clean image
    assert "ObsAtk moved f(v) by RMS" in panel.status.text()
    assert not panel.sweep.running  # no sweep without clean images

    pick(monkeypatch, panel.real_box.noisy_button, files["colour"])
    assert "40×36 colour" in panel.real_box.info.text()
    run(qtbot, panel)
    assert "image 1×36×40 (colour converted to grayscale" in panel.status.text()
    assert rows.snapshots[BUILTIN][0].arrays["noisy"].shape == (1, 1, 36, 40)


def test_a_clean_reference_gives_scikit_images_psnr(qtbot, monkeypatch, panel,
                                                    files):
    panel.form.kind.setCurrentText(REAL)
    pick(monkeypatch, panel.real_box.noisy_button, files["noisy"])
    pick(monkeypatch, panel.real_box.ref_button, files["clean"])
    assert "PSNR/SSIM against clean.png" in panel.real_box.info.text()
    run(qtbot, panel)
    rows = panel.rows
    clean = np.asarray(Image.open(files["clean"]), np.float32) / 255
    noisy = np.asarray(Image.open(files["noisy"]), np.float32) / 255
    first = rows.snapshots[BUILTIN][0].arrays
    denoised = first["denoised"][0, 0]
    for column, image in ((1, noisy), (2, denoised)):
        assert rows.caption_psnr(BUILTIN, column) == pytest.approx(
            peak_signal_noise_ratio(clean, image, data_range=1.0), abs=0.006)
    assert rows.caption_psnr(BUILTIN, 2) > rows.caption_psnr(BUILTIN, 1)
    assert rows.captions(BUILTIN)[0] == "reference"
    assert rows.headers[3].text() == "ObsAtk v+d"
    assert float(panel.table.cell_text(0, 4)) < float(panel.table.cell_text(0, 3))


def test_bad_files_are_named_in_the_panel(qtbot, monkeypatch, panel, files,
                                          tmp_path):
    panel.form.kind.setCurrentText(REAL)
    panel.run_button.click()
    assert panel.status.text() == "Choose a real noisy image file."
    pick(monkeypatch, panel.real_box.noisy_button, tmp_path / "gone.png")
    assert "gone.png: no such file" in panel.real_box.error.text()
    (tmp_path / "notes.png").write_text("not a picture")
    pick(monkeypatch, panel.real_box.noisy_button, tmp_path / "notes.png")
    assert "notes.png: not an image file Pillow can read" in \
        panel.real_box.error.text()
    panel.run_button.click()
    assert panel.attack_job is None
    assert "notes.png: not an image" in panel.status.text()
    cut = tmp_path / "cut.png"  # a header, then the file ends: read in the job
    cut.write_bytes(files["colour"].read_bytes()[:120])
    pick(monkeypatch, panel.real_box.noisy_button, cut)
    assert panel.real_box.problem() is None
    panel.run_button.click()
    assert panel.running
    qtbot.waitUntil(lambda: not panel.running, timeout=TIMEOUT)
    assert panel.status.text().startswith(f"ObsAtk failed: {BUILTIN}: ")
    assert "cut.png: damaged or unreadable image" in panel.status.text()
    pick(monkeypatch, panel.real_box.noisy_button, files["colour"])
    pick(monkeypatch, panel.real_box.ref_button, files["clean"])
    assert panel.real_box.error.text().endswith(
        "clean.png: the clean reference is 28×28 but colour.png is 40×36; they "
        "must be the same size")
    panel.real_box.clear_button.click()
    assert panel.real_box.problem() is None


def test_the_choice_and_paths_are_kept_between_launches(qtbot, monkeypatch, ctx,
                                                        panel, files):
    panel.form.kind.setCurrentText(REAL)
    pick(monkeypatch, panel.real_box.noisy_button, files["noisy"])
    pick(monkeypatch, panel.real_box.ref_button, files["clean"])
    again = DenoiserLabPanel(ctx)
    qtbot.addWidget(again)
    assert again.form.is_real()
    assert again.real_box.paths() == (str(files["noisy"]), str(files["clean"]))


def test_big_images_are_cropped_and_say_so(qtbot, monkeypatch, panel, tmp_path):
    big = tmp_path / "big.png"
    rng = np.random.default_rng(2)
    Image.fromarray(rng.integers(0, 256, (280, 300), np.uint8)).save(big)
    panel.form.kind.setCurrentText(REAL)
    pick(monkeypatch, panel.real_box.noisy_button, big)
    assert "the central 256×256 at most is used" in panel.real_box.info.text()
    assert "ρ = 4.02" in panel.form.budget.text()  # 4/255 · 256
    run(qtbot, panel)
    assert "centre crop 300×280 → 256×256" in panel.status.text()


def test_the_train_tab_says_when_the_denoiser_is_worse_than_its_input(panel):
    box = panel.train_box
    base = {"epochs": 3, "psnr_attacked": 16.0, "best": None}
    box._on_done({**base, "psnr_clean": 18.6, "psnr_noisy": 20.0})
    assert not box.hint.isHidden()
    assert box.hint.text().startswith("The denoiser is still worse than the noisy "
                                      "input (18.60 dB vs 20.00 dB): train longer")
    box._on_done({**base, "psnr_clean": 25.8, "psnr_noisy": 20.0})
    assert box.hint.isHidden()


def test_a_real_image_needs_no_data_set(qtbot, monkeypatch, ctx, files):
    p = DenoiserLabPanel(ctx)  # no data set chosen
    qtbot.addWidget(p)
    assert p.banner.text().startswith("Choose a data set")
    assert not p.run_button.isEnabled()
    p.form.kind.setCurrentText(REAL)
    pick(monkeypatch, p.real_box.noisy_button, files["noisy"])
    assert p.banner.text().startswith("Only for training: Choose a data set")
    p.denoisers.set_checked([BUILTIN])
    p.form.steps.setValue(3)
    assert p.run_button.isEnabled()
    run(qtbot, p)
    assert p.table.cell_text(0, 2) == "—"  # denoised PSNR: no clean image
