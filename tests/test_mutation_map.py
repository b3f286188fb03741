from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np
import pytest
from _mutmap_fixtures import CONTIGS, toy_model, write_genome, write_vcf
from click.testing import CliRunner

import veff
import veff.mutation_map.compute as mm_mod
import veff.mutation_map.windows as windows_mod
from veff.cli.mutation_map import create_mutation_map_cmd, parse_region
from veff.errors import InputError
from veff.mutation_map.compute import MutationMap, load_mutation_map, mutant_table, tile_region
from veff.types import Region
from veff.variants.regions import centre_index
from veff.variants.sequences import one_hot, reverse_complement_codes, str_to_codes

EXAMPLE = Path(__file__).resolve().parent.parent / "example_data"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("mm")
    return {"fasta": write_genome(folder), "vcf": write_vcf(folder), "dir": folder}


def _predict(fn, seqs: list[str]) -> np.ndarray:
    x = one_hot(np.stack([str_to_codes(s) for s in seqs]))
    return fn.__class__.__call__(fn, x)


# ----------------------------------------------------------------------------- tiling


@pytest.mark.parametrize(
    ("start", "end", "length", "expected"),
    [
        (100, 130, 10, [100, 110, 120]),  # exact multiple
        (100, 125, 10, [100, 110, 115]),  # remainder: last window shifted left to end at the query end
        (100, 110, 10, [100]),  # query == L
        (100, 111, 10, [100, 101]),
        (100, 101, 5, [98]),  # one base: at index (L-1)//2
        (100, 101, 6, [98]),
        (100, 103, 10, [97]),  # shorter than L: centred, the odd extra base on the right
    ],
)
def test_tile_region(start: int, end: int, length: int, expected: list[int]) -> None:
    tiles = tile_region(Region("c", start, end), length)
    assert [w.start for w in tiles] == expected
    assert all(len(w) == length for w in tiles)
    covered = set().union(*(range(w.start, w.end) for w in tiles))
    assert set(range(start, end)) <= covered
    if end - start >= length:
        assert tiles[0].start == start
        assert tiles[-1].end == end
    if end - start == 1:
        assert start - tiles[0].start == centre_index(length, "exact")


def test_tile_region_rejects_empty() -> None:
    with pytest.raises(InputError, match="empty"):
        tile_region(Region("c", 5, 5), 3)


def test_mutant_table_skips_reference_and_mutates_n_fully() -> None:
    pos, base = mutant_table(str_to_codes("ACNT"))
    assert len(pos) == 3 + 3 + 4 + 3
    assert (pos[pos == 2].size, set(base[pos == 2])) == (4, {0, 1, 2, 3})
    assert 0 not in base[pos == 0]  # A -> A skipped
    valid = np.array([True, False, True, True])
    pos2, _ = mutant_table(str_to_codes("ACNT"), valid)
    assert 1 not in pos2


# ----------------------------------------------------------------------------- values


def _brute_force(fn, ref: str, strand: str = ".") -> np.ndarray:
    """diff for every (position, base) computed one sequence at a time."""
    out = np.full((len(ref), 4, fn.w.shape[2]), np.nan, np.float32)

    def orient(s: str) -> str:
        return s if strand != "-" else reverse_complement_codes(str_to_codes(s)).tobytes().decode()

    r = _predict(fn, [orient(ref)])[0]
    for i, b in enumerate(ref):
        for j, a in enumerate("ACGT"):
            if a != b:
                alt = ref[:i] + a + ref[i + 1 :]
                out[i, j] = _predict(fn, [orient(alt)])[0] - r
    return out


@pytest.mark.parametrize("strand", [".", "-"])
def test_window_values_match_brute_force(data: dict[str, Path], strand: str) -> None:
    model, fn = toy_model(12)
    mm = MutationMap(model, data["fasta"], rc=False, batch_size=7)
    res = mm.window_scores(Region("chrA", 55, 67, strand))  # covers the N run at 60..63
    assert res.ref_seq == CONTIGS["chrA"][55:67]
    np.testing.assert_allclose(
        res.scores["diff"], _brute_force(fn, res.ref_seq, strand), rtol=1e-5, atol=1e-6, equal_nan=True
    )
    nan_per_pos = np.isnan(res.scores["diff"][:, :, 0]).sum(axis=1)
    assert [int(k) for k in nan_per_pos] == [0 if c == "N" else 1 for c in res.ref_seq]


