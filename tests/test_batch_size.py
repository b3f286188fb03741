"""Batch sizes: the automatic choice (the same in every run and shard) and --batch-size tune."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import base, other, write_fasta, write_vcf
from toy_models import GCModel

import veff
from veff.cli import main
from veff.engine.batching import (
    BATCH_LIMITS,
    CPU_ACTIVATION_FLOATS,
    CPU_ACTIVATION_MAX,
    CPU_ACTIVATION_PER_FLOP,
    CPU_MIN_BATCH,
    CPU_UNBOUND_BASES,
    auto_batch_size,
    model_batch_size,
    model_threads,
    tune_candidates,
)
from veff.errors import InputError
from veff.io.vcf import VcfReader
from veff.models import CallableModel, InputLayout

ROOT = Path(__file__).resolve().parent.parent
DONOR = ROOT / "example_data" / "models" / "donor_cnn" / "donor_cnn.pt"
E1 = ROOT / "example_data" / "vcf" / "E1_hg38_chr22_32000001-32300000.vcf"
HG38 = ROOT / "example_data" / "reference" / "hg38_chr22_32000001-32300000.padded.fa.gz"


def _model(fn: GCModel, accelerator: str) -> CallableModel:
    m = CallableModel(fn, seq_length=11, layout=InputLayout.parse("L,4"))
    m.accelerator = accelerator  # type: ignore[assignment]
    return m


def _many(n: int) -> list[tuple]:
    return [
        ("chr1", 20 + k % 400, f"v{k}", base("chr1", 20 + k % 400), other(base("chr1", 20 + k % 400)))
        for k in range(n)
    ]


@pytest.mark.parametrize("length", [11, 101, 1000, 10_000, 15_000])
@pytest.mark.parametrize("channels", [4, 32, 320])
def test_cpu_batches_fit_the_activation_and_gpu_batches_are_large(length, channels):
    act = channels * length
    cpu, gpu = auto_batch_size(length, activation=act), auto_batch_size(length, device="gpu", activation=act)
    assert CPU_MIN_BATCH <= cpu <= BATCH_LIMITS[1]
    assert cpu * act <= CPU_ACTIVATION_FLOATS or cpu == CPU_MIN_BATCH
    assert cpu * act * 2 > CPU_ACTIVATION_FLOATS or cpu == BATCH_LIMITS[1]  # the largest that fits
    assert gpu == auto_batch_size(length)  # a GPU batch follows the input bases
    assert cpu & (cpu - 1) == 0 and gpu & (gpu - 1) == 0  # powers of two


def test_a_deepsea_size_torch_net_gets_a_small_cpu_batch_and_a_tiny_cnn_a_large_one():
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _common import deepsea_module, tiny_module

    deepsea, tiny = veff.load_model(deepsea_module()), veff.load_model(tiny_module())
    assert deepsea.activation_floats(1000) == 320 * 993  # the first convolution's output
    assert tiny.activation_floats(101) == 8 * 93
    assert 800 < (deepsea.flops_per_float(1000) or 0) < 1000  # compute-bound: about 900 FLOPs per float
    assert model_batch_size(deepsea, 1000) == 32
    assert auto_batch_size(1000, None, "cpu", deepsea.activation_floats(1000)) == 8  # without the FLOPs
    assert model_batch_size(tiny, 101) == 4096


@pytest.mark.parametrize("flops", [None, 10.0, 256.0, 900.0, 4000.0, 1e6])
def test_compute_bound_models_get_more_room_up_to_the_limit(flops):
    act = 300_000
    room = CPU_ACTIVATION_FLOATS
    if flops:
        room = min(CPU_ACTIVATION_MAX, max(room, CPU_ACTIVATION_PER_FLOP * flops))
    size = auto_batch_size(1000, activation=act, flops_per_float=flops)
    assert size * act <= room < 2 * size * act
    assert size >= auto_batch_size(1000, activation=act)  # FLOPs never shrink the batch


def test_flops_per_float_counts_convolutions_and_dense_layers_in_both_frameworks():
    import keras
    import torch

    net = torch.nn.Sequential(torch.nn.Conv1d(4, 8, 3), torch.nn.Flatten(), torch.nn.Linear(72, 2)).eval()
    inp = keras.Input((11, 4))
    out = keras.layers.Dense(2)(keras.layers.Flatten()(keras.layers.Conv1D(8, 3)(inp)))
    flops = 2 * 72 * (4 * 3) + 2 * 2 * 72  # conv: 72 outputs x fan-in 12; dense: 2 x fan-in 72
    floats = 72 + 72 + 2  # conv, flatten and dense outputs
    for model in (veff.load_model(net, seq_length=11), veff.load_model(keras.Model(inp, out))):
        assert model.activation_floats(11) == 72
        assert model.flops_per_float(11) == pytest.approx(flops / floats)


def test_a_keras_model_on_a_cpu_gets_the_batch_of_its_input_bases():
    """TensorFlow's kernels have no cache cliff (case 15): the batch follows the window length, with
    more bases per batch than an opaque model gets."""
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _common import keras_deepsea

    model = veff.load_model(keras_deepsea())
    assert model.activation_floats(1000) is not None  # it can be looked into...
    assert not model.cpu_cache_bound  # ...but its batch does not follow the activation
    assert model_batch_size(model, 1000) == auto_batch_size(1000, bases=CPU_UNBOUND_BASES) == 512
    assert model_batch_size(model, 1000, 40) == 64  # a small run still gets a small batch


def test_unknown_device_kind_is_refused():
    with pytest.raises(ValueError, match="device kind"):
        auto_batch_size(1000, device="tpu")


@pytest.mark.parametrize("accelerator", ["cpu", "gpu"])
def test_the_run_uses_the_batch_of_its_device(tmp_path, accelerator):
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _common import deepsea_module

    model = veff.load_model(deepsea_module())
    model.accelerator = accelerator  # the forward passes stay on the CPU; the choice follows the kind
    seen: list[int] = []
    model.module.register_forward_pre_hook(lambda _m, args: seen.append(len(args[0])))
    seq = "".join("ACGT"[(k * 7 + k // 3) % 4] for k in range(2000))
    chr1 = tmp_path / "chr1.fa"
    chr1.write_text(f">chr1\n{seq}\n")
    rows = [("chr1", p, f"v{p}", seq[p - 1], other(seq[p - 1])) for p in range(600, 640)]
    veff.score_variants(model, write_vcf(tmp_path / "m.vcf", rows), chr1, rc=False, return_predictions=True)
    expected = model_batch_size(model, 1000, 80)
    assert set(seen[2:]) == {expected}  # seen[0:2]: the activation and output probes
    assert expected == (32 if accelerator == "cpu" else 128)


def test_default_batch_writes_the_bytes_of_the_same_explicit_batch(tmp_path):
    donor = veff.load_model(DONOR)
    auto = tmp_path / "auto.vcf.gz"
    veff.score_variants(donor, E1, HG38, auto, scores=["diff", "logit"], rc=True, table=tmp_path / "a.tsv")
    n_alleles = sum(len(v.alts) + 1 for v, _ in VcfReader(E1))
    size = auto_batch_size(donor.seq_length or 0, 2 * n_alleles if n_alleles <= 4096 else None)
    explicit = tmp_path / "explicit.vcf.gz"
    veff.score_variants(
        donor,
        E1,
        HG38,
        explicit,
        scores=["diff", "logit"],
        rc=True,
        batch_size=size,
        table=tmp_path / "e.tsv",
    )
    assert auto.read_bytes() == explicit.read_bytes()
    assert (tmp_path / "a.tsv").read_bytes() == (tmp_path / "e.tsv").read_bytes()


# -- --batch-size tune -------------------------------------------------------------------------------


def _tiny():
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _common import tiny_module

    return veff.load_model(tiny_module())


@pytest.fixture
def big_vcf(tmp_path: Path) -> tuple[Path, Path]:
    """4,200 SNVs (more than the 4,096 alleles under which a run is 'small') on a 600-bp chr1."""
    rows = [
        ("chr1", 60 + k % 400, f"v{k}", base("chr1", 60 + k % 400), other(base("chr1", 60 + k % 400)))
        for k in range(4200)
    ]
    return write_vcf(tmp_path / "big.vcf", rows), write_fasta(tmp_path / "g.fa")


def test_tune_candidates_surround_the_automatic_batch():
    assert tune_candidates(16) == (4, 8, 16, 32, 64)
    assert tune_candidates(4096) == (1024, 2048, 4096)  # not above the largest automatic batch
    assert tune_candidates(1) == (1, 2, 4)


def test_tune_picks_a_candidate_and_scores_as_an_explicit_batch(big_vcf):
    vcf, fa = big_vcf
    model = _tiny()
    candidates = tune_candidates(model_batch_size(model, 101))
    assert candidates == (1024, 2048, 4096)
    seen: list[int] = []
    model.module.register_forward_pre_hook(lambda _m, args: seen.append(len(args[0])))
    tuned = veff.score_variants(
        model, vcf, fa, rc=True, batch_size="tune", scores=["diff", "logit"], return_predictions=True
    )
    calls = [c for c in seen if c > 1]  # without the probes of one sequence (activation, FLOPs, outputs)
    assert calls[:6] == [1024, 1024, 2048, 2048, 4096, 4096]  # each candidate twice, smallest first
    chosen = calls[6]
    assert chosen in candidates and set(calls[6:]) == {chosen}
    explicit = veff.score_variants(
        model, vcf, fa, rc=True, batch_size=chosen, scores=["diff", "logit"], return_predictions=True
    )
    for score in ("diff", "logit"):
        assert tuned[score].index.equals(explicit[score].index)
        np.testing.assert_allclose(tuned[score].to_numpy(), explicit[score].to_numpy(), rtol=1e-5, atol=1e-6)


def test_tune_chooses_the_fastest_size_and_reports_it(big_vcf, tmp_path, monkeypatch):
    """A model whose calls cost 30 ms plus 1 us per sequence on the engine's clock (a fake one, so
    the machine's load cannot change the choice): the largest batch is the fastest per sequence."""
    from types import SimpleNamespace

    import veff.engine.batching as batching

    clock = [0.0]
    monkeypatch.setattr(batching, "time", SimpleNamespace(perf_counter=lambda: clock[0]))

    def slow(x: np.ndarray) -> np.ndarray:
        clock[0] += 0.03 + 1e-6 * len(x)
        return x.sum(axis=(1, 2))[:, None]

    vcf, fa = big_vcf
    model = CallableModel(slow, name="slow", seq_length=11, layout=InputLayout.parse("L,4"))
    summary = veff.score_variants(
        model, vcf, fa, tmp_path / "o.vcf", rc=True, batch_size="tune", summary_json=tmp_path / "s.json"
    )
    assert summary.batch is not None
    assert summary.batch["tuned"] and summary.batch["size"] == 4096
    assert summary.batch["candidates"] == [1024, 2048, 4096]
    assert summary.batch["sequences_per_second"] == {
        str(s): round(s / (0.03 + 1e-6 * s), 1) for s in (1024, 2048, 4096)
    }
    assert "batch 4096 (tuned)" in summary.line()
    assert json.loads((tmp_path / "s.json").read_text())["batch"]["size"] == 4096


