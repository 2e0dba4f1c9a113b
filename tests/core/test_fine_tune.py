"""Training that starts from a loaded model (TrainingConfig.init_from): a
built-in, a torch.export program, files that fit or do not, resume."""

from __future__ import annotations

import json
import pickle
import warnings
import zipfile

import pytest
import torch

from explorer.core import data, models
from explorer.core.defenses import TrainingConfig
from explorer.core.defenses.best_weights import EXPORT_NOTE, best_file
from explorer.core.defenses.run_job import init_source, limited, load_init, train_run
from explorer.core.defenses.trainer import train
from explorer.core.jobs import Artifact, Done, Log
from explorer.core.models import exported
from explorer.core.params import ParamError
from explorer.core.training import checkpoint

BUILTIN = "fmnist-cnn-standard"
TINY = {"epochs": 1, "batch_size": 32, "limit_train": 64, "eval_n": 16,
        "eval_steps": 1, "schedule": "constant", "lr": 0.05}

pytestmark = pytest.mark.skipif(BUILTIN not in models.builtin_names(),
                                reason=f"{BUILTIN} weights are not installed")


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    """The built-in exported as a .pt2 (our metadata inside)."""
    path = tmp_path_factory.mktemp("pt2") / "standard.pt2"
    return exported.export(models.load_builtin(BUILTIN), path)


def _changed(before: dict, after: dict) -> list[str]:
    return [k for k, v in before.items() if not torch.equal(v, after[k])]


def test_fine_tuning_a_builtin_changes_its_weights_and_writes_best(tmp_path):
    config = TrainingConfig(init_from=BUILTIN, **TINY)
    events = list(train_run(config, run_dir=tmp_path, device="cpu"))
    done = events[-1]
    assert isinstance(done, Done)
    start = models.load_builtin(BUILTIN).state_dict()
    trained = checkpoint.load(tmp_path / "last.pt")["model"]
    assert set(trained) == set(start)  # the built-in's network, not a fresh one
    assert _changed(start, trained)
    assert done.results["best"] == str(tmp_path / "best.safetensors")
    best = models.load(done.results["best"])
    assert best.meta.arch == "small-cnn"
    assert best.meta.training["init_from"] == BUILTIN
    assert not any(isinstance(e, Log) and e.message == EXPORT_NOTE for e in events)


def test_fine_tuning_an_export_program_writes_a_best_pt2_that_runs_as_trained(
        program, tmp_path):
    config = TrainingConfig(init_from=str(program), **TINY)
    train_set = limited(data.load("fashion-mnist-mini", "train"), 64)
    test_set = data.load("fashion-mnist-mini", "test")
    model = load_init(config, train_set.info)
    assert isinstance(model, exported.ExportedModel)
    assert model.training
    start = {k: v.clone() for k, v in model.state_dict().items()}
    events = list(train(model, train_set, test_set, config, run_dir=tmp_path,
                        device="cpu"))
    # gradients reached the program's weights and the optimizer moved them
    assert any(k.startswith("program.") for k in _changed(start, model.state_dict()))
    assert [e.message for e in events if isinstance(e, Log)].count(EXPORT_NOTE) == 1
    best = tmp_path / "best.pt2"
    assert Artifact("best", best) in events
    assert events[-1].results["best"] == str(best)
    assert not (tmp_path / "best.safetensors").exists()
    assert best_file(tmp_path) == best
    reloaded = models.load(best)
    assert reloaded.meta.format == "export"
    assert reloaded.meta.training["init_from"] == str(program)
    x, _ = test_set.as_tensors(0, 8)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(x), model.eval()(x), atol=1e-5, rtol=0)


