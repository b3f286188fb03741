"""Computing the maps of windows: ISM in blocks of positions, gradient maps a batch of windows at a time.

:class:`WindowMapper` reads each window from the reference once, lists its mutants
(:func:`~veff.mutation_map.mutagenesis.mutant_table`), predicts them with the run's
:class:`~veff.mutation_map.engines.MutantPredictor` (naive or receptive-field ISM) and scores
them (:func:`veff.scoring.apply.score_predictions`), block of positions by block, so memory
depends on L and the batch size only; or computes gradient maps
(:func:`~veff.mutation_map.gradients.gradient_maps`) for several windows at once. Windows on
strand ``-`` are fed to the model reverse-complemented and come back on the forward strand.
Where the windows come from and where the results go is :mod:`veff.mutation_map.compute`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from veff.engine.batching import Predictions
from veff.engine.outputs import OutputSpec
from veff.errors import InputError
from veff.io.fasta import Fasta
from veff.models import Model
from veff.mutation_map.engines import MutantPredictor
from veff.mutation_map.gradients import GRADIENT_METHODS, Targets, gradient_batch, gradient_maps
from veff.mutation_map.mutagenesis import mutant_table, mutate, resolve_contig
from veff.scoring.apply import score_predictions
from veff.scoring.registry import ScoreJob
from veff.scoring.tracks import Aggregation
from veff.types import Region
from veff.variants.sequences import reverse_complement_codes

__all__ = ["Blocks", "MapSettings", "WindowMapper"]

_MEMORY_BUDGET = 256 * 2**20  # bytes of one-hot input per block of mutants

Blocks = Iterable[tuple[int, np.ndarray, dict[str, np.ndarray]]]
"""A window's map in blocks of positions: ``(p0, ref_prediction, {score: (n_pos, 4, T)})``."""


@dataclass(frozen=True)
class MapSettings:
    """What every window of a run computes (fixed once the model's outputs are known).

    Attributes
    ----------
    length
        Window length L.
    method
        ``auto``, ``naive``, ``fast`` or a gradient method.
    jobs
        The scores of an ISM map.
    spec
        The model's output structure.
    aggregate
        Reduction of profile heads over positions.
    columns
        Kept output columns (None: all).
    labels
        Labels of the stored T axis.
    rc
        Also predict reverse complements (ISM only).
    batch_size
        Sequences per forward call; None: automatic (see :class:`.engines.MutantPredictor` and
        :func:`.gradients.gradient_batch`).
    mutate_within
        Mutate only positions within this many bases of the focus (None: all).
    gradient_outputs, ig_steps
        Gradient maps: ``each`` or ``sum``; integration steps.
    """

    length: int
    method: str
    jobs: Sequence[ScoreJob]
    spec: OutputSpec
    aggregate: Aggregation
    columns: np.ndarray | None
    labels: Sequence[str]
    rc: bool
    batch_size: int | None
    mutate_within: int | None = None
    gradient_outputs: str = "each"
    ig_steps: int = 50

    @property
    def gradient(self) -> bool:
        """Whether the map is a gradient map."""
        return self.method in GRADIENT_METHODS


