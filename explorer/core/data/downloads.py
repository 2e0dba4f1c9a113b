"""Download job for the torchvision sets: chunked, cancellable, MD5-checked, atomic.

URLs and checksums come from torchvision's own dataset classes, so they follow
the installed torchvision. Files land where torchvision's loaders look for them.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from explorer.core.data.base import DataError
from explorer.core.data.torchvision_sets import tvd
from explorer.core.fileio import atomic_path, atomic_write_bytes, reason
from explorer.core.jobs import CancelToken, Done, Event, Log, Progress, ProgressThrottle

CHUNK = 1 << 16
TIMEOUT_S = 30.0


@dataclass(frozen=True)
class RemoteFile:
    urls: tuple[str, ...]  # mirrors, tried in order
    dest: Path
    md5: str
    unpack: str = ""  # "gz" (one IDX file) or "tar" (an archive) after download


def remote_files(
    name: str, root: Path, splits: Sequence[str] | None = None
) -> list[RemoteFile]:
    """What to fetch for data set ``name`` into ``root``."""
    if name in ("mnist", "fashion-mnist"):
        cls = tvd.MNIST if name == "mnist" else tvd.FashionMNIST
        raw = root / cls.__name__ / "raw"
        return [
            RemoteFile(
                tuple(m + filename for m in cls.mirrors), raw / filename, md5, "gz"
            )
            for filename, md5 in cls.resources
        ]
    if name == "cifar10":
        cls = tvd.CIFAR10
        return [RemoteFile((cls.url,), root / cls.filename, cls.tgz_md5, "tar")]
    if name == "svhn":
        chosen = splits or ("train", "test")
        unknown = [s for s in chosen if s not in tvd.SVHN.split_list]
        if unknown:
            raise DataError(f"svhn has no split {unknown[0]!r} (train, test, extra)")
        return [
            RemoteFile((url,), root / filename, md5)
            for url, filename, md5 in (tvd.SVHN.split_list[s] for s in chosen)
        ]
    raise DataError(
        f"{name!r} cannot be downloaded (downloadable: mnist, "
        "fashion-mnist, cifar10, svhn)"
    )


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch(
    url: str, dest: Path, md5: str, token: CancelToken | None
) -> Iterator[Event]:
    """Stream ``url`` into ``dest`` atomically; raise DataError on a bad checksum."""
    label = dest.name
    with (
        urllib.request.urlopen(url, timeout=TIMEOUT_S) as response,
        atomic_path(dest) as tmp,
    ):
        total = int(response.headers.get("Content-Length") or 0)
        throttle = ProgressThrottle(0.01)
        next_unknown = 0
        done = 0
        digest = hashlib.md5(usedforsecurity=False)
        yield Progress(0, total, label)
        with open(tmp, "wb") as out:
            while True:
                if token is not None:
                    token.check()
                chunk = response.read(CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if total and throttle.due(done, total) and done < total:
                    yield Progress(done, total, label)
                elif not total and done >= next_unknown:
                    # Unknown size: space events out as the file grows (~100 per GB).
                    next_unknown = done + max(1 << 20, done // 20)
                    yield Progress(done, 0, label)
        if digest.hexdigest() != md5:
            raise DataError(
                f"{dest}: downloaded from {url} but its MD5 is {digest.hexdigest()}, "
                f"expected {md5}; the file is corrupt or changed, so it was not kept"
            )
    yield Progress(done, total or done, label)


def _unpack(item: RemoteFile) -> list[Path]:
    if item.unpack == "gz":
        plain = item.dest.with_name(item.dest.name.removesuffix(".gz"))
        try:
            atomic_write_bytes(plain, gzip.decompress(item.dest.read_bytes()))
        except (OSError, EOFError) as exc:
            raise DataError(f"{item.dest}: cannot unpack ({reason(exc)})") from None
        return [plain]
    if item.unpack == "tar":
        try:
            with tarfile.open(item.dest, "r:*") as tar:
                tar.extractall(item.dest.parent, filter="data")
                top = sorted(
                    {Path(m.name).parts[0] for m in tar.getmembers() if m.name}
                )
        except (OSError, tarfile.TarError) as exc:
            raise DataError(f"{item.dest}: cannot extract ({reason(exc)})") from None
        return [item.dest.parent / t for t in top]
    return []


def download(
    name: str,
    root: str | os.PathLike[str],
    *,
    token: CancelToken | None = None,
    splits: Sequence[str] | None = None,
) -> Iterator[Event]:
    """Job: fetch data set ``name`` into ``root``; then ``load(name, root=root)`` works.

    Files already present with the right MD5 are kept. For SVHN, ``splits``
    picks the .mat files (default train and test; "extra" is 1.3 GB).
    """
    if root is None or str(root).strip() == "":
        raise DataError(f"{name}: choose a folder to download into")
    root = Path(root).expanduser()
    items = remote_files(name, root, splits)
    written: list[str] = []
    for item in items:
        if item.dest.is_file() and md5_of(item.dest) == item.md5:
            yield Log(f"{item.dest.name} is already there (MD5 checked)")
        else:
            errors: list[str] = []
            for url in item.urls:
                try:
                    yield from _fetch(url, item.dest, item.md5, token)
                    break
                except (urllib.error.URLError, OSError, DataError) as exc:
                    reason = getattr(exc, "reason", exc)
                    errors.append(f"{url}: {reason}")
                    yield Log(f"{url} failed: {reason}", "warning")
            else:
                raise DataError(
                    f"could not download {item.dest.name} into {item.dest.parent}: "
                    + "; ".join(errors)
                )
        written.append(str(item.dest))
        written.extend(str(p) for p in _unpack(item))
        if token is not None:
            token.check()
    yield Done({"root": str(root), "files": written})