def test_cli_tune_says_what_it_chose(big_vcf, tmp_path):
    vcf, fa = big_vcf
    net = tmp_path / "gc.py"
    net.write_text(
        "import torch\n"
        "class GC(torch.nn.Module):\n"
        "    seq_len = 11\n"
        "    def forward(self, x):\n"
        "        return x[:, 1:3].sum(dim=(1, 2))[:, None]\n"
    )
    res = CliRunner().invoke(
        main,
        [
            "score-variants",
            f"{net}::GC",
            "--vcf",
            str(vcf),
            "--fasta",
            str(fa),
            "-o",
            str(tmp_path / "o.vcf"),
            "--rc",
            "--batch-size",
            "tune",
        ],
    )
    assert res.exit_code == 0, res.output
    said = [ln for ln in res.stderr.splitlines() if "--batch-size tune: chose" in ln]
    assert len(said) == 1, res.stderr
    assert "(sequences/s by batch size: 1,024: " not in said[0]  # sizes are written plainly
    assert "1024: " in said[0] and "4096: " in said[0]
    assert "(tuned)" in res.stderr.splitlines()[-1]


def test_tune_on_a_small_vcf_keeps_the_automatic_batch(tmp_path):
    fn = GCModel(11)
    vcf = write_vcf(tmp_path / "s.vcf", _many(30))
    summary = veff.score_variants(
        _model(fn, "cpu"), vcf, write_fasta(tmp_path / "g.fa"), tmp_path / "o.vcf", batch_size="tune"
    )
    # nothing was timed: the automatic batch for the run's 60 sequences, and the summary says so
    assert summary.batch is not None and summary.batch["size"] == 64 and not summary.batch["tuned"]
    assert summary.line().endswith(", batch 64 (too few sequences to tune)")


