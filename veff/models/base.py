"""The model interface veff runs, and conversion from veff's (N, L, 4) batches to model layouts.

Every adapter turns a float32 batch of one-hot sequences, shape (N, L, 4) with channels in
A, C, G, T order, into predictions of shape (N, T) (or (N, ..., T) for position-resolved models).
The adapter owns the conversion to the layout the model was trained on: ``(L, 4)``, ``(4, L)`` and
layouts with dummy axes such as ``(L, 1, 4)``, ``(1, L, 4)`` or ``(4, 1, L)``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from veff.errors import InputError, ModelError

if TYPE_CHECKING:
    from veff.io.vcf import VcfReader
    from veff.types import Region
    from veff.variants.regions import Centering
    from veff.variants.windows import WindowBuilder, WindowSet

__all__ = [
    "GRADIENT_REDUCERS",
    "OUTPUT_LAYOUTS",
    "PRECISIONS",
    "DeclaredScore",
    "GradientTarget",
    "InputLayout",
    "Model",
    "MutantEngine",
    "NoMutantEngine",
    "OutputLayout",
    "WindowRequest",
    "check_device",
    "check_precision",
    "parse_output_layout",
    "sanitize_name",
]

OutputLayout = Literal["positions_first", "tasks_first"]
OUTPUT_LAYOUTS: tuple[OutputLayout, ...] = ("positions_first", "tasks_first")
_LAYOUT_ALIASES = {"classes_first": "tasks_first"}  # the splice models' name for tasks first

GRADIENT_REDUCERS = ("sum", "mean", "max", "min", "max_abs")
"""Reductions of a profile head over its positions that :class:`GradientTarget` knows."""


@dataclass(frozen=True)
class InputLayout:
    """A per-sequence input layout: axis tokens ``"L"``, ``"4"`` and dummy ``"1"``.

    Examples
    --------
    >>> lay = InputLayout.parse("4,1,L")
    >>> lay.to_model(np.zeros((2, 10, 4), np.float32)).shape
    (2, 4, 1, 10)
    """

    axes: tuple[str, ...] = ("L", "4")

    @classmethod
    def parse(cls, spec: str | tuple[object, ...] | list[object]) -> InputLayout:
        """Parse ``"4,L"``-style text or a shape such as ``(None, 4)`` / ``(4, 1, 101)``.

        In a shape, the axis of size 4 is the alphabet, 1s are dummies, and the one remaining
        axis (an int or None) is the sequence.
        """
        items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
        tokens: list[str] = []
        for item in items:
            text = "L" if item is None else str(item).strip().upper()
            if text == "4":
                tokens.append("4")
            elif text == "1":
                tokens.append("1")
            elif text in ("L", "NONE", "") or text.isdigit():
                tokens.append("L")
            else:
                msg = f"bad input layout {spec!r}: axes must be L, 4 or 1"
                raise ModelError(msg)
        if tokens.count("4") != 1 or tokens.count("L") != 1:
            if tokens.count("4") == 2 and tokens.count("L") == 0:
                tokens[tokens.index("4")] = "L"
            else:
                msg = f"bad input layout {spec!r}: expected one sequence axis and one axis of 4"
                raise ModelError(msg)
        return cls(tuple(tokens))

    @property
    def channels_first(self) -> bool:
        """Whether the alphabet axis comes before the sequence axis."""
        return self.axes.index("4") < self.axes.index("L")

    def shape(self, n: int, length: int) -> list[int]:
        """Shape of a batch of ``n`` sequences of ``length`` in this layout (``n`` may be -1)."""
        return [n] + [length if a == "L" else 4 if a == "4" else 1 for a in self.axes]

    def to_model(self, x: np.ndarray) -> np.ndarray:
        """Convert (N, L, 4) to the model's layout (a contiguous array)."""
        base = x.transpose(0, 2, 1) if self.channels_first else x
        return np.ascontiguousarray(base).reshape(self.shape(x.shape[0], x.shape[1]))

    def __str__(self) -> str:
        return ",".join(self.axes)


