"""EOT and BPDA in the GUI, driven like a user: the fields in the Attack
Lab's form and the Evaluate page's settings, and the masking doctor's
remedy button beside a randomized model's verdict."""

from __future__ import annotations

import warnings

import pytest
import torch
from PySide6.QtCore import Qt
from torch import nn

from explorer.core import models
from explorer.gui.panels.attack_lab.panel import AttackLabPanel

FAST = {"sweep_eps": [0.1], "sweep_steps": 2, "check_n": 8, "examples": 0,
        "suite_options": {"steps": 5},
        "check_options": {"steps": 1, "square_queries": 5, "spsa_images": 0}}


class Noisy(nn.Module):
    """A randomized defense: Gaussian noise on the input at every call."""

    def __init__(self, inner: nn.Module, sigma: float) -> None:
        super().__init__()
        self.inner, self.sigma = inner, sigma

    def forward(self, x):
        return self.inner(x + self.sigma * torch.randn_like(x))


class Rounded(nn.Module):
    """Quantises its input: zero gradients, a shattered-gradient defense."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(torch.round(x * 7) / 7)


def _script_file(module: nn.Module, path) -> str:
    """``module`` as a TorchScript file, the format the model list opens."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.trace is deprecated
        torch.jit.trace(module.eval(), torch.rand(2, 1, 28, 28),
                        check_trace=False).save(str(path))
    return str(path)



@pytest.fixture(scope="module")
def robust():
    return models.load_builtin("fmnist-cnn-pgdat")


@pytest.fixture
def evaluate(evaluate_page):
    return evaluate_page({"suite": "quick", "eps": 0.1, "n": 32}, options=FAST,
                         show=True)


def _evaluate(qtbot, panel, path: str) -> None:
    assert panel.models.add_file(path) is None  # added, checked
    with qtbot.waitSignal(panel.evaluation_done, timeout=120_000):
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)


def test_eot_remedy_on_a_noisy_model_shows_both_numbers(qtbot, ctx, evaluate,
                                                        robust, tmp_path):
    torch.manual_seed(0)  # the model's noise: the same draws on every run
    _evaluate(qtbot, evaluate, _script_file(Noisy(robust, 0.1),
                                            tmp_path / "noisy.pt"))
    assert evaluate.checks.verdicts[(0, "deterministic")] is False
    assert "use EOT" in evaluate.checks.notes.text()
    row = evaluate.remedy.rows[0]
    assert evaluate.remedy.isVisible()
    assert row.reason.text() == "⚠ noisy: outputs change between calls"
    assert row.button.text() == "Re-run with EOT-10"
    assert row.button.isEnabled()
    before = evaluate.results["models"][0]["robust_acc"]
    assert row.before == pytest.approx(before)
    assert f"robust accuracy {100 * before:.1f}% as evaluated" in row.result.text()
    with qtbot.waitSignal(evaluate.remedy.remedied, timeout=120_000):
        qtbot.mouseClick(row.button, Qt.MouseButton.LeftButton)
    text = row.result.text()
    assert f"robust accuracy {100 * before:.1f}% as evaluated" in text
    assert f"<b>{100 * row.after:.1f}%</b> with EOT-10" in text
    assert row.after <= row.before  # one pass's gradient of noise is a poor step
    qtbot.waitUntil(row.button.isEnabled, timeout=10_000)
    runs = ctx.workspace.runs(kind="eval")
    remedied = [r for r in runs if ctx.workspace.get(r.id).config.get("remedy")]
    assert len(remedied) == 1
    config = ctx.workspace.get(remedied[0].id).config
    assert (config["remedy"], config["eot"]) == ("eot", 10)


def test_bpda_remedy_on_a_model_without_a_marked_transformation_says_why(
        qtbot, evaluate, robust, tmp_path):
    evaluate.settings_box.set_values({"n": 16})
    _evaluate(qtbot, evaluate, _script_file(Rounded(robust), tmp_path / "round.pt"))
    assert evaluate.checks.verdicts[(0, "deterministic")] is True
    assert evaluate.checks.verdicts[(0, "loss-rises")] is False
    row = evaluate.remedy.rows[0]
    assert row.button.text() == "Re-run with BPDA"
    qtbot.mouseClick(row.button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "did not run" in row.result.text(), timeout=60_000)
    text = row.result.text()
    assert text.startswith("BPDA did not run: ")
    assert "no non-differentiable input transformation" in text
    assert "Traceback" not in text
    assert row.after is None


def test_settings_eot_field_reaches_every_gradient_stage(qtbot, ctx, evaluate):
    box = evaluate.settings_box
    assert box.form.labelForField(box.eot).text() == "EOT passes"
    assert (box.eot.minimum(), box.eot.value()) == (1, 1)
    box.eot.setValue(3)
    box.set_values({"n": 8, "checks": False, "sweep": False})
    evaluate.models.set_checked(["fmnist-cnn-standard"])
    with qtbot.waitSignal(evaluate.evaluation_done, timeout=60_000):
        qtbot.mouseClick(evaluate.run_button, Qt.MouseButton.LeftButton)
    assert evaluate.results["models"][0]["eot"] == 3
    run = ctx.workspace.get(ctx.workspace.runs(kind="eval")[0].id)
    assert run.config["eot"] == 3
    assert not evaluate.remedy.isVisible()  # no checks, no remedies


# -- the Attack Lab's form ------------------------------------------------------------
@pytest.fixture
def lab(qtbot, ctx, fmnist, robust):
    p = AttackLabPanel(ctx)
    qtbot.addWidget(p)
    p.resize(1130, 740)
    p.show()
    ctx.session.set_data(fmnist, "fashion-mnist-mini", "test")
    ctx.session.set_model(robust, "fmnist-cnn-pgdat")
    return p


def test_attack_form_offers_eot_and_bpda_for_gradient_attacks(qtbot, ctx, lab):
    form = lab.attack_form
    form.combo.setCurrentIndex(form.combo.findData("square"))
    assert "eot" not in form.values()
    form.combo.setCurrentIndex(form.combo.findData("pgd"))
    eot, bpda = form.form.editor("eot"), form.form.editor("bpda")
    assert form.form._layout.labelForField(eot).text() == "EOT passes"
    assert [bpda.itemText(i) for i in range(bpda.count())] == ["off", "identity",
                                                               "blur"]
    form.form.editor("steps").setValue(2)
    eot.setValue(3)
    lab.picker.select_first(2)
    with qtbot.waitSignal(lab.live_finished, timeout=30_000):
        lab.run_button.click()
    run = ctx.workspace.get(ctx.workspace.runs(kind="attack")[0].id)
    assert run.config["params"]["eot"] == 3
    assert run.config["params"]["bpda"] == "off"
    # BPDA on a model without a non-differentiable transformation: one line why
    bpda.setCurrentIndex(bpda.findData("identity"))
    with qtbot.waitSignal(lab.live_box.stopped, timeout=30_000):
        lab.run_button.click()
    assert "Attack failed: bpda=identity: the model has no non-differentiable" in (
        lab.live_box.status.text())
