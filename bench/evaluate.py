"""Reliable evaluation: our suites against the reference AutoAttacks, same
images, same run, same process and torch thread count.

  our time / the reference's time                               target <= 1.00
  our robust accuracy - theirs                                  target <= 0

For each built-in model on the first N test images of fashion-mnist-mini,
l-inf eps 0.1, CPU:

- ``--mode autoattack`` (default): our ``autoattack`` suite (APGD-CE, APGD-T
  and FAB-T with 9 target classes, Square with 5000 queries; 100 iterations)
  against the authors' own ``AutoAttack(version="standard")`` from
  pyautoattack. This is the comparison behind the claim that the suite's
  figures stand beside RobustBench's.
- ``--mode standard``: our fast ``standard`` cascade (APGD-CE, APGD-T,
  Square; ``--steps`` iterations, 20 by default) against
  ``torchattacks.AutoAttack(version="standard")`` (FAB-T included, its APGDs
  at torchattacks' 10 iterations), Square at ``--queries`` on both sides.

Times are wall clock and the process's CPU time (steadier on a shared
machine); the ratio's target is on the wall clock. It also prints how many
points each stage of our cascade attacked (a stage sees only the points
every earlier stage left robust) and how many images only one side broke.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import time
import warnings
from collections.abc import Callable

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
def robust_mask(model, x_adv, y) -> torch.Tensor:
    return torch.cat([model(x_adv[i:i + 500]).argmax(1) == y[i:i + 500]
                      for i in range(0, len(y), 500)])


def timed(run: Callable[[], object]) -> tuple[object, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = run()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def pyautoattack_class():
    """The authors' AutoAttack: the module installs as ``pyautoattack``
    (older releases as ``autoattack``)."""
    for module in ("pyautoattack", "autoattack"):
        try:
            return importlib.import_module(module).AutoAttack
        except ImportError:
            continue
    raise SystemExit("pyautoattack is not installed (pip install pyautoattack)")


def theirs_autoattack(model, x, y, eps: float) -> torch.Tensor:
    auto = pyautoattack_class()(model, norm="Linf", eps=eps, version="standard",
                                seed=0, device="cpu")
    logging.getLogger("auto-attack").setLevel(logging.ERROR)
    with warnings.catch_warnings():  # its sanity-check notes
        warnings.simplefilter("ignore")
        x_adv, _ = auto.run_standard_evaluation(x, y, batch_size=500)
    # AutoAttack returns the clean image where it found nothing; check the
    # budget anyway, as our cascade does.
    inside = (x_adv - x).flatten(1).abs().amax(1) <= eps * (1 + 1e-5) + 1e-5
    return robust_mask(model, x_adv, y) | ~inside


def theirs_torchattacks(model, x, y, eps: float, queries: int) -> torch.Tensor:
    import torchattacks

    auto = torchattacks.AutoAttack(model, norm="Linf", eps=eps, version="standard",
                                   n_classes=10, seed=0)
    auto._autoattack.attacks[-1].n_queries = queries  # its Square
    return robust_mask(model, auto(x, y), y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("autoattack", "standard"),
                        default="autoattack", help="autoattack: our autoattack "
                        "suite vs pyautoattack; standard: our standard suite vs "
                        "torchattacks' AutoAttack")
    parser.add_argument("--n", type=int, default=1000, help="first N test images")
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--steps", type=int, default=None, help="standard mode: our "
                        "APGD iterations (default: the suite's, 20)")
    parser.add_argument("--queries", type=int, default=5000, help="standard mode: "
                        "Square queries (both sides)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads, "
                        "both sides")
    parser.add_argument("--models", nargs="+", default=models.builtin_names(),
                        help="default: every built-in model")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, y = first_images(args.n)
    if args.mode == "autoattack":
        reference = "pyautoattack AutoAttack(version='standard')"
        print(f"{len(x)} images, eps {args.eps}, our autoattack suite vs "
              f"{reference}, one process, {torch.get_num_threads()} CPU threads")
    else:
        reference = "torchattacks AutoAttack(version='standard')"
        print(f"{len(x)} images, eps {args.eps}, our standard suite (APGD "
              f"{args.steps or 20} iterations) vs {reference}, Square "
              f"{args.queries} queries, {torch.get_num_threads()} CPU threads")
    for name in args.models:
        # Placed as the app places models (channels-last); both sides use it.
        model = accel.place(models.load_builtin(name), "cpu").eval()
        robust_mask(model, x[:64], y[:64])  # warm-up, for neither side's clock
        if args.mode == "autoattack":
            ours, our_wall, our_cpu = timed(lambda m=model: run_to_end(
                run_suite(m, x, y, "autoattack", args.eps)))
            theirs, their_wall, their_cpu = timed(
                lambda m=model: theirs_autoattack(m, x, y, args.eps))
        else:
            ours, our_wall, our_cpu = timed(lambda m=model: run_to_end(run_suite(
                m, x, y, "standard", args.eps, steps=args.steps,
                queries=args.queries)))
            theirs, their_wall, their_cpu = timed(
                lambda m=model: theirs_torchattacks(m, x, y, args.eps, args.queries))
        ours_robust = torch.tensor(ours["robust"])
        their_acc = float(theirs.float().mean())
        print(f"\n{name}: clean {100 * ours['clean_acc']:.1f}%")
        for label, acc in ours["per_attack"].items():
            print(f"  {label:8s} attacked {ours['attacked'][label]:5d} points, "
                  f"{ours['seconds'][label]:7.1f} s, robust after it {100 * acc:.1f}%")
        print(f"  ours          {our_wall:7.1f} s ({our_cpu:7.1f} s CPU)  "
              f"robust {100 * ours['robust_acc']:.1f}%")
        print(f"  {reference.split()[0]:13s} {their_wall:7.1f} s "
              f"({their_cpu:7.1f} s CPU)  robust {100 * their_acc:.1f}%")
        ratio = our_wall / their_wall
        verdict = "met" if ratio <= 1 else "NOT met"
        print(f"  time ratio ours/theirs {ratio:.2f} (target <= 1.00: {verdict}; CPU "
              f"time {our_cpu / their_cpu:.2f}); robust accuracy ours - theirs "
              f"{100 * (ours['robust_acc'] - their_acc):+.1f} points (target <= 0)")
        print(f"  images only ours broke {int((~ours_robust & theirs).sum())}, only "
              f"theirs broke {int((ours_robust & ~theirs).sum())}")


if __name__ == "__main__":
    main()
