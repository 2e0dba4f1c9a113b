"""Recipes in the app: "Copy recipe" on the Training page puts TOML that
parses on the clipboard; a recipe dropped on the window fills the Training,
Attack Lab or Evaluate form; a bad one is named in the status bar."""

from __future__ import annotations

import json
from pathlib import Path

from gui_helpers import check_models
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication
from PySide6.QtWidgets import QApplication

from explorer.core.defenses.config import TrainingConfig
from explorer.gui.main_window import MainWindow
from explorer.gui.panels.training.panel import TrainingPanel
from explorer.store import recipe as recipes


def test_copy_recipe_puts_the_forms_run_on_the_clipboard(qtbot, training_page):
    page = training_page
    page.form.choose("small-cnn", {"width": 4, "dense": 16}, "trades", {"beta": 3.0},
                     {"epochs": 3, "seed": 11, "eval_n": 32})
    QGuiApplication.clipboard().setText("")
    with qtbot.waitSignal(page.copy_recipe.copied, timeout=10_000):
        qtbot.mouseClick(page.copy_recipe, Qt.MouseButton.LeftButton)
    recipe = recipes.loads(QGuiApplication.clipboard().text())
    assert recipe.kind == "train"
    config = TrainingConfig.from_json(recipe.config)
    assert config == page.current_config()
    assert (config.defense, config.params["beta"], config.epochs, config.seed) == (
        "trades", 3.0, 3, 11)
    assert config.data == "fashion-mnist-mini"
    assert recipe.checksums["data"].startswith("sha256:")
    assert recipe.versions["torch"]
    assert page.status.text() == "Recipe copied to the clipboard."


def test_copy_recipe_without_data_says_why(qtbot, ctx):
    page = TrainingPanel(ctx)
    qtbot.addWidget(page)
    QGuiApplication.clipboard().setText("untouched")
    qtbot.mouseClick(page.copy_recipe, Qt.MouseButton.LeftButton)
    assert page.status.text().startswith("Copy recipe: Choose a data set")
    assert QGuiApplication.clipboard().text() == "untouched"


def _drop(target, path: Path) -> tuple[bool, bool]:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    action = Qt.DropAction.CopyAction
    enter = QDragEnterEvent(QPoint(10, 10), action, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, enter)
    if not enter.isAccepted():
        return False, False
    drop = QDropEvent(QPointF(10, 10), action, mime,
                      Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, drop)
    return True, drop.isAccepted()


def _window(qtbot) -> MainWindow:
    window = MainWindow(ask_on_close=False)
    qtbot.addWidget(window)
    window.show()
    window.finish_loading()
    with qtbot.waitSignal(window.data_panel.evaluated, timeout=120_000):
        pass
    return window


def test_a_dropped_recipe_fills_the_training_form(qtbot, tmp_path):
    wanted = TrainingConfig(
        defense="pgd-at", params={"eps": 0.05, "steps": 3}, epochs=4, batch_size=32,
        optimizer="adam", lr=0.002, schedule="cosine", seed=9, augment="none",
        eval_eps=0.05, eval_steps=3, eval_n=40, val_fraction=0.2,
        data="fashion-mnist-mini", arch="mlp", arch_params={"hidden": 24, "depth": 1},
        limit_train=128)
    file = recipes.write(recipes.build("train", wanted.to_json(), "cpu"),
                         tmp_path / "shared.toml")
    window = _window(qtbot)
    page = window.panels["training"]
    assert page.form.config().defense != "pgd-at"  # not already so
    assert _drop(window, file) == (True, True)
    assert window.stack.currentWidget() is page
    got = page.form.config()
    for field in ("defense", "epochs", "batch_size", "optimizer", "lr", "schedule",
                  "seed", "augment", "eval_eps", "eval_steps", "eval_n",
                  "val_fraction", "arch", "limit_train"):
        assert getattr(got, field) == getattr(wanted, field), field
    assert got.params["eps"] == 0.05
    assert got.params["steps"] == 3
    assert got.arch_params["hidden"] == 24
    assert "Training form filled" in window.statusBar().currentMessage()
    window.close()


def test_a_bad_dropped_recipe_is_named(qtbot, tmp_path):
    file = tmp_path / "broken.toml"
    file.write_text("not = [toml")
    window = _window(qtbot)
    assert _drop(window, file) == (True, True)
    message = window.statusBar().currentMessage()
    assert str(file) in message
    assert "not a TOML file" in message
    window.close()


