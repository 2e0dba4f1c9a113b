"""`--eot K` and `--bpda MODE` in `explorer attack` and `explorer eval`."""

from __future__ import annotations

import json
import textwrap

import pytest
from safetensors.torch import save_file

from explorer.cli import main
from explorer.core import models
from explorer.store import Workspace

ATTACK = ["attack", "--model", "fmnist-cnn-pgdat", "--attack", "pgd", "--n", "8",
          "--steps", "2"]
EVAL = ["eval", "--model", "fmnist-cnn-pgdat", "--n", "8"]

# A model with a non-differentiable input transformation, as a paper's code
# would ship it: 8-level quantisation (zero gradient) before a CNN, marked
# for BPDA with one attribute.
QUANTISED = """
    import torch
    from torch import nn

    from explorer.core import models


    class Quantise(nn.Module):
        non_differentiable = True

        def forward(self, x):
            return torch.round(x * 7) / 7


    class QuantisedCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.quantise = Quantise()
            self.cnn = models.load_builtin("fmnist-cnn-standard")

        def forward(self, x):
            return self.cnn(self.quantise(x))
"""


def _result(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_attack_help_lists_eot_and_bpda(capsys):
    assert main(["attack", "--attack", "apgd-ce", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--eot" in out
    assert "--bpda" in out
    with pytest.raises(SystemExit):  # argparse prints eval's help and exits
        main(["eval", "--help"])
    out = capsys.readouterr().out
    assert "--eot K" in out
    assert "--bpda MODE" in out


def test_attack_with_eot_on_mixup_inference_records_it(capsys, tmp_path):
    ws = str(tmp_path / "ws")
    assert main(["--workspace", ws, *ATTACK, "--eot", "3", "--wrap",
                 "mixup-inference", "--wrap-samples", "2", "--wrap-seed", "-1",
                 "--json"]) == 0
    result = _result(capsys)
    assert result["params"]["eot"] == 3
    assert result["params"]["bpda"] == "off"
    # the random-output guardrail still fires, and says EOT is on
    (random,) = [w for w in result["warnings"] if w.startswith("random output")]
    assert random.endswith("EOT is on: each gradient averages 3 calls")
    assert "use EOT" not in random
    assert 0 <= result["robust_acc"] <= result["clean_acc"]
    with Workspace.open(ws) as store:
        run = store.get(result["run_id"])
        assert run.config["params"]["eot"] == 3
        assert run.config["wrapper"]["name"] == "mixup-inference"


def test_eval_suite_passes_eot_to_its_stages(capsys, tmp_path):
    ws = str(tmp_path / "ws")
    assert main(["--workspace", ws, *EVAL, "--suite", "quick", "--steps", "2",
                 "--eot", "2", "--json"]) == 0
    result = _result(capsys)
    assert result["eot"] == 2
    assert "bpda" not in result  # off
    with Workspace.open(ws) as store:
        assert store.get(result["run_id"]).config["eot"] == 2


@pytest.fixture
def quantised(tmp_path):
    """The quantised model's code and weights files."""
    code = tmp_path / "quantised.py"
    code.write_text(textwrap.dedent(QUANTISED))
    state = models.load_builtin("fmnist-cnn-standard").state_dict()
    weights = tmp_path / "quantised.safetensors"
    save_file({f"cnn.{k}": v.contiguous() for k, v in state.items()}, weights)
    return ["--model", str(weights), "--model-code", f"{code}:QuantisedCNN",
            "--input-shape", "1x28x28"]


def test_bpda_identity_breaks_quantisation_from_the_command_line(capsys, tmp_path,
                                                                 quantised):
    ws = str(tmp_path / "ws")
    robust = {}
    for mode in ("off", "identity"):
        assert main(["--workspace", ws, "attack", *quantised, "--attack", "pgd",
                     "--eps", "0.1", "--steps", "5", "--n", "32", "--bpda", mode,
                     "--json"]) == 0
        result = _result(capsys)
        assert result["params"]["bpda"] == mode
        robust[mode] = result["robust_acc"]
    # zero gradients leave PGD at its random start; BPDA goes through
    assert robust["identity"] < robust["off"] - 0.3, robust


@pytest.mark.parametrize(("extra", "needle"), [
    (["--eot", "0"], "--eot: eot must be in [1, 1000], got 0"),
    (["--eot", "-2"], "--eot: eot must be in [1, 1000], got -2"),
    (["--eot", "2.5"], "--eot: eot must be an integer, got '2.5'"),
    (["--eot", "many"], "--eot: eot must be an integer, got 'many'"),
    (["--bpda", "jpeg"], "--bpda: bpda must be one of off, identity, blur"),
    (["--bpda", "identity"], "bpda=identity: the model has no non-differentiable"),
])
def test_bad_attack_values_are_one_line_naming_the_flag(capsys, tmp_path, extra,
                                                        needle):
    ws = tmp_path / "ws"
    code = main(["--workspace", str(ws), *ATTACK, *extra])
    err = capsys.readouterr().err
    assert code == 2  # the project's usage-error code, as for --steps 0
    assert err.startswith("error: ")
    assert len(err.strip().splitlines()) == 1
    assert needle in err
    with Workspace.open(ws) as store:
        assert store.runs() == []  # rejected before a run was recorded


@pytest.mark.parametrize(("extra", "needle"), [
    (["--suite", "quick", "--eot", "0"], "--eot: eot must be in [1, 1000], got 0"),
    (["--suite", "quick", "--eot", "-1"], "--eot: eot must be in [1, 1000]"),
    (["--suite", "standard", "--eot", "1.5"], "--eot: eot must be an integer"),
    (["--suite", "quick", "--bpda", "median"], "--bpda: bpda must be one of off, "
                                               "identity, blur, got 'median'"),
    (["--eot", "5"], "--eot needs --suite"),
    (["--bpda", "identity"], "--bpda needs --suite"),
])
def test_bad_eval_values_are_one_line_naming_the_flag(capsys, tmp_path, extra,
                                                      needle):
    code = main(["--workspace", str(tmp_path / "ws"), *EVAL, *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert needle in err


def test_eval_bpda_on_a_model_without_a_transformation_says_so(capsys, tmp_path):
    code = main(["--workspace", str(tmp_path / "ws"), *EVAL, "--suite", "quick",
                 "--steps", "1", "--bpda", "identity"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "bpda=identity: the model has no non-differentiable input" in err
    assert "Traceback" not in err
