"""Linear probing and a fresh head (TrainingConfig.freeze / new_head): only
the head trains, the frozen body keeps its weights and batch-norm statistics
under any method, a resume is bit-exact and cannot change the mode, and a
model without an identifiable head is refused naming it."""

from __future__ import annotations

import warnings

import pytest
import torch

from explorer.core import data, defenses, models
from explorer.core.defenses import TrainingConfig
from explorer.core.defenses.run_job import train_run
from explorer.core.jobs import Done, Log
from explorer.core.models import exported
from explorer.core.params import ParamError
from explorer.core.training import checkpoint
from explorer.core.training.fine_tune import freeze_features, head_of, reset_head

TINY = {"epochs": 1, "batch_size": 8, "limit_train": 16, "eval_n": 8,
        "eval_steps": 1, "schedule": "constant", "lr": 0.05, "val_fraction": 0.0}
PGD = {"defense": "pgd-at", "params": {"steps": 2}}


def _wrn(tmp_path, dropout: float = 0.3):
    """A tiny wide-resnet (batch norm and dropout in its body) as a file, so
    a fine-tune has running statistics to keep or move."""
    torch.manual_seed(0)
    net = models.create("wide-resnet", in_shape=(1, 28, 28), depth=10,
                        widen_factor=1, dropout=dropout)
    return net, models.save(net, tmp_path / "wrn.safetensors")


def _trained(run_dir) -> dict[str, torch.Tensor]:
    return checkpoint.load(run_dir / "last.pt")["model"]


def _split(state: dict[str, torch.Tensor]):
    head = {k: v for k, v in state.items() if k.startswith("head.")}
    body = {k: v for k, v in state.items() if not k.startswith("head.")}
    return head, body


def _changed(a: dict, b: dict) -> set[str]:
    return {k for k, v in a.items() if not torch.equal(v, b[k])}


@pytest.mark.parametrize("method", [{}, PGD], ids=["standard", "pgd-at"])
def test_a_linear_probe_trains_the_head_only(method, tmp_path):
    net, path = _wrn(tmp_path)
    start = {k: v.clone() for k, v in net.state_dict().items()}
    config = TrainingConfig(init_from=str(path), freeze="features", **TINY, **method)
    events = list(train_run(config, run_dir=tmp_path / "run", device="cpu"))
    assert isinstance(events[-1], Done)
    assert any(isinstance(e, Log) and "linear probe: only the classifier head "
               "trains" in e.message for e in events)
    head, body = _split(_trained(tmp_path / "run"))
    start_head, start_body = _split(start)
    assert _changed(start_head, head) == {"head.weight", "head.bias"}
    assert not _changed(start_body, body)  # bit-identical, running stats too
    assert any("running_mean" in k for k in body)
    best = models.load(events[-1].results["best"])
    assert best.meta.training["freeze"] == "features"


def test_a_full_fine_tune_moves_the_body_and_its_statistics(tmp_path):
    net, path = _wrn(tmp_path)
    start = {k: v.clone() for k, v in net.state_dict().items()}
    config = TrainingConfig(init_from=str(path), **TINY)
    assert config.freeze == "none"
    list(train_run(config, run_dir=tmp_path / "run", device="cpu"))
    _, body = _split(_trained(tmp_path / "run"))
    moved = _changed(_split(start)[1], body)
    assert any(k.endswith("running_mean") for k in moved)
    assert any(k.endswith("conv1.weight") for k in moved)


def test_the_frozen_body_stays_in_eval_mode_and_passes_input_gradients(tmp_path):
    net, _ = _wrn(tmp_path, dropout=0.5)
    x = torch.rand(4, 1, 28, 28)
    trainable = freeze_features(net, head_of(net, "wrn", "freeze features"))
    assert trainable == list(net.head.parameters())
    net.train()  # what the trainer and every attack's restore do
    with torch.no_grad():
        first, second = net.features(x), net.features(x)
    assert torch.equal(first, second)  # dropout off, batch statistics unused
    assert not net.body.training
    # an attack still differentiates through the frozen body w.r.t. the input
    x_in = x.clone().requires_grad_(True)
    net(x_in).sum().backward()
    assert x_in.grad is not None
    assert x_in.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.body.parameters())
    assert net.head.weight.grad is not None


def test_pgd_at_examples_of_a_linear_probe_stay_in_the_ball(tmp_path):
    net, _ = _wrn(tmp_path)
    freeze_features(net, head_of(net, "wrn", "freeze features"))
    net.train()
    defense = defenses.create("pgd-at", eps=0.1, steps=3)
    x, y = data.load("fashion-mnist-mini", "test").as_tensors(0, 8)
    gen = torch.Generator().manual_seed(0)
    x_adv = defense.adversarial(net, x, y, gen)
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6
    assert x_adv.min() >= 0
    assert x_adv.max() <= 1
    assert (x_adv - x).abs().max() > 0.05  # the attack moved through the body
    loss, _ = defense.loss(net, x, y, gen)
    loss.backward()
    assert all(p.grad is None for p in net.body.parameters())


