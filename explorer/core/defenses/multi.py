"""Training against several threat models at once: l-inf, l2 and l1.

- ``adv-avg`` / ``adv-max`` (Tramèr & Boneh 2019): PGD in each ball, then the
  mean, or per sample the max, of the three cross-entropies.
- ``msd`` (Maini et al. 2020, multi steepest descent): one PGD loop; every
  step takes the l-inf, l2 and l1 steepest-ascent step from the same iterate,
  projects each onto its own ball ∩ box, and keeps per sample the candidate
  with the highest loss (an attack on the union of the balls).
- ``sat`` (Madaan et al. 2021, stochastic adversarial training): one threat
  model per batch, drawn uniformly with the method's generator.
- ``pgd-at-l2`` / ``pgd-at-l1``: single-norm PGD-AT in the l2 or l1 ball (the
  Adv₂ / Adv₁ baselines of Madaan et al.), with the same budgets and steps.

Every attack runs with the model frozen; the update pass is in train mode.
Budgets are in pixel units; step sizes are ``alpha_ratio · eps / steps``.

What they optimise is what they report: after each epoch
(:meth:`_MultiNorm.extra_scores`) every image of the validation and test
subsets meets PGD in each of the three balls at the method's own budgets,
and the trainer reports ``linf_acc``, ``l2_acc``, ``l1_acc`` and
``union_acc``, the share of images still correct under all three attacks
(per image, so it is at most each of the others). The multi-norm methods
(adv-avg, adv-max, msd, sat and mng-ac) choose their best epoch on
validation union accuracy; the single-norm ones report and choose on their
own norm's figure.
"""

from __future__ import annotations

import collections

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from explorer.core.attacks.iterative import gradient_ascent
from explorer.core.attacks.threat import ThreatModel, make_threat
from explorer.core.defenses.base import Defense
from explorer.core.defenses.evaluation import EVAL_BATCH
from explorer.core.inference import make_generator, model_frozen
from explorer.core.params import Param

NORMS = ("linf", "l2", "l1")
PARAMS = (
    Param("eps_linf", float, 0.1, "l-inf budget (pixel units)", minimum=0.0,
          maximum=1.0, unit="px"),
    Param("eps_l2", float, 1.5, "l2 budget (pixel units)", minimum=0.0,
          maximum=1000.0),
    Param("eps_l1", float, 10.0, "l1 budget (pixel units)", minimum=0.0,
          maximum=10000.0),
    Param("steps", int, 7, "attack steps per threat model", minimum=1,
          maximum=1000),
    Param("alpha_ratio", float, 2.5, "step size as a multiple of eps/steps",
          minimum=0.0, maximum=100.0),
    Param("l1_sparsity", float, 0.01, "share of pixels the l1 step moves",
          minimum=1e-4, maximum=1.0),
)  # fmt: skip


