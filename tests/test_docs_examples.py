"""The shell examples of docs/usage.md and docs/outputs.md run as written, on the shipped data.

Every ```bash block of those pages that names the shipped data (``example_data/``) or a file an
earlier block made is run in order, in one folder holding a link to example_data, with ``veff``
being this checkout. Blocks with placeholders (``MODEL``, ``IN.vcf``) are synopses and are skipped.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

pytestmark = pytest.mark.skipif(shutil.which("bcftools") is None, reason="bcftools not installed")

PAGES = ["usage.md", "outputs.md"]
_BLOCK = re.compile(r"```bash\n(.*?)```", re.S)
_PLACEHOLDERS = ("MODEL", "IN.vcf", "OUT.vcf", "REF.fa", "ADDRESS")


def _blocks() -> list[tuple[str, str]]:
    made: set[str] = set()
    out = []
    for page in PAGES:
        for code in _BLOCK.findall((ROOT / "docs" / page).read_text()):
            if any(p in code for p in _PLACEHOLDERS):
                continue
            if "example_data/" in code or any(name in code for name in made):
                out.append((page, code))
                made.update(re.findall(r"-o ([\w.]+)", code))
    return out


def test_the_examples_are_found():
    pages = [page for page, _ in _blocks()]
    assert pages.count("usage.md") >= 3 and pages.count("outputs.md") >= 1


@pytest.mark.parametrize("index", range(len(_blocks())))
def test_doc_example_runs(index, tmp_path_factory):
    work = tmp_path_factory.getbasetemp() / "doc_examples"
    if not work.exists():
        work.mkdir()
        (work / "example_data").symlink_to(ROOT / "example_data")
    page, code = _blocks()[index]
    prelude = f'veff() {{ {shlex.quote(sys.executable)} -m veff "$@"; }}\n'
    res = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", prelude + code],
        cwd=work,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, f"{page}:\n{code}\n{res.stderr}"
    assert "Traceback" not in res.stderr
