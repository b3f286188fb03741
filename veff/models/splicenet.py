"""SpliceAI-class Keras networks run in PyTorch, with the alt windows computed incrementally.

SpliceAI's ``.h5`` files are graphs of ``Conv1D`` (``same`` or 1x1 ``valid``), ``BatchNormalization``,
``Activation``, ``Add`` and one ``Cropping1D``. :class:`SpliceNet` reads such a graph and its
weights with h5py (no TensorFlow) and evaluates it in *absolute coordinates*: every node is
computed only on the positions that the outputs need (a ``same`` convolution is a valid
convolution over a wider input), so no zero padding ever reaches an output, the outputs equal
Keras's, and the last layers, whose receptive fields are wide, are computed on a fraction of the
window.

**Incremental alt windows** (:meth:`SpliceNet.predict_edits`). An alt window is its reference
window shifted, with a few bases changed (a SNV) or a span replaced (an indel). At a node whose
receptive half-width up to it is ``b``, the alt activations differ from the (shifted) reference
activations only within ``b`` of the changed span; and only positions within ``a`` (the half-width
from the node to the outputs) of the needed outputs matter. So each node of the alt pass is
computed on ``changed span +- b`` intersected with ``outputs +- a`` and takes every other value
from the reference pass. For SpliceAI-10k and ``D = 50`` that is about a sixth of a full pass per
alt window; reference windows are computed in full (and shared, see :mod:`veff.variants.splice`).

An :class:`SpliceNetEnsemble` runs several such graphs (the five SpliceAI networks) on the same
batches and averages their outputs in float32.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from veff.errors import ModelError
from veff.models.base import Model
from veff.variants.sequences import one_hot

__all__ = ["SpliceNet", "SpliceNetEnsemble", "is_splicenet_file"]

_MAX_BYTES = 256 * 2**20
# alt windows computed together: each holds up to ~5,000 positions x 32 channels per live node
# (about 0.6 MB), so 32 of them keep a work item's alt activations near 100 MB
_ALT_BATCH = 32
_SUPPORTED = frozenset({"InputLayer", "Conv1D", "BatchNormalization", "Activation", "Add", "Cropping1D"})


@dataclass
class _Node:
    name: str
    kind: str
    inputs: list[int]
    ext: int = 0  # half-width of the node's own kernel
    weight: Any = None  # conv kernel (K, C_in, C_out) / BN scale (C,); torch tensors once loaded
    bias: Any = None  # conv bias (C_out,) / BN shift (C,)
    dilation: int = 1
    activation: str = "linear"
    before: int = 0  # receptive half-width from the input to this node
    after: int = 0  # half-width from this node to the outputs
    stored: bool = True  # kept from the reference pass (convs, adds, input)


def _open(path: Path) -> Any:
    """The ``.h5`` file opened from an in-memory copy of its bytes.

    Keras may hold the same file open in this process (the file handle of another HDF5 file
    object); closing a second handle of it crashed HDF5 in the test suite, and an in-memory image
    shares nothing with other opens. SpliceAI's files are 3.5 MB.
    """
    import io

    import h5py

    return h5py.File(io.BytesIO(path.read_bytes()), "r")


def _config(path: Path) -> dict[str, Any] | None:
    try:
        with _open(path) as f:
            raw = f.attrs.get("model_config")
    except OSError:
        return None
    if raw is None:
        return None
    cfg = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    return cfg if isinstance(cfg, dict) else None


def is_splicenet_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a Keras ``.h5`` graph of only the layers :class:`SpliceNet` runs."""
    p = Path(path)
    # SpliceAI-class graphs are a few MB; a big .h5 is another kind of model (and is not read here)
    if p.suffix.lower() != ".h5" or not p.is_file() or p.stat().st_size > _MAX_BYTES:
        return False
    cfg = _config(p)
    if cfg is None or cfg.get("class_name") not in ("Model", "Functional"):
        return False
    layers = cfg.get("config", {}).get("layers", [])
    if not layers or any(lay.get("class_name") not in _SUPPORTED for lay in layers):
        return False
    crops = [lay for lay in layers if lay["class_name"] == "Cropping1D"]
    return len(crops) == 1


