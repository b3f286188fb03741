"""The batching engine: run reference, alternative and reverse-complement windows through a model.

The sequences of a chunk are laid out as ``[ref, alt, ref_rc, alt_rc]`` and queued on a
:class:`BatchStream`, which cuts batches of exactly ``batch_size`` sequences across chunk
boundaries; each batch is one forward call. Reference windows are predicted once and shared by
every ALT that uses them. With ``--batch-size tune`` the stream's first batches try a few sizes
(:class:`BatchTuning`) and the rest of the run uses the fastest.
"""

from __future__ import annotations

import math
import re
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from veff.engine.outputs import OutputSpec, flatten_output
from veff.errors import ModelError, VeffError
from veff.models.base import Model, OutputLayout
from veff.variants.sequences import one_hot, reverse_complement_codes

__all__ = [
    "BatchStream",
    "BatchTuning",
    "Predictions",
    "auto_batch_size",
    "model_batch_size",
    "model_threads",
    "predict_pairs",
    "probe_outputs",
    "submit_pairs",
    "take_pairs",
    "tune_candidates",
]


# The automatic batch size. A CPU runs fastest while a batch's largest activation stays in its
# caches (about 16 MB of float32 here, half the L3); a model that does much arithmetic per float
# it writes (DeepSEA) loses little when it does not, and gets more room (up to 64 MB). A GPU needs
# large batches to fill its cores. Without a view into the model, a batch holds about 2**18
# input bases. Measured in docs/performance.md, "Batch size".
CPU_ACTIVATION_FLOATS = 2**22  # the room of the largest activation, for most models
CPU_ACTIVATION_PER_FLOP = 2**14  # room per FLOP per activation float, above that...
CPU_ACTIVATION_MAX = 2**24  # ...up to this
CPU_ONE_THREAD_FLOPS = 2**22  # a model below this many FLOPs per sequence runs on one CPU thread
BATCH_BASES = 2**18
CPU_UNBOUND_BASES = 2**19  # a framework without the cache cliff (TensorFlow) gains up to large batches
BATCH_LIMITS = (32, 4096)  # sequences per call, by input bases
CPU_MIN_BATCH = 4  # by activation: a 15 kb SpliceAI window with 32 channels still gets 4


def auto_batch_size(
    length: int,
    sequences: int | None = None,
    device: str = "cpu",
    activation: int | None = None,
    flops_per_float: float | None = None,
    bases: int = BATCH_BASES,
) -> int:
    """Default sequences per forward call, by device kind, model and window length.

    On a CPU, when the model's largest intermediate activation for one sequence is known
    (``activation`` floats, :meth:`veff.models.Model.activation_floats`), as many sequences as
    keep that activation within ``CPU_ACTIVATION_FLOATS`` (16 MB): 32 for a 128-channel 1 kb
    conv net, thousands for a small 101-bp CNN. A model whose convolution and dense layers do
    many FLOPs per float of output (``flops_per_float``,
    :meth:`veff.models.Model.flops_per_float`) gets ``CPU_ACTIVATION_PER_FLOP`` floats per unit
    of it instead, up to ``CPU_ACTIVATION_MAX``: 32 for DeepSEA at 1 kb (about 900 FLOPs per
    float). Otherwise (and on a GPU) about ``bases`` input bases per call. Powers of two,
    within ``BATCH_LIMITS`` (down to ``CPU_MIN_BATCH`` when cut by activation). When the whole
    run needs fewer ``sequences``, the batch is the next power of two above them instead, so a
    handful of variants is not padded to a full batch (see :class:`BatchStream`). The choice
    depends only on the device kind, the model, the window length and the VCF, so reruns and
    shards of a run agree.

    Parameters
    ----------
    length
        Window length L.
    sequences
        Sequences of the whole run when it is small (reference, alternative and rc copies), or
        None.
    device
        ``cpu`` or ``gpu`` (:attr:`veff.models.Model.accelerator`).
    activation
        Floats of the model's largest activation for one sequence, or None.
    flops_per_float
        FLOPs of the model's convolution and dense layers per float of all its layers' outputs,
        or None.
    bases
        Input bases per call when the batch does not follow the activation (``BATCH_BASES``;
        ``CPU_UNBOUND_BASES`` for a framework whose CPU kernels are not cache-bound).

    Examples
    --------
    >>> auto_batch_size(101), auto_batch_size(1000), auto_batch_size(15000)
    (2048, 256, 32)
    >>> auto_batch_size(1000, activation=128 * 992), auto_batch_size(101, activation=8 * 93)
    (32, 4096)
    >>> auto_batch_size(1000, activation=320 * 993, flops_per_float=900.0)
    32
    >>> auto_batch_size(1000, device="gpu", activation=320 * 993)
    256
    >>> auto_batch_size(1000, sequences=12)
    16
    """
    if device not in ("cpu", "gpu"):
        msg = f"device kind {device!r}: expected 'cpu' or 'gpu'"
        raise ValueError(msg)
    low, high = BATCH_LIMITS
    if device == "cpu" and activation:
        room = CPU_ACTIVATION_FLOATS
        if flops_per_float:
            room = int(min(CPU_ACTIVATION_MAX, max(room, CPU_ACTIVATION_PER_FLOP * flops_per_float)))
        low, fit = CPU_MIN_BATCH, room // activation
    else:
        fit = bases // max(length, 1)
    size = int(min(high, max(low, 1 << max(0, fit.bit_length() - 1))))
    if sequences is not None and sequences < size:
        size = 1 << max(0, sequences - 1).bit_length()
    return size


