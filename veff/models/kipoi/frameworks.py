"""Load the model of a Kipoi directory with its framework; each loader returns ``inputs -> outputs``.

Frameworks are imported inside the loaders only. Paths in ``args`` resolve relative to the model
directory. An ``args`` value ``{url: ..., md5: ...}`` (a remote file) is looked up as
``model_files/<file name from the URL>`` or ``<file name>`` in the model directory (veff never
downloads) and checked against its md5 when one is given.

- ``keras``: ``weights`` as a full model (``.h5``, also Keras-2 files, or ``.keras``), or ``arch``
  (JSON, Keras-2 configs upgraded) + ``weights``; ``custom_objects``: a Python file with an ``OBJECTS``
  dict (ignored when absent, as kipoi did).
- ``pytorch``: ``module_file`` + ``module_class`` (+ ``module_kwargs``) or ``module_obj``, or the
  older ``file`` + ``build_fn``; ``weights`` a state dict, or a TorchScript / pickled module alone.
- ``sklearn``: ``pkl_file`` (pickle or joblib), called through ``predict_method`` (default
  ``predict``; ``predict_proba`` for class probabilities). Per-sample arrays are flattened to one
  row, as scikit-learn takes 2-D input only.
- ``tensorflow``: a TF1 checkpoint (``checkpoint_path`` prefix or ``{meta, index, data}`` files,
  ``input_nodes``, ``target_nodes``, ``const_feed_dict_pkl``) run through ``tf.compat.v1``, or a
  SavedModel (``savefile`` / ``saved_model``, ``signature_def``).
- ``custom``: ``type: custom`` + ``args: {file, object}``, or ``defined_as: model.py::Class`` /
  ``model.Class`` with ``args`` as keyword arguments; the object must have ``predict_on_batch``.
  Import and construction run inside the model directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from veff.errors import ModelError
from veff.models.kipoi._compat import import_object, in_directory, kipoi_stand_ins
from veff.models.kipoi.spec import ModelSpec

__all__ = ["LOADERS", "arg_path"]

Predictor = Callable[[Any], Any]


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _remote(spec: ModelSpec, key: str, value: dict[str, Any]) -> Path:
    url = str(value.get("url", ""))
    fname = url.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
    for cand in (spec.path / "model_files" / fname, spec.path / fname):
        if fname and cand.is_file():
            md5 = value.get("md5")
            if md5 and _md5(cand) != str(md5):
                msg = f"{cand}: md5 differs from model.yaml args.{key} ({md5}); a wrong or partial download?"
                raise ModelError(msg)
            return cand
    msg = (
        f"{spec.name}: args.{key} is a URL ({url}); veff does not download model files: "
        f"save it as {spec.path / 'model_files' / (fname or key)}"
    )
    raise ModelError(msg)


def arg_path(spec: ModelSpec, key: str, value: Any = None) -> Path:
    """Resolve ``args[key]`` (a relative path or a ``{url, md5}`` remote file) to an existing path."""
    value = spec.args.get(key) if value is None else value
    if value is None:
        msg = f"{spec.path / 'model.yaml'}: args.{key} is missing"
        raise ModelError(msg)
    if isinstance(value, dict) and "url" in value:
        return _remote(spec, key, value)
    path = spec.resolve(str(value))
    if not path.exists():
        msg = (
            f"{spec.name}: args.{key} file {path} not found (weights are not part of the model "
            "zoo's git repository; fetch them first)"
        )
        raise ModelError(msg)
    return path


def _quiet_tf() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


# -- Keras ----------------------------------------------------------------------------------------
def _upgrade_keras2_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a Keras-2 Sequential config (a list of layers, ``batch_input_shape``) for Keras 3."""
    if cfg.get("class_name") != "Sequential" or not isinstance(cfg.get("config"), list):
        return cfg
    layers = [dict(layer, config=dict(layer.get("config", {}))) for layer in cfg["config"]]
    if layers and "batch_input_shape" in layers[0]["config"]:
        first = layers[0]["config"]
        shape = first.pop("batch_input_shape")
        layers.insert(
            0,
            {
                "class_name": "InputLayer",
                "config": {"batch_shape": shape, "dtype": first.get("dtype", "float32"), "name": "input"},
            },
        )
    return {"class_name": "Sequential", "config": {"name": "sequential", "layers": layers}}


