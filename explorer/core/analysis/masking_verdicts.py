"""The verdicts of the gradient-masking checks: one function per check
turning measured accuracies (or losses, or logits) into a :class:`CheckResult`
with the numbers and a one-line explanation of the outcome.

:func:`remedies` names the adaptive attack the warnings call for (Athalye et
al. 2018): EOT when the outputs are random, BPDA when the gradients look
shattered (zero or useless: the loss does not rise, a black-box attack wins,
a huge budget still fails) and the outputs are not random.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import Tensor, nn

from explorer.core.inference import logits_of

STRONGER = 5  # the stronger PGD takes this many times the steps
STRONG_RESTARTS = 3
LOSS_RISE_SHARE = 0.9  # images whose loss must rise along PGD for a pass


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check: ``passed`` False means a warning.

    ``value_text`` holds the measured numbers ("PGD-10 61% vs FGSM 67%");
    ``explanation`` one plain-language line for the outcome; ``key`` a stable
    identifier; ``details`` the numbers behind it (JSON-friendly).
    """

    name: str
    passed: bool
    value_text: str
    explanation: str
    key: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return "pass" if self.passed else "warning"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CheckResult:
        """Rebuild from :meth:`as_dict` (e.g. a stored run's summary)."""
        return cls(d["name"], bool(d["passed"]), d["value_text"], d["explanation"],
                   d.get("key", ""), dict(d.get("details", {})))


def _pct(a: float) -> str:
    return f"{100 * a:.1f}%"


def single_step_check(acc, steps, slack) -> CheckResult:
    passed = acc["pgd"] <= acc["single_step"] + slack
    text = f"PGD-{steps} {_pct(acc['pgd'])} vs single step {_pct(acc['single_step'])}"
    why = ("Many small gradient steps fooled the model at least as often as one "
           "big step, as they should." if passed else
           "One big gradient step beat many small ones: the gradients near the "
           "input mislead the attack (masking), so PGD's accuracy is too optimistic.")
    return CheckResult("Iterative stronger than single-step", passed, text, why,
                       "iterative-vs-single-step",
                       {"pgd": acc["pgd"], "single_step": acc["single_step"],
                        "slack": slack})


def more_steps_check(acc, steps, slack) -> CheckResult:
    drop = acc["pgd"] - acc["pgd_strong"]
    passed = drop <= slack
    text = (f"PGD-{steps} {_pct(acc['pgd'])} vs PGD-{STRONGER * steps} × "
            f"{STRONG_RESTARTS} restarts {_pct(acc['pgd_strong'])}")
    why = ("More steps and restarts changed accuracy little: the base attack has "
           "converged." if passed else
           f"More steps and restarts lowered accuracy by {100 * drop:.1f} points: "
           "the base attack is too weak, so trust only the stronger number.")
    return CheckResult("More steps and restarts do not help much", passed, text,
                       why, "more-steps-restarts",
                       {"pgd": acc["pgd"], "pgd_strong": acc["pgd_strong"],
                        "drop": drop, "slack": slack})


def black_box_check(acc, spsa, steps, slack) -> CheckResult:
    gaps = {"square": acc["pgd"] - acc["square"]}
    text = f"PGD-{steps} {_pct(acc['pgd'])} vs Square {_pct(acc['square'])}"
    details: dict[str, Any] = {"pgd": acc["pgd"], "square": acc["square"],
                               "slack": slack}
    if spsa is not None:
        m, pgd_sub, spsa_acc = spsa
        gaps["spsa"] = pgd_sub - spsa_acc
        text += f"; on {m} images PGD {_pct(pgd_sub)} vs SPSA {_pct(spsa_acc)}"
        details.update(spsa=spsa_acc, pgd_on_spsa_images=pgd_sub, spsa_images=m)
    worst = max(gaps, key=gaps.get)
    passed = gaps[worst] <= slack
    why = ("Attacks that see gradients did at least as well as attacks that only "
           "see outputs." if passed else
           f"{'Square' if worst == 'square' else 'SPSA'}, which never looks at "
           "gradients, beat PGD: the gradients are not helping the attack, a "
           "classic sign of gradient masking (shattered gradients: use BPDA).")
    return CheckResult("White-box stronger than black-box", passed, text, why,
                       "white-vs-black-box", details)


def large_eps_check(acc, sweep, large, slack) -> CheckResult:
    passed = acc["pgd_large"] <= slack
    text = f"PGD accuracy at eps {large:.3g}: {_pct(acc['pgd_large'])}"
    why = ("With a huge budget PGD fools almost every image, as it must." if passed
           else f"Even with a huge budget PGD leaves {_pct(acc['pgd_large'])} "
           "correct: the attack cannot find its way, a sign of masked or "
           "obfuscated gradients (shattered ones: use BPDA).")
    return CheckResult("Accuracy reaches 0 as eps grows", passed, text, why,
                       "large-eps", {"eps": sweep["eps"],
                                     "robust_acc": sweep["robust_acc"],
                                     "slack": slack})


def loss_check(losses: Tensor) -> CheckResult:
    first, last = losses[0], losses[1]
    # A relative margin keeps float noise on a flat loss from counting as a rise.
    rose = last > first + 1e-4 * (1 + first.abs())
    share = float(rose.float().mean())
    passed = share >= LOSS_RISE_SHARE
    text = (f"loss rose for {_pct(share)} of images (mean "
            f"{float(first.mean()):.3g} → {float(last.mean()):.3g})")
    why = ("The attack loss rose along the PGD steps for almost every image."
           if passed else
           "The attack loss did not rise for many images: the gradients give no "
           "useful direction (zero, noisy or obfuscated; shattered: use BPDA).")
    return CheckResult("Loss increases along the attack", passed, text, why,
                       "loss-rises", {"share_rose": share,
                                      "threshold": LOSS_RISE_SHARE,
                                      "loss_first_mean": float(first.mean()),
                                      "loss_last_mean": float(last.mean())})


def deterministic_check(model: nn.Module, x: Tensor) -> CheckResult:
    a, b = logits_of(model, x), logits_of(model, x)
    diff = float((a - b).abs().max())
    passed = diff <= 1e-5 * (1 + float(a.abs().max()))
    text = f"largest change between two calls: {diff:.3g}"
    why = ("The model gives the same outputs on repeated calls." if passed else
           "Outputs change between calls on the same input: a randomized defense "
           "needs attacks that average over its randomness (use EOT); single "
           "runs overstate robustness.")
    return CheckResult("Deterministic outputs", passed, text, why,
                       "deterministic", {"max_logit_change": diff})


EOT, BPDA = "eot", "bpda"
RANDOMIZED = "deterministic"  # the check whose warning means random outputs
SHATTERED = ("loss-rises", "white-vs-black-box", "large-eps")


def remedies(failed: Iterable[str]) -> list[str]:
    """The adaptive attack the failed checks (their keys) call for: ``["eot"]``
    when the outputs are random (which also explains the other warnings),
    else ``["bpda"]`` when the gradients look shattered, else none."""
    failed = set(failed)
    if RANDOMIZED in failed:
        return [EOT]
    return [BPDA] if failed & set(SHATTERED) else []
