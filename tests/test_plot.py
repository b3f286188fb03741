from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import h5py
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from _mutmap_fixtures import CONTIGS, toy_model, write_genome, write_vcf
from click.testing import CliRunner

from veff.cli.mutation_map import plot_mutation_map_cmd
from veff.errors import InputError
from veff.mutation_map.compute import MutationMap, MutationMapFile
from veff.mutation_map.plot import BASE_COLORS, plot_mutation_map


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def maps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, MutationMapFile]:
    folder = tmp_path_factory.mktemp("plot")
    fasta, vcf = write_genome(folder), write_vcf(folder)
    model, _ = toy_model(30)
    mm = MutationMap(model, fasta, scores=("diff", "alt"))
    small = mm.query_vcf(vcf, output=folder / "vcf.h5")
    long_model, _ = toy_model(280, n_out=1)
    long = MutationMap(long_model, fasta).query_region(
        "chrA", 10, 290, output=folder / "long.h5", variants=vcf
    )
    return {"vcf": small, "long": long}


def _texts(ax: plt.Axes) -> list[str]:
    return [t.get_text() for t in ax.texts]


@pytest.mark.parametrize("suffix", [".png", ".pdf", ".svg"])
def test_plot_formats(maps: dict[str, MutationMapFile], tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"fig{suffix}"
    plot_mutation_map(maps["vcf"], entry=1, score="diff", output_label="out1", output=out)
    data = out.read_bytes()
    assert len(data) > 5000
    magic = {".png": b"\x89PNG", ".pdf": b"%PDF", ".svg": b"<?xml"}[suffix]
    assert data.startswith(magic)


def test_plot_axes_and_labels(maps: dict[str, MutationMapFile]) -> None:
    e = maps["vcf"].entries[1]  # centred on v_multi (chrA:120)
    res = plot_mutation_map(e, score="diff", output_label="out0")
    (heat,), (logo,), (track,) = res.heatmaps, res.logos, res.tracks
    assert heat.get_xlabel() == "chrA position (1-based)"
    assert heat.get_ylabel() == "mutant base"
    assert [t.get_text() for t in heat.get_yticklabels()] == list("ACGT")
    assert logo.get_ylabel() == "mean |diff|"
    assert res.colorbar.ax.get_ylabel() == "diff, output out0"
    lo, hi = res.colorbar.mappable.get_clim()
    assert lo == pytest.approx(-hi)  # centred at 0
    ticks = [int(t.get_text().replace(",", "")) for t in heat.get_xticklabels()]
    assert ticks and all(e.start < t <= e.end for t in ticks)
    assert ticks == sorted(ticks)
    assert track is not None
    assert "v_multi" in _texts(track)
    assert "chrA:" in logo.get_title(loc="left")
    # one letter per reference base, coloured by base
    letters = logo.collections[0]
    assert len(letters.get_paths()) == len(e.ref_seq)
    assert tuple(letters.get_facecolors()[0][:3]) == pytest.approx(
        matplotlib.colors.to_rgb(BASE_COLORS[e.ref_seq[0]])
    )


def test_plot_rc_zoom_and_wrap(maps: dict[str, MutationMapFile]) -> None:
    e = maps["vcf"].entries[1]
    res = plot_mutation_map(e, rc=True, limit_region_genomic=(e.start + 5, e.start + 25), output_label=0)
    heat = res.heatmaps[0]
    assert "reverse complement" in heat.get_xlabel()
    ticks = [int(t.get_text().replace(",", "")) for t in heat.get_xticklabels()]
    assert ticks == sorted(ticks, reverse=True)
    assert all(e.start + 5 < t <= e.start + 25 for t in ticks)
    assert heat.get_xlim() == (-0.5, 19.5)
    assert heat.images[0].get_array().shape == (4, 20)
    long = maps["long"]
    res = plot_mutation_map(long, entry=0)
    assert len(res.heatmaps) == 2  # 280 bases -> two rows of 140
    assert "v_snv" in _texts(res.tracks[0])
    assert _texts(res.tracks[1]) == ["v_del"]


def test_plot_into_given_axes(maps: dict[str, MutationMapFile], tmp_path: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 2))
    res = plot_mutation_map(maps["vcf"].entries[0], ax=ax, output_label="out0", output=tmp_path / "ax.png")
    assert res.heatmaps == (ax,)
    assert res.figure is fig
    assert (tmp_path / "ax.png").stat().st_size > 5000


def test_plot_errors(maps: dict[str, MutationMapFile], tmp_path: Path) -> None:
    e = maps["vcf"].entries[0]
    with pytest.raises(InputError, match="choose one output label"):
        plot_mutation_map(e)
    with pytest.raises(InputError, match="not in the map"):
        plot_mutation_map(e, score="logit", output_label="out0")
    with pytest.raises(InputError, match="limit_region_genomic"):
        plot_mutation_map(e, output_label="out0", limit_region_genomic=(e.start - 5, e.start + 5))
    with pytest.raises(InputError, match="unsupported figure format"):
        plot_mutation_map(e, output_label="out0", output=tmp_path / "x.jpg")
    with pytest.raises(InputError, match="out of range"):
        plot_mutation_map(maps["vcf"], entry=99)
    with pytest.raises(InputError, match="model input"):
        plot_mutation_map(maps["vcf"], seq_input="other")


