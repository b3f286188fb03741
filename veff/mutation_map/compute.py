"""Mutation maps of queries: the windows of a region, BED, VCF or bound-region query, streamed to HDF5.

:class:`MutationMap` holds a run's options, the model and the reference; it finds the windows of
a query and writes each window's map (computed by :class:`veff.mutation_map.windows.WindowMapper`)
to an HDF5 file in the format of :mod:`veff.mutation_map.hdf5`.

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
:mod:`veff.mutation_map.gradients`, several windows per backward pass), stored in the same
layout with the method's name as score.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from veff.engine.batching import probe_outputs
from veff.engine.outputs import OutputSpec, select_columns
from veff.engine.progress import DEFAULT_INTERVAL, progress_bar
from veff.errors import InputError, check_int
from veff.io.bed import read_regions
from veff.io.fasta import Fasta
from veff.models import Model, load_model
from veff.mutation_map.engines import METHODS, check_method
from veff.mutation_map.gradients import (
    GRADIENT_METHODS,
    OUTPUT_REDUCTIONS,
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
    check_query,
    group_variant_windows,
    mutant_table,
    query_tiles,
    read_bound_regions,
    read_placed_variants,
    tile_region,
)
from veff.mutation_map.windows import MapSettings, WindowMapper
from veff.scoring.registry import resolve_score_jobs
from veff.scoring.tracks import Aggregation
from veff.types import Region, Variant
from veff.variants.regions import CENTERINGS, Centering, window_start
from veff.variants.sequences import codes_to_str

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
        Sequences per forward call. None (default): automatic, by device and model as in
        ``score-variants``: naive ISM takes the model's automatic batch
        (:func:`veff.engine.batching.model_batch_size`), fast ISM the same rule applied to one
        mutant's cost in the fast path, at most 256 mutants (:class:`.engines.MutantPredictor`).
        Gradient maps: at most this many inputs per backward pass, fewer when the model's
        automatic CPU batch is smaller (:attr:`gradient_batch_size`).
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
        batch_size: int | None = None,
        centering: Centering = "exact",
        model_outputs: Sequence[str | int] | str | int | None = None,
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
        for name, value, low in (
            ("ig_steps", ig_steps, 1),
            ("batch_size", batch_size, 1),
            ("seq_length", seq_length, 1),
            ("mutate_within", mutate_within, 0),
            ("output_offset", output_offset, 0),
        ):
            optional = name in ("batch_size", "seq_length", "mutate_within", "output_offset")
            check_int(name, value, low, optional=optional)
        self.gradient_outputs, self.ig_steps = gradient_outputs, ig_steps
        self.gradient = method in GRADIENT_METHODS
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
        self._model_outputs = (  # one label or index alone, not its characters
            model_outputs
            if isinstance(model_outputs, (str, int)) or not model_outputs
            else list(model_outputs)
        )
        self.aggregate = Aggregation.parse(
            aggregate if aggregate is not None or not self.gradient else "all sum"
        )
        self.mutate_within = mutate_within
        self._output_offset = output_offset
        self._rc_swap = rc_swap_tasks or self.model.declared("rc_swap_tasks")
        self._spec: OutputSpec | None = None
        self._labels: list[str] | None = None
        self._columns: np.ndarray | None = None
        if bound_regions is None:
            bound_regions = self.model.bound_regions(dataloader_args, self.fasta.path)
        self.bound = read_bound_regions(bound_regions, self.length)
        self._mapper: WindowMapper | None = None

    @property
    def score_names(self) -> list[str]:
        """Names of the stored arrays: the scores, or the gradient method."""
        return [self.method] if self.gradient else [j.name for j in self.jobs]

    @property
    def method_used(self) -> tuple[str, str]:
        """``(method, note)``: what made the map so far and why (see docs/mutation_map.md)."""
        return self._window_mapper().method_used

    @property
    def gradient_batch_size(self) -> int:
        """Input rows per backward pass of a gradient map (:func:`.gradients.gradient_batch`)."""
        return self._window_mapper().gradient_batch_size

    def _window_mapper(self) -> WindowMapper:
        """The run's window computation, made once the model's outputs are known."""
        if self._mapper is None:
            spec, labels = self._learn_outputs()
            settings = MapSettings(
                length=self.length,
                method=self.method,
                jobs=self.jobs,
                spec=spec,
                aggregate=self.aggregate,
                columns=self._columns,
                labels=labels,
                rc=self.rc,
                batch_size=self.batch_size,
                mutate_within=self.mutate_within,
                gradient_outputs=self.gradient_outputs,
                ig_steps=self.ig_steps,
            )
            self._mapper = WindowMapper(self.model, self.fasta, settings)
        return self._mapper

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

    # --------------------------------------------------------------- compute

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
        ((_, _, ref, blocks),) = self._window_mapper().computed([(window, "")])
        for p0, pred, block_of in blocks:
            ref_pred = pred
            for name, block in block_of.items():
                out[name][p0 : p0 + len(block)] = block
        return WindowResult(window, codes_to_str(ref), out, ref_pred, self.method_used[0])

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
        complete = False
        try:
            with MutationMapWriter(
                output, model=self.model.name, scores=self.score_names, labels=labels, meta=meta
            ) as writer:
                for (window, name, *_), chrom, ref, blocks in self._window_mapper().computed(windows):
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
            complete = True
        finally:
            bar.close() if complete else bar.stop()
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
        check_int("start", start, 0, optional=False)
        check_int("end", end, 0, optional=False)
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
        if self.bound is None:  # every interval, before any window is computed
            for k, r in enumerate(regions, start=1):
                check_query(self.fasta, r, f"{path}, interval {k}" + (f" ({r.name})" if r.name else ""))
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
