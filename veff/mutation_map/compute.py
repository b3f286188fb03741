"""Mutation maps: in-silico saturation mutagenesis of model-length windows, streamed to HDF5.

For every window of length L, each of the L positions is changed to each base other than the
reference (3 mutants per position; a reference ``N`` gets all 4), the mutants are predicted with
the same batching engine as ``score-variants`` (:func:`veff.engine.batching.predict_pairs`: reference
predicted once per window, reverse complements when ``rc`` is on) and every selected score is
stored as an (L, 4, T) float32 array, NaN at the reference base. Positions outside the contig (a
window hanging over a contig end) are not mutated and stay NaN.

Windows: a region or BED query is tiled with windows of exactly L (:func:`tile_region` gives the
rule), a VCF query gets one window per variant placed as ``score-variants`` places it (variants
sharing a window share an entry), and models bound to fixed regions (``bound_regions``, Kipoi's
overlap mode) use the bound regions overlapping the query or containing the variant. The rules,
with examples, are in docs/mutation_map.md.

A window on strand ``-`` (from a BED strand column or a bound region) is fed to the model
reverse-complemented; results are stored on the forward strand all the same.

Memory does not grow with the number of queries: each window is computed in blocks of
positions and written before the next one starts.

``method`` chooses how: ``naive`` ISM, receptive-field ``fast`` ISM for PyTorch modules
(:mod:`veff.mutation_map.engines`, with its self-check; ``auto`` uses it where it applies), or a
gradient map (``saliency``, ``grad_x_input``, ``integrated_gradients``:
:mod:`veff.mutation_map.gradients`), stored in the same layout with the method's name as score.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from veff.engine.batching import Predictions, probe_outputs
from veff.engine.outputs import OutputSpec, select_columns
from veff.engine.progress import DEFAULT_INTERVAL, progress_bar
from veff.errors import InputError
from veff.io.bed import read_regions
from veff.io.fasta import Fasta
from veff.models import Model, load_model
from veff.mutation_map.engines import METHODS, MutantPredictor, check_method
from veff.mutation_map.gradients import (
    GRADIENT_METHODS,
    OUTPUT_REDUCTIONS,
    Targets,
    gradient_batch,
    gradient_maps,
)
from veff.mutation_map.hdf5 import (
    FORMAT,
    FORMAT_VERSION,
    MapEntry,
    MutationMapFile,
    MutationMapWriter,
    load_mutation_map,
)
from veff.mutation_map.mutagenesis import (
    VariantIndex,
    group_variant_windows,
    mutant_table,
    mutate,
    query_tiles,
    read_bound_regions,
    read_placed_variants,
    resolve_contig,
    tile_region,
)
from veff.scoring.apply import score_predictions
from veff.scoring.registry import resolve_score_jobs
from veff.scoring.tracks import Aggregation
from veff.types import Region, Variant
from veff.variants.regions import CENTERINGS, Centering, window_start
from veff.variants.sequences import codes_to_str, reverse_complement_codes

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "METHODS",
    "MapEntry",
    "MutationMap",
    "MutationMapFile",
    "WindowResult",
    "load_mutation_map",
    "mutant_table",
    "tile_region",
]

_MEMORY_BUDGET = 256 * 2**20  # bytes of one-hot input per block of mutants
Blocks = Iterable[tuple[int, np.ndarray, dict[str, np.ndarray]]]
"""A window's map in blocks of positions: ``(p0, ref_prediction, {score: (n_pos, 4, T)})``."""


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


@dataclass(frozen=True)
class WindowResult:
    """Mutation map of one window, in memory.

    Attributes
    ----------
    region
        The window (0-based half-open, forward strand coordinates).
    ref_seq
        Forward-strand reference, length L.
    scores
        Score name -> float32 (L, 4, T), NaN at the reference base.
    ref_prediction
        float32 (F,): the model's flat output for the reference window (T values, or P * T for
        position-resolved outputs).
    method
        The method that made the map (``naive``, ``fast``, or a gradient method).
    """

    region: Region
    ref_seq: str
    scores: dict[str, np.ndarray]
    ref_prediction: np.ndarray
    method: str = "naive"


