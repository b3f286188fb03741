"""Windows from a Kipoi model's own dataloader: the two dataloader region modes.

Both modes yield :class:`~veff.variants.windows.WindowSet` chunks in VCF order, so prediction, scoring and
writing are the same as for veff's own windows. The reference window of a sample is the DNA input
its dataloader made (decoded back to bases); its other inputs ride along in
``WindowSet.extra_inputs`` and are passed to the model unchanged, also with the reverse-complement
sets. Only the DNA input is mutated.

``overlap`` (dataloader.yaml has no ``bed_input``)
    The dataloader runs once on the user's ``--dataloader-args``. A first pass over the VCF notes
    where the variants are; samples whose ``metadata`` range holds none are dropped as they stream
    past, so only regions with variants are kept. A second pass streams the VCF in chunks: an ALT
    inside a region's range is scored in that sample; a record inside no region keeps its place in
    the output with status ``not_in_region``. Chromosome names match with or without ``chr``
    (``chrM`` = ``MT``).
``bed_input``
    For a model with inputs besides the DNA, or when dataloader arguments are given (a DNA-only
    model otherwise gets veff's own windows, which need none of the dataloader's packages and give
    the same scores): per chunk of records, veff plans its usual windows (variant-centred with the
    model's centring, or inside ``--restriction-bed``), writes them to a temporary BED (name column
    ``w<row>``), runs the dataloader with that BED as every ``bed_input`` argument plus the user's
    arguments, and matches the returned samples to windows by ``metadata`` ``id`` (else by
    chrom/start/end), never by order.

A variant inside several returned regions (overlap mode, or a bed-mode dataloader returning several
samples for one window) is scored **once, in the region where it lies most central** (largest
distance to the nearer region end; ties: first returned); the number of such records is logged.

Placing the variant (kipoi-veff's rule): for a ``+``/``.``/``*`` strand range the REF starts at
``pos - 1 - start``; for a ``-`` strand range the dataloader returned the reverse complement, so the
allele is complemented and placed at ``end - (pos - 1 + len(REF))``. The sample's bases there must
equal REF (else ``ref_mismatch``, or with ``--ref-mismatch score`` REF is written into a private
copy of the reference window). Substitutions replace the REF bases; indels follow veff's rule for
fixed-length windows (docs/coordinates.md): the bases left of the variant stay, a deletion pulls in
the reference bases that follow the region, an insertion pushes bases out at the end. The other
inputs of the sample (signal tracks...) are those of the reference region.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from veff.errors import InputError, ModelError
from veff.io.vcf import STDIN, VcfReader
from veff.models.base import Model, WindowRequest
from veff.models.kipoi.dlrun import (
    SampleRange,
    iter_samples,
    open_dataloader,
    read_dataloader_args,
    sample_range,
)
from veff.models.kipoi.load import KipoiModel
from veff.types import Region, Status, Variant
from veff.variants.sequences import COMPLEMENT, allele_status, codes_to_str, normalize_allele, str_to_codes
from veff.variants.windows import WindowBuilder, WindowSet

__all__ = [
    "DataloaderSource",
    "canonical_chrom",
    "dataloader_chunks",
    "dataloader_mode",
    "dataloader_regions",
]

log = logging.getLogger("veff")


def dataloader_mode(model: Any) -> str | None:
    """``overlap`` or ``bed_input`` when ``model`` is run through its own dataloader, else None."""
    if not isinstance(model, KipoiModel):
        return None
    dl = model.spec.dataloader
    if dl is None or dl.source != "local":
        return None
    return "bed_input" if dl.bed_input else "overlap"


def dataloader_chunks(model: KipoiModel, request: WindowRequest) -> Iterator[WindowSet] | None:
    """The window chunks of ``model``'s own dataloader, or None when veff plans the windows itself.

    Raises
    ------
    InputError
        When dataloader arguments are given for a model veff does not run through a dataloader.
    """
    mode = dataloader_mode(model)
    if mode is None:  # the general rule: no windows of its own
        return Model.window_source(model, request)
    if mode == "bed_input" and request.dataloader_args is None and not model.input_names:
        log.info(
            "%s: DNA-only model; veff builds the windows itself (give dataloader arguments, even "
            "'{}', to run its dataloader)",
            model.name,
        )
        return None
    source = DataloaderSource(
        model,
        read_dataloader_args(request.dataloader_args),
        request.fasta,
        request.builder,
        ref_mismatch=request.ref_mismatch,
    )
    if mode == "overlap":
        return source.overlap(request.vcf, request.reader, request.chunk)
    return source.bed_input(request.reader, request.chunk)


def _metadata_field(model: KipoiModel) -> str | None:
    """The ``metadata`` field that locates the DNA input (its ``associated_metadata``)."""
    dl_inputs = model.spec.dataloader.inputs if model.spec.dataloader is not None else ()
    for arr in (*dl_inputs, *model.spec.inputs):
        if arr.name == model.dna.name and arr.associated_metadata:
            return arr.associated_metadata[0]
    return next((a.associated_metadata[0] for a in dl_inputs if a.associated_metadata), None)


def dataloader_regions(
    model: Any, dataloader_args: Any, fasta: str | os.PathLike[str]
) -> list[Region] | None:
    """The regions an overlap-mode model's dataloader returns (for mutation maps); None for other models.

    Regions keep the dataloader's chromosome names, strand and ``id`` (as ``name``).
    """
    if dataloader_mode(model) != "overlap":
        return Model.bound_regions(model, dataloader_args, fasta)
    dl = model.spec.dataloader
    obj = open_dataloader(dl, read_dataloader_args(dataloader_args), fasta=fasta)
    field_ = _metadata_field(model)
    out = []
    for sample in iter_samples(dl, obj):
        r = sample_range(sample, field_)
        strand = r.strand if r.strand in ("+", "-") else "."
        out.append(Region(r.chrom, r.start, r.end, strand, r.id))  # type: ignore[arg-type]
    return out


def canonical_chrom(name: str) -> str:
    """Contig name without ``chr``; the mitochondrion is ``M`` (so ``chr1`` = ``1``, ``chrMT`` = ``M``)."""
    bare = name[3:] if name.lower().startswith("chr") else name
    return "M" if bare.upper() in ("M", "MT") else bare


@dataclass
class _Stored:
    """Samples kept for placing variants: codes (n, L), ranges and other inputs per sample."""

    codes: list[np.ndarray] = field(default_factory=list)
    ranges: list[SampleRange] = field(default_factory=list)
    extra: list[dict[str, np.ndarray]] = field(default_factory=list)

    def add(self, codes: np.ndarray, rng: SampleRange, extra: dict[str, np.ndarray]) -> None:
        self.codes.append(codes)
        self.ranges.append(rng)
        self.extra.append(extra)


class _RangeIndex:
    """Find stored sample ranges containing ``[start, end)`` (per canonical chromosome)."""

    def __init__(self, ranges: list[SampleRange]) -> None:
        self._by: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, int]] = {}
        groups: dict[str, list[int]] = {}
        for k, r in enumerate(ranges):
            groups.setdefault(canonical_chrom(r.chrom), []).append(k)
        for chrom, ks in groups.items():
            idx = np.array(ks, dtype=np.int64)
            starts = np.array([ranges[k].start for k in ks], dtype=np.int64)
            ends = np.array([ranges[k].end for k in ks], dtype=np.int64)
            order = np.argsort(starts, kind="stable")
            longest = int((ends - starts).max())
            self._by[chrom] = (starts[order], ends[order], idx[order], longest)

    def containing(self, chrom: str, start: int, end: int) -> list[int]:
        found = self._by.get(canonical_chrom(chrom))
        if found is None:
            return []
        starts, ends, idx, longest = found
        lo = np.searchsorted(starts, end - longest, "left")
        hi = np.searchsorted(starts, start, "right")
        sel = np.nonzero(ends[lo:hi] >= end)[0] + lo
        return sorted(int(idx[k]) for k in sel)


class DataloaderSource:
    """Yield :class:`~veff.variants.windows.WindowSet` chunks built from the model's dataloader.

    Parameters
    ----------
    model
        A Kipoi model with a local dataloader.
    dataloader_args
        The user's dataloader arguments (see :func:`veff.models.kipoi.dlrun.read_dataloader_args`).
    fasta
        The reference FASTA path (given to a ``fasta_file`` argument the user leaves out).
    builder
        veff's window planner (bed-input mode plans the windows written to the BED with it).
    ref_mismatch
        ``skip`` or ``score``, as for veff's own windows.
    """

    def __init__(
        self,
        model: KipoiModel,
        dataloader_args: dict[str, Any],
        fasta: str | os.PathLike[str],
        builder: WindowBuilder,
        *,
        ref_mismatch: str = "skip",
    ) -> None:
        dl = model.spec.dataloader
        if dl is None or dl.source != "local":
            msg = f"{model.name}: no local dataloader to run"
            raise ModelError(msg)
        self.model = model
        self.dl = dl
        self.args = dict(dataloader_args)
        self.fasta = Path(fasta)
        self.builder = builder
        self.ref_mismatch = ref_mismatch
        self.length = builder.length
        self.field = _metadata_field(model)
        self.multi_region = 0

    # -- samples ------------------------------------------------------------------------------
    def _samples(self, args: dict[str, Any]) -> Iterator[tuple[dict[str, Any], SampleRange]]:
        obj = open_dataloader(self.dl, args, fasta=self.fasta)
        for sample in iter_samples(self.dl, obj):
            yield sample, sample_range(sample, self.field)

    def _decode(self, sample: dict[str, Any]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        inputs = sample.get("inputs") if isinstance(sample, dict) else None
        if inputs is None:
            msg = f"dataloader {self.dl.defined_as}: a sample has no 'inputs'"
            raise ModelError(msg)
        batched = _add_batch_axis(inputs)
        dna, extra = self.model.split_inputs(batched)
        codes = self.model.dna_codes(dna)[0]
        if len(codes) != self.length:
            msg = (
                f"dataloader {self.dl.defined_as}: a sample's DNA input has {len(codes)} bases; "
                f"the model takes {self.length}"
            )
            raise ModelError(msg)
        return codes, {k: v[0] for k, v in extra.items()}

    # -- modes --------------------------------------------------------------------------------
    def overlap(self, vcf: str | os.PathLike[str], reader: VcfReader, chunk: int) -> Iterator[WindowSet]:
        """Overlap mode: run the dataloader once, then stream ``reader`` in chunks of ``chunk`` records."""
        if str(vcf) == STDIN:
            msg = (
                f"model {self.model.name!r} runs its dataloader in overlap mode, which reads the VCF "
                "twice; it cannot read standard input: give the VCF as a file"
            )
            raise InputError(msg)
        positions = _variant_positions(vcf)
        store = _Stored()
        seen = 0
        for sample, rng in self._samples(self.args):
            seen += 1
            pos = positions.get(canonical_chrom(rng.chrom))
            if pos is None:
                continue
            lo, hi = np.searchsorted(pos, [rng.start, rng.end])
            if hi > lo:
                store.add(*_pick(self._decode(sample), rng))
        log.info("%s: dataloader gave %d regions, %d hold variants", self.model.name, seen, len(store.ranges))
        index = _RangeIndex(store.ranges)
        it = iter(reader)
        while True:
            block = list(islice(it, chunk))
            if not block:
                break
            variants = [v for v, _ in block]
            hits = [index.containing(v.chrom, v.start, v.end) for v in variants]
            yield self._plan(variants, [r for _, r in block], hits, store)
        self._report()

    def bed_input(self, reader: VcfReader, chunk: int) -> Iterator[WindowSet]:
        """Bed-input mode: per chunk, run the dataloader on a BED of the chunk's windows."""
        it = iter(reader)
        with tempfile.TemporaryDirectory(prefix="veff-dl-") as tmp:
            bed = Path(tmp) / "windows.bed"
            while True:
                block = list(islice(it, chunk))
                if not block:
                    break
                variants, records = [v for v, _ in block], [r for _, r in block]
                yield self._bed_chunk(variants, records, bed)
        self._report()

    def _bed_chunk(self, variants: list[Variant], records: list[Any], bed: Path) -> WindowSet:
        planned = self.builder.build(variants, records)
        regions = planned.ref_regions
        with open(bed, "w") as fh:
            fh.writelines(f"{r.chrom}\t{r.start}\t{r.end}\tw{k}\n" for k, r in enumerate(regions))
        by_window: dict[int, list[int]] = {}
        store = _Stored()
        if regions:
            args = {**self.args, **dict.fromkeys(self.dl.bed_input, str(bed))}
            by_coord = {(r.chrom, r.start, r.end): k for k, r in enumerate(regions)}
            for sample, rng in self._samples(args):
                k = _window_of(rng, by_coord)
                if k is None:
                    continue
                by_window.setdefault(k, []).append(len(store.ranges))
                store.add(*_pick(self._decode(sample), rng))
        rows_of: list[set[int]] = [set() for _ in variants]
        for (i, _), ref_row in zip(planned.alt_slot, planned.alt_ref, strict=True):
            rows_of[int(i)].add(int(ref_row))
        hits = [sorted(s for w in rows for s in by_window.get(w, [])) for rows in rows_of]
        ws = self._plan(variants, records, hits, store)
        for i, sts in enumerate(planned.statuses):  # veff's own reasons first (unknown contig...)
            if not rows_of[i]:
                ws.statuses[i] = list(sts)
        return ws

    def _report(self) -> None:
        if self.multi_region:
            log.warning(
                "%s: %d records lie in more than one dataloader region; each was scored once, in the "
                "region where it lies most central",
                self.model.name,
                self.multi_region,
            )

    # -- placing variants ---------------------------------------------------------------------
    def _plan(
        self, variants: list[Variant], records: list[Any], hits: list[list[int]], store: _Stored
    ) -> WindowSet:
        plan = _Plan()
        statuses = []
        for i, (v, cand) in enumerate(zip(variants, hits, strict=True)):
            if len(cand) > 1:
                self.multi_region += 1
            statuses.append(self._place_record(i, v, cand, store, plan))
        extra_names = sorted(store.extra[0]) if store.extra else []
        return WindowSet(
            variants=variants,
            records=records,
            statuses=statuses,
            ref_codes=np.stack(plan.ref_codes) if plan.ref_codes else np.empty((0, self.length), np.uint8),
            ref_regions=plan.regions,
            alt_codes=np.stack(plan.alt_codes) if plan.alt_codes else np.empty((0, self.length), np.uint8),
            alt_ref=np.array(plan.alt_ref, dtype=np.int64),
            alt_slot=np.array(plan.alt_slot, dtype=np.int64).reshape(-1, 2),
            alt_geometry=np.array(plan.geometry, dtype=np.int64).reshape(-1, 3),
            extra_inputs={
                name: np.stack([store.extra[s][name] for s in plan.samples])
                if plan.samples
                else np.empty((0,))
                for name in extra_names
            }
            or None,
        )

    def _place_record(self, i: int, v: Variant, cand: list[int], store: _Stored, plan: _Plan) -> list[Status]:
        if not v.alts or v.alts == (".",):
            return [Status.NO_ALT]
        bad = [Status.NO_ALT if a == "." else allele_status(v.ref, a) for a in v.alts]
        if not cand:
            return [b or Status.NOT_IN_REGION for b in bad]
        s = max(cand, key=lambda k: (min(v.start - store.ranges[k].start, store.ranges[k].end - v.end), -k))
        rng = store.ranges[s]
        minus = rng.strand == "-"
        off = rng.end - v.end if minus else v.start - rng.start
        ref_codes = _oriented(v.ref, minus)
        seq = store.codes[s]
        mismatch = not np.array_equal(seq[off : off + len(v.ref)], ref_codes)
        if mismatch and self.ref_mismatch == "skip":
            return [b or Status.REF_MISMATCH for b in bad]
        row = plan.ref_row(s, seq, rng) if not mismatch else plan.patched_row(s, seq, rng, off, ref_codes)
        out = []
        for j, (alt, b) in enumerate(zip(v.alts, bad, strict=True)):
            placed = (
                None
                if b is not None
                else self._alt_window(plan.ref_codes[row], rng, off, ref_codes, _oriented(alt, minus))
            )
            if placed is None:
                out.append(b or Status.INDEL_TOO_LONG)
                continue
            plan.alt_codes.append(placed[0])
            plan.alt_ref.append(row)
            plan.alt_slot.append((i, j))
            plan.geometry.append(placed[1])
            out.append(Status.REF_MISMATCH_SCORED if mismatch else Status.OK)
        return out

    def _alt_window(
        self, seq: np.ndarray, rng: SampleRange, off: int, ref: np.ndarray, alt: np.ndarray
    ) -> tuple[np.ndarray, tuple[int, int, int]] | None:
        """The alt window of an allele placed at ``off`` (model orientation), and its geometry.

        Substitutions replace the REF bases. An indel is first normalised in the sample's own
        sequence (:func:`~veff.variants.sequences.normalize_allele`: shared bases trimmed, one anchor base
        kept, left-aligned in repeats, as for veff's own windows), then the window is
        ``seq[:o] + ALT + seq[o + len(REF):]`` cut to L, a deletion pulling in the reference bases
        that follow the region (in the model's orientation: before the start of a ``-`` range).
        None when the indel is longer than ``max_indel_length`` or its ALT does not fit.
        """
        if len(ref) == len(alt):
            out = seq.copy()
            out[off : off + len(alt)] = alt
            return out, (off, len(ref), len(alt))
        o, r_txt, a_txt = normalize_allele(seq, off, codes_to_str(ref), codes_to_str(alt))
        short = len(r_txt) - len(a_txt)
        if abs(short) > self.builder.max_indel_length or o + len(a_txt) > self.length:
            return None
        tail = self._flank(rng, max(0, short))
        out = np.concatenate([seq[:o], str_to_codes(a_txt), seq[o + len(r_txt) :], tail])[: self.length]
        return out, (o, len(r_txt), len(a_txt))

    def _flank(self, rng: SampleRange, n: int) -> np.ndarray:
        """The ``n`` reference bases that follow the range in its orientation (N beyond the contig)."""
        if n == 0:
            return np.empty(0, np.uint8)
        fasta = self.builder.fasta
        chrom = fasta.resolve(rng.chrom)
        if chrom is None:
            return np.full(n, ord("N"), np.uint8)
        if rng.strand == "-":
            return COMPLEMENT[fasta.fetch_many(chrom, np.array([rng.start - n]), n)[0][::-1]]
        return fasta.fetch_many(chrom, np.array([rng.end]), n)[0]


