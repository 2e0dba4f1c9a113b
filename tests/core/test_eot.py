"""EOT and BPDA (Athalye et al. 2018) in the gradient attacks.

EOT: on a model that adds Gaussian noise to its input and on Mixup Inference
drawing afresh at each call, PGD with ``eot`` = K is at least as strong as
torchattacks' EOTPGD with the same budget, and stronger than PGD without
EOT; ``eot`` = 1 is the plain attack, step for step. BPDA: a quantising input
transformation with zero gradient stops PGD, and BPDA's identity backward
breaks it.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from explorer.core import attacks, data, models
from explorer.core.analysis.cascade import (
    gradient_options,
    run_suite,
    with_gradient_options,
)
from explorer.core.analysis.suites import suite_plan
from explorer.core.attacks.eot import blur, bpda_applied, check_options
from explorer.core.defenses.mixup_inference import MixupInference
from explorer.core.jobs import run_to_end
from explorer.core.params import ParamError

EPS, STEPS, K = 0.1, 8, 4
ALPHA = 2.5 * EPS / STEPS
GRADIENT_ATTACKS = ("fgsm", "fgsm-rs", "bim", "pgd", "mim", "apgd-ce", "apgd-dlr")


class Noisy(nn.Module):
    """A randomized defense: Gaussian noise on the input at every call. At
    sigma 0.1 the built-in PGD-AT model keeps about 86 % of the first 32 test
    images (averaged over passes); at 0.3 it keeps 17 %, and every attack
    reads near zero whether or not it uses EOT."""

    def __init__(self, inner: nn.Module, sigma: float = 0.1) -> None:
        super().__init__()
        self.inner, self.sigma = inner, sigma

    def forward(self, x):
        return self.inner(x + self.sigma * torch.randn_like(x))


class Quantise(nn.Module):
    """Bit-depth reduction: its gradient is zero almost everywhere."""

    non_differentiable = True

    def __init__(self, levels: int = 8) -> None:
        super().__init__()
        self.levels = levels

    def forward(self, x):
        return torch.round(x * (self.levels - 1)) / (self.levels - 1)


class Counting(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner, self.calls = inner, 0

    def forward(self, x):
        self.calls += 1
        return self.inner(x)


@pytest.fixture(scope="module")
def robust():
    """The built-in PGD-trained model (a standard one is broken by any attack,
    so every comparison would read 0 %), frozen."""
    model = models.load_builtin("fmnist-cnn-pgdat").eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@pytest.fixture(scope="module")
def images():
    return data.load("fashion-mnist-mini", "test").as_tensors(0, 32)


def accuracy_over_passes(model, x, y, passes: int = 21) -> float:
    """Accuracy of a randomized model averaged over ``passes`` calls, from a
    fixed seed: one call is a coin flip for points near the boundary, and the
    same draws score both attacks."""
    torch.manual_seed(12345)
    with torch.no_grad():
        right = torch.stack([(model(x).argmax(1) == y).float()
                             for _ in range(passes)])
    return float(right.mean())


# -- EOT = 1 is the plain attack ---------------------------------------------------
def test_eot_1_is_the_plain_loop_step_for_step(robust, images):
    """The pre-EOT loop written out: BIM's iterates equal it bit for bit, with
    one model call per step (the live path's final evaluation aside)."""
    x, y = images
    model = Counting(robust)
    atk = attacks.create("bim", model, eps=EPS, alpha=0.02, steps=4, eot=1)
    got = atk(x, y)
    assert model.calls == 4
    threat = attacks.make_threat("linf", EPS)
    project = threat.projector(x)
    ref = x.clone()
    for _ in range(4):
        ref.requires_grad_(True)
        loss = nn.functional.cross_entropy(robust(ref), y, reduction="none")
        (grad,) = torch.autograd.grad(loss.sum(), ref)
        ref = project(threat.step(ref.detach(), grad, 0.02))
    assert torch.equal(got, ref)


@pytest.mark.parametrize("name", GRADIENT_ATTACKS)
def test_every_gradient_attack_takes_eot_and_bpda(name, robust, images):
    """Defaults 1 and off; on a deterministic model K passes change nothing
    but the cost: where the passes agree the attack runs as without EOT."""
    x, y = images[0][:8], images[1][:8]
    spec = {p.name: p.default for p in attacks.spec(name)}
    assert (spec["eot"], spec["bpda"]) == (1, "off")
    params = {"eps": EPS, "steps": 3} if "steps" in spec else {"eps": EPS}
    if name == "apgd-dlr":
        params["n_target_classes"] = 2
    once, thrice = Counting(robust), Counting(robust)
    plain = attacks.create(name, once, seed=1, **params)(x, y)
    averaged = attacks.create(name, thrice, seed=1, eot=3, **params)(x, y)
    assert thrice.calls >= 2 * once.calls
    assert torch.equal(plain, averaged)


@pytest.mark.parametrize(("values", "needle"), [
    ({"eot": 0}, "eot must be in [1, 1000], got 0"),
    ({"eot": -3}, "eot must be in [1, 1000]"),
    ({"eot": 2.5}, "eot must be an integer"),
    ({"eot": "ten"}, "eot must be an integer, got 'ten'"),
    ({"bpda": "jpeg"}, "bpda must be one of off, identity, blur"),
])
def test_bad_eot_and_bpda_values_name_the_parameter(robust, values, needle):
    with pytest.raises(ParamError, match=needle.replace("[", r"\[").replace(
            "]", r"\]")):
        attacks.create("pgd", robust, **values)
    with pytest.raises(ParamError, match=needle.split()[0]):
        check_options(**values)


# -- EOT against randomized models --------------------------------------------------
def test_eot_lowers_robust_accuracy_on_a_noisy_model(robust, images):
    """Fails without EOT: one pass's gradient of a noisy model is a poor step."""
    x, y = images
    model = Noisy(robust)
    acc = {}
    for k in (1, K):
        torch.manual_seed(0)
        x_adv = attacks.create("pgd", model, seed=0, eps=EPS, alpha=ALPHA,
                               steps=STEPS, eot=k)(x, y)
        acc[k] = accuracy_over_passes(model, x_adv, y)
    assert acc[K] < acc[1] - 0.04, acc


def _ours_and_theirs(model, x, y, reset, *, steps=STEPS, k=K, plain=True,
                     eps=EPS):
    """Robust accuracy under our PGD and torchattacks' EOTPGD, both with
    ``k`` EOT passes, and (``plain``) under our PGD without EOT.

    Both start at the clean image and ``reset()`` restarts the model's random
    draws before each, so they meet the same noise call for call: the
    comparison is of the attacks, not of two random starts (with random
    starts the two differ by about a point either way on 128 images). The
    paths still part by float rounding (torchattacks clamps x + clamp(x_adv
    - x), we clamp between bounds computed once), which flips near-zero
    gradient signs, so "at least as strong" allows one image's worth.
    Robust accuracy is averaged over 21 passes from one seed."""
    ta = pytest.importorskip("torchattacks")
    found = {}
    runs = [("ours", k), ("theirs", k)] + ([("plain", 1)] if plain else [])
    for name, passes in runs:
        reset()
        if name == "theirs":
            atk = ta.EOTPGD(model, eps=eps, alpha=2.5 * eps / steps, steps=steps,
                            eot_iter=k, random_start=False)
        else:
            atk = attacks.create("pgd", model, seed=0, eps=eps,
                                 alpha=2.5 * eps / steps,
                                 steps=steps, random_start=False, eot=passes)
        found[name] = accuracy_over_passes(model, atk(x, y), y)
    return found


def test_eot_at_least_as_strong_as_torchattacks_eotpgd_on_a_noisy_model(
        robust, images):
    x, y = images
    model = Noisy(robust)
    acc = _ours_and_theirs(model, x, y, lambda: torch.manual_seed(0))
    one_image = 1 / len(y)
    assert acc["ours"] <= acc["theirs"] + one_image, acc
    assert acc["plain"] > acc["theirs"] + one_image, acc  # without EOT: weaker
    assert acc["theirs"] < accuracy_over_passes(model, x, y) - 0.1


def test_eot_at_least_as_strong_as_torchattacks_eotpgd_on_mixup_inference(robust):
    """Mixup Inference drawing afresh at each call (its published form); each
    call's draws come from a counter so both attacks meet the same ones. At
    eps 0.15: mixing scales the perturbation down, and at 0.1 five steps
    barely move the robust model (87.5 % to 87.2 % on these 16 images)."""
    mix_x, mix_y = data.load("fashion-mnist-mini", "train").as_tensors(0, 300)
    model = MixupInference(robust, mix_x, mix_y, samples=3, seed=None).eval()
    counter = itertools.count()

    def next_seed(module, _args):
        module.seed = next(counter)

    model.register_forward_pre_hook(next_seed)

    def reset():
        nonlocal counter
        counter = itertools.count(1000)

    x, y = data.load("fashion-mnist-mini", "test").as_tensors(0, 16)
    acc = _ours_and_theirs(model, x, y, reset, steps=5, k=3, plain=False,
                           eps=0.15)
    assert acc["ours"] <= acc["theirs"] + 1 / len(y), acc
    reset()
    assert acc["theirs"] < accuracy_over_passes(model, x, y) - 0.1


def test_eot_in_apgd_averages_the_loss_of_its_step_size_decisions(robust, images):
    """APGD-CE with EOT on the noisy model: K passes per step, and stronger than
    APGD without it."""
    x, y = images
    model = Counting(Noisy(robust))
    acc, calls = {}, {}
    for k in (1, 3):
        torch.manual_seed(0)
        model.calls = 0
        x_adv = attacks.create("apgd-ce", model, seed=0, eps=EPS, steps=10,
                               eot=k)(x, y)
        calls[k] = model.calls
        acc[k] = accuracy_over_passes(model, x_adv, y)
    assert calls[3] >= 3 * 11  # the start and every step, 3 passes each
    assert acc[3] < acc[1] - 0.04, acc


def test_the_suite_passes_eot_to_every_gradient_stage(robust, images):
    x, y = images
    model = Noisy(robust)
    robust_acc = {}
    for k in (1, 4):
        torch.manual_seed(0)
        done = run_to_end(run_suite(model, x, y, "quick", EPS, steps=10, eot=k))
        robust_acc[k] = done["robust_acc"]
        assert done.get("eot") == (k if k > 1 else None)
    assert robust_acc[4] < robust_acc[1], robust_acc
    plan = suite_plan("standard", EPS, steps=10)["linf"]
    staged = with_gradient_options(plan, gradient_options(eot=5, bpda="identity"))
    assert [s.params.get("eot") for s in staged] == [5, 5, None]  # not Square
    assert staged[0].params["bpda"] == "identity"
    assert with_gradient_options(plan, gradient_options()) == plan
    with pytest.raises(ParamError, match="eot"):
        run_to_end(run_suite(model, x, y, "quick", EPS, eot=0))


# -- BPDA --------------------------------------------------------------------------
def test_bpda_identity_breaks_a_quantising_input_transformation(images):
    """On the standard built-in, which PGD breaks at eps 0.1 when the gradient
    is there: what stops it here is the quantiser's zero gradient, nothing
    else (the robust model holds most of these 32 images whatever the attack,
    and would hide the contrast)."""
    x, y = images
    bare_model = models.load_builtin("fmnist-cnn-standard").eval()
    model = nn.Sequential(Quantise(), bare_model).eval()
    params = {"eps": EPS, "alpha": ALPHA, "steps": STEPS}
    clean = float((model(x).argmax(1) == y).float().mean())

    def acc(x_adv):
        return float((model(x_adv).argmax(1) == y).float().mean())

    plain = acc(attacks.create("pgd", model, **params)(x, y))
    through = acc(attacks.create("pgd", model, bpda="identity", **params)(x, y))
    bare = acc(attacks.create("pgd", bare_model, **params)(x, y))
    assert plain >= clean - 0.1  # zero gradients: PGD barely moves
    assert through < plain - 0.5
    assert through <= bare + 0.1  # about as strong as on the bare network
    blurred = acc(attacks.create("pgd", model, bpda="blur", **params)(x, y))
    assert blurred < plain - 0.5


def test_bpda_keeps_the_forward_value_and_leaves_other_threads_alone(robust, images):
    import threading

    x = images[0][:4]
    model = nn.Sequential(Quantise(), robust).eval()
    before = model(x)
    with bpda_applied(model, "identity"):
        xg = x.clone().requires_grad_(True)
        out = model(xg)
        assert torch.equal(out.detach(), before)
        (grad,) = torch.autograd.grad(out.sum(), xg)
        assert grad.abs().sum() > 0
        seen = {}

        def other():
            xo = x.clone().requires_grad_(True)
            (g,) = torch.autograd.grad(model(xo).sum(), xo)
            seen["grad"] = g

        worker = threading.Thread(target=other)
        worker.start()
        worker.join()
        assert seen["grad"].abs().sum() == 0  # the true (zero) gradient there
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(xg).sum(), xg)
    assert grad.abs().sum() == 0  # hooks gone


def test_bpda_without_a_marked_module_is_a_clear_error(robust):
    with pytest.raises(ParamError, match="no non-differentiable input "
                                         "transformation"):
        attacks.create("pgd", robust, bpda="identity")


def test_blur_is_a_normalised_smoothing():
    x = torch.rand(2, 3, 8, 8)
    assert torch.allclose(blur(torch.ones(1, 1, 5, 5)), torch.ones(1, 1, 5, 5))
    assert blur(x).shape == x.shape
    assert blur(x).std() < x.std()
    with pytest.raises(ParamError, match="N×C×H×W"):
        blur(torch.rand(3, 8))
