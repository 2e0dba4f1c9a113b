"""Every registered defense under two gloo processes (torchrun).

One torchrun subprocess runs this file as a script: both ranks train each
method (and one NoiLIn-wrapped method) for two global batches of a tiny MLP
through the real trainer, then compare their weights. A method either
trains (finite loss, weights changed, the ranks' weights and buffers equal
to the bit) or refuses up front with a ParamError naming why.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WRAPPED = "pgd-at+noilin"  # NoiLIn around PGD-AT
PROBE = "pgd-at/probe"  # linear probing: only the head trains
EXTRA = (WRAPPED, PROBE)


def _settings(name: str) -> dict:
    from explorer.core import defenses

    method = name.split("+")[0].split("/")[0]
    noilin = {} if "+" in name else None
    params = dict(defenses.create(method).cfg)
    for key in ("steps", "attack_steps", "inner_steps"):  # keep it quick
        if isinstance(params.get(key), int) and params[key] > 2:
            params[key] = 2
    return {"defense": method, "params": params, "noilin": noilin,
            **({"freeze": "features", "init_from": "tiny-mlp"} if name == PROBE
               else {})}


def _model(name: str):
    """A tiny seeded MLP; a small CNN with its CIFS block for CIFS."""
    import torch
    from tiny_nets import mlp

    from explorer.core import models

    if name != "cifs":
        return mlp(seed=0)
    torch.manual_seed(0)
    return models.create("small-cnn", in_shape=(1, 28, 28), cifs=True, width=4,
                         dense=16)


def _worker(out: Path) -> None:
    """Each rank: train every method for 2 batches; rank 0 writes the
    verdicts as JSON to ``out``."""
    import torch

    from explorer.core import data, defenses, distributed
    from explorer.core.data.base import ArrayDataset
    from explorer.core.defenses import TrainingConfig
    from explorer.core.jobs import Metric
    from explorer.core.params import ParamError

    world = distributed.setup("cpu")
    trained: list[tuple[torch.nn.Module, dict]] = []
    original = distributed.Replicas.__init__

    def spy(self, module, *args, **kwargs):  # the module the trainer trains
        trained.append((module, {k: v.detach().double().flatten().clone()
                                 for k, v in module.state_dict().items()}))
        original(self, module, *args, **kwargs)

    distributed.Replicas.__init__ = spy
    full = data.load("fashion-mnist-mini", "train")
    train_set = ArrayDataset(full.images[:32], full.labels[:32], full.classes,
                             full.info)
    test_set = data.load("fashion-mnist-mini", "test")
    verdicts = {}
    for name in [*defenses.names(), *EXTRA]:
        cfg = TrainingConfig(epochs=1, batch_size=16, lr=0.05, val_fraction=0,
                             augment="none", eval_n=4, eval_steps=1, eval_eps=0.1,
                             checkpoint_minutes=60, **_settings(name))
        model = _model(name)
        trained.clear()
        with tempfile.TemporaryDirectory() as run_dir:
            try:
                events = list(defenses.train(model, train_set, test_set, cfg,
                                             run_dir=run_dir, device="cpu",
                                             world=world))
            except ParamError as exc:
                verdicts[name] = {"refused": str(exc)}
                continue
            except Exception as exc:  # noqa: BLE001 - reported by the test
                verdicts[name] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
                continue
        module, before = trained[-1]
        state = {k: v.detach().double().flatten()
                 for k, v in module.state_dict().items()}
        flat = torch.cat(list(state.values()))
        ranks = world.gather(flat)
        losses = [e.value for e in events
                  if isinstance(e, Metric) and e.name in ("batch_loss", "train_loss")]
        changed = any(not torch.equal(before[k], state[k]) for k in before)
        verdicts[name] = {
            "losses": losses, "changed": changed,
            "rank_gap": float(max((r - ranks[0]).abs().max() for r in ranks)),
            "world_size": next(e.results["world_size"] for e in events
                               if type(e).__name__ == "Done")}
    if world.main:
        out.write_text(json.dumps(verdicts))
    distributed.shutdown()


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("ddp") / "verdicts.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EXPLORER_DIST_TIMEOUT": "60",
           "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone",
         "--nproc-per-node", "2", __file__, str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


def _names() -> list[str]:
    from explorer.core import defenses

    return [*defenses.names(), *EXTRA]


@pytest.mark.slow
@pytest.mark.parametrize("name", _names())
def test_every_defense_trains_on_two_processes_or_refuses(verdicts, name):
    verdict = verdicts[name]
    assert "error" not in verdict, verdict.get("error")
    if "refused" in verdict:  # up front, naming the method and why
        assert name.split("+")[0] in verdict["refused"]
        return
    assert verdict["world_size"] == 2
    assert verdict["losses"]
    assert all(math.isfinite(v) for v in verdict["losses"])
    assert verdict["changed"], "the weights did not move"
    assert verdict["rank_gap"] == 0.0, "the two ranks' models differ"


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
