from __future__ import annotations

import subprocess

import pytest
from click.testing import CliRunner
from helpers import DONOR_H5, E1, E2, EXAMPLE, HG19, HG38

from veff.cli import main

TORCH_MODEL = EXAMPLE / "models" / "donor_cnn" / "donor_cnn.pt"


def _run(args):
    return CliRunner().invoke(main, args, catch_exceptions=False)


def _score_args(model, vcf, fasta, out, *extra):
    """``veff score-variants MODEL --vcf VCF --fasta FASTA -o OUT EXTRA...`` as CLI arguments."""
    return ["score-variants", str(model), "--vcf", str(vcf), "--fasta", str(fasta), "-o", str(out), *extra]


def _query(path, fmt):
    return subprocess.run(
        ["bcftools", "query", "-f", fmt, str(path)], capture_output=True, text=True, check=True
    ).stdout.splitlines()


@pytest.mark.tensorflow
def test_keras_example_end_to_end_reads_back_with_bcftools(tmp_path):
    out = tmp_path / "e1.vcf.gz"
    summary = str(tmp_path / "s.json")
    res = _run(
        _score_args(
            DONOR_H5,
            E1,
            HG38,
            out,
            "--scores",
            "diff",
            "--scores",
            "logit,ref",
            "-q",
            "--summary-json",
            summary,
        )
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "e1.vcf.gz.tbi").exists()
    subprocess.run(["bcftools", "view", "-H", str(out)], check=True, capture_output=True)
    for tag in ("VEFF_Donor_DIFF", "VEFF_Donor_LOGIT", "VEFF_Donor_REF", "VEFF_Donor_STATUS"):
        lines = _query(out, f"%INFO/{tag}\\n")
        assert len(lines) == 45 and all(line != "." for line in lines)
    status = dict(zip(_query(out, "%ID\\n"), _query(out, "%INFO/VEFF_Donor_STATUS\\n"), strict=True))
    assert status["ref_mismatch"] == "G|ref_mismatch"


def test_torch_example_with_contig_name_mismatch(tmp_path):
    out = tmp_path / "e2.vcf"
    res = _run(_score_args(TORCH_MODEL, E2, HG19, out, "--rc", "-q"))
    assert res.exit_code == 0, res.output
    lines = _query(out, "%ID %INFO/VEFF_donor_cnn_STATUS\\n")
    assert len(lines) == 30
    assert all(line.split()[1].endswith("|ok") for line in lines)  # VCF says "17", FASTA "chr17"
    assert "##veff_command=veff score-variants" in out.read_text()


def test_header_command_line_lists_every_model_file(tmp_path):
    import shlex
    import shutil

    copy = tmp_path / "copy of donor_cnn.pt"  # a space: quoted in the header
    shutil.copy(TORCH_MODEL, copy)
    out = tmp_path / "e2.vcf"
    res = _run(
        [
            "score-variants",
            str(TORCH_MODEL),
            str(copy),
            "--vcf",
            str(E2),
            "--fasta",
            str(HG19),
            "-o",
            str(out),
            "-q",
        ]
    )
    assert res.exit_code == 0, res.output
    line = next(x for x in out.read_text().splitlines() if x.startswith("##veff_command="))
    words = shlex.split(line.removeprefix("##veff_command="))
    assert words[:4] == ["veff", "score-variants", str(TORCH_MODEL), str(copy)]


def test_torch_donor_model_sees_the_donor_knockout(tmp_path):
    out = tmp_path / "e1.vcf"
    res = _run(_score_args(TORCH_MODEL, E1, HG38, out, "--scores", "diff", "-q"))
    assert res.exit_code == 0, res.output
    diff = dict(zip(_query(out, "%ID:%POS\\n"), _query(out, "%INFO/VEFF_donor_cnn_DIFF\\n"), strict=True))
    # SLC5A1 exon end: the G of the intron's GT sits at the window centre, as the model was trained
    entries = dict(e.split("|") for e in diff["SLC5A1_exon_end_+1:32081972"].split(","))
    assert all(float(v) < -0.5 for v in entries.values())
    intergenic = float(diff["intergenic_no_gene:32010000"].split("|")[1])
    assert abs(intergenic) < 0.05


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scores", "nonsense"], "unknown score 'nonsense'"),
        (["--score-kwargs", "{bad json"], "not valid JSON"),
        (["--score-kwargs", '{"rc_merging": "mode"}'], "unknown rc_merging 'mode'"),
        (["--model-outputs", "zzz"], "model output 'zzz' not found"),
        (["--threads", "0"], "Invalid value for '--threads'"),
    ],
)
def test_user_mistakes_are_one_line_errors(tmp_path, args, message):
    res = CliRunner().invoke(main, _score_args(TORCH_MODEL, E2, HG19, tmp_path / "o.vcf", "-q", *args))
    assert res.exit_code != 0
    assert message in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "o.vcf").exists()


def test_model_that_cannot_load_is_one_line(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_text("garbage")
    res = CliRunner().invoke(main, _score_args(bad, E2, HG19, tmp_path / "o.vcf"))
    assert res.exit_code == 1
    assert res.output.startswith("veff: error:") and res.output.count("\n") == 1


def test_bcf_output_is_indexed_and_region_queryable(tmp_path):
    out = tmp_path / "e2.bcf"
    res = _run(_score_args(TORCH_MODEL, E2, HG19, out, "-q"))
    assert res.exit_code == 0, res.output
    assert (tmp_path / "e2.bcf.csi").exists()
    lines = subprocess.run(
        ["bcftools", "view", "-H", str(out), "17:11000-12000"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert len(lines) == 14 and all("VEFF_donor_cnn_STATUS=" in line for line in lines)


def test_threads_option_reaches_the_run(tmp_path, monkeypatch):
    import veff.pipeline

    seen = []
    real = veff.pipeline.cpu_threads
    monkeypatch.setattr(veff.pipeline, "cpu_threads", lambda n, *only: seen.append(n) or real(n, *only))
    res = _run(_score_args(TORCH_MODEL, E2, HG19, tmp_path / "o.vcf", "-q", "--threads", "1"))
    assert res.exit_code == 0, res.output
    assert seen == [1]


def test_shared_options_are_one_definition_in_every_command() -> None:
    from veff.cli.options import _SHARED, shared_options

    def info(command: str) -> dict[str, dict]:
        return {p.name: p.to_info_dict() for p in main.commands[command].params if p.name}

    score, mmap, calib = info("score-variants"), info("create-mutation-map"), info("calibrate")
    names = ["fasta", "score_kwargs", "seq_length", "model_outputs", "output_labels", "input_layout"]
    names += ["weights", "random_weights", "trust_model", "device"]
    assert set(_SHARED) <= set(names) | {"weights"}
    for name in names:
        assert score[name] == mmap[name], name
        if name != "model_outputs":  # calibrate's says what it means there
            assert calib[name] == score[name], name
    with pytest.raises(ValueError, match="no shared option 'nope'"):
        shared_options("nope")
