"""Receptive-field ISM for PyTorch modules: recompute only what a single-base change can reach.

The module is traced with ``torch.fx``. Starting at the DNA input, every node of the graph is
classified:

* **local**: its output at position ``j`` depends only on a bounded span of input positions, and
  veff knows that span: ``Conv1d`` (dilated, strided, grouped; zero padding), ``MaxPool1d`` and
  ``AvgPool1d`` (no ``ceil_mode``), ``BatchNorm1d`` in eval mode, element-wise activations and
  dropout, arithmetic with scalars or per-channel constants, residual adds of local branches,
  concatenations along channels, crops (slices of the length axis), and the transpose that turns
  an (N, L, 4) input into (N, 4, L);
* **constant**: does not depend on the input (parameters, buffers);
* **full**: anything else (flatten, dense layers, global pooling, unknown modules, modules with
  hooks or their own ``forward``). A local layer whose affected span would cover more than half
  of its length is also run in full: recomputing it in slices would cost as much as running it.

Before that, the module is refused (naive ISM, with the reason as the note) when the graph
cannot stand in for it exactly: the graph's output differs from the module's on a random batch
(torch.fx records ``h += y`` as ``h + y``, losing what it does to other names of ``h``); one
sequence's output depends on the others of its batch (batch statistics); an in-place change
reaches a tensor that other operations read through a view or another name; or activations
become integers, booleans or steps (argmax, comparisons, ``round``), where a rounding
difference could change the result by a step. Other in-place changes (``nn.ReLU(inplace=True)``,
``h.relu_()``) run on a copy, with the operations after them reading their result.

For every local node and every input position ``p`` the span of the node's positions that a
change at ``p`` can alter is known (an interval; see :class:`_Node`). A mutant is then computed
by running each local node only on a window of fixed width ``W`` that contains that interval,
reading its inputs from their own mutant windows where they overlap and from the reference
activations (cached once per window) elsewhere. The local nodes that full nodes consume (the
"boundary") are rebuilt at full length (reference activation with the mutant window written in)
and the rest of the graph runs on batches of them as in a normal forward pass.

The result equals the naive forward pass up to float rounding (the slices are summed in another
order). Mutation maps (:mod:`veff.mutation_map.engines`) check that on the first window of a run
and fall back to naive ISM when it is not so. They reach this module only through
:meth:`veff.models.torch.TorchModel.mutant_engine` (the :class:`~veff.models.base.MutantEngine`
hook); torch is imported lazily, inside functions.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from veff.models.torch import to_numpy
from veff.variants.sequences import one_hot

__all__ = ["FastISM", "analyse"]

log = logging.getLogger("veff")

MAX_WINDOW_FRACTION = 0.5
"""A local layer whose mutant window would exceed this fraction of its length runs in full."""
PROBE_RTOL = 1e-5
"""Largest difference :func:`_probe` accepts, relative to each output tensor's largest value."""


@dataclass
class _Node:
    """A local node: how a change at input position ``p`` reaches it, and how to compute a window.

    Attributes
    ----------
    name
        The fx node's name (for messages).
    length
        Positions of this node's output.
    lo, hi
        int64, shape (L,): the first and last position of this node that a change at input
        position ``p`` can alter (empty where ``lo > hi``).
    width
        Width W of the window computed per mutant (at least the widest interval).
    start
        int64, shape (L,): first position of the window for input position ``p`` (the window
        ``[start, start + W)`` lies inside ``[0, length)`` and contains ``[lo, hi]``).
    inputs
        Local nodes whose windows feed this one.
    stride, shift, span, pad_value
        The input window of output window ``[s, s + W)`` is ``[s * stride + shift, s * stride +
        shift + (W - 1) * stride + span)``; positions outside the input read ``pad_value``.
    fn
        Computes the output window from the input windows, (B, C_in, W_in) -> (B, C, W).
    pads
        Reference padding ``(left, right)`` each input needs, set by :func:`analyse`.
    kind
        ``input``, ``conv``, ``pool`` or ``pointwise`` (for messages and cost).
    """

    name: str
    length: int
    lo: np.ndarray
    hi: np.ndarray
    inputs: list[Any] = field(default_factory=list)
    stride: int = 1
    shift: int = 0
    span: int = 1
    pad_value: float = 0.0
    fn: Callable[..., Any] | None = None
    kind: str = "pointwise"
    width: int = 1
    start: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    pads: tuple[int, int] = (0, 0)

    def place(self) -> None:
        """Set ``width`` and ``start`` from ``lo``/``hi``."""
        nonempty = self.hi >= self.lo
        widths = np.where(nonempty, self.hi - self.lo + 1, 0)
        self.width = int(max(1, widths.max(initial=0)))
        self.start = np.clip(np.where(nonempty, self.lo, 0), 0, max(0, self.length - self.width)).astype(
            np.int64
        )


@dataclass
class Plan:
    """What :func:`analyse` found.

    Attributes
    ----------
    usable
        Whether fast ISM applies (at least one convolution or pooling in the local prefix).
    note
        One line for the map's metadata and the log: where the prefix ends, or why it is empty.
    layers
        One line per local node: name, kind, length and mutant window width.
    activation_floats
        Largest activation of one mutant, in floats: a local node's mutant window, a boundary
        node rebuilt at full length, or a node after it; None when not usable.
    flops_per_float
        FLOPs of the convolutions and linear layers run in full per float of the outputs of
        the nodes run in full (as :meth:`veff.models.base.Model.flops_per_float` for a whole
        forward pass); None when there are none.
    """

    usable: bool
    note: str
    layers: list[str] = field(default_factory=list)
    activation_floats: int | None = None
    flops_per_float: float | None = None


_POINTWISE_MODULES = (
    "ReLU",
    "ReLU6",
    "LeakyReLU",
    "ELU",
    "SELU",
    "CELU",
    "GELU",
    "SiLU",
    "Mish",
    "Sigmoid",
    "Tanh",
    "Softplus",
    "Hardtanh",
    "Hardswish",
    "Hardsigmoid",
    "Identity",
    "Dropout",
    "Dropout1d",
    "AlphaDropout",
)
_POINTWISE_METHODS = {"relu", "sigmoid", "tanh", "exp", "abs", "neg", "square", "sqrt"}
_BINARY_METHODS = {"add", "sub", "mul", "div"}
# their in-place forms too: a node that changes its input runs on a copy (_mark_inplace)
_POINTWISE_METHODS |= {f"{m}_" for m in _POINTWISE_METHODS} | {"contiguous", "clone", "float"}
_BINARY_METHODS |= {f"{m}_" for m in _BINARY_METHODS}
_TRANSPOSE_AXES = ({1, 2}, {-1, -2}, {1, -1}, {-2, 2})


