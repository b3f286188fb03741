"""Receptive-field ISM (method fast) against naive ISM, its refusals, and the self-check fallback."""

from __future__ import annotations

import logging
from pathlib import Path

import h5py
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _mutmap_fixtures import toy_model, write_genome  # noqa: E402
from fastism_models import (  # noqa: E402
    AliasedAdd,
    AllKinds,
    ArgmaxHead,
    BatchStatistics,
    ChannelsLast,
    GlobalFirst,
    HookedConv,
    InPlace,
    InPlaceView,
    LastInBatch,
    UnknownMiddle,
    ValidPadding,
    VarArgs,
    build,
)

from veff.engine.outputs import flatten_output  # noqa: E402
from veff.errors import VeffWarning  # noqa: E402
from veff.models.torch import TorchModel  # noqa: E402
from veff.models.torch_ism import FastISM  # noqa: E402
from veff.mutation_map.compute import MutationMap  # noqa: E402
from veff.mutation_map.engines import outputs_agree  # noqa: E402
from veff.mutation_map.mutagenesis import mutant_table, mutate  # noqa: E402
from veff.types import Region  # noqa: E402
from veff.variants.sequences import one_hot  # noqa: E402

L = 100


@pytest.fixture(scope="module")
def fasta(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_genome(tmp_path_factory.mktemp("fastism"))


def _ref(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ref = rng.choice(np.frombuffer(b"ACGT", np.uint8), L)
    ref[[3, 40, 97]] = ord("N")  # N gets all 4 bases
    return ref


def _fast(fast: FastISM, ref: np.ndarray, pos: np.ndarray, base: np.ndarray, batch_size: int) -> np.ndarray:
    """The fast path's raw outputs, one per batch, flattened and joined: (M, F)."""
    outs = fast.predict(ref, pos, base, batch_size)
    sizes = [min(batch_size, len(pos) - lo) for lo in range(0, len(pos), batch_size)]
    assert len(outs) == len(sizes)  # one raw output per batch (flatten_output checks its rows)
    return np.concatenate([flatten_output(o, n) for o, n in zip(outs, sizes, strict=True)])


def _naive(model: TorchModel, ref: np.ndarray, pos: np.ndarray, base: np.ndarray) -> np.ndarray:
    alt = mutate(ref, pos, base)
    return flatten_output(model.predict(one_hot(alt)), len(alt))


@pytest.mark.parametrize(
    ("cls", "kinds"),
    [
        (AllKinds, {"conv", "pool", "crop", "pointwise"}),
        (ChannelsLast, {"conv", "crop", "pointwise"}),
    ],
)
def test_fast_equals_naive_with_every_layer_kind(cls: type, kinds: set[str]) -> None:
    model = TorchModel(build(cls, L), device="cpu", seq_length=L)
    fast = FastISM(model, L, max_fraction=1.0)  # keep every local layer local
    assert fast.usable, fast.plan.note
    seen = {line.split(": ")[1].split(",")[0] for line in fast.plan.layers}
    assert kinds <= seen
    names = " ".join(fast.plan.layers)
    if cls is AllKinds:  # conv, BN, relu, max pool, dilated conv + residual add, strided conv, cat, crop,
        for name in (
            "c1",
            "b1",
            "p1",
            "c2",
            "add",
            "c3",
            "c4",
            "cat",
            "getitem",
            "gelu",
            "mul",
            "ap",
            "drop",
        ):
            assert f"{name}:" in names, name
    ref = _ref()
    pos, base = mutant_table(ref)
    got = _fast(fast, ref, pos, base, 37)  # batches that cut positions apart
    want = _naive(model, ref, pos, base)
    assert got.shape == want.shape
    ok, worst = outputs_agree(got, want)
    assert ok, worst
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("cls", [ValidPadding, InPlace])
def test_fast_equals_naive_with_string_padding_and_in_place_changes(cls: type) -> None:
    model = TorchModel(build(cls, L), device="cpu", seq_length=L)
    fast = FastISM(model, L, max_fraction=1.0)
    assert fast.usable, fast.plan.note
    ref = _ref(3)
    pos, base = mutant_table(ref)
    got, want = _fast(fast, ref, pos, base, 41), _naive(model, ref, pos, base)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize(
    ("cls", "why"),
    [
        (InPlaceView, "in-place operation relu_ changes a tensor that other operations also read"),
        (AliasedAdd, "graph of the module does not reproduce its output"),
        (VarArgs, "graph of the module does not reproduce its output"),
        (BatchStatistics, "depends on the other sequences of its batch"),
        (LastInBatch, "depends on the other sequences of its batch"),
        (ArgmaxHead, "argmax turns activations into whole numbers"),
    ],
)
def test_refuses_models_it_cannot_reproduce_exactly(cls: type, why: str) -> None:
    model = TorchModel(build(cls, L), device="cpu", seq_length=L)
    fast = FastISM(model, L, max_fraction=1.0)
    assert not fast.usable
    assert why in fast.plan.note


def test_window_fraction_ends_prefix_and_stays_exact() -> None:
    model = TorchModel(build(AllKinds, L), device="cpu", seq_length=L)
    fast = FastISM(model, L)  # default: layers reached over more than half their length run in full
    assert fast.usable
    assert "run in full" in fast.plan.note
    ref = _ref(1)
    pos, base = mutant_table(ref)
    assert outputs_agree(_fast(fast, ref, pos, base, 64), _naive(model, ref, pos, base))[0]


@pytest.mark.parametrize(
    ("cls", "why"),
    [
        (GlobalFirst, "mean"),  # mixes the sequence before any convolution
        (HookedConv, "Conv1d is not a known local layer"),  # a hook the tracer cannot look into
    ],
)
def test_refuses_models_without_a_local_prefix(cls: type, why: str) -> None:
    fast = FastISM(TorchModel(build(cls, L), device="cpu", seq_length=L), L)
    assert not fast.usable
    assert why in fast.plan.note


def test_prefix_ends_at_unknown_operation() -> None:
    model = TorchModel(build(UnknownMiddle, L), device="cpu", seq_length=L)
    fast = FastISM(model, L)
    assert fast.usable
    assert "cumsum" in fast.plan.note
    assert [line.split(":")[0] for line in fast.plan.layers] == ["x", "c1", "relu"]
    ref = _ref(2)
    pos, base = mutant_table(ref)
    assert outputs_agree(_fast(fast, ref, pos, base, 50), _naive(model, ref, pos, base))[0]


def test_refuses_torchscript_and_half_precision() -> None:
    net = build(UnknownMiddle, L)
    scripted = TorchModel(torch.jit.trace(net, torch.zeros(1, 4, L)), device="cpu", seq_length=L)
    assert "TorchScript" in FastISM(scripted, L).plan.note
    half = TorchModel(net, device="cpu", seq_length=L, precision="bfloat16")
    assert "float32" in FastISM(half, L).plan.note


def _maps(fasta: Path, tmp_path: Path, net: torch.nn.Module, **kw: object) -> dict[str, h5py.File]:
    out = {}
    for method in ("naive", "fast"):
        mm = MutationMap(net, fasta, seq_length=L, scores=("diff", "alt"), rc=True, method=method, **kw)
        path = tmp_path / f"{method}.h5"
        # one window over the N run, one hanging over the contig start, one on the minus strand
        mm.query_windows(
            [
                (Region("chrA", 20, 120), "a"),
                (Region("chrA", -30, 70), "b"),
                (Region("chrA", 150, 250, "-"), "c"),
            ],
            output=path,
        )
        out[method] = h5py.File(path)
    return out


def test_mutation_map_fast_matches_naive(
    fasta: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    net = build(AllKinds, L)
    with caplog.at_level(logging.INFO, logger="veff"):
        maps = _maps(fasta, tmp_path, net, model_kwargs={"device": "cpu"})
    assert maps["fast"].attrs["method"] == "fast"
    assert maps["naive"].attrs["method"] == "naive"
    assert "receptive-field ISM" in maps["fast"].attrs["method_note"]
    assert any("self-check" in r.message for r in caplog.records)
    for k in ("0", "1", "2"):
        for score in ("diff", "alt"):
            a = maps["fast"][f"entries/{k}/scores/{score}"][()]
            b = maps["naive"][f"entries/{k}/scores/{score}"][()]
            assert np.array_equal(np.isnan(a), np.isnan(b))
            scale = np.abs(maps["naive"][f"entries/{k}/ref_prediction"][()]).max()
            assert np.nanmax(np.abs(a - b)) <= 1e-5 * scale
    assert np.isnan(maps["fast"]["entries/1/scores/diff"][:30]).all()  # outside the contig


def test_auto_uses_fast_for_torch_and_naive_for_others(fasta: Path, tmp_path: Path) -> None:
    mm = MutationMap(build(AllKinds, L), fasta, seq_length=L, model_kwargs={"device": "cpu"})
    assert mm.window_scores(Region("chrA", 20, 120)).method == "fast"
    model, _ = toy_model(L)
    mm = MutationMap(model, fasta)
    res = mm.window_scores(Region("chrA", 20, 120))
    assert res.method == "naive"
    assert "PyTorch" in mm.method_used[1]


def test_method_fast_on_unusable_model_warns_and_runs_naive(fasta: Path, tmp_path: Path) -> None:
    net = build(GlobalFirst, L)
    mm = MutationMap(net, fasta, seq_length=L, method="fast", model_kwargs={"device": "cpu"})
    with pytest.warns(VeffWarning, match="--method fast: no local layers"):
        res = mm.query_windows([(Region("chrA", 20, 120), "a")], output=tmp_path / "m.h5")
    assert res.method == "naive"
    assert "no local layers" in res.attrs["method_note"]
    naive = MutationMap(net, fasta, seq_length=L, method="naive", model_kwargs={"device": "cpu"})
    want = naive.window_scores(Region("chrA", 20, 120)).scores["diff"]
    assert np.array_equal(res.entries[0].scores["diff"], want, equal_nan=True)


def test_self_check_refuses_a_wrong_fast_path(
    fasta: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = build(AllKinds, L)
    real = FastISM.predict

    def off_by_a_little(self: FastISM, *args: object, **kw: object) -> list[np.ndarray]:
        outs = real(self, *args, **kw)  # type: ignore[arg-type]
        for out in outs:
            out[:, 0] *= 1 + 1e-4  # far below what a plot would show, far above float rounding
        return outs

    monkeypatch.setattr(FastISM, "predict", off_by_a_little)
    mm = MutationMap(net, fasta, seq_length=L, method="fast", rc=True, model_kwargs={"device": "cpu"})
    with pytest.warns(VeffWarning, match="differs from naive ISM on the first window"):
        res = mm.query_windows(
            [(Region("chrA", 20, 120), "a"), (Region("chrA", 150, 250), "b")], output=tmp_path / "m.h5"
        )
    assert res.method == "naive"
    assert "self-check" not in res.attrs["method_note"] or "differs" in res.attrs["method_note"]
    monkeypatch.setattr(FastISM, "predict", real)
    naive = MutationMap(net, fasta, seq_length=L, method="naive", rc=True, model_kwargs={"device": "cpu"})
    for k, window in enumerate((Region("chrA", 20, 120), Region("chrA", 150, 250))):
        want = naive.window_scores(window).scores["diff"]
        assert np.array_equal(res.entries[k].scores["diff"], want, equal_nan=True)  # bit for bit


def test_fast_path_error_falls_back(fasta: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: FastISM, *args: object, **kw: object) -> np.ndarray:
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(FastISM, "predict", broken)
    mm = MutationMap(build(AllKinds, L), fasta, seq_length=L, model_kwargs={"device": "cpu"})
    with pytest.warns(VeffWarning, match="the fast path failed"):
        res = mm.window_scores(Region("chrA", 20, 120))
    assert res.method == "naive"
    assert np.isfinite(res.scores["diff"]).sum() == (3 * 96 + 4 * 4) * 5  # an N run of 4 in the window


def test_outputs_agree_tolerance() -> None:
    naive = np.array([[10.0, 0.5], [-5.0, 1e-9]], np.float32)
    assert outputs_agree(naive * (1 + 5e-6), naive)[0]
    assert not outputs_agree(naive + np.array([[2e-4, 0]], np.float32), naive)[0]  # 2e-5 of 10
    assert not outputs_agree(naive + np.array([[0, 1e-5]], np.float32), naive)[0]  # 2e-5 of 0.5
    assert not outputs_agree(naive[:1], naive)[0]
    # a track (one group): each position is measured against the track's largest value
    track = np.array([[1.0, 1e-3, 0.5]], np.float32)
    assert outputs_agree(track + 5e-6, track, groups=np.zeros(3, np.int64))[0]
    assert not outputs_agree(track + 5e-6, track)[0]  # 5e-6 / 1e-2 per column alone


def test_mutant_engine_hook_refuses_with_a_note() -> None:
    """Models without receptive-field ISM say why; the PyTorch adapter's hook is FastISM."""
    from veff.errors import ModelError

    plain, _ = toy_model(L)
    engine = plain.mutant_engine(L)
    assert not engine.usable and "needs a PyTorch module" in engine.note
    ref = _ref()
    pos, base = mutant_table(ref)
    with pytest.raises(ModelError, match="no receptive-field ISM"):
        engine.predict(ref, pos, base, 8)
    model = TorchModel(build(AllKinds, L), device="cpu", seq_length=L)
    fast = model.mutant_engine(L)
    assert isinstance(fast, FastISM) and fast.usable and fast.layers == fast.plan.layers
    model.close()
    released = model.mutant_engine(L)
    assert not released.usable and "released" in released.note


class _ConvDense(torch.nn.Module):
    """conv 4->8 (k=3, same) -> ReLU -> flatten -> linear to 2: a known cost per mutant."""

    seq_len = L
    input_layout = "4,L"

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv1d(4, 8, 3, padding=1)
        self.dense = torch.nn.Linear(8 * L, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(torch.relu(self.conv(x)).flatten(1))


def test_fast_path_reports_one_mutants_cost_where_it_runs_in_full() -> None:
    fast = FastISM(TorchModel(_ConvDense().eval()), L)
    assert fast.usable
    # the ReLU output is rebuilt at full length (8 x L floats); then flatten (8 L) and the dense layer
    assert fast.activation_floats == 8 * L
    assert fast.flops_per_float == pytest.approx(2 * 2 * 8 * L / (8 * L + 2))


def _batches(model: TorchModel, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Rows of every forward call of ``model`` (naive ISM, the reference, the self-check)."""
    seen: list[int] = []
    forward = model._forward

    def counted(x: np.ndarray) -> object:
        seen.append(len(x))
        return forward(x)

    monkeypatch.setattr(model, "_forward", counted)
    return seen


def test_automatic_batch_follows_the_model_for_naive_and_the_fast_path(
    fasta: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from veff.engine.batching import auto_batch_size, model_batch_size
    from veff.mutation_map.engines import FAST_ISM_MAX_BATCH, MutantPredictor

    model = TorchModel(build(AllKinds, L))
    naive = MutantPredictor(model, L, "naive", rc=False, batch_size=None)
    assert naive.batch_size == model_batch_size(model, L)
    fast = MutantPredictor(model, L, "fast", rc=False, batch_size=None)
    engine = model.mutant_engine(L)
    rule = auto_batch_size(L, None, "cpu", engine.activation_floats, engine.flops_per_float)
    assert fast.method == "fast" and fast.fast_batch == min(FAST_ISM_MAX_BATCH, rule)
    given = MutantPredictor(model, L, "fast", rc=False, batch_size=5)
    assert given.batch_size == given.fast_batch == 5

    wide = TorchModel(
        torch.nn.Sequential(torch.nn.Conv1d(4, 512, 3), torch.nn.Flatten(), torch.nn.LazyLinear(2))
    )
    wide.module(torch.zeros(1, 4, L))
    auto = model_batch_size(wide, L)
    assert auto < 3 * L  # 512 x 98 floats per sequence: 64
    seen = _batches(wide, monkeypatch)
    MutationMap(wide, fasta, method="naive", rc=False, seq_length=L).window_scores(Region("chrA", 0, L))
    assert max(seen) == auto  # the mutants of the window in calls of the automatic size
    seen.clear()
    MutationMap(wide, fasta, method="naive", rc=False, seq_length=L, batch_size=7).window_scores(
        Region("chrA", 0, L)
    )
    assert max(seen) == 7