def test_cli_plot(maps: dict[str, MutationMapFile], tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli.svg"
    path = str(maps["vcf"].path)
    res = runner.invoke(
        plot_mutation_map_cmd,
        [
            path,
            "--entry",
            "1",
            "--seq-input",
            "seq",
            "--score",
            "alt",
            "--output-label",
            "out1",
            "--limit-region-genomic",
            "110",
            "130",
            "--rc-plot",
            "-o",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert out.stat().st_size > 5000
    res = runner.invoke(plot_mutation_map_cmd, [str(maps["long"].path), "-o", str(tmp_path / "l.png")])
    assert res.exit_code == 0, res.output  # single score and single output: defaults apply
    res = runner.invoke(plot_mutation_map_cmd, [path, "-o", str(tmp_path / "e.png")])
    assert res.exit_code == 1
    assert res.output.startswith("veff: error: the map has 2 outputs")
    res = runner.invoke(
        plot_mutation_map_cmd, [path, "--output-label", "out0", "-o", str(tmp_path / "e.gif")]
    )
    assert res.exit_code == 1
    assert "unsupported figure format" in res.output


def test_reference_letters_follow_the_genome(maps: dict[str, MutationMapFile]) -> None:
    e = maps["long"].entries[0]
    assert e.ref_seq == CONTIGS["chrA"][10:290]


def _damaged(source: Path, target: Path, change: Callable[[h5py.File], None]) -> Path:
    shutil.copyfile(source, target)
    with h5py.File(target, "a") as fh:
        change(fh)
    return target


def _replace_scores(fh: h5py.File) -> None:
    del fh["entries/0/scores/diff"]
    fh["entries/0/scores/diff"] = np.zeros((5, 3), np.float32)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda fh: fh.__delitem__("entries"), "the root: group 'entries' is missing"),
        (lambda fh: fh.attrs.__delitem__("output_labels"), "attribute 'output_labels' is missing"),
        (lambda fh: fh.attrs.__setitem__("format_version", "two"), "format version 'two' is not supported"),
        (lambda fh: fh.__delitem__("entries/0"), "entry 0: group entries/0 is missing"),
        (lambda fh: fh["entries/0"].attrs.__delitem__("start"), "entry 0 (entries/0): attribute 'start'"),
        (lambda fh: fh["entries/0"].attrs.__delitem__("ref_seq"), "attribute 'ref_seq' is missing"),
        (lambda fh: fh["entries/0"].attrs.__setitem__("ref_seq", "ACGT"), "ref_seq must be end - start"),
        (lambda fh: fh.__delitem__("entries/0/scores"), "dataset scores/diff is missing"),
        (lambda fh: fh.__delitem__("entries/0/variants/pos"), "dataset variants/pos is missing"),
        (_replace_scores, "scores/diff must have shape (280, 4, 1) (L, 4, T), found (5, 3)"),
    ],
)
def test_cli_plot_of_a_damaged_map_is_one_line_naming_the_file(
    maps: dict[str, MutationMapFile], tmp_path: Path, change: Callable[[h5py.File], None], message: str
) -> None:
    """A map missing what the format requires: one line naming the file and what is missing (each
    case was a KeyError, IndexError or ValueError traceback); no figure is written."""
    bad = _damaged(maps["long"].path, tmp_path / "bad.h5", change)
    fig = tmp_path / "fig.png"
    fig.write_bytes(b"old figure")
    res = CliRunner().invoke(plot_mutation_map_cmd, [str(bad), "-o", str(fig)])
    assert res.exit_code == 1, res.output
    assert len(res.output.splitlines()) == 1, res.output
    assert res.output.startswith(f"veff: error: {bad}: "), res.output
    assert message in res.output
    assert fig.read_bytes() == b"old figure"
    with pytest.raises(InputError, match=re.escape(message)):
        plot_mutation_map(bad)


@pytest.mark.parametrize("size", [0, 3000, None])
def test_cli_plot_of_a_file_that_is_not_a_whole_hdf5_file(
    maps: dict[str, MutationMapFile], tmp_path: Path, size: int | None
) -> None:
    data = maps["long"].path.read_bytes()
    bad = tmp_path / "cut.h5"
    bad.write_bytes(b"not hdf5 at all\n" if size is None else data[:size])
    res = CliRunner().invoke(plot_mutation_map_cmd, [str(bad), "-o", str(tmp_path / "f.png")])
    assert res.exit_code == 1 and len(res.output.splitlines()) == 1, res.output
    assert res.output.startswith(f"veff: error: {bad}: ")
    assert "not an HDF5 file" in res.output or "cannot read the HDF5 file" in res.output
    assert not (tmp_path / "f.png").exists()


def test_cli_plot_entry_and_zoom_out_of_range_name_the_option(
    maps: dict[str, MutationMapFile], tmp_path: Path
) -> None:
    path = str(maps["long"].path)
    e = maps["long"].entries[0]
    res = CliRunner().invoke(plot_mutation_map_cmd, [path, "--entry", "3", "-o", str(tmp_path / "f.png")])
    assert res.exit_code == 1, res.output
    want = f"veff: error: {path}: entry (--entry) 3 out of range; the map has 1 entries, 0 to 0\n"
    assert res.output == want
    zoom = ["--limit-region-genomic", str(e.end - 5), str(e.end + 5)]
    res = CliRunner().invoke(plot_mutation_map_cmd, [path, *zoom, "-o", str(tmp_path / "f.png")])
    assert res.exit_code == 1 and len(res.output.splitlines()) == 1, res.output
    assert "--limit-region-genomic" in res.output and f"START < END <= {e.end}" in res.output
    assert not (tmp_path / "f.png").exists()
