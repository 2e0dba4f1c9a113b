"""Saving and loading: safetensors, state_dicts, TorchScript, and bad files."""

import pickle
import warnings

import pytest
import torch
from safetensors.torch import save_file

from explorer.core import models
from explorer.core.models.files import META_KEY

TINY = {
    "mlp": {"hidden": 16, "depth": 1},
    "small-cnn": {"width": 4, "dense": 16},
    "lenet5": {},
    "preact-resnet18": {"width": 4},
    "wide-resnet": {"depth": 10, "widen_factor": 1},
}


def _trained_a_little(model):
    """Move BatchNorm statistics away from their initial values."""
    model.train()
    with torch.no_grad():
        model(torch.rand(8, *model.meta.in_shape))
    return model.eval()


@pytest.mark.parametrize("arch", sorted(TINY))
def test_safetensors_round_trip(arch, tmp_path):
    model = models.create(
        arch,
        in_shape=(3, 32, 32),
        num_classes=5,
        mean=(0.1, 0.2, 0.3),
        std=(0.3, 0.2, 0.1),
        classes=("a", "b", "c", "d", "e"),
        dataset="toy",
        **TINY[arch],
    )
    model.meta.training = {"method": "standard", "epochs": 2, "accuracy": 0.5}
    _trained_a_little(model)
    path = models.save(model, tmp_path / "m.safetensors")
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temp left

    loaded = models.load(path)
    assert not loaded.training
    x = torch.rand(4, 3, 32, 32)
    assert torch.equal(loaded(x), model(x))
    assert torch.equal(loaded.features(x), model.features(x))
    meta = loaded.meta
    assert meta.arch == arch
    assert meta.arch_params == model.meta.arch_params
    assert meta.in_shape == (3, 32, 32)
    assert meta.classes == ("a", "b", "c", "d", "e")
    assert meta.mean == (0.1, 0.2, 0.3)
    assert meta.std == (0.3, 0.2, 0.1)
    assert meta.dataset == "toy"
    assert meta.training == {"method": "standard", "epochs": 2, "accuracy": 0.5}
    assert meta.format == "safetensors"
    assert meta.source == str(path)


def test_a_safetensors_header_of_128_modulo_256_bytes_loads(tmp_path):
    """Its first byte is then 0x80, a pickle's: still read as safetensors."""
    model = models.create("mlp", in_shape=(1, 28, 28), hidden=8, depth=1)
    path = tmp_path / "m.safetensors"
    for pad in range(256):
        model.meta.training = {"note": "x" * pad}
        models.save(model, path)
        if path.read_bytes()[0] == 0x80:
            break
    assert path.read_bytes()[0] == 0x80
    assert models.load(path).meta.training == model.meta.training


def test_meta_json_round_trip():
    meta = models.create("lenet5", classes=tuple("abcdefghij")).meta
    again = models.ModelMeta.from_json(meta.to_json())
    assert again == meta
    with pytest.raises(models.ModelError, match="JSON"):
        models.ModelMeta.from_json("{not json")
    with pytest.raises(models.ModelError, match="arch"):
        models.ModelMeta.from_json('{"num_classes": 3}')


@pytest.mark.parametrize("nesting", [None, "state_dict", "model"])
def test_state_dict_checkpoint_with_arch(nesting, tmp_path):
    model = models.create("small-cnn", mean=(0.3,), std=(0.4,), **TINY["small-cnn"])
    state = model.state_dict()
    obj = state if nesting is None else {nesting: state, "epoch": 7}
    torch.save(obj, tmp_path / "ckpt.pth")
    loaded = models.load(
        tmp_path / "ckpt.pth", arch="small-cnn", arch_params=TINY["small-cnn"]
    )
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(loaded(x), model.eval()(x))
    assert loaded.meta.format == "state_dict"
    assert loaded.meta.mean == (0.3,)
    assert loaded.meta.num_classes == 10


def test_state_dict_without_normalisation_and_with_module_prefix(tmp_path):
    model = models.create("lenet5", in_shape=(3, 32, 32), num_classes=4)
    state = {
        f"module.{k}": v for k, v in model.state_dict().items() if "normalize" not in k
    }
    torch.save(state, tmp_path / "dp.pt")
    loaded = models.load(tmp_path / "dp.pt", arch="lenet5", mean=(0.5,), std=(0.25,))
    assert loaded.meta.in_shape == (3, 32, 32)  # guessed from the first conv
    assert loaded.meta.num_classes == 4  # read from the head
    assert loaded.normalize.values() == ((0.5,), (0.25,))


def test_legacy_torch_save_format(tmp_path):
    model = models.create("lenet5")
    path = tmp_path / "old.pt"
    torch.save(model.state_dict(), path, _use_new_zipfile_serialization=False)
    loaded = models.load(path, arch="lenet5")
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(loaded(x), model.eval()(x))


def test_state_dict_without_arch_says_arch_is_needed(tmp_path):
    torch.save(models.create("lenet5").state_dict(), tmp_path / "w.pt")
    with pytest.raises(models.ModelError) as err:
        models.load(tmp_path / "w.pt")
    message = str(err.value)
    assert "w.pt" in message
    assert "--arch" in message
    for arch in models.names():
        assert arch in message


def test_key_mismatch_names_the_file_and_keys(tmp_path):
    torch.save(models.create("lenet5").state_dict(), tmp_path / "lenet.pt")
    with pytest.raises(
        models.ModelError, match=r"lenet\.pt.*(missing|unexpected) keys"
    ):
        models.load(tmp_path / "lenet.pt", arch="small-cnn")


