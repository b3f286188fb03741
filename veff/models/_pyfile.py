"""Import user Python files (model classes, custom scores) by path."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import types
from pathlib import Path

from veff.errors import ModelError

__all__ = ["load_python_file"]


def load_python_file(path: Path) -> types.ModuleType:
    """Import a ``.py`` file as a uniquely named module (cached per absolute path).

    The file's folder is put first on ``sys.path`` while it runs, so it can import its neighbours.
    Any failure becomes one :class:`~veff.errors.ModelError` naming the file.
    """
    if not path.is_file():
        msg = f"{path}: Python file not found"
        raise ModelError(msg)
    mod_name = f"_veff_user_{path.stem}_{abs(hash(str(path.resolve())))}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        msg = f"{path}: cannot import"
        raise ModelError(msg)
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    entry = str(path.resolve().parent)
    sys.path.insert(0, entry)
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(mod_name, None)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        msg = f"{path}: importing failed: {type(exc).__name__}: {exc}"
        raise ModelError(msg) from exc
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(entry)
    return module