class _MultiNorm(Defense):
    """Shared parameters, one PGD per threat model, and the per-norm and
    union accuracy every epoch (best epoch on validation union accuracy)."""

    params = PARAMS
    selection_key = "union_acc"
    attack_steps = "steps"
    # The threat models extra_scores attacks (the single-norm methods: one).
    scored_norms: tuple[str, ...] = NORMS

    def threat(self, norm: str) -> ThreatModel:
        extra = {"sparsity": self.cfg["l1_sparsity"]} if norm == "l1" else {}
        return make_threat(norm, self.cfg[f"eps_{norm}"], **extra)

    def alpha(self, norm: str, steps: int | None = None) -> float:
        """``alpha_ratio · eps / steps`` (the method's steps unless given)."""
        steps = steps or self.cfg["steps"]
        return self.cfg["alpha_ratio"] * self.cfg[f"eps_{norm}"] / steps

    def adversarial(self, model: nn.Module, x: Tensor, y: Tensor,
                    generator: torch.Generator, norm: str,
                    steps: int | None = None) -> Tensor:
        """PGD in one ball from a random start, model frozen (``steps``: the
        method's own unless given)."""
        steps = steps or self.cfg["steps"]
        with model_frozen(model):
            (last,) = collections.deque(gradient_ascent(
                model, x.detach(), y, None, self.threat(norm), generator,
                steps=steps, alpha=self.alpha(norm, steps), random_start=True,
                live=False), maxlen=1)
        return last.x_adv.detach()

    def robust_hits(self, model: nn.Module, x: Tensor, y: Tensor,
                    steps: int) -> dict[str, Tensor]:
        """Per norm of :attr:`scored_norms`, which images of one batch the
        model still classifies correctly after PGD-``steps`` in that ball
        (the method's budget, step ``alpha_ratio · eps / steps``, l1 with the
        method's sparsity). Every attack starts from a generator seeded 0, so
        every epoch meets the same start: with ``eps_linf`` = the run's
        evaluation budget and ``alpha_ratio`` 2.5 the l-inf hits are the
        trainer's own l-inf PGD evaluation."""
        hits = {}
        for norm in self.scored_norms:
            x_adv = self.adversarial(model, x, y, make_generator(0, x.device),
                                     norm, steps)
            with model_frozen(model), torch.no_grad():
                hits[norm] = model(x_adv).argmax(1) == y
        return hits

    def extra_scores(self, model, x, y, *, eps, steps, device, token):
        """Accuracy under PGD in each ball (``linf_acc``, ``l2_acc``,
        ``l1_acc``) and ``union_acc``: the share of images correct under all
        three, image by image. The budgets are the method's own (``eps``, the
        run's l-inf evaluation budget, is the trainer's ``robust_acc``);
        ``steps`` are the run's evaluation steps. Costs one PGD run per ball and
        image, in batches, with a stop checked between them."""
        counts = dict.fromkeys(self.scored_norms, 0)
        union = 0
        for start in range(0, len(y), EVAL_BATCH):
            token.check()
            xb = x[start:start + EVAL_BATCH].to(device)
            yb = y[start:start + EVAL_BATCH].to(device)
            hits = self.robust_hits(model, xb, yb, steps)
            for norm, hit in hits.items():
                counts[norm] += int(hit.sum())
            union += int(torch.stack(list(hits.values())).all(0).sum())
        n = max(len(y), 1)
        scores = {f"{norm}_acc": c / n for norm, c in counts.items()}
        if len(self.scored_norms) > 1:
            scores["union_acc"] = union / n
        return scores

    def per_norm(self, model, x, y, generator) -> tuple[Tensor, Tensor]:
        """Per-sample CE (3, n) and logits (3, n, C) on the three PGD batches
        (separate update passes, so batch norm sees one threat model each)."""
        losses, logits = [], []
        for norm in NORMS:
            out = model(self.adversarial(model, x, y, generator, norm))
            logits.append(out)
            losses.append(F.cross_entropy(out, y, reduction="none"))
        return torch.stack(losses), torch.stack(logits)


def _worst_logits(losses: Tensor, logits: Tensor) -> Tensor:
    """Per sample, the logits of the threat model with the highest loss."""
    idx = losses.detach().argmax(0)
    return logits[idx, torch.arange(logits.shape[1], device=logits.device)]


class AdvAvg(_MultiNorm):
    name = "adv-avg"
    title = "Adversarial training, average of l-inf/l2/l1"
    description = ("Tramèr & Boneh 2019: PGD in the l-inf, l2 and l1 balls; "
                   "minimise the mean of the three cross-entropies. Train "
                   "accuracy is under each sample's worst threat model.")

    def loss(self, model, x, y, generator):
        losses, logits = self.per_norm(model, x, y, generator)
        return losses.mean(), _worst_logits(losses, logits)


class AdvMax(_MultiNorm):
    name = "adv-max"
    title = "Adversarial training, max over l-inf/l2/l1"
    description = ("Tramèr & Boneh 2019: PGD in the l-inf, l2 and l1 balls; "
                   "minimise per sample the largest of the three "
                   "cross-entropies (the worst-case threat model).")

    def loss(self, model, x, y, generator):
        losses, logits = self.per_norm(model, x, y, generator)
        return losses.max(0).values.mean(), _worst_logits(losses, logits)


def select_best(candidates: Tensor, losses: Tensor) -> tuple[Tensor, Tensor]:
    """Per sample, the candidate with the highest loss.

    ``candidates`` is (K, n, ...), ``losses`` (K, n); returns the chosen
    (n, ...) batch and the (n,) index of the chosen candidate (ties: first).
    """
    idx = losses.argmax(0)
    return candidates[idx, torch.arange(candidates.shape[1],
                                        device=candidates.device)], idx


