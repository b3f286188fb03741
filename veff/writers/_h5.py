"""Resizable, chunked, gzip-compressed HDF5 datasets that grow along axis 0 (h5py).

Shared by the score table (:mod:`veff.writers._table_h5`) and the sequence dump
(:mod:`veff.writers.seqdump`). Text is stored as variable-length UTF-8 strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["H5Appender", "check_format", "read_strings", "table_chunk_rows"]

_CHUNK_BYTES = 2**20  # target size of one HDF5 chunk
_STRING_CHUNK_ROWS = 4096
_APPEND_ROWS = 1024


def _chunk_rows(row_bytes: int) -> int:
    """Rows per HDF5 chunk of a numeric dataset whose rows take ``row_bytes`` bytes."""
    return int(max(1, min(4096, _CHUNK_BYTES // max(1, row_bytes))))


def table_chunk_rows(n_labels: int) -> int:
    """Rows per append of a score table with ``n_labels`` float32 outputs per score.

    At most one HDF5 chunk of the widest dataset, and few enough rows that the writer holds
    little: a table is appended in blocks of exactly this many rows whatever the run's chunks
    (the file's layout follows the appends).
    """
    return min(_APPEND_ROWS, _chunk_rows(4 * max(1, n_labels)))


class H5Appender:
    """Append rows to datasets of an open ``h5py.File``, creating them on first use.

    Parameters
    ----------
    h5
        An ``h5py.File`` (or group) opened for writing.
    compression_level
        gzip level of every dataset.
    """

    def __init__(self, h5: Any, *, compression_level: int = 4) -> None:
        self.h5 = h5
        self.level = compression_level

    def append(self, name: str, data: np.ndarray | Sequence[str]) -> None:
        """Append ``data`` (shape (n, ...), or a list of str) to dataset ``name``.

        Parameters
        ----------
        name
            Dataset path (``"variants/chrom"``); created on the first call with the trailing
            shape and dtype of ``data``.
        data
            Rows to append; a list (or object array) of str becomes a UTF-8 string dataset.
        """
        arr, is_str = _as_array(data)
        dset = self.h5.get(name)
        if dset is None:
            dset = self._create(name, arr, is_str)
        n0 = dset.shape[0]
        if len(arr) == 0:
            return
        dset.resize(n0 + len(arr), axis=0)
        dset[n0:] = arr

    def _create(self, name: str, arr: np.ndarray, is_str: bool) -> Any:
        import h5py

        if is_str:
            return self.h5.create_dataset(
                name,
                shape=(0,),
                maxshape=(None,),
                dtype=h5py.string_dtype("utf-8"),
                chunks=(_STRING_CHUNK_ROWS,),
                compression="gzip",
                compression_opts=self.level,
            )
        rows = _chunk_rows(int(np.prod(arr.shape[1:], dtype=np.int64)) * arr.dtype.itemsize)
        return self.h5.create_dataset(
            name,
            shape=(0, *arr.shape[1:]),
            maxshape=(None, *arr.shape[1:]),
            dtype=arr.dtype,
            chunks=(rows, *arr.shape[1:]),
            compression="gzip",
            compression_opts=self.level,
        )


def _as_array(data: np.ndarray | Sequence[str]) -> tuple[np.ndarray, bool]:
    if isinstance(data, np.ndarray) and data.dtype.kind not in "OUS":
        return data, False
    return np.asarray(list(data), dtype=object), True


def read_strings(dset: Any) -> np.ndarray:
    """Read a UTF-8 string dataset into an object array of str."""
    return np.asarray(dset.asstr()[()], dtype=object)


def check_format(attrs: Any, path: object, fmt: str, version: str | tuple[str, ...], what: str) -> str:
    """Raise ``InputError`` unless the HDF5 ``attrs`` name format ``fmt`` at ``version`` (or one of them).

    ``what`` names the kind of file in the message (``veff score table``). Returns the version found.
    """
    from veff.errors import InputError

    found = attrs.get("format")
    if found != fmt:
        msg = f"{path}: not a {what} (HDF5 attribute format={found!r}, expected {fmt!r})"
        raise InputError(msg)
    got = str(attrs.get("format_version"))
    versions = (version,) if isinstance(version, str) else version
    if got not in versions:
        msg = f"{path}: {fmt} format_version {got} is not supported (expected {' or '.join(versions)})"
        raise InputError(msg)
    return got
