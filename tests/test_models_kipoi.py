"""Kipoi model directories: yaml forms, model kinds, layouts, strings, scores, describe, the zoo."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import tarfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

import veff.models as vm
from veff.errors import ModelError
from veff.models import describe_model, list_models, load_model, resolve_model
from veff.models.kipoi import KipoiModel, load_kipoi_model, plan_model, read_model_spec
from veff.models.kipoi.dataloader import kipoiseq_input_shape
from veff.models.kipoi.load import onehot_to_strings
from veff.models.kipoi.scores import score_table
from veff.models.kipoi.spec import (
    KipoiSpecError,
    ScoringArgSpec,
    ScoringFunctionSpec,
    VariantEffectSpec,
    parse_shape,
)
from veff.scoring.registry import SCORES, model_scores, register_model_scores
from veff.variants.sequences import one_hot

HERE = Path(__file__).parent
FIX = HERE / "data" / "kipoi"
EXAMPLES = HERE.parent / "example_data" / "models"
ZOO = HERE / "data" / "zoo" / "kipoi-models-yaml-snapshots.tar.gz"


def onehot(seqs: list[str], n_value: float = 0.0) -> np.ndarray:
    codes = np.array([np.frombuffer(s.encode(), np.uint8) for s in seqs])
    return one_hot(codes, n_value)


def random_onehot(n: int, length: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.eye(4, dtype=np.float32)[rng.integers(0, 4, (n, length))]


def write_model(tmp: Path, doc: dict[str, Any], files: dict[str, str] | None = None) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "model.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    for name, text in (files or {}).items():
        (tmp / name).write_text(text)
    return tmp


# -- yaml forms -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(101, 4)", (101, 4)),
        ("(None,4)", (None, 4)),
        ("()", ()),
        ("(1, )", (1,)),
        ([4, 1, 1000], (4, 1, 1000)),
        ("(a, 4)", None),
        (None, None),
        (7, (7,)),
    ],
)
def test_parse_shape(text: Any, expected: Any) -> None:
    assert parse_shape(text) == expected


def test_old_list_form_with_seq_only_rc() -> None:
    spec = read_model_spec(FIX / "list_form")
    ve = spec.variant_effects
    assert ve is not None
    assert ve.form == "postprocessing-list"
    assert ve.use_rc == "seq_only"
    assert ve.seq_input == ("seq",)
    assert [f.type for f in ve.scoring_functions] == ["logit", "deepsea_effect"]  # deepsea_scr renamed
    assert spec.kind == "custom"
    assert spec.dataloader is not None
    assert spec.dataloader.bed_input == ("intervals_file",)  # list form in dataloader.yaml too
    info = describe_model(FIX / "list_form")
    assert info["rc"] == "seq_only"
    assert info["region_mode"] == "bed_input"
    assert info["inputs"][0]["layout"] == "L,1,4"
    assert info["default_scores"] == ["logit"]
    model = load_model(FIX / "list_form")  # imports model.py, which needs kipoi.model.BaseModel
    assert model.default_rc is True
    assert model.output_labels == ("A", "C", "G", "T")
    out = model.predict(onehot(["AACCGGTT", "GGGGGGGG"]))
    np.testing.assert_allclose(out, [[0.25] * 4, [0, 0, 1, 0]])


def test_top_level_variant_effects_and_string_input() -> None:
    spec = read_model_spec(FIX / "top_level")
    assert spec.variant_effects is not None
    assert spec.variant_effects.form == "top-level"
    assert spec.variant_effects.use_rc is True
    model = load_model(FIX / "top_level")
    assert isinstance(model, KipoiModel)
    assert model.seq_length == 11  # from the kipoiseq StringSeqIntervalDl auto_resize_len
    assert model.output_labels == ("gc.count", "n.0")  # dict targets: sorted, name.label
    x = onehot(["ACGTNACGTNA", "GGGCCCAAATT"], n_value=0.25)
    np.testing.assert_array_equal(model.predict(x), [[4, 2], [6, 0]])
    assert model.encode(x).tolist() == ["ACGTNACGTNA", "GGGCCCAAATT"]


def test_postprocessing_dict_form() -> None:
    spec = read_model_spec(EXAMPLES / "gc_content")
    assert spec.variant_effects is not None
    assert spec.variant_effects.form == "postprocessing"
    assert spec.dataloader is not None
    assert spec.dataloader.kipoiseq_class == "SeqIntervalDl"
    assert spec.dataloader.inputs[0].shape == (4, 101)


def test_no_variant_effects_section_still_runs() -> None:
    info = describe_model(EXAMPLES / "tal1_model")
    assert info["supported"] is True
    assert info["variant_effects"] is None
    assert info["available_scores"] == ["diff", "ref", "alt"]
    assert info["default_scores"] == ["diff"]
    assert any("no variant_effects section" in n for n in info["notes"])
    assert info["region_mode"] == "overlap"  # a local dataloader without bed_input


@pytest.mark.parametrize(
    ("alphabet_axis", "dummy_axis", "expected"),
    [
        (1, None, (7, 4)),
        (0, None, (4, 7)),
        (0, 1, (4, 1, 7)),
        (2, 1, (7, 1, 4)),
        (2, 0, (1, 7, 4)),
        (1, 2, (7, 4, 1)),
    ],
)
def test_kipoiseq_shapes(alphabet_axis: int, dummy_axis: int | None, expected: tuple[int, ...]) -> None:
    assert kipoiseq_input_shape(7, alphabet_axis, dummy_axis) == expected


def test_jinja_template_is_reported_not_crashed() -> None:
    info = describe_model(FIX / "jinja_template")
    assert info["supported"] is False
    assert "Jinja template" in info["unsupported_reason"]
    with pytest.raises(ModelError, match="Jinja template"):
        load_model(FIX / "jinja_template")


def test_unsupported_kind_names_it() -> None:
    info = describe_model(FIX / "xgboost_model")
    assert info["supported"] is False
    assert "XGBoostModel" in info["unsupported_reason"]
    with pytest.raises(ModelError, match="XGBoostModel"):
        load_model(FIX / "xgboost_model")


def test_describe_without_weights() -> None:
    info = describe_model(FIX / "missing_weights")
    assert info["supported"] is True
    assert info["framework"] == "keras"
    assert info["inputs"][0]["layout"] == "1,L,4"
    assert info["inputs"][0]["length"] == 1000
    assert info["outputs"]["labels"] == ["H3K4me3", "H3K27ac", "DNase"]  # from labels.txt
    assert info["n_value"] == 0.25
    assert info["rc"] is True
    assert info["available_scores"] == [
        "my_logit_ref",
        "diff",
        "logit",
        "logit_alt",
        "deepsea_effect",
        "ref",
        "alt",
    ]
    assert info["default_scores"] == ["my_logit_ref", "diff"]
    assert json.loads(json.dumps(info)) == info
    with pytest.raises(ModelError, match="does not download"):
        load_model(FIX / "missing_weights")
    plan = plan_model(read_model_spec(FIX / "missing_weights"))
    assert plan.dna is not None
    assert plan.dna.channel_order == (3, 2, 1, 0)  # alphabet TGCA


def test_describe_rejects_non_model_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"no model\.yaml"):
        describe_model(tmp_path)
    (tmp_path / "model.yaml").write_text("- just\n- a list\n")
    assert "mapping" in describe_model(tmp_path)["unsupported_reason"]


def test_multi_input_needs_its_dataloader_inputs() -> None:
    info = describe_model(FIX / "multi_input")
    assert info["supported"] is True
    assert any("dist come from the model's dataloader" in n for n in info["notes"])
    assert [i["role"] for i in info["inputs"]] == ["dna", "other"]
    model = load_kipoi_model(FIX / "multi_input")
    x = onehot(["ACGTAC"])
    with pytest.raises(ModelError, match="dist come from the model's dataloader"):
        model.predict(x)
    np.testing.assert_allclose(model.predict(x, {"dist": np.array([[1.0, 2.0, 3.0]])}), [[12.0]])
    out = model.predict_inputs({"seq": x, "dist": np.array([[1.0, 2.0, 3.0]])})
    np.testing.assert_allclose(out, [[12.0]])


# -- layouts and inputs ---------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["4,1,L", "L,1,4", "4,L", "L,4", "1,L,4"])
def test_layouts(tmp_path: Path, layout: str) -> None:
    length = 9
    shape = "(" + ", ".join(str(length) if a == "L" else a for a in layout.split(",")) + ")"
    shutil.copy(FIX / "layouts" / "model.py", tmp_path / "model.py")
    write_model(
        tmp_path,
        {
            "defined_as": "model.py::PositionCode",
            "args": {"layout": layout, "length": length},
            "schema": {
                "inputs": {"name": "seq", "shape": shape, "special_type": "DNASeq"},
                "targets": {"shape": "(2,)", "column_labels": ["code", "g"]},
            },
        },
    )
    model = load_model(tmp_path)
    assert str(model.layout) == layout
    x = random_onehot(5, length, seed=1)
    code = (x * (4 * np.arange(length)[:, None] + np.arange(4))).sum(axis=(1, 2))
    np.testing.assert_allclose(model.predict(x), np.stack([code, x[:, :, 2].sum(1)], 1))


def test_kipoiseq_alphabet_order_and_dtype(tmp_path: Path) -> None:
    shutil.copy(FIX / "layouts" / "model.py", tmp_path / "model.py")
    write_model(
        tmp_path,
        {
            "defined_as": "model.py::PositionCode",
            "args": {"layout": "4,1,L", "length": 6},
            "default_dataloader": {
                "defined_as": "kipoiseq.dataloaders.SeqIntervalDl",
                "default_args": {
                    "auto_resize_len": 6,
                    "alphabet_axis": 0,
                    "dummy_axis": 1,
                    "alphabet": "TGCA",
                    "dtype": "float64",
                },
            },
            "schema": {"inputs": {"shape": "(4, 1, 6)"}, "targets": {"shape": "(2,)"}},
        },
    )
    model = load_kipoi_model(tmp_path)
    assert model.n_value == 0.25
    x = onehot(["AAAAAA"])
    enc = model.encode(x)
    assert enc.dtype == np.float64
    np.testing.assert_array_equal(enc[0, :, 0, 0], [0, 0, 0, 1])  # A is the last letter of TGCA
    assert load_kipoi_model(tmp_path, n_value=0.0).n_value == 0.0


@pytest.mark.parametrize(("shape", "expected"), [("()", (2,)), ("(1,)", (2, 1)), ("(5,)", (2, 5))])
def test_string_input_shapes(tmp_path: Path, shape: str, expected: tuple[int, ...]) -> None:
    write_model(
        tmp_path,
        {
            "defined_as": "model.py::Echo",
            "schema": {
                "inputs": {"name": "s", "shape": shape, "special_type": "DNAStringSeq"},
                "targets": {"shape": "(1,)"},
            },
        },
        {
            "model.py": (
                "import numpy as np\n"
                "class Echo:\n"
                "    def predict_on_batch(self, x):\n"
                "        self.last = np.asarray(x)\n"
                "        return np.array([''.join(r).count('N') for r in self.last.reshape(len(x), -1)])\n"
            )
        },
    )
    model = load_kipoi_model(tmp_path)
    x = onehot(["ACGTN", "NNNNA"], n_value=0.0)
    np.testing.assert_array_equal(model.predict(x), [[1], [4]])
    assert model.encode(x).shape == expected


def test_onehot_to_strings_n_rows() -> None:
    x = onehot(["ACGTN"], n_value=0.25)
    assert onehot_to_strings(x).tolist() == ["ACGTN"]
    assert onehot_to_strings(onehot(["ACGTN"])).tolist() == ["ACGTN"]
    assert onehot_to_strings(x, "chars").tolist() == [list("ACGTN")]


# -- model kinds ----------------------------------------------------------------------------------
def test_custom_class_example_gc_content() -> None:
    model = load_model(EXAMPLES / "gc_content")
    assert isinstance(model, KipoiModel)
    assert (model.framework, model.seq_length, str(model.layout)) == ("custom", 101, "4,L")
    assert model.output_labels == ("gc_fraction", "gc_center")
    assert model.default_rc is True
    seq = "A" * 45 + "GGGGGGGGGGG" + "A" * 45
    out = model.predict(onehot([seq, "N" * 101], model.n_value))
    np.testing.assert_allclose(out, [[11 / 101, 1.0], [0.5, 0.5]], rtol=1e-6)


def test_pytorch_state_dict(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    shutil.copytree(FIX / "torch_net", tmp_path / "m")
    import importlib.util

    spec = importlib.util.spec_from_file_location("tiny_net", tmp_path / "m" / "net.py")
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(3)
    net = mod.TinyConv(n_filters=3, width=5).eval()
    (tmp_path / "m" / "model_files").mkdir()
    torch.save(net.state_dict(), tmp_path / "m" / "model_files" / "weights.pth")
    model = load_model(tmp_path / "m", device="cpu")
    assert (model.framework, str(model.layout), model.seq_length) == ("pytorch", "4,L", 20)
    x = random_onehot(4, 20, seed=2)
    with torch.no_grad():
        expected = net(torch.from_numpy(x.transpose(0, 2, 1).copy())).numpy()
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-5)
    assert model.output_labels == ("f0", "f1", "f2")
    assert model.n_value == 0.25


def test_pytorch_build_fn_and_pickled_module(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    shutil.copytree(FIX / "torch_net", tmp_path / "old")
    doc = yaml.safe_load((FIX / "torch_net" / "model.yaml").read_text())
    doc.update({"type": "pytorch", "args": {"file": "net.py", "build_fn": "build"}})
    del doc["defined_as"]
    doc["schema"]["targets"] = {"shape": "(2,)"}
    write_model(tmp_path / "old", doc)
    model = load_model(tmp_path / "old", device="cpu")
    x = random_onehot(2, 20)
    net = model.predict(x)
    assert net.shape == (2, 2)
    # the same network as TorchScript, named by weights only
    import importlib.util

    spec = importlib.util.spec_from_file_location("tiny_net_build", tmp_path / "old" / "net.py")
    assert spec is not None
    assert spec.loader is not None
    netmod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(netmod)
    torch.jit.script(netmod.build().eval()).save(str(tmp_path / "old" / "full.pt"))
    doc["args"] = {"weights": "full.pt"}
    write_model(tmp_path / "old", doc)
    np.testing.assert_allclose(load_model(tmp_path / "old", device="cpu").predict(x), net, rtol=1e-5)


def test_sklearn_predict_proba(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression

    x = random_onehot(40, 5, seed=4)
    y = (x[:, 2, 1] == 1).astype(int)  # C at the centre
    est = LogisticRegression().fit(x.reshape(40, -1), y)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(est))
    write_model(
        tmp_path,
        {
            "type": "sklearn",
            "args": {"pkl_file": "model.pkl", "predict_method": "predict_proba"},
            "schema": {
                "inputs": {"name": "seq", "shape": "(5, 4)", "special_type": "DNASeq"},
                "targets": {"shape": "(2,)", "column_labels": ["other", "central_C"]},
            },
            "postprocessing": {"variant_effects": {"seq_input": ["seq"]}},
        },
    )
    model = load_model(tmp_path)
    np.testing.assert_allclose(model.predict(x[:3]), est.predict_proba(x[:3].reshape(3, -1)), rtol=1e-6)
    assert model.output_labels == ("other", "central_C")


@pytest.mark.tensorflow
def test_keras_full_h5_matches_direct_load() -> None:
    keras = pytest.importorskip("keras")
    model = load_model(EXAMPLES / "mmsplice_donor_kipoi")
    assert (model.framework, model.seq_length, model.output_labels) == ("keras", 18, ("donor_prob",))
    direct = keras.models.load_model(str(EXAMPLES / "mmsplice_donor" / "Donor.h5"), compile=False)
    x = random_onehot(6, 18, seed=5)
    np.testing.assert_allclose(model.predict(x), direct.predict_on_batch(x), rtol=1e-5)
    assert model.default_scores == ["diff"]


@pytest.mark.tensorflow
def test_keras_arch_json_and_weights_tal1() -> None:
    pytest.importorskip("keras")
    import h5py

    model = load_model(EXAMPLES / "tal1_model")
    assert (model.seq_length, str(model.layout)) == (500, "L,4")
    x = random_onehot(3, 500, seed=6)
    with h5py.File(EXAMPLES / "tal1_model" / "model_files" / "weights.hdf5") as fh:
        k = fh["conv1d_1/conv1d_1/kernel:0"][()]  # (15, 4, 16)
        b = fh["conv1d_1/conv1d_1/bias:0"][()]
        w = fh["dense_1/dense_1/kernel:0"][()]
        c = fh["dense_1/dense_1/bias:0"][()]
    windows = np.lib.stride_tricks.sliding_window_view(x, 15, axis=1)  # (N, 486, 4, 15)
    conv = np.maximum(np.einsum("nlcw,wcf->nlf", windows, k) + b, 0).max(axis=1)
    expected = 1 / (1 + np.exp(-(conv @ w + c)))
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-4)


@pytest.mark.tensorflow
def test_keras_custom_objects_file(tmp_path: Path) -> None:
    keras = pytest.importorskip("keras")

    def swish2(x: Any) -> Any:
        return x * keras.ops.sigmoid(x)

    inp = keras.Input((6, 4))
    net = keras.Model(inp, keras.layers.Dense(2, activation=swish2)(keras.layers.Flatten()(inp)))
    net.save(str(tmp_path / "net.h5"))
    doc = {
        "type": "keras",
        "args": {"weights": "net.h5", "custom_objects": "objects.py"},
        "schema": {"inputs": {"shape": "(6, 4)", "special_type": "DNASeq"}, "targets": {"shape": "(2,)"}},
    }
    write_model(tmp_path, doc)
    with pytest.raises(ModelError, match="cannot load the Keras model"):
        load_model(tmp_path)  # objects.py absent: ignored, as kipoi did, so swish2 is unknown
    (tmp_path / "objects.py").write_text(
        "import keras\n\ndef swish2(x):\n    return x * keras.ops.sigmoid(x)\n\n"
        "OBJECTS = {'swish2': swish2}\n"
    )
    x = random_onehot(3, 6, seed=8)
    np.testing.assert_allclose(load_model(tmp_path).predict(x), net.predict_on_batch(x), rtol=1e-5)


@pytest.mark.tensorflow
def test_tensorflow_checkpoint_and_savedmodel(tmp_path: Path) -> None:
    tf = pytest.importorskip("tensorflow")
    length = 7
    weights = np.arange(length * 4, dtype=np.float32).reshape(length, 4) / 10
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, (None, length, 4), name="inputs")
        scale = tf.compat.v1.placeholder_with_default(tf.constant(1.0), (), name="scale")
        w = tf.compat.v1.get_variable("w", initializer=tf.constant(weights))
        tf.identity(tf.reduce_sum(x * w, axis=[1, 2], keepdims=False)[:, None] * scale, name="preds")
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            tf.compat.v1.train.Saver().save(sess, str(tmp_path / "ckpt" / "model.tf"))
    (tmp_path / "ckpt" / "const.pkl").write_bytes(pickle.dumps({"scale": 2.0}))
    write_model(
        tmp_path / "ckpt",
        {
            "type": "tensorflow",
            "args": {
                "input_nodes": "inputs",
                "target_nodes": "preds",
                "checkpoint_path": "model.tf",
                "const_feed_dict_pkl": "const.pkl",
            },
            "schema": {
                "inputs": {"name": "seq", "shape": f"({length}, 4)", "special_type": "DNASeq"},
                "targets": {"shape": "(1,)"},
            },
        },
    )
    xs = random_onehot(3, length, seed=7)
    expected = 2 * (xs * weights).sum(axis=(1, 2))[:, None]
    np.testing.assert_allclose(load_model(tmp_path / "ckpt").predict(xs), expected, rtol=1e-5)

    class Mod(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((None, 4, length), tf.float32)])
        def __call__(self, seq: Any) -> Any:
            return {"out": tf.reduce_sum(seq[:, 2, :], axis=1, keepdims=True)}

    tf.saved_model.save(Mod(), str(tmp_path / "sm" / "saved"), signatures={"serving_default": Mod().__call__})
    write_model(
        tmp_path / "sm",
        {
            "defined_as": "kipoi.model.TensorFlowSavedModel",
            "args": {"savefile": "saved"},
            "schema": {
                "inputs": {"name": "seq", "shape": f"(4, {length})", "special_type": "DNASeq"},
                "targets": {"shape": "(1,)"},
            },
        },
    )
    np.testing.assert_allclose(load_model(tmp_path / "sm").predict(xs), xs[:, :, 2].sum(1, keepdims=True))


def test_missing_weights_and_bad_custom_class(tmp_path: Path) -> None:
    write_model(
        tmp_path / "a",
        {
            "type": "keras",
            "args": {"weights": "model_files/none.h5"},
            "schema": {
                "inputs": {"shape": "(10, 4)", "special_type": "DNASeq"},
                "targets": {"shape": "(1,)"},
            },
        },
    )
    assert describe_model(tmp_path / "a")["supported"] is True
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "a")
    write_model(
        tmp_path / "b",
        {
            "defined_as": "model.py::Nope",
            "schema": {
                "inputs": {"shape": "(10, 4)", "special_type": "DNASeq"},
                "targets": {"shape": "(1,)"},
            },
        },
        {"model.py": "class Other:\n    pass\n"},
    )
    with pytest.raises(ModelError, match="Nope"):
        load_model(tmp_path / "b")


# -- scores ---------------------------------------------------------------------------------------
def ve(*funcs: ScoringFunctionSpec) -> VariantEffectSpec:
    return VariantEffectSpec(seq_input=("seq",), scoring_functions=funcs)


@pytest.mark.parametrize(
    ("funcs", "available", "defaults"),
    [
        (None, ["diff", "ref", "alt"], ["diff"]),
        ((), ["diff", "ref", "alt"], ["diff"]),
        ((ScoringFunctionSpec("diff"),), ["diff", "ref", "alt"], ["diff"]),
        (
            (ScoringFunctionSpec("logit", default=True), ScoringFunctionSpec("ref")),
            ["logit", "ref", "logit_ref", "logit_alt", "deepsea_effect", "diff", "alt"],
            ["logit"],
        ),
        ((ScoringFunctionSpec("diff", name="my_diff"),), ["my_diff", "ref", "alt"], ["my_diff"]),
        ((ScoringFunctionSpec("diff", name="logit"),), ["diff", "ref", "alt"], ["diff"]),
        (
            (
                ScoringFunctionSpec("custom", defined_as="s.py::S"),
                ScoringFunctionSpec("custom", name="diff", defined_as="s.py::S"),
            ),
            ["custom_", "custom_diff", "diff", "ref", "alt"],
            ["custom_", "custom_diff"],
        ),
        (
            (
                ScoringFunctionSpec("deepsea_effect"),
                ScoringFunctionSpec("custom", name="x", defined_as="s.py::S", default=True),
            ),
            ["deepsea_effect", "x", "logit", "logit_ref", "logit_alt", "diff", "ref", "alt"],
            ["x"],
        ),
    ],
)
def test_score_availability(funcs: Any, available: list[str], defaults: list[str]) -> None:
    table, default = score_table(None if funcs is None else ve(*funcs))
    assert [s.label for s in table] == available
    assert list(default) == defaults
    assert all(s.type in SCORES or s.type == "custom" for s in table)


def test_score_rules_reject_duplicates_and_bad_custom() -> None:
    with pytest.raises(KipoiSpecError, match="twice"):
        score_table(
            ve(
                ScoringFunctionSpec("ref", name="foo"),
                ScoringFunctionSpec("custom", name="foo", defined_as="a.py::B"),
            )
        )
    with pytest.raises(KipoiSpecError, match=r"FILE\.py::Name"):
        score_table(ve(ScoringFunctionSpec("custom", name="c", defined_as="a.B")))
    table, _ = score_table(
        ve(ScoringFunctionSpec("custom", name="c", defined_as="a.py::B", args=(ScoringArgSpec("k"),)))
    )
    assert table[0].kwargs is None  # an argument without a default


def test_custom_scores_from_model_dir() -> None:
    model = load_model(EXAMPLES / "gc_content")
    assert isinstance(model, KipoiModel)
    assert model.available_scores == ["diff", "abs_diff", "ref", "alt"]
    scores = model_scores(model)
    score = scores["abs_diff"]
    ref, alt = np.array([[0.2, 0.5]]), np.array([[0.4, 0.1]])
    ref_rc, alt_rc = np.array([[0.2, 0.5]]), np.array([[0.3, 0.5]])
    np.testing.assert_allclose(score(ref, alt), [[0.2, 0.4]])
    np.testing.assert_allclose(score(ref, alt, ref_rc, alt_rc), [[0.15, 0.2]])
    np.testing.assert_allclose(score(ref, alt, ref_rc, alt_rc, rc_merging="max"), [[0.2, 0.4]])
    assert scores["diff"] is SCORES["diff"]


def test_custom_score_without_defaults_needs_kwargs() -> None:
    model = load_model(FIX / "top_level")
    assert isinstance(model, KipoiModel)
    assert model.available_scores == ["delta", "custom_", "ref", "alt"]
    assert model.default_scores == ["delta"]
    ref, alt = np.array([[1.0]]), np.array([[3.0]])
    scores = model_scores(model)
    np.testing.assert_allclose(scores["delta"](ref, alt), [[2.0]])
    with pytest.raises(ModelError, match="without defaults"):
        scores["custom_"](ref, alt)
    np.testing.assert_allclose(scores["custom_"](ref, alt, factor=3), [[6.0]])


def test_register_scores_adds_only_new_labels() -> None:
    model = load_model(FIX / "top_level")
    assert isinstance(model, KipoiModel)
    try:
        added = register_model_scores(model)
        assert set(added) == {"delta", "custom_"}
        assert SCORES["delta"](np.zeros((1, 1)), np.ones((1, 1)))[0, 0] == 1
        assert register_model_scores(model) == []
    finally:
        for label in ("delta", "custom_"):
            SCORES.pop(label, None)


def test_custom_score_argument_mismatch(tmp_path: Path) -> None:
    write_model(
        tmp_path,
        {
            "defined_as": "model.py::M",
            "schema": {"inputs": {"shape": "(4, 4)", "special_type": "DNASeq"}, "targets": {"shape": "(1,)"}},
            "postprocessing": {
                "variant_effects": {
                    "seq_input": ["seq"],
                    "scoring_functions": [
                        {
                            "type": "custom",
                            "name": "s",
                            "defined_as": "s.py::S",
                            "args": {"a": {"default": 1}},
                        }
                    ],
                }
            },
        },
        {
            "model.py": "class M:\n    def predict_on_batch(self, x):\n        return x.sum(axis=(1, 2))\n",
            "s.py": "class S:\n    def __init__(self, b=1):\n        pass\n",
        },
    )
    model = load_model(tmp_path)
    assert isinstance(model, KipoiModel)
    with pytest.raises(ModelError, match="do not match"):
        _ = model_scores(model)


# -- load_model hook, search path, entry points ---------------------------------------------------
def test_load_model_overrides_and_plain_directory(tmp_path: Path) -> None:
    model = load_model(EXAMPLES / "gc_content", output_labels=["a", "b"], name="gc")
    assert model.output_labels == ("a", "b")
    assert model.name == "gc"
    with pytest.raises(ModelError, match=r"without model\.yaml"):
        load_model(tmp_path)


def test_search_path_and_list_models(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VEFF_MODEL_PATH", os.pathsep.join([str(tmp_path / "missing"), str(EXAMPLES)]))
    monkeypatch.setattr(vm, "entry_points", lambda group: [])
    assert resolve_model("gc_content") == EXAMPLES / "gc_content"
    assert isinstance(load_model("gc_content"), KipoiModel)
    names = {m["name"]: m for m in list_models()}
    assert {"gc_content", "tal1_model", "mmsplice_donor_kipoi"} <= set(names)
    assert names["gc_content"]["kind"] == "kipoi"
    with pytest.raises(ModelError, match="VEFF_MODEL_PATH"):
        resolve_model("no_such_model")


def test_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    class EP:
        def __init__(self, name: str, obj: Any) -> None:
            self.name, self.value, self._obj = name, f"pkg:{name}", obj

        def load(self) -> Any:
            return self._obj

    fixed = vm.CallableModel(lambda x: x.sum(axis=(1, 2)), name="fixed", seq_length=3)
    eps = [
        EP("gc", lambda: str(EXAMPLES / "gc_content")),
        EP("fixed", lambda: fixed),
        EP("broken", lambda: "/no/such/path"),
    ]
    monkeypatch.delenv("VEFF_MODEL_PATH", raising=False)
    monkeypatch.setattr(vm, "entry_points", lambda group: eps if group == "veff.models" else [])
    assert isinstance(load_model("gc"), KipoiModel)
    assert load_model("fixed") is fixed
    with pytest.raises(ModelError, match="not a Model or an existing path"):
        load_model("broken")
    assert [m["name"] for m in list_models()] == ["gc", "fixed", "broken"]
    assert describe_model("fixed")["framework"] == "python"


# -- pipeline and CLI -----------------------------------------------------------------------------
def test_score_variants_with_model_directory(tmp_path: Path) -> None:
    import veff

    fasta = HERE / "data" / "lambda_virus.fa"
    chrom = fasta.read_text().splitlines()[0][1:].split()[0]
    seq = "".join(fasta.read_text().splitlines()[1:])
    pos = 500  # 1-based
    ref = seq[pos - 1].upper()
    alt = "G" if ref in "AT" else "A"
    vcf = tmp_path / "v.vcf"
    vcf.write_text(
        "##fileformat=VCFv4.2\n"
        f"##contig=<ID={chrom}>\n"
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
        f"{chrom}\t{pos}\tv1\t{ref}\t{alt}\t.\t.\t.\n"
    )
    res = veff.score_variants(
        str(EXAMPLES / "gc_content"), vcf, fasta, return_predictions=True, scores=["diff"]
    )
    assert isinstance(res, dict)
    diff = res["diff"]
    assert list(diff.columns) == ["gc_fraction", "gc_center"]
    sign = 1 if ref in "AT" else -1
    np.testing.assert_allclose(diff.to_numpy(), [[sign / 101, sign / 11]], rtol=1e-5)


def test_sequence_and_reverse_complement_as_two_inputs() -> None:
    info = describe_model(FIX / "rc_pair")
    assert info["supported"] and info["region_mode"] == "centred"
    assert [(r["name"], r["role"]) for r in info["inputs"]] == [("fwd", "dna"), ("rev", "dna_rc")]
    model = load_kipoi_model(FIX / "rc_pair")
    codes = np.frombuffer(b"ACGTTGCANN", np.uint8)[None]
    x = one_hot(codes)
    weights = ((np.arange(40, dtype=np.float32) * 7) % 9 + 1.0).reshape(10, 4)  # as in model.py
    rc = x[:, ::-1, ::-1]
    np.testing.assert_allclose(model.predict(x), [[(x * weights).sum(), (rc * weights).sum()]])


def test_cli_models_info_and_list(monkeypatch: pytest.MonkeyPatch) -> None:
    from veff.cli.models import models

    runner = CliRunner()
    res = runner.invoke(models, ["info", str(EXAMPLES / "gc_content")])
    assert res.exit_code == 0, res.output
    assert "region mode" in res.output
    assert "gc_fraction, gc_center" in res.output
    res = runner.invoke(models, ["info", str(FIX / "dna_tracks")])
    assert res.exit_code == 0, res.output
    assert "dna, -, shape (12, 6), layout L,4, length 12, +2 signal channels" in res.output
    assert "input seq_rc" in res.output and "dna_rc, -, shape (12, 6)" in res.output
    res = runner.invoke(models, ["info", str(FIX / "xgboost_model"), "--json"])
    assert res.exit_code == 0
    assert json.loads(res.output)["supported"] is False
    res = runner.invoke(models, ["info", "nowhere_model"])
    assert res.exit_code == 1
    assert res.output.startswith("veff: error: model 'nowhere_model' not found")
    monkeypatch.setenv("VEFF_MODEL_PATH", str(EXAMPLES))
    monkeypatch.setattr(vm, "entry_points", lambda group: [])
    res = runner.invoke(models, ["list"])
    assert res.exit_code == 0
    assert "tal1_model" in res.output


# -- conformance over the kipoi/models yaml snapshots ---------------------------------------------
@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("zoo")
    with tarfile.open(ZOO) as tar:
        # keeps the symlinks to shared template files; extraction filters exist from Python 3.11.4 on
        tar.extractall(root, **({"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}))
    return root


def _describe_all(root: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for yml in sorted(root.rglob("model.yaml")):
        out[str(yml.parent.relative_to(root))] = describe_model(yml.parent)
    for yml in sorted(root.rglob("*template*.yaml")):
        if "model" in yml.name:
            out[str(yml.relative_to(root))] = describe_model(yml)  # templates: reported, never a crash
    return out


# Why a model of the 2018-09 snapshot is not supported; anything else is a regression.
KNOWN_GAPS = ("no local dataloader.py", "no DNA input", "profile", "Jinja template", "DNA inputs (")


def test_zoo_snapshot_2018_09(zoo: Path) -> None:
    infos = _describe_all(zoo / "kipoi-models-yaml-2018-09")
    models = {k: v for k, v in infos.items() if not k.endswith(".yaml")}
    assert len(models) == 2068  # + 2 Jinja templates = the 2,070 of SUMMARY.tsv
    assert Counter(v["framework"] for v in models.values()) == {
        "keras": 1733,
        "custom": 329,
        "pytorch": 3,
        "sklearn": 2,
        "tensorflow": 1,
    }
    unsupported = {k: v["unsupported_reason"] for k, v in models.items() if not v["supported"]}
    reasons = Counter(r.split(":")[0][:70] for r in unsupported.values())
    print(f"\n2018-09: {len(models) - len(unsupported)}/{len(models)} supported; unsupported by reason:")
    for reason, n in reasons.most_common():
        print(f"  {n:4d}  {reason}")
    assert all(any(g in r for g in KNOWN_GAPS) for r in unsupported.values()), unsupported
    with_ve = {k: v for k, v in models.items() if v["variant_effects"]}
    assert len(with_ve) == 2030
    # the models kipoi-veff could run that need nothing but their DNA input (the rbp_eclip group
    # also needs dataloader-made features):
    dna_only = {
        k: v
        for k, v in with_ve.items()
        if "come from the model's dataloader" not in (v["unsupported_reason"] or "")
    }
    share = sum(v["supported"] for v in dna_only.values()) / len(dna_only)
    print(f"2018-09 with variant_effects and DNA-only inputs: {share:.2%} supported")
    assert share >= 0.99
    assert (len(models) - len(unsupported)) / len(models) >= 0.99  # 2,062 of 2,068
    factornet = {k: v for k, v in models.items() if k.startswith("FactorNet/")}
    assert len(factornet) == 30 and all(v["supported"] for v in factornet.values())
    ctcf = models["FactorNet/CTCF/meta_RNAseq_Unique35_DGF"]
    assert [(r["name"], r["role"], r["tracks"]) for r in ctcf["inputs"]] == [
        ("seq", "dna", 2),
        ("seq_rc", "dna_rc", 2),
        ("meta_features", "other", 0),
    ]
    assert ctcf["region_mode"] == "overlap" and ctcf["inputs"][0]["length"] == 1002
    assert models["rbp_eclip/AARS"]["supported"]  # its distance features come from its dataloader
    assert models["rbp_eclip/AARS"]["region_mode"] == "bed_input"
    for key in (
        "DeepSEA/variantEffects",
        "lsgkm-SVM/Tfbs/Ap2alpha/Helas3/Sydh_Std",
        "Basset",
        "CpGenie/A549_ENCSR000DDI",
        "pwm_HOCOMOCO/human/NFIL3",
        "KipoiSplice/4",
    ):
        assert key in models
    assert models["DeepSEA/variantEffects"]["inputs"][0]["layout"] == "4,1,L"
    assert models["lsgkm-SVM/Tfbs/Ap2alpha/Helas3/Sydh_Std"]["inputs"][0]["layout"] == "string"
    assert models["Basset"]["default_scores"] == ["diff", "logit"]
    assert models["pwm_HOCOMOCO/human/NFIL3"]["inputs"][0]["length"] is None
    assert models["KipoiSplice/4"]["supported"] is False
    templates = {k: v for k, v in infos.items() if k.endswith(".yaml")}
    assert sorted(templates) == [
        "DeepCpG_DNA/template/model_template.yaml",
        "FactorNet/template/template_model.yaml",
    ]
    assert "Jinja template" in templates["FactorNet/template/template_model.yaml"]["unsupported_reason"]


def test_zoo_later_snapshots_do_not_crash(zoo: Path) -> None:
    for snap in ("kipoi-models-yaml-2021-10", "kipoi-models-yaml"):
        infos = _describe_all(zoo / snap)
        ok = sum(v["supported"] for v in infos.values())
        print(f"\n{snap}: {ok}/{len(infos)} supported")
        assert ok >= 40
        for v in infos.values():
            assert v["supported"] or v["unsupported_reason"]
