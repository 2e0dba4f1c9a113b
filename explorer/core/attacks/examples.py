"""Adversarial examples on disk; perturbation norms and the budget guard.

``save_examples`` writes, atomically: ``examples.npz`` (arrays plus the attack
config as a JSON string), one PNG per image (original | amplified
perturbation | adversarial, scaled ×4) and ``config.json``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image as PILImage
from PIL.PngImagePlugin import PngInfo

from explorer.core.fileio import atomic_path, atomic_save, atomic_write_json

if TYPE_CHECKING:
    from explorer.core.attacks.base import Attack

SCALE = 4
NORMS = ("linf", "l2", "l1")
# Absolute for eps <= 1, relative above (float32 sums of large l1/l2 budgets).
BUDGET_TOLERANCE = 1e-5
ARRAY_KEYS = ("x", "x_adv", "y", "pred_clean", "pred_adv")


def _float64(a: Any) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=np.float64)


def perturbation_norms(x: Any, x_adv: Any) -> dict[str, np.ndarray]:
    """Per-sample ``linf``, ``l2`` and ``l1`` norms of ``x_adv - x`` (float64).

    Accepts tensors (any device) or arrays of shape (B, ...). Computed in
    float64 so that the budget check does not see its own rounding.
    """
    delta = (_float64(x_adv) - _float64(x)).reshape(len(x), -1)
    return {"linf": np.abs(delta).max(1, initial=0.0),
            "l2": np.sqrt((delta**2).sum(1)), "l1": np.abs(delta).sum(1)}


def check_budget(
    atk: Attack, x: torch.Tensor, x_adv: torch.Tensor
) -> dict[str, np.ndarray]:
    """Per-image norms of ``x_adv - x``; RuntimeError if the result is NaN,
    leaves [0, 1] or exceeds ``atk.budget()`` (norms other than l-inf, l2, l1
    are not checked). Guards against "succeeding" by leaving the budget."""
    adv = x_adv.detach()
    if not bool(torch.isfinite(adv).all()):
        raise RuntimeError(f"attack {atk.name} returned NaN or infinite pixels")
    lo, hi = float(adv.min()), float(adv.max())
    if lo < 0.0 or hi > 1.0:
        raise RuntimeError(f"attack {atk.name} left the pixel range [0, 1] "
                           f"(values from {lo:.6g} to {hi:.6g})")
    norms = perturbation_norms(x, adv)
    budget = atk.budget()
    if budget is not None and budget[0] in NORMS:
        norm, eps = budget
        size = norms[norm]
        worst = int(np.argmax(size)) if size.size else 0
        if size.size and size[worst] > eps + BUDGET_TOLERANCE * max(1.0, eps):
            raise RuntimeError(
                f"attack {atk.name} left its budget: {norm} norm "
                f"{size[worst]:.6g} > eps {eps:.6g} (image {worst} of the batch)"
            )
    return norms


def _to_uint8(img: np.ndarray) -> np.ndarray:
    """(C, H, W) in [0, 1] -> (H, W) or (H, W, C) uint8."""
    out = np.round(np.clip(img, 0.0, 1.0) * 255).astype(np.uint8)
    return out[0] if out.shape[0] == 1 else out.transpose(1, 2, 0)


def triplet_image(x: np.ndarray, x_adv: np.ndarray) -> tuple[PILImage.Image, float]:
    """Original | perturbation | adversarial, side by side, ×4 nearest.

    The perturbation is mid-grey plus the difference amplified so that its
    largest entry reaches black or white; returns the image and the factor.
    """
    delta = x_adv - x
    peak = float(np.abs(delta).max())
    gain = 0.5 / peak if peak > 0 else 1.0
    gap = np.ones((x.shape[0], x.shape[1], 1))
    panels = np.concatenate([x, gap, 0.5 + gain * delta, gap, x_adv], axis=2)
    img = PILImage.fromarray(_to_uint8(panels))
    return img.resize((img.width * SCALE, img.height * SCALE),
                      PILImage.Resampling.NEAREST), gain


def _name(k: Any, classes) -> str:
    k = int(k)
    return str(classes[k]) if classes is not None and 0 <= k < len(classes) else str(k)


def save_examples(
    run_dir: str | os.PathLike[str],
    results: dict[str, Any],
    *,
    classes: Any = None,
) -> list[Path]:
    """Write the examples held in ``results`` (from ``attack_live``, or
    ``attack_dataset`` with ``keep_examples``) into ``run_dir``.

    ``examples.npz``: ``x``, ``x_adv`` float32, ``y``, ``pred_clean``,
    ``pred_adv``, ``target`` int64 (-1 where untargeted) and ``config`` (a
    JSON string: attack, params, classes); ``example_000.png``...; and
    ``config.json``. Give it a folder of its own (e.g. ``run_dir/examples``):
    a workspace run folder already holds the run's own ``config.json``.
    Returns the paths written.
    """
    missing = [k for k in ARRAY_KEYS if results.get(k) is None]
    if missing:
        raise ValueError(f"results lack {', '.join(missing)}: no examples to save")
    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    x = _float64(results["x"]).astype(np.float32)
    x_adv = _float64(results["x_adv"]).astype(np.float32)
    ints = {k: np.asarray(results[k], dtype=np.int64)
            for k in ("y", "pred_clean", "pred_adv")}
    target = results.get("target")
    ints["target"] = (np.full(len(x), -1, dtype=np.int64) if target is None
                      else np.asarray(target, dtype=np.int64))
    config = {"attack": results.get("attack"), "params": results.get("params", {}),
              "classes": None if classes is None else [str(c) for c in classes],
              "count": len(x)}
    config.update({k: v for k, v in results.items()
                   if isinstance(v, float | int | str) and k not in config})
    paths = [folder / "examples.npz"]
    with atomic_path(paths[0]) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, x=x, x_adv=x_adv, config=np.array(json.dumps(
            config, sort_keys=True, default=str)), **ints)
    if x.ndim == 4 and x.shape[1] in (1, 3):
        for i in range(len(x)):
            img, gain = triplet_image(x[i], x_adv[i])
            info = PngInfo()
            caption = (f"true: {_name(ints['y'][i], classes)}; clean: "
                       f"{_name(ints['pred_clean'][i], classes)}; adversarial: "
                       f"{_name(ints['pred_adv'][i], classes)}")
            if ints["target"][i] >= 0:
                caption += f"; target: {_name(ints['target'][i], classes)}"
            info.add_text("Description", f"{caption}; perturbation x{gain:.3g}")
            path = folder / f"example_{i:03d}.png"
            atomic_save(path, lambda tmp, img=img, info=info: img.save(
                tmp, format="PNG", pnginfo=info))
            paths.append(path)
    paths.append(atomic_write_json(folder / "config.json", config))
    return paths
