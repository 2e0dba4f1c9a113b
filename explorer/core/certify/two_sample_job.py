"""Two-sample tests under attack, as one job over repeated trials.

Each trial draws, from the data set's images, a training pair (X, Y) and a
test pair (X', Y') of ``n_per_sample`` images each, X from P and Y from Q
(:data:`PAIRS`), and a third sample Z' from P for the type-I error. On the
training pair it fits the Gaussian kernel's bandwidth (MMD-G), trains a deep
kernel (MMD-D) and ``members`` adversarially trained deep kernels (MMD-RoD,
attacked at ``eps`` while training). On the test pair every test runs a
permutation test at ``alpha``: on (X', Z') (type-I), on (X', Y') (power),
and on (X', Y'') where Y'' is Y' attacked within ``eps`` against *all* the
tests jointly (:func:`~explorer.core.certify.two_sample.attack_second_sample`)
— the defense is attacked too. The defended test is the ensemble of all
the kernels (MMD-G, MMD-D and the MMD-RoD members), rejecting when a
member's p-value is at most alpha / members (Bonferroni).

Headline figures (rates over the trials): ``type1`` — the share of trials
in which MMD-D or the defended ensemble rejects on (X', Z'), both from P
(at least the larger of their type-I errors); ``power`` — MMD-D on clean pairs;
``power_attacked`` — MMD-D on attacked pairs; ``power_defended`` — the
defended ensemble on attacked pairs. ``tests`` breaks these down per test.

Events: ``Progress`` per stage; one ``Snapshot(trial, trials, ..., "trial")``
per trial with MMD-D's statistic and permutation null on the clean and the
attacked pair (``stat``, ``null``, ``stat_attacked``, ``null_attacked``),
the first images of X', Y' and Y'' (``x``, ``y``, ``y_adv``, N×C×H×W), the
p-values (``p_values``: tests × (null, clean, attacked), tests in
``TESTS`` order) and the running rates so far (``rates``: type1, power,
power_attacked, power_defended); ``Done`` with the rates, ``tests``,
``pair`` and its description, the settings and ``seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from explorer.core.certify.two_sample import (
    GaussianKernel,
    attack_second_sample,
    check_alpha,
    permutation_test,
    train_deep_kernel,
)
from explorer.core.jobs import CancelToken, Done, Event, Log, Progress, Snapshot
from explorer.core.params import Param, ParamError


@dataclass(frozen=True, slots=True)
class SamplePair:
    """P and Q as mixtures over class indices of the data set."""

    name: str
    p: Mapping[int, float]
    q: Mapping[int, float]
    text: str


_ALL = dict.fromkeys(range(10), 0.1)
PAIRS: dict[str, SamplePair] = {p.name: p for p in (
    SamplePair("tops-shirts", {0: 0.5, 2: 0.5}, {0: 0.5, 6: 0.5},
               "P: T-shirt/top and Pullover in equal parts; Q: T-shirt/top and "
               "Shirt in equal parts"),
    SamplePair("shirts", {0: 1 / 3, 2: 1 / 3, 4: 1 / 3},
               {0: 0.25, 2: 0.25, 4: 0.25, 6: 0.25},
               "P: T-shirt/top, Pullover and Coat in equal parts; Q: the same "
               "with a quarter of Shirts mixed in"),
    SamplePair("same", _ALL, _ALL,
               "P = Q: all ten classes in equal parts (every rejection is a "
               "type-I error)"),
)}
DEFAULT_PAIR = "tops-shirts"
SHOWN = 8  # images of each sample in a snapshot
TESTS = ("MMD-G", "MMD-D", "MMD-RoD", "ensemble")

TWO_SAMPLE_PARAMS: tuple[Param, ...] = (
    Param("pair", str, DEFAULT_PAIR, "the pair of distributions P, Q",
          choices=tuple(PAIRS)),
    Param("n_per_sample", int, 100, "images in each sample (the kernels train "
          "on another pair of this size)", minimum=2, maximum=1000),
    Param("trials", int, 10, "repeated trials", minimum=1, maximum=1000),
    Param("alpha", float, 0.05, "level of the tests", minimum=0.0, maximum=1.0),
    Param("eps", float, 0.05, "l-inf budget of the attack on the second sample",
          minimum=0.0, maximum=1.0, unit="px"),
    Param("steps", int, 50, "PGD steps of the attack", minimum=0, maximum=1000),
    Param("permutations", int, 100, "permutations of each test", minimum=1,
          maximum=10000),
    Param("epochs", int, 100, "training epochs of each deep kernel", minimum=1,
          maximum=10000),
    Param("members", int, 1, "adversarially trained kernels (MMD-RoD) in the "
          "defended ensemble", minimum=1, maximum=10),
    Param("seed", int, 0, "seed of the draws, the kernels and the attack"),
)


def _check(values: Mapping[str, Any]) -> dict[str, Any]:
    known = {p.name for p in TWO_SAMPLE_PARAMS}
    unknown = sorted(set(values) - known - {"device"})
    if unknown:
        raise ParamError(f"unknown parameter {unknown[0]!r} (allowed: "
                         f"{', '.join(sorted(known))})")
    out = {p.name: p.validate(values.get(p.name, p.default))
           for p in TWO_SAMPLE_PARAMS}
    check_alpha(out["alpha"])
    return out


def _pools(dataset: Any, pair: SamplePair) -> dict[int, torch.Tensor]:
    labels = (torch.as_tensor(dataset.labels) if hasattr(dataset, "labels") else
              torch.tensor([int(dataset[i][1]) for i in range(len(dataset))]))
    classes = getattr(dataset, "classes", ())
    name = getattr(getattr(dataset, "info", None), "name", "the data set")
    needed = sorted(set(pair.p) | set(pair.q))
    if len(classes) <= needed[-1]:
        raise ParamError(f"pair {pair.name!r} needs classes 0..{needed[-1]}, but "
                         f"{name} has {len(classes)}")
    return {c: torch.nonzero(labels == c).flatten() for c in needed}


def _counts(mix: Mapping[int, float], n: int, rng: np.random.Generator
            ) -> dict[int, int]:
    classes = list(mix)
    weights = np.array([mix[c] for c in classes], dtype=float)
    drawn = rng.multinomial(n, weights / weights.sum())
    return dict(zip(classes, (int(d) for d in drawn), strict=True))


def _draw(pools: dict[int, torch.Tensor], pair: SamplePair, n: int,
          rng: np.random.Generator, name: str) -> list[torch.Tensor]:
    """Indices of X, Y, X', Y', Z' (no image twice within a trial)."""
    plan = [pair.p, pair.q, pair.p, pair.q, pair.p]
    counts = [_counts(mix, n, rng) for mix in plan]
    order = {c: pool[torch.from_numpy(rng.permutation(len(pool)))]
             for c, pool in pools.items()}
    used = dict.fromkeys(pools, 0)
    out = []
    for count in counts:
        idx = []
        for c, k in count.items():
            if used[c] + k > len(order[c]):
                raise ParamError(f"n_per_sample {n} is too large for {name}: class "
                                 f"{c} has {len(order[c])} images and a trial "
                                 f"draws five samples of {n} without repeats")
            idx.append(order[c][used[c]:used[c] + k])
            used[c] += k
        sample = torch.cat(idx)
        out.append(sample[torch.from_numpy(rng.permutation(len(sample)))])
    return out


