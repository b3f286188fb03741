"""Rows carry an optional feature: (record, ALT, feature); several rows per ALT from a per-feature score."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from helpers import base, other, write_vcf
from toy_models import TwoOutputModel

import veff
import veff.pipeline
from veff.models import CallableModel, InputLayout
from veff.run.stages import Scorer
from veff.types import RowKey, Variant
from veff.writers.sink import ScoredChunk
from veff.writers.table import META_COLUMNS

FORMATS = ["tsv", "tsv.gz", "parquet", "h5"]


def _model():
    return CallableModel(TwoOutputModel(11), name="toy", seq_length=11, layout=InputLayout.parse("L,4"))


def _rows():
    b = base("chr1", 300)
    return [
        ("chr1", 40, "snv", base("chr1", 40), other(base("chr1", 40))),
        ("chr1", 300, "multi", b, ",".join(x for x in "ACG" if x != b) + ",<DEL>"),
        ("chrUn", 10, "unknown", "A", "C"),
        ("chr1", 310, "noalt", base("chr1", 310), "."),
        ("chr1", 500, "last", base("chr1", 500), other(base("chr1", 500))),
    ]


def test_row_keys_and_variant_keys():
    v = Variant("chr1", 100, "A", ("C", "G"))
    assert RowKey(0, 1) == (0, 1, "") and RowKey(0, 1, "GENE").feature == "GENE"
    assert v.key("G") == "chr1:100:A:G" and v.key("G", "GENE") == "chr1:100:A:G:GENE"


def _per_gene(monkeypatch):
    """A per-feature score: every scored ALT gets a row for G1 and for G2 (G2 = 10 x G1)."""
    real_plan, real_score = veff.pipeline.plan_run, Scorer.__call__

    def plan(opts, hook):
        return dataclasses.replace(real_plan(opts, hook), features=True)

    def score(self, ws, preds):
        one = real_score(self, ws, preds)
        slots = np.repeat(ws.alt_slot, 2, axis=0)
        values = {
            s: np.repeat(v, 2, axis=0) * np.tile([[1.0], [10.0]], (len(v), 1)) for s, v in one.values.items()
        }
        return ScoredChunk(
            ws, {s: v.astype(np.float32) for s, v in values.items()}, slots, ["G1", "G2"] * len(ws.alt_slot)
        )

    monkeypatch.setattr(veff.pipeline, "plan_run", plan)
    monkeypatch.setattr(Scorer, "__call__", score)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_per_feature_score_gives_each_alt_a_row_per_feature(genome, tmp_path, monkeypatch, fmt):
    vcf = write_vcf(tmp_path / "in.vcf", _rows())
    plain = veff.score_variants(_model(), vcf, genome, table=tmp_path / f"plain.{fmt}", scores=["diff"])
    assert plain.records == 5
    flat = veff.read_scores(tmp_path / f"plain.{fmt}")
    assert "feature" not in flat.columns  # no feature: today's columns exactly
    assert list(flat.columns[: len(META_COLUMNS)]) == list(META_COLUMNS)
    _per_gene(monkeypatch)
    out, table = tmp_path / "o.vcf", tmp_path / f"t.{fmt}"
    veff.score_variants(_model(), vcf, genome, out, table=table, scores=["diff"])
    preds = veff.score_variants(_model(), vcf, genome, scores=["diff"], return_predictions=True)["diff"]
    back = veff.read_scores(table)
    assert list(back.columns[:6]) == ["chrom", "pos", "id", "ref", "alt", "feature"]
    scored = flat.status == "ok"
    # every scored ALT twice (G1, G2), every other ALT once with feature ""
    assert len(back) == 2 * scored.sum() + (~scored).sum()
    assert back.loc[back.feature == "", "status"].tolist() == flat.loc[~scored, "status"].tolist()
    for key in flat.index[scored]:
        g1, g2 = back.loc[f"{key}:G1"], back.loc[f"{key}:G2"]
        assert g1.status == g2.status == "ok"
        assert g1["diff/a_frac"] == flat.loc[key, "diff/a_frac"]
        assert g2["diff/weighted"] == np.float32(10 * flat.loc[key, "diff/weighted"])
    assert list(preds.index) == [k for k in back.index if k.endswith((":G1", ":G2"))]
    np.testing.assert_array_equal(back.loc[preds.index, ["diff/a_frac", "diff/weighted"]], preds)
    # the VCF: one ALLELE|feature|values entry per row, read back to the same rows and numbers
    text = out.read_text()
    assert 'Number=.,Type=String,Description="veff score diff' in text
    assert "one entry per ALT and feature. Format: ALLELE|feature|a_frac|weighted" in text
    multi = next(line for line in text.splitlines() if "\tmulti\t" in line)
    entries = multi.split("VEFF_toy_DIFF=")[1].split(";")[0].split(",")
    assert [e.split("|")[1] for e in entries] == ["G1", "G2", "G1", "G2", "G1", "G2", ""]
    assert entries[-1] == "<DEL>||.|."
    from_vcf = veff.read_scores(out)
    cols = ["chrom", "pos", "id", "ref", "alt", "feature", "status", "diff/a_frac", "diff/weighted"]
    expect = back[cols]
    np.testing.assert_array_equal(from_vcf[cols[-2:]].to_numpy(), expect[cols[-2:]].to_numpy())
    assert from_vcf[cols[:-2]].astype(str).values.tolist() == expect[cols[:-2]].astype(str).values.tolist()


@pytest.mark.parametrize("fmt", ["tsv.gz", "parquet"])
def test_rows_with_features_shard_into_the_bytes_of_one_process(genome, tmp_path, monkeypatch, fmt):
    distributed = pytest.importorskip("distributed")
    from veff.distributed.driver import local_cluster

    rows = [("chr1", p, f"v{p}", base("chr1", p), other(base("chr1", p))) for p in range(20, 590, 3)]
    vcf = write_vcf(tmp_path / "in.vcf", rows)
    _per_gene(monkeypatch)  # the workers are threads of this process: they see it too
    (tmp_path / "one").mkdir()
    (tmp_path / "many").mkdir()
    one = [tmp_path / "one" / "o.vcf.gz", tmp_path / "one" / f"t.{fmt}"]
    many = [tmp_path / "many" / "o.vcf.gz", tmp_path / "many" / f"t.{fmt}"]
    veff.score_variants(_model(), vcf, genome, one[0], table=one[1], scores=["diff"], batch_size=16)
    cluster = local_cluster(2, processes=False)
    try:
        with distributed.Client(cluster, set_as_default=False) as client:
            summary = veff.score_variants(
                _model(),
                vcf,
                genome,
                many[0],
                table=many[1],
                scores=["diff"],
                batch_size=16,
                client=client,
                shard_records=40,
            )
    finally:
        cluster.close()
    assert summary.distributed["shards"] > 1
    for a, b in zip(one, many, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    assert len(veff.read_scores(many[1])) == 2 * len(rows)