@dataclass
class _Plan:
    """Rows of one WindowSet while it is planned."""

    ref_codes: list[np.ndarray] = field(default_factory=list)
    regions: list[Region] = field(default_factory=list)
    samples: list[int] = field(default_factory=list)  # store index of each ref row
    rows: dict[int, int] = field(default_factory=dict)  # store index -> shared ref row
    alt_codes: list[np.ndarray] = field(default_factory=list)
    alt_ref: list[int] = field(default_factory=list)
    alt_slot: list[tuple[int, int]] = field(default_factory=list)
    geometry: list[tuple[int, int, int]] = field(default_factory=list)

    def _new_row(self, s: int, seq: np.ndarray, rng: SampleRange) -> int:
        self.ref_codes.append(seq)
        strand = rng.strand if rng.strand in ("+", "-") else "."
        self.regions.append(Region(rng.chrom, rng.start, rng.end, strand, rng.id))  # type: ignore[arg-type]
        self.samples.append(s)
        return len(self.ref_codes) - 1

    def ref_row(self, s: int, seq: np.ndarray, rng: SampleRange) -> int:
        if s not in self.rows:
            self.rows[s] = self._new_row(s, seq, rng)
        return self.rows[s]

    def patched_row(self, s: int, seq: np.ndarray, rng: SampleRange, off: int, ref: np.ndarray) -> int:
        patched = seq.copy()
        patched[off : off + len(ref)] = ref
        return self._new_row(s, patched, rng)


