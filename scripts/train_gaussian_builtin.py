"""Train the built-in ``fmnist-cnn-gaussian``: the base classifier of a
randomized-smoothing model (Cohen et al. 2019), with the app's own trainer.

    python scripts/train_gaussian_builtin.py                  # mini train split
    python scripts/train_gaussian_builtin.py --idx-dir DIR    # official 60k

small-cnn as ``fmnist-cnn-standard`` (width 16, dense 256) trained with the
``gaussian`` defense: cross-entropy on x + N(0, σ²) noise, σ = 0.25 by
default, Adam. The training images are the bundled mini train split (6,000),
or the official Fashion-MNIST training set from its IDX files with
``--idx-dir``. The trainer holds out ``--val-n`` of them (a seeded draw) and
chooses the best epoch on those held-out training images, never on test
images (PGD l-inf at ``--select-eps`` on the held-out images: how much a
small worst-case change moves the base classifier under noise training).
The result is saved to ``explorer/resources/models/`` with its metadata;
``--certify N`` measures its certified accuracy on the first N mini test
images (n0 100, n 1000, alpha 0.001), prints it and keeps it in the model
card (measured after the choice; it chooses nothing).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import tempfile
import time
from pathlib import Path

import torch
from official_data import official_train, train_printing

from explorer.core import data, defenses, models
from explorer.core.certify.smoothing import DEFAULT_RADII, certify_job
from explorer.core.jobs import run_to_end
from explorer.core.resources import resource_path

NAME = "fmnist-cnn-gaussian"



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idx-dir", type=Path, default=None,
                        help="folder of the official IDX files (default: the "
                             "bundled mini train split)")
    parser.add_argument("--sigma", type=float, default=0.25)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--val-n", type=int, default=1000)
    parser.add_argument("--select-eps", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--certify", type=int, default=100, metavar="N",
                        help="certify the first N mini test images after "
                             "training (0: skip)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.idx_dir is not None:
        train_set, source = official_train(args.idx_dir), "official Fashion-MNIST train"
    else:
        train_set, source = data.load("fashion-mnist-mini", "train"), \
            "fashion-mnist-mini train"
    test_set = data.load("fashion-mnist-mini", "test")
    info = test_set.info
    model = models.create("small-cnn", in_shape=info.shape,
                          num_classes=len(info.classes), mean=info.mean,
                          std=info.std, classes=info.classes,
                          dataset="fashion-mnist")
    out = args.out or resource_path("models", f"{NAME}.safetensors")
    run_dir = Path(tempfile.mkdtemp(prefix="gaussian-builtin-"))
    started = time.perf_counter()
    config = defenses.TrainingConfig(
        defense="gaussian", params={"sigma": args.sigma}, epochs=args.epochs,
        batch_size=128, optimizer="adam", lr=args.lr, weight_decay=0.0,
        augment="none", seed=args.seed, eval_eps=args.select_eps, eval_steps=5,
        eval_n=500, val_fraction=args.val_n / len(train_set), val_max=args.val_n)
    result = train_printing(model, train_set, test_set, config, run_dir)
    best = models.load(run_dir / "best.safetensors")
    certified = {}
    if args.certify:  # measured on the mini test split, after the choice
        r = run_to_end(certify_job(best, test_set, args.certify, sigma=args.sigma,
                                   radii=DEFAULT_RADII))
        certified = {"certified_acc_mini_test": {
            "n_images": r["n"], "samples0": r["samples0"], "samples": r["samples"],
            "alpha": r["alpha"],
            "by_radius": {f"{k:g}": round(v, 4) for k, v in r["certified_acc"].items()},
            "abstain_rate": round(r["abstain_rate"], 4)}}
        curve = ", ".join(f"r={k:g}: {100 * v:.0f}%"
                          for k, v in r["certified_acc"].items())
        print(f"certified accuracy on the first {r['n']} mini test images "
              f"(sigma {args.sigma:g}, n0 100, n 1000, alpha 0.001): {curve}; "
              f"abstain {100 * r['abstain_rate']:.0f}%, {r['seconds']:.0f} s")
    meta = dataclasses.replace(best.meta, training={
        **best.meta.training, "script": "scripts/train_gaussian_builtin.py",
        "sigma": args.sigma,
        "train_set": f"{source} less {args.val_n} held out",
        "selection": f"PGD-5 l-inf eps {args.select_eps:g} on the first "
                     f"{min(500, args.val_n):,} of the {args.val_n:,} held-out "
                     f"training images",
        "architecture": "small-cnn width 16 (conv 16-32-64), dense 256",
        "recipe": f"Gaussian noise augmentation sigma {args.sigma:g} (Cohen et "
                  f"al. 2019), adam lr {args.lr:g}, {args.epochs} epochs",
        "train_seconds": round(time.perf_counter() - started, 1), **certified})
    models.save(best, out, meta)
    shutil.rmtree(run_dir, ignore_errors=True)
    print(f"saved {out}: chosen epoch {result.get('best_epoch')} on "
          f"{result.get('selected_on')}, {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
