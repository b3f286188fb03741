from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
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