def test_attack_lab_copies_a_recipe_that_explorer_run_takes(qtbot, ctx, fmnist):
    from explorer.cli import attack
    from explorer.cli.recipe import run_argv
    from explorer.core import models
    from explorer.gui.panels.attack_lab.panel import AttackLabPanel

    page = AttackLabPanel(ctx)
    qtbot.addWidget(page)
    ctx.session.set_data(fmnist, "fashion-mnist-mini", "test")
    ctx.session.set_model(models.load_builtin("fmnist-cnn-standard"),
                          "fmnist-cnn-standard")
    page.attack_form.choose("pgd", {"steps": 4, "eps": 0.07, "norm": "linf"})
    page.batch.n.setValue(24)
    with qtbot.waitSignal(page.copy_recipe.copied, timeout=10_000):
        qtbot.mouseClick(page.copy_recipe, Qt.MouseButton.LeftButton)
    recipe = recipes.loads(QGuiApplication.clipboard().text())
    assert recipe.kind == "attack"
    assert recipe.config["n"] == 24
    assert recipe.config["params"]["eps"] == 0.07
    assert recipe.checksums["model"].startswith("sha256:")
    ns, _ = attack.parse(run_argv(recipe, "clipboard"))  # what explorer run runs
    assert (ns.attack, ns.model, ns.n, ns.attack_params["steps"]) == (
        "pgd", "fmnist-cnn-standard", 24, 4)


def test_evaluate_copies_its_recipe(qtbot, evaluate_page):
    page = evaluate_page({"suite": "quick", "eps": 0.05, "n": 16})
    check_models(page, ["fmnist-cnn-standard", "fmnist-cnn-pgdat"])
    with qtbot.waitSignal(page.copy_recipe.copied, timeout=10_000):
        qtbot.mouseClick(page.copy_recipe, Qt.MouseButton.LeftButton)
    recipe = recipes.loads(QGuiApplication.clipboard().text())
    assert recipe.kind == "eval"
    assert recipe.config["models"] == {"fmnist-cnn-standard": "fmnist-cnn-standard",
                                       "fmnist-cnn-pgdat": "fmnist-cnn-pgdat"}
    assert (recipe.config["suite"], recipe.config["eps"], recipe.config["n"]) == (
        "quick", 0.05, 16)
    assert set(recipe.checksums) == {"data", "model fmnist-cnn-standard",
                                     "model fmnist-cnn-pgdat"}
    from explorer.cli import eval as eval_cli
    from explorer.cli.recipe import run_argv

    ns = eval_cli.parse(run_argv(recipe, "clipboard"))  # what explorer run runs
    assert (ns.models, ns.suite, ns.eps, ns.n) == (
        ["fmnist-cnn-standard", "fmnist-cnn-pgdat"], "quick", 0.05, 16)
    check_models(page, [])
    qtbot.mouseClick(page.copy_recipe, Qt.MouseButton.LeftButton)
    assert "Check at least one model" in page.status.text()


def test_the_batch_tabs_run_reruns_from_its_stored_recipe(qtbot, ctx, fmnist, capsys):
    """A Batch attack started in the app records a recipe explorer run takes."""
    from explorer.cli import main
    from explorer.core import models
    from explorer.gui.panels.attack_lab.panel import AttackLabPanel

    page = AttackLabPanel(ctx)
    qtbot.addWidget(page)
    ctx.session.set_data(fmnist, "fashion-mnist-mini", "test")
    ctx.session.set_model(models.load_builtin("fmnist-cnn-standard"),
                          "fmnist-cnn-standard")
    page.attack_form.choose("pgd", {"steps": 3, "eps": 0.05, "norm": "linf"})
    page.batch.n.setValue(16)
    page.run_batch()
    qtbot.waitUntil(lambda: any(r.status == "finished"
                                for r in ctx.workspace.runs(kind="attack")),
                    timeout=60_000)
    run = ctx.workspace.runs(kind="attack")[0]
    file = ctx.workspace.run_dir(run.id) / "recipe.toml"
    assert recipes.read(file).device == str(ctx.session.device)
    code = main(["--workspace", str(ctx.workspace.path), "--device", "cpu", "run",
                 str(file), "--json"])
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert code == 0
    again = json.loads(out)
    assert again["robust_acc"] == run.summary["robust_acc"]
    assert again["clean_acc"] == run.summary["clean_acc"]


def _copied(qtbot, page) -> recipes.Recipe:
    """The recipe the page's own Copy recipe button puts on the clipboard."""
    QGuiApplication.clipboard().setText("")
    with qtbot.waitSignal(page.copy_recipe.copied, timeout=10_000):
        qtbot.mouseClick(page.copy_recipe, Qt.MouseButton.LeftButton)
    return recipes.loads(QGuiApplication.clipboard().text())


def _attack_window(qtbot):
    window = _window(qtbot)
    page = window.panels["attack"]
    qtbot.waitUntil(lambda: page.problem() is None, timeout=60_000)
    return window, page