def _images(dataset: Any, idx: torch.Tensor, device: torch.device) -> torch.Tensor:
    if hasattr(dataset, "images"):
        x = dataset.images[idx]
        x = x.float().div(255) if x.dtype == torch.uint8 else x.float()
    else:
        x = torch.stack([torch.as_tensor(dataset[int(i)][0]) for i in idx])
    return x.to(device)


def _rates(rows: list[dict[str, bool]]) -> dict[str, float]:
    t = len(rows)
    return {k: sum(r[k] for r in rows) / t for k in rows[0]} if t else {}


def two_sample_job(dataset: Any, *, pair: str = DEFAULT_PAIR, n_per_sample: int = 100,
                   trials: int = 10, alpha: float = 0.05, eps: float = 0.05,
                   steps: int = 50, permutations: int = 100, epochs: int = 100,
                   members: int = 1, seed: int = 0, token: CancelToken | None = None,
                   device: torch.device | str | None = None) -> Iterator[Event]:
    """Type-I error, power, power under attack and the defense's power over
    ``trials`` trials on ``dataset`` (a labelled image set); see the module
    doc. Bad settings raise ParamError before anything runs."""
    v = _check({"pair": pair, "n_per_sample": n_per_sample, "trials": trials,
                "alpha": alpha, "eps": eps, "steps": steps,
                "permutations": permutations, "epochs": epochs,
                "members": members, "seed": seed})
    token = token or CancelToken()
    device = torch.device(device or "cpu")
    spec = PAIRS[v["pair"]]
    name = getattr(getattr(dataset, "info", None), "name", "the data set")
    pools = _pools(dataset, spec)
    n, trials, alpha, eps = v["n_per_sample"], v["trials"], v["alpha"], v["eps"]
    if v["permutations"] < 1 / alpha - 1:
        yield Log(f"{v['permutations']} permutations cannot give a p-value at or "
                  f"below alpha {alpha:g}: the tests never reject", "warning")
    started = time.perf_counter()
    rng = np.random.default_rng(v["seed"])
    stages = 4 + v["members"]
    rows: list[dict[str, bool]] = []
    per_test = {t: {"type1": [], "power": [], "power_attacked": []} for t in TESTS}
    for trial in range(trials):
        token.check()
        tseed = v["seed"] * 10_000 + trial
        x, y, xt, yt, zt = (_images(dataset, i, device)
                            for i in _draw(pools, spec, n, rng, name))

        def progress(stage: int, label: str, trial: int = trial) -> Progress:
            return Progress(trial * stages + stage, trials * stages,
                            f"trial {trial + 1}/{trials}: {label}")

        yield progress(0, "training the deep kernel")
        kernels = {"MMD-G": GaussianKernel.fit(x, y),
                   "MMD-D": train_deep_kernel(x, y, epochs=v["epochs"], seed=tseed,
                                              token=token)}
        robust = []
        for j in range(v["members"]):
            yield progress(1 + j, f"adversarial training of kernel {j + 1}")
            robust.append(train_deep_kernel(
                x, y, epochs=v["epochs"], adversarial=True, eps=eps,
                seed=tseed + 1000 * (j + 1), token=token))
        yield progress(1 + v["members"], "attacking the second sample")
        y_adv = attack_second_sample([*kernels.values(), *robust], xt, yt, eps=eps,
                                     steps=v["steps"], seed=tseed, token=token)
        yield progress(2 + v["members"], "permutation tests")
        gen = torch.Generator().manual_seed(tseed)
        tested = {}
        for label, other in (("null", zt), ("clean", yt), ("attacked", y_adv)):
            for t, kernel in [*kernels.items(), *(
                    (f"RoD{j}", k) for j, k in enumerate(robust))]:
                tested[t, label] = permutation_test(
                    kernel, xt, other, alpha=alpha, permutations=v["permutations"],
                    generator=gen, token=token)
        p_rows = []
        everyone = [t for t, _ in tested if _ == "null"]
        for t in TESTS:
            if t == "ensemble":  # Bonferroni: any member at alpha / members
                ps = [min(1.0, len(everyone) * min(tested[m, c].p_value
                                                   for m in everyone))
                      for c in ("null", "clean", "attacked")]
            else:
                key = "RoD0" if t == "MMD-RoD" else t
                ps = [tested[key, c].p_value for c in ("null", "clean", "attacked")]
            p_rows.append(ps)
            for name_, p in zip(("type1", "power", "power_attacked"), ps, strict=True):
                per_test[t][name_].append(p <= alpha)
        p_values = np.array(p_rows)
        d, e = TESTS.index("MMD-D"), TESTS.index("ensemble")
        rows.append({"type1": bool(p_values[d, 0] <= alpha or p_values[e, 0] <= alpha),
                     "power": bool(p_values[d, 1] <= alpha),
                     "power_attacked": bool(p_values[d, 2] <= alpha),
                     "power_defended": bool(p_values[e, 2] <= alpha)})
        rates = _rates(rows)
        clean, attacked = tested["MMD-D", "clean"], tested["MMD-D", "attacked"]
        yield Snapshot(trial, trials, {
            "stat": np.array(clean.stat), "null": clean.null.numpy(),
            "stat_attacked": np.array(attacked.stat),
            "null_attacked": attacked.null.numpy(),
            "x": xt[:SHOWN].cpu().numpy(), "y": yt[:SHOWN].cpu().numpy(),
            "y_adv": y_adv[:SHOWN].cpu().numpy(), "p_values": p_values,
            "rates": np.array([rates[k] for k in ("type1", "power",
                                                  "power_attacked",
                                                  "power_defended")]),
        }, "trial")
        yield progress(stages, "done")
    tests = {t: {k: sum(r) / trials for k, r in per_test[t].items()} for t in TESTS}
    yield Done({**_rates(rows), "tests": tests, "pair": spec.name,
                "pair_text": spec.text, "data": name, **{k: v[k] for k in (
                    "n_per_sample", "trials", "alpha", "eps", "steps",
                    "permutations", "epochs", "members", "seed")},
                "seconds": time.perf_counter() - started})


def two_sample_data_job(data_name: str = "fashion-mnist-mini", split: str = "train",
                        *, token: CancelToken | None = None, **kwargs: Any
                        ) -> Iterator[Event]:
    """:func:`two_sample_job` on data set ``data_name`` (its ``split``), read
    in the job; bad settings fail before it is read."""
    from explorer.core import data

    _check(kwargs)
    yield Progress(0, 1, "reading images")
    dataset = data.load(data_name, split)
    yield from two_sample_job(dataset, token=token, **kwargs)
