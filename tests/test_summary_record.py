"""--summary-json records how a run was made: inputs with sizes and model checksums, options, versions."""

from __future__ import annotations

import hashlib
import json

from click.testing import CliRunner
from conftest import E1, HG38, ROOT

import veff
from veff.cli import main

DONOR = ROOT / "example_data" / "models" / "donor_cnn" / "donor_cnn.pt"


def test_summary_json_traces_the_run(tmp_path):
    out, js = tmp_path / "o.vcf.gz", tmp_path / "run.json"
    args = ["score-variants", str(DONOR), "--vcf", str(E1), "--fasta", str(HG38), "-o", str(out)]
    args += ["--scores", "diff,logit", "-r", "chr22:32068495-32068496", "--summary-json", str(js), "-q"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    data = json.loads(js.read_text())
    assert data["records"] == 5 and data["statuses"] == {"ok": 11}
    assert set(data["timings"]) >= {"load_model", "probe_outputs", "forward", "write", "total"}
    run = data["run"]
    model = run["inputs"]["model"]
    assert model["given"] == str(DONOR)
    assert model["files"][0]["sha256"] == hashlib.sha256(DONOR.read_bytes()).hexdigest()
    assert model["files"][0]["bytes"] == DONOR.stat().st_size
    assert run["inputs"]["vcf"]["bytes"] == E1.stat().st_size and "sha256" not in run["inputs"]["vcf"]
    assert run["inputs"]["fasta"]["path"] == str(HG38)
    assert run["options"]["scores"] == ["diff", "logit"]
    assert run["options"]["regions"] == "chr22:32068495-32068496"
    assert run["options"]["model_kwargs"]["device"] == "auto"
    assert run["versions"]["veff"] == veff.__version__ and "torch" in run["versions"]
    assert run["model"] == {"name": "donor_cnn", "framework": "pytorch", "device": "cpu"}


def test_a_model_directory_is_hashed_file_by_file(tmp_path):
    model_dir = ROOT / "example_data" / "models" / "gc_content"
    js = tmp_path / "run.json"
    veff.score_variants(model_dir, E1, HG38, table=tmp_path / "t.tsv", summary_json=js)
    files = json.loads(js.read_text())["run"]["inputs"]["model"]["files"]
    names = sorted(f["path"].rsplit("/", 1)[1] for f in files)
    assert names == sorted(p.name for p in model_dir.iterdir() if p.is_file())
    for f in files:
        assert len(f["sha256"]) == 64