_Analysis = tuple[Plan, Any, dict[Any, _Node], dict[Any, Any]]


def _refused(note: str, layers: list[str] | None = None) -> _Analysis:
    return Plan(usable=False, note=note, layers=layers or []), None, {}, {}


def _torch() -> Any:
    import torch

    return torch


def _pointwise_functions() -> set[Any]:
    torch = _torch()
    f = torch.nn.functional
    return {
        torch.relu,
        f.relu,
        f.relu6,
        torch.sigmoid,
        f.sigmoid,
        torch.tanh,
        f.tanh,
        f.gelu,
        f.elu,
        f.selu,
        f.silu,
        f.mish,
        f.leaky_relu,
        f.softplus,
        f.hardtanh,
        torch.exp,
        torch.abs,
        torch.square,
        torch.sqrt,
        operator.neg,
    }


def _binary_functions() -> set[Any]:
    torch = _torch()
    return {operator.add, operator.sub, operator.mul, operator.truediv, torch.add, torch.sub, torch.mul}


def _plain(module: Any, names: tuple[str, ...]) -> bool:
    """Whether ``module`` is one of torch.nn's ``names`` with torch's own ``forward`` and no hooks."""
    nn = _torch().nn
    for name in names:
        cls = getattr(nn, name, None)
        if cls is not None and isinstance(module, cls):
            hooks = module._forward_hooks or module._forward_pre_hooks
            return type(module).forward is cls.forward and not hooks
    return False


class _Tracer:
    """Trace with torch.nn's layers as leaves only when they are plain (own forward, no hooks)."""

    @staticmethod
    def trace(module: Any) -> Any:
        torch = _torch()
        fx = torch.fx

        class Tracer(fx.Tracer):  # type: ignore[name-defined]
            def is_leaf_module(self, m: Any, qualname: str) -> bool:
                if m._forward_hooks or m._forward_pre_hooks:
                    return True  # traced as one opaque call, so it is never treated as local
                return bool(super().is_leaf_module(m, qualname))

        graph = Tracer().trace(module)
        return fx.GraphModule(module, graph)


def _run_node(gm: Any, node: Any, args: Any, kwargs: Any) -> Any:
    if node.meta.get(_INPLACE) and args and _torch().is_tensor(args[0]):
        args = (args[0].clone(), *args[1:])  # the tensor it changes is read by nothing else (_mark_inplace)
    if node.op == "call_module":
        return gm.get_submodule(node.target)(*args, **kwargs)
    if node.op == "call_function":
        return node.target(*args, **kwargs)
    if node.op == "call_method":
        return getattr(args[0], node.target)(*args[1:], **kwargs)
    if node.op == "get_attr":
        obj = gm
        for part in str(node.target).split("."):
            obj = getattr(obj, part)
        return obj
    msg = f"cannot run fx node {node.op}"
    raise ValueError(msg)


_INPLACE = "veff_inplace"
"""fx node meta key: the node changes its first argument in place (run on a copy; :func:`_mark_inplace`)."""
_INPLACE_OPERATORS = {
    operator.iadd,
    operator.isub,
    operator.imul,
    operator.itruediv,
    operator.ifloordiv,
    operator.imod,
    operator.ipow,
    operator.iand,
    operator.ior,
    operator.ixor,
    operator.ilshift,
    operator.irshift,
    operator.imatmul,
    operator.setitem,
}
_ALIAS_MODULES = (
    "Identity",
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "AlphaDropout",
    "FeatureAlphaDropout",
)
"""torch.nn layers that may return their input itself (in eval mode)."""


def _changes_input(gm: Any, node: Any) -> bool:
    """Whether ``node`` writes into its first argument (``relu_``, ``inplace=True``, ``x[i] = v``)."""
    import inspect

    if node.op == "call_module":
        return getattr(gm.get_submodule(node.target), "inplace", False) is True
    if node.op == "call_method":
        name = str(node.target)
        return name.endswith("_") and not name.startswith("_")
    if node.op != "call_function":
        return False
    if node.target in _INPLACE_OPERATORS:
        return True
    name = getattr(node.target, "__name__", "")
    if name.endswith("_") and not name.startswith("_"):
        return True
    try:
        bound = inspect.signature(node.target).bind(*node.args, **node.kwargs)
    except (TypeError, ValueError):  # builtins without a signature, or arguments it does not take
        return False
    return bound.arguments.get("inplace") is True


def _fresh(gm: Any, node: Any) -> bool:
    """Whether ``node`` makes a new tensor (never a view or its input itself)."""
    torch = _torch()
    if node.op == "call_module":
        mod = gm.get_submodule(node.target)
        nn = torch.nn
        aliases = tuple(getattr(nn, n) for n in (*_ALIAS_MODULES, "Flatten", "Unflatten") if hasattr(nn, n))
        hooks = mod._forward_hooks or mod._forward_pre_hooks
        return type(mod).__module__.startswith("torch.nn") and not isinstance(mod, aliases) and not hooks
    known = _pointwise_functions() | _binary_functions()
    if node.op == "call_function":
        return node.target in known or node.target is torch.nn.functional.conv1d
    if node.op == "call_method":
        return node.target in (_POINTWISE_METHODS - {"contiguous", "float"}) | _BINARY_METHODS
    return False


def _same_tensor(gm: Any, node: Any) -> bool:
    """Whether ``node`` may return its first argument itself (an in-place change, Identity, ...)."""
    if node.meta.get(_INPLACE):
        return True
    if node.op == "call_module":
        return _plain(gm.get_submodule(node.target), _ALIAS_MODULES)
    return node.op == "call_method" and node.target in ("contiguous", "float")


def _read_before(gm: Any, tensor: Any, change: Any, order: dict[Any, int]) -> bool:
    """Whether every other node reading ``tensor`` runs before ``change`` and makes a new tensor."""
    return all(
        user is change or (order[user] < order[change] and not user.meta.get(_INPLACE) and _fresh(gm, user))
        for user in tensor.users
    )


