"""Square Attack's l-inf move and its packed working set."""

from __future__ import annotations

import pytest
import torch

from explorer.core import attacks
from explorer.core.attacks.square_steps import propose_linf, stripes_init


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("p", [0.8, 0.05, 0.001])
def test_linf_proposal_changes_one_square_inside_the_budget(channels, p):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(64, channels, 12, 10, generator=gen)
    x_best = stripes_init(x, 0.1, gen)
    for _ in range(20):
        x_new = propose_linf(x, x_best, 0.1, p, gen)
        assert (x_new - x).abs().max() <= 0.1 + 1e-7
        assert x_new.min() >= 0
        assert x_new.max() <= 1
        changed = (x_new != x_best).any(1)  # B×H×W
        # every sample changes (the paper redraws signs that change nothing) ...
        assert changed.flatten(1).any(1).all()
        # ... and only inside one square: the changed pixels' bounding box
        side = max(round((p * 12 * 10) ** 0.5), 1)
        for row in changed:
            rows, cols = row.nonzero(as_tuple=True)
            assert int(rows.max() - rows.min()) < side
            assert int(cols.max() - cols.min()) < side
        x_best = x_new


def test_linf_proposal_flips_signs_that_would_change_nothing():
    """Single-pixel squares on an image already at +eps everywhere: half the
    first draws would change nothing; every sample must end at -eps there."""
    gen = torch.Generator().manual_seed(1)
    x = torch.full((200, 1, 5, 5), 0.5)
    x_best = x + 0.1
    x_new = propose_linf(x, x_best, 0.1, 1 / 25, gen)
    moved = (x_new != x_best).flatten(1)
    assert (moved.sum(1) == 1).all()
    assert torch.allclose(x_new.flatten(1)[moved], torch.full((200,), 0.4))


@pytest.mark.parametrize("live", [False, True])
def test_square_keeps_each_samples_own_state(live):
    """The packed working set writes every sample back to its own row: the
    reported logits are the model's on the reported images, fooled rows stay
    fooled, and the live iterates agree with the fast path."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3)).eval()
    x = torch.rand(24, 1, 8, 8)
    y = model(x).argmax(1)
    atk = attacks.create("square", model, eps=0.04, queries=80, seed=3)
    steps = list(atk.run(x, y)) if live else [atk.result(x, y)]
    last = steps[-1]
    with torch.no_grad():
        logits = model(last.x_adv)
    assert (last.x_adv - x).abs().max() <= 0.04 + 1e-6
    assert torch.allclose(last.logits, logits, atol=1e-5)
    fooled = logits.argmax(1) != y
    assert fooled.any()
    assert not fooled.all()
    assert torch.equal(last.success, fooled)
    if live:
        assert torch.equal(last.x_adv, atk.result(x, y).x_adv)
        for step in steps[:-1]:  # live copies are consistent too
            with torch.no_grad():
                assert torch.allclose(model(step.x_adv), step.logits, atol=1e-5)
