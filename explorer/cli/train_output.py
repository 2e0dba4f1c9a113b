"""What `explorer train` prints: a line per finished epoch (``type: epoch``
with --json) and the best checkpoint's summary."""

from __future__ import annotations

import sys
from typing import Any

from explorer.cli.running import print_line

EPOCH_METRICS = ("train_loss", "train_acc", "test_clean_acc", "test_robust_acc",
                 "lr", "epoch_seconds")  # fmt: skip
VAL_METRICS = ("val_clean_acc", "val_robust_acc")  # with a validation split


class EpochLines:
    """One line per finished epoch (``type: epoch`` with --json); a run with
    a validation split waits for its figures too. The method's own figures
    (``val_union_acc`` ... of the multi-norm methods) go into the JSON line;
    the text line adds the one that chooses the best epoch (``selection``,
    the defense's ``selection_key``) when it is not l-inf robust accuracy."""

    def __init__(self, as_json: bool, validation: bool,
                 selection: str = "robust_acc") -> None:
        self.as_json = as_json
        self.keys = EPOCH_METRICS + (VAL_METRICS if validation else ())
        self.selection = None if selection == "robust_acc" else selection
        self.rows: dict[int, dict[str, Any]] = {}

    def __call__(self, event) -> None:
        from explorer.core.jobs import Metric
        from explorer.core.training.figures import method_figure

        if not isinstance(event, Metric):
            return
        if event.name in self.keys or method_figure(event.name):
            row = self.rows.setdefault(event.step, {})
            row[event.name] = event.value
            # The trainer reports an epoch's method figures before its
            # epoch_seconds: the line is complete when the fixed keys are.
            if all(key in row for key in self.keys) and event.name in self.keys:
                _print_epoch(event.step, row, self.as_json, self.selection)
                del self.rows[event.step]


def pct(value: float | None) -> str:
    return f"{100 * value:.1f}%" if isinstance(value, int | float) else "–"


def _print_epoch(epoch: int, row: dict[str, Any], as_json: bool,
                 selection: str | None = None) -> None:
    if as_json:
        print_line("epoch", {"epoch": epoch, **row})
    else:
        from explorer.core.defenses.registry import figure_name

        def own(part: str) -> str:  # e.g. " union 41.0%"
            key = f"{part}_{selection}"
            return (f" {figure_name(key)} {pct(row[key])}"
                    if selection and key in row else "")

        val = (f", val clean {pct(row['val_clean_acc'])} robust "
               f"{pct(row['val_robust_acc'])}{own('val')}"
               if "val_robust_acc" in row else "")
        print(f"epoch {epoch}: loss {row['train_loss']:.4f}, train "
              f"{pct(row['train_acc'])}{val}, test clean "
              f"{pct(row['test_clean_acc'])} robust {pct(row['test_robust_acc'])}"
              f"{own('test')} ({row['epoch_seconds']:.1f} s)")
    sys.stdout.flush()


def best_text(results: dict[str, Any]) -> str:
    """Which epoch the best checkpoint holds, what chose it, its figures."""
    test = (f"test clean {pct(results['best_test_clean_acc'])}, robust "
            f"{pct(results['best_test_robust_acc'])}")
    if results["selected_on"] != "validation":
        return (f"no validation split, so the best checkpoint is the last epoch "
                f"({results['best_epoch']}): {test}")
    from explorer.core.defenses.registry import figure_name

    metric = results.get("selected_metric") or "val_robust_acc"
    if metric == "val_robust_acc":
        return (f"best epoch {results['best_epoch']} chosen on validation "
                f"({results['val_n']} images held out; val robust "
                f"{pct(results['best_val_robust_acc'])}): {test}")
    name = figure_name(metric)
    return (f"best epoch {results['best_epoch']} chosen on validation {name} "
            f"accuracy ({results['val_n']} images held out; val {name} "
            f"{pct(results.get('best_val_selected'))}): {test}, {name} "
            f"{pct(results.get('best_test_selected'))}")
