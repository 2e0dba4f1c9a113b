"""The HTML report is self-contained and complete; CSV and JSON keep the numbers."""

from __future__ import annotations

import base64
import csv
import io
import json
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from explorer.core.analysis.report import (
    best_rows,
    write_csv,
    write_html,
    write_json,
)
from explorer.core.analysis.report_svg import nice_ticks


def _check(key, passed):
    return {"key": key, "name": f"check {key}", "passed": passed,
            "status": "pass" if passed else "warning",
            "value_text": "PGD 10% vs FGSM 20%", "explanation": f"why {key}"}


@pytest.fixture
def results():
    rng = np.random.default_rng(0)
    x = rng.random((3, 1, 6, 6)).astype(np.float32)
    return {
        "suite": "quick", "eps": 0.1, "n": 50, "classes": ["cat", "dog"],
        "config": {"data": "toy & <set>"},
        "models": [
            {"model": "alpha", "clean_acc": 0.9123, "robust_acc": 0.3456,
             "per_attack": {"apgd-ce": 0.3456}, "n": 50, "total_seconds": 1.5,
             "sweep": {"eps": [0.0, 0.05, 0.1], "robust_acc": [0.9123, 0.6, 0.3456],
                       "attack": "apgd-ce"},
             "checks": [_check("large-eps", True), _check("deterministic", True)]},
            {"model": "beta <b>", "clean_acc": 0.8, "robust_acc": 0.5551,
             "per_attack": {"apgd-ce": 0.5551}, "n": 50, "total_seconds": 2.0,
             "sweep": {"eps": [0.0, 0.05, 0.1], "robust_acc": [0.8, 0.7, 0.5551],
                       "attack": "apgd-ce"},
             "checks": [_check("large-eps", False)]},
        ],
        "examples": {"x": x, "y": [0, 1, 1], "attack": "apgd-ce",
                     "x_adv": {"alpha": x, "beta <b>": x},
                     "pred_clean": {"alpha": [0, 1, 1], "beta <b>": [0, 1, 0]},
                     "pred_adv": {"alpha": [1, 1, 0], "beta <b>": [0, 1, 0]}},
    }


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.attrs: list[tuple[str, str, str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.attrs += [(tag, k, v or "") for k, v in attrs]

    def handle_data(self, data):
        self.text.append(data)


def test_html_parses_and_holds_every_number(tmp_path, results):
    path = write_html(results, tmp_path / "r.html")
    page = path.read_text(encoding="utf-8")
    parser = _Collect()
    parser.feed(page)
    parser.close()
    text = " ".join(parser.text)
    for number in ("91.2%", "34.6%", "80.0%", "55.5%"):
        assert number in text
    assert "beta <b>" in text
    assert "<b>" not in page.replace("&lt;b&gt;", "")
    assert "python" in text
    assert "torch" in text
    assert "explorer" in text
    assert "why large-eps" in text
    assert "warning" in text
    assert "eps (pixel units" in text
    assert "accuracy (%)" in text
    assert page.count("<svg") == 2
    assert "cat → dog" in text
    best = [v for t, k, v in parser.attrs if t == "td" and k == "class"]
    assert best.count("best") == 3  # clean: alpha; apgd-ce and robust: beta


def test_html_has_no_external_links_and_its_images_decode(tmp_path, results):
    page = write_html(results, tmp_path / "r.html").read_text(encoding="utf-8")
    parser = _Collect()
    parser.feed(page)
    links = [v for _, k, v in parser.attrs if k in ("src", "href")]
    assert "http://" not in page
    assert "https://" not in page
    assert links
    assert all(v.startswith("data:image/png;base64,") for v in links)
    assert len(links) == 9  # 3 clean + 3 per model
    for v in links:
        image = Image.open(io.BytesIO(base64.b64decode(v.split(",", 1)[1])))
        assert image.size == (6, 6)


def test_a_single_cli_result_without_extras_still_renders(tmp_path):
    one = {"model": "m", "clean_acc": 0.5, "robust_acc": 0.25, "n": 4,
           "per_attack": {"apgd-ce": 0.25}, "data": "d", "split": "test"}
    page = write_html(one, tmp_path / "one.html").read_text(encoding="utf-8")
    assert "25.0%" in page
    assert "No gradient-masking checks" in page


def test_csv_round_trips_the_numbers(tmp_path, results):
    rows = list(csv.DictReader(io.StringIO(
        write_csv(results, tmp_path / "r.csv").read_text(encoding="utf-8"))))
    got = {(r["model"], r["metric"], r["eps"]): float(r["value"]) for r in rows}
    assert got[("alpha", "clean_acc", "")] == 0.9123
    assert got[("beta <b>", "per_attack:apgd-ce", "")] == 0.5551
    assert got[("alpha", "sweep_robust_acc", "0.05")] == 0.6
    assert got[("beta <b>", "check:large-eps", "")] == 0.0
    assert got[("alpha", "seconds", "")] == 1.5


def test_json_keeps_numbers_and_drops_pixels(tmp_path, results):
    results["models"][0]["per_attack"]["nan-stage"] = float("nan")
    loaded = json.loads(write_json(results, tmp_path / "r.json").read_text())
    assert loaded["models"][1]["robust_acc"] == 0.5551
    assert loaded["models"][0]["per_attack"]["nan-stage"] is None
    assert "x" not in loaded["examples"]
    assert loaded["examples"]["pred_adv"]
    assert loaded["versions"]["explorer"]


def test_best_rows_and_ticks():
    entries = [{"clean_acc": 0.5}, {"clean_acc": 0.5}, {"clean_acc": 0.2}, {}]
    assert best_rows(entries, "clean_acc") == {0, 1}
    assert best_rows([{}], "robust_acc") == set()
    assert nice_ticks(0, 0.2) == pytest.approx([0, 0.05, 0.1, 0.15, 0.2])
    assert nice_ticks(0, 100) == pytest.approx([0, 20, 40, 60, 80, 100])