def _donor_args(tmp_path: Path) -> list[str]:
    """``score-variants`` of the donor model on E1, writing ``tmp_path / o.vcf``."""
    return [
        "score-variants",
        str(DONOR),
        "--vcf",
        str(E1),
        "--fasta",
        str(HG38),
        "-o",
        str(tmp_path / "o.vcf"),
    ]


@pytest.mark.parametrize("value", ["0", "fast", "-3", "2.5"])
def test_bad_batch_size_is_one_usage_line(tmp_path, value):
    res = CliRunner().invoke(main, [*_donor_args(tmp_path), "--batch-size", value])
    assert res.exit_code == 2
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("veff: error: Invalid value for '--batch-size'"), (
        res.stderr
    )
    assert "expected a positive number of sequences or 'tune'" in lines[0]


def test_tune_is_refused_where_shards_or_splice_scoring_would_need_one_batch(tmp_path):
    with pytest.raises(InputError, match="batch_size must be a number of sequences, 'tune' or None"):
        veff.score_variants(DONOR, E1, HG38, tmp_path / "o.vcf", batch_size="fast")  # type: ignore[arg-type]
    base_args = _donor_args(tmp_path)
    res = CliRunner().invoke(main, [*base_args, "--batch-size", "tune", "--workers", "2"])
    assert res.exit_code == 2  # a usage error, as with --annotation below
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and "--workers/--scheduler" in lines[0] and "give a number" in lines[0], res.stderr
    with pytest.raises(InputError, match="shards of a sharded run"):  # the API says the same
        veff.score_variants(DONOR, E1, HG38, tmp_path / "o.vcf", batch_size="tune", workers=2)
    gtf = tmp_path / "g.gtf"
    gtf.write_text("")
    res = CliRunner().invoke(main, [*base_args, "--batch-size", "tune", "--annotation", str(gtf)])
    assert res.exit_code == 2
    assert res.stderr.splitlines() == [
        "veff: error: --batch-size tune is not available with --annotation; give a number "
        "(see 'veff score-variants -h')"
    ]
    assert not (tmp_path / "o.vcf").exists()