def parse_output_layout(value: object) -> OutputLayout | None:
    """Check an output layout: ``positions_first``, ``tasks_first`` (``classes_first``) or None.

    The layout of a model's position-resolved outputs: ``positions_first`` is (N, P, T), ``P``
    output positions of ``T`` tasks (SpliceAI's Keras files, BPNet in Keras, keras_dna);
    ``tasks_first`` is (N, T, P) (bpnet-lite, OpenSpliceAI, most PyTorch ``Conv1d`` heads).
    ``classes_first`` is accepted as the splice models' name for ``tasks_first``.

    Raises
    ------
    InputError
        For any other value.

    Examples
    --------
    >>> parse_output_layout("classes_first"), parse_output_layout(None)
    ('tasks_first', None)
    """
    if value is None:
        return None
    text = str(value).strip().lower()
    text = _LAYOUT_ALIASES.get(text, text)
    if text == "positions_first":
        return "positions_first"
    if text == "tasks_first":
        return "tasks_first"
    msg = f"output layout must be positions_first or tasks_first, got {value!r}"
    raise InputError(msg)


@dataclass(frozen=True)
class DeclaredScore:
    """A score a model declares, as plain data; :func:`veff.scoring.registry.get_score` makes it a Score.

    Attributes
    ----------
    name
        The label users select it by (and the INFO tag suffix).
    computes
        The registered score it computes under its own label (``diff``, ``logit``...), or ``""``
        when ``fn`` computes it.
    fn
        For a score of the model's own: ``fn(ref, alt, ref_rc, alt_rc, rc_merging, **kwargs)``,
        arrays of shape (N, T) (the rc arrays None without reverse complements) and
        ``rc_merging`` the user's choice as given (a merge name, ``"mean"`` by default, or a
        callable); returns (N, T).
    description
        One line for headers (default: the computed score's).
    """

    name: str
    computes: str = ""
    fn: Callable[..., np.ndarray] | None = None
    description: str = ""


@dataclass(frozen=True)
class WindowRequest:
    """What a run hands a model that may make its own windows (:meth:`Model.window_source`).

    Attributes
    ----------
    vcf, reader
        The VCF and its open reader (records are read from ``reader``).
    builder
        veff's window planner for the run (reference, length, centring, restriction).
    chunk
        Records per chunk.
    fasta
        The reference FASTA.
    dataloader_args
        The user's dataloader arguments (None: not given).
    ref_mismatch
        REF mismatch policy, ``skip`` or ``score``.
    """

    vcf: str | os.PathLike[str]
    reader: VcfReader
    builder: WindowBuilder
    chunk: int
    fasta: str | os.PathLike[str]
    dataloader_args: Any = None
    ref_mismatch: str = "skip"


@dataclass(frozen=True)
class GradientTarget:
    """What :meth:`Model.input_gradients` differentiates, as plain data.

    The model's heads are reduced to one value per task column, in the order the score columns
    of a mutation map use (every task of every head): a scalar head (N, T) as it is, a profile
    head (N, P, T) (or (N, P)) reduced over the positions of its mask.

    Attributes
    ----------
    masks
        Per head, in output order: bool (P,) of the positions a profile head is reduced over, or
        None for a scalar head.
    reducer
        The reduction over those positions: one of :data:`GRADIENT_REDUCERS` (``max_abs``: the
        signed value of largest magnitude).
    columns
        int (K,): the task columns kept, or None for all.
    outputs
        ``each`` (every kept column is differentiated on its own) or ``sum`` (their sum, one
        column).
    """

    masks: tuple[np.ndarray | None, ...]
    reducer: str = "sum"
    columns: np.ndarray | None = None
    outputs: str = "each"


_DEVICE = re.compile(r"auto|cpu|mps|cuda(:[0-9]+)?")


PRECISIONS = ("float32", "bfloat16", "float16")


def check_precision(precision: str) -> str:
    """Return ``precision`` when it is one of :data:`PRECISIONS`; else raise :class:`ModelError`."""
    if precision not in PRECISIONS:
        msg = f"unknown precision {precision!r}; expected {', '.join(PRECISIONS[:-1])} or {PRECISIONS[-1]}"
        raise ModelError(msg)
    return precision


def check_device(device: str) -> str:
    """Return ``device`` when it is ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; else raise.

    Raises
    ------
    InputError
        Naming the valid values (``gpu`` is not one: PyTorch calls it ``cuda``).
    """
    if not isinstance(device, str) or not _DEVICE.fullmatch(device):
        msg = f"unknown device {device!r}; use auto, cpu, cuda, cuda:N (N = GPU index) or mps"
        raise InputError(msg)
    return device


def sanitize_name(name: str) -> str:
    """Reduce a model name to ``[A-Za-z0-9_]`` for use in VCF INFO keys."""
    out = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_")
    return out or "model"


