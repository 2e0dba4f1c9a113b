"""Reliable evaluation (Evaluate issue): our standard suite vs torchattacks'
AutoAttack, same images, same run.

  our time / torchattacks' AutoAttack time                     target <= 1.00
  our robust accuracy - theirs                                  target <= 0

For each built-in small CNN (standard and PGD-trained) on the first N test
images of fashion-mnist-mini, l-inf eps 0.1, CPU: our ``standard`` cascade
(APGD-CE, APGD-T with 9 target classes, Square; ``--steps`` iterations and
``--queries`` Square queries) and ``torchattacks.AutoAttack(version=
'standard')`` (APGD-CE, APGD-T, FAB-T with its default 10 iterations, Square
with ``--queries``; AutoAttack's own value is 5000). It also prints how many
points each stage of our cascade attacked: a stage only sees points that
every earlier stage left robust.
"""

from __future__ import annotations

import argparse
import time

import torch

from explorer.core import accel, data, models
from explorer.core.analysis.cascade import run_suite
from explorer.core.jobs import run_to_end


def first_images(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    ds = data.load("fashion-mnist-mini", split="test")
    n = min(n, len(ds))
    x = torch.stack([ds[i][0] for i in range(n)])
    y = torch.tensor([int(ds[i][1]) for i in range(n)])
    return x, y


@torch.no_grad()
def accuracy(model, x, y) -> float:
    return float((model(x).argmax(1) == y).float().mean())


def theirs(model, x, y, eps: float, queries: int) -> tuple[float, float]:
    import torchattacks

    auto = torchattacks.AutoAttack(model, norm="Linf", eps=eps, version="standard",
                                   n_classes=10, seed=0)
    auto._autoattack.attacks[-1].n_queries = queries  # its Square
    started = time.perf_counter()
    x_adv = auto(x, y)
    seconds = time.perf_counter() - started
    return seconds, accuracy(model, x_adv, y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="first N test images")
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--steps", type=int, default=None, help="our APGD "
                        "iterations (default: the suite's, 20)")
    parser.add_argument("--queries", type=int, default=5000, help="Square queries "
                        "(both sides)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", nargs="+",
                        default=["fmnist-cnn-standard", "fmnist-cnn-pgdat"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, y = first_images(args.n)
    print(f"{len(x)} images, eps {args.eps}, our APGD {args.steps or 20} iterations, "
          f"Square {args.queries} queries, {args.threads} CPU threads")
    for name in args.models:
        # Placed as the app places models (channels-last); both sides use it.
        model = accel.place(models.load_builtin(name), "cpu").eval()
        started = time.perf_counter()
        ours = run_to_end(run_suite(model, x, y, "standard", args.eps,
                                    steps=args.steps, queries=args.queries))
        our_seconds = time.perf_counter() - started
        their_seconds, their_acc = theirs(model, x, y, args.eps, args.queries)
        ratio = our_seconds / their_seconds
        print(f"\n{name}: clean {100 * ours['clean_acc']:.1f}%")
        for label, acc in ours["per_attack"].items():
            print(f"  {label:8s} attacked {ours['attacked'][label]:5d} points, "
                  f"{ours['seconds'][label]:7.1f} s, robust after it {100 * acc:.1f}%")
        print(f"  ours          {our_seconds:7.1f} s  "
              f"robust {100 * ours['robust_acc']:.1f}%")
        print(f"  torchattacks  {their_seconds:7.1f} s  robust {100 * their_acc:.1f}%")
        verdict = "met" if ratio <= 1 else "NOT met"
        print(f"  time ratio ours/theirs {ratio:.2f} (target: not slower, <= 1.00: "
              f"{verdict}); robust accuracy ours - theirs "
              f"{100 * (ours['robust_acc'] - their_acc):+.1f} points (target <= 0)")


if __name__ == "__main__":
    main()