def _keras_from_json(text: str, custom_objects: dict[str, Any]) -> Any:
    import keras

    cfg = json.loads(text)
    try:
        from keras.src.legacy.saving import saving_utils
    except ImportError:  # pragma: no cover - older or newer Keras layout
        return keras.models.model_from_json(text, custom_objects=custom_objects)
    try:
        return saving_utils.model_from_config(_upgrade_keras2_config(cfg), custom_objects=custom_objects)
    except Exception:
        return keras.models.model_from_json(text, custom_objects=custom_objects)


def _keras_h5_load(path: Path, custom_objects: dict[str, Any], model: Any = None) -> Any:
    """Load a full model, or weights into ``model``, from an HDF5 file of any name."""
    import h5py

    try:
        from keras.src.legacy.saving import legacy_h5_format
    except ImportError:  # pragma: no cover
        import keras

        if model is None:
            return keras.models.load_model(str(path), compile=False, custom_objects=custom_objects)
        model.load_weights(str(path))
        return model
    if model is None:
        return legacy_h5_format.load_model_from_hdf5(str(path), custom_objects=custom_objects, compile=False)
    with h5py.File(path, "r") as fh:
        legacy_h5_format.load_weights_from_hdf5_group(fh.get("model_weights", fh), model)
    return model


def _keras(spec: ModelSpec, **_: Any) -> Predictor:
    _quiet_tf()
    import h5py
    import keras

    objects: dict[str, Any] = {}
    co = spec.args.get("custom_objects")
    if co and spec.resolve(str(co)).is_file():
        found = import_object(f"{co}::OBJECTS", spec.path)
        objects = dict(found) if isinstance(found, dict) else {}
    weights = arg_path(spec, "weights")
    try:
        if spec.args.get("arch") is not None:
            model = _keras_from_json(arg_path(spec, "arch").read_text(), objects)
            model = _keras_h5_load(weights, objects, model)
        elif h5py.is_hdf5(weights):
            model = _keras_h5_load(weights, objects)
        else:
            model = keras.models.load_model(str(weights), compile=False, custom_objects=objects)
    except ModelError:
        raise
    except Exception as exc:
        msg = f"{spec.name}: cannot load the Keras model: {type(exc).__name__}: {exc}"
        raise ModelError(msg.splitlines()[0]) from exc
    return model.predict_on_batch


# -- PyTorch --------------------------------------------------------------------------------------
def _torch_module(spec: ModelSpec) -> Any:
    args = spec.args
    file = args.get("module_file") or args.get("file")
    for key in ("module_class", "module_obj", "build_fn"):
        name = args.get(key)
        if not name:
            continue
        ref = f"{file}::{name}" if file else str(name)
        obj = import_object(ref, spec.path)
        with in_directory(spec.path), kipoi_stand_ins():
            if key == "module_class":
                return obj(**(args.get("module_kwargs") or {}))
            return obj() if key == "build_fn" else obj
    return None


def _torch_weights(torch: Any, path: Path, *, full: bool) -> Any:
    """A state dict, or (``full``) a TorchScript or pickled module."""
    if full:
        try:
            return torch.jit.load(str(path), map_location="cpu")
        except (RuntimeError, ValueError):
            pass
    try:
        return torch.load(str(path), map_location="cpu", weights_only=not full)
    except Exception as exc:
        msg = f"{path}: not a PyTorch state dict or module: {type(exc).__name__}: {exc}"
        raise ModelError(msg.splitlines()[0]) from exc