class MutationMap:
    """Compute mutation maps of a model on a reference genome.

    Parameters
    ----------
    model
        A path or model object (see :func:`veff.load_model`).
    fasta
        Reference FASTA path or :class:`veff.io.fasta.Fasta`.
    scores
        Score names from :data:`veff.SCORES` or callables.
    score_kwargs
        One dict per score (e.g. ``{"rc_merging": "max"}``), or one for all.
    rc
        Also predict reverse complements and merge as the score says; None: as the model declares.
    seq_length
        Window length L (default: the model's input length).
    batch_size
        Sequences per forward call.
    centering
        Variant placement for :meth:`query_vcf`: ``exact`` or ``kipoi`` (as ``score-variants``).
    model_outputs
        Output labels or indices to keep.
    output_labels
        Names of the model outputs, when the model does not name them.
    output_layout
        ``positions_first`` or ``tasks_first``: the layout of position-resolved outputs, as in
        :func:`veff.score_variants` (None: what the model declares).
    aggregate, output_offset, rc_swap_tasks
        For position-resolved outputs: reduction over positions and output offset, and
        strand-specific tasks, as in :func:`veff.score_variants` (the mutated base is the variant).
    mutate_within
        Mutate only the positions within this many bases of the query (the query region, or
        each variant of a VCF query); the other cells of the window stay NaN. None mutates the
        whole window. Large-context models (SpliceAI: 10 kb of context for a 101-bp output)
        need it to keep the number of mutants small.
    bound_regions
        BED path or regions the model is bound to (each exactly L long); when given, queries use
        the bound regions that overlap them instead of tiling.
    dataloader_args
        Arguments of a Kipoi model's own dataloader. A model bound to its dataloader's regions
        (overlap mode) uses the regions it returns as ``bound_regions`` (with their strand;
        sequences come from the FASTA; models with inputs besides the DNA cannot be mapped).
    progress, progress_interval
        Show a progress bar (windows) on stderr; seconds between plain progress lines when
        stderr is not a terminal.
    model_kwargs
        Extra arguments for :func:`veff.load_model`.
    method
        ``auto`` (default: receptive-field ISM for PyTorch modules where it applies, else naive),
        ``naive``, ``fast`` (falls back to naive, with a warning, where it cannot be used), or a
        gradient map: ``saliency``, ``grad_x_input``, ``integrated_gradients`` (PyTorch and
        Keras models; ``scores`` and ``rc`` do not apply). See docs/mutation_map.md.
    gradient_outputs
        Gradient maps: ``each`` kept output separately, or their ``sum`` (one map).
    ig_steps
        Integration steps of ``integrated_gradients``.

    Examples
    --------
    >>> mm = MutationMap("model.h5", "genome.fa")  # doctest: +SKIP
    >>> res = mm.query_region("chr22", 32068400, 32068600, output="map.h5")  # doctest: +SKIP
    >>> res.entries[0].scores["diff"].shape  # doctest: +SKIP
    (400, 4, 1)
    """

    def __init__(
        self,
        model: Any,
        fasta: str | os.PathLike[str] | Fasta,
        *,
        scores: Sequence[str | Callable[..., Any]] = ("diff",),
        score_kwargs: Sequence[dict[str, Any]] | dict[str, Any] | None = None,
        rc: bool | None = None,
        seq_length: int | None = None,
        batch_size: int = 256,
        centering: Centering = "exact",
        model_outputs: Sequence[str | int] | None = None,
        output_labels: Sequence[str] | None = None,
        output_layout: str | None = None,
        aggregate: str | Sequence[str] | Aggregation | None = None,
        output_offset: int | None = None,
        rc_swap_tasks: str | Sequence[Sequence[str | int]] | None = None,
        mutate_within: int | None = None,
        bound_regions: str | os.PathLike[str] | Sequence[Region] | None = None,
        progress: bool = False,
        model_kwargs: dict[str, Any] | None = None,
        dataloader_args: Any = None,
        method: str = "auto",
        progress_interval: float = DEFAULT_INTERVAL,
        gradient_outputs: str = "each",
        ig_steps: int = 50,
    ) -> None:
        self.method = check_method(method)
        if gradient_outputs not in OUTPUT_REDUCTIONS:
            msg = f"gradient_outputs must be one of {', '.join(OUTPUT_REDUCTIONS)}, got {gradient_outputs!r}"
            raise InputError(msg)
        if ig_steps < 1:
            msg = f"ig_steps must be at least 1, got {ig_steps}"
            raise InputError(msg)
        self.gradient_outputs, self.ig_steps = gradient_outputs, ig_steps
        self.gradient = method in GRADIENT_METHODS
        if batch_size < 1:
            msg = f"batch_size must be at least 1, got {batch_size}"
            raise InputError(msg)
        if centering not in CENTERINGS:
            msg = f"unknown centering {centering!r}; expected one of {CENTERINGS}"
            raise InputError(msg)
        self.jobs = resolve_score_jobs(scores, score_kwargs)
        self.fasta = fasta if isinstance(fasta, Fasta) else Fasta(fasta)
        self._owns_fasta = self.fasta is not fasta
        kwargs = dict(model_kwargs or {})
        kwargs["output_layout"] = output_layout or kwargs.get("output_layout")
        self.model: Model = load_model(model, seq_length=seq_length, output_labels=output_labels, **kwargs)
        length = seq_length or self.model.seq_length
        if not length:
            msg = f"model {self.model.name!r} does not fix its input length; give seq_length"
            raise InputError(msg)
        self.length = int(length)
        self.rc = False if self.gradient else self.model.default_rc if rc is None else bool(rc)
        self.batch_size = batch_size
        self.centering = centering
        self.progress = progress
        self.progress_interval = progress_interval
        self._owns_model = self.model is not model
        self.seq_input = str(getattr(self.model, "seq_input", None) or "seq")
        self._model_outputs = list(model_outputs) if model_outputs else None
        self.aggregate = Aggregation.parse(
            aggregate if aggregate is not None or not self.gradient else "all sum"
        )
        if mutate_within is not None and mutate_within < 0:
            msg = f"mutate_within must be at least 0, got {mutate_within}"
            raise InputError(msg)
        self.mutate_within = mutate_within
        self._output_offset = output_offset
        self._rc_swap = rc_swap_tasks or self.model.declared("rc_swap_tasks")
        self._spec: OutputSpec | None = None
        self._labels: list[str] | None = None
        self._columns: np.ndarray | None = None
        if bound_regions is None:
            bound_regions = self.model.bound_regions(dataloader_args, self.fasta.path)
        self.bound = read_bound_regions(bound_regions, self.length)
        self._predictor: MutantPredictor | None = None
        self._gradient_rows: int | None = None

    @property
    def score_names(self) -> list[str]:
        """Names of the stored arrays: the scores, or the gradient method."""
        return [self.method] if self.gradient else [j.name for j in self.jobs]

    @property
    def method_used(self) -> tuple[str, str]:
        """``(method, note)``: what made the map so far and why (see docs/mutation_map.md)."""
        if self.gradient:
            return self.method, f"{self.method}, outputs: {self.gradient_outputs}"
        if self._predictor is None:
            return ("naive", "") if self.method == "naive" else (self.method, "not resolved yet")
        return self._predictor.method, self._predictor.note

    def _mutant_predictor(self) -> MutantPredictor:
        if self._predictor is None:
            heads = self.output_spec.heads
            groups = np.repeat(np.arange(len(heads)), [h.size for h in heads])
            self._predictor = MutantPredictor(
                self.model, self.length, self.method, rc=self.rc, batch_size=self.batch_size, groups=groups
            )
        return self._predictor

    # ------------------------------------------------------------------ setup

    def _learn_outputs(self) -> tuple[OutputSpec, list[str]]:
        """Probe the model once (an all-N window) for its output structure and kept labels."""
        if self._spec is None or self._labels is None:
            spec = probe_outputs(self.model, self.length, offset=self._output_offset)
            labels = spec.labels(self.model.output_labels)
            spec = spec.with_rc_swap(self._rc_swap, labels)
            self._columns = select_columns(labels, self._model_outputs)
            self._spec = spec
            self._labels = labels if self._columns is None else [labels[k] for k in self._columns]
            if self.gradient and self.gradient_outputs == "sum":
                kept = self._labels
                self._labels = [
                    "sum(" + ",".join(kept) + ")" if len(kept) <= 8 else f"sum of {len(kept)} outputs"
                ]
        return self._spec, self._labels

    @property
    def labels(self) -> list[str]:
        """Output labels of the stored T axis (the model is run once on an all-N window)."""
        return self._learn_outputs()[1]

    @property
    def output_spec(self) -> OutputSpec:
        """Structure of the model's outputs (learned with :attr:`labels`)."""
        return self._learn_outputs()[0]

    def _contig(self, chrom: str) -> str:
        return resolve_contig(self.fasta, chrom)

    # --------------------------------------------------------------- compute

    def _window_codes(self, window: Region) -> tuple[str, np.ndarray]:
        """The window's FASTA contig name and forward-strand codes, uint8 (L,) (read once per window)."""
        chrom = self._contig(window.chrom)
        return chrom, self.fasta.fetch_many(chrom, np.array([window.start]), self.length)[0]

    def _mutable(self, window: Region, chrom: str, focus: Sequence[tuple[int, int]] = ()) -> np.ndarray:
        """Positions, bool (L,), inside the contig and, with ``mutate_within``, near the focus."""
        genome = window.start + np.arange(self.length)
        valid = (genome >= 0) & (genome < self.fasta.lengths[chrom])
        if self.mutate_within is not None and focus:
            k = self.mutate_within
            valid &= np.any([(genome >= s - k) & (genome < e + k) for s, e in focus], axis=0)
        return valid

    def _computed(
        self, windows: Iterable[tuple[Any, ...]]
    ) -> Iterator[tuple[tuple[Any, ...], str, np.ndarray, Blocks]]:
        """Compute the windows ``(window, name[, focus])`` in order.

        Yields ``(item, contig, ref_codes, blocks)``, ``blocks`` an iterable of ``(p0,
        ref_prediction, {score: (n_pos, 4, T)})``: lazy (computed while iterated) for ISM, a
        list for gradient maps, which are computed for several windows at once.
        """
        if not self.gradient:
            for item in windows:
                window, _, *focus = item
                self._check_window(window)
                chrom, ref = self._window_codes(window)
                yield item, chrom, ref, self._ism_blocks(window, chrom, ref, *focus)
            return
        per = self.ig_steps if self.method == "integrated_gradients" else 1
        group = max(1, self.gradient_batch_size // per)
        for items in _groups(windows, group):
            yield from self._gradient_group(items)

    def _ism_blocks(
        self, window: Region, chrom: str, ref: np.ndarray, focus: Sequence[tuple[int, int]] = ()
    ) -> Iterator[tuple[int, np.ndarray, dict[str, np.ndarray]]]:
        """Yield ``(p0, ref_prediction, {score: (n_pos, 4, T)})`` blocks of one window."""
        n_len = self.length
        labels = self.labels
        pos, base = mutant_table(ref, self._mutable(window, chrom, focus))
        minus = window.strand == "-"
        rows = max(self.batch_size, _MEMORY_BUDGET // (n_len * 16 * (2 if self.rc else 1)))
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
            zeros = np.zeros(hi - lo, dtype=np.int64)
            geometry = np.stack([mpos, np.ones_like(mpos), np.ones_like(mpos)], axis=1)
            values_of = score_predictions(
                self.jobs,
                self.output_spec,
                self.aggregate,
                ref_pred.ref[zeros],
                preds.alt,
                None if ref_pred.ref_rc is None else ref_pred.ref_rc[zeros],
                preds.alt_rc,
                geometry,
            )
            blocks = {}
            for job in self.jobs:
                values = values_of[job.name]
                if self._columns is not None:
                    values = values[:, self._columns]
                if values.shape[1] != len(labels):
                    msg = (
                        f"score {job.name!r} returned {values.shape[1]} values per mutant; "
                        f"expected one per output ({len(labels)})"
                    )
                    raise InputError(msg)
                block = np.full((p1 - p0, 4, len(labels)), np.nan, dtype=np.float32)
                block[pos[lo:hi] - p0, base[lo:hi]] = values
                blocks[job.name] = block
            yield p0, ref_pred.ref.reshape(-1), blocks
        if ref_pred is not None and not len(pos):
            yield 0, ref_pred.ref.reshape(-1), {}

    @property
    def gradient_batch_size(self) -> int:
        """Input rows per backward pass of a gradient map (:func:`.gradients.gradient_batch`)."""
        if self._gradient_rows is None:
            self._gradient_rows = gradient_batch(self.model, self.length, self.batch_size, len(self.labels))
        return self._gradient_rows

    def _gradient_group(
        self, items: list[tuple[Any, ...]]
    ) -> Iterator[tuple[tuple[Any, ...], str, np.ndarray, Blocks]]:
        """Gradient maps of several windows, one backward pass per batch of them."""
        read = []
        for window, *_ in items:
            self._check_window(window)
            read.append(self._window_codes(window))
        minus = [window.strand == "-" for window, *_ in items]
        model_codes = np.stack(
            [reverse_complement_codes(ref) if m else ref for (_, ref), m in zip(read, minus, strict=True)]
        )
        maps, preds = gradient_maps(
            self.model,
            model_codes,
            method=self.method,
            targets=Targets(self.output_spec, self.aggregate, self._columns, self.gradient_outputs),
            steps=self.ig_steps,
            batch_size=self.gradient_batch_size,
        )
        for k, (item, (chrom, ref)) in enumerate(zip(items, read, strict=True)):
            values = maps[k][::-1, ::-1] if minus[k] else maps[k]  # back to forward positions and bases
            valid = self._mutable(item[0], chrom, *item[2:])
            values = np.where(valid[:, None, None], values, np.nan).astype(np.float32)
            yield item, chrom, ref, [(0, preds[k], {self.method: values})]

    def window_scores(self, window: Region) -> WindowResult:
        """Compute the mutation map of one window in memory.

        Parameters
        ----------
        window
            Region of exactly L bases (its strand decides the model's orientation).

        Returns
        -------
        WindowResult
        """
        t = len(self.labels)
        out = {name: np.full((self.length, 4, t), np.nan, np.float32) for name in self.score_names}
        ref_pred = np.full(t, np.nan, np.float32)
        ((_, _, ref, blocks),) = self._computed([(window, "")])
        for p0, pred, block_of in blocks:
            ref_pred = pred
            for name, block in block_of.items():
                out[name][p0 : p0 + len(block)] = block
        return WindowResult(window, codes_to_str(ref), out, ref_pred, self.method_used[0])

    def _check_window(self, window: Region) -> None:
        if len(window) != self.length:
            msg = f"window {window.chrom}:{window.start}-{window.end} is not L = {self.length} bp"
            raise InputError(msg)

    # ---------------------------------------------------------------- queries

    def query_windows(
        self,
        windows: Iterable[tuple[Region, str] | tuple[Region, str, Sequence[tuple[int, int]]]],
        *,
        output: str | os.PathLike[str],
        variants: str | os.PathLike[str] | VariantIndex | None = None,
        query: str = "windows",
        total: int | None = None,
    ) -> MutationMapFile:
        """Compute the maps of given windows and write them to ``output``.

        Parameters
        ----------
        windows
            ``(window, name)`` pairs, or ``(window, name, focus)`` with focus the 0-based
            half-open spans that ``mutate_within`` counts from; every window exactly L long
            (strand ``-``: reverse complement fed to the model).
        output
            HDF5 file to write.
        variants
            VCF path (or index) of variants to record in the windows they fall in.
        query
            Query kind stored in the file's ``query`` attribute.
        total
            Number of windows, for the progress bar.
        """
        if isinstance(variants, (str, os.PathLike)):
            variants = self._read_variants(variants)
        labels = self.labels
        meta = {
            "seq_length": self.length,
            "rc": self.rc,
            "centering": self.centering,
            "query": query,
            "aggregate": str(self.aggregate),
            "mutate_within": -1 if self.mutate_within is None else self.mutate_within,
            "method_requested": self.method,
            "method": self.method_used[0],
        }
        if self.gradient:
            meta["gradient_outputs"] = self.gradient_outputs
            if self.method == "integrated_gradients":
                meta["ig_steps"] = self.ig_steps
                meta["ig_baseline"] = "zeros"
        bar = progress_bar(self.progress, unit="windows", total=total, interval=self.progress_interval)
        try:
            with MutationMapWriter(
                output, model=self.model.name, scores=self.score_names, labels=labels, meta=meta
            ) as writer:
                for (window, name, *_), chrom, ref, blocks in self._computed(windows):
                    inside = variants.within(chrom, window.start, window.end) if variants else []
                    g = writer.add_entry(
                        chrom=chrom,
                        start=window.start,
                        end=window.end,
                        strand=window.strand,
                        seq_input=self.seq_input,
                        ref_seq=codes_to_str(ref),
                        name=name,
                        variants=inside,
                    )
                    for p0, ref_pred, block_of in blocks:
                        for score, block in block_of.items():
                            g["scores"][score][p0 : p0 + len(block)] = block
                        if "ref_prediction" not in g:
                            g.create_dataset("ref_prediction", data=ref_pred.astype(np.float32))
                    writer.set_method(*self.method_used)
                    bar.update(1)
        finally:
            bar.close()
        return load_mutation_map(output)

    def query_region(
        self,
        chrom: str,
        start: int,
        end: int,
        *,
        output: str | os.PathLike[str],
        strand: str = ".",
        variants: str | os.PathLike[str] | None = None,
    ) -> MutationMapFile:
        """Map the windows tiling ``chrom:[start, end)`` (0-based, half-open) into ``output``.

        Parameters
        ----------
        chrom, start, end
            The query region.
        output
            HDF5 file to write (format ``veff-mutation-map`` v1).
        strand
            ``-`` feeds the model the reverse complement.
        variants
            Optional VCF whose variants are recorded in the windows (for plots; read whole).
        """
        if strand not in ("+", "-", "."):
            msg = f"strand must be '+', '-' or '.', got {strand!r}"
            raise InputError(msg)
        region = Region(chrom, int(start), int(end), strand)  # type: ignore[arg-type]
        tiles = list(query_tiles(self.fasta, self.length, self.bound, [region]))
        return self.query_windows(
            tiles, output=output, variants=self._read_variants(variants), query="region", total=len(tiles)
        )

    def query_bed(
        self,
        path: str | os.PathLike[str],
        *,
        output: str | os.PathLike[str],
        variants: str | os.PathLike[str] | None = None,
    ) -> MutationMapFile:
        """Map the windows tiling every interval of a BED file (strand column respected)."""
        regions = read_regions(path)
        if not regions:
            msg = f"{path}: no intervals"
            raise InputError(msg)
        total = sum(len(tile_region(r, self.length)) for r in regions) if self.bound is None else None
        return self.query_windows(
            query_tiles(self.fasta, self.length, self.bound, regions),
            output=output,
            variants=self._read_variants(variants),
            query="bed",
            total=total,
        )

    def query_vcf(self, path: str | os.PathLike[str], *, output: str | os.PathLike[str]) -> MutationMapFile:
        """Map one window per variant, centred as ``score-variants`` centres it.

        Variants that share a window share an entry; every entry lists the VCF's variants that
        start inside it. Variants on contigs missing from the FASTA are skipped with a warning.
        """
        placed = read_placed_variants(path, self.fasta)
        index = VariantIndex(placed)
        items = group_variant_windows(placed, self._variant_windows)
        if not items:
            msg = f"{path}: no variant could be placed in a window"
            raise InputError(msg)
        return self.query_windows(items, output=output, variants=index, query="vcf", total=len(items))

    def _variant_windows(self, chrom: str, v: Variant) -> list[Region]:
        if self.bound is None:
            s = window_start(v.start, self.length, self.centering)
            return [Region(chrom, s, s + self.length)]
        return [
            b
            for b in self.bound
            if self.fasta.resolve(b.chrom) == chrom and b.start <= v.start and v.end <= b.end
        ]

    def _read_variants(self, path: str | os.PathLike[str] | None) -> VariantIndex | None:
        return None if path is None else VariantIndex(read_placed_variants(path, self.fasta))

    def close(self) -> None:
        """Close the reference and release the model (those given as objects are left open)."""
        if self._owns_fasta:
            self.fasta.close()
        if self._owns_model:
            self.model.close()

    def __enter__(self) -> MutationMap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
