"""Train the built-in robust models with the app's own trainer.

    python scripts/train_robust_builtins.py --method pgd-at   # fmnist-cnn-pgdat
    python scripts/train_robust_builtins.py --method trades   # fmnist-cnn-trades

small-cnn at ``--width`` (32 by default: conv 32-64-128, dense 256; the
standard built-in has width 16) trained on the official Fashion-MNIST
training set (from the IDX files; on Debian: `apt install
dataset-fashion-mnist`) at eps 0.1 with PGD-10 and Adam. The trainer holds
out ``--val-n`` of the 60k training images (5,000 by default, a seeded draw):
the best epoch is chosen on them, never on test images. The result is saved to
``explorer/resources/models/`` with its metadata; bench/builtins.py measures
it on the mini test split.
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
from explorer.core.resources import resource_path

NAMES = {"pgd-at": "fmnist-cnn-pgdat", "trades": "fmnist-cnn-trades"}



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=tuple(NAMES), default="pgd-at")
    parser.add_argument("--idx-dir", type=Path,
                        default=Path("/usr/share/datasets/fashion-mnist"))
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--dense", type=int, default=256)
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--val-n", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train_set = official_train(args.idx_dir)
    test_set = data.load("fashion-mnist-mini", "test")
    info = test_set.info
    model = models.create("small-cnn", in_shape=info.shape,
                          num_classes=len(info.classes), mean=info.mean,
                          std=info.std, classes=info.classes,
                          dataset="fashion-mnist", width=args.width,
                          dense=args.dense)
    params = {"eps": args.eps, "alpha": 2.5 * args.eps / args.steps,
              "steps": args.steps}
    out = args.out or resource_path("models", f"{NAMES[args.method]}.safetensors")
    run_dir = Path(tempfile.mkdtemp(prefix="robust-builtin-"))
    started = time.perf_counter()
    config = defenses.TrainingConfig(
        defense=args.method, params=params, epochs=args.epochs, batch_size=128,
        optimizer=args.optimizer,
        weight_decay=0.0 if args.optimizer == "adam" else 5e-4,
        seed=args.seed, eval_eps=args.eps, eval_steps=20, eval_n=1000,
        val_fraction=args.val_n / len(train_set), val_max=args.val_n)
    # the trainer holds out val_n training images (a seeded draw) and chooses
    # the best epoch on them; the mini test figures are only reported
    result = train_printing(model, train_set, test_set, config, run_dir)
    best = models.load(run_dir / "best.safetensors")
    meta = dataclasses.replace(best.meta, training={
        **best.meta.training, "script": "scripts/train_robust_builtins.py",
        "train_set": f"official Fashion-MNIST train less {args.val_n} held out",
        "selection": f"PGD-20 l-inf eps {args.eps:g} on the first "
                     f"{min(1000, args.val_n):,} of the {args.val_n:,} held-out "
                     f"training images",
        "architecture": f"small-cnn width {args.width} (conv {args.width}-"
                        f"{2 * args.width}-{4 * args.width}), dense {args.dense}",
        "recipe": f"PGD-{args.steps} {args.method}, {args.optimizer}, "
                  f"{args.epochs} epochs",
        "train_seconds": round(time.perf_counter() - started, 1)})
    models.save(best, out, meta)
    shutil.rmtree(run_dir, ignore_errors=True)
    print(f"saved {out}: chosen epoch {result.get('best_epoch')} on "
          f"{result.get('selected_on')}, its test robust "
          f"{result.get('best_robust_acc'):.4f}, "
          f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
