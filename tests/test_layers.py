"""The import-layer contract of veff: data flows one way, io -> variants -> models -> engine -> ...

The checker is tests/layers.py; the contract below is the one docs/architecture.md describes.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from layers import Contract, check

VEFF = Path(__file__).resolve().parent.parent / "veff"

CONTRACT = Contract(
    layers=[
        ["veff._version"],
        ["veff.errors"],
        ["veff.types"],
        ["veff.io"],
        ["veff.variants"],
        ["veff.models"],
        ["veff.engine"],
        ["veff.scoring"],
        ["veff.writers"],
        ["veff.run"],  # a run's options, stages, shard strategy and summary
        ["veff.pipeline"],
        ["veff.pipeline_splice"],  # gene-aware splice scoring (its own stage order, veff.run's Summary)
        ["veff.mutation_map", "veff.distributed", "veff.calibrate"],  # independent of each other
        ["veff.cli"],
        ["=veff", "veff.__main__"],  # the root only re-exports; nothing inside veff imports it
    ],
    exceptions={
        ("veff.pipeline", "veff.distributed.driver"): (
            "execute() hands a sharded run (client=/workers=/scheduler=) to the Dask driver, which "
            "runs the pipeline on each shard; imported inside the function only"
        ),
    },
    private={
        # Kipoi stays in its room: only veff.models (the registry, describe_model) reaches it;
        # everything else goes through the Model hooks of veff.models.base
        "veff.models.kipoi": "veff.models",
        # the framework adapters are found through veff.models.registry, never imported directly
        "veff.models.torch": "veff.models",
        "veff.models.keras": "veff.models",
        "veff.models.python": "veff.models",
        # receptive-field ISM is torch code: mutation maps reach it through Model.mutant_engine
        "veff.models.torch_ism": "veff.models",
    },
)


def test_veff_keeps_its_layers() -> None:
    problems = check(VEFF, CONTRACT)
    assert problems == [], "\n".join(problems)


def test_every_module_says_what_it_is_for() -> None:
    """Each module opens with a docstring whose first line names its responsibility."""
    missing = []
    for path in sorted(VEFF.rglob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text()))
        if not doc or len(doc.splitlines()[0].split()) < 3:
            missing.append(str(path.relative_to(VEFF.parent)))
    assert missing == []


FRAMEWORKS = {"torch", "tensorflow", "keras"}


def _framework_imports(tree: ast.Module) -> list[tuple[int, bool]]:
    """``(line, at module level)`` of every import of a deep-learning framework in ``tree``."""
    top = {id(n) for n in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        else:
            continue
        if any(n.split(".")[0] in FRAMEWORKS for n in names):
            found.append((node.lineno, id(node) in top))
    return found


def test_frameworks_are_imported_lazily_and_only_in_models() -> None:
    """torch, TensorFlow and Keras are imported inside functions of veff/models/ only.

    Mutation maps' receptive-field ISM and gradients reach them through the Model hooks
    (``mutant_engine``, ``input_gradients``); ``import veff`` imports no framework.
    """
    problems = []
    for path in sorted(VEFF.rglob("*.py")):
        rel = path.relative_to(VEFF.parent)
        for line, module_level in _framework_imports(ast.parse(path.read_text())):
            if rel.parts[1] != "models":
                problems.append(f"{rel}:{line} imports a framework outside veff/models/")
            elif module_level:
                problems.append(f"{rel}:{line} imports a framework at module level")
    assert problems == []


def test_the_framework_check_sees_both_kinds() -> None:
    tree = ast.parse("import torch\n\ndef f():\n    from tensorflow import keras\n    import numpy\n")
    assert _framework_imports(tree) == [(1, True), (4, False)]


def _package(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / "pkg" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


SMALL = Contract(
    layers=[["pkg.low"], ["pkg.mid", "pkg.side"], ["pkg.high"], ["=pkg"]],
    exceptions={},
    private={"pkg.mid.inner": "pkg.mid"},
)
CLEAN = {
    "__init__.py": "from pkg.high import run\n",
    "low.py": "X = 1\n",
    "mid/__init__.py": "from pkg.mid.inner import Y\n",
    "mid/inner.py": "from pkg.low import X\nY = X\n",
    "side.py": "import pkg.low\n",
    "high.py": "from pkg import mid, side\n\ndef run():\n    return mid.Y\n",
}


def test_a_clean_synthetic_package_passes(tmp_path: Path) -> None:
    assert check(_package(tmp_path, CLEAN), SMALL) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"low.py": "from pkg.high import run\n"},
            "pkg.low (pkg.low) imports pkg.high (pkg.high) upward (top",
        ),
        (
            {"low.py": "def f():\n    from pkg.mid import inner\n"},
            "pkg.low (pkg.low) imports pkg.mid.inner (pkg.mid) upward (lazy import)",
        ),
        (
            {"low.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.side\n"},
            "imports pkg.side (pkg.side) upward (typing import)",
        ),
        ({"side.py": "import pkg.mid\n"}, "pkg.side (pkg.side) imports pkg.mid (pkg.mid) sideways"),
        (
            {"high.py": "from pkg.mid.inner import Y\n"},
            "imports pkg.mid.inner, which only pkg.mid may import",
        ),
        ({"low.py": "from . import high\n"}, "pkg.low (pkg.low) imports pkg.high (pkg.high) upward"),
        ({"high.py": "import pkg\n"}, "pkg.high (pkg.high) imports pkg (=pkg) upward"),
        ({"stray.py": "X = 2\n", "high.py": "from pkg.stray import X\n"}, "pkg.stray is in no layer"),
        (
            {
                "mid/inner.py": "from pkg.mid import other\nY = 1\n",
                "mid/other.py": "from pkg.mid.inner import Y\n",
            },
            "import cycle at import time: pkg.mid.inner -> pkg.mid.other -> pkg.mid.inner",
        ),
    ],
)
def test_the_checker_fails_on_each_kind_of_breach(
    tmp_path: Path, change: dict[str, str], message: str
) -> None:
    problems = check(_package(tmp_path, {**CLEAN, **change}), SMALL)
    assert any(message in p for p in problems), problems


def test_exceptions_are_allowed_once_and_reported_when_stale(tmp_path: Path) -> None:
    root = _package(tmp_path, {**CLEAN, "low.py": "def f():\n    import pkg.high\n"})
    allowed = Contract(SMALL.layers, {("pkg.low", "pkg.high"): "a reason"}, SMALL.private)
    assert check(root, allowed) == []
    (root / "low.py").write_text("X = 1\n")
    assert check(root, allowed) == [
        "exception pkg.low -> pkg.high matches no import any more; remove it from the contract"
    ]
