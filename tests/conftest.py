"""pytest fixtures and hooks; the shared helpers themselves live in tests/helpers.py."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

# re-exported for tests written before helpers.py existed; new tests import from helpers
from helpers import (
    CHR1 as CHR1,
)
from helpers import (
    CHR2 as CHR2,
)
from helpers import (
    CHRM as CHRM,
)
from helpers import (
    DATA as DATA,
)
from helpers import (
    DONOR_H5 as DONOR_H5,
)
from helpers import (
    E1 as E1,
)
from helpers import (
    E2 as E2,
)
from helpers import (
    EXAMPLE as EXAMPLE,
)
from helpers import (
    GENOME as GENOME,
)
from helpers import (
    HG19 as HG19,
)
from helpers import (
    HG38 as HG38,
)
from helpers import (
    ROOT as ROOT,
)
from helpers import (
    VCF_HEADER as VCF_HEADER,
)
from helpers import (
    base as base,
)
from helpers import (
    other as other,
)
from helpers import (
    write_fasta as write_fasta,
)
from helpers import (
    write_vcf as write_vcf,
)

# model directories hold Python files for veff to load, not for pytest (--doctest-modules) to import
collect_ignore = ["data"]


def _cuda() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def _tensorflow() -> bool:
    return importlib.util.find_spec("tensorflow") is not None


# marker -> (whether its need is met, the reason shown when it is not)
_NEEDS = {
    "gpu": (_cuda, "needs a CUDA GPU"),
    "tensorflow": (_tensorflow, "needs TensorFlow (pip install veff[tensorflow])"),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked ``gpu`` / ``tensorflow`` where their needs are absent (checked once each)."""
    met: dict[str, bool] = {}
    for item in items:
        for marker, (check, reason) in _NEEDS.items():
            if item.get_closest_marker(marker) is None:
                continue
            if marker not in met:
                met[marker] = check()
            if not met[marker]:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def genome(tmp_path: Path) -> Path:
    return write_fasta(tmp_path / "genome.fa")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import sys

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
