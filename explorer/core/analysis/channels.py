"""CIFS channel importances of one image, clean vs adversarial.

For a model with a CIFS block (``explorer.core.models.cifs``) the block's mask
rates each channel of its stage; this job reads it for an image and for the
image's PGD example at ``eps``, so one sees which channels the attack
promotes or suppresses. Channels are ordered by their clean importance.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor, nn

from explorer.core import attacks
from explorer.core.analysis.result_files import RESULT
from explorer.core.device import device_of
from explorer.core.inference import model_frozen
from explorer.core.jobs import CancelToken, Done, Event, Progress
from explorer.core.jobs import Snapshot as SnapshotEvent
from explorer.core.models import cifs
from explorer.core.params import ParamError

NO_BLOCK = ("This model has no CIFS block: train one with the cifs defense (or "
            "an architecture with arch param cifs=true) to see channel "
            "importances.")


def channel_importance_job(
    model: nn.Module,
    x: Tensor,
    y: int,
    *,
    eps: float = 0.1,
    steps: int = 10,
    seed: int = 0,
    token: CancelToken | None = None,
) -> Iterator[Event]:
    """Image ``x`` (C×H×W) with label ``y``. Snapshot ``result`` (kind
    ``channels``): ``clean`` and ``adv`` masks (channels,), ``order`` (channel
    indices by decreasing clean importance), ``label``, ``pred_clean``,
    ``pred_adv``, ``image``, ``x_adv``."""
    token = token or CancelToken()
    if not cifs.blocks(model):
        raise ParamError(NO_BLOCK)
    if not 0 < eps <= 1:
        raise ParamError(f"eps must be in (0, 1], got {eps:g}")
    if steps < 1:
        raise ParamError(f"steps must be at least 1, got {steps}")
    if x.dim() != 3:
        raise ParamError(f"the image must be C×H×W, got shape {tuple(x.shape)}")
    started = time.perf_counter()
    device = device_of(model)
    xb = x.unsqueeze(0).float().to(device)
    yb = torch.tensor([int(y)], device=device)
    yield Progress(0, 2, "attack")
    atk = attacks.create("pgd", model, seed=seed, eps=eps, steps=steps,
                         alpha=2.5 * eps / steps)
    x_adv = atk(xb, yb).detach()
    token.check()
    yield Progress(1, 2, "importances")
    masks = cifs.channel_importance(model, torch.cat([xb, x_adv]))
    with model_frozen(model), torch.no_grad():
        preds = model(torch.cat([xb, x_adv])).argmax(1).cpu()
    clean, adv = masks[0].numpy(), masks[1].numpy()
    order = np.argsort(-clean, kind="stable")
    result = {"kind": "channels", "clean": clean, "adv": adv, "order": order,
              "label": np.array(int(y)), "pred_clean": np.array(int(preds[0])),
              "pred_adv": np.array(int(preds[1])),
              "image": x.float().cpu().numpy(),
              "x_adv": x_adv[0].float().cpu().numpy()}
    yield Progress(2, 2, "importances")
    yield SnapshotEvent(1, 1, result, RESULT)
    change = np.abs(adv - clean)
    yield Done({"seconds": time.perf_counter() - started,
                "channels": len(clean), "eps": eps,
                "pred_clean": int(preds[0]), "pred_adv": int(preds[1]),
                "largest_change": float(change.max()),
                "most_changed_channel": int(change.argmax())})
