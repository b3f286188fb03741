"""Gene-aware splice scoring: annotations, windows, delta scores, outputs (no SpliceAI weights needed).

The model is a seeded network with OpenSpliceAI's contract (tests/openspliceai_model.py); the
expected values come from a literal re-implementation of SpliceAI's per-variant procedure in this
file (one window per variant and gene, N outside the transcript, reverse complement for minus
strands, SpliceAI's deletion and insertion rules), run on the same module.
"""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pysam
import pytest
import torch
from click.testing import CliRunner
from helpers import DATA, E1, E2, EXAMPLE, HG19, HG38
from openspliceai_model import OpenSpliceAI80

from veff import InputError, score_splice
from veff.cli import main
from veff.errors import ModelError
from veff.io.annotation import Transcript, read_annotation
from veff.models import load_model
from veff.models.splice import splice_model_info
from veff.scoring.splice import align_alt, delta_scores

SPLICE = DATA / "spliceai"
GENES_E1 = SPLICE / "genes_E1_grch38_chr22.txt"
GENES_E2 = SPLICE / "genes_E2_grch37_chr17.txt"
GTF = EXAMPLE / "annotation" / "gencode.v25.chr22_32000001-32300000.gtf"
D = 50


def _records(vcf: Path) -> list[tuple[str, int, str, str, list[str]]]:
    out = []
    for line in vcf.read_text().splitlines():
        if not line.startswith("#"):
            f = line.split("\t")
            out.append((f[0], int(f[1]), f[2], f[3], f[4].split(",")))
    return out


def _genes(path: Path) -> list[dict[str, object]]:
    rows = []
    for line in path.read_text().splitlines()[1:]:
        name, chrom, strand, s, e, es, ee = line.split("\t")
        ex = sorted({int(x) + 1 for x in es.split(",")[:-1]} | {int(x) for x in ee.split(",")[:-1]})
        rows.append(
            {"name": name, "chrom": chrom, "strand": strand, "s": int(s) + 1, "e": int(e), "bounds": ex}
        )
    return rows


def _hot(seq: str) -> np.ndarray:
    lut = {"A": 0, "C": 1, "G": 2, "T": 3}
    out = np.zeros((len(seq), 4), np.float32)
    for i, c in enumerate(seq):
        if c in lut:
            out[i, lut[c]] = 1
    return out


