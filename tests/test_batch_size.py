"""The automatic batch size: chosen by device kind and window length, the same in every run and shard."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import base, other, write_vcf
from toy_models import GCModel

import veff
from veff.engine.batching import BATCH_LIMITS, auto_batch_size
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
def test_cpu_batches_are_small_and_gpu_batches_large(length):
    cpu, gpu = auto_batch_size(length), auto_batch_size(length, device="gpu")
    assert BATCH_LIMITS["cpu"][0] <= cpu <= BATCH_LIMITS["cpu"][1]
    assert cpu <= gpu
    assert cpu * length <= 2**14 or cpu == BATCH_LIMITS["cpu"][0]
    assert cpu & (cpu - 1) == 0 and gpu & (gpu - 1) == 0  # powers of two


def test_unknown_device_kind_is_refused():
    with pytest.raises(ValueError, match="device kind"):
        auto_batch_size(1000, device="tpu")


@pytest.mark.parametrize("accelerator", ["cpu", "gpu"])
def test_the_run_uses_the_batch_of_its_device(genome, tmp_path, accelerator):
    fn = GCModel(11)
    veff.score_variants(
        _model(fn, accelerator),
        write_vcf(tmp_path / "m.vcf", _many(2100)),
        genome,
        rc=False,
        return_predictions=True,
    )
    assert set(fn.shapes[1:]) == {auto_batch_size(11, device=accelerator)}  # shapes[0]: the probe


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