def test_a_dropped_attack_recipe_fills_the_attack_lab(qtbot, tmp_path):
    window, page = _attack_window(qtbot)
    page.attack_form.choose("pgd", {"steps": 7, "eps": 0.06, "norm": "l2",
                                    "alpha": 0.02})
    page.batch.n.setValue(37)
    recipe = _copied(qtbot, page)
    file = recipes.write(recipe, tmp_path / "attack.toml")
    page.attack_form.choose("fgsm", {"eps": 0.1})  # reset the form
    page.batch.n.setValue(5)
    page.tabs.setCurrentIndex(0)
    window.show_panel("training")
    assert _drop(window, file) == (True, True)
    assert window.stack.currentWidget() is page
    assert page.attack_form.name() == "pgd"
    got = page.attack_form.values()
    assert (got["steps"], got["eps"], got["norm"], got["alpha"]) == (
        7, 0.06, "l2", 0.02)
    assert page.batch.n.value() == 37
    assert page.tabs.currentWidget() is page.batch
    message = window.statusBar().currentMessage()
    assert "Attack Lab filled from the recipe" in message
    assert "open it on the Data & Model page" not in message  # same model
    # a recipe of another model says so and loads nothing
    other = recipes.build("attack", {**recipe.config, "model": "fmnist-cnn-pgdat"})
    source = window.ctx.session.model_source
    assert _drop(window, recipes.write(other, tmp_path / "other.toml")) == (True, True)
    assert "It attacks fmnist-cnn-pgdat" in window.statusBar().currentMessage()
    assert window.ctx.session.model_source == source
    window.close()


def test_a_bad_attack_recipe_is_named_and_changes_nothing(qtbot, tmp_path):
    window, page = _attack_window(qtbot)
    page.attack_form.choose("fgsm", {"eps": 0.1})
    config = {"attack": "pgd", "params": {"steps": -3}, "model": "fmnist-cnn-standard",
              "data": "fashion-mnist-mini", "split": "test", "n": 16}
    bad = recipes.write(recipes.build("attack", config), tmp_path / "bad.toml")
    assert _drop(window, bad) == (True, True)
    message = window.statusBar().currentMessage()
    assert str(bad) in message
    assert "steps" in message
    assert "\n" not in message
    unknown = recipes.write(recipes.build("attack", {**config, "attack": "nope",
                                                     "params": {}}),
                            tmp_path / "unknown.toml")
    assert _drop(window, unknown) == (True, True)
    assert "unknown attack 'nope'" in window.statusBar().currentMessage()
    assert page.attack_form.name() == "fgsm"
    window.close()


def _evaluate_window(qtbot):
    window = _window(qtbot)
    return window, window.panels["evaluate"]


def test_a_dropped_eval_recipe_fills_the_evaluate_page(qtbot, tmp_path):
    window, page = _evaluate_window(qtbot)
    box = page.settings_box
    box.set_values({"suite": "custom", "attacks": ["fgsm", "pgd"],
                    "budgets": "0.02, 0.04", "n": 48, "sweep": False,
                    "checks": False, "eot": 2})
    check_models(page, ["fmnist-cnn-standard", "fmnist-cnn-pgdat"])
    recipe = _copied(qtbot, page)
    file = recipes.write(recipe, tmp_path / "eval.toml")
    box.set_values({"suite": "quick", "eps": 0.1, "n": 200, "sweep": True,
                    "checks": True, "eot": 1, "attacks": ["fgsm"]})
    check_models(page, [])
    assert _drop(window, file) == (True, True)
    assert window.stack.currentWidget() is page
    got = box.values()
    assert (got["suite"], got["n"], got["sweep"], got["checks"], got["eot"]) == (
        "custom", 48, False, False, 2)
    assert got["attacks"] == ["fgsm", "pgd"]
    assert box.job_settings()["custom"]["budgets"] == [0.02, 0.04]
    assert sorted(page.models.checked_names()) == ["fmnist-cnn-pgdat",
                                                   "fmnist-cnn-standard"]
    # a plain suite, and a model the list lacks is named
    plain = {**recipe.config, "suite": "standard", "eps": 0.03, "sweep_eps": [0.03],
             "models": {"fmnist-cnn-standard": "fmnist-cnn-standard",
                        "mine": str(tmp_path / "mine.safetensors")}}
    for key in ("attacks", "budgets"):
        plain.pop(key)
    file = recipes.write(recipes.build("eval", plain), tmp_path / "plain.toml")
    assert _drop(window, file) == (True, True)
    got = box.values()
    assert (got["suite"], got["eps"], got["sweep"]) == ("standard", 0.03, True)
    assert page.models.checked_names() == ["fmnist-cnn-standard"]
    assert "Not in the model list: mine" in window.statusBar().currentMessage()
    window.close()


def test_a_bad_eval_recipe_is_named_and_changes_nothing(qtbot, tmp_path):
    window, page = _evaluate_window(qtbot)
    page.settings_box.set_values({"suite": "quick", "n": 64})
    config = {"models": {"fmnist-cnn-standard": "fmnist-cnn-standard"},
              "data": "fashion-mnist-mini", "suite": "quick", "eps": 0.05, "n": -4}
    bad = recipes.write(recipes.build("eval", config), tmp_path / "bad.toml")
    assert _drop(window, bad) == (True, True)
    message = window.statusBar().currentMessage()
    assert str(bad) in message
    assert "n must be" in message
    assert "-4" in message
    suite = recipes.write(recipes.build("eval", {**config, "n": 8, "suite": "huge"}),
                          tmp_path / "suite.toml")
    assert _drop(window, suite) == (True, True)
    assert "unknown suite 'huge'" in window.statusBar().currentMessage()
    assert page.settings_box.values()["n"] == 64
    window.close()