def _spliceai_reference(
    models: list[torch.nn.Module], vcf: Path, fasta: Path, genes: Path, flank: int, mask: bool = False
) -> list[str | None]:
    """SpliceAI's procedure, variant by variant (the oracle): one INFO value (or None) per record."""
    cov = 2 * D + 1
    wid = 2 * flank + cov
    table = _genes(genes)
    out: list[str | None] = []
    with pysam.FastaFile(str(fasta)) as fa:
        for chrom, pos, _, ref, alts in _records(vcf):
            name = chrom.removeprefix("chr")
            hits = [g for g in table if g["chrom"] == name and g["s"] <= pos <= g["e"]]  # type: ignore[operator]
            chrom = next(c for c in (chrom, f"chr{name}", name) if c in fa.references)
            length = fa.get_reference_length(chrom)
            lo, hi = pos - wid // 2 - 1, pos + wid // 2
            if not hits or lo < 0 or hi > length or len(ref) > 2 * D:
                out.append(None)
                continue
            seq = fa.fetch(chrom, lo, hi).upper()
            if seq[wid // 2 : wid // 2 + len(ref)] != ref:
                out.append(None)
                continue
            entries = []
            for alt in alts:
                for g in hits:
                    if len(ref) > 1 and len(alt) > 1:
                        entries.append(f"{alt}|{g['name']}|.|.|.|.|.|.|.|.")
                        continue
                    p0 = max(wid // 2 + int(g["s"]) - pos, 0)  # type: ignore[call-overload]
                    p1 = max(wid // 2 - (int(g["e"]) - pos), 0)  # type: ignore[call-overload]
                    x_ref = "N" * p0 + seq[p0 : wid - p1] + "N" * p1
                    x_alt = x_ref[: wid // 2] + alt + x_ref[wid // 2 + len(ref) :]
                    xs = [_hot(x_ref), _hot(x_alt)]
                    if g["strand"] == "-":
                        xs = [x[::-1, ::-1].copy() for x in xs]
                    with torch.no_grad():
                        ys = [
                            np.mean(
                                [m(torch.from_numpy(x.T[None].copy())).numpy()[0].T for m in models], axis=0
                            )
                            for x in xs
                        ]
                    if g["strand"] == "-":
                        ys = [y[::-1] for y in ys]
                    y_ref, y_alt = ys
                    if len(ref) > 1 and len(alt) == 1:
                        y_alt = np.concatenate([y_alt[: D + 1], np.zeros((len(ref) - 1, 3)), y_alt[D + 1 :]])
                    elif len(ref) == 1 and len(alt) > 1:
                        y_alt = np.concatenate(
                            [y_alt[:D], y_alt[D : D + len(alt)].max(0)[None], y_alt[D + len(alt) :]]
                        )
                    diffs = [y_alt[:, 1] - y_ref[:, 1], y_ref[:, 1] - y_alt[:, 1]]
                    diffs += [y_alt[:, 2] - y_ref[:, 2], y_ref[:, 2] - y_alt[:, 2]]
                    idx = [int(np.argmax(x)) for x in diffs]
                    bounds = np.array(g["bounds"]) - pos
                    near = int(bounds[np.argmin(np.abs(bounds))])
                    vals = []
                    for k, (x, i) in enumerate(zip(diffs, idx, strict=True)):
                        hit = (i - D) == near
                        masked = mask and (hit if k in (0, 2) else not hit)
                        vals.append(f"{float(x[i]) * (0 if masked else 1):.2f}")
                    entries.append("|".join([alt, str(g["name"]), *vals, *(str(i - D) for i in idx)]))
            out.append(",".join(entries) if entries else None)
    return out


def _info(path: Path, key: str = "SpliceAI") -> list[str | None]:
    opener = gzip.open if str(path).endswith(".gz") else open
    out = []
    with opener(path, "rt") as fh:
        for line in fh:
            if line.startswith("#"):
                continue
            info = dict(kv.split("=", 1) for kv in line.rstrip("\n").split("\t")[7].split(";") if "=" in kv)
            out.append(info.get(key))
    return out


def _close(got: list[str | None], want: list[str | None]) -> None:
    """Same entries, DP and names exact, DS within rounding of the last digit (float32 sums differ)."""
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert (g is None) == (w is None), (g, w)
        if g is None or w is None:
            continue
        for eg, ew in zip(g.split(","), w.split(","), strict=True):
            fg, fw = eg.split("|"), ew.split("|")
            assert fg[:2] == fw[:2] and fg[6:] == fw[6:], (eg, ew)
            for a, b in zip(fg[2:6], fw[2:6], strict=True):
                assert a == b or abs(float(a) - float(b)) <= 0.010001, (eg, ew)


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    # the test machine's cores are shared: small ops on two contended threads are 10x slower
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def members() -> list[torch.nn.Module]:
    return [OpenSpliceAI80(seed=1), OpenSpliceAI80(seed=2)]


# -- annotation ---------------------------------------------------------------------------------


def test_gene_table_is_read_with_spliceai_coordinates() -> None:
    ann = read_annotation(GENES_E1)
    assert [t.name for t in ann.transcripts] == ["SLC5A1", "C22orf42", "RFPL2", "SLC5A4"]
    slc = ann.transcripts[0]
    assert (slc.chrom, slc.strand, slc.start, slc.end, len(slc.exon_starts)) == (
        "22",
        "+",
        32043031,
        32113029,
        15,
    )
    # TX_START is 0-based: SpliceAI's rule TX_START < POS <= TX_END (POS 1-based), any chr prefix
    assert ann.overlapping("chr22", 32043031 - 1) == []
    assert ann.overlapping("chr22", 32043031)[0].name == "SLC5A1"
    assert ann.overlapping("22", 32113029 - 1)[0].name == "SLC5A1"
    assert ann.overlapping("22", 32113029) == []
    # nearest boundary: first exon base (EXON_START + 1) or last exon base, upstream wins a tie
    assert slc.nearest_boundary(32049943) == 0
    assert slc.nearest_boundary(32049940) == 3
    assert slc.nearest_boundary(32043416 + 1) == -1


def test_gtf_transcripts_match_spliceai_table_rows(tmp_path: Path) -> None:
    table = {t.name: t for t in read_annotation(GENES_E1).transcripts}

    def same(a: Transcript, b: Transcript) -> bool:
        return (a.strand, a.start, a.end, a.exon_starts.tolist(), a.exon_ends.tolist()) == (
            b.strand,
            b.start,
            b.end,
            b.exon_starts.tolist(),
            b.exon_ends.tolist(),
        )

    for path in (GTF, _gzip(GTF, tmp_path / "a.gtf.gz")):
        canonical = {t.name: t for t in read_annotation(path).transcripts}
        # GENCODE v25 has no Ensembl_canonical tag: the fallback (most exonic bases) is SpliceAI's
        # canonical transcript for three of the four genes
        assert [same(canonical[n], table[n]) for n in table] == [True, True, False, True]
        every = read_annotation(path, transcripts="all").transcripts
        assert all(any(t.name == n and same(t, table[n]) for t in every) for n in table)
        assert len(every) > len(canonical)
        assert canonical["RFPL2"].transcript_id == "ENST00000400237.2"


def _gzip(src: Path, dst: Path) -> Path:
    with gzip.open(dst, "wt") as fh:
        fh.write(src.read_text())
    return dst


def test_gff3_with_tags(tmp_path: Path) -> None:
    gff = tmp_path / "a.gff3"
    gff.write_text(
        "##gff-version 3\n"
        "1\t.\tgene\t101\t900\t.\t-\t.\tID=g1;Name=GENE1\n"
        "1\t.\tmRNA\t101\t900\t.\t-\t.\tID=t1;Parent=g1;tag=basic\n"
        "1\t.\texon\t101\t200\t.\t-\t.\tParent=t1\n"
        "1\t.\texon\t801\t900\t.\t-\t.\tParent=t1\n"
        "1\t.\tmRNA\t151\t850\t.\t-\t.\tID=t2;Parent=g1;tag=basic,MANE_Select\n"
        "1\t.\texon\t151\t200\t.\t-\t.\tParent=t2\n"
        "1\t.\texon\t401\t500\t.\t-\t.\tParent=t2\n"
        "1\t.\texon\t801\t850\t.\t-\t.\tParent=t2\n"
    )
    canon = read_annotation(gff).transcripts
    assert [(t.name, t.transcript_id, t.start, t.end) for t in canon] == [("GENE1", "t2", 150, 850)]
    assert [t.transcript_id for t in read_annotation(gff, transcripts="mane").transcripts] == ["t2"]
    assert [t.transcript_id for t in read_annotation(gff, transcripts="all").transcripts] == ["t1", "t2"]
    np.testing.assert_array_equal(canon[0].exon_starts, [150, 400, 800])


def test_bad_annotation_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "genes.txt"
    bad.write_text("#NAME\tCHROM\tSTRAND\tTX_START\tTX_END\tEXON_START\tEXON_END\nG\t1\t*\t1\t9\t1,\t9,\n")
    with pytest.raises(InputError, match=r"genes.txt:2: STRAND must be \+ or -"):
        read_annotation(bad)
    bad.write_text("#NAME\tCHROM\tSTRAND\tTX_START\tTX_END\tEXON_START\tEXON_END\nG\t1\t+\t1\t9\t1,x,\t9,\n")
    with pytest.raises(InputError, match=r"genes.txt:2: expected a comma-separated list of integers"):
        read_annotation(bad)
    gtf = tmp_path / "a.gtf"
    gtf.write_text('1\tx\texon\t10\t20\t.\t+\t.\tgene_id "g";\n')
    with pytest.raises(InputError, match=r"a.gtf:1: exon without a transcript_id"):
        read_annotation(gtf)


def test_builtin_table_names_need_the_spliceai_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(InputError, match=r"'grch38' names SpliceAI's built-in gene table, but the spliceai"):
        read_annotation("grch38")
    monkeypatch.chdir(tmp_path)  # a file of that name is read as a file
    Path("grch38").write_text(GENES_E1.read_text())
    assert len(read_annotation("grch38")) == len(read_annotation(GENES_E1))


# -- delta scores -------------------------------------------------------------------------------


def test_align_alt_follows_spliceai_indel_rules() -> None:
    rng = np.random.default_rng(0)
    cov = 2 * D + 1
    alt = rng.random((cov + 5, 3)).astype(np.float32)
    np.testing.assert_array_equal(align_alt(alt, D, 1, 1), alt[:cov])
    # deletion of 3 bases: SpliceAI inserts zeros after the anchor
    want = np.concatenate([alt[: D + 1], np.zeros((3, 3)), alt[D + 1 : cov - 3]])
    got = align_alt(alt, D, 4, 1)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, want)
    # insertion of 2 bases: the maximum over anchor and inserted bases at the anchor
    want = np.concatenate([alt[:D], alt[D : D + 3].max(0)[None], alt[D + 3 : cov + 2]])
    np.testing.assert_array_equal(align_alt(alt, D, 1, 3), want)


def test_delta_scores_tie_rule_and_masks() -> None:
    ref = np.zeros((2 * D + 1, 3), np.float32)
    alt = ref.copy()
    alt[D - 3, 1] = alt[D + 4, 1] = 0.5  # two equal acceptor gains: the upstream one wins
    ref[D + 2, 2] = 0.7  # donor loss at +2
    ds, dp = delta_scores(ref, alt, D)
    np.testing.assert_allclose(ds, [0.5, 0.0, 0.0, 0.7])
    assert dp.tolist() == [-3, -D, -D, 2]
    # SpliceAI's mask: a gain at the nearest exon boundary and a loss away from it are zeroed
    ds, _ = delta_scores(ref, alt, D, mask="spliceai", boundary=-3)
    np.testing.assert_allclose(ds, [0.0, 0.0, 0.0, 0.0])
    ds, _ = delta_scores(ref, alt, D, mask="spliceai", boundary=2)
    np.testing.assert_allclose(ds, [0.5, 0.0, 0.0, 0.7])
    # veff's mask by site type: a donor there does not mask an acceptor gain
    sites = np.zeros(2 * D + 1, np.int8)
    sites[D - 3] = 2
    sites[D + 2] = 2
    ds, _ = delta_scores(ref, alt, D, mask="veff", sites=sites)
    np.testing.assert_allclose(ds, [0.5, 0.0, 0.0, 0.7])


# -- the generic model path (OpenSpliceAI contract) ---------------------------------------------


@pytest.mark.parametrize(("vcf", "fasta", "genes"), [(E2, HG19, GENES_E2), (E1, HG38, GENES_E1)])
def test_torch_ensemble_matches_spliceai_procedure(
    tmp_path: Path, members: list[torch.nn.Module], vcf: Path, fasta: Path, genes: Path
) -> None:
    out = tmp_path / "out.vcf"
    summary = score_splice(members, vcf, fasta, out, annotation=genes, distance=D)
    want = _spliceai_reference(members, vcf, fasta, genes, flank=40)
    _close(_info(out), want)
    assert sum(w is not None for w in want) > 20
    statuses = _info(out, "VEFF_SPLICE_STATUS")
    assert all(s is not None for s in statuses)
    assert summary.records == len(want)  # type: ignore[union-attr]


def test_spliceai_style_scores_insertions_longer_than_the_room(
    tmp_path: Path, members: list[torch.nn.Module]
) -> None:
    """SpliceAI scores insertions of any length: a chunk's windows grow to fit its longest one."""
    vcf = SPLICE / "E2_long_insertions.vcf"  # 51- to 300-base insertions
    out = tmp_path / "out.vcf"
    score_splice(members, vcf, HG19, out, annotation=GENES_E2, distance=D, max_indel_length=10)
    want = _spliceai_reference(members, vcf, HG19, GENES_E2, flank=40)
    assert sum(w is not None for w in want) == 3
    _close(_info(out), want)
    # veff style keeps --max-indel-length as the limit, with a status
    out2 = tmp_path / "veff.vcf"
    score_splice(members, vcf, HG19, out2, annotation=GENES_E2, distance=D, info_style="veff")
    statuses = _info(out2, "VEFF_OpenSpliceAI_STATUS")
    assert statuses[1] is not None and statuses[1].count("|indel_too_long") == 2
    assert statuses[3] is not None and statuses[3].endswith("|indel_too_long,A|ok")


def test_mask_and_edges_with_the_torch_model(tmp_path: Path, members: list[torch.nn.Module]) -> None:
    out = tmp_path / "out.vcf.gz"
    score_splice(members[:1], E2, HG19, out, annotation=GENES_E2, distance=D, mask=True)
    _close(_info(out), _spliceai_reference(members[:1], E2, HG19, GENES_E2, flank=40, mask=True))
    assert Path(f"{out}.tbi").is_file()


def test_table_rows_one_per_alt_and_gene(tmp_path: Path, members: list[torch.nn.Module]) -> None:
    table = tmp_path / "t.tsv"
    df = score_splice(members, E1, HG38, table=table, annotation=GENES_E1, return_scores=True)
    lines = table.read_text().splitlines()
    assert lines[0].split("\t")[:8] == ["chrom", "pos", "id", "ref", "alt", "symbol", "transcript", "status"]
    assert len(lines) - 1 == len(df)  # type: ignore[arg-type]
    scored = df[df["status"] == "ok"]  # type: ignore[index]
    assert set(scored["symbol"]) == {"SLC5A1", "C22orf42", "RFPL2"}
    assert scored["DP_AG"].abs().max() <= D
    assert set(df.loc[df["symbol"] == "", "status"]) == {"outside_genes"}  # type: ignore[index]
    parquet = tmp_path / "t.parquet"
    score_splice(members, E1, HG38, table=parquet, annotation=GENES_E1)
    import pandas as pd

    back = pd.read_parquet(parquet)
    assert len(back) == len(df) and back["DS_AG"].dtype == np.float32  # type: ignore[arg-type]


def _write(path: Path, contig: str, length: int, rows: list[tuple[int, str, str, str]]) -> Path:
    head = f"##fileformat=VCFv4.2\n##contig=<ID={contig},length={length}>\n"
    head += "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    path.write_text(head + "".join(f"{contig}\t{p}\t{i}\t{r}\t{a}\t.\t.\t.\n" for p, i, r, a in rows))
    return path


def test_veff_style_normalises_scores_mnvs_and_pads_edges(
    tmp_path: Path, members: list[torch.nn.Module]
) -> None:
    with pysam.FastaFile(str(HG19)) as fa:
        seq = fa.fetch("chr17", 11300, 11400).upper()
    # a base repeated twice: deleting either copy is the same deletion
    k = next(i for i in range(10, 90) if seq[i] == seq[i + 1] and seq[i - 1] != seq[i])
    pos = 11300 + k  # 1-based position of the base before the repeat
    rows = [
        (pos, "left", seq[k - 1 : k + 1], seq[k - 1]),
        (pos + 1, "right", seq[k : k + 2], seq[k]),
        (11331, "mnv", "TC", "GA"),
        (11331, "snv", "T", "A"),
    ]
    vcf = _write(tmp_path / "v.vcf", "17", 40000, rows)
    df = score_splice(members, vcf, HG19, info_style="veff", annotation=GENES_E2, return_scores=True)
    left, right, mnv = (df[df["id"] == i].iloc[0] for i in ("left", "right", "mnv"))  # type: ignore[index]
    fields = ["DS_AG", "DS_AL", "DS_DG", "DS_DL", "DP_AG", "DP_AL", "DP_DG", "DP_DL"]
    assert list(left[fields]) == list(right[fields])
    assert mnv["status"] == "ok" and not np.isnan(mnv["DS_AG"])
    spliceai = score_splice(members, vcf, HG19, annotation=GENES_E2, return_scores=True)
    assert spliceai[spliceai["id"] == "mnv"]["status"].tolist() == ["complex_not_scored"]  # type: ignore[index]


def test_spliceai_style_skips_near_contig_end(tmp_path: Path) -> None:
    from veff.io.fasta import Fasta
    from veff.types import Status, Variant
    from veff.variants.splice import SpliceGeometry, SplicePlanner

    table = tmp_path / "g.txt"
    table.write_text(
        "#NAME\tCHROM\tSTRAND\tTX_START\tTX_END\tEXON_START\tEXON_END\nX\t17\t+\t10\t9000\t10,\t9000,\n"
    )
    genes = read_annotation(table)
    fa = Fasta(HG19)
    ref = fa.fetch("chr17", 2999, 3000).tobytes().decode()
    v = Variant("17", 3000, ref, ("A" if ref != "A" else "C",))
    geo = SpliceGeometry(flank=5000, distance=D, room=D)
    sa = SplicePlanner(fa, genes, geo, style="spliceai").build([v])
    assert sa.statuses == [[Status.NEAR_CONTIG_END]] and len(sa.alt_codes) == 0
    vs = SplicePlanner(fa, genes, geo, style="veff").build([v])
    assert vs.statuses == [[Status.CONTIG_EDGE]] and len(vs.alt_codes) == 1
    # the window runs past the contig start: N there
    assert chr(vs.alt_codes[0][0]) == "N"


def test_cli_ensemble_and_errors(tmp_path: Path, members: list[torch.nn.Module]) -> None:
    paths = []
    for k, m in enumerate(members):
        paths.append(tmp_path / f"m{k}.pt")
        torch.save(m.state_dict(), paths[-1])
    cls = f"{Path(__file__).parent / 'openspliceai_model.py'}::OpenSpliceAI80"
    out = tmp_path / "cli.vcf"
    base = ["score-variants", cls, "--vcf", str(E2), "--fasta", str(HG19), "-q"]
    res = CliRunner().invoke(
        main,
        [
            *base,
            "--weights",
            str(paths[0]),
            "--annotation",
            str(GENES_E2),
            "--info-style",
            "spliceai",
            "-o",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    _close(_info(out), _spliceai_reference(members[:1], E2, HG19, GENES_E2, flank=40))
    res = CliRunner().invoke(main, [*base, "--info-style", "spliceai", "-o", str(out)])
    assert res.exit_code != 0 and "needs --annotation" in res.output
    res = CliRunner().invoke(
        main, [*base, "--annotation", str(GENES_E2), "--splice-distance", "5000", "-o", str(out)]
    )
    assert res.exit_code != 0 and "5000" in res.output


def test_fasta_of_another_build_is_refused(tmp_path: Path, members: list[torch.nn.Module]) -> None:
    """No VCF contig in the FASTA: one error, before any work for a file, at the end for a stream."""
    out = tmp_path / "out.vcf"
    with pytest.raises(InputError, match=r"none of its contigs \(17\) is in the FASTA .*reference build"):
        score_splice(members, E2, HG38, out, annotation=GENES_E2, distance=D)
    assert not out.exists()
    text = "".join(x for x in E2.read_text().splitlines(keepends=True) if not x.startswith("##contig"))
    model = tmp_path / "m.pt"
    torch.save(members[0].state_dict(), model)
    cls = f"{Path(__file__).parent / 'openspliceai_model.py'}::OpenSpliceAI80"
    args = ["score-variants", cls, "--weights", str(model), "--vcf", "-", "--fasta", str(HG38)]
    args += ["--annotation", str(GENES_E2), "--info-style", "spliceai", "-o", str(out), "-q"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    cmd = [sys.executable, "-m", "veff", *args]
    res = subprocess.run(cmd, input=text, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 1 and "veff: error: -: none of its contigs (17) is in the FASTA" in res.stderr
    assert not out.exists()


def test_ensemble_averages_members_in_score_variants(members: list[torch.nn.Module]) -> None:
    from veff import load_model, score_variants
    from veff.models.ensemble import EnsembleModel
    from veff.variants.sequences import one_hot

    ens = EnsembleModel([load_model(m) for m in members])
    x = one_hot(np.frombuffer(b"ACGTN" * 40 + b"ACGTACGTAC", np.uint8)[None].copy())
    each = [np.asarray(load_model(m).predict(x)) for m in members]
    np.testing.assert_allclose(ens.predict(x), (each[0] + each[1]) / 2, rtol=1e-6)
    kw = {
        "seq_length": 181,
        "aggregate": "window:5 max_abs",
        "return_predictions": True,
        "output_layout": "tasks_first",  # OpenSpliceAI's (N, 3, P)
    }
    both = score_variants(members, E1, HG38, **kw)["diff"]  # type: ignore[index]
    one = [score_variants(m, E1, HG38, **kw)["diff"] for m in members]  # type: ignore[index]
    assert both.shape == one[0].shape and len(both) > 50 and both.shape[1] == 3
    assert not np.allclose(one[0].values, one[1].values)


def test_declared_layout_takes_the_place_of_the_probe(members: list[torch.nn.Module]) -> None:
    """OpenSpliceAI's (N, 3, P), declared tasks first (or by its splice name): the probe's scores."""
    kw = {"annotation": GENES_E1, "return_scores": True}
    probed = score_splice(members[:1], E1, HG38, **kw)
    for layout in ("tasks_first", "classes_first"):
        model = load_model(members[0], output_layout=layout)
        assert splice_model_info(model).layout == "tasks_first"
        declared = score_splice(model, E1, HG38, **kw)
        assert declared.equals(probed)  # type: ignore[union-attr]
    with pytest.raises(ModelError, match=r"read positions_first has \d+ classes, not 3"):
        splice_model_info(load_model(members[0], output_layout="positions_first"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"batch_size": "tune"}, "batch_size 'tune' (--batch-size tune) is not available with a gene"),
        ({"batch_size": 1.5}, "batch_size must be a whole number (at least 1), got 1.5"),
        ({"threads": 0}, "threads must be at least 1, got 0"),
        ({"threads": "4"}, "threads must be a whole number (at least 1), got '4'"),
    ],
)
def test_score_splice_refuses_bad_counts_before_any_work(tmp_path, change, message):
    """In Python these were TypeErrors ('<' between str and int) or went through to the run."""
    out = tmp_path / "out.vcf"
    with pytest.raises(InputError, match=re.escape(message)):
        score_splice("m.h5", "in.vcf", "ref.fa", out, annotation="genes.txt", **change)
    assert list(tmp_path.iterdir()) == []
