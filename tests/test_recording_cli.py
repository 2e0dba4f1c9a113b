"""`explorer attack --record`: one frame for the start and one per step."""

from __future__ import annotations

import json

import imageio.v3 as iio
import pytest

from explorer.cli import main
from explorer.store import Workspace

BASE = ["attack", "--model", "fmnist-cnn-standard"]


def test_record_writes_steps_plus_one_frames(capsys, tmp_path):
    out = tmp_path / "pgd.gif"
    code = main(["--workspace", str(tmp_path / "ws"), *BASE, "--attack", "pgd",
                 "--eps", "8/255", "--steps", "4", "--n", "8", "--record", str(out),
                 "--record-index", "2", "--json"])
    assert code == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["recording"] == str(out)
    assert r["recording_frames"] == 5  # the start + 4 steps
    frames = iio.imread(out, index=None)
    assert frames.shape[0] == 5
    assert frames.shape[1] > 140  # 28 px images scaled up, bars below
    assert frames.shape[2] == 3 * 140 + 4 * 8
    with Workspace.open(tmp_path / "ws") as store:
        (run,) = store.runs(kind="attack")
        assert run.summary["recording_frames"] == 5


def test_record_text_output_names_the_file(capsys, tmp_path):
    out = tmp_path / "fgsm.gif"
    code = main(["--workspace", str(tmp_path / "ws"), *BASE, "--attack", "fgsm",
                 "--n", "8", "--record", str(out)])
    assert code == 0
    assert f"recording: {out} (2 frames)" in capsys.readouterr().out
    assert iio.imread(out, index=None).shape[0] == 2


@pytest.mark.parametrize(
    ("extra", "needle"),
    [(["--record", "steps.png"], "--record"),
     (["--record", "steps"], "--record"),
     (["--record", "a.gif", "--record-index", "8"], "--record-index"),
     (["--record", "a.gif", "--record-index", "-1"], "--record-index")],
)
def test_bad_record_flags_exit_2_naming_the_flag(capsys, tmp_path, extra, needle):
    ws = tmp_path / "ws"
    code = main(["--workspace", str(ws), *BASE, "--attack", "fgsm", "--n", "8",
                 *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert needle in err
    assert ".gif or .mp4" in err or "[0, 7]" in err
    with Workspace.open(ws) as store:
        assert store.runs() == []
