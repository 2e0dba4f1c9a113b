"""The Denoiser Lab on natural-photo patches, driven like a user: choose the
data set on the Data & Model page's data box, the natural built-ins come
checked, ObsAtk runs on a patch at RMS 4/255 of its size."""

from __future__ import annotations

import pytest

from explorer.gui.panels.data_model.data_box import DataBox
from explorer.gui.panels.denoise.panel import DenoiserLabPanel

TIMEOUT = 60_000
NATURAL = ["dncnn-natural-standard", "dncnn-natural-hat"]


@pytest.fixture
def lab(qtbot, ctx, fmnist):
    ctx.session.set_data(fmnist, "fashion-mnist-mini", "test")
    p = DenoiserLabPanel(ctx)
    qtbot.addWidget(p)
    p.resize(1130, 760)
    p.show()
    yield p
    if p.running:
        with qtbot.waitSignal(p.ctx.runner.jobs_changed, timeout=TIMEOUT):
            p.cancel()


@pytest.mark.slow  # a live ObsAtk on one patch with two denoisers
def test_natural_patches_check_the_natural_denoisers_and_attack(qtbot, ctx, lab):
    assert set(NATURAL) <= set(lab.denoisers.names())
    assert not set(NATURAL) & set(lab.denoisers.checked())  # Fashion-MNIST first
    box = DataBox(ctx)
    qtbot.addWidget(box)
    with qtbot.waitSignal(ctx.session.data_changed, timeout=TIMEOUT):
        box.combo.setCurrentIndex(box.combo.findData("natural-patches"))
    assert ctx.session.data_name == "natural-patches"
    assert lab.denoisers.checked() == NATURAL  # the ones trained for it
    assert lab.banner.isHidden()
    lab.form.choose("gaussian", 0.1, 4 / 255, 3)
    assert "RMS 4/255 · ρ = 0.627" in lab.form.budget.text()  # 4/255 · 40
    lab.picker.toggle(0)
    lab.sweep_check.setChecked(False)
    with qtbot.waitSignal(lab.attack_finished, timeout=TIMEOUT):
        lab.run_button.click()
    for name in NATURAL:
        noisy = lab.rows.caption_psnr(name, 1)
        denoised = lab.rows.caption_psnr(name, 2)
        attacked = lab.rows.caption_psnr(name, 4)
        assert denoised > noisy + 3  # a natural patch is denoised well
        assert attacked < denoised
    # back to Fashion-MNIST: its own built-ins are checked again
    with qtbot.waitSignal(ctx.session.data_changed, timeout=TIMEOUT):
        box.combo.setCurrentIndex(box.combo.findData("fashion-mnist-mini"))
    assert lab.denoisers.checked() == ["dncnn-fmnist-standard", "dncnn-fmnist-hat"]
