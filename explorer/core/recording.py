"""Recordings: frames (HxWx3 uint8) to an animated GIF or an MP4 file.

GIF goes through imageio's Pillow plugin; MP4 through imageio-ffmpeg when it
is installed (a clear :class:`ParamError` naming the package otherwise).
:func:`attack_frame` composes one frame of an attack's step: original |
perturbation (amplified, centred at grey) | adversarial, with the top-5 class
probability bars under the adversarial image. Plain numpy/Pillow, no Qt.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from explorer.core.params import ParamError

if TYPE_CHECKING:
    from explorer.core.jobs import Event

FORMATS = (".gif", ".mp4")
TOP_K = 5
_PANEL = 140  # the smallest side an image panel is scaled up to (pixels)
_GAP = 8
_TEXT = 14  # height of one line of text
_BAR = 14  # height of one probability bar
_BG = (255, 255, 255)
_INK = (20, 20, 20)
_BAR_FG = (31, 119, 180)
_BAR_HIT = (214, 39, 40)


def check_path(path: str | Path, what: str = "recording") -> Path:
    """The file's path if its extension is one we write; ParamError otherwise."""
    p = Path(path)
    if p.suffix.lower() not in FORMATS:
        raise ParamError(f"{what} must end in .gif or .mp4, got {str(p)!r}")
    if p.suffix.lower() == ".mp4":
        _require_ffmpeg(p)
    return p


def _require_ffmpeg(path: Path) -> None:
    if importlib.util.find_spec("imageio_ffmpeg") is None:
        raise ParamError(f"{path.name}: writing MP4 needs the imageio-ffmpeg package "
                         "(pip install imageio-ffmpeg); or record to .gif")


def write_frames(path: str | Path, frames: Sequence[np.ndarray],
                 duration: float = 0.2) -> Path:
    """Write ``frames`` (HxWx3 uint8, all one size) as an animation.

    ``duration``: seconds each frame is shown. A GIF loops forever; an MP4
    runs at ``1 / duration`` frames per second, padded to even sides (H.264).
    Identical consecutive frames may be merged in a GIF (same animation)."""
    p = check_path(path)
    if not frames:
        raise ParamError(f"{p.name}: nothing to write, the recording has no frames")
    if duration <= 0:
        raise ParamError(f"duration must be positive, got {duration}")
    shape = frames[0].shape
    for i, f in enumerate(frames):
        if f.dtype != np.uint8 or f.ndim != 3 or f.shape[2] != 3:
            raise ParamError(f"frame {i} must be HxWx3 uint8, got {f.shape} {f.dtype}")
        if f.shape != shape:
            raise ParamError(f"frame {i} is {f.shape[:2]}, the first {shape[:2]}: "
                             "all frames of a recording must be one size")
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.suffix.lower() == ".gif":
        import imageio.v3 as iio

        iio.imwrite(p, np.stack(frames), extension=".gif", plugin="pillow",
                    duration=round(duration * 1000), loop=0)
    else:
        import imageio.v2 as iio2

        h, w = shape[:2]
        pad = ((0, h % 2), (0, w % 2), (0, 0))
        with iio2.get_writer(p, format="FFMPEG", mode="I", fps=1.0 / duration,
                             macro_block_size=1, codec="libx264",
                             pixelformat="yuv420p") as writer:
            for f in frames:
                writer.append_data(np.pad(f, pad, mode="edge"))
    return p


# -- the attack-step frame -----------------------------------------------------
def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default()


def _to_hwc(x: np.ndarray) -> np.ndarray:
    """CxHxW (1 or 3 channels) or HxW floats in [0, 1] → HxWx3 uint8."""
    a = np.asarray(x, dtype=np.float32)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[0] not in (1, 3):
        raise ParamError(f"an image must be CxHxW with 1 or 3 channels, got {a.shape}")
    if a.shape[0] == 1:
        a = np.repeat(a, 3, axis=0)
    return (np.clip(a, 0, 1).transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8)


def _scale(img: np.ndarray, k: int) -> np.ndarray:
    return np.repeat(np.repeat(img, k, axis=0), k, axis=1)


