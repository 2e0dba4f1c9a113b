"""The 2-D playground: training lowers the loss, snapshots, the job, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from explorer.core.defenses.playground import Learner, Playground, playground_job
from explorer.core.jobs import Done, Snapshot
from explorer.core.params import ParamError


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny MLPs gain nothing from intra-op threads; on a busy machine they
    only wait for each other."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def full_loss(pg: Playground, i: int = 0) -> float:
    with torch.no_grad():
        logits = pg.models[i].eval()(pg.points.view(-1, 2, 1, 1))
    pg.models[i].train()
    return F.cross_entropy(logits, pg.labels).item()


def test_a_few_steps_reduce_the_loss_on_moons():
    pg = Playground([Learner(hidden=16)], data="moons", n=200, grid=10, probes=0)
    before = full_loss(pg)
    pg.step(60)
    assert pg.steps == 60
    assert full_loss(pg) < 0.7 * before


def test_snapshot_of_two_models():
    state = torch.random.get_rng_state()
    pg = Playground([Learner(), Learner("pgd-at", {"eps": 0.05}, hidden=8,
                                        activation="silu")],
                    data="spirals", n=60, grid=12, probes=4, batch_size=16)
    assert torch.equal(torch.random.get_rng_state(), state)  # global RNG untouched
    pg.step(2)
    snap = pg.snapshot()
    a = snap.arrays
    assert snap.step == 2
    assert a["probs"].shape == (2, 12, 12, 3)
    assert torch.allclose(torch.from_numpy(a["probs"]).sum(-1), torch.ones(2, 12, 12))
    assert a["points"].shape == (60, 2)
    assert a["points"].min() > 0
    assert a["points"].max() < 1
    assert a["probe_adv"].shape == (2, 4, 2)
    assert a["probe_pred"].shape == a["probe_adv_pred"].shape == (2, 4)
    moved = abs(a["probe_adv"] - a["points"][a["probe_index"]][None])
    assert moved.max() <= 0.05 + 1e-6
    assert a["loss"].shape == a["acc"].shape == (2,)
    assert all(m.training for m in pg.models)
    pg.reset()
    assert pg.steps == 0


def test_job_snapshots_at_the_chosen_pace():
    pg = Playground(data="blobs", n=60, grid=5, probes=1)
    events = list(playground_job(pg, steps=10, steps_per_snapshot=4,
                                 max_interval=60.0))
    snaps = [e for e in events if isinstance(e, Snapshot)]
    assert [s.step for s in snaps] == [0, 4, 8, 10]
    assert isinstance(events[-1], Done)
    assert events[-1].results["steps"] == 10


@pytest.mark.parametrize(("learner", "params", "message"), [
    (Learner("mmc"), {}, "method must be one of standard, pgd-at"),
    (Learner(activation="tanh"), {}, "activation must be one of"),
    (Learner(), {"grid": 1}, "grid must be in \\[2, 400\\], got 1"),
    (Learner(), {"data": "swirl"}, "data must be one of moons"),
    (Learner("pgd-at", {"eps": 2.0}), {}, "eps must be in \\[0, 1\\], got 2"),
])
def test_bad_inputs(learner, params, message):
    with pytest.raises(ParamError, match=message):
        Playground([learner], **params)


def test_bad_job_arguments():
    pg = Playground(n=20, grid=2, probes=0)
    with pytest.raises(ParamError, match="steps_per_snapshot >= 1"):
        list(playground_job(pg, steps_per_snapshot=0))
