"""Mixed precision and torch.compile in training (core/training/precision.py).

bf16 is checked against float32 on this CPU; fp16's grad scaler (CUDA only
in a run) is driven on CPU directly, and through the trainer with the device
check lifted, for its checkpoint and resume.
"""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from tiny_nets import mlp as _mlp
from trainer_calls import fit

from explorer.core import data, defenses, models
from explorer.core.data import ArrayDataset
from explorer.core.defenses import TrainingConfig
from explorer.core.jobs import Done, Log, Metric
from explorer.core.params import ParamError
from explorer.core.training import checkpoint, precision
from explorer.core.training.precision import Precision


def _cnn(seed: int = 0):
    torch.manual_seed(seed)
    return models.create("small-cnn", in_shape=(1, 28, 28), width=8, dense=32)


def _train(model, sets, run_dir, **kw):
    small, test = sets
    args = {"method": "standard", "epochs": 1, "batch_size": 32, "eval_n": 64,
            "eval_steps": 2, "device": "cpu", "optimizer": "adam", "lr": 3e-3,
            "schedule": "constant", "val_fraction": 0.0, "run_dir": run_dir}
    return list(fit(model, small, test, **{**args, **kw}))


def _metric(events, name):
    return [e.value for e in events if isinstance(e, Metric) and e.name == name]


def _logs(events):
    return [e.message for e in events if isinstance(e, Log)]


def _weights_equal(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                  b.state_dict().values(),
                                                  strict=True))


# -- the config ------------------------------------------------------------------
def test_config_validates_amp_and_compile_and_old_runs_read_as_off():
    with pytest.raises(ParamError, match="amp must be one of off, bf16, fp16, got "
                                         "'fp32'"):
        TrainingConfig(amp="fp32")
    with pytest.raises(ParamError, match="compile must be true or false"):
        TrainingConfig(compile="yes")
    stored = TrainingConfig(amp="bf16", compile=True).to_json()
    assert (stored["amp"], stored["compile"]) == ("bf16", True)
    assert TrainingConfig.from_json(stored).amp == "bf16"
    old = {k: v for k, v in stored.items() if k not in ("amp", "compile")}
    back = TrainingConfig.from_json(old)
    assert (back.amp, back.compile) == ("off", False)


def test_fp16_on_cpu_is_refused_before_anything_is_written(sets, tmp_path):
    with pytest.raises(ParamError, match=r"amp fp16 needs a CUDA GPU .*this run is "
                                         r"on cpu: choose amp bf16 or off"):
        _train(_cnn(), sets, tmp_path, amp="fp16")
    assert not (tmp_path / "last.pt").exists()
    precision.check_device("bf16", "cpu")  # bf16 is fine on a CPU


# -- bf16 against float32 ------------------------------------------------------------
@pytest.mark.parametrize("method", ["standard", "pgd-at"])
def test_bf16_training_matches_float32_within_tolerance(method, sets, tmp_path):
    """512 images, 2 epochs of 16 batches. bf16 keeps 8 significant bits (about
    2-3 decimal digits, a relative rounding of 2^-9 per operation), so the
    weights drift apart step by step (and PGD's sign steps flip where a
    gradient component is near 0): the epoch losses stay within 0.1 (4 % of
    ln 10) and the accuracies on 256 images within 6 points. Measured: losses
    ≤ 0.025 and accuracies ≤ 1.2 points apart on an AVX2 CPU; on a CPU with
    AMX-bf16 (whose bf16 kernels accumulate differently) PGD-AT's second-epoch
    loss was 0.065 apart. A bf16 path that stopped learning would be ≥ 0.3
    apart (float32's loss falls from 2.30 to 1.99)."""
    full = data.load("fashion-mnist-mini", "train")
    train = ArrayDataset(full.images[:512], full.labels[:512], full.classes,
                         full.info)
    test = sets[1]
    params = {"steps": 2} if method == "pgd-at" else {}
    runs = {}
    for amp in ("off", "bf16"):
        model = _cnn()
        dtypes: set[torch.dtype] = set()
        model.body[0].register_forward_hook(functools.partial(_training_dtype, dtypes))
        events = _train(model, (train, test), tmp_path / amp, method=method,
                        params=params, epochs=2, eval_n=256, amp=amp)
        runs[amp] = (events, model, dtypes)
    (ref, ref_model, ref_dtypes), (low, low_model, low_dtypes) = runs.values()
    # bf16 really ran the training forwards (and float32 did not)
    assert ref_dtypes == {torch.float32}
    assert torch.bfloat16 in low_dtypes
    assert not _weights_equal(ref_model, low_model)
    assert all(torch.isfinite(p).all() for p in low_model.parameters())
    assert all(p.dtype == torch.float32 for p in low_model.parameters())
    # the trainer placed the model channels-last (accel.place); inputs need nothing
    assert low_model.body[0].weight.is_contiguous(memory_format=torch.channels_last)
    for name, tol in (("train_loss", 0.1), ("train_acc", 0.06),
                      ("test_clean_acc", 0.06), ("test_robust_acc", 0.06)):
        a, b = _metric(ref, name), _metric(low, name)
        assert len(a) == len(b) == 2
        assert max(abs(x - y) for x, y in zip(a, b, strict=True)) <= tol, (name, a, b)
    assert _metric(ref, "train_loss")[1] < _metric(ref, "train_loss")[0]  # learns


