"""GAT with few training images (issue 19), printed, not asserted.

PGD-AT vs GAT (MGDA weights) vs GAT (equal weights) trained on the first N
(default 1,000) training images of fashion-mnist-mini with small-cnn, same
seed, epochs, eps and optimizer; each run's last epoch is scored on the
1,000 mini test images: clean accuracy and accuracy under l-inf PGD-20 at
eps. ``--runs`` picks the runs (NAME or NAME:key=value,key=value).

    python bench/gat_few_images.py --images 1000 --epochs 20 [--seed 1]

Measured (1,000 images: 900 trained on, 100 held out; eps 0.1, PGD-7
training, 20 epochs, SGD lr 0.1 piecewise, batch 64; last epoch; clean /
PGD-20 accuracy on the 1,000 test images), seed 0 | seed 1:

    pgd-at                               0.641 / 0.484 | 0.655 / 0.483
    gat rotation, equal                  0.706 / 0.534 | 0.672 / 0.506
    gat rotation, mgda                   0.663 / 0.361 | 0.673 / 0.273
    gat rotation, mgda normalize=loss    0.658 / 0.477 |
    gat rotation, mgda normalize=l2      0.710 / 0.534 |  (= equal: see below)
    gat rotation+jigsaw, equal           0.675 / 0.447 |
    gat rotation+jigsaw, mgda            0.623 / 0.263 |

The rotation task helps with equal weights; plain MGDA hurts robustness:
its min-norm point leans to the task with the smaller gradient, the
rotation loss, and gave the adversarial target loss a mean weight of 0.22
(0.1 early, 0.3 late) against equal's 0.5, so the classifier gets less
adversarial training. With two tasks, l2-normalised MGDA is exactly equal
weighting (the min-norm point of two unit vectors is their midpoint).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from explorer.core import data, defenses, models
from explorer.core.defenses import TrainingConfig
from explorer.core.defenses.evaluation import clean_and_robust
from explorer.core.defenses.run_job import limited
from explorer.core.jobs import CancelToken, Done

RUNS = ("pgd-at", "gat:weighting=mgda", "gat:weighting=equal")


def parse_run(text: str) -> tuple[str, dict[str, object]]:
    name, _, rest = text.partition(":")
    params = {p.name: p for p in defenses.spec(name)}  # checks the name
    spec: dict[str, object] = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        spec[key] = params[key].parse(value)
    return name, spec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--eps", type=float, default=0.1)
    ap.add_argument("--steps", type=int, default=7)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", nargs="+", default=list(RUNS))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    train = limited(data.load("fashion-mnist-mini", "train"), args.images)
    test = data.load("fashion-mnist-mini", "test")
    x_test, y_test = test.as_tensors(0, len(test))
    print(f"{len(train)} training images (10% held out for validation), "
          f"{len(test)} test images, eps {args.eps}, {args.epochs} epochs, "
          f"seed {args.seed}")
    for run in args.runs:
        name, params = parse_run(run)
        params = {"eps": args.eps, "alpha": 2.5 * args.eps / args.steps,
                  "steps": args.steps, **params}
        torch.manual_seed(args.seed)
        model = models.create("small-cnn", in_shape=(1, 28, 28))
        config = TrainingConfig(defense=name, params=params, epochs=args.epochs,
                                batch_size=args.batch_size, seed=args.seed,
                                eval_eps=args.eps, eval_steps=10, eval_n=100)
        start = time.process_time()
        with tempfile.TemporaryDirectory() as tmp:
            for event in defenses.train(model, train, test, config, run_dir=tmp,
                                        device="cpu"):
                if isinstance(event, Done):
                    done = event
        model.eval()
        clean, robust = clean_and_robust(model, x_test, y_test, eps=args.eps,
                                         steps=20, device=torch.device("cpu"),
                                         token=CancelToken())
        print(f"{run:32s} clean {clean:.3f}  PGD-20 {robust:.3f}  "
              f"(best val epoch {done.results['best_epoch']}, "
              f"{time.process_time() - start:.0f} s CPU)", flush=True)


if __name__ == "__main__":
    main()
