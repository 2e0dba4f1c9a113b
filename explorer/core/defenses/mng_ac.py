"""MNG-AC (Madaan, Shin & Hwang 2021): a meta noise generator plus an
adversarial consistency loss, on top of SAT's per-batch threat model.

Per batch:

1. Draw one threat model (l-inf, l2 or l1) uniformly with the method's
   generator and craft the PGD example in its ball, model frozen (as ``sat``).
2. Meta step of the noise generator g_phi: it turns the clean image and a
   standard-normal tensor into noise, which is fitted into the same ball and
   the pixel box (``x_aug``). A one-step lookahead of the classifier,
   ``theta' = theta - inner_lr * grad_theta CE(f_theta(x_aug), y)``, is taken
   with ``torch.func.functional_call`` (the model's own weights and batch-norm
   statistics are untouched); phi then takes one Adam step on
   ``CE(f_theta'(x_adv), y)``. That gradient exists only through theta', so
   it is second order (a double backward through the classifier).
3. Classifier loss, as the paper's step 2 and its released code: the
   stochastic adversarial loss ``CE(f(x_adv), y)`` plus ``beta`` times the
   Jensen-Shannon divergence among the predictions on the clean, adversarial
   and (new, updated-generator) augmented images. The trainer does the
   backward pass and the classifier's optimizer step.

The generator is built at the first batch (its input channels come from the
data) with weights seeded from the method's generator; its weights and Adam
state go into ``state_dict()`` so a resumed run continues exactly.

The switches ``ac`` and ``mng`` reproduce the paper's component ablation:
both off is SAT (step 1 only, no generator), ``ac`` alone is SAT+AC (the
consistency term over the clean and adversarial predictions, no generator),
both on (the default) is SAT+AC+MNG. ``mng`` without ``ac`` is refused: the
generated samples enter the loss only through the consistency term.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from explorer.core.defenses.multi import PARAMS, StochasticAdversarial
from explorer.core.params import Param, ParamError

_TINY = 1e-12
MNG_PARAMS = (
    *PARAMS,
    Param("beta", float, 12.0, "weight of the adversarial consistency (JS) "
          "loss", minimum=0.0, maximum=100.0),
    Param("gen_lr", float, 1e-3, "Adam learning rate of the noise generator",
          minimum=1e-7, maximum=1.0),
    Param("inner_lr", float, 0.1, "step size of the classifier's one-step "
          "lookahead in the meta update", minimum=1e-7, maximum=10.0),
    Param("gen_width", int, 16, "channels of the noise generator's hidden "
          "conv layers", minimum=1, maximum=256),
    Param("ac", bool, True, "adversarial consistency (JS) term; off with mng "
          "off is SAT"),
    Param("mng", bool, True, "meta noise generator (needs ac); off with ac on "
          "is SAT+AC"),
)  # fmt: skip


class NoiseGenerator(nn.Module):
    """Three 3x3 convolutions on [image, noise]; the noise passes through a
    residual connection, so an untrained generator outputs about the noise."""

    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(2 * channels, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, channels, 3, padding=1))
        for m in self.layers:
            if isinstance(m, nn.Conv2d):
                # Small weights, as the paper's generator: start near pure noise.
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        return z + self.layers(torch.cat([x, z], dim=1))


def consistency_loss(*logits: Tensor) -> Tensor:
    """Jensen-Shannon divergence among the softmax predictions of several
    batches of logits: mean over k of KL(p_k || M), M the mixture; batch mean.
    Zero exactly when all predictive distributions agree."""
    probs = [F.softmax(z, dim=1) for z in logits]
    log_mix = (sum(probs) / len(probs)).clamp(1e-7, 1).log()
    return sum(F.kl_div(log_mix, p, reduction="batchmean") for p in probs) / len(probs)


class MetaNoiseConsistency(StochasticAdversarial):
    name = "mng-ac"
    sync = "average"  # a functional meta step with torch.autograd.grad
    title = "MNG-AC (meta noise generator + adversarial consistency)"
    description = ("Madaan et al. 2021: each batch trains on PGD examples of one "
                   "randomly drawn threat model (l-inf, l2 or l1), plus a "
                   "consistency penalty between the predictions on clean, "
                   "adversarial and noisy images. The noise comes from a small "
                   "generator meta-learned so that a step on noisy images "
                   "lowers the adversarial loss.")
    params = MNG_PARAMS

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        if self.cfg["mng"] and not self.cfg["ac"]:
            raise ParamError("mng needs ac: the generated samples enter the loss "
                             "only through the consistency term (set ac=true, or "
                             "mng=false for SAT)")
        self.noise_gen: NoiseGenerator | None = None
        self.gen_opt: torch.optim.Adam | None = None
        self.last_meta_loss: float | None = None
        self.last_consistency: float | None = None
        self._pending: dict[str, Any] | None = None

    # -- the generator ---------------------------------------------------------

    def _build(self, x: Tensor, generator: torch.Generator) -> None:
        pending, self._pending = self._pending, None
        channels = int(pending["channels"]) if pending else x.shape[1]
        # A fresh run seeds the weights from the method's generator; a resumed
        # one overwrites them, so it draws nothing (its RNG state is restored).
        seed = 0 if pending else int(torch.randint(
            2**31 - 1, (1,), generator=generator, device=generator.device))
        with torch.random.fork_rng(devices=[]):  # leave the global RNG alone
            torch.manual_seed(seed)
            gen = NoiseGenerator(channels, self.cfg["gen_width"])
        self.noise_gen = gen.to(x.device)
        self.gen_opt = torch.optim.Adam(self.noise_gen.parameters(),
                                        lr=self.cfg["gen_lr"])
        if pending:
            self.noise_gen.load_state_dict(pending["generator"])
            self.gen_opt.load_state_dict(pending["optimizer"])

    def augment(self, x: Tensor, generator: torch.Generator, norm: str) -> Tensor:
        """``x`` plus generated noise fitted into the ``norm`` ball (l-inf:
        clamped to ±eps; l2 and l1: scaled to radius eps) and the box [0, 1].
        Differentiable in the generator's weights."""
        z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        noise = self.noise_gen(x, z)
        eps = self.cfg[f"eps_{norm}"]
        if norm == "linf":
            noise = noise.clamp(-eps, eps)
        else:
            size = self.threat(norm).size(noise).clamp_min(_TINY)
            noise = noise * (eps / size).view(-1, *([1] * (x.dim() - 1)))
        # Clamping to the box only shortens coordinates, so it stays in the ball.
        return (x + noise).clamp(0, 1)

    def meta_step(self, model: nn.Module, x: Tensor, y: Tensor, x_adv: Tensor,
                  generator: torch.Generator, norm: str) -> float:
        """One Adam step of the generator on the adversarial loss after the
        classifier's lookahead on generated samples (second order)."""
        params = {k: p for k, p in model.named_parameters() if p.requires_grad}
        # Cloned buffers: batch norm uses batch statistics (train mode) without
        # moving the model's running estimates.
        buffers = {k: b.clone() for k, b in model.named_buffers()}
        x_aug = self.augment(x, generator, norm)
        inner = F.cross_entropy(functional_call(model, (params, buffers), (x_aug,)), y)
        grads = torch.autograd.grad(inner, list(params.values()), create_graph=True,
                                    allow_unused=True)
        ahead = {k: p if g is None else p - self.cfg["inner_lr"] * g
                 for (k, p), g in zip(params.items(), grads, strict=True)}
        outer = F.cross_entropy(functional_call(model, (ahead, buffers), (x_adv,)), y)
        gen_params = list(self.noise_gen.parameters())
        # autograd.grad, not backward: the classifier's .grad stays untouched.
        gen_grads = torch.autograd.grad(outer, gen_params, allow_unused=True)
        for p, g in zip(gen_params, gen_grads, strict=True):
            p.grad = torch.zeros_like(p) if g is None else g
        self.gen_opt.step()
        self.gen_opt.zero_grad(set_to_none=True)
        return float(outer.detach())

    # -- the defense -----------------------------------------------------------

    def loss(self, model, x, y, generator):
        use_mng, use_ac = self.cfg["mng"], self.cfg["ac"]
        if use_mng and self.noise_gen is None:
            self._build(x, generator)
        norm = self.last_norm = self.draw(generator)
        x_adv = self.adversarial(model, x, y, generator, norm)
        self.last_consistency = None
        if not use_ac:  # SAT
            logits_adv = model(x_adv)
            return F.cross_entropy(logits_adv, y), logits_adv
        inputs = [x, x_adv]
        if use_mng:
            self.last_meta_loss = self.meta_step(model, x, y, x_adv, generator,
                                                 norm)
            with torch.no_grad():
                inputs.append(self.augment(x, generator, norm))
        # Separate passes, as the paper: batch norm sees one kind of input each.
        logits = [model(inp) for inp in inputs]
        consistency = consistency_loss(*logits)
        self.last_consistency = float(consistency.detach())
        loss = F.cross_entropy(logits[1], y) + self.cfg["beta"] * consistency
        return loss, logits[1]

    def state_dict(self) -> dict[str, Any]:
        if self.noise_gen is None:
            return dict(self._pending) if self._pending else {}
        channels = self.noise_gen.layers[-1].out_channels
        return {"channels": channels, "generator": self.noise_gen.state_dict(),
                "optimizer": self.gen_opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # Built (and moved to the data's device) at the next batch.
        self.noise_gen, self.gen_opt = None, None
        self._pending = dict(state) if state else None
