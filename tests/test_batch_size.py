"""The automatic batch size: chosen by device kind and window length, the same in every run and shard."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import base, other, write_vcf
from toy_models import GCModel

import veff
from veff.engine.batching import (
    BATCH_LIMITS,
    CPU_ACTIVATION_FLOATS,
    CPU_ACTIVATION_MAX,
    CPU_ACTIVATION_PER_FLOP,
    CPU_MIN_BATCH,
    auto_batch_size,
    model_batch_size,
)
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