def _pytorch(spec: ModelSpec, *, device: str = "auto", precision: str = "float32", **_: Any) -> Predictor:
    import torch

    from veff.models.torch import resolve_device

    try:
        module = _torch_module(spec)
    except ModelError:
        raise
    except Exception as exc:
        msg = f"{spec.name}: building the PyTorch module failed: {type(exc).__name__}: {exc}"
        raise ModelError(msg) from exc
    if spec.args.get("weights") is not None:
        wpath = arg_path(spec, "weights")
        with in_directory(spec.path):
            state = _torch_weights(torch, wpath, full=module is None)
        if isinstance(state, torch.nn.Module):
            module = state
        elif module is None:
            msg = f"{spec.name}: {wpath} holds a state dict; model.yaml must name module_file + module_class"
            raise ModelError(msg)
        else:
            try:
                module.load_state_dict(state)
            except (RuntimeError, KeyError, TypeError) as exc:
                msg = f"{spec.name}: cannot load {wpath} into the module: {exc}".splitlines()[0]
                raise ModelError(msg) from exc
    if module is None:
        msg = f"{spec.name}: args need module_file + module_class / module_obj / build_fn, or weights"
        raise ModelError(msg)
    dev = resolve_device(device)
    module = module.to(dev).eval()
    dtype = getattr(torch, precision)

    def to_t(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: to_t(v) for k, v in x.items()}
        if isinstance(x, list):
            return [to_t(v) for v in x]
        return torch.from_numpy(np.ascontiguousarray(x)).to(dev)

    def to_np(y: Any) -> Any:
        if isinstance(y, dict):
            return {k: to_np(v) for k, v in y.items()}
        if isinstance(y, (list, tuple)):
            return [to_np(v) for v in y]
        return y.float().cpu().numpy()

    def predict(x: Any) -> Any:
        xt = to_t(x)
        ctx = (
            torch.autocast(device_type=dev.split(":")[0], dtype=dtype)
            if precision != "float32"
            else nullcontext()
        )
        with torch.inference_mode(), ctx:
            if isinstance(xt, list):
                return to_np(module(*xt))
            return to_np(module(**xt) if isinstance(xt, dict) else module(xt))

    return predict


# -- scikit-learn ---------------------------------------------------------------------------------
def _sklearn(spec: ModelSpec, **_: Any) -> Predictor:
    path = arg_path(spec, "pkl_file")
    method = str(spec.args.get("predict_method") or "predict")
    try:
        import joblib

        estimator = joblib.load(path)
    except ImportError:  # pragma: no cover - scikit-learn brings joblib
        with path.open("rb") as fh:
            estimator = pickle.load(fh)
    except Exception as exc:
        msg = f"{spec.name}: cannot unpickle {path}: {type(exc).__name__}: {exc}"
        raise ModelError(msg) from exc
    fn = getattr(estimator, method, None)
    if fn is None:
        msg = f"{spec.name}: the {type(estimator).__name__} estimator has no {method}()"
        raise ModelError(msg)

    def predict(x: Any) -> Any:
        if isinstance(x, (list, dict)):
            msg = f"{spec.name}: scikit-learn models take one array input"
            raise ModelError(msg)
        arr = np.asarray(x)
        return fn(arr.reshape(len(arr), -1) if arr.ndim != 2 else arr)

    return predict


# -- TensorFlow -----------------------------------------------------------------------------------
def _checkpoint_prefix(spec: ModelSpec) -> str:
    value = spec.args.get("checkpoint_path")
    if isinstance(value, dict) and "url" not in value:
        paths = {k: arg_path(spec, f"checkpoint_path.{k}", v) for k, v in value.items()}
        meta = str(paths.get("meta", ""))
        if not meta.endswith(".meta"):
            msg = f"{spec.name}: checkpoint_path.meta must be a .meta file, got {meta!r}"
            raise ModelError(msg)
        return meta[: -len(".meta")]
    if isinstance(value, dict):
        return str(arg_path(spec, "checkpoint_path"))
    if value is None:
        msg = f"{spec.name}: args.checkpoint_path is missing"
        raise ModelError(msg)
    prefix = spec.resolve(str(value))
    if not Path(f"{prefix}.meta").is_file():
        msg = f"{spec.name}: no TensorFlow checkpoint at {prefix} ({prefix}.meta not found)"
        raise ModelError(msg)
    return str(prefix)