def _own_tensor(gm: Any, node: Any, order: dict[Any, int]) -> bool:
    """Whether ``node``'s tensor is no other node's.

    It is a new tensor, or one that earlier nodes changed in place or renamed, with nothing
    reading it after them (:func:`_read_before`).
    """
    while _same_tensor(gm, node):
        parent = node.args[0] if node.args else None
        if not hasattr(parent, "op") or not _read_before(gm, parent, node, order):
            return False
        node = parent
    return _fresh(gm, node)


def _mark_inplace(gm: Any, nodes: list[Any]) -> str:
    """Mark the nodes that change a tensor in place; why fast ISM cannot follow one ("" if it can).

    An in-place change of a tensor ``t`` is followed when ``t`` is no view or other name of a
    tensor read elsewhere (:func:`_own_tensor`), the nodes that read ``t`` before the change make
    new tensors from it, and the change returns ``t``: the nodes that read ``t`` after the
    change then read the change's result instead (the same tensor in the module). Marked nodes
    run on a copy (:func:`_run_node`), so each node sees ``t`` as the module has it when it runs,
    and the reference activations the fast path keeps stay as they were.
    """
    order = {n: k for k, n in enumerate(nodes)}
    rewired = False
    for node in nodes:
        if "out" in node.kwargs:  # torch.add(a, b, out=c) writes into c
            return f"{node.name} writes its result into a tensor given as out="
        if not _changes_input(gm, node):
            continue
        node.meta[_INPLACE] = True
        changed: Any = node.args[0] if node.args else None
        why = f"in-place operation {node.name} changes a tensor that other operations also read"
        if not hasattr(changed, "op") or not _own_tensor(gm, changed, order):
            return why
        after = [u for u in changed.users if order[u] > order[node]]
        if after and node.target is operator.setitem:  # returns nothing to read the change from
            return why
        for user in after:
            user.replace_input_with(changed, node)
            rewired = True
        if not _read_before(gm, changed, node, order):  # a view, or another name, of the tensor
            return why
    if rewired:
        gm.recompile()
    return ""


def _flat_tensors(out: Any) -> list[Any]:
    """The tensors of a module's output (a tensor, or nested tuples/lists/dicts of them)."""
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flat_tensors(o)]
    if isinstance(out, dict):
        return [t for k in sorted(out, key=str) for t in _flat_tensors(out[k])]
    return [out] if _torch().is_tensor(out) else []


def _same_outputs(a: Any, b: Any, rtol: float) -> bool:
    """Whether two outputs have the same tensors up to ``rtol`` of each tensor's largest value."""
    torch = _torch()
    xs, ys = _flat_tensors(a), _flat_tensors(b)
    if len(xs) != len(ys):
        return False
    for x, y in zip(xs, ys, strict=True):
        if x.shape != y.shape or not torch.equal(torch.isfinite(x), torch.isfinite(y)):
            return False
        x, y = torch.nan_to_num(x.double()), torch.nan_to_num(y.double())
        scale = float(y.abs().max()) if y.numel() else 0.0
        if y.numel() and float((x - y).abs().max()) > rtol * max(scale, 1e-30):
            return False
    return True


def _interpret(gm: Any, nodes: list[Any], x: Any) -> Any:
    """The graph's output for ``x``, each node run as the fast path runs it (:func:`_run_node`)."""
    torch = _torch()
    values: dict[Any, Any] = {}
    last = {a: k for k, n in enumerate(nodes) for a in n.all_input_nodes}
    for k, node in enumerate(nodes):
        if node.op == "placeholder":
            values[node] = x
            continue
        args = torch.fx.node.map_arg(node.args, lambda a: values[a])
        if node.op == "output":
            return args[0]
        values[node] = _run_node(gm, node, args, torch.fx.node.map_arg(node.kwargs, lambda a: values[a]))
        for a in node.all_input_nodes:
            if last[a] == k:  # as a forward pass frees it
                values.pop(a, None)
    return None


def _probe(module: Any, gm: Any, nodes: list[Any], layout: Any, length: int, device: Any) -> str:
    """Why the traced graph cannot stand in for ``module`` ("" if it can).

    The graph runs three random sequences (A, B, C) as the fast path runs it (in-place changes
    on copies, :func:`_interpret`), the module B between two others: B's outputs must agree.
    Otherwise either the graph does not reproduce the module, or the module mixes the sequences
    of a batch (batch statistics, ``h + h[:1]``), which would make each mutant depend on the
    others. Same shapes each time, so the same kernels; a module pass on (A, B, C), only when
    they differ, says which.
    """
    torch = _torch()
    codes = np.random.default_rng(0).choice(np.frombuffer(b"ACGT", np.uint8), (5, length))
    x = torch.from_numpy(layout.to_model(one_hot(codes))).to(device)
    try:
        with torch.inference_mode():
            traced = _interpret(gm, nodes, x[:3].clone())
            if _same_outputs(_rows(traced), _rows(module(x[[3, 1, 4]])), PROBE_RTOL):
                return ""
            if not _same_outputs(traced, module(x[:3].clone()), PROBE_RTOL):
                return "torch.fx's graph of the module does not reproduce its output"
    except Exception as exc:  # whatever the module raises: no fast path, naive ISM
        return f"the module cannot be run: {type(exc).__name__}: {str(exc)[:160]}"
    return "the output for a sequence depends on the other sequences of its batch"


def _rows(out: Any) -> list[Any]:
    """The second sequence's row of each output tensor."""
    return [t[1:2] for t in _flat_tensors(out)]


