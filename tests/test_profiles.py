"""Position-resolved model outputs: aggregation, rc flipping, indel alignment, profile scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import CHR1, base, write_fasta, write_vcf
from toy_models import BaseTrackModel, ProfileModel

import veff
from veff.cli import main
from veff.engine.outputs import OutputSpec
from veff.errors import InputError
from veff.models import CallableModel, InputLayout
from veff.scoring.tracks import Aggregation, align_alt, unflip_rc

L, P = 21, 11
COMP = {"A": "T", "C": "G", "G": "C", "T": "A"}


def _model(model: object, name: str = "prof") -> CallableModel:
    return CallableModel(model, name=name, seq_length=L, layout=InputLayout.parse("L,4"))


def _snv_rows() -> list[tuple]:
    rows = []
    for pos in (40, 41, 42, 43, 44, 45, 46, 47):
        ref = base("chr1", pos)
        for alt in "ACGT":
            if alt != ref:
                rows.append(("chr1", pos, f"v{pos}{alt}", ref, alt))
    return rows


def _prof_net(folder: Path) -> Path:
    """A torch module file whose (11, 4) output is the centre of its (4, 21) one-hot input."""
    net = folder / "prof.py"
    net.write_text(
        "import torch\n"
        "class Prof(torch.nn.Module):\n"
        "    input_layout = '4,L'\n"
        "    seq_len = 21\n"
        "    def forward(self, x):\n"
        "        return x[:, :, 5:16].transpose(1, 2)\n"
    )
    return net


def _direct(ref: str, alt: str) -> np.ndarray:
    """ProfileModel diff at the variant position, by hand."""
    return np.array([(alt == "G") - (ref == "G"), 2 * ((alt == "A") - (ref == "A"))], np.float32)


@pytest.fixture
def snv_inputs(tmp_path: Path) -> tuple[Path, Path, list[tuple]]:
    rows = _snv_rows()
    return write_vcf(tmp_path / "in.vcf", rows), write_fasta(tmp_path / "g.fa"), rows


@pytest.mark.parametrize("aggregate", ["max_abs", "sum", "at_variant", "window:0 max", "window:3,min"])
def test_snv_profile_diff_by_hand(snv_inputs: tuple[Path, Path, list[tuple]], aggregate: str) -> None:
    vcf, fa, rows = snv_inputs
    out = veff.score_variants(
        _model(ProfileModel(L, P)), vcf, fa, scores=["diff"], aggregate=aggregate, return_predictions=True
    )
    got = out["diff"]
    assert list(got.columns) == ["0", "1"]
    assert len(got) == len(rows)
    for k, (_, _, _, ref, alt) in enumerate(rows):
        want = _direct(ref, alt)
        if aggregate == "window:3,min":
            # only the variant position changes, so the minimum over 7 positions mixes in zeros
            want = np.minimum(want, 0)
        np.testing.assert_array_equal(got.iloc[k].to_numpy(), want)


def test_mean_divides_by_positions(snv_inputs: tuple[Path, Path, list[tuple]]) -> None:
    vcf, fa, rows = snv_inputs
    got = veff.score_variants(_model(ProfileModel(L, P)), vcf, fa, aggregate="mean", return_predictions=True)[
        "diff"
    ]
    want = np.stack([_direct(r[3], r[4]) for r in rows]) / P
    np.testing.assert_allclose(got.to_numpy(), want, rtol=1e-6)


def test_rc_profile_is_flipped_back_before_merging(snv_inputs: tuple[Path, Path, list[tuple]]) -> None:
    vcf, fa, rows = snv_inputs
    got = veff.score_variants(
        _model(ProfileModel(L, P)), vcf, fa, rc=True, aggregate="at_variant", return_predictions=True
    )["diff"]
    for k, (_, _, _, ref, alt) in enumerate(rows):
        # the rc window sees the complement at the mirrored position; a flip puts it back on the variant
        rc = _direct(COMP[ref], COMP[alt])
        np.testing.assert_allclose(got.iloc[k].to_numpy(), (_direct(ref, alt) + rc) / 2)


def test_unflip_rc_with_odd_margin_marks_missing_positions() -> None:
    track = np.arange(4, dtype=np.float32).reshape(1, 4, 1)
    # L = 7, P = 4, offset 1: forward output j sees input j + 1; rc output j sees input 5 - j
    # (margin 1 left, 2 right): forward output 0 has no rc counterpart
    np.testing.assert_array_equal(unflip_rc(track, 7, 1)[0, :, 0], [np.nan, 3, 2, 1])
    np.testing.assert_array_equal(unflip_rc(track, 6, 1)[0, :, 0], [3, 2, 1, 0])  # centred: a flip
    np.testing.assert_array_equal(unflip_rc(track, 8, 1)[0, :, 0], [np.nan, np.nan, 3, 2])


def test_align_alt_insertion_and_deletion() -> None:
    alt = np.arange(10, dtype=np.float32).reshape(1, 10, 1)
    # insertion of 2 bases after the anchor at 3: alt 4, 5 are new, ref 4 is alt 6
    ins = align_alt(alt, np.array([[3, 1, 3]]), 0)[0, :, 0]
    np.testing.assert_array_equal(ins, [0, 1, 2, 3, 6, 7, 8, 9, np.nan, np.nan])
    # with an output offset of 2 the same rule applies in input coordinates
    ins = align_alt(alt[:, :6], np.array([[3, 1, 3]]), 2)[0, :, 0]
    np.testing.assert_array_equal(ins, [0, 1, 4, 5, np.nan, np.nan])
    # MNVs are position for position
    assert align_alt(alt, np.array([[3, 2, 2]]), 0) is alt


@pytest.mark.parametrize(
    ("pos", "ref_len", "alt"),
    [(300, 3, None), (310, 1, "ACGTA"), (320, 5, "G"), (330, 2, "TTT")],
)
def test_indel_tracks_align_to_zero_difference(
    tmp_path: Path, pos: int, ref_len: int, alt: str | None
) -> None:
    """A model that reports each base at its position changes nowhere once the alt track is aligned."""
    ref = CHR1[pos - 1 : pos - 1 + ref_len].upper()
    alt = alt if alt is not None else ref[0]
    if alt[0] != ref[0]:
        alt = ref[0] + alt[1:]
    vcf = write_vcf(tmp_path / "i.vcf", [("chr1", pos, "x", ref, alt)])
    fa = write_fasta(tmp_path / "g.fa")
    model = _model(BaseTrackModel(L, L))
    common = {"scores": ["diff"], "return_predictions": True, "max_indel_length": 8}
    got = veff.score_variants(model, vcf, fa, aggregate="max_abs", **common)["diff"]
    assert got.shape == (1, 1)
    assert got.iloc[0, 0] == 0.0
    fc = veff.score_variants(model, vcf, fa, scores=["logfc"], return_predictions=True, max_indel_length=8)
    assert fc["logfc"].iloc[0, 0] == pytest.approx(0.0, abs=1e-9)
    # without alignment the shifted flank would differ: check that the test is not vacuous
    left = (L - 1) // 2
    ref_win = CHR1[pos - 1 - left : pos - 1 - left + L].upper()
    flank = CHR1[pos - 1 + ref_len : pos - 1 + ref_len + L].upper()
    alt_win = (ref_win[:left] + alt + flank)[:L]
    assert ref_win != alt_win


def test_logfc_and_jsd_by_hand(snv_inputs: tuple[Path, Path, list[tuple]]) -> None:
    vcf, fa, rows = snv_inputs
    got = veff.score_variants(
        _model(ProfileModel(L, P)),
        vcf,
        fa,
        scores=["logfc", "jsd"],
        score_kwargs=[{"pseudocount": 0.5}, {}],
        return_predictions=True,
    )
    want_jsd = np.full((len(rows), 2), np.nan)
    for k, (_, pos, _, _, alt) in enumerate(rows):
        start = pos - 1 - (L - 1) // 2 + (L - P) // 2
        core_ref = CHR1[start : start + P].upper()
        core_alt = core_ref[: (P - 1) // 2] + alt + core_ref[(P + 1) // 2 :]
        tr_ref = np.array([[c == "G", 2 * (c == "A")] for c in core_ref], np.float64)
        tr_alt = np.array([[c == "G", 2 * (c == "A")] for c in core_alt], np.float64)
        want_fc = np.log2((tr_alt.sum(0) + 0.5) / (tr_ref.sum(0) + 0.5))
        np.testing.assert_allclose(got["logfc"].iloc[k].to_numpy(), want_fc, rtol=1e-6)
        for t in range(2):
            if tr_ref[:, t].sum() == 0 or tr_alt[:, t].sum() == 0:
                continue
            p, q = tr_ref[:, t] / tr_ref[:, t].sum(), tr_alt[:, t] / tr_alt[:, t].sum()
            m = (p + q) / 2
            with np.errstate(divide="ignore", invalid="ignore"):
                kl = [np.sum(np.where(a > 0, a * np.log2(a / m), 0)) for a in (p, q)]
            want_jsd[k, t] = np.sqrt((kl[0] + kl[1]) / 2)
    # a task whose reference track sums to 0 has no distribution: NaN
    assert np.isfinite(want_jsd).sum() > len(rows)
    np.testing.assert_allclose(got["jsd"].to_numpy(), want_jsd, atol=1e-6)


def test_jsd_refuses_negative_tracks_unless_softmax(tmp_path: Path) -> None:
    ref = base("chr1", 50)
    vcf = write_vcf(tmp_path / "n.vcf", [("chr1", 50, "x", ref, "A" if ref != "A" else "C")])
    fa = write_fasta(tmp_path / "g.fa")

    def neg(x: np.ndarray) -> np.ndarray:
        return np.asarray(ProfileModel(L, P)(x)) - 1.0

    with pytest.raises(InputError, match="non-negative"):
        veff.score_variants(_model(neg), vcf, fa, scores=["jsd"], return_predictions=True)
    got = veff.score_variants(
        _model(neg), vcf, fa, scores=["jsd"], score_kwargs={"softmax": True}, return_predictions=True
    )
    assert np.all((got["jsd"].to_numpy() >= 0) & (got["jsd"].to_numpy() <= 1))


def test_named_heads_profile_and_counts(snv_inputs: tuple[Path, Path, list[tuple]], tmp_path: Path) -> None:
    vcf, fa, rows = snv_inputs
    model = _model(ProfileModel(L, P, heads=True))
    got = veff.score_variants(model, vcf, fa, scores=["diff"], return_predictions=True)["diff"]
    assert list(got.columns) == ["profile.0", "profile.1", "counts.0", "counts.1"]
    # only the variant position changes, so the counts head moves exactly as the profile's max_abs
    np.testing.assert_array_equal(got.iloc[:, :2].to_numpy(), got.iloc[:, 2:].to_numpy())
    out = tmp_path / "o.vcf"
    veff.score_variants(model, vcf, fa, out, scores=["diff"], model_outputs=["counts.1"])
    text = out.read_text()
    assert "counts.1" in text
    body = [ln for ln in text.splitlines() if not ln.startswith("#")]
    assert len(body) == len(rows)


def test_mutation_map_matches_score_variants_for_profiles(
    snv_inputs: tuple[Path, Path, list[tuple]], tmp_path: Path
) -> None:
    vcf, fa, rows = snv_inputs
    model = _model(ProfileModel(L, P))
    sv = veff.score_variants(
        model, vcf, fa, scores=["diff", "jsd"], aggregate="window:2 max_abs", rc=True, return_predictions=True
    )
    with veff.MutationMap(model, fa, scores=["diff", "jsd"], aggregate="window:2 max_abs", rc=True) as mm:
        res = mm.query_vcf(vcf, output=tmp_path / "m.h5")
    for k, (_, pos, _, _, alt) in enumerate(rows):
        entry = next(e for e in res.entries if e.start == pos - 1 - (L - 1) // 2)
        cell = pos - 1 - entry.start
        for score in ("diff", "jsd"):
            np.testing.assert_allclose(
                entry.scores[score][cell, "ACGT".index(alt)], sv[score].iloc[k].to_numpy(), rtol=1e-6
            )


def test_aggregation_parse_and_errors() -> None:
    assert Aggregation.parse(["window:50", "max_abs"]) == Aggregation("max_abs", "window", 50)
    assert Aggregation.parse("at_variant") == Aggregation("max_abs", "at_variant", 0)
    for bad in ("window:x", "max min", "median", "window:3 all"):
        with pytest.raises(InputError, match="bad aggregate"):
            Aggregation.parse(bad)
    # at_variant outside the output positions gives NaN
    agg = Aggregation.parse("at_variant")
    vals = np.ones((1, 5, 1), np.float32)
    assert np.isnan(agg.reduce(vals, agg.mask(np.array([[9, 1, 1]]), 5, 0)))[0, 0]


def test_output_offset_must_fit() -> None:
    with pytest.raises(InputError, match="output-offset"):
        OutputSpec.from_output(np.zeros((1, 11, 2)), 21, offset=15)


def test_cli_aggregate_and_bad_value(snv_inputs: tuple[Path, Path, list[tuple]], tmp_path: Path) -> None:
    vcf, fa, _ = snv_inputs
    net = _prof_net(tmp_path)
    out = tmp_path / "o.tsv"
    runner = CliRunner()
    args = ["score-variants", f"{net}::Prof", "--vcf", str(vcf), "--fasta", str(fa), "-q"]
    res = runner.invoke(main, [*args, "--table", str(out), "--aggregate", "window:1", "--aggregate", "sum"])
    assert res.exit_code == 0, res.output
    table = [line.split("\t") for line in out.read_text().splitlines()]
    assert table[0][-4:] == ["diff/0", "diff/1", "diff/2", "diff/3"]
    for row in table[1:]:
        ref, alt = row[3], row[4]
        # one-hot channels: within 1 position of the variant, summed, only the variant changes
        want = [float(alt == b) - float(ref == b) for b in "ACGT"]
        assert [float(v) for v in row[-4:]] == want
    res = runner.invoke(main, [*args, "--table", str(out), "--aggregate", "window"])
    assert res.exit_code != 0
    assert "bad aggregate" in res.output
    assert "Traceback" not in res.output


def test_mutation_map_mutate_within_limits_mutants(
    snv_inputs: tuple[Path, Path, list[tuple]], tmp_path: Path
) -> None:
    vcf, fa, _ = snv_inputs
    full = tmp_path / "full.h5"
    part = tmp_path / "part.h5"
    common = ["create-mutation-map", "--fasta", str(fa), "--regions", str(vcf), "-q", "--aggregate", "sum"]
    runner = CliRunner()
    net = _prof_net(tmp_path)
    for out, extra in ((full, []), (part, ["--mutate-within", "1"])):
        res = runner.invoke(main, [common[0], f"{net}::Prof", *common[1:], "-o", str(out), *extra])
        assert res.exit_code == 0, res.output
    a, b = veff.load_mutation_map(full), veff.load_mutation_map(part)
    assert len(a.entries) == len(b.entries) == 8
    for ea, eb in zip(a.entries, b.entries, strict=True):
        centre = (L - 1) // 2
        got, ref = eb.scores["diff"], ea.scores["diff"]
        np.testing.assert_array_equal(got[centre - 1 : centre + 2], ref[centre - 1 : centre + 2])
        assert np.isnan(got[: centre - 1]).all() and np.isnan(got[centre + 2 :]).all()
        assert np.isfinite(ref[0, :, 0]).sum() == 3  # the full map mutates every position


def test_models_info_reports_profile_heads(tmp_path: Path) -> None:
    net = tmp_path / "heads.py"
    net.write_text(
        "import torch\n"
        "class Heads(torch.nn.Module):\n"
        "    input_layout = '4,L'\n"
        "    def forward(self, x):\n"
        "        return {'profile': x[:, :, 2:-2].transpose(1, 2), 'counts': x.sum(dim=2)}\n"
    )
    runner = CliRunner()
    res = runner.invoke(main, ["models", "info", f"{net}::Heads", "--seq-length", "30"])
    assert res.exit_code == 0, res.output
    assert "4 tasks x 26 positions, output 0 = input 2" in res.output
    assert "profile.0, profile.1" in res.output
    res = runner.invoke(main, ["models", "info", f"{net}::Heads"])
    assert res.exit_code == 0, res.output
    assert "unknown until the model runs" in res.output


def test_output_offset_moves_the_variant_position(snv_inputs: tuple[Path, Path, list[tuple]]) -> None:
    vcf, fa, rows = snv_inputs
    model = _model(ProfileModel(L, P))
    centred = veff.score_variants(model, vcf, fa, aggregate="at_variant", return_predictions=True)["diff"]
    # claiming output 0 sees input 0 puts the variant (input 10) at output 10, which really sees
    # input 15: unchanged by the SNV
    shifted = veff.score_variants(
        model, vcf, fa, aggregate="at_variant", output_offset=0, return_predictions=True
    )["diff"]
    assert np.abs(centred.to_numpy()).sum() > 0
    np.testing.assert_array_equal(shifted.to_numpy(), np.zeros((len(rows), 2)))
    fn = ProfileModel(L, P)
    fn.output_offset = 0  # type: ignore[attr-defined]  # declared by the wrapped model itself
    declared = veff.score_variants(_model(fn), vcf, fa, aggregate="at_variant", return_predictions=True)
    np.testing.assert_array_equal(declared["diff"].to_numpy(), shifted.to_numpy())  # type: ignore[index]


class StrandModel:
    """Stranded toy: task ``plus`` marks A on the forward strand, ``minus`` marks A on the reverse
    strand (T forward), position by position; with ``heads=True`` also their sums per window.

    On a reverse-complemented window the two tasks trade places, so with the pair declared, rc
    predictions agree exactly with forward ones.
    """

    input_layout = "L,4"
    seq_len = L

    def __init__(self, heads: bool = False) -> None:
        self.heads = heads

    def __call__(self, x: np.ndarray) -> np.ndarray | dict[str, np.ndarray]:
        off = (x.shape[1] - P) // 2
        core = x[:, off : off + P]
        track = np.stack([core[:, :, 0], core[:, :, 3]], axis=2).astype(np.float32)
        if self.heads:
            return {"profile": track, "counts": track.sum(axis=1)}
        return track


def test_rc_swap_tasks_puts_strand_tasks_back(snv_inputs: tuple[Path, Path, list[tuple]]) -> None:
    vcf, fa, _ = snv_inputs
    model = CallableModel(StrandModel(), name="strand", seq_length=L, output_labels=("plus", "minus"))

    def run(**kw: object) -> np.ndarray:
        out = veff.score_variants(model, vcf, fa, aggregate="at_variant", return_predictions=True, **kw)
        return out["diff"].to_numpy()  # type: ignore[index]

    forward = run(rc=False)
    assert np.abs(forward).sum() > 0
    np.testing.assert_array_equal(run(rc=True, rc_swap_tasks="plus:minus"), forward)
    np.testing.assert_array_equal(run(rc=True, rc_swap_tasks=[(1, 0)]), forward)
    assert not np.array_equal(run(rc=True), forward)  # unswapped, A and T changes are mixed up
    fn = StrandModel()
    fn.use_rc = True  # type: ignore[attr-defined]  # a callable that asks for rc by default
    model = CallableModel(fn, name="strand", seq_length=L, output_labels=("plus", "minus"))
    assert model.default_rc
    assert not np.array_equal(run(), forward)


def test_rc_swap_tasks_across_heads_and_from_the_model(
    snv_inputs: tuple[Path, Path, list[tuple]], tmp_path: Path
) -> None:
    vcf, fa, _ = snv_inputs
    fn = StrandModel(heads=True)
    pairs = "profile.0:profile.1, counts.0:counts.1"
    model = CallableModel(fn, name="strand", seq_length=L)
    forward = veff.score_variants(model, vcf, fa, rc=False, return_predictions=True)["diff"]  # type: ignore[index]
    swapped = veff.score_variants(model, vcf, fa, rc=True, rc_swap_tasks=pairs, return_predictions=True)
    np.testing.assert_array_equal(swapped["diff"].to_numpy(), forward.to_numpy())  # type: ignore[index]
    fn.rc_swap_tasks = [("profile.0", "profile.1"), ("counts.0", "counts.1")]  # type: ignore[attr-defined]
    model = CallableModel(fn, name="strand", seq_length=L)  # the wrapped callable declares the pairs
    declared = veff.score_variants(model, vcf, fa, rc=True, return_predictions=True)["diff"]  # type: ignore[index]
    np.testing.assert_array_equal(declared.to_numpy(), forward.to_numpy())
    with veff.MutationMap(model, fa, rc=True) as mm, veff.MutationMap(model, fa, rc=False) as plain:
        a = mm.query_region("chr1", 30, 60, output=tmp_path / "rc.h5").entries[0].scores["diff"]
        b = plain.query_region("chr1", 30, 60, output=tmp_path / "fw.h5").entries[0].scores["diff"]
    np.testing.assert_array_equal(a, b)


def test_rc_swap_tasks_errors(snv_inputs: tuple[Path, Path, list[tuple]], tmp_path: Path) -> None:
    vcf, fa, _ = snv_inputs
    model = CallableModel(StrandModel(heads=True), name="strand", seq_length=L)
    bad = {
        "profile.0:nope": "rc task 'nope' not found",
        "profile.0:profile.0": "each task may appear in one pair only",
        "profile.0:profile.1,profile.1:counts.1": "each task may appear in one pair only",
        "profile.0:counts.1": "the tasks have 11 and None positions",
        "profile.0": "expected TASK:TASK",
    }
    for pairs, message in bad.items():
        with pytest.raises(InputError, match=message):
            veff.score_variants(model, vcf, fa, rc=True, rc_swap_tasks=pairs, return_predictions=True)
    net = tmp_path / "strand.py"
    net.write_text(
        "import torch\n"
        "class Strand(torch.nn.Module):\n"
        "    input_layout = 'L,4'\n"
        "    seq_len = 21\n"
        "    def forward(self, x):\n"
        "        return torch.stack([x[:, 5:16, 0], x[:, 5:16, 3]], dim=2)\n"
    )
    runner = CliRunner()
    args = ["score-variants", f"{net}::Strand", "--vcf", str(vcf), "--fasta", str(fa), "-q", "--rc"]
    res = runner.invoke(main, [*args, "--table", str(tmp_path / "o.tsv"), "--rc-swap-tasks", "0:1"])
    assert res.exit_code == 0, res.output
    declared = tmp_path / "declared.py"  # the module declares the pair as a class attribute
    declared.write_text(
        net.read_text().replace("    seq_len = 21\n", "    seq_len = 21\n    rc_swap_tasks = [(0, 1)]\n")
    )
    res = runner.invoke(
        main, ["score-variants", f"{declared}::Strand", *args[2:], "--table", str(tmp_path / "d.tsv")]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "d.tsv").read_text() == (tmp_path / "o.tsv").read_text()
    res = runner.invoke(main, [*args, "--table", str(tmp_path / "n.tsv")])
    assert (tmp_path / "n.tsv").read_text() != (tmp_path / "o.tsv").read_text()  # unswapped differs
    res = runner.invoke(main, [*args, "--table", str(tmp_path / "o.tsv"), "--rc-swap-tasks", "0:7"])
    assert res.exit_code != 0
    assert "rc task '7' not found" in res.output
    assert "Traceback" not in res.output
    mm_args = ["create-mutation-map", f"{net}::Strand", "--fasta", str(fa), "--region", "chr1:30-60"]
    res = runner.invoke(main, [*mm_args, "-o", str(tmp_path / "m.h5"), "--rc", "--rc-swap-tasks", "0:1"])
    assert res.exit_code == 0, res.output