def attack_frame(x: np.ndarray, x_adv: np.ndarray, probs: np.ndarray,
                 classes: Sequence[str], *, label: int | None = None,
                 step: int | None = None, total: int | None = None,
                 amplify: float | None = None) -> np.ndarray:
    """One frame: original | perturbation | adversarial, the top-5 bars below.

    ``x``/``x_adv``: CxHxW in [0, 1]; ``probs``: the model's class
    probabilities at ``x_adv``. The perturbation is shown as
    ``0.5 + amplify * (x_adv - x)``; ``amplify=None`` scales the largest
    change to half the grey range (a zero perturbation stays flat grey).
    The frame's size depends only on the image's size and the class count."""
    orig, adv = np.asarray(x, np.float32), np.asarray(x_adv, np.float32)
    if orig.shape != adv.shape:
        raise ParamError(f"x and x_adv differ in shape: {orig.shape} vs {adv.shape}")
    delta = adv - orig
    if amplify is None:
        top = float(np.abs(delta).max())
        amplify = 0.5 / top if top > 0 else 1.0
    panels = [_to_hwc(orig), _to_hwc(0.5 + amplify * delta), _to_hwc(adv)]
    h, w = panels[0].shape[:2]
    k = max(1, -(-_PANEL // max(h, w)))
    panels = [_scale(p, k) for p in panels]
    ph, pw = h * k, w * k
    p = np.asarray(probs, dtype=np.float64).reshape(-1)
    n_bars = min(TOP_K, len(p))
    width = 3 * pw + 4 * _GAP
    height = _GAP + _TEXT + ph + _GAP + n_bars * _BAR + _TEXT + _GAP
    canvas = Image.new("RGB", (width, height), _BG)
    draw = ImageDraw.Draw(canvas)
    font = _font()
    titles = ["original", f"perturbation x{amplify:.3g}", "adversarial"]
    for i, (panel, title) in enumerate(zip(panels, titles, strict=True)):
        left = _GAP + i * (pw + _GAP)
        draw.text((left, _GAP), title, fill=_INK, font=font)
        canvas.paste(Image.fromarray(panel), (left, _GAP + _TEXT))
    below = _GAP + _TEXT + ph + _GAP
    info = []
    if step is not None:
        info.append(f"step {step}" + (f"/{total}" if total is not None else ""))
    if label is not None and 0 <= label < len(classes):
        info.append(f"true: {classes[label]}")
    if info:
        draw.text((_GAP, below), "  ".join(info), fill=_INK, font=font)
    order = np.argsort(-p)[:n_bars]
    left = _GAP + 2 * (pw + _GAP)
    name_w = 62
    for r, c in enumerate(order):
        top = below + r * _BAR
        name = classes[c] if c < len(classes) else str(c)
        draw.text((left, top), name[:10], fill=_INK, font=font)
        bar_w = round(float(p[c]) * (pw - name_w - 32))
        colour = _BAR_HIT if label is not None and c != label and r == 0 else _BAR_FG
        if bar_w > 0:
            draw.rectangle((left + name_w, top + 2, left + name_w + bar_w,
                            top + _BAR - 3), fill=colour)
        draw.text((left + name_w + bar_w + 3, top), f"{100 * p[c]:.0f}%",
                  fill=_INK, font=font)
    return np.asarray(canvas, dtype=np.uint8).copy()


def attack_frames(attack, x, y, classes: Sequence[str],
                  target=None) -> list[np.ndarray]:
    """One :func:`attack_frame` per step of ``attack.run`` on one image.

    ``x``: a 1xCxHxW tensor, ``y``: its label (1-element tensor). The live
    run yields the start (step 0) and then every step, so an attack of
    ``steps`` steps gives ``steps + 1`` frames."""
    import contextlib

    import torch

    frames: list[np.ndarray] = []
    x0 = x[0].detach().cpu().numpy()
    label = int(y.reshape(-1)[0])
    with contextlib.closing(attack.run(x, y, target)) as steps:
        for s in steps:
            logits = s.logits
            if logits is None:
                with torch.no_grad():
                    logits = attack.model(s.x_adv)
            probs = torch.softmax(logits.detach().float(), dim=1)[0].cpu().numpy()
            frames.append(attack_frame(x0, s.x_adv[0].detach().cpu().numpy(), probs,
                                       classes, label=label, step=s.step,
                                       total=s.total))
    return frames


def write_job(path: str | Path, frames: Sequence[np.ndarray], duration: float = 0.2,
              *, token) -> Iterator[Event]:
    """A job (see :mod:`explorer.core.jobs`) writing a recording off the UI
    thread; its result names the file and the frame count."""
    from explorer.core.jobs import Done, Progress

    token.check()
    yield Progress(0, 1, f"writing {Path(path).name}")
    written = write_frames(path, frames, duration)
    yield Done({"path": str(written), "frames": len(frames)})
