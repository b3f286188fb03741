"""Keras / TensorFlow adapter (TensorFlow is imported here only, and lazily).

Loads full-model ``.h5`` files written by Keras 2 (which Keras 3 reads) and ``.keras`` files.
The input layout and length come from the model's input shape. On a CPU with the TensorFlow
backend, batches run through one ``tf.function`` of ``model(x, training=False)`` (traced once per
batch shape; what ``predict_on_batch`` runs, without its per-call data handling: the same
numbers, up to 1.3x the rate for small models, benchmark case 16); otherwise, and for models with
their own ``predict_step``, through ``predict_on_batch``. Never an eager call.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from veff.errors import ModelError, VeffWarning
from veff.models._gradients import no_input_gradient, target_columns
from veff.models.base import GradientTarget, InputLayout, Model
from veff.models.registry import Framework, LoadOptions

__all__ = ["FRAMEWORK", "KerasModel"]

log = logging.getLogger("veff")

_DENSE_OR_CONV = frozenset({"Conv1D", "Conv2D", "Conv3D", "Dense"})  # FLOPs = 2 x outputs x fan-in


def _quiet_tf() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def _tf_sees_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))


class KerasModel(Model):
    """Run a Keras model.

    Parameters
    ----------
    model
        A ``keras.Model``.
    name, seq_length, layout, output_labels
        Override what is read from the model.
    """

    framework = "keras"
    # TensorFlow's CPU kernels (oneDNN off) keep their rate as a batch outgrows the caches: the
    # conv nets of benchmark case 15 ran fastest at 2048-4096 sequences (101 bp), 128-4096 (1 kb)
    # and 256 (10 kb), so the automatic batch follows the input bases (docs/performance.md)
    cpu_cache_bound = False

    def __init__(
        self,
        model: Any,
        *,
        name: str | None = None,
        seq_length: int | None = None,
        layout: InputLayout | None = None,
        output_labels: tuple[str, ...] | None = None,
    ) -> None:
        self.model = self._wrapped = model
        self.name = name or model.name
        shape = model.input_shape
        if isinstance(shape, list):
            if len(shape) != 1:
                msg = f"{self.name}: {len(shape)} inputs; give a model directory that names its DNA input"
                raise ModelError(msg)
            shape = shape[0]
        per_seq = tuple(shape[1:])
        self.layout = layout or InputLayout.parse(per_seq)
        inferred = [d for d, a in zip(per_seq, self.layout.axes, strict=False) if a == "L"]
        self.seq_length = seq_length or (inferred[0] if inferred and inferred[0] else None)
        self.output_labels = output_labels
        self.accelerator = "gpu" if _tf_sees_gpu() else "cpu"
        self._graph: Any = None  # the tf.function of _graph_call (False: predict_on_batch), made on first use

    @classmethod
    def from_path(
        cls, path: str | Path, *, custom_objects: dict[str, Any] | None = None, **kw: Any
    ) -> KerasModel:
        """Load a ``.h5`` / ``.keras`` file."""
        _quiet_tf()
        import keras

        p = Path(path)
        if not p.is_file():
            msg = f"{p}: model file not found"
            raise ModelError(msg)
        try:
            model = keras.models.load_model(str(p), compile=False, custom_objects=custom_objects)
        except Exception as exc:
            msg = f"{p}: cannot load as a Keras model: {type(exc).__name__}: {exc}".splitlines()[0]
            raise ModelError(msg) from exc
        kw.setdefault("name", p.stem)
        return cls(model, **kw)

    def activation_floats(self, length: int) -> int | None:
        """Largest output (floats) of any layer for one sequence, from the layers' static shapes."""
        del length  # a Keras model's input length is fixed by its input shape
        return max((n for n, _ in self._layer_sizes()), default=None)

    def flops_per_float(self, length: int) -> float | None:
        """FLOPs of the Conv1D/2D/3D and Dense layers per float of all layer outputs (one sequence)."""
        del length
        sizes = self._layer_sizes()
        flops = sum(f for _, f in sizes)
        return flops / sum(n for n, _ in sizes) if flops else None

    def flops_per_sequence(self, length: int) -> int | None:
        """FLOPs of the Conv1D/2D/3D and Dense layers for one sequence."""
        del length
        return sum(f for _, f in self._layer_sizes()) or None

    def _layer_sizes(self) -> list[tuple[int, int]]:
        """(output floats, FLOPs) of each layer with a static output shape, for one sequence."""
        sizes = []
        for layer in getattr(self.model, "layers", ()):
            if type(layer).__name__ == "InputLayer":  # the input, not an activation
                continue
            try:
                outputs = layer.output if isinstance(layer.output, (list, tuple)) else [layer.output]
                dims = [tuple(o.shape[1:]) for o in outputs]
            except (AttributeError, ValueError):
                continue
            floats = [int(np.prod(d)) for d in dims if all(isinstance(k, int) for k in d)]
            kernel = getattr(layer, "kernel", None) if type(layer).__name__ in _DENSE_OR_CONV else None
            fan_in = int(np.prod(tuple(kernel.shape)[:-1])) if kernel is not None else 0
            sizes += [(n, 2 * n * fan_in) for n in floats]
        return sizes

    def input_hint(self) -> str:
        """The Keras model's ``input_shape`` (batch axis first, None for any size)."""
        try:
            return f"its input shape is {self.model.input_shape}"
        except Exception:  # a subclassed model without a built input
            return ""

    def _forward(self, x: np.ndarray) -> Any:
        if self._graph is None:
            self._graph = _graph_call(self.model) if self.accelerator == "cpu" else False
        out = self.model.predict_on_batch(x) if self._graph is False else _to_numpy(self._graph(x))
        return self._named(out)

    def input_gradients(self, x: np.ndarray, target: GradientTarget) -> tuple[np.ndarray, Any]:
        """Input gradients by ``tf.GradientTape`` (an eager call with ``training=False``).

        See :meth:`veff.models.base.Model.input_gradients`.
        """
        import tensorflow as tf

        xt = tf.convert_to_tensor(np.ascontiguousarray(x, dtype=np.float32))
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(xt)
            base = tf.transpose(xt, (0, 2, 1)) if self.layout.channels_first else xt
            out = self.model(tf.reshape(base, self.layout.shape(-1, int(xt.shape[1]))), training=False)
            tasks_first = self.declared_output_layout() == "tasks_first"
            y = target_columns(out, target, _TF_OPS, tasks_first=tasks_first)
            totals = [tf.reduce_sum(y[:, t]) for t in range(int(y.shape[1]))]
        grads = [tape.gradient(t, xt) for t in totals]
        del tape
        if any(g is None for g in grads):  # a stop_gradient, or an output not computed from the input
            raise no_input_gradient(self.name)
        grads = [g.numpy() for g in grads]
        return np.stack(grads, axis=-1), self._named(out)

    def _named(self, out: Any) -> Any:
        """Outputs as float32 numpy: a list becomes a dict by the model's output names."""
        if isinstance(out, (list, tuple)):
            names = list(getattr(self.model, "output_names", None) or [])
            if len(names) != len(out) or len(set(names)) != len(names):
                names = [str(k) for k in range(len(out))]
            return {n: np.asarray(o, dtype=np.float32) for n, o in zip(names, out, strict=True)}
        if isinstance(out, dict):
            return {k: np.asarray(v, dtype=np.float32) for k, v in out.items()}
        return np.asarray(out, dtype=np.float32)


