"""Recipes: exact TOML round trip, every run's recipe.toml, `explorer recipe
export` and `explorer run` reproducing train and attack runs, warnings of
what differs, one-line errors for bad files."""

from __future__ import annotations

import json
import math
import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.cli import main
from explorer.store import Workspace
from explorer.store import recipe as recipes

TRAIN = ["train", "--defense", "standard", "--train-images", "64", "--epochs", "1",
         "--eval-n", "16", "--eval-steps", "2"]
ATTACK = ["attack", "--attack", "pgd", "--model", "fmnist-cnn-standard", "--n", "16",
          "--steps", "3"]
# what a rerun may change: its id, its folder's files and the time it took
CHANGING = {"run_id", "checkpoint", "best", "seconds", "images_per_second"}


def _cli(capsys, ws, *argv: str) -> tuple[int, list[dict], str]:
    code = main(["--workspace", str(ws), "--device", "cpu", *argv])
    out, err = capsys.readouterr()
    lines = [json.loads(x) for x in out.strip().splitlines() if x.startswith("{")]
    return code, lines, err


def _same(a: dict, b: dict) -> None:
    for key in set(a) - CHANGING - {"warnings"}:
        assert a[key] == b[key], key


# --- TOML ------------------------------------------------------------------

scalars = (st.booleans() | st.integers(-2**63, 2**63 - 1) | st.text()
           | st.floats(allow_nan=False))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(), inner | st.none(), max_size=3),
                      max_leaves=12)


@settings(max_examples=60, deadline=None)
@given(config=st.dictionaries(st.text(), values | st.none(), max_size=5),
       checksums=st.dictionaries(st.text(min_size=1), st.text(), max_size=2),
       notes=st.lists(st.text(), max_size=2), device=st.text())
def test_any_recipe_round_trips_exactly(config, checksums, notes, device):
    recipe = recipes.Recipe(kind="train", config=config, versions={"torch": "2"},
                            device=device, checksums=checksums, notes=notes)
    text = recipe.to_toml()
    tomllib.loads(text)  # valid TOML
    assert recipes.loads(text) == recipe


def test_special_floats_and_nulls_survive():
    recipe = recipes.Recipe(kind="attack", config={
        "lr": None, "eps": math.inf, "tiny": 1e-300, "params": {"a": None, "b": -0.0},
        "list": [1, "x", [2.5, True]], "odd key.with dots": "é\x7f\n"})
    assert recipes.loads(recipe.to_toml()) == recipe


def test_recipe_of_a_real_config_round_trips():
    from explorer.core.defenses.config import TrainingConfig

    recipe = recipes.build("train", TrainingConfig(defense="trades").to_json(), "cpu")
    back = recipes.loads(recipe.to_toml())
    assert back == recipe
    assert TrainingConfig.from_json(back.config) == TrainingConfig(defense="trades")
    assert back.checksums["data"].startswith("sha256:")
    assert set(back.versions) == {"explorer", "torch", "torchvision", "python", "numpy"}


def test_a_folder_root_is_checksummed_by_its_listing(tmp_path):
    root = tmp_path / "imgs"
    (root / "a").mkdir(parents=True)
    (root / "a" / "1.png").write_bytes(b"12345")
    first = recipes.checksums({"data": "image-folder", "root": str(root)})["data"]
    assert first.startswith("listing-sha256:")
    (root / "a" / "1.png").write_bytes(b"123456")  # another size
    again = recipes.checksums({"data": "image-folder", "root": str(root)})["data"]
    assert again != first


# --- runs and the CLI ------------------------------------------------------


def test_a_train_recipe_reruns_to_the_same_numbers(capsys, tmp_path):
    ws = tmp_path / "ws"
    code, lines, _ = _cli(capsys, ws, *TRAIN, "--json")
    assert code == 0
    first = lines[-1]
    folder = ws / "runs" / first["run_id"]
    stored = recipes.read(folder / "recipe.toml")
    assert stored.kind == "train"
    assert stored.device == "cpu"
    assert stored.config == json.loads((folder / "config.json").read_text())
    file = tmp_path / "r.toml"
    assert _cli(capsys, ws, "recipe", "export", first["run_id"], str(file))[0] == 0
    assert recipes.read(file) == stored
    code, lines, err = _cli(capsys, ws, "run", str(file), "--json")
    assert code == 0, err
    again = lines[-1]
    assert again["warnings"] == []
    assert "warning" not in err
    assert again["run_id"] != first["run_id"]
    _same(first, again)
    with Workspace.open(ws) as w:
        assert [r.kind for r in w.runs()] == ["train", "train"]