def model_batch_size(model: Model, length: int, sequences: int | None = None) -> int:
    """:func:`auto_batch_size` for ``model``.

    Its device kind, and its activation and FLOPs per float where its framework's CPU kernels
    are cache-bound (:attr:`veff.models.Model.cpu_cache_bound`); otherwise the batch follows the
    input bases (``CPU_UNBOUND_BASES`` of them on a CPU: 512 sequences of 1 kb).
    """
    if not model.cpu_cache_bound:
        bases = CPU_UNBOUND_BASES if model.accelerator == "cpu" else BATCH_BASES
        return auto_batch_size(length, sequences, model.accelerator, bases=bases)
    return auto_batch_size(
        length, sequences, model.accelerator, model.activation_floats(length), model.flops_per_float(length)
    )


TUNE_SPREAD = 2  # --batch-size tune: from auto / 2**TUNE_SPREAD to auto * 2**TUNE_SPREAD
TUNE_ROUNDS = 2  # forward calls timed per size; the faster counts (the first of a shape warms it up)


def tune_candidates(auto: int) -> tuple[int, ...]:
    """The batch sizes ``--batch-size tune`` times: powers of two around the automatic choice.

    From ``auto / 4`` to ``4 * auto``, within 1 and the largest automatic batch
    (``BATCH_LIMITS[1]``).

    Examples
    --------
    >>> tune_candidates(16), tune_candidates(4096), tune_candidates(2)
    ((4, 8, 16, 32, 64), (1024, 2048, 4096), (1, 2, 4, 8))
    """
    sizes = {
        min(BATCH_LIMITS[1], max(1, auto << k if k >= 0 else auto >> -k))
        for k in range(-TUNE_SPREAD, TUNE_SPREAD + 1)
    }
    return tuple(sorted(sizes))


@dataclass
class BatchTuning:
    """What ``--batch-size tune`` measured on the first batches of a run.

    Attributes
    ----------
    candidates
        The sizes tried, in the order they run (smallest first).
    seconds
        The fastest of the :data:`TUNE_ROUNDS` forward calls of each size timed so far.
    chosen
        The size with the most sequences per second, once every candidate is timed (ties: the
        smaller); None before.
    """

    candidates: tuple[int, ...]
    seconds: dict[int, float] = field(default_factory=dict)
    chosen: int | None = None

    def rates(self) -> dict[int, float]:
        """Sequences per second of each size timed."""
        return {s: s / t if t > 0 else math.inf for s, t in self.seconds.items()}

    def choose(self) -> int:
        """Fix :attr:`chosen` from the timings; returns it."""
        rates = self.rates()
        self.chosen = max(sorted(rates), key=lambda s: rates[s])
        return self.chosen

    def report(self) -> dict[str, Any]:
        """JSON-ready: the candidates, the sequences per second of each and the size chosen (or None)."""
        return {
            "tuned": self.chosen is not None,
            "size": self.chosen,
            "candidates": list(self.candidates),
            "sequences_per_second": {str(s): round(r, 1) for s, r in sorted(self.rates().items())},
        }


