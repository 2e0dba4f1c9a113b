"""Synergy-of-Experts (SoE), Cui, Zhang, Liang, Han, Sugiyama & Zhang,
"Synergy-of-Experts: Collaborate to Improve Adversarial Robustness"
(NeurIPS 2022; the authors' code: github.com/cuis15/synergy-of-experts).

M sub-models f_1..f_M; each also has a head g_m on its penultimate features.

* Best-performing sub-model (the paper's Definition 1): for a labelled input
  (x, y) it is m*(x, y) = argmin_m ℓ(f_m(x), y), ℓ the cross-entropy.
* Collaboration: the answer to x is the best-performing sub-model's. At test
  time y is unknown, so each sub-model estimates the posterior probability
  that it is right, p̂_m(x) = max_c softmax(f_m(x))_c · σ(g_m(x)) (the code's
  "rectified confidence"), and the sub-model of highest p̂ answers: the
  ensemble's rule ``representative`` (:mod:`explorer.core.models.ensemble`),
  saved with the model.
* Training, per batch (x, y): adversarial examples are crafted against each
  sub-model separately, x̃_m = PGD_{ε}(f_m, x, y) (l-inf, random start, the
  code's "one by one"), and the pool B = {x} ∪ {x̃_1..x̃_M} (all labelled y,
  clean images included as in the code's ``plus_at``) is learnt with

      L = mean_{(x,y)∈B} min_m ℓ(f_m(x), y)  +  λ · L_post,

      L_post = mean_{m, (x,y)∈B} BCE(p̂_m(x), softmax(f_m(x))_y),

  so every example trains only the sub-model that handles it best — the
  sub-models split the vulnerable regions instead of all fitting the same
  ones — while every head learns to predict its sub-model's true-class
  probability (the target is detached; as in the code, the confidence factor
  of p̂ is detached where the sub-model is right, so L_post also lowers the
  confidence of its wrong predictions).

Simplifications: the min is a hard assignment (Definition 1); the authors'
code weights the members' losses by a softmax over their estimates p̂ (or
over -ℓ) instead. The head is one linear layer on the features (the code's
"simple" head), and the adversarial examples use PGD-``steps`` at step
``alpha`` (the code: 10 steps). No DVERGE distillation data.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from explorer.core.defenses.adp import _reinit
from explorer.core.defenses.base import Defense
from explorer.core.defenses.evaluation import EVAL_BATCH, clean_and_robust
from explorer.core.defenses.methods import ALPHA, EPS, _pgd_linf
from explorer.core.inference import model_frozen
from explorer.core.models.ensemble import REPRESENTATIVE, Ensemble, ensemble_of
from explorer.core.params import Param, ParamError

PROB_CLAMP = 1e-6  # keeps BCE's logs finite


def feature_dim(model: nn.Module) -> int:
    """The size of the features a model's linear ``head`` reads, or ParamError."""
    head = getattr(model, "head", None)
    if not isinstance(head, nn.Linear) or not callable(getattr(model, "features",
                                                               None)):
        raise ParamError(
            f"soe needs sub-models whose classifier is a linear head on their "
            f"penultimate features (a built-in architecture such as small-cnn); "
            f"{type(model).__name__} has none")
    return head.in_features


def make_soe(model: nn.Module, members: int, seed: int = 0) -> Ensemble:
    """``members`` copies of ``model`` (member k re-initialised from seed+k)
    with posterior heads (initialised from seed+members), rule representative."""
    dim = feature_dim(model)
    copies = [_reinit(copy.deepcopy(model), seed + k) for k in range(members)]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + members)
        return ensemble_of(copies, REPRESENTATIVE, dim)


def posterior_loss(logits: list[Tensor], heads: list[Tensor], y: Tensor) -> Tensor:
    """mean over members and rows of BCE(p̂_m, softmax(f_m)_y) (module doc)."""
    losses = []
    for v, g in zip(logits, heads, strict=True):
        p = F.softmax(v, dim=1)
        conf, pred = p.max(1)
        conf = torch.where(pred == y, conf.detach(), conf)
        est = (conf * torch.sigmoid(g)).clamp(PROB_CLAMP, 1 - PROB_CLAMP)
        target = p.gather(1, y[:, None]).squeeze(1).detach()
        losses.append(F.binary_cross_entropy(est, target))
    return torch.stack(losses).mean()