def _weights(f: Any, name: str) -> dict[str, np.ndarray]:
    grp = f["model_weights"][name]
    out: dict[str, np.ndarray] = {}

    def visit(key: str, obj: Any) -> None:
        if hasattr(obj, "shape"):
            out[key.rsplit("/", 1)[-1].split(":")[0]] = np.asarray(obj, dtype=np.float32)

    grp.visititems(visit)
    return out


def _read_node(f: Any, lay: dict[str, Any], index: dict[str, int], path: Path) -> _Node:
    """One graph node with its numpy weights (BatchNormalization as a scale and a shift)."""
    kind, c = lay["class_name"], lay["config"]
    inbound = lay.get("inbound_nodes") or []
    node = _Node(lay["name"], kind, [index[i[0]] for i in inbound[0]] if inbound else [])
    if kind == "Conv1D":
        w = _weights(f, lay["name"])
        k = int(c["kernel_size"][0])
        d = int(c.get("dilation_rate", [1])[0])
        if k % 2 == 0 or (c.get("padding") != "same" and k != 1):
            msg = f"{path}: layer {lay['name']}: only odd 'same' or 1x1 convolutions run here"
            raise ModelError(msg)
        node.ext = (k - 1) // 2 * d
        node.dilation = d
        node.weight = w["kernel"]
        node.bias = w.get("bias")
        node.activation = c.get("activation", "linear")
    elif kind == "BatchNormalization":
        w = _weights(f, lay["name"])
        scale = w.get("gamma", np.ones_like(w["moving_mean"])) / np.sqrt(
            w["moving_variance"] + float(c.get("epsilon", 1e-3))
        )
        shift = w.get("beta", np.zeros_like(w["moving_mean"])) - w["moving_mean"] * scale
        node.weight = scale.astype(np.float32)
        node.bias = shift.astype(np.float32)
        node.stored = False
    elif kind == "Activation":
        node.activation = c["activation"]
        node.stored = False
    elif kind == "Cropping1D":
        node.stored = False
    return node