class Model:
    """Base class of veff's model adapters.

    Attributes
    ----------
    name
        Short name (used for the default INFO prefix).
    seq_length
        Input length L, or None when the model takes any length (then ``--seq-length`` is needed).
    output_labels
        One label per output column, or None for ``0..T-1``.
    default_rc
        Whether reverse complements are scored when the user does not say.
    n_value
        One-hot value of N bases (0, or 0.25 for kipoiseq-style models).
    layout
        Layout of one input sequence.
    default_centering
        Where variant-centred windows put the variant unless the user says (``exact``: index
        ``(L-1)//2``; Kipoi model directories say ``kipoi``, kipoi-veff's ``L//2-1``).
    accelerator
        ``cpu`` or ``gpu``: the kind of device the forward passes run on (with
        :meth:`activation_floats` and :meth:`flops_per_float`, it sets the automatic batch size,
        :func:`veff.engine.batching.auto_batch_size`).
    output_layout
        Layout of position-resolved outputs, ``positions_first`` ((N, P, T)) or ``tasks_first``
        ((N, T, P)); None: not declared (read as positions first; see
        :meth:`declared_output_layout`).
    cpu_cache_bound
        Whether the framework's CPU kernels slow down once a batch's activations leave the
        caches, so that the automatic CPU batch follows :meth:`activation_floats` (True: PyTorch's
        oneDNN kernels); False: the batch follows the input bases, more of them than for a model
        veff cannot look into (TensorFlow's kernels, measured without that cliff).

    Notes
    -----
    Besides :meth:`predict`, the base class declares the hooks through which a model can change
    what the engine does, each with the general default: :meth:`declared_scores` and
    :meth:`resolve_scores` (a model's own scores and defaults), :meth:`window_source` (windows
    from the model's own dataloader), :meth:`bound_regions` (the regions such a dataloader
    returns, for mutation maps), :meth:`input_gradients` and :meth:`mutant_engine` (gradient maps
    and receptive-field ISM, for frameworks that can) and :meth:`describe`. The engine, the
    pipeline and mutation maps call only these, never an adapter's module.
    """

    name: str = "model"
    seq_length: int | None = None
    output_labels: tuple[str, ...] | None = None
    default_rc: bool = False
    n_value: float = 0.0
    layout: InputLayout = InputLayout()
    framework: str = "python"
    default_centering: Centering = "exact"
    accelerator: Literal["cpu", "gpu"] = "cpu"
    output_layout: OutputLayout | None = None
    cpu_cache_bound: bool = True
    available_scores: Sequence[str] = ()
    default_scores: Sequence[str] = ()
    _wrapped: Any = None  # the framework object (module, Keras model, callable) the adapter runs

    def declared(self, name: str) -> Any:
        """What the adapter or the model it wraps declares as attribute ``name``, or None.

        Used for optional declarations such as ``output_offset``, ``profile_outputs`` and
        ``rc_swap_tasks`` (see docs/scores.md), so a module can carry them as class attributes.
        """
        value = getattr(self, name, None)
        if value is None and self._wrapped is not None:
            try:
                value = getattr(self._wrapped, name, None)
            except Exception:  # frameworks' attribute hooks may raise anything
                value = None
        return value

    def declared_output_layout(self) -> OutputLayout | None:
        """The layout of position-resolved outputs the adapter or its wrapped model declares, or None.

        Read from the attribute ``output_layout`` (set by ``--output-layout`` / ``output_layout=``,
        or by the model class). :mod:`veff.engine.outputs` turns tasks-first outputs into
        (N, P, T) tracks; None reads them positions first, with a warning for a shape that
        suggests the other reading.

        Raises
        ------
        ModelError
            When the model declares a value that is not a layout.
        """
        try:
            return parse_output_layout(self.declared("output_layout"))
        except InputError as exc:
            msg = f"model {self.name!r}: {exc}"
            raise ModelError(msg) from None

    def predict(self, x: np.ndarray) -> Any:
        """Predict a batch.

        Parameters
        ----------
        x
            float32 one-hot sequences, shape (N, L, 4), channels A, C, G, T.

        Returns
        -------
        numpy.ndarray or list or dict of numpy.ndarray
            float32 predictions, shape (N, T), (N,) for a single output, (N, P, T) for a
            position-resolved output ((N, T, P) when :attr:`output_layout` is ``tasks_first``),
            or several such arrays (named heads, see
            :mod:`veff.engine.outputs`).
        """
        return self._forward(self.layout.to_model(x))

    def _forward(self, x: np.ndarray) -> Any:
        raise NotImplementedError

    def reverse_extra(self, extra: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The model's other inputs for the reverse complement of a batch (unchanged by default).

        Adapters whose other inputs run along the sequence (signal tracks) reverse them here.
        """
        return extra

    def input_hint(self) -> str:
        """What the model's first layers seem to expect as input, in words ("" when unknown).

        Used in the error for an input the model rejects (:func:`veff.engine.batching.probe_outputs`).
        """
        return ""

    def declared_scores(self) -> dict[str, DeclaredScore]:
        """The scores the model declares, by label (none by default)."""
        return {}

    def resolve_scores(self, requested: Any) -> Any:
        """The scores a run uses when the user asked for ``requested`` (None or empty: not chosen).

        The default is ``requested`` itself, or ``("diff",)`` when nothing was chosen. Adapters
        whose models declare scores (Kipoi model directories) return their own defaults and their
        :class:`DeclaredScore` for the labels they declare; the result goes to
        :func:`veff.scoring.registry.resolve_score_jobs`.
        """
        return requested or ("diff",)

    def window_source(self, request: WindowRequest) -> Iterator[WindowSet] | None:
        """Window chunks, in VCF order, that the model makes itself; None (the default): veff plans them.

        Raises
        ------
        InputError
            When dataloader arguments are given to a model that runs no dataloader.
        """
        if request.dataloader_args:
            msg = f"dataloader arguments given, but model {self.name!r} has no dataloader.py that veff runs"
            raise InputError(msg)
        return None

    def bound_regions(self, dataloader_args: Any, fasta: str | os.PathLike[str]) -> list[Region] | None:
        """The regions the model's own dataloader returns, for mutation maps; None (default): any region.

        Raises
        ------
        InputError
            When ``dataloader_args`` are given to a model that is not bound to dataloader regions.
        """
        if dataloader_args:
            msg = f"dataloader arguments given, but model {self.name!r} is not bound to dataloader regions"
            raise InputError(msg)
        return None

    def activation_floats(self, length: int) -> int | None:
        """Floats of the largest intermediate activation of one sequence of length ``length``.

        What the automatic CPU batch size is cut to (:func:`veff.engine.batching.auto_batch_size`:
        a batch whose activations stay in the CPU's caches runs fastest). None when the adapter
        cannot see inside the model (the batch then follows the window length alone).
        """
        del length
        return None

    def flops_per_sequence(self, length: int) -> int | None:
        """FLOPs of the convolution and dense layers for one sequence of length ``length``.

        A model this cheap runs with one CPU thread by default
        (:func:`veff.engine.batching.model_threads`). None when the adapter cannot see inside the
        model.
        """
        del length
        return None

    def flops_per_float(self, length: int) -> float | None:
        """FLOPs of the convolution and dense layers per float of all layer outputs (one sequence).

        How compute-bound the model is for windows of ``length``. With :meth:`activation_floats`,
        it sets the automatic CPU batch size (:func:`veff.engine.batching.auto_batch_size`): a
        model that does much arithmetic per float it writes loses little when its activations
        fall out of the caches, so it gets a larger batch. None when the adapter cannot see
        inside the model.
        """
        del length
        return None

    def input_gradients(self, x: np.ndarray, target: GradientTarget) -> tuple[np.ndarray, Any]:
        """Gradients of the target columns with respect to a one-hot batch, and its predictions.

        The rows of a batch are independent (models run in eval mode), so one backward pass of
        a column summed over the batch gives every row's own gradient.

        Parameters
        ----------
        x
            float32 one-hot sequences (or points on a path to them), shape (N, L, 4).
        target
            The columns to differentiate (:class:`GradientTarget`).

        Returns
        -------
        tuple
            ``(gradients, outputs)``: float32 (N, L, 4, T) with T the kept columns (1 for
            ``outputs="sum"``), and the batch's outputs as :meth:`predict` returns them.

        Raises
        ------
        ModelError
            By default: only adapters of frameworks with automatic differentiation implement it.
        """
        del x, target
        msg = (
            f"gradient maps need a PyTorch or Keras model; {self.name!r} is a "
            f"{self.framework or 'Python'} model (use --method naive)"
        )
        raise ModelError(msg)

    def mutant_engine(self, length: int) -> MutantEngine:
        """A predictor of single-base mutants of windows of ``length`` that reuses the reference.

        The default refuses (:class:`NoMutantEngine`: naive ISM then runs every mutant through
        :meth:`predict`); the PyTorch adapter returns its receptive-field ISM when its module
        can be analysed.
        """
        del length
        return NoMutantEngine(f"{self.framework} model: receptive-field ISM needs a PyTorch module")

    def describe(self) -> dict[str, Any]:
        """What the adapter declares, as a JSON-ready dict (the model is not run).

        The keys are those of :func:`veff.models.kipoi.describe_model`; ``outputs`` has ``heads``
        None (:func:`veff.engine.describe.describe_loaded` runs the model once to fill them).
        """
        labels = list(self.output_labels) if self.output_labels is not None else None
        return {
            "name": self.name,
            "path": None,
            "framework": self.framework,
            "model_class": type(self).__name__,
            "inputs": [
                {
                    "name": "seq",
                    "special_type": "DNASeq",
                    "shape": None,
                    "role": "dna",
                    "layout": str(self.layout),
                    "length": self.seq_length,
                }
            ],
            "outputs": {
                "labels": labels,
                "count": len(labels) if labels is not None else None,
                "heads": None,
            },
            "rc": self.default_rc,
            "variant_effects": None,
            "available_scores": list(self.available_scores) or None,
            "default_scores": list(self.default_scores) or None,
            "region_mode": "centred",
            "dataloader": None,
            "n_value": self.n_value,
            "supported": True,
            "unsupported_reason": None,
            "notes": [],
        }

    def close(self) -> None:
        """Release resources (GPU memory, sessions)."""

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, seq_length={self.seq_length}, "
            f"layout={self.layout}, outputs={self.output_labels})"
        )


class MutantEngine(Protocol):
    """Predicts the single-base mutants of one window faster than one forward pass each.

    Attributes
    ----------
    usable
        Whether it applies to the model (False: :attr:`note` says why).
    note
        One line for a map's metadata and the log: what is reused, or why nothing is.
    layers
        One line per layer it analysed (for ``-vv``).
    activation_floats, flops_per_float
        For the part of the network it runs in full on each mutant: its largest activation of
        one mutant (floats) and its FLOPs per float of output, or None; they set the automatic
        batch of mutants as :meth:`Model.activation_floats` and :meth:`Model.flops_per_float`
        set a forward pass's.
    """

    @property
    def usable(self) -> bool: ...  # noqa: D102

    @property
    def note(self) -> str: ...  # noqa: D102

    @property
    def layers(self) -> list[str]: ...  # noqa: D102

    @property
    def activation_floats(self) -> int | None: ...  # noqa: D102

    @property
    def flops_per_float(self) -> float | None: ...  # noqa: D102

    def predict(self, ref_codes: np.ndarray, pos: np.ndarray, base: np.ndarray, batch_size: int) -> list[Any]:
        """The outputs of the mutants of one window, a batch at a time.

        Parameters
        ----------
        ref_codes
            uint8 codes of the window as the model sees it, shape (L,).
        pos, base
            int64, shape (M,): mutated position and new base (index into ACGT).
        batch_size
            Mutants per batch.

        Returns
        -------
        list
            One raw output per batch of at most ``batch_size`` mutants, in order, as
            :meth:`Model.predict` returns them.
        """
        ...


@dataclass
class NoMutantEngine:
    """The :class:`MutantEngine` of a model that has none: it says why and predicts nothing."""

    note: str
    usable: bool = False
    layers: list[str] = field(default_factory=list)
    activation_floats: int | None = None
    flops_per_float: float | None = None

    def predict(self, ref_codes: np.ndarray, pos: np.ndarray, base: np.ndarray, batch_size: int) -> list[Any]:
        """Refuse: there is nothing to reuse (the caller runs naive ISM)."""
        del ref_codes, pos, base, batch_size
        msg = f"no receptive-field ISM: {self.note}"
        raise ModelError(msg)


class CallableModel(Model):
    """Wrap any Python callable ``array -> array`` taking the model's layout."""

    framework = "python"

    def __init__(
        self,
        fn: object,
        *,
        name: str | None = None,
        seq_length: int | None = None,
        layout: InputLayout | None = None,
        output_labels: tuple[str, ...] | None = None,
    ) -> None:
        if not callable(fn):
            msg = f"{fn!r} is not callable"
            raise ModelError(msg)
        self._fn = self._wrapped = fn
        self.name = str(name or getattr(fn, "__name__", type(fn).__name__))
        self.seq_length = seq_length if seq_length is not None else getattr(fn, "seq_len", None)
        self.layout = layout or InputLayout.parse(getattr(fn, "input_layout", "L,4"))
        labels = output_labels or getattr(fn, "output_labels", None)
        self.output_labels = tuple(map(str, labels)) if labels is not None else None
        self.default_rc = bool(getattr(fn, "use_rc", False))

    def _forward(self, x: np.ndarray) -> Any:
        out = self._fn(x)
        return out if isinstance(out, (list, tuple, dict)) else np.asarray(out, dtype=np.float32)