def _interval(
    lo: np.ndarray, hi: np.ndarray, shift: int, stride: int, span: int, length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Output positions of a windowed op that read input positions ``[lo, hi]``.

    Output ``j`` reads inputs ``j * stride + shift .. j * stride + shift + span - 1``; an empty
    result is returned as ``lo > hi``.
    """
    j_lo = -(-(lo - shift - span + 1) // stride)  # ceil
    j_hi = (hi - shift) // stride
    empty = (hi < lo) | (j_hi < j_lo) | (j_hi < 0) | (j_lo > length - 1)
    j_lo, j_hi = np.clip(j_lo, 0, length - 1), np.clip(j_hi, 0, length - 1)
    return np.where(empty, 1, j_lo), np.where(empty, 0, j_hi)


def analyse(
    module: Any, layout: Any, length: int, max_fraction: float = MAX_WINDOW_FRACTION
) -> tuple[Plan, Any, dict[Any, _Node], dict[Any, Any]]:
    """Trace ``module`` and find its local prefix for inputs of ``length`` bases.

    Parameters
    ----------
    module
        A ``torch.nn.Module`` in eval mode.
    layout
        The model's :class:`~veff.models.base.InputLayout` (``4,L`` or ``L,4`` can be traced).
    length
        Input length L.
    max_fraction
        Local layers whose mutant window would be wider than this fraction of their length are
        run in full (1.0 keeps every local layer local).

    Returns
    -------
    tuple
        ``(plan, graph_module, local nodes, constant values)``.
    """
    torch = _torch()
    if isinstance(module, torch.jit.ScriptModule):
        return _refused("TorchScript module: cannot be traced")
    axes = tuple(layout.axes)
    if axes not in (("4", "L"), ("L", "4")):
        return _refused(f"input layout {layout} cannot be traced (4,L or L,4 only)")
    try:
        gm = _Tracer.trace(module)
    except Exception as exc:  # fx raises many kinds of errors on untraceable code
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return _refused(f"torch.fx cannot trace the module: {text[:160]}")
    nodes = list(gm.graph.nodes)
    inputs = [n for n in nodes if n.op == "placeholder"]
    if len(inputs) != 1:
        return _refused(f"the module takes {len(inputs)} inputs; fast ISM needs one")
    device = next(iter(module.parameters()), torch.zeros(0)).device
    unsafe = _mark_inplace(gm, nodes) or _probe(module, gm, nodes, layout, length, device)
    if unsafe:
        return _refused(unsafe)
    # one reference pass for shapes and constant values
    x0 = one_hot(np.frombuffer(b"ACGT" * (length // 4 + 1), np.uint8)[None, :length])
    xm = torch.from_numpy(layout.to_model(x0)).to(device)
    walked = _walk(gm, nodes, xm, length, axes == ("L", "4"), max_fraction)
    if isinstance(walked, str):
        return _refused(walked)
    values, depends, local, why = walked
    consts = {n: v for n, v in values.items() if n not in depends}
    boundary = [n for n in local if any(u not in local for u in n.users)]
    real = [n for n, r in local.items() if r.kind in ("conv", "pool")]
    layers = [f"{r.name}: {r.kind}, length {r.length}, window {r.width}" for r in local.values()]
    stops = sorted({why[u] for n in boundary for u in n.users if u in why})
    if not real:
        reason = stops[0] if stops else "no convolution or pooling follows the input"
        return _refused(f"no local layers to reuse ({reason})", layers)
    if nodes[0] in boundary and local[nodes[0]].kind == "input-nlc":
        return _refused("the (N, L, 4) input is also used untransposed", layers)
    _set_pads(local)
    note = (
        f"receptive-field ISM over {len(local) - 1} local layers ({len(real)} conv/pool), "
        f"ending at {', '.join(r.name for n, r in local.items() if n in boundary)}"
    )
    if stops:
        note += f"; in full from: {'; '.join(stops[:3])}"
    largest, per_float = _full_cost(gm, nodes, values, depends, local, set(boundary))
    plan = Plan(usable=True, note=note, layers=layers, activation_floats=largest, flops_per_float=per_float)
    return plan, gm, local, consts


def _full_cost(
    gm: Any,
    nodes: list[Any],
    values: dict[Any, Any],
    depends: set[Any],
    local: dict[Any, _Node],
    boundary: set[Any],
) -> tuple[int, float | None]:
    """What one mutant costs, from the reference pass's ``values``.

    Returns ``(largest activation in floats, convolution + linear FLOPs per output float)``.
    The activation is the largest of a local node's mutant window, a boundary node (rebuilt at
    full length for each mutant) and any input-dependent node after them; the FLOPs are those
    of the part run in full.
    """
    torch = _torch()
    conv, linear = torch.nn.modules.conv._ConvNd, torch.nn.Linear
    sizes, outputs, flops = [0], 0, 0
    for node in nodes:
        value = values.get(node)
        if node not in depends or not isinstance(value, torch.Tensor):
            continue
        if node in local:  # a mutant's window of it, or all of it when rebuilt for the full part
            channels = int(value.numel()) // max(1, local[node].length)
            sizes.append(int(value.numel()) if node in boundary else channels * local[node].width)
            continue
        n = int(value.numel())
        sizes.append(n)
        outputs += n
        mod = gm.get_submodule(node.target) if node.op == "call_module" else None
        if isinstance(mod, conv) and not mod.transposed:
            flops += 2 * n * (mod.in_channels // mod.groups) * int(np.prod(mod.kernel_size))
        elif isinstance(mod, linear):
            flops += 2 * n * mod.in_features
    return max(sizes), (flops / outputs if flops and outputs else None)


def _walk(
    gm: Any, nodes: list[Any], xm: Any, length: int, nlc: bool, max_fraction: float
) -> tuple[dict[Any, Any], set[Any], dict[Any, _Node], dict[Any, str]] | str:
    """Run the graph once on ``xm``, classifying every node (or return why it cannot run).

    Returns ``(values, input-dependent nodes, local nodes, why each other node is not local)``.
    """
    torch = _torch()
    values: dict[Any, Any] = {}
    depends: set[Any] = set()
    local: dict[Any, _Node] = {}
    why: dict[Any, str] = {}
    pos = np.arange(length, dtype=np.int64)
    pointwise, binary = _pointwise_functions(), _binary_functions()
    with torch.inference_mode():
        for node in nodes:
            if node.op == "placeholder":
                values[node] = xm
                depends.add(node)
                local[node] = _Node(
                    node.name, length, pos.copy(), pos.copy(), kind="input-nlc" if nlc else "input"
                )
                local[node].place()
                continue
            if node.op == "output":
                continue
            args = torch.fx.node.map_arg(node.args, lambda a: values[a])
            kwargs = torch.fx.node.map_arg(node.kwargs, lambda a: values[a])
            try:
                values[node] = _run_node(gm, node, args, kwargs)
            except Exception as exc:  # whatever the module raises: no fast path, naive ISM
                return f"cannot run traced node {node.name}: {exc}"
            ins = [a for a in node.all_input_nodes if a in depends]
            if not ins:
                continue  # a constant
            depends.add(node)
            if not all(a in local for a in ins):
                continue
            rule = _classify(gm, node, ins, local, values, pointwise, binary)
            if isinstance(rule, str):
                why[node] = f"{node.name}: {rule}"
                continue
            reason = _accept(node, rule, values[node], max_fraction)
            if reason:
                why[node] = reason
            else:
                local[node] = rule
    steps = _steps_after_rounding(gm, nodes, values, local)
    return steps or (values, depends, local, why)


def _steps_after_rounding(gm: Any, nodes: list[Any], values: dict[Any, Any], local: dict[Any, _Node]) -> str:
    """Why a rounding difference could change the output by a step ("" if it cannot).

    The local layers the fast path computes on windows may differ from the module's values in
    the last bits, and so may everything computed from them; an operation with jumps (integers,
    booleans, ``round``) on any of those is refused.
    """
    rounded: set[Any] = set()
    for node in nodes:
        if node.op in ("placeholder", "output") or not _flat_tensors(values.get(node)):
            continue  # the input, and shapes and sizes, are exact
        after = any(a in rounded for a in node.all_input_nodes)
        if after and _discrete(gm, node, values[node]):
            return (
                f"{node.name} turns activations into whole numbers, booleans or steps "
                "(float rounding in the fast path could change them)"
            )
        if after or (node in local and not _copies(node) and local[node].fn is not None):
            rounded.add(node)
    return ""


_STEPS = {
    "round",
    "floor",
    "ceil",
    "trunc",
    "fix",
    "sign",
    "sgn",
    "frac",
    "heaviside",
    "floor_divide",
    "floordiv",
    "fmod",
    "remainder",
    "mod",
    "threshold",
    "hardshrink",
}
"""Functions with jumps: a rounding difference in their input can change their output by a step."""
_COPIES = {"transpose", "permute", "contiguous", "clone", "float", "getitem", "flatten", "view", "reshape"}
"""Operations that move values without computing: exact when their inputs are."""


def _op_name(gm: Any, node: Any) -> str:
    if node.op == "call_module":
        return type(gm.get_submodule(node.target)).__name__.lower()
    return str(getattr(node.target, "__name__", node.target)).strip("_")


def _discrete(gm: Any, node: Any, value: Any) -> bool:
    """Whether ``node`` makes integers or booleans (argmax, comparisons), or has jumps (round)."""
    torch = _torch()
    if torch.is_tensor(value) and not (value.is_floating_point() or value.is_complex()):
        return True
    if node.kwargs.get("rounding_mode") is not None:  # x.div(y, rounding_mode="floor")
        return True
    return node.op in ("call_module", "call_function", "call_method") and _op_name(gm, node) in _STEPS


def _copies(node: Any) -> bool:
    return node.op in ("call_function", "call_method") and _op_name(None, node) in _COPIES


def _accept(node: Any, rule: _Node, out: Any, max_fraction: float) -> str:
    """Why ``rule`` cannot make ``node`` local ("" when it can; places the rule's window)."""
    torch = _torch()
    if (
        not torch.is_tensor(out)
        or out.dim() != 3
        or out.shape[2] != rule.length
        or not out.is_floating_point()
    ):
        return f"{node.name}: output shape {tuple(getattr(out, 'shape', ()))} not (N, C, L)"
    rule.place()
    if rule.width > max_fraction * rule.length:
        return f"{node.name}: a base change reaches {rule.width} of its {rule.length} positions (run in full)"
    return ""


def _classify(
    gm: Any,
    node: Any,
    ins: list[Any],
    local: dict[Any, _Node],
    values: dict[Any, Any],
    pointwise: set[Any],
    binary: set[Any],
) -> _Node | str:
    """The local rule of ``node`` (all its input-dependent arguments are local), or why there is none."""
    torch = _torch()
    first = local[ins[0]]
    if any(local[a].kind == "input-nlc" for a in ins):
        if len(ins) == 1 and _is_transpose(node):
            return _Node(node.name, first.length, first.lo, first.hi, inputs=[ins[0]], fn=lambda x: x)
        return "the (N, L, 4) input is used before a transpose to (N, 4, L)"
    if node.op == "call_module":
        return _classify_module(gm, node, first, ins)
    if node.op == "call_function":
        target = node.target
        if target is torch.nn.functional.dropout:
            training = node.kwargs.get("training", node.args[2] if len(node.args) > 2 else True)
            if training is False:
                return _pointwise_call(gm, node, first, ins, values)
            return "dropout in training mode"
        if target in pointwise:
            return _pointwise_call(gm, node, first, ins, values)
        if target in binary:
            return _binary(gm, node, ins, local, values)
        if target in (
            torch.cat,
            getattr(torch, "concat", torch.cat),
            getattr(torch, "concatenate", torch.cat),
        ):
            return _concat(gm, node, ins, local, values)
        if target is operator.getitem:
            return _crop(node, first, ins[0])
        return f"function {getattr(target, '__name__', target)} is not a known local operation"
    if node.op == "call_method":
        if node.target in _POINTWISE_METHODS:
            return _pointwise_call(gm, node, first, ins, values)
        if node.target in _BINARY_METHODS:
            return _binary(gm, node, ins, local, values)
        return f"method .{node.target}() is not a known local operation"
    return f"{node.op} is not a local operation"


def _classify_module(gm: Any, node: Any, first: _Node, ins: list[Any]) -> _Node | str:
    """The local rule of a call of a torch.nn layer, or why there is none."""
    mod = gm.get_submodule(node.target)
    if len(node.args) != 1 or node.kwargs:
        return f"module {type(mod).__name__} called with extra arguments"
    if _plain(mod, ("Conv1d",)):
        return _conv_rule(node, mod, first, ins[0])
    if _plain(mod, ("MaxPool1d", "AvgPool1d")):
        return _pool_rule(node, mod, first, ins[0])
    if _plain(mod, ("BatchNorm1d",)):
        if mod.training or mod.running_mean is None:
            return "BatchNorm1d in training mode or without running statistics"
        return _pointwise(node, first, ins, lambda x: mod(x))
    if _plain(mod, _POINTWISE_MODULES):
        if mod.training and "Dropout" in type(mod).__name__:
            return f"{type(mod).__name__} in training mode"
        return _pointwise(node, first, ins, lambda x: _run_node(gm, node, (x,), {}))
    return f"module {type(mod).__name__} is not a known local layer"


def _is_transpose(node: Any) -> bool:
    torch = _torch()
    args = list(node.args[1:])
    if (node.op == "call_method" and node.target == "transpose") or (
        node.op == "call_function" and node.target is torch.transpose
    ):
        return len(args) == 2 and set(args) in _TRANSPOSE_AXES
    if (node.op == "call_method" and node.target == "permute") or (
        node.op == "call_function" and node.target is torch.permute
    ):
        dims = tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else tuple(args)
        return dims in ((0, 2, 1), (0, -1, -2), (0, -1, 1))
    return False


def _same_padding(mod: Any) -> tuple[int, int]:
    total = mod.dilation[0] * (mod.kernel_size[0] - 1)
    return total // 2, total - total // 2


def _conv_rule(node: Any, mod: Any, src: _Node, arg: Any) -> _Node | str:
    torch = _torch()
    if mod.padding_mode != "zeros":
        return f"Conv1d with padding_mode={mod.padding_mode!r}"
    k, d, s = mod.kernel_size[0], mod.dilation[0], mod.stride[0]
    if isinstance(mod.padding, str):  # "same" or "valid"
        left, right = _same_padding(mod) if mod.padding == "same" else (0, 0)
    else:
        left = right = mod.padding[0]
    span = d * (k - 1) + 1
    length = (src.length + left + right - span) // s + 1
    lo, hi = _interval(src.lo, src.hi, -left, s, span, length)
    weight, bias, groups = mod.weight, mod.bias, mod.groups

    def fn(x: Any) -> Any:
        return torch.nn.functional.conv1d(x, weight, bias, s, 0, d, groups)

    return _Node(node.name, length, lo, hi, [arg], s, -left, span, 0.0, fn, "conv")


def _pool_rule(node: Any, mod: Any, src: _Node, arg: Any) -> _Node | str:
    torch = _torch()
    f = torch.nn.functional
    k = mod.kernel_size if isinstance(mod.kernel_size, int) else mod.kernel_size[0]
    s = mod.stride if isinstance(mod.stride, int) else mod.stride[0]
    p = mod.padding if isinstance(mod.padding, int) else mod.padding[0]
    if mod.ceil_mode:
        return f"{type(mod).__name__} with ceil_mode"
    if isinstance(mod, torch.nn.MaxPool1d):
        if mod.return_indices:
            return "MaxPool1d returning indices"
        d = mod.dilation if isinstance(mod.dilation, int) else mod.dilation[0]
        pad_value = float("-inf")

        def fn(x: Any) -> Any:
            return f.max_pool1d(x, k, s, 0, d)

    else:
        if p and not mod.count_include_pad:
            return "AvgPool1d with padding and count_include_pad=False"
        d, pad_value = 1, 0.0

        def fn(x: Any) -> Any:
            return f.avg_pool1d(x, k, s, 0)

    span = d * (k - 1) + 1
    length = (src.length + 2 * p - span) // s + 1
    lo, hi = _interval(src.lo, src.hi, -p, s, span, length)
    return _Node(node.name, length, lo, hi, [arg], s, -p, span, pad_value, fn, "pool")


def _pointwise(node: Any, src: _Node, ins: list[Any], fn: Callable[..., Any]) -> _Node:
    return _Node(node.name, src.length, src.lo, src.hi, list(ins[:1]), fn=fn)


def _scalar_like(value: Any) -> bool:
    """A constant that broadcasts along the length axis unchanged (a number, or a last axis of 1)."""
    torch = _torch()
    if isinstance(value, (int, float, bool)):
        return True
    return bool(torch.is_tensor(value) and (value.dim() == 0 or (value.dim() <= 3 and value.shape[-1] == 1)))


def _bound(gm: Any, node: Any, ins: list[Any], values: dict[Any, Any]) -> Callable[..., Any]:
    """Call ``node`` with its local inputs replaced by the window tensors given, in ``ins`` order."""
    torch = _torch()
    consts = {a: values[a] for a in node.all_input_nodes if a not in ins}

    def fn(*xs: Any) -> Any:
        got = dict(zip(ins, xs, strict=True))
        args = torch.fx.node.map_arg(node.args, lambda a: got[a] if a in got else consts[a])
        kwargs = torch.fx.node.map_arg(node.kwargs, lambda a: got[a] if a in got else consts[a])
        return _run_node(gm, node, args, kwargs)

    return fn


def _pointwise_call(gm: Any, node: Any, src: _Node, ins: list[Any], values: dict[Any, Any]) -> _Node | str:
    if len(ins) != 1:
        return "element-wise operation of several inputs"
    others = [values[a] for a in node.all_input_nodes if a not in ins]
    flat = [a for a in list(node.args[1:]) + list(node.kwargs.values()) if not hasattr(a, "op")]
    if not all(_scalar_like(v) for v in others + [a for a in flat if not isinstance(a, str)]):
        return f"{node.name} mixes the sequence with a tensor that varies along it"
    return _pointwise(node, src, ins, _bound(gm, node, ins, values))


def _binary(
    gm: Any, node: Any, ins: list[Any], local: dict[Any, _Node], values: dict[Any, Any]
) -> _Node | str:
    others = [values[a] for a in node.all_input_nodes if a not in ins]
    plain = [a for a in node.args if not hasattr(a, "op")]
    if not all(_scalar_like(v) for v in others + plain):
        return f"{node.name} combines the sequence with a tensor that varies along it"
    lengths = {local[a].length for a in ins}
    if len(lengths) != 1:
        return f"{node.name} combines branches of different lengths"
    lo, hi = _hull(ins, local)
    return _Node(node.name, lengths.pop(), lo, hi, list(ins), fn=_bound(gm, node, ins, values))


def _hull(ins: list[Any], local: dict[Any, _Node]) -> tuple[np.ndarray, np.ndarray]:
    """Interval hull of the inputs' intervals, treating empty intervals as absent."""
    los = [np.where(local[a].hi >= local[a].lo, local[a].lo, np.iinfo(np.int64).max) for a in ins]
    his = [np.where(local[a].hi >= local[a].lo, local[a].hi, -1) for a in ins]
    lo, hi = np.minimum.reduce(los), np.maximum.reduce(his)
    empty = hi < 0
    return np.where(empty, 1, lo), np.where(empty, 0, hi)


def _concat(
    gm: Any, node: Any, ins: list[Any], local: dict[Any, _Node], values: dict[Any, Any]
) -> _Node | str:
    tensors = node.args[0] if node.args else node.kwargs.get("tensors")
    dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
    if not isinstance(tensors, (list, tuple)) or not all(t in ins for t in tensors):
        return "concatenation with a tensor that is not a local layer"
    if dim not in (1, -2):
        return f"concatenation along dim {dim} (only channels, dim 1, keep locality)"
    order = list(dict.fromkeys(tensors))
    lengths = {local[a].length for a in order}
    if len(lengths) != 1:
        return "concatenation of branches of different lengths"
    lo, hi = _hull(order, local)
    return _Node(node.name, lengths.pop(), lo, hi, order, fn=_bound(gm, node, order, values))


def _crop(node: Any, src: _Node, arg: Any) -> _Node | str:
    index = node.args[1]
    if isinstance(index, slice):
        index = (index,)
    if not isinstance(index, tuple):
        return "indexing that is not a crop of the length axis"
    items = list(index)
    if items and items[0] is Ellipsis:
        items = [slice(None)] * (3 - len(items) + 1) + items[1:]
    while len(items) < 3:
        items.append(slice(None))
    full = slice(None)
    if len(items) != 3 or items[0] != full or not all(isinstance(i, slice) for i in items[1:]):
        return "indexing that is not a crop of the channel or length axis"
    cut = items[2]
    bounds = (cut.start, cut.stop, cut.step, items[1].start, items[1].stop, items[1].step)
    if cut.step not in (None, 1) or any(hasattr(v, "op") for v in bounds):
        return "a crop with a step or a computed bound"
    channels = items[1]
    a, b, _ = cut.indices(src.length)
    length = max(0, b - a)
    if length == 0:
        return "a crop to zero positions"
    lo, hi = src.lo - a, src.hi - a
    empty = (hi < 0) | (lo > length - 1) | (src.hi < src.lo)
    lo, hi = np.clip(lo, 0, length - 1), np.clip(hi, 0, length - 1)
    return _Node(
        node.name,
        length,
        np.where(empty, 1, lo),
        np.where(empty, 0, hi),
        [arg],
        1,
        a,
        1,
        0.0,
        lambda x: x[:, channels],
        "crop",
    )


def _set_pads(local: dict[Any, _Node]) -> None:
    """Record how much reference padding each local node's inputs need."""
    for r in local.values():
        if not r.inputs:
            continue
        first = r.start * r.stride + r.shift
        last = first + (r.width - 1) * r.stride + r.span
        r.pads = (int(max(0, -first.min())), int(max(0, last.max() - local_length(local, r.inputs[0]))))


def _window_modes(local: dict[Any, _Node]) -> dict[tuple[Any, Any], str]:
    """For each (local node, input): how the input window relates to the one the node reads.

    ``same``: identical for every position (the input's mutant window is used as it is);
    ``inside``: the input's window always lies inside the span read; ``general`` otherwise.
    """
    modes = {}
    for node, r in local.items():
        first = r.start * r.stride + r.shift
        w_in = (r.width - 1) * r.stride + r.span
        for m in r.inputs:
            sm, wm = local[m].start, local[m].width
            if wm == w_in and np.array_equal(sm, first):
                modes[node, m] = "same"
            elif bool(np.all(sm >= first)) and bool(np.all(sm + wm <= first + w_in)):
                modes[node, m] = "inside"
            else:
                modes[node, m] = "general"
    return modes


def local_length(local: dict[Any, _Node], node: Any) -> int:
    """Length of a local node's output."""
    return local[node].length


class FastISM:
    """Predict single-base mutants of one window at a time with receptive-field reuse.

    The PyTorch adapter's :class:`~veff.models.base.MutantEngine`
    (:meth:`veff.models.torch.TorchModel.mutant_engine`).

    Parameters
    ----------
    model
        A :class:`veff.models.torch.TorchModel` (float32).
    length
        Window length L.
    max_fraction
        See :func:`analyse`.

    Attributes
    ----------
    plan
        What the analysis found (:class:`Plan`); ``plan.usable`` is False when fast ISM does
        not apply, and ``plan.note`` says why.
    usable, note, layers, activation_floats, flops_per_float
        The plan's, as the :class:`~veff.models.base.MutantEngine` protocol names them.
    """

    def __init__(self, model: Any, length: int, *, max_fraction: float = MAX_WINDOW_FRACTION) -> None:
        self.model = model
        self.length = int(length)
        self.device = getattr(model, "device", "cpu")
        if getattr(model, "precision", "float32") != "float32":
            self.plan = Plan(usable=False, note=f"precision {model.precision}: fast ISM is float32 only")
            return
        module = getattr(model, "module", None)
        if module is None:
            self.plan = Plan(usable=False, note="not a PyTorch module")
            return
        try:
            self.plan, self._gm, self._local, self._consts = analyse(
                module, model.layout, self.length, max_fraction
            )
        except Exception as exc:  # an analysis failure must never stop a map: naive ISM is exact
            self.plan = Plan(usable=False, note=f"analysis failed: {type(exc).__name__}: {exc}")
        if not self.plan.usable:
            return
        torch = _torch()
        nodes = list(self._gm.graph.nodes)
        self._input = nodes[0]
        self._order = [n for n in nodes if n in self._local and n is not self._input]
        steps = [(n, self._local[n], self._local[n].fn) for n in self._order]
        missing = [n.name for n, _, fn in steps if fn is None]
        if missing:  # only the input has no computation; refuse rather than fail per mutant
            self.plan = Plan(usable=False, note=f"local layers without a computation: {', '.join(missing)}")
            return
        self._steps = [(n, r, fn) for n, r, fn in steps if fn is not None]
        self._boundary = {n for n in self._local if any(u not in self._local for u in n.users)}
        self._suffix = [n for n in nodes if n not in self._local and n not in self._consts]
        last_use = {a: k for k, n in enumerate(self._suffix) for a in n.all_input_nodes}
        self._frees: list[list[Any]] = [[] for _ in self._suffix]  # values no later node reads
        for a, k in last_use.items():
            self._frees[k].append(a)
        dev = self.device
        self._starts = {n: torch.as_tensor(r.start, device=dev) for n, r in self._local.items()}
        self._eye = torch.eye(4, device=dev)
        self._modes = _window_modes(self._local)
        self._ref: dict[Any, Any] = {}
        self._padded: dict[tuple[Any, int, int, float], Any] = {}

    @property
    def usable(self) -> bool:
        """Whether the fast path applies to this model."""
        return self.plan.usable

    @property
    def note(self) -> str:
        """Where the local prefix ends, or why there is none."""
        return self.plan.note

    @property
    def layers(self) -> list[str]:
        """One line per local layer: name, kind, length and mutant window width."""
        return self.plan.layers

    @property
    def activation_floats(self) -> int | None:
        """Largest activation (floats) of one mutant: a local window or a node run in full."""
        return self.plan.activation_floats

    @property
    def flops_per_float(self) -> float | None:
        """Convolution and linear FLOPs run in full per float of those nodes' outputs."""
        return self.plan.flops_per_float

    def _prepare(self, ref_codes: np.ndarray) -> None:
        """Run the reference window through the graph and keep every local node's activation."""
        torch = _torch()
        x = one_hot(ref_codes[None, :], self.model.n_value)
        xm = torch.from_numpy(self.model.layout.to_model(x)).to(self.device)
        values: dict[Any, Any] = {self._input: xm}
        for node in self._order:
            if node in self._local:
                args = torch.fx.node.map_arg(
                    node.args, lambda a: values[a] if a in values else self._consts[a]
                )
                kwargs = torch.fx.node.map_arg(
                    node.kwargs, lambda a: values[a] if a in values else self._consts[a]
                )
                values[node] = _run_node(self._gm, node, args, kwargs)
        if self._local[self._input].kind == "input-nlc":
            values[self._input] = xm.transpose(1, 2)
        self._ref = values
        self._padded = {}

    def _padded_ref(self, node: Any, left: int, right: int, value: float) -> Any:
        """The reference activation of ``node`` padded with ``value``, positions first: (L + pads, C)."""
        key = (node, left, right, value)
        got = self._padded.get(key)
        if got is None:
            ref = self._ref[node][0]
            if left or right:
                ref = _torch().nn.functional.pad(ref, (left, right), value=value)
            got = self._padded[key] = ref.t().contiguous()
        return got

    def _materialize(self, consumer: Any, node: Any, start: Any, width: int, pos: Any, win: dict) -> Any:
        """Values of ``node`` on ``[start, start + width)`` per mutant: (B, C, width).

        The reference is read where the mutant window of ``node`` does not reach.
        """
        torch = _torch()
        mode = self._modes[consumer, node]
        mutant = win[node]
        if mode == "same":
            return mutant
        r = self._local[consumer]
        ref = self._padded_ref(node, r.pads[0], r.pads[1], r.pad_value)  # (L + pads, C)
        out = ref.unfold(0, width, 1)[start + r.pads[0]]  # (B, C, width), contiguous
        b, c, w_in = mutant.shape
        rel = (self._starts[node][pos] - start)[:, None] + torch.arange(w_in, device=self.device)[None, :]
        if mode == "inside":
            out.scatter_(2, rel[:, None, :].expand(b, c, w_in), mutant)
            return out
        out = torch.cat([out, out.new_zeros(b, c, 1)], dim=2)  # a spare column for the cut-off part
        rel = torch.where((rel >= 0) & (rel < width), rel, width)
        out.scatter_(2, rel[:, None, :].expand(b, c, w_in), mutant)
        return out[:, :, :width]

    def _full(self, node: Any, pos: Any, win: dict) -> Any:
        torch = _torch()
        ref = self._ref[node]
        b = len(pos)
        mutant = win[node]
        out = ref.expand(b, -1, -1).clone()
        idx = self._starts[node][pos][:, None] + torch.arange(mutant.shape[2], device=self.device)[None, :]
        out.scatter_(2, idx[:, None, :].expand(b, ref.shape[1], mutant.shape[2]), mutant)
        if node is self._input and self._local[node].kind == "input-nlc":
            out = out.transpose(1, 2)
        return out

    def predict(self, ref_codes: np.ndarray, pos: np.ndarray, base: np.ndarray, batch_size: int) -> list[Any]:
        """Predict the mutants of one window (see :meth:`veff.models.base.MutantEngine.predict`).

        ``ref_codes`` (L,) is the window as the model sees it, ``pos``/``base`` (M,) the
        mutations; the result is one raw output per batch of ``batch_size`` mutants, as
        :meth:`~veff.models.torch.TorchModel.predict` returns them.
        """
        kernels = self.model.kernels() if hasattr(self.model, "kernels") else nullcontext()
        with kernels:  # the model's CPU kernels (wide convolutions), as in its forward
            return self._predict(ref_codes, pos, base, batch_size)

    def _predict(self, ref_codes: np.ndarray, pos: np.ndarray, base: np.ndarray, batch: int) -> list[Any]:
        """:meth:`predict` inside the model's kernel context."""
        torch = _torch()
        self._prepare(ref_codes)
        out = []
        with torch.inference_mode():
            pos_all = torch.as_tensor(np.asarray(pos, np.int64), device=self.device)
            base_all = torch.as_tensor(np.asarray(base, np.int64), device=self.device)
            for lo in range(0, len(pos_all), batch):
                p, b = pos_all[lo : lo + batch], base_all[lo : lo + batch]
                win: dict[Any, Any] = {self._input: self._eye[b][:, :, None]}
                for node, r, fn in self._steps:
                    s = self._starts[node][p] * r.stride + r.shift
                    w_in = (r.width - 1) * r.stride + r.span
                    win[node] = fn(*[self._materialize(node, m, s, w_in, p, win) for m in r.inputs])
                out.append(self._finish(p, win))
        return out

    def _finish(self, pos: Any, win: dict) -> Any:
        """Run the full part of the graph on the boundary activations of a batch."""
        torch = _torch()
        env: dict[Any, Any] = {n: self._full(n, pos, win) for n in self._boundary}
        result: Any = None
        for node, frees in zip(self._suffix, self._frees, strict=True):
            if node.op == "output":
                result = torch.fx.node.map_arg(
                    node.args[0], lambda a: env[a] if a in env else self._consts[a]
                )
                break
            args = torch.fx.node.map_arg(node.args, lambda a: env[a] if a in env else self._consts[a])
            kwargs = torch.fx.node.map_arg(node.kwargs, lambda a: env[a] if a in env else self._consts[a])
            env[node] = _run_node(self._gm, node, args, kwargs)
            for a in frees:  # as a forward pass frees them: the batch's activations stay in cache
                env.pop(a, None)
        return to_numpy(result)