def model_threads(model: Model, length: int) -> int | None:
    """Default CPU threads of the model's framework for a run: 1 for a cheap model, else None.

    A PyTorch model on a CPU whose convolution and dense layers do fewer than ``CPU_ONE_THREAD_FLOPS``
    FLOPs per sequence (a small 101-bp CNN: 57,000) spends less time computing than veff spends
    reading and writing its records; its second thread then mostly waits for the first while
    veff's reader thread wants the core (measured in docs/performance.md, case 6). None leaves
    the framework's threads as they are.
    """
    if model.accelerator != "cpu" or model.framework != "pytorch":  # TensorFlow fixes them at start
        return None
    flops = model.flops_per_sequence(length)
    return 1 if flops is not None and flops < CPU_ONE_THREAD_FLOPS else None


@dataclass(frozen=True)
class Predictions:
    """Model outputs for reference and alternative windows.

    Attributes
    ----------
    ref
        Predictions of the reference windows, shape (n_ref, T...).
    alt
        Predictions of the alt windows, shape (n_alt, T...).
    ref_rc, alt_rc
        The same for the reverse complements, or None when rc is off.
    null
        Predictions of the null windows (``--null``), rows paired already (reference and alt null
        window of ALT ``i``, shuffle ``k`` at row ``i * N + k``), or None.
    """

    ref: np.ndarray
    alt: np.ndarray
    ref_rc: np.ndarray | None = None
    alt_rc: np.ndarray | None = None
    null: Predictions | None = None

    def paired(self, alt_ref: np.ndarray) -> Predictions:
        """Return predictions with the reference rows repeated to align with the ALT rows."""
        return Predictions(
            self.ref[alt_ref],
            self.alt,
            None if self.ref_rc is None else self.ref_rc[alt_ref],
            self.alt_rc,
            self.null,
        )

    def select(self, columns: np.ndarray | None) -> Predictions:
        """Keep only the given output columns (last axis)."""
        if columns is None:
            return self

        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[..., columns]

        return Predictions(pick(self.ref), pick(self.alt), pick(self.ref_rc), pick(self.alt_rc))  # type: ignore[arg-type]


def _call(model: Model, batch: np.ndarray, extra: dict[str, np.ndarray] | None) -> np.ndarray:
    """``model.predict(batch)``, with the model's other inputs when there are any."""
    return model.predict(batch) if extra is None else model.predict(batch, extra)  # type: ignore[call-arg]


