"""Build explorer/resources/fashion-mnist-mini.npz, a class-balanced subset of
Fashion-MNIST.

Takes ``--per-class-train`` (600) and ``--per-class-test`` (100) images of each
class from the official IDX files, chosen with a seeded NumPy generator and
kept in their original file order, so the same seed always gives the same file.

    python scripts/make_fmnist_mini.py [--src DIR] [--out FILE] [--seed N]
"""

from __future__ import annotations

import argparse
import hashlib
import io
from pathlib import Path

import numpy as np

from explorer.core.data.idx import IdxError, read_idx
from explorer.core.fileio import atomic_write_bytes

FILENAME = "fashion-mnist-mini.npz"
DEFAULT_SRC = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "explorer" / "resources" / FILENAME
NUM_CLASSES = 10


def find_file(src: Path, stem: str) -> Path:
    for candidate in (src / f"{stem}.gz", src / stem):
        if candidate.is_file():
            return candidate
    raise SystemExit(f"error: {src} has neither {stem}.gz nor {stem}")


def balanced_subset(
    images: np.ndarray, labels: np.ndarray, per_class: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    chosen = []
    for c in range(NUM_CLASSES):
        idx = np.flatnonzero(labels == c)
        if len(idx) < per_class:
            raise SystemExit(f"error: class {c} has only {len(idx)} images")
        chosen.append(rng.choice(idx, size=per_class, replace=False))
    keep = np.sort(np.concatenate(chosen))
    return np.ascontiguousarray(images[keep]), labels[keep].astype(np.uint8)


def load_split(src: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        images = read_idx(find_file(src, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(find_file(src, f"{prefix}-labels-idx1-ubyte"))
    except IdxError as exc:
        raise SystemExit(f"error: {exc}") from None
    if images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise SystemExit(f"error: unexpected shapes {images.shape} / {labels.shape}")
    return images, labels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--src",
        type=Path,
        default=DEFAULT_SRC,
        help="folder with the official Fashion-MNIST IDX files",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="npz to write")
    parser.add_argument("--seed", type=int, default=0, help="selection seed")
    parser.add_argument("--per-class-train", type=int, default=600)
    parser.add_argument("--per-class-test", type=int, default=100)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    x_train, y_train = balanced_subset(
        *load_split(args.src, "train"), args.per_class_train, rng
    )
    x_test, y_test = balanced_subset(
        *load_split(args.src, "t10k"), args.per_class_test, rng
    )

    buffer = io.BytesIO()
    np.savez_compressed(
        buffer, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test
    )
    data = buffer.getvalue()
    atomic_write_bytes(args.out, data)

    print(
        f"wrote {args.out} ({len(data) / 1e6:.2f} MB, sha256 "
        f"{hashlib.sha256(data).hexdigest()[:16]}…)"
    )
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        counts = np.bincount(y, minlength=NUM_CLASSES).tolist()
        print(
            f"  {split}: x {x.shape} {x.dtype}, per-class counts {counts}, "
            f"mean pixel {x.mean() / 255:.4f}, std {x.std() / 255:.4f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
