from __future__ import annotations

import warnings

import numpy as np
import pytest
from helpers import DONOR_H5, EXAMPLE
from toy_models import torch_gc_module

from veff.errors import ModelError
from veff.models import InputLayout, load_model
from veff.variants.sequences import one_hot, str_to_codes

SEQS = one_hot(np.stack([str_to_codes("ACGTGCCAATG"), str_to_codes("GGGGGCCCCCA")]))
GC = np.array([[6 / 11], [10 / 11]], dtype=np.float32)


@pytest.mark.parametrize(
    ("spec", "shape"),
    [
        ("L,4", (2, 11, 4)),
        ("4,L", (2, 4, 11)),
        ("L,1,4", (2, 11, 1, 4)),
        ("1,L,4", (2, 1, 11, 4)),
        ("4,1,L", (2, 4, 1, 11)),
        ((None, 4), (2, 11, 4)),
        ((4, 1, 101), (2, 4, 1, 11)),
    ],
)
def test_layout_conversion_keeps_bases(spec, shape):
    lay = InputLayout.parse(spec)
    x = lay.to_model(SEQS)
    assert x.shape == shape
    back = x.reshape(2, *(d for d in x.shape[1:] if d != 1))
    back = back.transpose(0, 2, 1) if lay.channels_first else back
    np.testing.assert_array_equal(back, SEQS)


def test_bad_layout():
    with pytest.raises(ModelError, match="bad input layout"):
        InputLayout.parse("L,5")


def test_torch_module_object_and_files(tmp_path):
    import torch

    mod = torch_gc_module(11)
    m = load_model(mod, device="cpu")
    assert m.seq_length == 11 and m.output_labels == ("gc",)
    np.testing.assert_allclose(m.predict(SEQS), GC, rtol=1e-6)
    scripted = torch.jit.script(mod)
    torch.jit.save(scripted, str(tmp_path / "gc.pt"))
    m2 = load_model(tmp_path / "gc.pt", seq_length=11, device="cpu")
    np.testing.assert_allclose(m2.predict(SEQS), GC, rtol=1e-6)
    torch.save(mod.state_dict(), tmp_path / "sd.pth")
    with pytest.raises(ModelError, match="state dict"):
        load_model(tmp_path / "sd.pth")


def test_torch_module_file_class_and_state_dict():
    m = load_model(
        f"{EXAMPLE}/models/donor_cnn/donor_cnn.py::DonorCNN",
        weights=EXAMPLE / "models" / "donor_cnn" / "donor_cnn.pth",
        device="cpu",
    )
    ts = load_model(EXAMPLE / "models" / "donor_cnn" / "donor_cnn.pt", device="cpu")
    assert m.seq_length == ts.seq_length == 101
    x = one_hot(np.random.default_rng(0).choice(np.frombuffer(b"ACGT", np.uint8), (5, 101)))
    np.testing.assert_allclose(m.predict(x), ts.predict(x), rtol=1e-5, atol=1e-6)
    with pytest.raises(ModelError, match="no class or object named 'Nope'"):
        load_model(f"{EXAMPLE}/models/donor_cnn/donor_cnn.py::Nope")


def _keras_gc(length=None):
    import keras

    inp = keras.Input((length, 4))
    conv = keras.layers.Conv1D(1, 1, use_bias=False, name="gc")(inp)
    out = keras.layers.GlobalAveragePooling1D()(conv)
    model = keras.Model(inp, out, name="kgc")
    model.get_layer("gc").set_weights([np.array([0, 1, 1, 0], np.float32).reshape(1, 4, 1)])
    return model


@pytest.mark.tensorflow
@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_keras_files(tmp_path, suffix):
    path = tmp_path / f"gc{suffix}"
    _keras_gc(11).save(path)
    m = load_model(path)
    assert m.seq_length == 11 and str(m.layout) == "L,4"
    np.testing.assert_allclose(m.predict(SEQS), GC, rtol=1e-6)


@pytest.mark.tensorflow
def test_keras_variable_length_needs_seq_length():
    m = load_model(_keras_gc(None))
    assert m.seq_length is None
    np.testing.assert_allclose(m.predict(SEQS), GC, rtol=1e-6)


@pytest.mark.tensorflow
def test_keras_batches_run_as_one_graph_with_the_numbers_of_predict_on_batch():
    import keras

    inp = keras.Input((50, 4))
    x = keras.layers.Conv1D(16, 5, activation="relu")(inp)
    heads = {"a": keras.layers.Dense(3)(keras.layers.Flatten()(x)), "b": keras.layers.Conv1D(2, 1)(x)}
    rng = np.random.default_rng(0)
    for net in (keras.Model(inp, heads["a"]), keras.Model(inp, [heads["a"], heads["b"]])):
        m = load_model(net)
        for n in (8, 8, 5, 3, 1):  # batch shapes vary, as in mutation maps: a shape-general graph
            x = one_hot(rng.choice(np.frombuffer(b"ACGTN", np.uint8), (n, 50)))
            got = m.predict(x)
            assert m._graph is not False  # the tf.function path ran
            expected = net.predict_on_batch(x)
            for g, e in zip(
                got.values() if isinstance(got, dict) else [got],
                expected if isinstance(expected, list) else [expected],
                strict=True,
            ):
                assert np.array_equal(g, e)  # byte for byte the same