class MultiSteepestDescent(_MultiNorm):
    name = "msd"
    title = "MSD (multi steepest descent)"
    description = ("Maini et al. 2020: one PGD loop from the clean image; each "
                   "step tries the l-inf, l2 and l1 steepest-ascent step, "
                   "projects each onto its ball ∩ box and keeps per sample the "
                   "one with the highest loss; train on the result.")

    @torch.enable_grad()
    def adversarial_union(self, model: nn.Module, x: Tensor,
                          y: Tensor) -> tuple[Tensor, Tensor]:
        """The MSD batch and, per sample, the index of its last chosen norm."""
        x = x.detach()
        threats = [self.threat(norm) for norm in NORMS]
        projectors = [t.projector(x) for t in threats]
        alphas = [self.alpha(norm) for norm in NORMS]
        x_adv = x.clone()
        chosen = torch.zeros(len(x), dtype=torch.long, device=x.device)
        with model_frozen(model):
            for _ in range(self.cfg["steps"]):
                x_adv.requires_grad_(True)
                loss = F.cross_entropy(model(x_adv), y, reduction="sum")
                (grad,) = torch.autograd.grad(loss, x_adv)
                x_adv = x_adv.detach()
                candidates = torch.stack([
                    project(t.step(x_adv, grad, a))
                    for t, project, a in zip(threats, projectors, alphas,
                                             strict=True)])
                with torch.no_grad():
                    losses = torch.stack([
                        F.cross_entropy(model(c), y, reduction="none")
                        for c in candidates])
                x_adv, chosen = select_best(candidates, losses)
        return x_adv.detach(), chosen

    def loss(self, model, x, y, generator):
        logits = model(self.adversarial_union(model, x, y)[0])
        return F.cross_entropy(logits, y), logits


class StochasticAdversarial(_MultiNorm):
    name = "sat"
    title = "SAT (stochastic adversarial training)"
    description = ("Madaan et al. 2021: each batch draws one threat model "
                   "(l-inf, l2 or l1) uniformly at random and trains on PGD "
                   "examples in that ball: the cost of single-norm training.")

    def __init__(self, **values) -> None:
        super().__init__(**values)
        self.last_norm: str | None = None

    def draw(self, generator: torch.Generator) -> str:
        i = int(torch.randint(len(NORMS), (1,), generator=generator,
                              device=generator.device))
        return NORMS[i]

    def loss(self, model, x, y, generator):
        self.last_norm = self.draw(generator)
        logits = model(self.adversarial(model, x, y, generator, self.last_norm))
        return F.cross_entropy(logits, y), logits


class _SingleNorm(_MultiNorm):
    """PGD-AT in one l2 or l1 ball: cross-entropy on PGD examples of ``norm``.

    Each epoch reports accuracy under PGD in that ball only (``l2_acc`` or
    ``l1_acc``: one attack, not three) and chooses the best epoch on its
    validation figure: the trainer's default, l-inf PGD accuracy, measures a
    threat model these methods do not train against, and would pick the
    epoch most robust to it rather than to the method's own."""

    norm: str

    def loss(self, model, x, y, generator):
        logits = model(self.adversarial(model, x, y, generator, self.norm))
        return F.cross_entropy(logits, y), logits


def _only(*names: str) -> tuple[Param, ...]:
    return tuple(p for p in PARAMS if p.name in names)


class PGDAdversarialTrainingL2(_SingleNorm):
    name = "pgd-at-l2"
    title = "PGD adversarial training, l2"
    norm = "l2"
    scored_norms = ("l2",)
    selection_key = "l2_acc"
    params = _only("eps_l2", "steps", "alpha_ratio")
    description = ("Madry et al. 2018 in the l2 ball (Adv₂ of Madaan et al. "
                   "2021): minimise cross-entropy on PGD examples from a random "
                   "start in the l2 ball ∩ box.")


class PGDAdversarialTrainingL1(_SingleNorm):
    name = "pgd-at-l1"
    title = "PGD adversarial training, l1"
    norm = "l1"
    scored_norms = ("l1",)
    selection_key = "l1_acc"
    params = _only("eps_l1", "steps", "alpha_ratio", "l1_sparsity")
    description = ("Madry et al. 2018 in the l1 ball (Adv₁ of Madaan et al. "
                   "2021): minimise cross-entropy on PGD examples whose sparse "
                   "steps move the top share of pixels, projected onto the l1 "
                   "ball ∩ box.")