def _training_dtype(seen: set, module, inputs, out) -> None:
    if module.training:  # the update passes (attacks run the model frozen)
        seen.add(out.dtype)


def test_attack_inside_the_defense_stays_float32_under_autocast(sets):
    """PGD-AT's attack runs under the outer bf16 autocast: its iterate is
    float32, inside the ball and box, and its loss float32."""
    x, y = sets[0].as_tensors(0, 32)
    model = _cnn()
    model.train()
    defense = defenses.create("pgd-at", eps=0.1, steps=2)
    with Precision("bf16", "cpu").autocast():
        x_adv = defense.adversarial(model, x, y, torch.Generator().manual_seed(0))
        loss, logits = defense.loss(model, x, y, torch.Generator().manual_seed(0))
    assert x_adv.dtype == torch.float32
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6
    assert x_adv.min() >= 0
    assert x_adv.max() <= 1
    assert (x_adv - x).abs().max() > 0.05
    assert loss.dtype == torch.float32
    assert logits.dtype == torch.bfloat16


def test_bf16_resume_equals_straight_training_bit_for_bit(sets, tmp_path):
    """2 epochs == 1 + resume 1, exactly: bf16 on a CPU is as deterministic as
    float32 (same kernels, same order, same random draws)."""
    kw = {"method": "fast-at", "amp": "bf16"}
    straight = _cnn()
    _train(straight, sets, tmp_path / "a", epochs=2, **kw)
    first = _cnn()
    _train(first, sets, tmp_path / "b", epochs=1, **kw)
    resumed = _cnn(seed=123)  # weights come from the checkpoint
    events = _train(resumed, sets, tmp_path / "b", epochs=2, resume=True, **kw)
    assert events[-1].results["epochs"] == 2
    assert _weights_equal(straight, resumed)


def test_a_run_resumes_with_another_precision(sets, tmp_path):
    _train(_cnn(), sets, tmp_path, epochs=1)
    events = _train(_cnn(), sets, tmp_path, epochs=2, resume=True, amp="bf16")
    assert isinstance(events[-1], Done)
    assert events[-1].results["epochs"] == 2
    assert checkpoint.load(tmp_path / "last.pt")["config"]["amp"] == "bf16"


# -- fp16's grad scaler, driven on CPU -------------------------------------------------
def _free_at_step(prec: Precision | None, model, x, y):
    """One Free-AT update; the input gradient its hook saw."""
    defense = defenses.create("free-at", eps=0.1, replays=2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    seen = {}

    def hook():
        seen["grad"] = defense._x_adv.grad.clone()
        defense.after_backward()

    if prec is None:
        loss, _ = defense.loss(model, x, y, None)
        loss.backward()
        hook()
        opt.step()
    else:
        with prec.autocast():
            loss, _ = defense.loss(model, x, y, None)
        prec.step(loss, opt, hook)
    return seen.get("grad"), defense


def test_fp16_scaler_unscales_the_input_gradient_free_at_reads(sets):
    x, y = sets[0].as_tensors(0, 16)
    ref, _ = _free_at_step(None, _mlp(), x, y)
    prec = Precision("fp16", "cpu")
    assert prec.scale() == 65536.0
    got, defense = _free_at_step(prec, _mlp(), x, y)
    assert got is not None
    assert got.dtype == torch.float32
    # the true gradient (float16 forward: about 3 digits), not 65536 times it
    torch.testing.assert_close(got, ref, rtol=0.05, atol=ref.abs().max() * 0.02)
    assert torch.equal(got.sign() != 0, ref.sign() != 0) or \
        (got.sign() == ref.sign()).float().mean() > 0.95
    assert defense._delta.abs().max() > 0  # the hook moved the perturbation


def test_fp16_overflow_skips_the_step_and_the_hook(sets):
    x, y = sets[0].as_tensors(0, 16)
    prec = Precision("fp16", "cpu")
    prec.scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 120)
    model = _mlp()
    before = [p.detach().clone() for p in model.parameters()]
    got, defense = _free_at_step(prec, model, x, y)
    assert got is None  # the gradients overflowed: the hook did not run
    assert defense._delta.abs().max() == 0
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(),
                                                 strict=True))
    assert prec.scale() == 2.0 ** 119  # backed off
    state = prec.state_dict()
    fresh = Precision("fp16", "cpu")
    fresh.load_state_dict(state)
    assert fresh.scale() == 2.0 ** 119
    Precision("off", "cpu").load_state_dict(state)  # another precision: ignored


