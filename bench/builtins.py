"""How robust the built-in classifiers are (issue: a built-in PGD-AT model at
least as robust as a plain one).

For every built-in classifier, on the first N test images of
fashion-mnist-mini (500 by default), l-inf eps 0.1, CPU:

  clean accuracy
  PGD-20        (step 2.5·eps/20, random start)
  APGD-CE       (100 iterations)
  AutoAttack    (our ``autoattack`` suite: APGD-CE, APGD-T, FAB-T, Square 5000)
  and, when installed, torchattacks' PGD-20 (its default step 2/255) and the
  authors' AutoAttack (``pyautoattack``, version="standard") as oracles.

Targets for the robust built-ins (fmnist-cnn-pgdat, fmnist-cnn-trades):
  PGD-20 >= 67 %                               (a plain PGD-AT reaches 69.6 %)
  APGD-CE within 3 points of PGD-20            (no gradient masking)
"""

from __future__ import annotations

import argparse
import importlib.util
import time

import torch

from explorer.core import attacks, data, models
from explorer.core.analysis.cascade import run_suite
from explorer.core.analysis.suites import SUITES
from explorer.core.jobs import run_to_end

PGD_FLOOR = 0.67
APGD_GAP = 0.03
ROBUST = ("fmnist-cnn-pgdat", "fmnist-cnn-trades")


def first_images(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    return data.load("fashion-mnist-mini", "test").as_tensors(0, n)


@torch.no_grad()
def accuracy(model, x, y, batch: int = 500) -> float:
    right = sum(int((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
                for i in range(0, len(x), batch))
    return right / len(x)


def robust(model, x, y, name: str, **params) -> float:
    attack = attacks.create(name, model, seed=0, **params)
    x_adv = torch.cat([attack(x[i:i + 250], y[i:i + 250])
                       for i in range(0, len(x), 250)])
    return accuracy(model, x_adv, y)


def torchattacks_pgd(model, x, y, eps: float) -> float | None:
    if importlib.util.find_spec("torchattacks") is None:
        return None
    import torchattacks

    x_adv = torchattacks.PGD(model, eps=eps, alpha=2 / 255, steps=20,
                             random_start=True)(x, y)
    return accuracy(model, x_adv, y)


def authors_autoattack(model, x, y, eps: float) -> float | None:
    if importlib.util.find_spec("pyautoattack") is None:
        return None
    from pyautoattack import AutoAttack

    adversary = AutoAttack(model, norm="Linf", eps=eps, version="standard",
                           device="cpu", seed=0)
    x_adv, _ = adversary.run_standard_evaluation(x, y, batch_size=500)
    return accuracy(model, x_adv, y)


def _pct(value: float | None) -> str:
    return "   —  " if value is None else f"{100 * value:5.1f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="first N test images")
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", nargs="+", default=None,
                        help="default: every built-in classifier")
    parser.add_argument("--no-oracles", action="store_true",
                        help="skip torchattacks' PGD and the authors' AutoAttack")
    parser.add_argument("--no-autoattack", action="store_true",
                        help="skip both AutoAttacks (ours and the authors'): "
                             "Square's 5,000 queries dominate the run; "
                             "bench/evaluate.py compares the two")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, y = first_images(args.n)
    eps = args.eps
    names = args.models or models.builtin_names()
    print(f"first {len(x)} mini test images, l-inf eps {eps:g}, "
          f"{args.threads} CPU threads")
    for name in names:
        model = models.load_builtin(name).eval()
        started = time.perf_counter()
        row = {
            "clean": accuracy(model, x, y),
            "pgd20": robust(model, x, y, "pgd", eps=eps, alpha=2.5 * eps / 20,
                            steps=20),
            "apgd_ce": robust(model, x, y, "apgd-ce", eps=eps, steps=100),
        }
        if "autoattack" in SUITES and not args.no_autoattack:
            row["autoattack"] = run_to_end(run_suite(model, x, y, "autoattack",
                                                     eps))["robust_acc"]
        if not args.no_oracles:
            row["torchattacks_pgd20"] = torchattacks_pgd(model, x, y, eps)
            if not args.no_autoattack:
                row["pyautoattack"] = authors_autoattack(model, x, y, eps)
        card = model.meta.training or {}
        print(f"\n{name}  ({card.get('architecture', model.meta.arch)}; "
              f"{card.get('recipe', card.get('method', '?'))}; "
              f"selected on {card.get('selected_on', 'test')})")
        for key, label in (("clean", "clean"), ("pgd20", "PGD-20"),
                           ("apgd_ce", "APGD-CE (100 it.)"),
                           ("autoattack", "AutoAttack (ours)"),
                           ("torchattacks_pgd20", "torchattacks PGD-20"),
                           ("pyautoattack", "AutoAttack (authors')")):
            if key in row:
                print(f"  {label:24s} {_pct(row[key])}")
        if name in ROBUST:
            pgd_ok = row["pgd20"] >= PGD_FLOOR
            gap = row["pgd20"] - row["apgd_ce"]
            print(f"  target PGD-20 >= {100 * PGD_FLOOR:.0f}%: "
                  f"{'met' if pgd_ok else 'NOT met'}; APGD-CE within "
                  f"{100 * APGD_GAP:.0f} points of PGD-20 (gap {100 * gap:+.1f}): "
                  f"{'met' if gap <= APGD_GAP else 'NOT met'}")
        print(f"  ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
