"""Model outputs: their structure (heads, position axes), flattened batches and output columns.

A model returns one array or several named arrays ("heads", e.g. BPNet's profile and counts).
Each head is either

* a **scalar head**, shape (N, T): one value per task, or
* a **profile head**, shape (N, P, T): a track of ``P`` output positions per task (SpliceAI,
  BPNet, keras_dna target windows).

The prediction engine (:mod:`veff.engine.batching`) keeps every batch as one flat float32 array of shape
(N, F), the heads flattened and concatenated in order; :class:`OutputSpec` knows how to split it
back. Scores always come out as (N, T_total) with one column per task of every head, so writers
never see positions.

Output position ``j`` of a profile head looks at input position ``j + offset``; the offset is
``(L - P) // 2`` (a centred crop, as SpliceAI's context on each side) unless the model or the user
(``--output-offset``) says otherwise.

**Output layout.** A model may write its profile heads tasks first, (N, T, P) (bpnet-lite,
OpenSpliceAI, PyTorch ``Conv1d`` heads), and declare it (``output_layout = "tasks_first"``,
``--output-layout``). This module is where such heads become (N, P, T): :func:`flatten_output`
(every batch) and :meth:`OutputSpec.from_output` (the probe) transpose each head of rank 3
when the layout is ``tasks_first``, so everything after them sees positions first. An undeclared
layout is read positions first; the probe warns when a head's shape suggests the other reading
(:func:`suggests_tasks_first`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np

from veff.errors import InputError, ModelError, VeffWarning
from veff.models.base import OutputLayout

__all__ = [
    "OutputHead",
    "OutputSpec",
    "flatten_output",
    "select_columns",
    "suggests_tasks_first",
]


def _heads_of(out: Any, layout: OutputLayout | None = None) -> list[tuple[str, np.ndarray]]:
    """Return the named arrays of one raw model output (array, list/tuple or dict).

    With ``layout`` ``tasks_first`` every array of rank 3, (N, T, P), comes back as (N, P, T).
    """
    if isinstance(out, dict):
        items = [(str(k), np.asarray(v, dtype=np.float32)) for k, v in out.items()]
    elif isinstance(out, (list, tuple)):
        items = [(str(k), np.asarray(v, dtype=np.float32)) for k, v in enumerate(out)]
    else:
        items = [("", np.asarray(out, dtype=np.float32))]
    if layout == "tasks_first":
        items = [(k, v.transpose(0, 2, 1) if v.ndim == 3 else v) for k, v in items]
    return items


def suggests_tasks_first(positions: int, tasks: int, input_length: int) -> bool:
    """Whether a head read as ``positions`` x ``tasks`` (positions first) looks tasks first instead.

    True when the "tasks" could be output positions (no more than the input length) and either
    match the input length or, for at least two "positions", outnumber them ten to one:
    bpnet-lite's (2, 1000) for a 2,114-bp input, OpenSpliceAI's (3, 5000) for 15,000 bp. A head
    of one position, (1, T), is read as T tasks (Keras nets often keep such an axis) unless T
    equals the input length. Enformer's (896, 5313) is not suspicious.

    Examples
    --------
    >>> suggests_tasks_first(2, 1000, 2114), suggests_tasks_first(1000, 2, 2114)
    (True, False)
    >>> suggests_tasks_first(1, 164, 600), suggests_tasks_first(896, 5313, 196_608)
    (False, False)
    """
    if tasks <= positions or tasks > input_length:
        return False
    return tasks == input_length or (positions > 1 and tasks >= 10 * positions)


def flatten_output(out: Any, n: int, layout: OutputLayout | None = None) -> np.ndarray:
    """Flatten a raw model output for a batch of ``n`` sequences to float32 (n, F).

    Profile heads are flattened positions first, (n, P * T); with ``layout`` ``tasks_first``
    the model's (n, T, P) heads are transposed first.

    Raises
    ------
    ModelError
        When an output's first axis is not the batch.
    """
    arrays = []
    for name, arr in _heads_of(out, layout):
        if arr.ndim == 0 or arr.shape[0] != n:
            label = f"output {name!r} has" if name else "model returned"
            msg = f"{label} shape {arr.shape} for a batch of {n} sequences"
            raise ModelError(msg)
        arrays.append(arr.reshape(n, -1))
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays, axis=1)


@dataclass(frozen=True)
class OutputHead:
    """One model output.

    Attributes
    ----------
    name
        Head name ("" for a model with a single unnamed output).
    tasks
        Number of tasks T (last axis).
    positions
        Output positions P of a profile head, or None for a scalar head.
    """

    name: str
    tasks: int
    positions: int | None = None

    @property
    def size(self) -> int:
        """Flat width of the head, ``P * T``."""
        return self.tasks * (self.positions or 1)


@dataclass(frozen=True)
class OutputSpec:
    """The heads of a model's output and where profile positions sit in the input window.

    Attributes
    ----------
    heads
        The heads, in flat order.
    input_length
        Model input length L.
    offset
        Input index of output position 0 for every profile head, or None for a centred crop.
    rc_tasks
        For each task (score column), the task of a reverse-complement prediction that holds its
        value: strand-specific tasks trade places on the reverse complement (BPNet's + and -
        strand profiles, stranded CAGE tracks). None when no task moves (see
        :meth:`with_rc_swap`).
    """

    heads: tuple[OutputHead, ...]
    input_length: int
    offset: int | None = None
    rc_tasks: tuple[int, ...] | None = None

    @classmethod
    def from_output(
        cls,
        out: Any,
        input_length: int,
        *,
        offset: int | None = None,
        profile_heads: Sequence[str] = (),
        layout: OutputLayout | None = None,
    ) -> OutputSpec:
        """Learn the heads from one raw model output of a batch of 1.

        Arrays of shape (1, P, T) are profile heads ((1, T, P) with ``layout`` ``tasks_first``);
        (1, T) are scalar heads unless named in ``profile_heads`` (then (1, P) is a one-task
        profile). Larger ranks are refused. With no ``layout`` (undeclared), a profile head whose
        shape suggests tasks first (:func:`suggests_tasks_first`) gets a :class:`VeffWarning`.
        """
        heads = []
        for name, arr in _heads_of(out, layout):
            shape = arr.shape[1:]
            if len(shape) == 0:
                heads.append(OutputHead(name, 1))
            elif len(shape) == 1:
                if name in profile_heads or (name == "" and "" in profile_heads):
                    heads.append(OutputHead(name, 1, int(shape[0])))
                else:
                    heads.append(OutputHead(name, int(shape[0])))
            elif len(shape) == 2:
                heads.append(OutputHead(name, int(shape[1]), int(shape[0])))
                if layout is None and suggests_tasks_first(int(shape[0]), int(shape[1]), input_length):
                    _warn_layout(name, int(shape[0]), int(shape[1]), input_length)
            else:
                label = f"output {name!r}" if name else "the model output"
                msg = f"{label} has per-sequence shape {shape}; expected (T,) or (positions, T)"
                raise ModelError(msg)
        spec = cls(tuple(heads), int(input_length), offset)
        for h in spec.heads:
            off = spec.head_offset(h)
            if h.positions is not None and (off < 0 or off + h.positions > input_length):
                msg = (
                    f"{h.positions} output positions from input index {off} do not fit an input of "
                    f"{input_length}; check --output-offset"
                )
                raise InputError(msg)
        return spec

    @property
    def is_profile(self) -> bool:
        """Whether any head has a position axis."""
        return any(h.positions is not None for h in self.heads)

    @property
    def width(self) -> int:
        """Flat width F of a prediction row."""
        return sum(h.size for h in self.heads)

    @property
    def tasks(self) -> int:
        """Number of score columns (tasks of every head)."""
        return sum(h.tasks for h in self.heads)

    def head_offset(self, head: OutputHead) -> int:
        """Input index of output position 0 of a profile head."""
        if self.offset is not None:
            return self.offset
        return (self.input_length - (head.positions or self.input_length)) // 2

    def split(self, flat: np.ndarray) -> list[np.ndarray]:
        """Split flat predictions (N, F) into per-head arrays (N, T) or (N, P, T)."""
        out, lo = [], 0
        for h in self.heads:
            part = flat[:, lo : lo + h.size]
            lo += h.size
            out.append(part if h.positions is None else part.reshape(len(flat), h.positions, h.tasks))
        return out

    def with_rc_swap(
        self, pairs: str | Sequence[Sequence[str | int]] | None, labels: list[str]
    ) -> OutputSpec:
        """Return the spec with strand-specific task pairs that trade places on the reverse complement.

        Parameters
        ----------
        pairs
            ``"A:B,C:D"`` or ``[(A, B), (C, D)]``: tasks named by label or 0-based index (the
            score columns). Both tasks of a pair must have the same number of output positions.
        labels
            The label of every task (:meth:`labels`).

        Examples
        --------
        >>> spec = OutputSpec((OutputHead("", 3),), 10)
        >>> spec.with_rc_swap("plus:minus", ["plus", "minus", "both"]).rc_tasks
        (1, 0, 2)
        """
        if not pairs:
            return self
        if isinstance(pairs, str):
            items: list[Sequence[str | int]] = [p.split(":") for p in pairs.split(",") if p.strip()]
        else:
            items = [tuple(p) for p in pairs]
        tasks = list(range(self.tasks))
        positions = [h.positions for h in self.heads for _ in range(h.tasks)]
        moved: set[int] = set()
        for item in items:
            if len(item) != 2:
                msg = f"bad rc task pair {item!r} in {pairs!r}: expected TASK:TASK"
                raise InputError(msg)
            a, b = (_column_index(labels, x, "rc task") for x in item)
            if a == b or {a, b} & moved:
                msg = f"rc task pair {item!r}: each task may appear in one pair only, with another task"
                raise InputError(msg)
            if positions[a] != positions[b]:
                msg = f"rc task pair {item!r}: the tasks have {positions[a]} and {positions[b]} positions"
                raise InputError(msg)
            tasks[a], tasks[b] = b, a
            moved |= {a, b}
        return replace(self, rc_tasks=tuple(tasks))

    @cached_property
    def rc_columns(self) -> np.ndarray | None:
        """Flat column order (F,) that puts reverse-complement predictions in forward task order."""
        if self.rc_tasks is None:
            return None
        place = []  # per task: (flat start of its head, tasks of its head, index in head, positions)
        lo = 0
        for h in self.heads:
            place += [(lo, h.tasks, t, h.positions or 1) for t in range(h.tasks)]
            lo += h.size
        cols = np.empty(self.width, dtype=np.int64)
        for task, src in enumerate(self.rc_tasks):
            (lo_d, n_d, t_d, p), (lo_s, n_s, t_s, _) = place[task], place[src]
            at = np.arange(p)
            cols[lo_d + at * n_d + t_d] = lo_s + at * n_s + t_s
        return cols

    def labels(self, given: Sequence[str] | None = None) -> list[str]:
        """One label per score column.

        ``given`` (the model's or the user's labels) is used when it has one label per column;
        otherwise columns are numbered, as ``<head>.<k>`` when there are several heads.
        """
        if given is not None:
            if len(given) != self.tasks:
                msg = f"model has {self.tasks} outputs but {len(given)} output labels were given"
                raise InputError(msg)
            return [str(x) for x in given]
        if len(self.heads) == 1:
            return [str(k) for k in range(self.tasks)]
        return [f"{h.name}.{k}" for h in self.heads for k in range(h.tasks)]


def _warn_layout(name: str, positions: int, tasks: int, input_length: int) -> None:
    """The one-line warning for a profile head that looks tasks first (see :func:`suggests_tasks_first`)."""
    label = f"output {name!r}" if name else "the model output"
    msg = (
        f"{label} has per-sequence shape ({positions}, {tasks}) for an input of {input_length}, read as "
        f"{positions} positions of {tasks} tasks; if it is {positions} tasks of {tasks} positions (tasks "
        "first, as bpnet-lite and OpenSpliceAI write it) give --output-layout tasks_first "
        "(output_layout=); --output-layout positions_first keeps this reading without the warning"
    )
    warnings.warn(msg, VeffWarning, stacklevel=4)


def select_columns(labels: list[str], wanted: Sequence[str | int] | str | int | None) -> np.ndarray | None:
    """Return the column indices of ``wanted`` output labels or indices (None keeps all).

    One label or index may be given alone (not as a list).

    Examples
    --------
    >>> select_columns(["a", "b", "c"], ["c", 0]).tolist()
    [2, 0]
    """
    if isinstance(wanted, (str, int, np.integer)):  # one label or index, not its characters
        wanted = [wanted] if str(wanted) else []
    if not wanted:
        return None
    return np.array([_column_index(labels, item) for item in wanted], dtype=np.int64)


def _column_index(labels: list[str], item: str | int, what: str = "model output") -> int:
    """The column of one output label or (possibly negative) index; ``what`` names it in errors."""
    text = str(item).strip()
    if text in labels:
        return labels.index(text)
    if text.lstrip("-").isdigit() and -len(labels) <= int(text) < len(labels):
        return int(text) % len(labels)
    n = len(labels)
    index = f"an index in {-n}..{n - 1}" if n else "an index (the model has no outputs)"
    msg = f"{what} {text!r} not found: not a label and not {index}; outputs are {labels[:20]}"
    raise InputError(msg)