def test_a_new_head_is_drawn_from_the_seed(tmp_path):
    net, _ = _wrn(tmp_path)
    old = net.head.weight.detach().clone()
    body = {k: v.clone() for k, v in net.body.state_dict().items()}
    reset_head(net.head, 3)
    first = net.head.weight.detach().clone()
    reset_head(net.head, 3)
    assert torch.equal(net.head.weight, first)
    assert not torch.equal(first, old)
    reset_head(net.head, 4)
    assert not torch.equal(net.head.weight, first)
    assert not _changed(body, net.body.state_dict())


@pytest.mark.parametrize(("new_head", "method"), [(False, {}), (True, PGD)],
                         ids=["standard", "pgd-at-new-head"])
def test_a_resumed_linear_probe_equals_an_uninterrupted_one(new_head, method,
                                                             tmp_path):
    _, path = _wrn(tmp_path)
    config = TrainingConfig(init_from=str(path), freeze="features",
                            new_head=new_head, **{**TINY, "epochs": 2}, **method)
    list(train_run(config, run_dir=tmp_path / "a", device="cpu"))
    list(train_run(config.replace(epochs=1), run_dir=tmp_path / "b", device="cpu"))
    events = list(train_run(config, run_dir=tmp_path / "b", device="cpu",
                            resume=True))
    assert events[-1].results["epochs"] == 2
    straight, resumed = _trained(tmp_path / "a"), _trained(tmp_path / "b")
    assert not _changed(straight, resumed)  # bit-exact


def test_a_resume_cannot_change_the_freeze_mode(tmp_path):
    _, path = _wrn(tmp_path)
    config = TrainingConfig(init_from=str(path), freeze="features", **TINY)
    list(train_run(config, run_dir=tmp_path / "run", device="cpu"))
    with pytest.raises(checkpoint.CheckpointError,
                       match="its freeze is 'features', this run's is 'none'"):
        list(train_run(config.replace(freeze="none", epochs=2),
                       run_dir=tmp_path / "run", device="cpu", resume=True))


def test_old_checkpoints_and_stored_configs_read_as_full_fine_tuning(tmp_path):
    _, path = _wrn(tmp_path)
    config = TrainingConfig(init_from=str(path), **TINY)
    stored = {k: v for k, v in config.to_json().items()
              if k not in ("freeze", "new_head")}
    again = TrainingConfig.from_json(stored)
    assert (again.freeze, again.new_head) == ("none", False)
    list(train_run(config, run_dir=tmp_path / "run", device="cpu"))
    last = tmp_path / "run" / "last.pt"
    state = checkpoint.load(last)
    del state["config"]["freeze"]  # written before the key existed
    checkpoint.save(last, state)
    events = list(train_run(config.replace(epochs=2), run_dir=tmp_path / "run",
                            device="cpu", resume=True))
    assert events[-1].results["epochs"] == 2


def test_a_model_without_a_known_head_is_refused_naming_it(tmp_path):
    net = models.create("mlp", in_shape=(1, 28, 28), hidden=8, depth=1).eval()
    program = exported.export(net, tmp_path / "tiny.pt2")
    script = tmp_path / "tiny.ts"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.script(net).save(str(script))
    for path, kind in ((program, "a torch.export program"),
                       (script, "a TorchScript module")):
        config = TrainingConfig(init_from=str(path), freeze="features", **TINY)
        with pytest.raises(ParamError, match=rf"freeze features: .*{path.name} is "
                           rf"{kind}, whose classifier head cannot be identified"):
            list(train_run(config, run_dir=tmp_path / path.stem, device="cpu"))
        assert not (tmp_path / path.stem / "last.pt").exists()
    _, wrn = _wrn(tmp_path)  # ADP's prepare makes an ensemble of it
    config = TrainingConfig(init_from=str(wrn), new_head=True, defense="adp",
                            params={"members": 2}, **TINY)
    with pytest.raises(ParamError, match=r"new_head: .*wrn\.safetensors is an "
                       "ensemble"):
        list(train_run(config, run_dir=tmp_path / "adp", device="cpu"))


@pytest.mark.parametrize(("change", "message"), [
    ({"init_from": "m.pt", "freeze": "head"},
     r"freeze must be one of none, features .* got 'head'"),
    ({"freeze": "features"}, "freeze features is for fine-tuning a loaded model"),
    ({"new_head": True}, "new_head is for fine-tuning a loaded model"),
    ({"init_from": "m.pt", "new_head": "yes"}, "new_head must be true or false"),
])
def test_bad_freeze_settings_name_the_setting(change, message):
    with pytest.raises(ParamError, match=message):
        TrainingConfig(**change)


def test_a_library_network_probes_its_last_linear_layer():
    """torchvision's MobileNetV3 ends in Sequential(Linear, Hardswish,
    Dropout, Linear): the last Linear is the head, the rest of that
    Sequential (the dropout included) is frozen with the features."""
    net = models.create("torchvision:mobilenet_v3_small", in_shape=(3, 32, 32),
                        num_classes=10)
    head = head_of(net, "mobilenet", "freeze features")
    assert head is net.net.classifier[3]
    trainable = freeze_features(net, head)
    assert trainable == [head.weight, head.bias]
    assert [n for n, p in net.named_parameters() if p.requires_grad] == [
        "net.classifier.3.weight", "net.classifier.3.bias"]
    net.train()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(net(x), net(x))  # dropout and batch norm in eval
    assert not net.net.classifier[2].training
    assert not net.net.features.training