def _tf_checkpoint(spec: ModelSpec) -> Predictor:
    import tensorflow as tf

    prefix = _checkpoint_prefix(spec)
    graph = tf.Graph()
    with graph.as_default():
        saver = tf.compat.v1.train.import_meta_graph(f"{prefix}.meta", clear_devices=True)
        sess = tf.compat.v1.Session(graph=graph)
        saver.restore(sess, prefix)

    def tensor(name: str) -> Any:
        return graph.get_tensor_by_name(name if ":" in name else f"{name}:0")

    def nodes(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: tensor(str(v)) for k, v in value.items()}
        if isinstance(value, list):
            return [tensor(str(v)) for v in value]
        return tensor(str(value))

    inputs, targets = nodes(spec.args.get("input_nodes")), nodes(spec.args.get("target_nodes"))
    const: dict[Any, Any] = {}
    if spec.args.get("const_feed_dict_pkl"):
        with arg_path(spec, "const_feed_dict_pkl").open("rb") as fh:
            raw = pickle.load(fh, encoding="latin1")
        const = {tensor(str(k)): v for k, v in raw.items()}

    def predict(x: Any) -> Any:
        if isinstance(inputs, dict):
            feed = (
                {inputs[k]: x[k] for k in inputs} if isinstance(x, dict) else {next(iter(inputs.values())): x}
            )
        elif isinstance(inputs, list):
            feed = dict(zip(inputs, x if isinstance(x, list) else [x], strict=False))
        else:
            feed = {inputs: x}
        return sess.run(targets, feed_dict={**const, **feed})

    return predict


def _tf_saved_model(spec: ModelSpec) -> Predictor:
    import tensorflow as tf

    key = "savefile" if "savefile" in spec.args else "saved_model"
    loaded = tf.saved_model.load(str(arg_path(spec, key)))
    sig_name = str(spec.args.get("signature_def") or "serving_default")
    try:
        sig = loaded.signatures[sig_name]
    except KeyError:
        msg = f"{spec.name}: the SavedModel has no signature {sig_name!r} ({', '.join(loaded.signatures)})"
        raise ModelError(msg) from None
    names = list(sig.structured_input_signature[1])

    def predict(x: Any) -> Any:
        feed = x if isinstance(x, dict) else dict(zip(names, x if isinstance(x, list) else [x], strict=False))
        out = sig(**{k: tf.constant(v) for k, v in feed.items()})
        if len(out) == 1:
            return next(iter(out.values())).numpy()
        return {k: v.numpy() for k, v in out.items()}

    return predict


def _tensorflow(spec: ModelSpec, **_: Any) -> Predictor:
    _quiet_tf()
    try:
        if "savefile" in spec.args or "saved_model" in spec.args:
            return _tf_saved_model(spec)
        return _tf_checkpoint(spec)
    except ModelError:
        raise
    except Exception as exc:
        msg = f"{spec.name}: cannot load the TensorFlow model: {type(exc).__name__}: {exc}"
        raise ModelError(msg.splitlines()[0]) from exc


# -- custom Python classes ------------------------------------------------------------------------
def _custom(spec: ModelSpec, **_: Any) -> Predictor:
    args = dict(spec.args)
    if spec.model_class == "custom":
        if not args.get("file") or not args.get("object"):
            msg = f"{spec.name}: type custom needs args.file and args.object"
            raise ModelError(msg)
        ref, kwargs = f"{args['file']}::{args['object']}", {}
    else:
        ref = spec.model_class
        kwargs = {
            k: str(arg_path(spec, k, v)) if isinstance(v, dict) and "url" in v else v for k, v in args.items()
        }
    obj = import_object(ref, spec.path)
    try:
        with in_directory(spec.path), kipoi_stand_ins():
            model = obj(**kwargs) if isinstance(obj, type) else obj
    except Exception as exc:
        msg = f"{spec.name}: constructing {ref} failed: {type(exc).__name__}: {exc}"
        raise ModelError(msg) from exc
    if not callable(getattr(model, "predict_on_batch", None)):
        msg = f"{spec.name}: {ref} has no predict_on_batch(x) method"
        raise ModelError(msg)
    return model.predict_on_batch


LOADERS: dict[str, Callable[..., Predictor]] = {
    "keras": _keras,
    "pytorch": _pytorch,
    "sklearn": _sklearn,
    "tensorflow": _tensorflow,
    "custom": _custom,
}