def test_positions_outside_contig_stay_nan(data: dict[str, Path]) -> None:
    model, _ = toy_model(9)
    res = MutationMap(model, data["fasta"]).window_scores(Region("chrA", -4, 5))
    assert res.ref_seq == "NNNN" + CONTIGS["chrA"][:5]
    assert np.isnan(res.scores["diff"][:4]).all()
    assert (np.isnan(res.scores["diff"][4:, :, 0]).sum(axis=1) == 1).all()


def test_blocks_give_same_values(data: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    model, _ = toy_model(20)
    mm = MutationMap(model, data["fasta"], scores=("diff", "alt"), rc=True, batch_size=4)
    whole = mm.window_scores(Region("chrA", 10, 30))
    monkeypatch.setattr(windows_mod, "_MEMORY_BUDGET", 1)  # one block per batch of positions
    pieces = mm.window_scores(Region("chrA", 10, 30))
    for s in ("diff", "alt"):
        np.testing.assert_array_equal(whole.scores[s], pieces.scores[s])


@pytest.mark.parametrize("rc", [False, True])
def test_reference_predicted_once_per_window(data: dict[str, Path], tmp_path: Path, rc: bool) -> None:
    length = 10
    model, fn = toy_model(length)
    mm = MutationMap(model, data["fasta"], rc=rc, batch_size=8)
    res = mm.query_region("chrA", 100, 125, output=tmp_path / "m.h5")
    assert len(res.entries) == 3
    seen = np.concatenate(fn.calls[1:])  # calls[0]: the all-N probe for the output count
    assert len(seen) == (2 if rc else 1) * 3 * (1 + 3 * length)
    for e in res.entries:
        ref = one_hot(str_to_codes(e.ref_seq))
        assert int((seen == ref).all(axis=(1, 2)).sum()) == 1
        if rc:
            assert int((seen == ref[::-1, ::-1]).all(axis=(1, 2)).sum()) == 1


# ------------------------------------------------------------- equality with score-variants


@pytest.mark.parametrize("rc", [False, True])
@pytest.mark.parametrize("centering", ["exact", "kipoi"])
def test_vcf_map_equals_score_variants(
    data: dict[str, Path], tmp_path: Path, rc: bool, centering: str
) -> None:
    scores = ("diff", "logit", "deepsea_effect")
    kwargs = [{}, {"rc_merging": "max"}, {}]
    model, _ = toy_model(15)
    res = MutationMap(
        model, data["fasta"], scores=scores, score_kwargs=kwargs, rc=rc, centering=centering
    ).query_vcf(data["vcf"], output=tmp_path / "v.h5")
    model2, _ = toy_model(15)
    expected = veff.score_variants(
        model2,
        data["vcf"],
        data["fasta"],
        scores=scores,
        score_kwargs=kwargs,
        rc=rc,
        centering=centering,
        return_predictions=True,
    )
    checked = 0
    for e in res.entries:
        for v in e.variants:
            if e.start != v.start - centre_index(15, centering):
                continue  # only the window centred on this variant
            for alt in v.alts:
                if len(v.ref) != 1 or len(alt) != 1:
                    continue
                for s in scores:
                    cell = e.scores[s][v.start - e.start, "ACGT".index(alt)]
                    np.testing.assert_allclose(
                        cell, expected[s].loc[v.key(alt)].to_numpy(), rtol=1e-5, atol=1e-7
                    )
                checked += 1
    snvs = [k for k in expected["diff"].index if len(k.split(":")[2]) == len(k.split(":")[3]) == 1]
    assert checked == len(snvs) == 1 + 3 + 1 + 1


@pytest.mark.tensorflow
def test_keras_donor_map_equals_score_variants(tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    fasta = EXAMPLE / "reference" / "hg38_chr22_32000001-32300000.padded.fa.gz"
    vcf = tmp_path / "e1.vcf"
    lines = (EXAMPLE / "vcf" / "E1_hg38_chr22_32000001-32300000.vcf").read_text().splitlines()
    vcf.write_text(
        "\n".join(
            [ln for ln in lines if ln.startswith("#")]
            + [ln for ln in lines if "SLC5A1_exon_start_+" in ln][:3]
        )
        + "\n"
    )
    model = veff.load_model(EXAMPLE / "models" / "mmsplice_donor" / "Donor.h5")
    for rc in (False, True):
        mm = MutationMap(model, fasta, scores=("logit",), rc=rc)
        res = mm.query_vcf(vcf, output=tmp_path / "d.h5")
        exp = veff.score_variants(model, vcf, fasta, scores=("logit",), rc=rc, return_predictions=True)[
            "logit"
        ]
        checked = 0
        for e in res.entries:
            v = next(v for v in e.variants if v.start - e.start == centre_index(18))
            for alt in (a for a in v.alts if len(a) == 1):
                got = e.scores["logit"][v.start - e.start, "ACGT".index(alt), 0]
                assert got == pytest.approx(exp.loc[v.key(alt)].iloc[0], abs=1e-5)
                checked += 1
        assert checked == 3 + 3 + 3


# ----------------------------------------------------------------------------- HDF5


def test_hdf5_round_trip(data: dict[str, Path], tmp_path: Path) -> None:
    model, _ = toy_model(16)
    mm = MutationMap(model, data["fasta"], scores=("diff", "alt"))
    out = tmp_path / "map.h5"
    res = mm.query_region("chrA", 110, 150, output=out, variants=data["vcf"])
    assert not list(tmp_path.glob(".*veff-tmp*"))
    with h5py.File(out) as fh:
        a = fh.attrs
        assert a["format"] == "veff-mutation-map"
        assert a["format_version"] == 2
        assert (a["method"], a["method_requested"]) == ("naive", "auto")  # a Python callable: naive ISM
        assert "PyTorch" in a["method_note"]
        assert a["veff_version"] == veff.__version__
        assert a["model"] == "toy"
        assert list(a["scores"]) == ["diff", "alt"]
        assert list(a["output_labels"]) == ["out0", "out1"]
        g = fh["entries/0"]
        assert (g.attrs["chrom"], g.attrs["start"], g.attrs["end"]) == ("chrA", 110, 126)
        assert g.attrs["ref_seq"] == CONTIGS["chrA"][110:126]
        ds = g["scores/diff"]
        assert (ds.shape, ds.dtype, ds.compression) == ((16, 4, 2), np.float32, "gzip")
        assert list(g["variants/pos"][()]) == [120, 121]
    assert res.scores == ("diff", "alt")
    assert res.labels == ("out0", "out1")
    assert len(res.entries) == 3
    e = res.entries[0]
    direct = mm.window_scores(Region("chrA", 110, 126))
    assert (e.chrom, e.start, e.end, e.strand, e.seq_input) == ("chrA", 110, 126, ".", "seq")
    assert e.ref_seq == direct.ref_seq
    for s in ("diff", "alt"):
        np.testing.assert_array_equal(e.scores[s], direct.scores[s])
    np.testing.assert_array_equal(e.ref_prediction, direct.ref_prediction)
    assert [(v.pos, v.id) for v in e.variants] == [(120, "v_multi"), (121, ".")]
    assert len(e.variants[0].alts) == 3
    assert [x.index for x in res.entries[1:]] == [1, 2]
    assert res.entries[-1].end == 150


def test_load_rejects_foreign_files(tmp_path: Path) -> None:
    txt = tmp_path / "x.h5"
    txt.write_text("hello")
    with pytest.raises(InputError, match="not an HDF5 file"):
        load_mutation_map(txt)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as fh:
        fh.attrs["DEEPDISH_IO_VERSION"] = 12
    with pytest.raises(InputError, match="not a veff mutation map"):
        load_mutation_map(other)
    future = tmp_path / "future.h5"
    with h5py.File(future, "w") as fh:
        fh.attrs["format"] = "veff-mutation-map"
        fh.attrs["format_version"] = 99
    with pytest.raises(InputError, match="format version 99 is not supported"):
        load_mutation_map(future)
    with pytest.raises(InputError, match="not found"):
        load_mutation_map(tmp_path / "missing.h5")


def test_failed_run_leaves_no_file(data: dict[str, Path], tmp_path: Path) -> None:
    model, fn = toy_model(10)
    real = fn.__class__.__call__

    def flaky(x: np.ndarray) -> np.ndarray:
        if len(fn.calls) > 3:
            raise RuntimeError("boom")
        return real(fn, x)

    model._fn = flaky
    with pytest.raises(RuntimeError, match="boom"):
        MutationMap(model, data["fasta"]).query_region("chrA", 0, 100, output=tmp_path / "f.h5")
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- queries


def test_query_bed_strand_names_and_bound_regions(data: dict[str, Path], tmp_path: Path) -> None:
    bed = tmp_path / "q.bed"
    bed.write_text("chrA\t10\t30\tgeneX\t0\t-\n2\t50\t55\n")
    model, _ = toy_model(10)
    res = MutationMap(model, data["fasta"]).query_bed(bed, output=tmp_path / "b.h5")
    assert [(e.chrom, e.start, e.strand, e.name) for e in res.entries] == [
        ("chrA", 10, "-", "geneX"),
        ("chrA", 20, "-", "geneX"),
        ("2", 48, ".", "2:51-55"),
    ]
    bound = [Region("chrA", 0, 10), Region("chrA", 25, 35, "-"), Region("2", 0, 10)]
    mm = MutationMap(model, data["fasta"], bound_regions=bound)
    res = mm.query_region("chrA", 5, 27, output=tmp_path / "c.h5")
    assert [(e.start, e.strand) for e in res.entries] == [(0, "."), (25, "-")]
    with pytest.raises(InputError, match="exactly L = 10"):
        MutationMap(model, data["fasta"], bound_regions=[Region("chrA", 0, 11)])


def test_query_vcf_shares_windows_and_warns_on_unknown_contigs(data: dict[str, Path], tmp_path: Path) -> None:
    seq = CONTIGS["chrA"]
    vcf = tmp_path / "same.vcf"
    vcf.write_text(
        "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
        f"chrA\t50\tfirst\t{seq[49]}\tN\t.\t.\t.\n"
        f"chrA\t50\tsecond\t{seq[49:51]}\t{seq[49]}\t.\t.\t.\n"
        "chrZ\t5\tlost\tA\tC\t.\t.\t.\n"
    )
    model, _ = toy_model(11)
    with pytest.warns(veff.VeffWarning, match="chrZ"):
        res = MutationMap(model, data["fasta"]).query_vcf(vcf, output=tmp_path / "s.h5")
    assert len(res.entries) == 1
    e = res.entries[0]
    assert (e.start, e.name) == (49 - 5, "first,second")
    assert [v.id for v in e.variants] == ["first", "second"]


def test_query_errors(data: dict[str, Path], tmp_path: Path) -> None:
    model, _ = toy_model(10)
    mm = MutationMap(model, data["fasta"])
    with pytest.raises(InputError, match="not in the reference"):
        mm.query_region("chrZ", 0, 10, output=tmp_path / "z.h5")
    with pytest.raises(InputError, match="outside the contig"):
        mm.query_region("chrA", 290, 310, output=tmp_path / "z.h5")
    with pytest.raises(InputError, match="unknown score"):
        MutationMap(model, data["fasta"], scores=("nope",))
    with pytest.raises(InputError, match="score_kwargs"):
        MutationMap(model, data["fasta"], scores=("diff", "alt", "ref"), score_kwargs=[{}, {}])
    with pytest.raises(InputError, match="does not exist"):
        mm.query_region("chrA", 0, 10, output=tmp_path / "no" / "z.h5")


# ----------------------------------------------------------------------------- CLI


def test_parse_region() -> None:
    assert parse_region("chr1:1-10") == ("chr1", 0, 10)
    assert parse_region("gi|1|ref|X.1|:1,001-2,000") == ("gi|1|ref|X.1|", 1000, 2000)
    with pytest.raises(InputError):
        parse_region("chr1:10")


def test_cli_create_region_bed_vcf(
    data: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, _ = toy_model(10)
    monkeypatch.setattr(mm_mod, "load_model", lambda *a, **k: model)
    runner = CliRunner()
    base = ["toy", "--fasta", str(data["fasta"]), "-q"]
    out = tmp_path / "r.h5"
    res = runner.invoke(
        create_mutation_map_cmd,
        [
            *base,
            "--region",
            "chrA:101-125",
            "-o",
            str(out),
            "--scores",
            "diff,logit",
            "--score-kwargs",
            '{"rc_merging": "max"}',
            "--rc",
        ],
    )
    assert res.exit_code == 0, res.output
    m = load_mutation_map(out)
    assert (m.scores, len(m.entries), bool(m.attrs["rc"])) == (("diff", "logit"), 3, True)
    bed = tmp_path / "q.bed"
    bed.write_text("chrA\t0\t10\n")
    res = runner.invoke(create_mutation_map_cmd, [*base, "--regions", str(bed), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert len(load_mutation_map(out).entries) == 1
    res = runner.invoke(create_mutation_map_cmd, [*base, "--regions", str(data["vcf"]), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert load_mutation_map(out).attrs["query"] == "vcf"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "give exactly one of --regions FILE and --region"),
        (["--region", "chrA:1"], "--region: expected chrom:start-end"),
        (["--region", "chrA:1-10", "--scores", "nope"], "unknown score 'nope'"),
        (["--region", "chrA:1-10", "--score-kwargs", "{bad"], "--score-kwargs: not valid JSON"),
        (["--region", "chrQ:1-10"], "contig 'chrQ' not in the reference"),
    ],
)
def test_cli_create_errors(
    data: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: list[str], message: str
) -> None:
    model, _ = toy_model(10)
    monkeypatch.setattr(mm_mod, "load_model", lambda *a, **k: model)
    res = CliRunner().invoke(
        create_mutation_map_cmd,
        ["toy", "--fasta", str(data["fasta"]), "-q", "-o", str(tmp_path / "e.h5"), *extra],
    )
    assert res.exit_code == 1
    assert res.output.startswith("veff: error: ")
    assert message in res.output
    assert len(res.output.strip().splitlines()) == 1


# ----------------------------------------------------------------------------- bad options and faults


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ig_steps": 1.5}, "ig_steps must be a whole number (at least 1), got 1.5"),
        ({"ig_steps": "5"}, "ig_steps must be a whole number (at least 1), got '5'"),
        ({"ig_steps": True}, "ig_steps must be a whole number (at least 1), got True"),
        ({"ig_steps": 0}, "ig_steps must be at least 1, got 0"),
        ({"batch_size": "8"}, "batch_size must be a whole number (at least 1), got '8'"),
        ({"batch_size": 0}, "batch_size must be at least 1, got 0"),
        ({"batch_size": 1.5}, "batch_size must be a whole number (at least 1), got 1.5"),
        ({"seq_length": 0}, "seq_length must be at least 1, got 0"),
        ({"mutate_within": 1.5}, "mutate_within must be a whole number (at least 0), got 1.5"),
        ({"output_offset": -1}, "output_offset must be at least 0, got -1"),
    ],
)
def test_bad_option_values_are_input_errors(data: dict[str, Path], change: dict, message: str) -> None:
    """Each was accepted (1.5, True, -1: the run went on) or a TypeError from a comparison."""
    model, _ = toy_model(10)
    with pytest.raises(InputError, match=re.escape(message)):
        MutationMap(model, data["fasta"], **change)


def test_query_region_takes_whole_coordinates(data: dict[str, Path], tmp_path: Path) -> None:
    model, _ = toy_model(10)
    with pytest.raises(InputError, match=re.escape("start must be a whole number (at least 0), got 10.5")):
        MutationMap(model, data["fasta"]).query_region("chrA", 10.5, 30, output=tmp_path / "x.h5")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_model_outputs_one_label_alone_and_an_index_out_of_range(
    data: dict[str, Path], tmp_path: Path
) -> None:
    model, _ = toy_model(10)
    res = MutationMap(model, data["fasta"], model_outputs="out1").query_region(
        "chrA", 10, 20, output=tmp_path / "one.h5"
    )
    assert res.labels == ("out1",)  # not the characters 'o', 'u', 't', '1'
    assert MutationMap(model, data["fasta"], model_outputs=[-1]).labels == ["out1"]
    with pytest.raises(
        InputError, match=re.escape("model output '2' not found: not a label and not an index in -2..1")
    ):
        _ = MutationMap(model, data["fasta"], model_outputs=[2]).labels


def test_bed_interval_outside_its_contig_fails_before_any_window(
    data: dict[str, Path], tmp_path: Path
) -> None:
    bed = tmp_path / "q.bed"
    bed.write_text("chrA\t10\t30\tfine\nchrA\t290\t310\tpast_end\n")
    out = tmp_path / "old.h5"
    out.write_bytes(b"a map from before")
    model, fn = toy_model(10)
    with pytest.raises(InputError) as err:
        MutationMap(model, data["fasta"]).query_bed(bed, output=out)
    assert str(err.value) == (
        f"{bed}, interval 2 (past_end): query region chrA:291-310 (1-based; 0-based [290, 310)) is "
        "empty or outside the contig chrA (1-300)"
    )
    assert fn.calls == []  # checked before the model ran at all
    assert out.read_bytes() == b"a map from before"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.h5", "q.bed"]


@pytest.mark.parametrize("fault", [RuntimeError("boom"), KeyboardInterrupt()])
def test_a_run_stopped_part_way_keeps_the_old_file_and_says_how_far_it_got(
    data: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], fault: BaseException
) -> None:
    model, fn = toy_model(10)
    real = fn.__class__.__call__

    def flaky(x: np.ndarray) -> np.ndarray:
        if len(fn.calls) > 6:
            raise fault
        return real(fn, x)

    model._fn = flaky
    out = tmp_path / "m.h5"
    out.write_bytes(b"a map from before")
    mm = MutationMap(model, data["fasta"], batch_size=16, progress=True, progress_interval=3600)
    with pytest.raises(type(fault)):
        mm.query_region("chrA", 0, 100, output=out)
    assert out.read_bytes() == b"a map from before"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.h5"]
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("veff: progress: ") and "/10 windows" in last and "(100%)" not in last, last


def test_cli_existing_map_survives_a_run_that_fails_part_way(tmp_path: Path) -> None:
    fasta = EXAMPLE / "reference" / "hg38_chr22_32000001-32300000.padded.fa.gz"
    bed = tmp_path / "q.bed"
    bed.write_text("chr22\t32068400\t32068600\tgood\nchr22\t32299990\t32300100\tbad\n")
    out = tmp_path / "map.h5"
    out.write_bytes(b"a map from before")
    model = EXAMPLE / "models" / "donor_cnn" / "donor_cnn.pt"
    args = [str(model), "--fasta", str(fasta), "--regions", str(bed), "-q", "-o", str(out)]
    res = CliRunner().invoke(create_mutation_map_cmd, args)
    assert res.exit_code == 1, res.output
    assert res.output == (
        f"veff: error: {bed}, interval 2 (bad): query region chr22:32299991-32300100 (1-based; 0-based "
        "[32299990, 32300100)) is empty or outside the contig chr22 (1-32300000)\n"
    )
    assert out.read_bytes() == b"a map from before"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.h5", "q.bed"]
