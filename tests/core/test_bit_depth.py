"""Bit-depth reduction (feature squeezing, Xu et al. 2018): the app's shipped
non-differentiable inference wrapper, and BPDA breaking it (Athalye et al.
2018)."""

from __future__ import annotations

import pytest
import torch

from explorer.core import attacks, data, models
from explorer.core.attacks.eot import marked_modules
from explorer.core.defenses import inference_wrappers, wrap, wrapper_spec
from explorer.core.defenses.bit_depth import BitDepth, Squeeze
from explorer.core.defenses.inference_wrap import (
    check_wrapper,
    needs_mix_set,
    wrap_model,
    wrap_model_job,
    wrapper_label,
    wrapper_note,
)
from explorer.core.jobs import run_to_end
from explorer.core.params import ParamError

EPS, STEPS = 0.1, 8


@pytest.fixture(scope="module")
def robust():
    return models.load_builtin("fmnist-cnn-pgdat").eval()


@pytest.fixture(scope="module")
def images():
    return data.load("fashion-mnist-mini", "test").as_tensors(0, 32)


def _acc(model, x, y) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


@pytest.mark.parametrize("bits", [1, 3, 5])
def test_output_is_the_classifier_on_the_rounded_input(robust, images, bits):
    x = images[0][:8]
    wrapped = wrap("bit-depth", robust, bits=bits).eval()
    levels = 2 ** bits - 1
    rounded = torch.round(x * levels) / levels
    with torch.no_grad():
        assert torch.equal(wrapped(x), robust(rounded))
        squeezed = wrapped.squeeze(x)
    assert len(torch.unique(squeezed)) <= 2 ** bits
    assert torch.allclose(squeezed * levels, torch.round(squeezed * levels))
    assert (squeezed - x).abs().max() <= 0.5 / levels + 1e-6
    assert not torch.equal(squeezed, x)  # the images have more than 2^bits levels


def test_eight_bits_keep_stored_images_as_they_are(images):
    x = images[0][:4]  # 8-bit images scaled to [0, 1]
    assert torch.allclose(Squeeze(8)(x), x, atol=1e-6)


def test_rounding_is_marked_for_bpda_and_its_gradient_is_zero(robust, images):
    wrapped = wrap("bit-depth", robust)  # default: 3 bits
    assert wrapped.bits == 3
    assert marked_modules(wrapped) == [wrapped.squeeze]
    x = images[0][:4].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(wrapped(x).sum(), x)
    assert grad.abs().sum() == 0  # shattered: no direction for an attack


def test_plain_pgd_stalls_and_bpda_identity_breaks_it(images):
    """Around the standard built-in, which PGD breaks at eps 0.1 when it has
    a gradient (the robust one holds most of these images whatever the
    attack, and would hide the contrast)."""
    x, y = images
    standard = models.load_builtin("fmnist-cnn-standard").eval()
    wrapped = wrap("bit-depth", standard, bits=3).eval()
    params = {"eps": EPS, "alpha": 2.5 * EPS / STEPS, "steps": STEPS}
    clean = _acc(wrapped, x, y)
    plain = _acc(wrapped, attacks.create("pgd", wrapped, **params)(x, y), y)
    through = _acc(wrapped, attacks.create("pgd", wrapped, bpda="identity",
                                           **params)(x, y), y)
    assert plain >= clean - 0.1  # zero gradients: PGD stays at its random start
    assert through < plain - 0.5  # BPDA's identity backward finds its way


def test_registered_next_to_mixup_inference_without_a_mixup_set(robust):
    assert inference_wrappers() == ["mixup-inference", "bit-depth"]
    assert [p.name for p in wrapper_spec("bit-depth")] == ["bits"]
    assert not needs_mix_set("bit-depth")
    assert needs_mix_set("mixup-inference")
    wrapped = wrap_model(robust, "bit-depth", {"bits": 4})
    assert isinstance(wrapped, BitDepth)
    assert wrapped.model is robust
    assert wrapped.meta is robust.meta
    assert wrapped.wrapper == {"name": "bit-depth", "params": {"bits": 4}}
    assert wrapper_label(wrapped.wrapper) == "bit-depth (4 bits)"
    assert wrapper_label({"name": "bit-depth", "params": {"bits": 1}}) == \
        "bit-depth (1 bit)"
    assert wrapper_label({"name": "mixup-inference", "params": {}}) == \
        "Mixup Inference"
    assert "BPDA" in wrapper_note("bit-depth")
    assert "EOT" in wrapper_note("mixup-inference")
    # the wrap job loads no data for it
    result = run_to_end(wrap_model_job(robust, "bit-depth", {}, data_name="nowhere",
                                       split="test"))
    assert result["wrapper"] == {"name": "bit-depth", "params": {"bits": 3}}
    assert isinstance(result["model"], BitDepth)


@pytest.mark.parametrize(("params", "needle"), [
    ({"bits": 0}, "bits must be in [1, 8], got 0"),
    ({"bits": 9}, "bits must be in [1, 8], got 9"),
    ({"bits": 2.5}, "bits must be an integer, got 2.5"),
    ({"bits": "many"}, "bits must be an integer, got 'many'"),
    ({"levels": 4}, "unknown parameter 'levels' (allowed: bits)"),
])
def test_bad_bits_are_named(robust, params, needle):
    with pytest.raises(ParamError) as caught:
        wrap("bit-depth", robust, **params)
    assert needle in str(caught.value)
    with pytest.raises(ParamError) as caught:
        check_wrapper("bit-depth", params)
    assert needle in str(caught.value)


def test_bad_bits_in_the_modules_themselves(robust):
    with pytest.raises(ParamError, match=r"bits must be in \[1, 8\], got 12"):
        BitDepth(robust, bits=12)
    with pytest.raises(ParamError, match="bit-depth wraps a model, got str"):
        BitDepth("model.pt")  # type: ignore[arg-type]
