"""`--wrap mixup-inference` on `explorer eval` and `explorer attack`."""

from __future__ import annotations

import json

import pytest

from explorer.cli import main
from explorer.store import Workspace

MODEL = ["--model", "fmnist-cnn-standard"]
WRAP = ["--wrap", "mixup-inference", "--wrap-samples", "2", "--wrap-lam", "0.7"]


def _last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_eval_with_wrapper_records_it_and_keeps_the_json_keys(capsys, tmp_path):
    ws = str(tmp_path / "ws")
    assert main(["--workspace", ws, "eval", *MODEL, "--n", "16", "--json"]) == 0
    plain = _last_json(capsys)
    assert main(["--workspace", ws, "eval", *MODEL, "--n", "16", *WRAP,
                 "--json"]) == 0
    wrapped = _last_json(capsys)
    assert set(wrapped) == set(plain)
    assert wrapped["n"] == 16
    with Workspace.open(ws) as store:
        run = store.get(wrapped["run_id"])
        assert "wrapper" not in store.get(plain["run_id"]).config
    wrapper = run.config["wrapper"]
    assert wrapper["name"] == "mixup-inference"
    assert wrapper["params"] == {"lam": 0.7, "samples": 2, "mode": "pl", "seed": -1}
    assert wrapper["mix_set"] == "fashion-mnist-mini train[:1000]"


def test_attack_with_wrapper_attacks_the_wrapped_model(capsys, tmp_path):
    ws = str(tmp_path / "ws")
    assert main(["--workspace", ws, "attack", *MODEL, "--attack", "fgsm",
                 "--eps", "0.1", "--n", "8", *WRAP, "--wrap-mode", "ol",
                 "--json"]) == 0
    result = _last_json(capsys)
    assert "wrapper" not in result
    with Workspace.open(ws) as store:
        config = store.get(result["run_id"]).config
    assert config["wrapper"]["params"]["mode"] == "ol"
    assert config["attack"] == "fgsm"


def test_wrapper_flags_are_listed_in_help(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--wrap", "mixup-inference", "--help"])
    out = capsys.readouterr().out
    assert "--wrap-lam" in out
    assert "--wrap-samples" in out
    assert main(["attack", "--attack", "fgsm", "--wrap", "mixup-inference",
                 "--help"]) == 0
    assert "--wrap-mode" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["eval", "attack"])
@pytest.mark.parametrize(("flags", "message"), [
    (["--wrap", "blur"], "--wrap: unknown inference wrapper 'blur' "
                         "(choose from mixup-inference, bit-depth)"),
    (["--wrap", "mixup-inference", "--wrap-lam", "2"],
     "--wrap-lam: lam must be in [0, 1], got 2"),
    (["--wrap", "mixup-inference", "--wrap-mode", "xx"],
     "--wrap-mode: mode must be one of pl, ol, got 'xx'"),
    (["--wrap", "mixup-inference", "--wrap-samples", "many"],
     "--wrap-samples: samples must be an integer, got 'many'"),
    (["--wrap-lam", "0.5"], "unrecognized arguments: --wrap-lam"),
])
def test_bad_wrapper_is_one_line_naming_it(capsys, tmp_path, command, flags,
                                           message):
    attack = ["--attack", "fgsm"] if command == "attack" else []
    code = main(["--workspace", str(tmp_path / "ws"), command, *MODEL, *attack,
                 "--n", "4", *flags])
    assert code != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert message in err
    if (tmp_path / "ws").exists():
        with Workspace.open(str(tmp_path / "ws")) as store:
            assert not store.runs()
