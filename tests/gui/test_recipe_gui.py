"""Recipes in the app: "Copy recipe" on the Training page puts TOML that
parses on the clipboard; a recipe dropped on the window fills the Training
form; a bad one is named in the status bar."""

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
