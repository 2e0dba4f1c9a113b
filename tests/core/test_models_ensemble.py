"""Ensembles as first-class models: meta, save, load, and ADP's trained ensemble."""

from __future__ import annotations

import json
import re

import pytest
import torch
from safetensors import safe_open
from trainer_calls import fit

from explorer.core import models
from explorer.core.data.base import ArrayDataset
from explorer.core.defenses.adp import make_ensemble
from explorer.core.jobs import Done
from explorer.core.models.ensemble import ENSEMBLE_ARCH, Ensemble
from explorer.core.models.files import META_KEY


def _cnn(seed: int = 0):
    torch.manual_seed(seed)
    return models.create("small-cnn", in_shape=(1, 28, 28), width=4, dense=16,
                         mean=(0.3,), std=(0.4,), dataset="fashion-mnist-mini")


def test_ensemble_meta_describes_members():
    ens = make_ensemble(_cnn(), 3, seed=1)
    meta = ens.meta
    assert meta.arch == ENSEMBLE_ARCH
    assert meta.arch_params == {"members": 3, "member_arch": "small-cnn",
                                "member_params": {"width": 4, "dense": 16,
                                                  "activation": "relu",
                                                  "cifs": False, "cifs_k": 10,
                                                  "cifs_temperature": 1.0}}
    assert meta.in_shape == (1, 28, 28)
    assert meta.mean == (0.3,)
    assert meta.dataset == "fashion-mnist-mini"


def test_save_and_load_give_the_same_outputs(tmp_path):
    ens = make_ensemble(_cnn(), 3, seed=1).eval()
    path = models.save(ens, tmp_path / "ens.safetensors")
    with safe_open(str(path), framework="pt") as fh:
        header = json.loads(fh.metadata()[META_KEY])
    assert header["arch"] == "ensemble"
    loaded = models.load(path)
    assert isinstance(loaded, Ensemble)
    assert len(loaded.members) == 3
    assert loaded.meta.source == str(path)
    assert loaded.meta.mean == (0.3,)
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), ens(x))
        torch.testing.assert_close(loaded.features(x), ens.features(x))
    # the output is log of the members' mean probability
    with torch.no_grad():
        mean_prob = torch.stack([m(x).softmax(1) for m in ens.members]).mean(0)
    torch.testing.assert_close(loaded(x).exp(), mean_prob)


def test_create_builds_an_ensemble_from_its_description():
    ens = models.create("ensemble", in_shape=(1, 28, 28), members=2,
                        member_arch="mlp", member_params={"hidden": 8, "depth": 1})
    assert isinstance(ens, Ensemble)
    assert len(ens.members) == 2
    assert ens.meta.arch_params["member_params"]["hidden"] == 8
    assert ens(torch.rand(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize(("params", "message"), [
    ({"members": 0, "member_arch": "mlp"}, "members must be an integer in [1, 10]"),
    ({"members": 2}, "needs its members' architecture"),
    ({"members": 2, "member_arch": "nope"}, "unknown architecture 'nope'"),
    ({"members": 2, "member_arch": "ensemble"}, "cannot be ensembles"),
    ({"members": 2, "member_arch": "mlp", "member_params": {"hidden": 0}},
     "hidden must be in [1, 8192]"),
    ({"members": 2, "member_arch": "mlp", "size": 3}, "unknown ensemble parameter"),
])
def test_bad_ensemble_descriptions_are_named(params, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        models.create("ensemble", **params)


def test_file_whose_weights_do_not_fit_the_ensemble_is_refused(tmp_path):
    ens = make_ensemble(_cnn(), 2)
    meta = ens.meta
    meta.arch_params = {**meta.arch_params, "members": 3}
    path = models.save(ens, tmp_path / "odd.safetensors", meta)
    with pytest.raises(models.ModelError, match=r"odd\.safetensors.*architecture "
                       r"'ensemble'.*missing keys 'members\.2"):
        models.load(path)


def test_adp_training_writes_a_best_ensemble_that_reloads(sets, tmp_path):
    small, test = sets
    few = ArrayDataset(small.images[:64], small.labels[:64], small.classes,
                       small.info)
    torch.manual_seed(0)
    base = models.create("mlp", in_shape=(1, 28, 28), hidden=16, depth=1)
    trained = make_ensemble(base, 2, seed=0)  # prepare() keeps an Ensemble
    events = list(fit(trained, few, test, method="adp",
                                 params={"members": 2}, epochs=1, batch_size=64,
                                 eval_n=32, eval_steps=1, device="cpu", lr=0.02,
                                 run_dir=tmp_path))
    done = events[-1]
    assert isinstance(done, Done)
    assert done.results["best"] == str(tmp_path / "best.safetensors")
    loaded = models.load(done.results["best"])
    assert isinstance(loaded, Ensemble)
    assert loaded.meta.training["method"] == "adp"
    x, _ = test.as_tensors(0, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), trained.eval()(x))