def _groups(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of ``size`` items (the last one shorter)."""
    group: list[Any] = []
    for item in items:
        group.append(item)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


class WindowMapper:
    """Compute the maps of windows of one run.

    Parameters
    ----------
    model
        The model adapter.
    fasta
        The reference.
    settings
        What is computed (:class:`MapSettings`).
    """

    def __init__(self, model: Model, fasta: Fasta, settings: MapSettings) -> None:
        self.model, self.fasta, self.settings = model, fasta, settings
        self._predictor: MutantPredictor | None = None
        self._gradient_rows: int | None = None

    @property
    def method_used(self) -> tuple[str, str]:
        """``(method, note)``: what made the maps so far and why (see docs/mutation_map.md)."""
        s = self.settings
        if s.gradient:
            return s.method, f"{s.method}, outputs: {s.gradient_outputs}"
        if self._predictor is None:
            return ("naive", "") if s.method == "naive" else (s.method, "not resolved yet")
        return self._predictor.method, self._predictor.note

    @property
    def gradient_batch_size(self) -> int:
        """Input rows per backward pass of a gradient map (:func:`.gradients.gradient_batch`)."""
        if self._gradient_rows is None:
            s = self.settings
            self._gradient_rows = gradient_batch(self.model, s.length, s.batch_size, len(s.labels))
        return self._gradient_rows

    def check_window(self, window: Region) -> None:
        """Raise InputError unless ``window`` is exactly L long."""
        if len(window) != self.settings.length:
            msg = f"window {window.chrom}:{window.start}-{window.end} is not L = {self.settings.length} bp"
            raise InputError(msg)

    def computed(
        self, windows: Iterable[tuple[Any, ...]]
    ) -> Iterator[tuple[tuple[Any, ...], str, np.ndarray, Blocks]]:
        """Compute the windows ``(window, name[, focus])`` in order.

        ``focus`` lists the 0-based half-open spans that ``mutate_within`` counts from.

        Yields
        ------
        tuple
            ``(item, contig, ref_codes, blocks)``: the item as given, the FASTA contig name, the
            forward-strand codes (uint8, (L,)) and the window's :data:`Blocks`, lazy (computed
            while iterated) for ISM, a list for gradient maps, which are computed for several
            windows at once.
        """
        s = self.settings
        if not s.gradient:
            for item in windows:
                window, _, *focus = item
                self.check_window(window)
                chrom, ref = self._window_codes(window)
                yield item, chrom, ref, self._ism_blocks(window, chrom, ref, *focus)
            return
        per = s.ig_steps if s.method == "integrated_gradients" else 1
        for items in _groups(windows, max(1, self.gradient_batch_size // per)):
            yield from self._gradient_group(items)

    def _window_codes(self, window: Region) -> tuple[str, np.ndarray]:
        """The window's FASTA contig name and forward-strand codes, uint8 (L,) (read once per window)."""
        chrom = resolve_contig(self.fasta, window.chrom)
        return chrom, self.fasta.fetch_many(chrom, np.array([window.start]), self.settings.length)[0]

    def _mutable(self, window: Region, chrom: str, focus: Sequence[tuple[int, int]] = ()) -> np.ndarray:
        """Positions, bool (L,), inside the contig and, with ``mutate_within``, near the focus."""
        genome = window.start + np.arange(self.settings.length)
        valid = (genome >= 0) & (genome < self.fasta.lengths[chrom])
        k = self.settings.mutate_within
        if k is not None and focus:
            valid &= np.any([(genome >= s - k) & (genome < e + k) for s, e in focus], axis=0)
        return valid

    def _mutant_predictor(self) -> MutantPredictor:
        if self._predictor is None:
            s = self.settings
            heads = s.spec.heads
            groups = np.repeat(np.arange(len(heads)), [h.size for h in heads])
            self._predictor = MutantPredictor(
                self.model, s.length, s.method, rc=s.rc, batch_size=s.batch_size, groups=groups
            )
        return self._predictor

    def _ism_blocks(
        self, window: Region, chrom: str, ref: np.ndarray, focus: Sequence[tuple[int, int]] = ()
    ) -> Iterator[tuple[int, np.ndarray, dict[str, np.ndarray]]]:
        """Yield ``(p0, ref_prediction, {score: (n_pos, 4, T)})`` blocks of one window."""
        s = self.settings
        n_len = s.length
        pos, base = mutant_table(ref, self._mutable(window, chrom, focus))
        minus = window.strand == "-"
        rows = max(s.batch_size or 1, _MEMORY_BUDGET // (n_len * 16 * (2 if s.rc else 1)))
        step = max(1, rows // 4)
        ref_pred: Predictions | None = None
        predictor = self._mutant_predictor()
        model_ref = reverse_complement_codes(ref) if minus else ref
        for p0 in range(0, n_len, step):
            p1 = min(n_len, p0 + step)
            lo, hi = (int(x) for x in np.searchsorted(pos, [p0, p1]))
            if lo == hi and ref_pred is not None:
                continue
            alt = mutate(ref, pos[lo:hi], base[lo:hi])
            ref_in = ref[None, :] if ref_pred is None else np.empty((0, n_len), np.uint8)
            if minus:
                alt, ref_in = reverse_complement_codes(alt), reverse_complement_codes(ref_in)
            mpos = pos[lo:hi] if not minus else n_len - 1 - pos[lo:hi]
            mbase = base[lo:hi] if not minus else 3 - base[lo:hi]
            preds = predictor.predict(ref_in, alt, model_ref, mpos, mbase)
            if ref_pred is None:
                ref_pred = Predictions(preds.ref, preds.ref[:0], preds.ref_rc)
            if hi == lo:
                continue
            yield (
                p0,
                ref_pred.ref.reshape(-1),
                self._scored(ref_pred, preds, mpos, pos[lo:hi] - p0, base[lo:hi], p1 - p0),
            )
        if ref_pred is not None and not len(pos):
            yield 0, ref_pred.ref.reshape(-1), {}

    def _scored(
        self,
        ref_pred: Predictions,
        preds: Predictions,
        mpos: np.ndarray,
        rel: np.ndarray,
        base: np.ndarray,
        n_pos: int,
    ) -> dict[str, np.ndarray]:
        """Score a block's mutants: ``{score: (n_pos, 4, T)}``, NaN where nothing was mutated."""
        s = self.settings
        zeros = np.zeros(len(mpos), dtype=np.int64)
        geometry = np.stack([mpos, np.ones_like(mpos), np.ones_like(mpos)], axis=1)
        values_of = score_predictions(
            s.jobs,
            s.spec,
            s.aggregate,
            ref_pred.ref[zeros],
            preds.alt,
            None if ref_pred.ref_rc is None else ref_pred.ref_rc[zeros],
            preds.alt_rc,
            geometry,
        )
        blocks = {}
        for job in s.jobs:
            values = values_of[job.name]
            if s.columns is not None:
                values = values[:, s.columns]
            if values.shape[1] != len(s.labels):
                msg = (
                    f"score {job.name!r} returned {values.shape[1]} values per mutant; "
                    f"expected one per output ({len(s.labels)})"
                )
                raise InputError(msg)
            block = np.full((n_pos, 4, len(s.labels)), np.nan, dtype=np.float32)
            block[rel, base] = values
            blocks[job.name] = block
        return blocks

    def _gradient_group(
        self, items: list[tuple[Any, ...]]
    ) -> Iterator[tuple[tuple[Any, ...], str, np.ndarray, Blocks]]:
        """Gradient maps of several windows, one backward pass per batch of them."""
        s = self.settings
        read = []
        for window, *_ in items:
            self.check_window(window)
            read.append(self._window_codes(window))
        minus = [window.strand == "-" for window, *_ in items]
        model_codes = np.stack(
            [reverse_complement_codes(ref) if m else ref for (_, ref), m in zip(read, minus, strict=True)]
        )
        maps, preds = gradient_maps(
            self.model,
            model_codes,
            method=s.method,
            targets=Targets(s.spec, s.aggregate, s.columns, s.gradient_outputs),
            steps=s.ig_steps,
            batch_size=self.gradient_batch_size,
        )
        for k, (item, (chrom, ref)) in enumerate(zip(items, read, strict=True)):
            values = maps[k][::-1, ::-1] if minus[k] else maps[k]  # back to forward positions and bases
            valid = self._mutable(item[0], chrom, *item[2:])
            values = np.where(valid[:, None, None], values, np.nan).astype(np.float32)
            yield item, chrom, ref, [(0, preds[k], {s.method: values})]
