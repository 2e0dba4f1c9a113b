"""Per-image random draws: an image's result does not depend on its batch or
shard, and shards' results merge into the whole set's (one process)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from explorer.cli import main
from explorer.cli.common import UsageError
from explorer.cli.eval_ranks import check_split
from explorer.core import attacks
from explorer.core.analysis.accuracy import clean_accuracy
from explorer.core.analysis.cascade import run_suite
from explorer.core.analysis.distance import minimal_distance
from explorer.core.analysis.sharding import (
    Shard,
    merge_clean,
    merge_min_eps,
    merge_suite,
)
from explorer.core.attacks import draws
from explorer.core.distributed import World
from explorer.core.jobs import Done

N = 24


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(),
                         nn.Linear(32, 10)).eval()


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(N, 1, 8, 8, generator=g)
    y = _net()(x).argmax(1)  # all correct, so every image is attacked
    y[::5] = (y[::5] + 1) % 10  # and a few are misclassified
    return x, y


def _done(events) -> dict:
    return next(e.results for e in events if isinstance(e, Done))


# Square with few queries: which images it breaks hangs on its random draws
SUITE = {"suite": "custom", "attacks": ["square"], "budgets": [0.03],
         "steps": 2, "queries": 20, "seed": 3}
STANDARD = {"suite": "standard", "eps": 0.05, "steps": 3, "queries": 40,
            "n_targets": 2, "seed": 3}


def test_the_suite_gives_each_image_the_same_result_at_any_batch_size():
    x, y = _data()
    small = _done(run_suite(_net(), x, y, batch_size=4, **SUITE))
    whole = _done(run_suite(_net(), x, y, batch_size=N, **SUITE))
    assert small["robust"] == whole["robust"]
    assert small["per_attack"] == whole["per_attack"]
    assert 0 < sum(whole["robust"]) < N  # some broken, some not: a real check


def test_without_ids_the_batch_decides_the_draws():
    # What the suite did before: Square's draws per batch differ by batch size.
    x, y = _data()
    atk = attacks.create("square", _net(), seed=3, eps=0.05, queries=20)
    per_batch = torch.cat([atk(x[i:i + 4], y[i:i + 4]) for i in range(0, N, 4)])
    assert not torch.equal(per_batch, atk(x, y))
    ids = torch.arange(N)
    per_image = torch.cat([atk(x[i:i + 4], y[i:i + 4], ids=ids[i:i + 4])
                           for i in range(0, N, 4)])
    assert torch.equal(per_image, atk(x, y, ids=ids))


@pytest.mark.parametrize(("name", "params"), [
    ("pgd", {"eps": 0.05, "steps": 3}),
    ("apgd-ce", {"eps": 0.05, "steps": 3, "restarts": 2}),
    ("fab", {"eps": 0.05, "steps": 3, "restarts": 2}),
    ("square", {"eps": 1.0, "norm": "l2", "queries": 20}),
    ("pgd", {"eps": 0.05, "steps": 2, "targeted": "random"}),
])
def test_attacks_with_ids_do_not_depend_on_the_split(name, params):
    x, y = _data()
    atk = attacks.create(name, _net(), seed=5, **params)
    ids = torch.arange(100, 100 + N)
    parts = [atk(x[i:i + 7], y[i:i + 7], ids=ids[i:i + 7]) for i in range(0, N, 7)]
    torch.testing.assert_close(torch.cat(parts), atk(x, y, ids=ids), rtol=0,
                               atol=1e-6)


def test_ids_must_match_the_images():
    x, y = _data()
    with pytest.raises(ValueError, match="one index per image"):
        attacks.create("pgd", _net(), eps=0.1)(x, y, ids=torch.arange(3))


def test_per_image_draws_are_uniform_and_advance_only_the_rows_drawn():
    rng = draws.ImageDraws(7, torch.arange(4000), "cpu")
    u = draws.rand((4000, 8), rng, device="cpu")
    assert float(u.min()) >= 0
    assert float(u.max()) < 1
    assert abs(float(u.mean()) - 0.5) < 0.01
    z = draws.randn((4000, 8), rng, device="cpu")
    assert abs(float(z.mean())) < 0.03
    assert abs(float(z.std()) - 1) < 0.03
    k = draws.randint(2, 5, (4000,), rng, device="cpu")
    assert set(k.unique().tolist()) == {2, 3, 4}
    # image 3's next draw is the same whether or not the others draw too
    a, b = draws.ImageDraws(7, torch.arange(6), "cpu"), draws.ImageDraws(
        7, torch.tensor([3]), "cpu")
    draws.rand((2, 5), draws.rows(a, torch.tensor([0, 3])), device="cpu")
    draws.rand((1, 5), b, device="cpu")
    assert torch.equal(draws.rand((6, 5), a, device="cpu")[3],
                       draws.rand((1, 5), b, device="cpu")[0])


def _shards(n: int, size: int) -> list[range]:
    return [World(r, size, r, "gloo").shard(n) for r in range(size)]


@pytest.mark.parametrize("suite", [SUITE, STANDARD])
def test_shard_results_merge_into_the_whole_sets(suite):
    x, y = _data()
    whole = _done(run_suite(_net(), x, y, batch_size=5, **suite))
    parts = [_done(run_suite(_net(), x[s.start:s.stop], y[s.start:s.stop],
                             batch_size=5, ids=torch.arange(s.start, s.stop),
                             **suite)) for s in _shards(N, 3)]
    merged = merge_suite(parts)
    for key in ("robust", "clean_acc", "robust_acc", "per_attack", "attacked", "n",
                "per_budget"):
        assert merged.get(key) == whole.get(key), key


def test_minimal_eps_and_clean_accuracy_merge_from_shards():
    x, y = _data()
    data = torch.utils.data.TensorDataset(x, y)
    # a short search, so the PGD random starts decide some distances
    kw = {"search_steps": 4, "pgd_steps": 2, "deepfool_steps": 2, "seed": 2}
    whole = _done(minimal_distance(_net(), data, n=None, batch_size=N, **kw))
    small = _done(minimal_distance(_net(), data, n=None, batch_size=4, **kw))
    # The same draws per image; what is left is float rounding of the
    # matrix products, which BLAS blocks differently for other batch shapes.
    close = {"rtol": 1e-5, "atol": 1e-7}
    np.testing.assert_array_equal(small["broken"], whole["broken"])
    np.testing.assert_allclose(small["distances"], whole["distances"], **close)
    parts = [_done(minimal_distance(_net(), Shard(data, s), n=None, batch_size=5,
                                    first=s.start, **kw)) for s in _shards(N, 2)]
    merged = merge_min_eps(parts)
    for key in ("broken", "correct"):
        np.testing.assert_array_equal(merged[key], whole[key])
    np.testing.assert_allclose(merged["distances"], whole["distances"], **close)
    assert merged["median"] == pytest.approx(whole["median"], rel=1e-5)
    assert merged["n_unbroken"] == whole["n_unbroken"]
    clean = _done(clean_accuracy(_net(), data, batch_size=5))
    shards = [_done(clean_accuracy(_net(), Shard(data, s), batch_size=5))
              for s in _shards(N, 2)]
    merged_clean = merge_clean(shards)
    assert merged_clean["clean_acc"] == clean["clean_acc"]
    assert merged_clean["confusion"] == clean["confusion"]


def test_too_few_images_for_the_processes_is_one_clear_error():
    check_split(World(0, 2, 0, "gloo"), 2)
    with pytest.raises(UsageError, match="1 images cannot be split over 2"):
        check_split(World(0, 2, 0, "gloo"), 1)


@pytest.mark.parametrize(("flag", "words"), [
    (["--corruptions"], "--corruptions"),
    (["--transfer", "--model", "fmnist-cnn-pgdat"], "--transfer"),
])
def test_unsplit_flags_refuse_under_torchrun(monkeypatch, capsys, tmp_path, flag,
                                             words):
    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun starts each rank
    code = main(["--workspace", str(tmp_path / "ws"), "eval", "--model",
                 "fmnist-cnn-standard", "--images", "8", *flag])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    assert words in err[0]
    assert "torchrun" in err[0]
    assert not (tmp_path / "ws").exists()  # refused before any work


def test_per_image_flags_in_the_result_line(capsys, tmp_path):
    assert main(["--workspace", str(tmp_path / "ws"), "eval", "--model",
                 "fmnist-cnn-standard", "--suite", "quick", "--steps", "2",
                 "--eps", "0.02", "--images", "12", "--per-image", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["world_size"] == 1
    assert len(result["robust"]) == 12
    assert sum(result["robust"]) == round(12 * result["robust_acc"])
    code = main(["--workspace", str(tmp_path / "ws"), "eval", "--model",
                 "fmnist-cnn-standard", "--per-image"])
    assert code == 2
    assert "--per-image needs --suite" in capsys.readouterr().err
