"""Plots of mutation maps (the only veff module that imports matplotlib).

A mutation-map figure has, per row of bases, three stacked panels sharing the x axis:

* a sequence logo of the reference letters, each letter as tall as the effect of mutating that
  base (mean ``|score|`` over the alternative bases, by default);
* a track with the IDs of the query variants (when the window holds any);
* the heatmap: 4 rows (A, C, G, T: the base mutated *to*) by position, a diverging colour scale
  centred at 0, the reference base of each position in grey, query variants boxed on their ALT
  base.

Gradient maps (``saliency``, ``grad_x_input``, ``integrated_gradients``) are drawn the same way,
except that each logo letter is the signed attribution at the observed base (below the axis
when negative) and the heatmap shows all four bases. The title names the method.

The x axis shows **1-based** genomic positions (as a genome browser or a VCF shows them), while
``limit_region_genomic`` takes veff's usual **0-based half-open** ``(start, end)``. Long windows
are wrapped into several rows (about 200 bases each) so that letters stay legible; the figure
width follows the number of bases per row.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PatchCollection
from matplotlib.colorbar import Colorbar
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import PathPatch, Rectangle
from matplotlib.path import Path as MplPath
from matplotlib.textpath import TextPath
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import Affine2D

from veff.errors import InputError
from veff.mutation_map.gradients import GRADIENT_METHODS as _GRADIENT_METHODS
from veff.mutation_map.hdf5 import MapEntry, MutationMapFile, load_mutation_map
from veff.types import Variant
from veff.writers._atomic import AtomicPath
from veff.writers.targets import check_outputs, writing

__all__ = ["BASE_COLORS", "MutationMapPlot", "plot_mutation_map", "select_entry"]

BASE_COLORS = {"A": "#109648", "C": "#255C99", "G": "#F7A21B", "T": "#D62839"}
"""Logo colours: A green, C blue, G orange, T red."""

_COMPLEMENT = str.maketrans("ACGTNacgtn", "TGCANtgcan")
_FORMATS = (".png", ".pdf", ".svg")
_REF_GREY = "0.80"
_METHOD_NAMES = {
    "naive": "ISM (naive)",
    "fast": "ISM (receptive-field, fast)",
    "saliency": "saliency (gradient)",
    "grad_x_input": "gradient x input",
    "integrated_gradients": "integrated gradients",
}
# Layout, inches.
_BASE_W, _LOGO_H, _TRACK_H, _HEAT_H, _GAP_H = 0.11, 0.95, 0.2, 1.0, 0.75
_LEFT, _RIGHT, _TOP, _PAD = 0.85, 1.5, 0.55, 0.12


@dataclass(frozen=True)
class MutationMapPlot:
    """What :func:`plot_mutation_map` drew.

    Attributes
    ----------
    figure
        The figure.
    heatmaps, logos, tracks
        Per row of bases: the heatmap axes, the logo axes and the variant-ID axes (or None).
    colorbar
        The colour bar.
    """

    figure: Figure
    heatmaps: tuple[Axes, ...]
    logos: tuple[Axes, ...]
    tracks: tuple[Axes | None, ...]
    colorbar: Colorbar


def select_entry(
    data: MapEntry | MutationMapFile | str | os.PathLike[str], entry: int = 0, seq_input: str | None = None
) -> MapEntry:
    """Return one entry of a map, file path or entry, checking ``seq_input`` when given."""
    if isinstance(data, (str, os.PathLike)):
        data = load_mutation_map(data)
    if isinstance(data, MutationMapFile):
        if not len(data.entries):
            msg = f"{data.path}: the mutation map has no entries"
            raise InputError(msg)
        if not -len(data.entries) <= entry < len(data.entries):
            msg = (
                f"{data.path}: entry (--entry) {entry} out of range; the map has {len(data.entries)} "
                f"entries, 0 to {len(data.entries) - 1}"
            )
            raise InputError(msg)
        data = data.entries[entry]
    if seq_input is not None and seq_input != data.seq_input:
        msg = f"entry {data.index} maps model input {data.seq_input!r}, not {seq_input!r}"
        raise InputError(msg)
    return data


def _pick_score(entry: MapEntry, score: str | None) -> str:
    names = list(entry.scores)
    if not names:
        msg = f"entry {entry.index} holds no scores to plot"
        raise InputError(msg)
    if score is None:
        if len(names) == 1:
            return names[0]
        if "diff" in names:
            return "diff"
        msg = f"the map holds scores {', '.join(names)}; choose one"
        raise InputError(msg)
    if score not in entry.scores:
        msg = f"score {score!r} not in the map; it holds {', '.join(names)}"
        raise InputError(msg)
    return score


def _letter_heights(values: np.ndarray, how: str) -> np.ndarray:
    """Letter height per position from (n, 4) values (NaN at the reference)."""
    finite = np.isfinite(values)
    count = finite.sum(axis=1)
    filled = np.where(finite, values, 0.0)
    if how == "mean_abs":
        h = np.abs(filled).sum(axis=1) / np.maximum(count, 1)
    elif how == "max_abs":
        h = np.abs(filled).max(axis=1)
    elif how == "neg_mean":
        h = np.clip(-filled.sum(axis=1) / np.maximum(count, 1), 0, None)
    else:
        msg = f"unknown letter_height {how!r}; expected mean_abs, max_abs or neg_mean"
        raise InputError(msg)
    return np.where(count > 0, h, 0.0)


def _logo_heights(
    values: np.ndarray, seq: str, how: str, *, gradient: bool
) -> tuple[np.ndarray, tuple[float, float]]:
    """Letter heights and the logo's y range.

    ISM maps: by ``how``; gradient maps: the signed attribution of the observed base.
    """
    if gradient:
        observed = np.array(["ACGT".find(b) for b in seq], dtype=np.int64)
        picked = values[np.arange(len(seq)), np.maximum(observed, 0)] if len(seq) else np.zeros(0)
        heights = np.nan_to_num(np.where(observed >= 0, picked, 0.0))
    else:
        heights = _letter_heights(values, how)
    top, bottom = float(heights.max(initial=0)), float(heights.min(initial=0))
    pad = 0.05 * max(top - bottom, 1e-12)
    if bottom < 0:
        return heights, (bottom - pad, top + pad if top > 0 else 0.0)
    return heights, (0.0, top + pad if top > 0 else 1.0)


_GLYPHS: dict[str, MplPath] = {}


def _glyph(letter: str) -> MplPath:
    """Letter outline scaled to the unit square."""
    path = _GLYPHS.get(letter)
    if path is None:
        raw = TextPath((0, 0), letter, size=1, prop=FontProperties(family="DejaVu Sans", weight="bold"))
        ext = raw.get_extents()
        tr = Affine2D().translate(-ext.x0, -ext.y0).scale(1 / ext.width, 1 / ext.height)
        path = _GLYPHS[letter] = tr.transform_path(raw)
    return path


def _draw_logo(ax: Axes, seq: str, heights: np.ndarray, u0: int, ylim: tuple[float, float]) -> None:
    """Letters of ``seq`` as tall as ``heights`` (negative ones hang below the axis)."""
    patches, colors = [], []
    for k, (letter, h) in enumerate(zip(seq, heights, strict=True)):
        if letter not in BASE_COLORS or h == 0 or not np.isfinite(h):
            continue
        tr = Affine2D().scale(0.9, abs(h)).translate(u0 + k - 0.45, min(h, 0.0))
        patches.append(PathPatch(tr.transform_path(_glyph(letter))))
        colors.append(BASE_COLORS[letter])
    ax.add_collection(PatchCollection(patches, facecolors=colors, edgecolors="none"))
    if ylim[0] < 0:
        ax.axhline(0, color="0.4", linewidth=0.6)
    ax.set_ylim(*ylim)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="x", bottom=False, labelbottom=False)
    ax.yaxis.set_major_locator(MaxNLocator(3))
    ax.tick_params(axis="y", labelsize=8)


def _genomic_ticks(ax: Axes, u0: int, u1: int, to_genome: Any, width_in: float) -> None:
    """Ticks at round 1-based genomic positions within display columns [u0, u1)."""
    g = sorted((to_genome(u0), to_genome(u1 - 1)))
    nbins = max(2, int(width_in / 1.1))
    values = MaxNLocator(nbins=nbins, integer=True, steps=[1, 2, 2.5, 5, 10]).tick_values(*g)
    ticks = sorted((to_genome.inverse(int(v)), int(v)) for v in values if g[0] <= v <= g[1])
    ax.set_xticks([c for c, _ in ticks], [f"{v:,}" for _, v in ticks], fontsize=8)


class _ToGenome:
    """Display column <-> 1-based genomic position."""

    def __init__(self, lo: int, hi: int, rc: bool) -> None:
        self.lo, self.hi, self.rc = lo, hi, rc  # 0-based half-open shown range

    def __call__(self, u: int) -> int:
        return self.hi - u if self.rc else self.lo + u + 1

    def inverse(self, pos1: int) -> int:
        return self.hi - pos1 if self.rc else pos1 - 1 - self.lo


def _variant_label(v: Variant) -> str:
    return v.id if v.id and v.id != "." else f"{v.ref}>{','.join(v.alts)}"


@dataclass(frozen=True)
class _Mark:
    """A query variant in display columns."""

    col: int
    width: int
    rows: tuple[int, ...]
    indel: bool
    label: str


def _marks(variants: list[Variant], to_col: _ToGenome, rc: bool) -> list[_Mark]:
    out = []
    for v in variants:
        cols = [to_col.inverse(p + 1) for p in range(v.start, v.end)]
        snv = [a for a in v.alts if len(a) == 1 and len(v.ref) == 1 and a in "ACGT"]
        rows = tuple("ACGT".index(a.translate(_COMPLEMENT) if rc else a) for a in snv)
        out.append(_Mark(min(cols), len(cols), rows, len(snv) < len(v.alts), _variant_label(v)))
    return out


def _place_labels(marks: list[_Mark], col_in: float) -> list[tuple[int, int, str]]:
    """Stack labels in levels so that none overlaps: ``(column, level, text)``."""
    groups: dict[int, list[str]] = {}
    for m in marks:
        groups.setdefault(m.col, []).append(m.label)
    levels: list[float] = []
    placed = []
    for col in sorted(groups):
        names = list(dict.fromkeys(groups[col]))
        text = names[0] if len(names) == 1 else f"{names[0]} +{len(names) - 1}"
        half = (len(text) * 0.062 + 0.12) / col_in / 2  # 7-pt characters, in columns
        level = next((k for k, end in enumerate(levels) if end < col - half), len(levels))
        if level == len(levels):
            levels.append(0.0)
        levels[level] = col + half
        placed.append((col, level, text))
    return placed


def _draw_variants(
    heat: Axes, track: Axes | None, marks: list[_Mark], labels: list[tuple[int, int, str]]
) -> None:
    """Box each variant on its ALT base(s) (dashed over the REF span for other alleles)."""
    for m in marks:
        for row in m.rows:
            heat.add_patch(
                Rectangle((m.col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=1.4)
            )
        if m.indel:
            heat.add_patch(
                Rectangle(
                    (m.col - 0.5, -0.5),
                    m.width,
                    4,
                    fill=False,
                    edgecolor="black",
                    linewidth=1.2,
                    linestyle="--",
                )
            )
    if track is None:
        return
    n_levels = max((lv for _, lv, _ in labels), default=0) + 1
    track.set_ylim(0, n_levels)
    track.set_axis_off()
    for col, level, text in labels:
        y = level + 0.5
        track.plot([col, col], [0, y], color="0.3", linewidth=0.7, zorder=1)
        track.text(
            col,
            y,
            text,
            ha="center",
            va="center",
            fontsize=7,
            zorder=2,
            bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "0.5", "linewidth": 0.5},
        )


def _root_figure(ax: Axes) -> Figure:
    fig = ax.get_figure(root=True)
    if not isinstance(fig, Figure):
        msg = "ax is not attached to a figure"
        raise InputError(msg)
    return fig


def _rows(n: int, bases_per_row: int | None) -> list[tuple[int, int]]:
    if bases_per_row is None:
        bases_per_row = n if n <= 250 else math.ceil(n / math.ceil(n / 200))
    bases_per_row = max(1, bases_per_row)
    return [(lo, min(n, lo + bases_per_row)) for lo in range(0, n, bases_per_row)]


def _layout(fig: Figure, width: float, track_h: list[float]) -> list[tuple[Axes, Axes | None, Axes]]:
    """Place (logo, track, heatmap) axes for each row, top to bottom; sizes in inches."""
    fig_w = _LEFT + width + _RIGHT
    fig_h = _TOP + sum(_LOGO_H + _PAD + t + _HEAT_H + _GAP_H for t in track_h)
    fig.set_size_inches(fig_w, fig_h)
    out = []
    top = fig_h - _TOP

    def box(y_top: float, h: float) -> tuple[float, float, float, float]:
        return (_LEFT / fig_w, (y_top - h) / fig_h, width / fig_w, h / fig_h)

    for t in track_h:
        logo = fig.add_axes(box(top, _LOGO_H))
        y = top - _LOGO_H - _PAD
        trk = fig.add_axes(box(y, t)) if t else None
        heat = fig.add_axes(box(y - t, _HEAT_H))
        out.append((logo, trk, heat))
        top = y - t - _HEAT_H - _GAP_H
    return out


def plot_mutation_map(
    data: MapEntry | MutationMapFile | str | os.PathLike[str],
    *,
    entry: int = 0,
    score: str | None = None,
    output_label: str | int | None = None,
    limit_region_genomic: tuple[int, int] | None = None,
    rc: bool = False,
    ax: Axes | None = None,
    output: str | os.PathLike[str] | None = None,
    seq_input: str | None = None,
    cmap: str = "RdBu_r",
    letter_height: Literal["mean_abs", "max_abs", "neg_mean"] = "mean_abs",
    show_variants: bool = True,
    bases_per_row: int | None = None,
    dpi: int = 150,
    title: str | None = None,
) -> MutationMapPlot:
    """Draw a mutation map as logo + heatmap, optionally saving it.

    Parameters
    ----------
    data
        A :class:`~veff.mutation_map.compute.MapEntry`, a loaded map, or a path to a map file.
    entry
        Entry index when ``data`` is a map or a path.
    score
        Score to show (default: the only one, else ``diff``).
    output_label
        Model output (label or index; default: the only one).
    limit_region_genomic
        ``(start, end)``, 0-based half-open genomic coordinates inside the entry: zoom.
    rc
        Reverse-complement view: positions run right to left and bases are complemented.
    ax
        Draw the heatmap into this axes (the logo and variant track go above it, the colour bar to
        its right; no wrapping). By default a new figure is sized to the data.
    output
        Save to ``.png``, ``.pdf`` or ``.svg``.
    seq_input
        Check that the entry maps this model input.
    cmap
        Diverging matplotlib colormap.
    letter_height
        ``mean_abs`` (mean |score| over the alternative bases), ``max_abs``, or ``neg_mean``
        (mean of -score, clipped at 0: high where mutations lower the output).
    show_variants
        Box and label the query variants stored in the entry.
    bases_per_row
        Bases per row of the figure (default: one row up to 250 bases, else rows of ~200).
    dpi
        Resolution of saved raster images.
    title
        Figure title (default: model output, score and region).

    Returns
    -------
    MutationMapPlot
    """
    e = select_entry(data, entry, seq_input)
    score = _pick_score(e, score)
    col = e.label_index(output_label)
    values = np.asarray(e.scores[score][:, :, col], dtype=np.float32)  # (L, 4)
    lo, hi = e.start, e.end
    if limit_region_genomic is not None:
        lo, hi = (int(x) for x in limit_region_genomic)
        if not e.start <= lo < hi <= e.end:
            msg = (
                f"limit_region_genomic (--limit-region-genomic) {lo} {hi} must satisfy {e.start} <= "
                f"START < END <= {e.end} (0-based half-open, inside entry {e.index}, "
                f"{e.chrom}:{e.start + 1}-{e.end} 1-based)"
            )
            raise InputError(msg)
    values = values[lo - e.start : hi - e.start]
    seq = e.ref_seq[lo - e.start : hi - e.start].upper()
    if rc:
        values, seq = values[::-1, ::-1], seq.translate(_COMPLEMENT)[::-1]
    n = hi - lo
    finite = values[np.isfinite(values)]
    vmax = float(np.abs(finite).max()) if finite.size else 1.0
    norm = Normalize(-(vmax or 1.0), vmax or 1.0)
    gradient = e.method in _GRADIENT_METHODS
    heights, ylim = _logo_heights(values, seq, letter_height, gradient=gradient)
    to_genome = _ToGenome(lo, hi, rc)
    variants = [v for v in e.variants if v.start < hi and v.end > lo] if show_variants else []
    label = e.labels[col]

    marks = _marks(variants, to_genome, rc)
    if ax is None:
        rows = _rows(n, bases_per_row)
        per = rows[0][1] - rows[0][0]
        width = max(4.0, per * _BASE_W)
    else:
        rows, per = [(0, n)], n
        fig = _root_figure(ax)
        width = ax.get_position().width * fig.get_figwidth()
    row_marks = [[m for m in marks if m.col + m.width > u0 and m.col < u1] for u0, u1 in rows]
    row_labels = [_place_labels(ms, width / per) for ms in row_marks]
    track_h = [(max(lv for _, lv, _ in lb) + 1) * _TRACK_H if lb else 0.0 for lb in row_labels]
    if ax is None:
        fig = plt.figure()
        panels = _layout(fig, width, track_h)
    else:
        heat_h = ax.get_position().height * fig.get_figheight()
        t = track_h[0] / heat_h
        trk_ax = ax.inset_axes((0, 1.0, 1, t)) if t else None
        logo_ax = ax.inset_axes((0, 1.0 + t + 0.05, 1, _LOGO_H / heat_h))
        panels = [(logo_ax, trk_ax, ax)]

    palette = plt.get_cmap(cmap).with_extremes(bad=_REF_GREY)
    images = []
    what = {"mean_abs": "mean |{}|", "max_abs": "max |{}|", "neg_mean": "-mean {}"}
    for k, ((u0, u1), (logo, trk, heat)) in enumerate(zip(rows, panels, strict=True)):
        images.append(
            heat.imshow(
                values[u0:u1].T,
                aspect="auto",
                cmap=palette,
                norm=norm,
                interpolation="nearest",
                extent=(u0 - 0.5, u1 - 0.5, 3.5, -0.5),
            )
        )
        for a in (heat, logo, trk):
            if a is not None:
                a.set_xlim(u0 - 0.5, u0 + per - 0.5)
        heat.set_yticks(range(4), list("ACGT"), fontsize=9)
        heat.set_ylabel("base" if gradient else "mutant base", fontsize=9)
        heat.tick_params(axis="y", length=0)
        _genomic_ticks(heat, u0, u1, to_genome, width * (u1 - u0) / per)
        if width / per >= 0.1:  # a minor tick per base when there is room
            heat.set_xticks(range(u0, u1), minor=True)
        strand = "reverse complement, " if rc else ""
        heat.set_xlabel(f"{e.chrom} position ({strand}1-based)", fontsize=9)
        _draw_logo(logo, seq[u0:u1], heights[u0:u1], u0, ylim)
        logo.set_ylabel(
            f"{score}\nobserved base" if gradient else what[letter_height].format(score), fontsize=9
        )
        _draw_variants(heat, trk, row_marks[k], row_labels[k])

    first_heat = panels[0][2]
    if ax is None:
        pos = first_heat.get_position()
        cax = fig.add_axes((pos.x1 + 0.5 / fig.get_figwidth(), pos.y0, 0.14 / fig.get_figwidth(), pos.height))
    else:
        cax = ax.inset_axes((1.02, 0, 0.025, 1))
    cbar = fig.colorbar(images[0], cax=cax)
    cbar.set_label(f"{score}, output {label}", fontsize=9)
    cbar.ax.tick_params(labelsize=8)
    cbar.ax.yaxis.set_major_locator(MaxNLocator(5))
    if not gradient:
        cax.text(0.5, -0.06, "grey:\nreference", transform=cax.transAxes, ha="center", va="top", fontsize=7)
    head = (
        title
        if title is not None
        else (
            f"{e.chrom}:{lo + 1:,}-{hi:,}{' (reverse complement)' if rc else ''} | {score}, output {label}"
            f" | {_METHOD_NAMES.get(e.method, e.method)}"
        )
    )
    top_logo = panels[0][0]
    top_logo.set_title(head, fontsize=10, loc="left")
    if output is not None:
        _save(fig, output, dpi)
    return MutationMapPlot(
        figure=fig,
        heatmaps=tuple(p[2] for p in panels),
        logos=tuple(p[0] for p in panels),
        tracks=tuple(p[1] for p in panels),
        colorbar=cbar,
    )


def _save(fig: Figure, output: str | os.PathLike[str], dpi: int) -> None:
    path = Path(output)
    if path.suffix.lower() not in _FORMATS:
        msg = f"{path}: unsupported figure format; use one of {', '.join(_FORMATS)}"
        raise InputError(msg)
    check_outputs({"the figure": path})
    target = AtomicPath(path)
    try:
        with writing(path):
            fig.savefig(target.tmp, dpi=dpi, bbox_inches="tight", format=path.suffix.lower()[1:])
            target.commit()
    except BaseException:
        target.discard()
        raise
