"""Case 16: the fastest path through each framework, on the same pre-encoded 1 kb windows.

PyTorch (the DeepSEA architecture and the Basset-like net of case 10): eager under
``torch.inference_mode`` (veff's path), a TorchScript trace frozen with ``torch.jit.freeze``,
the same passed through ``torch.jit.optimize_for_inference``, the same two from
``torch.jit.script`` instead of the trace (what veff could do to a module without the trace's
risk of baking in one input's control flow), ``torch.compile`` (its cold compile time and the
sequences after which it pays back), a channels-last input (the (N, L, 4) one-hot seen through a
transposed view instead of a contiguous (N, 4, L) array), oneDNN (``torch.backends.mkldnn``)
off, 1 instead of 2 threads, and the module inside veff's
``wide_conv_kernels`` (what veff's adapter runs for nets with wide convolutions: the BPNet-like
net of case 11, whose profile head is one). Keras (the DeepSEA architecture): ``predict_on_batch`` (veff's
path), a ``tf.function`` with a fixed input signature (``jit_compile=False``, and XLA), and the
eager call ``model(x, training=False)``, each with ``TF_ENABLE_ONEDNN_OPTS`` 0 and 1 (read when
TensorFlow starts, so one subprocess per setting and round).

Paths alternate within each round; the best round of each is kept. Every path's output on the
first batch is compared with the eager float32 output (PyTorch) or ``predict_on_batch`` with
oneDNN off (Keras): ``max_abs_diff``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _common import ROOT, deepsea_module, keras_deepsea
from _mutmap import basset_module, bpnet_module

from veff.models.torch_kernels import wide_conv_kernels
from veff.variants.sequences import one_hot

Forward = Callable[[Any], Any]


def _time(fn: Forward, batches: list[Any]) -> float:
    """Sequences/s of ``fn`` over ``batches`` (after one warm-up call)."""
    fn(batches[0])
    t0 = time.perf_counter()
    for x in batches:
        fn(x)
    return sum(len(x) for x in batches) / (time.perf_counter() - t0)


def _torch_paths(module: Any, x: Any) -> tuple[dict[str, tuple[Forward, Any]], dict[str, float]]:
    """name -> (forward, what it takes: 'contiguous', 'channels_last' or a thread count), and the
    set-up seconds of the paths that need one."""
    import torch

    def threads(n: int, fn: Forward) -> Forward:
        def run(t: Any) -> Any:
            before = torch.get_num_threads()
            torch.set_num_threads(n)
            try:
                return fn(t)
            finally:
                torch.set_num_threads(before)

        return run

    def wide(t: Any) -> Any:
        with wide_conv_kernels():
            return module(t)

    def no_mkldnn(t: Any) -> Any:
        with torch.backends.mkldnn.flags(enabled=False):
            return module(t)

    setup: dict[str, float] = {}
    graphs = {
        "trace": lambda: torch.jit.trace(module, x, check_trace=False).eval(),
        "script": lambda: torch.jit.script(module).eval(),
    }
    built: dict[str, Any] = {}
    for kind, make in graphs.items():
        for name, finish in (("freeze", torch.jit.freeze), ("freeze_ofi", torch.jit.optimize_for_inference)):
            t0 = time.perf_counter()
            graph = finish(make())
            graph(x)
            graph(x)  # the profiling executor optimises on the second call
            setup[f"{kind}_{name}"] = time.perf_counter() - t0
            built[f"{kind}_{name}"] = graph
    paths: dict[str, tuple[Forward, Any]] = {
        "eager": (module, "contiguous"),
        "eager_channels_last": (module, "channels_last"),
        "eager_mkldnn_off": (no_mkldnn, "contiguous"),
        "eager_1_thread": (threads(1, module), "contiguous"),
        "wide_conv_kernels": (wide, "contiguous"),
        **{name: (graph, "contiguous") for name, graph in built.items()},
        "script_freeze_ofi_1_thread": (threads(1, built["script_freeze_ofi"]), "contiguous"),
    }
    try:
        import torch._inductor.config

        # time a cold compile, as a first run pays it (inductor caches graphs and kernels on disk)
        torch._inductor.config.fx_graph_cache = False
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="veff-bench-inductor-")
        compiled = torch.compile(module, dynamic=False)
        t0 = time.perf_counter()
        compiled(x)
        setup["compile"] = time.perf_counter() - t0
        paths["compile"] = (compiled, "contiguous")
    except Exception as exc:  # no C++ compiler, or inductor refuses the net
        print(f"torch.compile failed: {type(exc).__name__}: {str(exc).splitlines()[0]}", file=sys.stderr)
    return paths, setup


def _first(out: Any) -> Any:
    """The first output of a net with several (BPNet: profile, counts)."""
    return out[0] if isinstance(out, (tuple, list)) else out


def _torch_case(name: str, module: Any, codes: np.ndarray, batch: int, rounds: int) -> dict[str, Any]:
    import torch

    hot = [one_hot(codes[lo : lo + batch]) for lo in range(0, len(codes) - batch + 1, batch)]
    inputs = {
        "contiguous": [torch.from_numpy(np.ascontiguousarray(h.transpose(0, 2, 1))) for h in hot],
        "channels_last": [torch.from_numpy(h).transpose(1, 2) for h in hot],
    }
    with torch.inference_mode():
        paths, setup = _torch_paths(module, inputs["contiguous"][0])
        reference = _first(module(inputs["contiguous"][0])).numpy()
        best: dict[str, float] = {}
        for _ in range(rounds):
            for path, (fn, kind) in paths.items():
                best[path] = max(best.get(path, 0.0), _time(fn, inputs[kind]))
        first = {p: _first(fn(inputs[k][0])).numpy() for p, (fn, k) in paths.items()}
        diff = {p: float(np.abs(y - reference).max()) for p, y in first.items()}
    out: dict[str, Any] = {"net": name, "batch": batch, "sequences": len(hot) * batch}
    for path, rate in best.items():
        out[f"{path}_seq_per_s"] = round(rate, 1)
        out[f"{path}_vs_eager"] = round(rate / best["eager"], 3)
        out[f"{path}_max_abs_diff"] = diff[path]
    for path, seconds in setup.items():
        out[f"{path}_setup_s"] = round(seconds, 2)
    if "compile" in best:
        gain = 1 / best["eager"] - 1 / best["compile"]  # seconds saved per sequence
        out["compile_break_even_sequences"] = round(setup["compile"] / gain) if gain > 0 else "never"
    return out


_KERAS_CHILD = """
import json, sys, time
sys.path.insert(0, 'benchmarks')
import numpy as np
from _framework import keras_child
print(json.dumps(keras_child(sys.argv[1], int(sys.argv[2]))))
"""


def keras_child(codes_path: str, batch: int) -> dict[str, Any]:
    """One round of the Keras paths (in a subprocess whose ``TF_ENABLE_ONEDNN_OPTS`` is set)."""
    import tensorflow as tf

    model = keras_deepsea()
    codes = np.load(codes_path)
    hot = [one_hot(codes[lo : lo + batch]) for lo in range(0, len(codes) - batch + 1, batch)]
    spec = [tf.TensorSpec((batch, *hot[0].shape[1:]), tf.float32)]

    def call(x: Any) -> Any:
        return model(x, training=False)

    graph = tf.function(call, input_signature=spec, jit_compile=False)
    xla = tf.function(call, input_signature=spec, jit_compile=True)
    paths: dict[str, Forward] = {
        "predict_on_batch": model.predict_on_batch,
        "tf_function": lambda x: graph(tf.constant(x)).numpy(),
        "tf_function_xla": lambda x: xla(tf.constant(x)).numpy(),
        "call": lambda x: call(x).numpy(),
    }
    result: dict[str, Any] = {}
    for name, fn in paths.items():
        t0 = time.perf_counter()
        first = np.asarray(fn(hot[0]))
        result[f"{name}_setup_s"] = time.perf_counter() - t0
        result[f"{name}_seq_per_s"] = _time(fn, hot)
        np.save(f"{codes_path}.{os.environ['TF_ENABLE_ONEDNN_OPTS']}.{name}.npy", first)
    return result


def _keras_case(codes: np.ndarray, batch: int, rounds: int, tmp: Path) -> dict[str, Any]:
    path = tmp / "framework_codes.npy"
    np.save(path, codes)
    best: dict[str, float] = {}
    setup: dict[str, float] = {}
    for _ in range(rounds):
        for flag in ("0", "1"):
            env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": flag, "TF_CPP_MIN_LOG_LEVEL": "2"}
            res = subprocess.run(
                [sys.executable, "-c", _KERAS_CHILD, str(path), str(batch)],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
                env=env,
            )
            for key, value in json.loads(res.stdout.strip().splitlines()[-1]).items():
                name = f"onednn{flag}_{key}"
                if key.endswith("_setup_s"):
                    setup[name] = min(setup.get(name, np.inf), value)
                else:
                    best[name] = max(best.get(name, 0.0), value)
    reference = np.load(f"{path}.0.predict_on_batch.npy")
    out: dict[str, Any] = {"net": "keras_deepsea", "batch": batch, "sequences": len(codes) // batch * batch}
    base = best["onednn0_predict_on_batch_seq_per_s"]
    for name, rate in best.items():
        path_name = name.removesuffix("_seq_per_s")
        flag, _, fn = path_name.partition("_")
        diff = np.abs(np.load(f"{path}.{flag[-1]}.{fn}.npy") - reference).max()
        out[name] = round(rate, 1)
        out[f"{path_name}_vs_predict_on_batch"] = round(rate / base, 3)
        out[f"{path_name}_max_abs_diff"] = float(diff)
        out[f"{path_name}_first_call_s"] = round(setup[f"{path_name}_setup_s"], 2)
    return out


def case_framework(
    codes: np.ndarray, tmp: Path, rounds: int, batch: int = 16, nets: tuple[str, ...] = ("deepsea", "basset")
) -> dict[str, Any]:
    """All paths of both frameworks on ``codes`` ((n, 1000) uint8 windows) at batch ``batch``."""
    builders = {"deepsea": deepsea_module, "basset": basset_module, "bpnet": bpnet_module}
    out: dict[str, Any] = {}
    for net in nets:
        if net == "keras":
            res = _keras_case(codes, batch, rounds, tmp)
        else:
            res = _torch_case(net, builders[net](), codes, batch, rounds)
        out.update({f"{net}.{k}": v for k, v in res.items() if k != "net"})
    return out