class BatchStream:
    """Predict the sequences of successive chunks in forward calls of exactly ``batch_size``.

    Sequences wait (as uint8 codes) until a full batch is there, across chunk boundaries; only
    :meth:`flush` sends a smaller remainder, padded with all-N rows to ``batch_size`` when
    ``pad`` is set. So with ``pad`` every sequence is predicted in a batch of the same shape,
    whatever precedes it: CPU and GPU kernels change the last bits of a float with the batch
    shape (not with the batch's other rows), and a sharded run then gives the bytes of a run
    in one process. Outputs come back per submission, in submission order.

    Parameters
    ----------
    model
        The model adapter.
    batch_size
        Sequences per forward call.
    rc
        Also predict the reverse complement of every submitted group.
    pad
        Pad the last batch to ``batch_size`` (at most ``batch_size - 1`` extra rows per run).
    layout
        Layout of the model's profile heads (default: what it declares,
        :meth:`~veff.models.Model.declared_output_layout`); rows are always flattened positions
        first (:func:`veff.engine.outputs.flatten_output`).
    tune
        Batch sizes to time on the first batches (``--batch-size tune``,
        :func:`tune_candidates`): each runs :data:`TUNE_ROUNDS` full batches, smallest first,
        then the fastest (:attr:`tuning`) is used for the rest; ``batch_size`` is not used. The
        outputs are those of the same sequences in other batch shapes, so they may differ from an
        untuned run's in the last bits of a float (and from run to run, as the timings do).
    on_tuned
        Called with :attr:`tuning` once the size is chosen.
    """

    def __init__(
        self,
        model: Model,
        batch_size: int,
        *,
        rc: bool,
        pad: bool = True,
        layout: OutputLayout | None = None,
        tune: Sequence[int] | None = None,
        on_tuned: Callable[[BatchTuning], None] | None = None,
    ) -> None:
        self.model = model
        self.batch_size = int(batch_size)
        self.rc = rc
        self.pad = pad
        self.layout = layout or model.declared_output_layout()
        self.tuning = BatchTuning(tuple(tune)) if tune else None
        self._trials: deque[int] = deque(s for s in (tune or ()) for _ in range(TUNE_ROUNDS))
        self._on_tuned = on_tuned
        if self._trials:
            self.batch_size = self._trials[0]
        self._codes: np.ndarray | None = None  # waiting sequences, (n, L) uint8
        self._extra: dict[str, np.ndarray] | None = None
        self._out: list[np.ndarray] = []  # predicted rows not yet taken, float32 (n, F)
        self._out_rows = 0
        self._tickets: deque[list[int]] = deque()  # group sizes per submission
        self.forward_seconds = 0.0  # time spent in the model's forward calls

    def submit(self, groups: list[np.ndarray], extras: list[dict[str, np.ndarray]] | None = None) -> None:
        """Queue groups of uint8 codes (each (n_i, L)) with their other inputs; predict full batches.

        ``extras`` (one dict per group, arrays of shape (n_i, ...)) are passed with the rows,
        reversed by ``model.reverse_extra`` for the reverse-complement groups.
        """
        groups = list(groups) + ([reverse_complement_codes(g) for g in groups] if self.rc else [])
        if extras is not None:
            extras = list(extras) + ([self.model.reverse_extra(e) for e in extras] if self.rc else [])
        self._tickets.append([len(g) for g in groups])
        if sum(len(g) for g in groups) == 0:
            return
        waiting = [] if self._codes is None else [self._codes]
        self._codes = np.concatenate(waiting + [g for g in groups if len(g)], axis=0)
        if extras is not None:
            blocks = ([self._extra] if self._extra is not None else []) + list(extras)
            self._extra = {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}
        self._run(final=False)

    def flush(self) -> None:
        """Predict the sequences still waiting (padded to ``batch_size`` when ``pad`` is set)."""
        self._run(final=True)

    def ready(self) -> bool:
        """Whether the oldest submission not yet taken has all its outputs."""
        return bool(self._tickets) and sum(self._tickets[0]) <= self._out_rows

    def take(self) -> list[np.ndarray]:
        """The outputs of the oldest submission, one (n_i, F) array per group (rc groups last)."""
        sizes = self._tickets.popleft()
        need = sum(sizes)
        if not need:
            return [np.empty((0, 0), np.float32) for _ in sizes]
        flat = np.concatenate(self._out, axis=0) if len(self._out) != 1 else self._out[0]
        rows, rest = flat[:need], flat[need:]
        self._out = [rest] if len(rest) else []
        self._out_rows -= need
        bounds = np.cumsum([0, *sizes])
        return [rows[bounds[k] : bounds[k + 1]] for k in range(len(sizes))]

    def _run(self, *, final: bool) -> None:
        codes, extra = self._codes, self._extra
        if codes is None:
            return
        n, lo = len(codes), 0
        while lo < n and (final or n - lo >= self.batch_size):
            bs = self.batch_size
            rows = codes[lo : lo + bs]
            part = None if extra is None else {k: v[lo : lo + bs] for k, v in extra.items()}
            real = len(rows)
            if real < bs and self.pad:
                rows = np.concatenate([rows, np.full((bs - real, rows.shape[1]), ord("N"), np.uint8)])
                if part is not None:
                    part = {
                        k: np.concatenate([v, np.zeros((bs - real, *v.shape[1:]), v.dtype)])
                        for k, v in part.items()
                    }
            t = time.perf_counter()
            raw = _call(self.model, one_hot(rows, self.model.n_value), part)
            out = flatten_output(raw, len(rows), self.layout)
            seconds = time.perf_counter() - t
            self.forward_seconds += seconds
            self._out.append(out[:real])
            self._out_rows += real
            lo += real
            if self._trials and real == bs:
                self._timed(bs, seconds)
        stop = lo
        self._codes = np.ascontiguousarray(codes[stop:]) if stop < n else None
        self._extra = (
            None
            if extra is None or stop >= n
            else {k: np.ascontiguousarray(v[stop:]) for k, v in extra.items()}
        )

    def _timed(self, size: int, seconds: float) -> None:
        """Record one timed batch of ``--batch-size tune``; after the last, switch to the fastest size."""
        tuning = self.tuning
        if tuning is None:  # trials are queued only with a tuning
            return
        tuning.seconds[size] = min(seconds, tuning.seconds.get(size, math.inf))
        self._trials.popleft()
        if self._trials:
            self.batch_size = self._trials[0]
            return
        self.batch_size = tuning.choose()
        if self._on_tuned is not None:
            self._on_tuned(tuning)


