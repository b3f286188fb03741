"""How a run was made, for its summary JSON: inputs (sizes, model checksums), options, versions, device.

:func:`run_record` is what ``--summary-json`` adds under ``"run"`` to :meth:`Summary.to_dict
<veff.run.summary.Summary.to_dict>`, so that a result can be traced to the files, options and
software that made it. The model's files are hashed (SHA-256; a model directory: every file in it,
a ``FILE.py::Class`` model: the file and its weights); the VCF and FASTA are named with their sizes
and modification times only (hashing a genome would cost more than many runs).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from veff._version import __version__

__all__ = ["file_info", "run_record"]

_CHUNK = 1 << 20
# distributions whose versions are recorded when installed (frameworks only when loaded)
_LIBRARIES = ("numpy", "cyvcf2", "pysam", "pandas", "h5py", "pyarrow")
_FRAMEWORKS = {"torch": "torch", "tensorflow": "tensorflow", "keras": "keras", "xgboost": "xgboost"}
_NOT_RECORDED = frozenset({"client", "model"})  # a live object; the model is under "inputs"


def file_info(path: str | os.PathLike[str], *, checksum: bool = False) -> dict[str, Any]:
    """``path``, ``bytes``, ``modified`` (UTC, ISO 8601) and, with ``checksum``, ``sha256`` of a file."""
    p = Path(path)
    info: dict[str, Any] = {"path": str(p.absolute())}
    try:
        st = p.stat()
    except OSError as exc:
        return info | {"error": exc.strerror or str(exc)}
    info["bytes"] = st.st_size
    info["modified"] = datetime.fromtimestamp(st.st_mtime, tz=timezone.utc).isoformat(timespec="seconds")
    if checksum and p.is_file():
        digest = hashlib.sha256()
        with open(p, "rb") as fh:
            while block := fh.read(_CHUNK):
                digest.update(block)
        info["sha256"] = digest.hexdigest()
    return info


def _model_files(model: Any, model_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(model, (str, os.PathLike)):
        return {"object": f"{type(model).__module__}.{type(model).__qualname__}"}
    text = str(model)
    out: dict[str, Any] = {"given": text}
    path = Path(text.split("::", 1)[0])
    files: list[Path] = []
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    elif path.is_file():
        files = [path]
    weights = model_kwargs.get("weights")
    if weights:
        files.append(Path(weights))
    out["files"] = [file_info(p, checksum=True) for p in files]
    return out


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, Sequence):
        return [_jsonable(v) for v in value]
    if callable(value):
        return getattr(value, "__name__", type(value).__name__)
    return str(value)


def _versions() -> dict[str, str]:
    out = {"veff": __version__, "python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    for module, dist in _FRAMEWORKS.items():
        if module in sys.modules:  # a framework the run loaded
            version = getattr(sys.modules[module], "__version__", None)
            if version is None:
                try:
                    version = metadata.version(dist)
                except metadata.PackageNotFoundError:
                    continue
            out[module] = str(version)
    return out


def run_record(opts: Any, model: Any = None) -> dict[str, Any]:
    """What made a run: its inputs, options, the versions of veff and its libraries, the device.

    Parameters
    ----------
    opts
        The run's :class:`~veff.run.options.RunOptions`.
    model
        The loaded :class:`~veff.models.Model`, for its name, framework and device.
    """
    kwargs = dict(opts.model_kwargs or {})
    inputs: dict[str, Any] = {"model": _model_files(opts.model, kwargs)}
    for key in ("vcf", "fasta", "restriction_bed", "regions_file"):
        value = getattr(opts, key)
        if value is None:
            continue
        inputs[key] = {"path": "-", "stdin": True} if str(value) == "-" else file_info(value)
    options = {
        f.name: _jsonable(getattr(opts, f.name))
        for f in dataclasses.fields(opts)
        if f.init and f.name not in _NOT_RECORDED
    }
    record: dict[str, Any] = {
        "recorded": datetime.now(tz=timezone.utc).isoformat(timespec="seconds"),
        "inputs": inputs,
        "options": options,
        "versions": _versions(),
        "host": {"platform": platform.platform(), "cpus": os.cpu_count()},
    }
    if model is not None:
        record["model"] = {
            "name": getattr(model, "name", None),
            "framework": getattr(model, "framework", None),
            "device": str(getattr(model, "device", "cpu")),
        }
        torch = sys.modules.get("torch")
        device = record["model"]["device"]
        if torch is not None and device.startswith("cuda"):
            with contextlib.suppress(Exception):  # the record must not fail the run
                record["model"]["device_name"] = torch.cuda.get_device_name(torch.device(device))
    return record