def test_an_attack_recipe_reruns_to_the_same_numbers(capsys, tmp_path):
    ws = tmp_path / "ws"
    code, lines, _ = _cli(capsys, ws, *ATTACK, "--eps", "0.05", "--json")
    assert code == 0
    first = lines[-1]
    file = tmp_path / "a.toml"
    assert _cli(capsys, ws, "recipe", "export", first["run_id"], str(file))[0] == 0
    assert recipes.read(file).checksums["model"].startswith("sha256:")
    code, lines, err = _cli(capsys, ws, "run", str(file), "--json")
    assert code == 0, err
    again = lines[-1]
    assert again["params"]["eps"] == 0.05
    _same(first, again)
    with Workspace.open(ws) as w:
        assert len(w.runs()) == 2
    code, _, _ = _cli(capsys, ws, "run", str(file))  # the plain text too
    assert code == 0


def test_eval_recipes_rerun_clean_and_suite_evaluations(capsys, tmp_path):
    ws = tmp_path / "ws"
    runs = [["eval", "--model", "fmnist-cnn-standard", "--n", "16", "--json"],
            ["eval", "--model", "fmnist-cnn-standard", "--model", "fmnist-cnn-pgdat",
             "--suite", "quick", "--eps", "0.05", "--n", "8", "--json"]]
    for argv in runs:
        code, lines, _ = _cli(capsys, ws, *argv)
        assert code == 0
        first = lines[-1]
        run_id = first.get("run_id") or first["models"][0]["run_id"]
        file = tmp_path / f"{run_id}.toml"
        assert _cli(capsys, ws, "recipe", "export", run_id, str(file))[0] == 0
        code, lines, err = _cli(capsys, ws, "run", str(file), "--json")
        assert code == 0, err
        again = lines[-1]
        assert again["warnings"] == []
        if "models" in first:  # the suite: each model's numbers
            numbers = [(m["model"], m["clean_acc"], m["robust_acc"], m["per_attack"])
                       for m in first["models"]]
            assert numbers == [(m["model"], m["clean_acc"], m["robust_acc"],
                                m["per_attack"]) for m in again["models"]]
        else:
            _same(first, again)
    with Workspace.open(ws) as w:
        assert [r.kind for r in w.runs()] == ["eval"] * 4


def test_differences_are_warned_by_name(capsys, tmp_path, monkeypatch):
    ws = tmp_path / "ws"
    _, lines, _ = _cli(capsys, ws, *ATTACK, "--json")
    file = tmp_path / "a.toml"
    _cli(capsys, ws, "recipe", "export", lines[-1]["run_id"], str(file))
    recipe = recipes.read(file)
    changed = dict(recipe.checksums, model="sha256:" + "0" * 64)
    recipes.write(recipes.Recipe(**{**recipe.__dict__, "checksums": changed}), file)
    real = recipes.current_versions
    monkeypatch.setattr(recipes, "current_versions",
                        lambda: {**real(), "torch": "9.9.9"})
    code, lines, err = _cli(capsys, ws, "run", str(file), "--json")
    assert code == 0
    warnings = lines[-1]["warnings"]
    assert any(w.startswith("torch version differs") and "9.9.9" in w
               for w in warnings)
    assert any(w.startswith("model checksum differs") for w in warnings)
    assert "warning: torch version differs" in err


def test_a_run_from_before_recipes_exports_without_checksums(capsys, tmp_path):
    ws = tmp_path / "ws"
    _, lines, _ = _cli(capsys, ws, *ATTACK, "--json")
    run_id = lines[-1]["run_id"]
    (ws / "runs" / run_id / "recipe.toml").unlink()
    file = tmp_path / "old.toml"
    code, _, _ = _cli(capsys, ws, "recipe", "export", run_id, str(file))
    assert code == 0
    old = recipes.read(file)
    assert old.checksums == {}
    assert old.versions == {}
    assert old.notes
    code, lines, _ = _cli(capsys, ws, "run", str(file), "--json")
    assert code == 0
    assert any("no checksums" in w for w in lines[-1]["warnings"])


@pytest.mark.parametrize(("text", "problem"), [
    ("this is = not [toml", "not a TOML file"),
    ('kind = "train"\n', "missing key 'config'"),
    ('kind = "paint"\n[config]\na = 1\n', "not kind 'paint'"),
    ('kind = "attack"\n[config]\nmodel = "x"\n', "bad attack config"),
    ('kind = "attack"\n[config]\nmode = "live"\n', "an Attack Lab live run"),
])
def test_a_bad_recipe_file_is_one_line(capsys, tmp_path, text, problem):
    file = tmp_path / "bad.toml"
    file.write_text(text)
    code, _, err = _cli(capsys, tmp_path / "ws", "run", str(file))
    assert code == 1
    assert err.count("\n") == 1, err
    assert str(file) in err, err
    assert problem in err, err


def test_missing_file_and_unknown_run_are_one_line(capsys, tmp_path):
    code, _, err = _cli(capsys, tmp_path / "ws", "run", str(tmp_path / "no.toml"))
    assert code == 1
    assert "no.toml: cannot read the recipe" in err
    code, _, err = _cli(capsys, tmp_path / "ws", "recipe", "export", "nope",
                        str(tmp_path / "x.toml"))
    assert code != 0
    assert err.count("\n") == 1
    assert "nope" in err