def submit_pairs(
    stream: BatchStream,
    ref_codes: np.ndarray,
    alt_codes: np.ndarray,
    extra: dict[str, np.ndarray] | None = None,
    alt_ref: np.ndarray | None = None,
    null: tuple[np.ndarray, np.ndarray] | None = None,
) -> None:
    """Queue reference and alt windows on ``stream``; :func:`take_pairs` returns their predictions.

    Parameters
    ----------
    ref_codes, alt_codes
        uint8 codes of the reference windows (n_ref, L) and of the alt windows (n_alt, L).
    extra, alt_ref
        Other model inputs per reference window (name -> array of shape (n_ref, ...)) and the
        reference row of each alt window (shape (n_alt,)), for models whose dataloader makes them.
    null
        Reference and alt null windows (each (n_alt * N, L), see
        :func:`veff.variants.shuffle.null_windows`), predicted in the same batches; not with
        ``extra``.
    """
    extras = None
    if extra is not None and alt_ref is not None:
        extras = [extra, {k: v[alt_ref] for k, v in extra.items()}]
    if null is not None:
        if extras is not None:
            msg = "null windows cannot be scored with a dataloader's extra model inputs"
            raise ValueError(msg)
        stream.submit([ref_codes, alt_codes, *null])
        return
    stream.submit([ref_codes, alt_codes], extras)


def take_pairs(stream: BatchStream) -> Predictions:
    """The predictions of the oldest :func:`submit_pairs` submission (call when ``stream.ready()``)."""
    res = stream.take()
    per_strand = len(res) // (2 if stream.rc else 1)
    fwd, rev = res[:per_strand], res[per_strand:] if stream.rc else [None] * per_strand
    null = None
    if per_strand == 4:
        null = Predictions(fwd[2], fwd[3], rev[2], rev[3])
    return Predictions(fwd[0], fwd[1], rev[0], rev[1], null)


def predict_pairs(
    model: Model,
    ref_codes: np.ndarray,
    alt_codes: np.ndarray,
    *,
    rc: bool = False,
    batch_size: int = 256,
    extra: dict[str, np.ndarray] | None = None,
    alt_ref: np.ndarray | None = None,
) -> Predictions:
    """Predict reference and alternative windows (and their reverse complements) at once.

    Parameters
    ----------
    model
        Model adapter.
    ref_codes
        uint8 codes of the reference windows, shape (n_ref, L).
    alt_codes
        uint8 codes of the alt windows, shape (n_alt, L).
    rc
        Whether to predict reverse complements too.
    batch_size
        Sequences per forward call.
    extra, alt_ref
        As for :func:`submit_pairs`.
    """
    stream = BatchStream(model, batch_size, rc=rc, pad=False)
    submit_pairs(stream, ref_codes, alt_codes, extra, alt_ref)
    stream.flush()
    return take_pairs(stream)


def probe_outputs(
    model: Model, length: int, *, offset: int | None = None, profile_heads: tuple[str, ...] = ()
) -> OutputSpec:
    """Learn the structure of the model's outputs by predicting one all-N window of ``length``.

    ``offset`` and ``profile_heads`` default to what the model declares (attributes
    ``output_offset`` and ``profile_outputs``), and so does the layout of its profile heads
    (``output_layout``); see :class:`veff.engine.outputs.OutputSpec`.
    """
    x = one_hot(np.full((1, length), ord("N"), np.uint8), model.n_value)
    if offset is None:
        offset = model.declared("output_offset")
    heads = profile_heads or tuple(model.declared("profile_outputs") or ())
    placeholder = getattr(model, "placeholder_inputs", None)
    try:
        out = _call(model, x, placeholder(1) if placeholder is not None else None)
    except VeffError:
        raise
    except Exception as exc:
        raise _rejected(model, length, exc) from exc
    layout = model.declared_output_layout()
    return OutputSpec.from_output(out, length, offset=offset, profile_heads=heads, layout=layout)


def _rejected(model: Model, length: int, exc: Exception) -> ModelError:
    """The one-line error for a model that fails on its first input: what was tried, what it expects."""
    shape = tuple(model.layout.to_model(np.zeros((1, length, 4), np.float32)).shape)
    text = str(exc).strip().splitlines()
    last = text[-1].strip() if text else ""
    reason = last if re.match(r"\w+(Error|Exception): ", last) else f"{type(exc).__name__}: {last}"
    hint = model.input_hint()
    msg = (
        f"model {model.name!r} failed on an input of shape {shape} (length {length}, layout "
        f"{model.layout}): {reason}" + (f"; {hint}" if hint else "") + "; check --seq-length and "
        "--input-layout (seq_length=, input_layout=)"
    )
    return ModelError(msg)