def test_shape_mismatch_names_the_shapes(tmp_path):
    model = models.create("small-cnn", width=4, dense=16)
    torch.save(model.state_dict(), tmp_path / "w4.pt")
    with pytest.raises(models.ModelError) as err:
        models.load(tmp_path / "w4.pt", arch="small-cnn", arch_params={"width": 8})
    assert "w4.pt" in str(err.value)
    assert "'body.0.weight' is 4×1×3×3 in the file but 8×1×3×3" in str(err.value)


def test_safetensors_without_explorer_metadata(tmp_path):
    model = models.create("lenet5")
    save_file(model.state_dict(), str(tmp_path / "plain.safetensors"))
    with pytest.raises(models.ModelError, match="--arch"):
        models.load(tmp_path / "plain.safetensors")
    loaded = models.load(tmp_path / "plain.safetensors", arch="lenet5")
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(loaded(x), model.eval()(x))


@pytest.mark.parametrize(
    ("header", "match"),
    [
        ("{broken", "not valid JSON"),
        ('{"arch": "lenet5", "colour": 1}', "colour"),
        ('{"arch": "nope"}', "unknown architecture"),
    ],
)
def test_bad_metadata_is_reported(header, match, tmp_path):
    path = tmp_path / "bad-meta.safetensors"
    save_file(
        models.create("lenet5").state_dict(), str(path), metadata={META_KEY: header}
    )
    with pytest.raises(models.ModelError, match=rf"bad-meta\.safetensors.*{match}"):
        models.load(path)


def _scripted(model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.script(model)


def test_torchscript_round_trip(tmp_path):
    model = models.create("lenet5").eval()
    path = tmp_path / "scripted.pt"
    _scripted(model).save(str(path))
    loaded = models.load(path)
    x = torch.rand(3, 1, 28, 28)
    torch.testing.assert_close(loaded(x), model(x))
    torch.testing.assert_close(loaded.features(x), model.features(x))
    assert loaded.meta.format == "torchscript"
    assert loaded.meta.in_shape is None
    assert isinstance(next(iter(loaded.children())), models.Normalize)

    sized = models.load(path, in_shape=(1, 28, 28))
    assert sized.meta.num_classes == 10  # found by one forward pass


def test_torchscript_with_stored_metadata(tmp_path):
    model = models.create("lenet5", classes=tuple("abcdefghij")).eval()
    path = tmp_path / "with-meta.pt"
    extra = {"explorer_meta.json": model.meta.to_json()}
    _scripted(model).save(str(path), _extra_files=extra)
    loaded = models.load(path)
    assert loaded.meta.in_shape == (1, 28, 28)
    assert loaded.meta.classes == tuple("abcdefghij")
    assert loaded.meta.format == "torchscript"


class WritesAFile:
    """Unpickling this creates ``target``: the proof that code ran."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


@pytest.mark.parametrize("style", ["torch-zip", "torch-legacy", "plain-pickle"])
def test_malicious_pickle_is_refused_and_never_run(style, tmp_path):
    target = tmp_path / "pwned.txt"
    payload = {"weight": torch.zeros(2), "evil": WritesAFile(target)}
    path = tmp_path / "evil.pt"
    if style == "plain-pickle":
        path.write_bytes(pickle.dumps(payload, protocol=2))
    else:
        torch.save(payload, path, _use_new_zipfile_serialization=style == "torch-zip")
    assert not target.exists()
    with pytest.raises(models.ModelError) as err:
        models.load(path, arch="lenet5")
    assert "evil.pt" in str(err.value)
    assert "refused: it contains Python objects that could run code" in str(err.value)
    assert not target.exists()


def test_pickled_whole_module_is_refused(tmp_path):
    torch.save(models.create("lenet5"), tmp_path / "whole.pt")
    with pytest.raises(models.ModelError, match=r"whole\.pt: refused"):
        models.load(tmp_path / "whole.pt", arch="lenet5")


def _write(path, data):
    path.write_bytes(data)
    return path


def _truncated(tmp_path, keep):
    path = tmp_path / "cut.safetensors"
    models.save(models.create("lenet5"), path)
    data = path.read_bytes()
    path.write_bytes(data[: keep(len(data))])
    return path


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: p / "missing.pt", "no such file"),
        (lambda p: p, "is a directory"),
        (lambda p: _write(p / "empty.pt", b""), "empty"),
        (lambda p: _write(p / "junk.bin", b"not weights" * 9), "not a model file"),
        (lambda p: _write(p / "junk.pt", b"\x80\x02junk" * 9), "corrupt"),
        (lambda p: _write(p / "fake.pt", b"PK\x03\x04" + b"0" * 99), "zip"),
        (lambda p: _truncated(p, lambda n: n // 2), "corrupt safetensors"),
        (lambda p: _truncated(p, lambda n: 60), "truncated safetensors"),
    ],
)
def test_bad_files_are_named(make, match, tmp_path):
    path = make(tmp_path)
    with pytest.raises(models.ModelError) as err:
        models.load(path)
    assert str(path) in str(err.value)
    assert match in str(err.value)


def test_truncated_checkpoint_is_named(tmp_path):
    path = tmp_path / "cut.pt"
    torch.save(models.create("lenet5").state_dict(), path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(models.ModelError, match=r"cut\.pt: .*(corrupt|truncated)"):
        models.load(path, arch="lenet5")


def test_unknown_arch_argument(tmp_path):
    torch.save(models.create("lenet5").state_dict(), tmp_path / "w.pt")
    with pytest.raises(models.ModelError, match="unknown architecture 'resnet-1000'"):
        models.load(tmp_path / "w.pt", arch="resnet-1000")