def test_tune_is_skipped_when_the_run_is_shorter_than_the_timing(tmp_path):
    """5,000 alleles are more than a 'small' VCF, but fewer than the 14,336 sequences the timing needs."""
    rows = [
        ("chr1", 60 + k % 400, f"v{k}", base("chr1", 60 + k % 400), other(base("chr1", 60 + k % 400)))
        for k in range(2500)
    ]
    vcf = write_vcf(tmp_path / "mid.vcf", rows)
    model = _tiny()
    summary = veff.score_variants(
        model, vcf, write_fasta(tmp_path / "g.fa"), tmp_path / "o.vcf", rc=False, batch_size="tune"
    )
    assert summary.batch is not None and summary.batch["size"] == 4096 and not summary.batch["tuned"]


def test_a_cheap_model_runs_on_one_cpu_thread_unless_told_otherwise(tmp_path):
    import sys

    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _common import deepsea_module, tiny_module

    tiny, deepsea = veff.load_model(tiny_module()), veff.load_model(deepsea_module())
    assert model_threads(tiny, 101) == 1  # 57,000 FLOPs per sequence
    assert model_threads(deepsea, 1000) is None  # 1.1 GFLOP: torch's own threads
    assert model_threads(veff.load_model(DONOR), 101) is None  # TorchScript: no view inside
    tiny.accelerator = "gpu"  # type: ignore[assignment]
    assert model_threads(tiny, 101) is None
    tiny.accelerator = "cpu"  # type: ignore[assignment]
    seen: list[int] = []
    tiny.module.register_forward_pre_hook(lambda _m, _a: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    seq = "".join("ACGT"[(k * 7 + k // 3) % 4] for k in range(400))
    chr1 = tmp_path / "chr1.fa"
    chr1.write_text(f">chr1\n{seq}\n")
    vcf = write_vcf(
        tmp_path / "t.vcf", [("chr1", p, f"v{p}", seq[p - 1], other(seq[p - 1])) for p in range(100, 140)]
    )
    veff.score_variants(tiny, vcf, chr1, tmp_path / "a.vcf")
    assert seen[-1] == 1 and torch.get_num_threads() == before  # the batch's call; restored after
    veff.score_variants(tiny, vcf, chr1, tmp_path / "b.vcf", threads=2)
    assert seen[-1] == 2