def _graph_call(model: Any) -> Any:
    """``model(x, training=False)`` as a ``tf.function`` (XLA off), or False.

    False where ``predict_on_batch`` does more than that: another Keras backend, or a model with
    its own ``predict_step``.
    """
    import keras

    if keras.backend.backend() != "tensorflow" or type(model).predict_step is not keras.Model.predict_step:
        return False
    import tensorflow as tf

    # reduce_retracing as in predict_on_batch: a shape-general graph once batch shapes vary
    return tf.function(lambda x: model(x, training=False), jit_compile=False, reduce_retracing=True)


def _to_numpy(out: Any) -> Any:
    """A model's tensor outputs (one, a list or a dict) as numpy arrays."""
    if isinstance(out, dict):
        return {k: np.asarray(v) for k, v in out.items()}
    if isinstance(out, (list, tuple)):
        return [np.asarray(v) for v in out]
    return np.asarray(out)


class _TfOps:
    """The tensor operations of :func:`veff.models._gradients.target_columns` for TensorFlow."""

    @staticmethod
    def float32(h: Any) -> Any:
        import tensorflow as tf

        return tf.cast(h, tf.float32)

    @staticmethod
    def flat(h: Any) -> Any:
        import tensorflow as tf

        return tf.reshape(h, (tf.shape(h)[0], -1))

    @staticmethod
    def positions_first(h: Any) -> Any:
        import tensorflow as tf

        return tf.transpose(h, (0, 2, 1)) if len(h.shape) == 3 else h

    @staticmethod
    def positions(h: Any, mask: np.ndarray) -> Any:
        import tensorflow as tf

        h = h[:, :, None] if len(h.shape) == 2 else h
        return tf.boolean_mask(h, mask, axis=1)

    @staticmethod
    def reduce(v: Any, reducer: str) -> Any:
        import tensorflow as tf

        if reducer == "sum":
            return tf.reduce_sum(v, axis=1)
        if reducer == "mean":
            return tf.reduce_mean(v, axis=1)
        if reducer == "max":
            return tf.reduce_max(v, axis=1)
        if reducer == "min":
            return tf.reduce_min(v, axis=1)
        vt = tf.transpose(v, (0, 2, 1))  # (N, T, P); max_abs: the signed value of largest magnitude
        return tf.gather(vt, tf.argmax(tf.abs(vt), axis=2), axis=2, batch_dims=2)

    @staticmethod
    def cat(columns: list[Any]) -> Any:
        import tensorflow as tf

        return tf.concat(columns, axis=1)

    @staticmethod
    def take(y: Any, columns: np.ndarray) -> Any:
        import tensorflow as tf

        return tf.gather(y, columns, axis=1)

    @staticmethod
    def total(y: Any) -> Any:
        import tensorflow as tf

        return tf.reduce_sum(y, axis=1, keepdims=True)


