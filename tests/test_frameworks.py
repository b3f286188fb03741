"""The framework registry: built-in adapters, and a third-party one added at run time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import CHR1, write_vcf

import veff
import veff.models as vm
from veff.errors import ModelError
from veff.models import registry
from veff.models.base import Model
from veff.models.registry import Framework, LoadOptions
from veff.variants.sequences import one_hot, str_to_codes

EXAMPLES = Path(__file__).resolve().parent.parent / "example_data" / "models"


class ScaleModel(Model):
    """A 'framework' whose files hold one number: the model returns that many times the GC count."""

    framework = "toy"

    def __init__(self, path: Path) -> None:
        self.factor = float(path.read_text())
        self.name = path.stem
        self.seq_length = 5

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return self.factor * x[:, :, 1:3].sum(axis=(1, 2))[:, None]


def _load_toy(source: Any, options: LoadOptions) -> Model:
    if not isinstance(source, Path):
        raise ModelError("toy models are files")
    return ScaleModel(source)


@pytest.fixture
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> dict[str, Framework]:
    """An empty registry that loads the built-ins again, so a test's frameworks do not leak."""
    table: dict[str, Framework] = {}
    monkeypatch.setattr(registry, "_FRAMEWORKS", table)
    monkeypatch.setattr(registry, "_loaded", False)
    return table


def test_builtin_frameworks_take_their_sources() -> None:
    kinds = [fw.kind for fw in registry.frameworks()]
    assert kinds[-1] == "python"  # the catch-all is asked last
    assert {"pytorch", "keras", "kipoi", "python"} <= set(kinds)
    assert registry.find_framework(EXAMPLES / "gc_content").kind == "kipoi"
    assert registry.find_framework(lambda x: x).kind == "python"
    assert registry.find_framework("net.py::Net").kind == "pytorch"
    assert registry.find_framework("model.h5") is None  # a string is not a path until it exists
    assert registry.find_framework(EXAMPLES) is None  # a directory without model.yaml


def test_a_framework_registered_at_run_time_is_found_by_load_model(
    tmp_path: Path, fresh_registry: dict[str, Framework], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def threads(n: int) -> Any:
        calls.append(n)
        return lambda: calls.append(-n)

    fw = registry.register_framework(
        Framework("toy", _load_toy, suffixes=(".toy",), threads=threads, title="Toy")
    )
    assert registry.find_framework(tmp_path) is None
    path = tmp_path / "triple.toy"
    path.write_text("3")
    model = vm.load_model(path, output_labels=["gc3"], name="t3")
    assert isinstance(model, ScaleModel)
    assert (model.name, model.output_labels, model.seq_length) == ("t3", ("gc3",), 5)
    x = one_hot(str_to_codes("ACGTT")[None])
    np.testing.assert_allclose(model.predict(x), [[6.0]])
    assert registry.find_framework(path) is fw
    with vm.cpu_threads(2):
        assert calls == [2]
    assert calls == [2, -2]
    # the search path lists it under its kind, and unknown suffixes name it
    monkeypatch.setenv("VEFF_MODEL_PATH", str(tmp_path))
    monkeypatch.setattr(vm, "entry_points", lambda group: [])
    assert [(m["name"], m["kind"]) for m in vm.list_models()] == [("triple.toy", "toy")]
    assert isinstance(vm.load_model("triple.toy"), ScaleModel)
    (tmp_path / "m.onnx").write_text("x")
    with pytest.raises(ModelError, match=r"unknown model kind.*\.toy \(Toy\)"):
        vm.load_model(tmp_path / "m.onnx")
    with pytest.raises(ModelError, match="already registered"):
        registry.register_framework(Framework("toy", _load_toy, suffixes=(".toy2",)))


def test_a_framework_from_an_entry_point(
    tmp_path: Path, fresh_registry: dict[str, Framework], monkeypatch: pytest.MonkeyPatch
) -> None:
    class EP:
        name, value = "toy", "toypkg:framework"

        def load(self) -> Any:
            return lambda: Framework("toy", _load_toy, suffixes=(".toy",))

    monkeypatch.setattr(
        registry, "entry_points", lambda group: [EP()] if group == registry.ENTRY_POINT_GROUP else []
    )
    path = tmp_path / "double.toy"
    path.write_text("2")
    assert isinstance(vm.load_model(path), ScaleModel)
    assert [fw.kind for fw in registry.frameworks()][-2:] == ["toy", "python"]


def test_a_broken_framework_entry_point_is_one_clear_error(
    fresh_registry: dict[str, Framework], monkeypatch: pytest.MonkeyPatch
) -> None:
    class EP:
        name, value = "bad", "badpkg:framework"

        def load(self) -> Any:
            return 42

    monkeypatch.setattr(registry, "entry_points", lambda group: [EP()])
    with pytest.raises(ModelError, match="framework entry point badpkg:framework gave 42"):
        registry.frameworks()


def test_a_higher_priority_framework_takes_a_suffix_over_the_builtin(
    tmp_path: Path, fresh_registry: dict[str, Framework]
) -> None:
    registry.register_framework(Framework("toy", _load_toy, suffixes=(".pt",), priority=1))
    path = tmp_path / "net.pt"
    path.write_text("1")
    assert isinstance(vm.load_model(path), ScaleModel)


def test_a_run_time_framework_scores_a_vcf_end_to_end(
    tmp_path: Path, genome: Path, fresh_registry: dict[str, Framework]
) -> None:
    registry.register_framework(Framework("toy", _load_toy, suffixes=(".toy",)))
    path = tmp_path / "double.toy"
    path.write_text("2")
    pos = next(i + 1 for i in range(50, 500) if CHR1[i] == "A")
    vcf = write_vcf(tmp_path / "in.vcf", [("chr1", pos, "a2g", "A", "G")])
    res = veff.score_variants(path, vcf, genome, return_predictions=True, scores=["diff", "ref"])
    window = CHR1[pos - 3 : pos + 2].upper()  # 5 bases, the variant at index (5-1)//2
    gc = window.count("G") + window.count("C")
    assert res["ref"].iloc[0, 0] == pytest.approx(2 * gc)
    assert res["diff"].iloc[0, 0] == pytest.approx(2.0)  # one more G