def _oriented(allele: str, minus: bool) -> np.ndarray:
    codes = str_to_codes(allele)
    return COMPLEMENT[codes[::-1]] if minus else codes


def _pick(
    decoded: tuple[np.ndarray, dict[str, np.ndarray]], rng: SampleRange
) -> tuple[np.ndarray, SampleRange, dict[str, np.ndarray]]:
    return decoded[0], rng, decoded[1]


def _add_batch_axis(inputs: Any) -> Any:
    if isinstance(inputs, dict):
        return {k: _add_batch_axis(v) for k, v in inputs.items()}
    if isinstance(inputs, (list, tuple)):
        return [_add_batch_axis(v) for v in inputs]
    return np.asarray(inputs)[None]


def _window_of(rng: SampleRange, by_coord: dict[tuple[str, int, int], int]) -> int | None:
    if rng.id.startswith("w") and rng.id[1:].isdigit():
        return int(rng.id[1:])
    return by_coord.get((rng.chrom, rng.start, rng.end))


def _variant_positions(vcf: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Sorted 0-based starts of every record, per canonical chromosome (the first VCF pass)."""
    found: dict[str, list[int]] = {}
    reader = VcfReader(vcf)
    try:
        for v, _ in reader:
            found.setdefault(canonical_chrom(v.chrom), []).append(v.start)
    finally:
        reader.close()
    return {c: np.sort(np.array(p, dtype=np.int64)) for c, p in found.items()}