@pytest.mark.tensorflow
def test_a_keras_model_with_its_own_predict_step_runs_through_predict_on_batch():
    import keras

    class Doubled(keras.Model):
        def predict_step(self, data):
            x = data[0] if isinstance(data, tuple) else data
            return 2 * self(x, training=False)

    inp = keras.Input((11, 4))
    net = Doubled(inp, keras.layers.GlobalAveragePooling1D()(keras.layers.Conv1D(1, 1, use_bias=False)(inp)))
    net.layers[1].set_weights([np.array([0, 1, 1, 0], np.float32).reshape(1, 4, 1)])
    m = load_model(net)
    np.testing.assert_allclose(m.predict(SEQS), 2 * GC, rtol=1e-6)
    assert m._graph is False


@pytest.mark.tensorflow
def test_real_mmsplice_donor_model():
    m = load_model(DONOR_H5)
    assert m.seq_length == 18
    # a canonical donor (exon CAG | intron GTAAGT...) scores higher than the same with GT -> AT
    good = one_hot(str_to_codes("TTCAGGTAAGTAATTTTT")[None])
    bad = one_hot(str_to_codes("TTCAGATAAGTAATTTTT")[None])
    assert m.predict(good)[0, 0] > 0.99 > m.predict(bad)[0, 0] + 0.15


def test_unknown_kinds_are_named(tmp_path):
    (tmp_path / "m.onnx").write_text("x")
    with pytest.raises(ModelError, match="unknown model kind"):
        load_model(tmp_path / "m.onnx")
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "missing.h5")
    (tmp_path / "broken.h5").write_text("not hdf5")
    with pytest.raises(ModelError, match="cannot load as a Keras model"):
        load_model(tmp_path / "broken.h5")


def test_module_file_errors_are_model_errors(tmp_path):
    broken = tmp_path / "broken_net.py"
    broken.write_text("import no_such_package_xyz\n")
    with pytest.raises(ModelError, match=r"broken_net\.py: importing failed: ModuleNotFoundError"):
        load_model(f"{broken}::Net")
    with pytest.raises(ModelError, match="Python file not found"):
        load_model(f"{tmp_path / 'missing.py'}::Net")


def test_device_and_precision_options():
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="CUDA is not available"):
            load_model(torch_gc_module(11), device="cuda")
    with pytest.raises(ModelError, match="unknown precision 'float8'"):
        load_model(torch_gc_module(11), device="cpu", precision="float8")
    bf16 = load_model(torch_gc_module(11), device="cpu", precision="bfloat16")
    np.testing.assert_allclose(bf16.predict(SEQS), GC, atol=1e-2)  # bfloat16 keeps ~3 significant digits


@pytest.mark.parametrize("kind", ["callable", "keras"])
def test_unknown_precision_is_refused_whatever_the_framework(kind):
    """Only the PyTorch adapter checked it: a Keras model or a callable took 'junk' silently."""
    source = DONOR_H5 if kind == "keras" else (lambda x: x.sum(axis=(1, 2))[:, None])
    with pytest.raises(ModelError, match="unknown precision 'junk'; expected float32, bfloat16 or float16"):
        load_model(source, precision="junk")


def test_a_keras_model_warns_that_device_and_precision_are_pytorch_options():
    from veff.errors import VeffWarning

    with pytest.warns(VeffWarning, match=r"--precision float16 applies to PyTorch models only"):
        load_model(DONOR_H5, precision="float16")
    with pytest.warns(VeffWarning, match=r"--device cuda and --precision bfloat16 apply to PyTorch"):
        load_model(DONOR_H5, device="cuda", precision="bfloat16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model(DONOR_H5, device="cpu")  # the defaults and the CPU say nothing


def test_input_layout_override_for_callables():
    seen = []

    def fn(x):
        seen.append(x.shape)
        return x.sum(axis=(1, 2, 3))[:, None]

    m = load_model(fn, seq_length=11, input_layout="4,1,L")
    m.predict(SEQS)
    assert seen == [(2, 4, 1, 11)]


@pytest.mark.gpu
@pytest.mark.parametrize(("precision", "atol"), [("float32", 1e-5), ("bfloat16", 2e-2), ("float16", 5e-3)])
def test_gpu_predictions_match_cpu_float32(precision: str, atol: float) -> None:
    model = EXAMPLE / "models" / "donor_cnn" / "donor_cnn.pt"
    rng = np.random.default_rng(3)
    x = one_hot(rng.choice(np.frombuffer(b"ACGT", np.uint8), size=(300, 101)))
    cpu = load_model(model, device="cpu").predict(x)
    gpu = load_model(model, device="cuda", precision=precision).predict(x)
    assert gpu.dtype == np.float32 and gpu.shape == cpu.shape
    np.testing.assert_allclose(gpu, cpu, atol=atol)
