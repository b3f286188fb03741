"""The layout of position-resolved outputs: tasks-first heads declared, read as (N, P, T), or warned about."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import base, other, write_fasta, write_vcf

import veff
from veff.cli import main
from veff.engine.outputs import OutputSpec, flatten_output
from veff.errors import InputError, ModelError, VeffWarning

L = 101  # a Conv1d of width 11 gives 91 output positions

NETS = '''
import torch


class _Base(torch.nn.Module):
    """A seeded Conv1d profile head (3 tasks) and a counts head; tasks first as Conv1d writes it."""

    seq_len = 101
    input_layout = "4,L"
    veff_weights_included = True

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv1d(4, 3, 11)

    def heads(self, x):
        profile = self.conv(x)  # (N, 3, 91)
        return profile, profile.sum(dim=2)


class TasksFirst(_Base):
    def forward(self, x):
        return self.heads(x)


class DeclaredTasksFirst(TasksFirst):
    output_layout = "tasks_first"


class PositionsFirst(_Base):
    def forward(self, x):
        profile, counts = self.heads(x)
        return profile.transpose(1, 2), counts
'''


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The module file, a FASTA and a VCF of SNVs whose windows fit chr1."""
    net = tmp_path / "nets.py"
    net.write_text(NETS)
    rows = [("chr1", p, f"v{p}", base("chr1", p), other(base("chr1", p))) for p in range(120, 420, 25)]
    return net, write_fasta(tmp_path / "g.fa"), write_vcf(tmp_path / "in.vcf", rows)


def _scores(net: Path, cls: str, fa: Path, vcf: Path, **kwargs: object) -> dict:
    return veff.score_variants(
        f"{net}::{cls}",
        vcf,
        fa,
        scores=["diff", "jsd"],
        score_kwargs=[{}, {"softmax": True}],
        aggregate="window:5 max_abs",
        rc=True,
        return_predictions=True,
        **kwargs,
    )


def test_tasks_first_model_with_the_layout_scores_as_its_positions_first_twin(inputs):
    net, fa, vcf = inputs
    want = _scores(net, "PositionsFirst", fa, vcf)
    assert want["diff"].shape == (12, 6)  # profile.0-2 and counts.0-2
    assert np.abs(want["diff"].to_numpy()).max() > 0
    for got in (
        _scores(net, "TasksFirst", fa, vcf, output_layout="tasks_first"),
        _scores(net, "DeclaredTasksFirst", fa, vcf),  # the class declares it
    ):
        for score in ("diff", "jsd"):
            assert list(got[score].columns) == list(want[score].columns)
            np.testing.assert_allclose(got[score].to_numpy(), want[score].to_numpy(), rtol=1e-6, atol=1e-6)
    misread = _scores(net, "TasksFirst", fa, vcf, output_layout="positions_first")
    assert misread["diff"].shape == (12, 91 + 3)  # 3 "positions" of 91 "tasks": what the layout fixes