_TF_OPS = _TfOps()


def _accepts(source: Any) -> bool:
    """A ``keras.Model`` object."""
    keras = sys.modules.get("keras")  # a Keras model exists only once keras is imported
    return keras is not None and isinstance(source, keras.Model)


def _load(source: Any, options: LoadOptions) -> Model:
    model = (
        KerasModel.from_path(source, **options.overrides())
        if isinstance(source, Path)
        else KerasModel(source, **options.overrides())
    )
    asked = [
        a
        for a, given in (
            (f"--device {options.device}", options.device not in ("auto", "cpu")),
            (f"--precision {options.precision}", options.precision != "float32"),
        )
        if given
    ]
    if asked:  # TensorFlow places the model itself and runs it in the model's own dtype
        verb = "applies" if len(asked) == 1 else "apply"
        warnings.warn(
            f"{model.name}: {' and '.join(asked)} {verb} to PyTorch models only; "
            "this Keras model runs where TensorFlow places it, in its own precision",
            VeffWarning,
            stacklevel=2,
        )
    return model


def _threads(n: int) -> None:
    """Set TensorFlow's intra-op threads, if it is imported and has not started (not restored)."""
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
    except RuntimeError:  # TensorFlow started already: its pools are fixed
        if tf.config.threading.get_intra_op_parallelism_threads() != n:
            log.warning("TensorFlow runs already; set TF_NUM_INTRAOP_THREADS=%d before it starts", n)


FRAMEWORK = Framework(
    "keras", _load, suffixes=(".h5", ".hdf5", ".keras"), accepts=_accepts, threads=_threads, title="Keras"
)
