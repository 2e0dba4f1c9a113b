"""explorer.core.recording: GIF/MP4 frames and the attack-step frame."""

from __future__ import annotations

import importlib.util

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from explorer.core import attacks, data, models, recording
from explorer.core.params import ParamError


def _frames(n: int, h: int = 20, w: int = 30) -> list[np.ndarray]:
    # each frame differs (a GIF merges identical consecutive frames)
    return [np.full((h, w, 3), 10 * i, dtype=np.uint8) for i in range(n)]


def test_gif_has_every_frame_at_its_size(tmp_path):
    path = recording.write_frames(tmp_path / "a.gif", _frames(7), duration=0.05)
    back = iio.imread(path, index=None)
    assert back.shape[:3] == (7, 20, 30)
    assert [int(f[0, 0, 0]) for f in back] == [10 * i for i in range(7)]


@pytest.mark.skipif(importlib.util.find_spec("imageio_ffmpeg") is None,
                    reason="imageio-ffmpeg is not installed")
# imageio's FFMPEG reader (the read-back, not the writer) leaves its pipes open
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_mp4_has_every_frame_padded_to_even_sides(tmp_path):
    import imageio.v2 as iio2

    path = recording.write_frames(tmp_path / "a.mp4", _frames(5, 21, 30))
    back = iio2.mimread(path, format="FFMPEG")
    assert len(back) == 5
    assert {f.shape for f in back} == {(22, 30, 3)}


def test_mp4_without_imageio_ffmpeg_names_the_package(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "imageio_ffmpeg"
                        else real(name, *a))
    with pytest.raises(ParamError, match=r"imageio-ffmpeg.*\.gif"):
        recording.write_frames(tmp_path / "a.mp4", _frames(2))


@pytest.mark.parametrize(
    ("name", "frames", "needle"),
    [("a.png", _frames(2), ".gif or .mp4"),
     ("a.gif", [], "no frames"),
     ("a.gif", [*_frames(1), np.zeros((5, 5, 3), np.uint8)], "one size"),
     ("a.gif", [np.zeros((5, 5), np.float32)], "HxWx3 uint8")],
)
def test_bad_recordings_are_named(tmp_path, name, frames, needle):
    with pytest.raises(ParamError, match=needle):
        recording.write_frames(tmp_path / name, frames)
    assert not (tmp_path / name).exists()


def test_attack_frame_shows_three_panels_and_bars():
    rng = np.random.default_rng(0)
    x = rng.random((1, 28, 28)).astype(np.float32)
    x_adv = np.clip(x + 0.03 * np.sign(rng.standard_normal(x.shape)), 0, 1)
    probs = np.array([0.05, 0.7, 0.1, 0.15])
    frame = recording.attack_frame(x, x_adv, probs, ["a", "b", "c", "d"], label=0,
                                   step=3, total=10)
    assert frame.dtype == np.uint8
    # 28 px scaled by 5 → 140 px panels, three of them and four gaps
    assert frame.shape[1] == 3 * 140 + 4 * 8
    assert frame.shape[0] > 140
    assert frame.std() > 20  # not blank
    # the perturbation panel is centred at grey and amplified to the full range
    mid = frame[30:150, 8 + 140 + 8:8 + 2 * 140 + 8]
    assert 110 < mid.mean() < 145
    assert mid.min() < 10
    assert mid.max() > 245
    # the same frame for a zero perturbation is flat grey there
    flat = recording.attack_frame(x, x, probs, ["a", "b", "c", "d"])
    assert np.ptp(flat[30:150, 8 + 140 + 8:8 + 2 * 140 + 8]) <= 1
    # top-5 of 4 classes: 4 bars, the largest (b: 70 %) the longest
    assert flat.shape == frame.shape


def test_attack_frames_one_per_step_plus_the_start():
    model = models.load_builtin("fmnist-cnn-standard")
    ds = data.load("fashion-mnist-mini", "test")
    x, y = ds[0]
    atk = attacks.create("pgd", model, seed=0, steps=3, eps=8 / 255)
    frames = recording.attack_frames(atk, x[None], torch.tensor([y]), ds.classes)
    assert len(frames) == 4
    assert len({f.shape for f in frames}) == 1
    assert not np.array_equal(frames[0], frames[-1])