class SpliceNet:
    """One SpliceAI-class Keras graph evaluated in PyTorch (see the module docstring).

    Parameters
    ----------
    path
        The ``.h5`` file (Keras 2 full model).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        cfg = _config(self.path)
        if cfg is None or not is_splicenet_file(self.path):
            msg = f"{self.path}: not a SpliceAI-class Keras graph"
            raise ModelError(msg)
        layers = cfg["config"]["layers"]
        index = {lay["name"]: k for k, lay in enumerate(layers)}
        self.nodes: list[_Node] = []
        crop = (0, 0)
        with _open(self.path) as f:
            for lay in layers:
                node = _read_node(f, lay, index, self.path)
                if node.kind == "Cropping1D":
                    cr = lay["config"]["cropping"]
                    crop = (int(cr[0]), int(cr[1])) if isinstance(cr, (list, tuple)) else (int(cr), int(cr))
                self.nodes.append(node)
        if crop[0] != crop[1]:
            msg = f"{self.path}: uneven cropping {crop}"
            raise ModelError(msg)
        self.flank = crop[0]
        self.nodes = _fuse(self.nodes)
        for n in self.nodes:
            _to_torch(n)
        for n in self.nodes:
            n.before = max((self.nodes[i].before for i in n.inputs), default=0) + n.ext
        consumers: dict[int, list[int]] = {}
        for k, n in enumerate(self.nodes):
            for i in n.inputs:
                consumers.setdefault(i, []).append(k)
        self.output = len(self.nodes) - 1
        if consumers.get(self.output):
            msg = f"{self.path}: the last layer is not the output"
            raise ModelError(msg)
        for k in range(len(self.nodes) - 1, -1, -1):
            users = consumers.get(k, [])
            self.nodes[k].after = max((self.nodes[u].after + self.nodes[u].ext for u in users), default=0)
        self.consumers = consumers
        # the last computed node of an alt pass that reads a stored node's alt values (through
        # any chain of element-wise nodes, which are recomputed on demand): they are dropped then
        self.last_reader: dict[int, int] = {}
        for k, n in enumerate(self.nodes):
            if n.stored or k == self.output:
                for i in self._stored_inputs(k):
                    self.last_reader[i] = k

    def _stored_inputs(self, k: int) -> set[int]:
        """The stored nodes whose values node ``k``'s inputs are made of."""
        out: set[int] = set()
        todo = list(self.nodes[k].inputs)
        while todo:
            i = todo.pop()
            if self.nodes[i].stored or i == self.output:
                out.add(i)
            else:
                todo.extend(self.nodes[i].inputs)
        return out

    # -- one node on a range ----------------------------------------------------------------

    def _apply(self, node: _Node, args: list[Any]) -> Any:
        import torch
        import torch.nn.functional as F

        if node.kind == "Conv1D":
            # tensors are (N, W, C); a (1, K) conv2d on channels-last memory (the same bytes) is
            # several times faster on CPU than conv1d
            x = args[0].permute(0, 2, 1).unsqueeze(2).contiguous(memory_format=torch.channels_last)
            y = F.conv2d(x, node.weight, node.bias, dilation=(1, node.dilation)).squeeze(2).permute(0, 2, 1)
            return _activate(y, node.activation)
        if node.kind == "BatchNormalization":
            return _activate(torch.addcmul(node.bias, args[0], node.weight), node.activation)
        if node.kind == "Activation":
            return _activate(args[0], node.activation, inplace=False)
        if node.kind == "Add":
            out = args[0]
            for a in args[1:]:
                out = out + a
            return out
        if node.kind == "Cropping1D":
            return args[0]
        msg = f"unsupported layer {node.kind}"  # pragma: no cover - checked on load
        raise ModelError(msg)

    def forward_ref(self, x: Any, outputs: int) -> dict[int, tuple[int, Any]]:
        """Evaluate every stored node of windows ``x`` (N, L, 4) on the positions the outputs need.

        Returns
        -------
        dict
            node index -> (first absolute position, tensor (N, W, C)).
        """
        lo, hi = self.flank, self.flank + outputs
        cache: dict[int, tuple[int, Any]] = {}
        lazy: dict[int, tuple[int, Any]] = {}
        for k, n in enumerate(self.nodes):
            a, b = lo - n.after, hi + n.after
            if n.kind == "InputLayer":
                val = x[:, a:b]
            else:
                args = []
                for i in n.inputs:
                    start, t = cache[i] if i in cache else lazy[i]
                    s0 = a - n.ext - start
                    args.append(t[:, s0 : s0 + (b - a) + 2 * n.ext])
                val = self._apply(n, args)
            (cache if n.stored or k == self.output else lazy)[k] = (a, val)
            for i in n.inputs:  # drop lazy values once their last consumer ran
                if i in lazy and all(u <= k for u in self.consumers.get(i, [])):
                    del lazy[i]
        return cache

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Outputs of one-hot windows (N, L, 4) as Keras gives them: (N, L - 2 * flank, C)."""
        import torch

        length = x.shape[1]
        outputs = length - 2 * self.flank
        if outputs < 1:
            msg = f"{self.path}: windows must be longer than {2 * self.flank}, got {length}"
            raise ModelError(msg)
        with torch.inference_mode():
            cache = self.forward_ref(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), outputs)
            return cache[self.output][1].contiguous().numpy()

    def predict_edits(
        self,
        alt: Any,
        edits: np.ndarray,
        ref_cache: dict[int, tuple[int, Any]],
    ) -> Any:
        """Outputs of alt windows computed from their reference windows' activations.

        Parameters
        ----------
        alt
            float32 tensor (n, L, 4): the alt windows (model orientation).
        edits
            int64 (n, 7): per alt window ``ref row, c0, c1, s1, s2, out_lo, out_hi``: the changed
            span ``[c0, c1)``, the shift to the reference window before it (``s1``) and after it
            (``s2``), and the absolute input positions ``[out_lo, out_hi)`` of the outputs needed.
            All rows share ``c0, c1, out_lo, out_hi``.
        ref_cache
            :meth:`forward_ref` of the reference windows.

        Returns
        -------
        torch.Tensor
            (n, out_hi - out_lo, C): the outputs at ``[out_lo, out_hi)``.
        """
        import torch

        rows = torch.from_numpy(edits[:, 0])
        c0, c1, out_lo, out_hi = (int(v) for v in edits[0, [1, 2, 5, 6]])
        s1 = torch.from_numpy(edits[:, 3])[:, None]
        s2 = torch.from_numpy(edits[:, 4])[:, None]
        zones: dict[int, tuple[int, int]] = {}
        alt_vals: dict[int, Any] = {}

        def value(i: int, a: int, b: int) -> Any:
            """Alt values of node ``i`` at absolute positions [a, b): (n, b - a, C)."""
            node = self.nodes[i]
            if node.kind == "InputLayer":
                return alt[:, a:b]
            if not node.stored and i != self.output:
                args = [value(j, a - node.ext, b + node.ext) for j in node.inputs]
                return self._apply(node, args)
            start, t = ref_cache[i]

            def from_ref(p0: int, p1: int) -> Any:
                """The (shifted) reference values at [p0, p1), where the alt equals the reference."""
                pos = torch.arange(p0, p1)[None, :]
                mapped = (pos + torch.where(pos < c0, s1, s2) - start).clamp(0, t.shape[1] - 1)
                return t[rows[:, None], mapped]

            z0, z1 = zones.get(i, (b, b))
            lo, hi = max(a, z0), min(b, z1)
            if lo >= hi:
                return from_ref(a, b)
            # only the margins around the recomputed zone are copied from the reference
            out = torch.empty((len(rows), b - a, t.shape[2]), dtype=t.dtype)
            out[:, lo - a : hi - a] = alt_vals[i][:, lo - z0 : hi - z0]
            if a < lo:
                out[:, : lo - a] = from_ref(a, lo)
            if hi < b:
                out[:, hi - a :] = from_ref(hi, b)
            return out

        for k, n in enumerate(self.nodes):
            if n.kind == "InputLayer" or (not n.stored and k != self.output):
                continue
            lo = max(out_lo - n.after, c0 - n.before)
            hi = min(out_hi + n.after, c1 + n.before)
            if k == self.output:
                lo, hi = out_lo, out_hi
            zones[k] = (lo, hi)
            if lo >= hi:
                continue
            args = [value(j, lo - n.ext, hi + n.ext) for j in n.inputs]
            alt_vals[k] = self._apply(n, args)
            del args
            for i in [i for i in alt_vals if i != k and self.last_reader.get(i) == k]:
                del alt_vals[i]
        return alt_vals[self.output]


def _fuse(nodes: list[_Node]) -> list[_Node]:
    """The same graph with fewer, cheaper nodes (outputs equal up to float32 round-off).

    * A ``BatchNormalization`` whose input is a linear convolution used by nothing else is folded
      into that convolution's kernel and bias.
    * An ``Activation`` whose input is a convolution or a ``BatchNormalization`` used by nothing
      else becomes that node's activation.

    SpliceAI's residual units (BN, ReLU, conv, BN, ReLU, conv) become (BN+ReLU, conv+BN+ReLU,
    conv): one element-wise pass instead of four.
    """
    users: dict[int, list[int]] = {}
    for k, n in enumerate(nodes):
        for i in n.inputs:
            users.setdefault(i, []).append(k)
    alias = list(range(len(nodes)))  # node -> the node that now computes its value
    gone: set[int] = set()
    for k, n in enumerate(nodes):
        if len(n.inputs) != 1:
            continue
        src = alias[n.inputs[0]]
        prev = nodes[src]
        if len(users.get(n.inputs[0], [])) != 1 or prev.activation != "linear":
            continue
        if n.kind == "BatchNormalization" and prev.kind == "Conv1D":
            scale, shift = n.weight, n.bias
            bias = prev.bias if prev.bias is not None else np.zeros_like(shift)
            prev.weight, prev.bias = prev.weight * scale, bias * scale + shift
        elif n.kind == "Activation" and prev.kind in ("Conv1D", "BatchNormalization"):
            prev.activation = n.activation
        else:
            continue
        alias[k] = src
        gone.add(k)
    keep = [k for k in range(len(nodes)) if k not in gone]
    new_index = {old: new for new, old in enumerate(keep)}
    out = []
    for k in keep:
        n = nodes[k]
        n.inputs = [new_index[alias[i]] for i in n.inputs]
        out.append(n)
    return out


def _to_torch(node: _Node) -> None:
    """Replace a node's numpy weights by the tensors :meth:`SpliceNet._apply` uses.

    A Keras kernel (K, C_in, C_out) becomes a (C_out, C_in, 1, K) conv2d weight in channels-last
    memory (made in numpy: torch's own layout conversion is slow on a busy machine); a
    BatchNormalization's scale and shift become (1, 1, C).
    """
    import torch

    if node.kind == "Conv1D":
        kernel = np.ascontiguousarray(node.weight.transpose(2, 0, 1), dtype=np.float32)  # (O, K, I)
        o, k, i = kernel.shape
        node.weight = torch.from_numpy(kernel).view(o, 1, k, i).permute(0, 3, 1, 2)
        node.bias = None if node.bias is None else torch.from_numpy(node.bias.astype(np.float32))
    elif node.kind == "BatchNormalization":
        node.weight = torch.from_numpy(node.weight).view(1, 1, -1)
        node.bias = torch.from_numpy(node.bias).view(1, 1, -1)


def _activate(x: Any, activation: str, *, inplace: bool = True) -> Any:
    """``activation`` of ``x``; in place where ``x`` is a fresh result of the caller's."""
    import torch

    if activation == "relu":
        return torch.relu_(x) if inplace else torch.relu(x)
    if activation == "softmax":
        return torch.softmax(x, dim=-1)
    if activation in ("linear", None):
        return x
    msg = f"unsupported activation {activation!r}"
    raise ModelError(msg)


class SpliceNetEnsemble(Model):
    """SpliceAI-class graphs (one or several, averaged) as a veff model.

    Parameters
    ----------
    paths
        The ``.h5`` files.
    name
        Model name (default: the first file's stem without its trailing digits).
    """

    framework = "pytorch"  # as veff.models.torch names it
    output_layout = "positions_first"
    #: reference windows may cover records this many bases apart (:mod:`veff.variants.splice`):
    #: a SpliceAI-10k window costs about 10,000 + 1.4 x its outputs positions of work, so sharing
    #: pays for records up to about 6 kb apart; 4 kb keeps a window's activations near 110 MB
    reference_span = 4096

    def __init__(self, paths: Sequence[str | os.PathLike[str]], *, name: str | None = None) -> None:
        self.nets = [SpliceNet(p) for p in paths]
        flanks = {n.flank for n in self.nets}
        if len(flanks) != 1:
            msg = f"ensemble members have different flanks {sorted(flanks)}"
            raise ModelError(msg)
        self.flank = self.nets[0].flank
        stem = Path(paths[0]).stem
        self.name = name or ((stem.rstrip("0123456789") or stem) if len(paths) > 1 else stem)
        self.output_labels = ("neither", "acceptor", "donor")

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Mean of the members' outputs, (N, L - 2 * flank, 3) float32."""
        return np.asarray(np.mean(np.stack([n.predict(x) for n in self.nets]), axis=0, dtype=np.float32))

    def predict_splice(
        self,
        ref_codes: Sequence[np.ndarray],
        alt_codes: np.ndarray,
        edits: np.ndarray,
        *,
        ref_batch: int = 4,
        workers: int | None = None,
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """Reference tracks in full and alt tracks incrementally (see :meth:`SpliceNet.predict_edits`).

        The work is split into one item per ensemble member and batch of reference windows (up to
        ``ref_batch`` consecutive windows of one length); the items run on ``workers`` threads,
        each op on one core (PyTorch's own threads set to 1 meanwhile), and the members' outputs
        are summed in member order afterwards, so the result is the same bytes whatever the number
        of workers. Coarse items keep both cores busy where PyTorch's fine-grained threads spin
        and stall on a machine shared with other work.

        Parameters
        ----------
        ref_codes
            uint8 reference windows, model orientation: one (L_i,) array each, any lengths
            ``L_i > 2 * flank``.
        alt_codes
            uint8 windows (n_alt, L), model orientation.
        edits
            int64 (n_alt, 7), as :meth:`SpliceNet.predict_edits` (ref rows index ``ref_codes``).
        ref_batch
            Reference windows evaluated (and kept) at a time.
        workers
            Threads (default: PyTorch's thread setting, e.g. ``--threads``).

        Returns
        -------
        tuple
            ``ref``: one (L_i - 2 * flank, 3) float32 array per reference window; ``alt``
            (n_alt, L - 2 * flank, 3) float32; members averaged; alt positions outside each
            window's needed outputs are NaN.
        """
        import torch

        n_ref, n_alt, n_nets = len(ref_codes), len(alt_codes), len(self.nets)
        outputs = alt_codes.shape[1] - 2 * self.flank
        ref_parts = [
            [np.zeros((len(c) - 2 * self.flank, 3), np.float32) for c in ref_codes] for _ in self.nets
        ]
        alt_parts = np.zeros((n_nets, n_alt, outputs, 3), np.float32)
        filled = np.zeros((n_alt, outputs), bool)
        batches = self._batches(ref_codes, edits, filled, ref_batch)

        def run(item: tuple[int, int]) -> None:
            j, b = item
            net, (lo, hi, planned) = self.nets[j], batches[b]
            x = torch.from_numpy(one_hot(np.stack(ref_codes[lo:hi])))
            with torch.inference_mode():
                cache = net.forward_ref(x, x.shape[1] - 2 * self.flank)
                got = cache[net.output][1].numpy()
                for r in range(lo, hi):
                    ref_parts[j][r][:] = got[r - lo]
                for idx, e, o0, o1 in planned:
                    a = torch.from_numpy(one_hot(alt_codes[idx]))
                    alt_parts[j, idx, o0:o1] = net.predict_edits(a, e, cache).numpy()

        # the costliest items first, so that the last ones to finish are short (an alt window
        # costs about a quarter of a reference window of the alt's length); the order changes no
        # number, the members are summed in member order below
        alt_cost = alt_codes.shape[1] // 4
        cost = [
            sum(len(ref_codes[r]) for r in range(lo, hi)) + sum(len(g[0]) for g in planned) * alt_cost
            for lo, hi, planned in batches
        ]
        items = sorted(
            ((j, b) for b in range(len(batches)) for j in range(n_nets)), key=lambda it: -cost[it[1]]
        )
        n_workers = max(1, min(workers or torch.get_num_threads(), len(items)))
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            if n_workers == 1:
                for item in items:
                    run(item)
            else:
                from concurrent.futures import ThreadPoolExecutor

                with ThreadPoolExecutor(n_workers, thread_name_prefix="veff-splice") as pool:
                    for _ in pool.map(run, items):
                        pass
        finally:
            torch.set_num_threads(before)
        scale = np.float32(n_nets)
        ref_out = ref_parts[0]
        for j in range(1, n_nets):  # member order, whatever order the items ran in
            for r in range(n_ref):
                ref_out[r] += ref_parts[j][r]
        for r in range(n_ref):
            ref_out[r] /= scale
        alt_out = alt_parts[0]
        for j in range(1, n_nets):
            alt_out += alt_parts[j]
        alt_out /= scale
        alt_out[~filled] = np.nan
        return ref_out, alt_out

    def _batches(
        self, ref_codes: Sequence[np.ndarray], edits: np.ndarray, filled: np.ndarray, ref_batch: int
    ) -> list[tuple[int, int, list[tuple[np.ndarray, np.ndarray, int, int]]]]:
        """Batches of reference windows, each with its alt groups (marking ``filled`` outputs).

        A batch is up to ``ref_batch`` consecutive windows of one length, ``(lo, hi, groups)``;
        a group is alt windows of the same changed span and needed outputs (at most
        ``_ALT_BATCH``): their indices, edits (ref rows relative to ``lo``) and output range.
        """
        n_ref, n_alt = len(ref_codes), len(edits)
        batches: list[tuple[int, int, list[tuple[np.ndarray, np.ndarray, int, int]]]] = []
        lo = 0
        while lo < n_ref:
            hi = lo + 1
            while hi < min(n_ref, lo + ref_batch) and len(ref_codes[hi]) == len(ref_codes[lo]):
                hi += 1
            mine = np.nonzero((edits[:, 0] >= lo) & (edits[:, 0] < hi))[0] if n_alt else np.empty(0, int)
            groups: dict[tuple[int, ...], list[int]] = {}
            for k in mine.tolist():
                groups.setdefault(tuple(edits[k, [1, 2, 5, 6]].tolist()), []).append(k)
            planned = []
            for key, ks in groups.items():
                o0, o1 = key[2] - self.flank, key[3] - self.flank
                for at in range(0, len(ks), _ALT_BATCH):  # bounded activations for dense VCFs
                    idx = np.array(ks[at : at + _ALT_BATCH])
                    e = edits[idx].copy()
                    e[:, 0] -= lo
                    filled[idx, o0:o1] = True
                    planned.append((idx, e, o0, o1))
            batches.append((lo, hi, planned))
            lo = hi
        return batches
