"""A reader for the numeric arrays of MATLAB 5 files (SVHN's ``*_32x32.mat``).

Why not ``scipy.io.loadmat``: on damaged files its compiled reader can crash
the whole process (a single flipped bit in an element's type field of a
valid SVHN-style file gives a segmentation fault with SciPy 1.17; found by
tests/core/test_damaged_files.py). A desktop app must never die on a bad
file, so this module parses the format in Python and NumPy only: every
problem is a :class:`MatFileError` naming the file.

Supported: little- and big-endian level 5 files, compressed (``miCOMPRESSED``)
or not, real numeric and logical matrices of any number of dimensions.
Other variables (cells, structs, sparse, complex, character arrays) are
skipped; asking for one of them names it as unsupported.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np

from explorer.core.data.base import DataError

HEADER = 128
MI_INT8, MI_INT32, MI_UINT32, MI_MATRIX, MI_COMPRESSED = 1, 5, 6, 14, 15
# Storage types of a data element -> NumPy type (without byte order).
STORAGE = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8",
           12: "i8", 13: "u8"}  # fmt: skip
# MATLAB classes of a numeric matrix -> NumPy type of the array.
CLASSES = {6: "f8", 7: "f4", 8: "i1", 9: "u1", 10: "i2", 11: "u2", 12: "i4",
           13: "u4", 14: "i8", 15: "u8"}  # fmt: skip
MAX_ELEMENTS = 1 << 34  # dimensions beyond this are damage, not data
MAX_INFLATE = 1 << 32  # bytes a compressed element may inflate to (4 GiB)


class MatFileError(DataError):
    """A MATLAB file cannot be read; the message names the file and why."""


class _Reader:
    def __init__(self, path: Path, data: bytes, order: str) -> None:
        self.path, self.data, self.order = path, data, order

    def fail(self, why: str) -> MatFileError:
        return MatFileError(f"{self.path}: not a readable MATLAB 5 file ({why})")

    def tag(self, buf: bytes, pos: int) -> tuple[int, int, int, int]:
        """``(type, nbytes, data start, next element)`` of the element at pos."""
        if pos + 8 > len(buf):
            raise self.fail(f"an element's tag is cut off at byte {pos}")
        mdtype, nbytes = np.frombuffer(buf, self.order + "u4", 2, pos).tolist()
        if mdtype >> 16:  # small data element: type and size in 4 bytes
            nbytes, mdtype = mdtype >> 16, mdtype & 0xFFFF
            if nbytes > 4:
                raise self.fail(f"a small element claims {nbytes} bytes at {pos}")
            return mdtype, nbytes, pos + 4, pos + 8
        start = pos + 8
        if start + nbytes > len(buf):
            raise self.fail(
                f"an element at byte {pos} claims {nbytes} bytes, "
                f"{len(buf) - start} are left"
            )
        end = start + nbytes
        return mdtype, nbytes, start, (end if mdtype == MI_COMPRESSED else
                                       end + (-end) % 8)

    def numbers(self, buf: bytes, pos: int, want: int | None = None):
        mdtype, nbytes, start, after = self.tag(buf, pos)
        if mdtype not in STORAGE:
            raise self.fail(f"unknown data type {mdtype} at byte {pos}")
        if want is not None and mdtype != want:
            raise self.fail(f"expected data type {want}, found {mdtype} at {pos}")
        dtype = np.dtype(self.order + STORAGE[mdtype])
        if nbytes % dtype.itemsize:
            raise self.fail(f"{nbytes} bytes of {dtype.name} at byte {pos}")
        return np.frombuffer(buf, dtype, nbytes // dtype.itemsize, start), after

    def matrix(self, buf: bytes) -> tuple[str, np.ndarray | str]:
        """``(name, array)`` of a miMATRIX body, or ``(name, why unsupported)``."""
        flags, pos = self.numbers(buf, 0, MI_UINT32)
        if len(flags) != 2:
            raise self.fail("array flags of the wrong size")
        klass, is_complex = int(flags[0]) & 0xFF, bool(int(flags[0]) & 0x800)
        dims, pos = self.numbers(buf, pos, MI_INT32)
        name_bytes, pos = self.numbers(buf, pos, MI_INT8)
        name = name_bytes.tobytes().decode("ascii", "replace")
        if klass not in CLASSES or is_complex:
            return name, f"MATLAB class {klass}{' (complex)' if is_complex else ''}"
        shape = tuple(int(d) for d in dims)
        size = float(np.prod(shape, dtype=float)) if shape else 0.0
        if len(shape) < 2 or min(shape) < 0 or size > MAX_ELEMENTS:
            raise self.fail(f"variable {name!r} has impossible dimensions {shape}")
        values, _ = self.numbers(buf, pos)
        if values.size != int(np.prod(shape)):
            raise self.fail(
                f"variable {name!r} holds {values.size} values for dimensions {shape}"
            )
        array = values.astype(np.dtype(CLASSES[klass]).newbyteorder("="))
        return name, array.reshape(shape, order="F")

    def variables(self) -> dict[str, np.ndarray | str]:
        found: dict[str, np.ndarray | str] = {}
        pos = HEADER
        while pos < len(self.data):
            mdtype, nbytes, start, after = self.tag(self.data, pos)
            body = self.data[start:start + nbytes]
            if mdtype == MI_COMPRESSED:
                body = self._inflate(body, pos)
                mdtype, nbytes, start, _ = self.tag(body, 0)
                body = body[start:start + nbytes]
            if mdtype == MI_MATRIX and body:
                name, value = self.matrix(body)
                found[name] = value
            pos = after
        return found

    def _inflate(self, body: bytes, pos: int) -> bytes:
        inflater = zlib.decompressobj()
        try:
            out = inflater.decompress(body, MAX_INFLATE)
        except zlib.error as exc:
            raise self.fail(f"compressed element at byte {pos}: {exc}") from None
        if inflater.unconsumed_tail:
            raise self.fail(f"compressed element at byte {pos} inflates too far")
        return out


def load_arrays(path: str | os.PathLike[str], names: tuple[str, ...]) -> dict:
    """The numeric variables ``names`` of a MATLAB 5 file, as NumPy arrays."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MatFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(data) < HEADER:
        raise MatFileError(f"{path}: not a MATLAB 5 file (shorter than its header)")
    if data[:6] == b"\x89HDF\r\n" or data[HEADER:HEADER + 4] == b"\x89HDF":
        raise MatFileError(f"{path}: a MATLAB 7.3 (HDF5) file; save it with -v7")
    endian = data[126:128]
    if endian not in (b"IM", b"MI") or not data.startswith(b"MATLAB 5.0"):
        raise MatFileError(f"{path}: not a MATLAB 5 file (bad header)")
    reader = _Reader(path, data, "<" if endian == b"IM" else ">")
    found = reader.variables()
    out = {}
    for name in names:
        value = found.get(name)
        if value is None:
            raise MatFileError(f"{path}: no variable {name!r} in the file")
        if isinstance(value, str):
            raise MatFileError(f"{path}: variable {name!r} is a {value}, not numbers")
        out[name] = value
    return out