def test_cli_output_layout_writes_the_bytes_of_the_positions_first_model(inputs, tmp_path):
    net, fa, vcf = inputs
    runner = CliRunner()
    args = ["--vcf", str(vcf), "--fasta", str(fa), "-q", "--aggregate", "window:5"]
    want = tmp_path / "want.tsv"
    res = runner.invoke(main, ["score-variants", f"{net}::PositionsFirst", *args, "--table", str(want)])
    assert res.exit_code == 0, res.output
    assert "warning" not in res.stderr
    got = tmp_path / "got.tsv"
    res = runner.invoke(
        main,
        [
            "score-variants",
            f"{net}::TasksFirst",
            *args,
            "--table",
            str(got),
            "--output-layout",
            "tasks_first",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "warning" not in res.stderr
    assert got.read_bytes() == want.read_bytes()


@pytest.mark.filterwarnings("default::veff.errors.VeffWarning")
def test_cli_warns_once_for_a_shape_that_looks_tasks_first(inputs, tmp_path, monkeypatch):
    net, fa, vcf = inputs
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(
        main,
        [
            "score-variants",
            f"{net}::TasksFirst",
            "--vcf",
            str(vcf),
            "--fasta",
            str(fa),
            "-q",
            "--table",
            "t.tsv",
        ],
    )
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("veff: warning:")]
    assert len(lines) == 1, res.stderr
    assert "(3, 91)" in lines[0] and "--output-layout tasks_first" in lines[0]


def test_bad_layout_is_one_cli_line_and_an_input_error(inputs, tmp_path):
    net, fa, vcf = inputs
    res = CliRunner().invoke(
        main,
        [
            "score-variants",
            f"{net}::TasksFirst",
            "--vcf",
            str(vcf),
            "--fasta",
            str(fa),
            "-o",
            str(tmp_path / "o.vcf"),
            "--output-layout",
            "sideways",
        ],
    )
    assert res.exit_code == 2
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("veff: error: "), res.stderr
    assert "--output-layout" in lines[0] and "sideways" in lines[0]
    with pytest.raises(InputError, match="output layout must be positions_first or tasks_first"):
        _scores(net, "TasksFirst", fa, vcf, output_layout="sideways")


def test_a_model_declaring_a_bad_layout_is_a_model_error(inputs):
    net, fa, vcf = inputs
    bad = net.parent / "bad.py"
    bad.write_text(NETS + "\n\nclass Bad(TasksFirst):\n    output_layout = 'rows_first'\n")
    with pytest.raises(ModelError, match="rows_first"):
        _scores(bad, "Bad", fa, vcf)


@pytest.mark.parametrize("method", ["naive", "fast", "saliency"])
def test_mutation_maps_read_the_layout(inputs, tmp_path, method):
    net, fa, _ = inputs
    maps = {}
    for cls, layout in (("PositionsFirst", None), ("TasksFirst", "tasks_first")):
        with veff.MutationMap(
            f"{net}::{cls}", fa, aggregate="window:3 max_abs", method=method, output_layout=layout
        ) as mm:
            res = mm.query_region("chr1", 200, 230, output=tmp_path / f"{cls}.{method}.h5")
            assert mm.method_used[0] == method
            maps[cls] = res.entries[0].scores[mm.score_names[0]]
    assert maps["PositionsFirst"].shape[-1] == 6
    np.testing.assert_allclose(maps["TasksFirst"], maps["PositionsFirst"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("shape", "length", "warns"),
    [
        ((1, 2, 1000), 2114, True),  # bpnet-lite's profile head
        ((1, 3, 5000), 15_000, True),  # OpenSpliceAI
        ((1, 1, 101), 101, True),  # one task along the whole input
        ((1, 1000, 2), 2114, False),  # BPNet in Keras: positions first
        ((1, 1, 164), 600, False),  # a Keras net keeping an axis of 1
        ((1, 896, 5313), 196_608, False),  # Enformer's human head
        ((1, 4, 30), 101, False),  # fewer than ten "tasks" per "position"
        ((1, 2, 3000), 2114, False),  # "tasks" that cannot be positions of this input
    ],
)
def test_warning_fires_for_shapes_that_look_tasks_first_only(shape, length, warns):
    out = {"profile": np.zeros(shape, np.float32), "counts": np.zeros((1, 2), np.float32)}
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        spec = OutputSpec.from_output(out, length, offset=0)
        OutputSpec.from_output(out, length, offset=0, layout="positions_first")  # declared: silent
    texts = [str(w.message) for w in seen if issubclass(w.category, VeffWarning)]
    assert len(texts) == int(warns), texts
    assert spec.heads[0].positions == shape[1]
    if warns:
        assert texts[0].startswith("output 'profile' has per-sequence shape") and "\n" not in texts[0]


def test_flatten_output_lays_tasks_first_heads_out_positions_first():
    rng = np.random.default_rng(0)
    track = rng.normal(size=(2, 5, 3)).astype(np.float32)  # (N, P, T)
    counts = rng.normal(size=(2, 3)).astype(np.float32)
    want = flatten_output([track, counts], 2)
    got = flatten_output([track.transpose(0, 2, 1), counts], 2, "tasks_first")
    np.testing.assert_array_equal(got, want)
    spec = OutputSpec.from_output([track[:1].transpose(0, 2, 1), counts[:1]], 5, layout="tasks_first")
    assert [(h.tasks, h.positions) for h in spec.heads] == [(3, 5), (3, None)]
    np.testing.assert_array_equal(spec.split(got)[0], track)


def test_ensemble_members_must_share_a_layout(inputs):
    net, _, _ = inputs
    a = veff.load_model(f"{net}::TasksFirst", output_layout="tasks_first")
    b = veff.load_model(f"{net}::DeclaredTasksFirst")
    c = veff.load_model(f"{net}::TasksFirst")
    from veff.models.ensemble import EnsembleModel

    assert EnsembleModel([a, b]).declared_output_layout() == "tasks_first"
    with pytest.raises(ModelError, match="different output layouts"):
        EnsembleModel([a, c])


def test_a_sharded_run_warns_once(inputs, tmp_path):
    """The driver's probe warns; the workers' probes of the same model do not repeat it."""
    pytest.importorskip("distributed")
    import subprocess
    import sys

    import pysam

    net, fa, vcf = inputs
    gz = tmp_path / "in.vcf.gz"
    pysam.tabix_compress(str(vcf), str(gz))
    pysam.tabix_index(str(gz), preset="vcf")
    args = [f"{net}::TasksFirst", "--vcf", str(gz), "--fasta", str(fa), "-o", str(tmp_path / "o.vcf.gz")]
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "veff",
            "score-variants",
            *args,
            "--workers",
            "2",
            "--shard-records",
            "4",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()  # (Dask may add lines of its own on a busy machine)
    warned = [ln for ln in lines if "per-sequence shape" in ln]
    assert len(warned) == 1, lines
    assert warned[0].startswith("veff: warning: output '0' has per-sequence shape"), lines


def _layout_row(text: str) -> str:
    """The value of the ``output layout`` row of ``veff models info``."""
    (row,) = [ln for ln in text.splitlines() if ln.startswith("output layout")]
    return row.split(None, 2)[2]


@pytest.mark.filterwarnings("default::veff.errors.VeffWarning")
def test_models_info_reads_and_reports_the_layout(inputs):
    net, _, _ = inputs
    runner = CliRunner()
    res = runner.invoke(main, ["models", "info", f"{net}::TasksFirst", "--output-layout", "tasks_first"])
    assert res.exit_code == 0, res.output
    assert "3 tasks x 91 positions" in res.stdout
    assert _layout_row(res.stdout) == "tasks_first"
    assert "warning" not in res.stderr
    res = runner.invoke(main, ["models", "info", f"{net}::TasksFirst", "--json"])
    assert res.exit_code == 0, res.output
    assert '"layout": null' in res.stdout and '"positions": 3' in res.stdout
    assert "--output-layout tasks_first" in res.stderr  # the shape looks tasks first
    res = runner.invoke(main, ["models", "info", f"{net}::PositionsFirst"])
    assert _layout_row(res.stdout) == "positions_first (not declared)"