class SynergyOfExperts(Defense):
    name = "soe"
    attack_steps = "steps"
    sync = "average"  # model.member_outputs; one expert per example
    title = "Synergy-of-Experts (collaborating sub-models)"
    params = (
        Param("members", int, 3, "sub-models trained together",
              minimum=2, maximum=10),
        EPS, ALPHA,
        Param("steps", int, 7, "PGD steps per sub-model and batch",
              minimum=1, maximum=1000),
        Param("posterior_weight", float, 1.0, "λ, weight of the heads' BCE "
              "loss (posterior probability that a sub-model is right)",
              minimum=0.0, maximum=100.0),
        Param("seed", int, 0, "seed of sub-model k's initialisation is seed + k",
              minimum=0, maximum=2**31 - 1),
    )  # fmt: skip
    description = ("Cui et al. 2022: PGD examples crafted on each sub-model; every "
                   "clean and adversarial example trains only the sub-model of "
                   "smallest loss on it, and a head per sub-model learns the "
                   "probability that it is right; the ensemble answers each "
                   "input with the sub-model of highest estimate.")

    def prepare(self, model: nn.Module) -> nn.Module:
        if isinstance(model, Ensemble):
            if model.rule == REPRESENTATIVE:
                return model
            members = list(model.members)  # fine-tune a mean ensemble's members
            return ensemble_of(members, REPRESENTATIVE, feature_dim(members[0]))
        return make_soe(model, self.cfg["members"], self.cfg["seed"])

    def adversarial(self, model: Ensemble, x: Tensor, y: Tensor,
                    generator: torch.Generator) -> list[Tensor]:
        """x̃_m for every sub-model m, each crafted on that sub-model alone."""
        c = self.cfg
        return [_pgd_linf(m, x, y, generator, eps=c["eps"], alpha=c["alpha"],
                          steps=c["steps"]) for m in model.members]

    def loss(self, model, x, y, generator):
        pool = torch.cat([x, *self.adversarial(model, x, y, generator)])
        labels = y.repeat(len(pool) // len(y))
        logits, heads = model.member_outputs(pool)
        ce = torch.stack([F.cross_entropy(v, labels, reduction="none")
                          for v in logits])  # (M, |B|)
        best = ce.detach().argmin(0)  # the best-performing sub-model per example
        loss = ce.gather(0, best[None]).mean()
        if self.cfg["posterior_weight"]:
            loss = loss + self.cfg["posterior_weight"] * posterior_loss(
                logits, heads, labels)
        clean = [v[:len(y)].detach() for v in logits]  # train_acc: the rule, clean
        chosen = Ensemble.estimates(clean, [g[:len(y)].detach() for g in heads])
        return loss, Ensemble.pick(clean, chosen.argmax(0))

    def extra_scores(self, model, x, y, *, eps, steps, device, token):
        """Per sub-model k: ``memberk_clean_acc`` and ``memberk_robust_acc``
        (PGD on that sub-model alone, the evaluation's attack), and
        ``memberk_chosen``, the share of the clean images the rule gives it
        (not an accuracy, so not drawn)."""
        if not isinstance(model, Ensemble) or model.rule != REPRESENTATIVE:
            return {}
        scores: dict[str, float] = {}
        for k, member in enumerate(model.members, 1):
            clean, robust = clean_and_robust(member, x, y, eps=eps, steps=steps,
                                             device=device, token=token)
            scores[f"member{k}_clean_acc"] = clean
            scores[f"member{k}_robust_acc"] = robust
        chosen = []
        with model_frozen(model), torch.no_grad():
            for start in range(0, len(y), EVAL_BATCH):
                token.check()
                chosen.append(model.representative(
                    x[start:start + EVAL_BATCH].to(device)).cpu())
        picks = torch.cat(chosen) if chosen else torch.zeros(0, dtype=torch.long)
        for k in range(len(model.members)):
            scores[f"member{k + 1}_chosen"] = float((picks == k).float().mean()) \
                if len(picks) else 0.0
        return scores
