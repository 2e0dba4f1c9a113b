"""GAT, Guided Adversarial Training with Pareto-optimal auxiliary tasks
(Ghamizi, Zhang, Cordy, Papadakis, Sugiyama & Le Traon, ICML 2023).

GAT turns adversarial training into multi-task learning: self-supervised
auxiliary tasks, whose labels cost nothing, get heads on the classifier's
shared features, and every update minimises a weighted combination of the
task losses whose weights are set per step by a multi-objective (Pareto)
rule. It helps most when training images are few. What is built here:

1. Per batch, draw the auxiliary labels with the method's generator:
   ``rotation`` rotates each image by k·90°, k in {0, 1, 2, 3}, and predicts
   k (Gidaris et al. 2018); ``jigsaw`` cuts each image into 2×2 tiles,
   reorders them by one of the 24 permutations of four tiles (index 0 is
   the identity) and predicts which (Noroozi & Favaro 2016, with a 2×2
   grid). Rotation needs square images.
2. Craft the PGD example in the l-inf ball ∩ [0, 1] box, model frozen. The
   paper's Figure 2 (b1) crafts it against the target task's loss only:
   ``attack="target"`` (the default), the very attack of ``pgd-at``.
   ``attack="joint"`` maximises the sum of all the tasks' losses instead
   (each auxiliary task on its transform of the adversarial image).
3. Task losses on the adversarial batch: cross-entropy of the classifier on
   x_adv, and of each auxiliary head on ``model.features`` of the
   transformed x_adv.
4. Task weights w (non-negative, summing to 1). ``weighting="mgda"``: MGDA
   (Sener & Koltun, NeurIPS 2018): the gradients g_t of the task losses
   with respect to the shared parameters (those of ``model.features``; the
   classifier's own last layer and the auxiliary heads are task-specific)
   give w = argmin ||Σ w_t g_t|| over the simplex, in closed form for two
   tasks and by Frank-Wolfe for more (their Algorithm 2), optionally after
   normalising each g_t (``normalize``: "l2" by its norm, "loss" by its
   loss, as their code offers). ``weighting="equal"``: w_t = 1/T, the
   control. The returned loss is Σ w_t L_t, as Sener & Koltun's code: a
   convex combination, so the shared layers' step is the size of one task's
   (scaled by T, the plain sum for equal weights, it collapsed small-cnn at
   SGD lr 0.1 on 1,000 Fashion-MNIST images to uniform outputs, the loss
   stuck at ln 10 + ln 4 and accuracy at 10 %).

The auxiliary heads (one linear layer each on the penultimate features) are
the method's, not the model's: they are built at the first batch, seeded
from the method's generator, trained by their own Adam (``head_lr``) in
:meth:`after_backward` from the gradients of the trainer's backward pass,
and kept with the Adam state in ``state_dict()``, so a resumed run continues
exactly and the best file is the plain classifier ``models.load`` reads.

Simplified from the paper: no gradient-curvature regulariser, no
domain-knowledge tasks, the task losses are those of the adversarial batch
only (the paper's weighted combination also carries the clean-batch
losses), and the heads are single linear layers.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from explorer.core.attacks import LinfBall
from explorer.core.defenses.base import Defense
from explorer.core.defenses.methods import ALPHA, EPS, _pgd_linf
from explorer.core.inference import model_frozen
from explorer.core.params import Param, ParamError

ROTATIONS = 4
JIGSAW_PERMS: tuple[tuple[int, ...], ...] = tuple(itertools.permutations(range(4)))
TASK_CLASSES = {"rotation": ROTATIONS, "jigsaw": len(JIGSAW_PERMS)}
TASK_SETS = {"rotation": ("rotation",), "jigsaw": ("jigsaw",),
             "rotation+jigsaw": ("rotation", "jigsaw")}
FW_ITERS, FW_STOP = 1000, 1e-9  # Frank-Wolfe iterations and stopping step


# -- MGDA ----------------------------------------------------------------------

def _min_norm_2(v11: float, v12: float, v22: float) -> float:
    """The γ in [0, 1] minimising ||γ a + (1 - γ) b||², given a·a, a·b, b·b."""
    if v12 >= v11:  # a itself is the closest point to the origin
        return 1.0
    if v12 >= v22:
        return 0.0
    return (v22 - v12) / (v11 + v22 - 2 * v12)


def mgda_weights(grads: Tensor) -> Tensor:
    """Min-norm convex combination of the rows of ``grads`` (T, P): the weights
    (T,), non-negative and summing to 1, of the point of the convex hull of
    the task gradients closest to the origin (MGDA, Sener & Koltun 2018):
    closed form for two tasks, Frank-Wolfe on the Gram matrix for more."""
    g = grads.detach().to(torch.float64).flatten(1)
    tasks = g.shape[0]
    if tasks == 1:
        return torch.ones(1, dtype=grads.dtype)
    gram = (g @ g.T).cpu()  # T×T: the solve runs on the CPU wherever g is
    if tasks == 2:
        gamma = _min_norm_2(*(float(v) for v in (gram[0, 0], gram[0, 1], gram[1, 1])))
        return torch.tensor([gamma, 1 - gamma], dtype=grads.dtype)
    # Start from the best pair's min-norm point, as their code does.
    sol, best = torch.zeros(tasks, dtype=torch.float64), math.inf
    for i, j in itertools.combinations(range(tasks), 2):
        gamma = _min_norm_2(float(gram[i, i]), float(gram[i, j]), float(gram[j, j]))
        cost = float(gamma**2 * gram[i, i] + 2 * gamma * (1 - gamma) * gram[i, j]
                     + (1 - gamma) ** 2 * gram[j, j])
        if cost < best:
            best, sol = cost, torch.zeros(tasks, dtype=torch.float64)
            sol[i], sol[j] = gamma, 1 - gamma
    for _ in range(FW_ITERS):
        t = int(torch.argmin(gram @ sol))
        v11 = float(sol @ gram @ sol)
        v12 = float(sol @ gram[:, t])
        gamma = _min_norm_2(v11, v12, float(gram[t, t]))
        new = gamma * sol
        new[t] += 1 - gamma
        if float((new - sol).abs().sum()) < FW_STOP:
            sol = new
            break
        sol = new
    return sol.clamp_min(0).div(sol.clamp_min(0).sum()).to(grads.dtype)


# -- the auxiliary tasks -------------------------------------------------------

def rotate(x: Tensor, k: Tensor) -> Tensor:
    """Each image ``x[i]`` (N, C, H, W; square) rotated by ``k[i]``·90°
    counter-clockwise (``torch.rot90`` on the image plane)."""
    out = x.clone()
    for turns in range(1, ROTATIONS):
        rows = k == turns
        if rows.any():
            out[rows] = torch.rot90(x[rows], turns, dims=(2, 3))
    return out


def jigsaw(x: Tensor, perm: Tensor) -> Tensor:
    """Each image's 2×2 tiles (top-left, top-right, bottom-left,
    bottom-right) reordered by permutation ``JIGSAW_PERMS[perm[i]]``: tile
    position j shows the input's tile ``p[j]``. With an odd side, the last
    row/column stays in place."""
    n, _, h, w = x.shape
    th, tw = h // 2, w // 2
    tiles = torch.stack([x[:, :, r * th:(r + 1) * th, q * tw:(q + 1) * tw]
                         for r in range(2) for q in range(2)], dim=1)
    order = torch.tensor(JIGSAW_PERMS, device=x.device)[perm]  # (N, 4)
    moved = tiles[torch.arange(n, device=x.device)[:, None], order]
    out = x.clone()
    for j in range(4):
        r, q = divmod(j, 2)
        out[:, :, r * th:(r + 1) * th, q * tw:(q + 1) * tw] = moved[:, j]
    return out


def transform(task: str, x: Tensor, labels: Tensor) -> Tensor:
    return rotate(x, labels) if task == "rotation" else jigsaw(x, labels)


# -- the defense ---------------------------------------------------------------

class GuidedAdversarialTraining(Defense):
    name = "gat"
    attack_steps = "steps"
    sync = "average"  # model.features; weight gradients via torch.autograd.grad
    title = "GAT (guided adversarial training, auxiliary tasks)"
    params = (
        EPS, ALPHA,
        Param("steps", int, 7, "PGD steps per batch", minimum=1, maximum=1000),
        Param("tasks", str, "rotation", "self-supervised auxiliary tasks: "
              "rotation (predict k·90°), jigsaw (predict the permutation of "
              "2×2 tiles)", choices=tuple(TASK_SETS)),
        Param("weighting", str, "mgda", "task weights per step: mgda (the "
              "min-norm point of the task gradients, Pareto) or equal (the "
              "control)", choices=("mgda", "equal")),
        Param("normalize", str, "none", "MGDA: each task gradient divided by "
              "nothing, its l2 norm or its loss before the min-norm solve",
              choices=("none", "l2", "loss")),
        Param("attack", str, "target", "loss the PGD example maximises: target "
              "(the classifier's, as the paper) or joint (all tasks')",
              choices=("target", "joint")),
        Param("head_lr", float, 1e-3, "Adam learning rate of the auxiliary "
              "heads", minimum=1e-7, maximum=1.0),
    )  # fmt: skip
    description = ("Ghamizi et al. 2023: adversarial training as multi-task "
                   "learning. Self-supervised tasks (rotation and/or jigsaw "
                   "prediction) get heads on the shared features; each step "
                   "weights the task losses on the PGD examples by MGDA (the "
                   "min-norm point of their gradients) or equally.")

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self.tasks: tuple[str, ...] = TASK_SETS[self.cfg["tasks"]]
        self.heads: nn.ModuleDict | None = None
        self.head_opt: torch.optim.Adam | None = None
        self.last_weights: list[float] | None = None
        self.last_losses: dict[str, float] = {}
        self._pending: dict[str, Any] | None = None

    # -- the heads -------------------------------------------------------------

    def _features(self, model: nn.Module, x: Tensor) -> Tensor:
        features = getattr(model, "features", None)
        if not callable(features):
            raise ParamError(f"gat needs a model with penultimate features "
                             f"(model.features); {type(model).__name__} has none")
        return features(x)

    def _build(self, model: nn.Module, x: Tensor, generator: torch.Generator) -> None:
        pending, self._pending = self._pending, None
        if pending:
            dim = int(pending["dim"])
        else:
            with torch.no_grad(), model_frozen(model):
                dim = self._features(model, x[:1]).flatten(1).shape[1]
        # A fresh run seeds the heads from the method's generator; a resumed
        # one overwrites them, so it draws nothing (its RNG state is restored).
        seed = 0 if pending else int(torch.randint(
            2**31 - 1, (1,), generator=generator, device=generator.device))
        with torch.random.fork_rng(devices=[]):  # leave the global RNG alone
            torch.manual_seed(seed)
            heads = nn.ModuleDict({t: nn.Linear(dim, TASK_CLASSES[t])
                                   for t in self.tasks})
        self.heads = heads.to(x.device)
        self.head_opt = torch.optim.Adam(self.heads.parameters(),
                                         lr=self.cfg["head_lr"])
        if pending:
            self.heads.load_state_dict(pending["heads"])
            self.head_opt.load_state_dict(pending["optimizer"])

    def _check_shape(self, x: Tensor) -> None:
        h, w = x.shape[-2:]
        if "rotation" in self.tasks and h != w:
            raise ParamError(f"tasks: rotation needs square images, got {h}×{w} "
                             "(choose jigsaw)")
        if "jigsaw" in self.tasks and min(h, w) < 2:
            raise ParamError(f"tasks: jigsaw needs images of at least 2×2 pixels, "
                             f"got {h}×{w}")

    # -- the losses ------------------------------------------------------------

    def draw_labels(self, n: int, generator: torch.Generator,
                    device: torch.device | str) -> dict[str, Tensor]:
        """The auxiliary labels of a batch of ``n`` images, task by task."""
        return {t: torch.randint(TASK_CLASSES[t], (n,), generator=generator,
                                 device=generator.device).to(device)
                for t in self.tasks}

    def task_losses(self, model: nn.Module, x: Tensor, y: Tensor,
                    labels: dict[str, Tensor]) -> tuple[list[Tensor], Tensor]:
        """([target CE, one CE per auxiliary task], the target logits)."""
        logits = model(x)
        losses = [F.cross_entropy(logits, y)]
        for t in self.tasks:
            feats = self._features(model, transform(t, x, labels[t])).flatten(1)
            losses.append(F.cross_entropy(self.heads[t](feats), labels[t]))
        return losses, logits

    @torch.enable_grad()
    def adversarial(self, model: nn.Module, x: Tensor, y: Tensor,
                    generator: torch.Generator,
                    labels: dict[str, Tensor]) -> Tensor:
        c = self.cfg
        if c["attack"] == "target":
            return _pgd_linf(model, x, y, generator, eps=c["eps"],
                             alpha=c["alpha"], steps=c["steps"])
        x = x.detach()
        project = LinfBall(c["eps"]).projector(x)
        with model_frozen(model):
            noise = torch.rand(x.shape, generator=generator, device=x.device,
                               dtype=x.dtype)
            x_adv = project(x + (2 * noise - 1) * c["eps"])
            for _ in range(c["steps"]):
                x_adv.requires_grad_(True)
                loss = sum(self.task_losses(model, x_adv, y, labels)[0])
                (grad,) = torch.autograd.grad(loss, x_adv)
                x_adv = project(x_adv.detach() + c["alpha"] * grad.sign())
        return x_adv.detach()

    def weights(self, model: nn.Module, losses: list[Tensor]) -> Tensor:
        """The task weights of this step (see the module doc)."""
        tasks = len(losses)
        if self.cfg["weighting"] == "equal":
            return torch.full((tasks,), 1.0 / tasks)
        params = [p for p in model.parameters() if p.requires_grad]
        # The shared parameters: those the auxiliary heads' losses reach.
        aux = torch.autograd.grad(losses[1], params, retain_graph=True,
                                  allow_unused=True)
        shared = [p for p, g in zip(params, aux, strict=True) if g is not None]
        rows = [torch.cat([g.flatten() for g in aux if g is not None])]
        for loss in (losses[0], *losses[2:]):
            grads = torch.autograd.grad(loss, shared, retain_graph=True,
                                        allow_unused=True)
            rows.append(torch.cat([torch.zeros_like(p).flatten() if g is None
                                   else g.flatten()
                                   for p, g in zip(shared, grads, strict=True)]))
        rows = [rows[1], rows[0], *rows[2:]]  # target first, as the losses
        grads = torch.stack(rows).detach()
        norm = self.cfg["normalize"]
        if norm == "l2":
            grads = grads / grads.norm(dim=1, keepdim=True).clamp_min(1e-12)
        elif norm == "loss":
            scale = torch.stack([v.detach() for v in losses]).clamp_min(1e-12)
            grads = grads / scale.to(grads.dtype)[:, None]
        return mgda_weights(grads)

    def loss(self, model, x, y, generator):
        self._check_shape(x)
        if self.heads is None:
            self._build(model, x, generator)
        labels = self.draw_labels(len(y), generator, x.device)
        x_adv = self.adversarial(model, x, y, generator, labels)
        losses, logits = self.task_losses(model, x_adv, y, labels)
        w = self.weights(model, losses).to(x.device)
        self.last_weights = [float(v) for v in w]
        self.last_losses = {name: float(v.detach()) for name, v in
                            zip(("target", *self.tasks), losses, strict=True)}
        total = sum(wt * lt for wt, lt in zip(w, losses, strict=True))
        return total, logits

    def after_backward(self) -> None:
        """The heads' Adam step on the gradients of the trainer's backward."""
        if self.head_opt is not None:
            self.head_opt.step()
            self.head_opt.zero_grad(set_to_none=True)

    # -- checkpoints -----------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        if self.heads is None:
            return dict(self._pending) if self._pending else {}
        dim = next(iter(self.heads.values())).in_features
        return {"dim": dim, "heads": self.heads.state_dict(),
                "optimizer": self.head_opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # Built (and moved to the data's device) at the next batch.
        self.heads, self.head_opt = None, None
        self._pending = dict(state) if state else None