def test_a_foreign_program_of_a_fixed_batch_is_written_with_that_batch(tmp_path):
    """No metadata of ours, exported for batches of 4 only: fine-tuned, and
    its best.pt2 keeps the batch (and the chunking that serves any other)."""
    net = models.create("mlp", in_shape=(1, 28, 28), hidden=8, depth=1).eval()
    path = tmp_path / "fixed.pt2"
    torch.export.save(torch.export.export(net, (torch.rand(4, 1, 28, 28),)), path)
    config = TrainingConfig(init_from=str(path), **{**TINY, "limit_train": 32})
    train_set = limited(data.load("fashion-mnist-mini", "train"), 32)
    model = load_init(config, train_set.info)
    assert model.batch == 4
    events = list(train(model, train_set, data.load("fashion-mnist-mini", "test"),
                        config, run_dir=tmp_path / "run", device="cpu"))
    best = models.load(events[-1].results["best"])
    assert best.batch == 4
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(best(x), model.eval()(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize("source", ["builtin", "pt2"])
def test_a_resumed_fine_tune_equals_an_uninterrupted_one(source, program, tmp_path):
    config = TrainingConfig(init_from=BUILTIN if source == "builtin" else str(program),
                            **{**TINY, "epochs": 2, "limit_train": 32})
    list(train_run(config, run_dir=tmp_path / "a", device="cpu"))
    list(train_run(config.replace(epochs=1), run_dir=tmp_path / "b", device="cpu"))
    events = list(train_run(config, run_dir=tmp_path / "b", device="cpu",
                            resume=True))
    assert events[-1].results["epochs"] == 2
    straight = checkpoint.load(tmp_path / "a" / "last.pt")["model"]
    resumed = checkpoint.load(tmp_path / "b" / "last.pt")["model"]
    for key, value in straight.items():
        torch.testing.assert_close(resumed[key], value, atol=1e-6, rtol=0)


def test_a_model_for_other_images_is_refused_naming_the_file(tmp_path):
    path = models.save(models.create("mlp", in_shape=(3, 32, 32), hidden=8, depth=1),
                       tmp_path / "cifar-mlp.safetensors")
    config = TrainingConfig(init_from=str(path), **TINY)
    with pytest.raises(models.ModelError,
                       match=r"cifar-mlp\.safetensors.*3×32×32.*1×28×28"):
        list(train_run(config, run_dir=tmp_path / "run", device="cpu"))
    with pytest.raises(models.ModelError, match=r"nope\.pt2: no such model file"):
        list(train_run(config.replace(init_from=str(tmp_path / "nope.pt2")),
                       run_dir=tmp_path / "run", device="cpu"))


def test_a_weights_only_file_needs_and_takes_init_arch(tmp_path):
    net = models.create("mlp", in_shape=(1, 28, 28))  # its default size
    path = tmp_path / "bare.pt"
    torch.save(net.state_dict(), path)
    with pytest.raises(models.ModelError, match=r"bare\.pt.*architecture"):
        load_init(TrainingConfig(init_from=str(path)))
    model = load_init(TrainingConfig(init_from=str(path), init_arch="mlp"))
    assert model.meta.arch == "mlp"
    assert model.training
    assert init_source(models.load(path, arch="mlp")) == (str(path), "mlp")


def test_torchscript_trains_and_says_why_no_best_is_written(tmp_path):
    """Neither safetensors nor a re-export: a log line, no crash."""
    model = models.create("mlp", in_shape=(1, 28, 28), hidden=8, depth=1).eval()
    path = tmp_path / "net.ts"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.script(model).save(str(path))
    events = list(train_run(TrainingConfig(init_from=str(path), **TINY),
                            run_dir=tmp_path / "run", device="cpu"))
    assert isinstance(events[-1], Done)
    assert events[-1].results["best"] is None
    logs = [e.message for e in events if isinstance(e, Log)]
    assert any("best.safetensors is not written (TorchScript" in m
               and "last.pt holds the trained weights" in m for m in logs)
    assert not any(isinstance(e, Artifact) for e in events)
    assert best_file(tmp_path / "run") is None


def test_init_source_of_session_models(program):
    assert init_source(models.load_builtin(BUILTIN)) == (BUILTIN, None)
    assert init_source(models.load(program)) == (str(program), None)
    with pytest.raises(models.ModelError, match="not loaded from a file"):
        init_source(models.create("mlp", hidden=8, depth=1))


def test_stored_runs_without_the_fields_start_fresh():
    config = TrainingConfig(init_from="model.pt", init_arch="mlp")
    assert TrainingConfig.from_json(config.to_json()) == config
    older = {k: v for k, v in config.to_json().items()
             if k not in ("init_from", "init_arch")}
    again = TrainingConfig.from_json(older)
    assert (again.init_from, again.init_arch) == (None, None)


@pytest.mark.parametrize(("change", "message"), [
    ({"init_from": ""}, "init_from must be a non-empty name or path"),
    ({"init_arch": "mlp"}, "init_arch names the architecture .* give init_from"),
    ({"init_from": "m.pt", "init_arch": " "}, "init_arch must be a non-empty"),
])
def test_bad_init_settings_name_the_setting(change, message):
    with pytest.raises(ParamError, match=message):
        TrainingConfig(**change)


def _with_low_byte_0x80(net: torch.nn.Module) -> torch.nn.Module:
    """Every weight tensor's first float stored as bytes 80 ?? ?? ??."""
    with torch.no_grad():
        for p in net.parameters():
            bits = p.view(-1)[:1].view(torch.int32)
            p.view(-1)[:1] = ((bits & ~0xFF) | 0x80).view(torch.float32)
    return net


def test_weights_whose_bytes_look_like_a_pickle_still_load(tmp_path):
    """A trained program's raw weights may begin with 0x80, a pickle's first
    byte; the archive check must not refuse them as a damaged pickle."""
    net = _with_low_byte_0x80(models.create("mlp", in_shape=(1, 28, 28), hidden=8,
                                            depth=1)).eval()
    path = exported.export(net, tmp_path / "x80.pt2")
    with zipfile.ZipFile(path) as archive:
        starts = [archive.read(n)[:1] for n in archive.namelist()
                  if "/data/weights/weight_" in n]
    assert b"\x80" in starts
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(models.load(path)(x), net(x))


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_an_entry_also_listed_as_a_pickle_is_still_checked(tmp_path):
    net = models.create("mlp", in_shape=(1, 28, 28), hidden=8, depth=1)
    source = exported.export(net, tmp_path / "ok.pt2")
    evil = tmp_path / "evil.pt2"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(evil, "w") as dst:
        for name in src.namelist():
            blob = src.read(name)
            if name.endswith("data/weights/model_weights_config.json"):
                config = json.loads(blob)
                first = next(iter(config["config"].values()))
                config["config"]["sneaky"] = {**first, "use_pickle": True}
                blob = json.dumps(config).encode()
            elif name.endswith("data/weights/" + first_path(src)):
                blob = pickle.dumps(_Evil())
            dst.writestr(name, blob)
    with pytest.raises(models.ModelError, match=r"refused: .*could run code"):
        models.load(evil)


def first_path(archive: zipfile.ZipFile) -> str:
    name = next(n for n in archive.namelist()
                if n.endswith("data/weights/model_weights_config.json"))
    return next(iter(json.loads(archive.read(name))["config"].values()))["path_name"]