def test_fp16_scale_is_kept_in_last_pt_and_resume_continues_it(sets, tmp_path,
                                                               monkeypatch):
    """Through the trainer, with the CUDA-only check lifted for this CPU, and
    a scaler that grows every step, so its scale moves (up, and down at each
    overflow): a resume that started a fresh scaler would skip other steps."""
    monkeypatch.setattr(precision, "check_device", lambda *a, **k: None)
    monkeypatch.setattr(torch.amp, "GradScaler", functools.partial(
        torch.amp.GradScaler, growth_interval=1))
    kw = {"method": "standard", "amp": "fp16", "eval_n": 16}
    straight = _mlp()
    _train(straight, sets, tmp_path / "a", epochs=2, **kw)
    _train(_mlp(), sets, tmp_path / "b", epochs=1, **kw)
    saved = checkpoint.load(tmp_path / "b" / "last.pt")["precision"]
    assert saved["scale"] != 65536.0
    resumed = _mlp(seed=123)
    _train(resumed, sets, tmp_path / "b", epochs=2, resume=True, **kw)
    assert _weights_equal(straight, resumed)
    assert (checkpoint.load(tmp_path / "b" / "last.pt")["precision"]
            == checkpoint.load(tmp_path / "a" / "last.pt")["precision"])


# -- compile ---------------------------------------------------------------------------
def test_compile_unavailable_logs_once_and_trains_uncompiled(sets, tmp_path,
                                                             monkeypatch):
    def no_compiler(*args, **kwargs):
        raise RuntimeError("no C++ compiler found")

    monkeypatch.setattr(torch, "compile", no_compiler)
    events = _train(_cnn(), sets, tmp_path, compile=True)
    notes = [m for m in _logs(events) if m.startswith("compile")]
    assert notes == ["compile: torch.compile is not available (RuntimeError: no C++ "
                     "compiler found); training continues uncompiled"]
    said = next(i for i, e in enumerate(events) if isinstance(e, Log)
                and e.message.startswith("compile"))
    trained = next(i for i, e in enumerate(events) if isinstance(e, Metric))
    assert said < trained  # said at the start, not after an epoch
    assert isinstance(events[-1], Done)


def test_compile_failing_at_the_first_call_falls_back_to_the_same_run(
        sets, tmp_path, monkeypatch):
    def fails_when_called(fn, *args, **kwargs):
        def compiled(*a, **k):
            raise RuntimeError("InductorError: C++ compile error")
        return compiled

    monkeypatch.setattr(torch, "compile", fails_when_called)
    model = _cnn()
    events = _train(model, sets, tmp_path / "c", compile=True, method="fast-at")
    notes = [m for m in _logs(events) if m.startswith("compile")]
    assert len(notes) == 2
    assert "is compiled" in notes[0]
    assert notes[1] == ("compile: torch.compile failed (RuntimeError: InductorError: "
                        "C++ compile error); training continues uncompiled")
    plain = _cnn()
    _train(plain, sets, tmp_path / "p", method="fast-at")
    assert _weights_equal(model, plain)
    assert "forward" not in model.__dict__


@pytest.mark.slow
def test_compiled_run_saves_the_modules_own_keys(sets, tmp_path, monkeypatch):
    """Real torch.compile tracing (the eager backend: no C++ build here)."""
    calls = []
    real = torch.compile

    def eager_backend(fn, *args, **kwargs):
        calls.append(fn)
        return real(fn, backend="eager")

    monkeypatch.setattr(torch, "compile", eager_backend)
    model = _cnn()
    events = _train(model, sets, tmp_path, compile=True, method="fast-at",
                    val_fraction=0.0)
    assert calls
    assert not [m for m in _logs(events) if "continues uncompiled" in m]
    keys = set(_cnn().state_dict())
    assert set(checkpoint.load(tmp_path / "last.pt")["model"]) == keys
    with safe_open(str(tmp_path / "best.safetensors"), "pt") as f:
        assert set(f.keys()) == keys
    assert "forward" not in model.__dict__  # the model's own forward again
    assert models.load(tmp_path / "best.safetensors") is not None


def test_precision_off_is_the_plain_update():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.rand(4, 3), torch.tensor([0, 1, 0, 1])
    twin = torch.nn.Linear(3, 2)
    twin.load_state_dict(model.state_dict())
    called = []
    prec = Precision("off", "cpu")
    with prec.autocast():
        loss = F.cross_entropy(model(x), y)
    prec.step(loss, opt, lambda: called.append(1))
    F.cross_entropy(twin(x), y).backward()
    with torch.no_grad():
        for p in twin.parameters():
            p -= 0.1 * p.grad
    assert called == [1]
    assert prec.state_dict() == {}
    assert all(torch.allclose(a, b) for a, b in zip(model.parameters(),
                                                    twin.parameters(), strict=True))

