"""Gradient maps (saliency, gradient x input, integrated gradients): values against finite
differences and known gradients, the HDF5 format (version 2, method attribute; version 1 read), and
the plots of every method."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _mutmap_fixtures import CONTIGS, write_genome  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from fastism_models import AllKinds, Smooth, build  # noqa: E402

from veff.cli.mutation_map import create_mutation_map_cmd, plot_mutation_map_cmd  # noqa: E402
from veff.errors import InputError, ModelError  # noqa: E402
from veff.mutation_map.compute import MutationMap, load_mutation_map  # noqa: E402
from veff.types import Region  # noqa: E402
from veff.variants.sequences import one_hot, reverse_complement_codes, str_to_codes  # noqa: E402

L = 100
EXAMPLE = Path(__file__).parents[1] / "example_data"


@pytest.fixture(scope="module")
def fasta(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_genome(tmp_path_factory.mktemp("grad"))


def _targets(net: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """float64 outputs as veff reduces them: the profile summed over positions (2), the 3 scalars."""
    with torch.no_grad():
        profile, scalar = net.double()(torch.from_numpy(x.transpose(0, 2, 1)))
        net.float()
    return torch.cat([profile.sum(1), scalar], 1).numpy()


def _finite_differences(net: torch.nn.Module, seq: str, eps: float = 1e-4) -> np.ndarray:
    """d output / d x[l, b], central differences in float64: (L, 4, 5)."""
    x = one_hot(str_to_codes(seq)[None]).astype(np.float64)
    bumps = np.zeros((2 * L * 4, L, 4))
    for k in range(L * 4):
        bumps[2 * k, k // 4, k % 4] = eps
        bumps[2 * k + 1, k // 4, k % 4] = -eps
    y = _targets(net, x + bumps)
    return ((y[0::2] - y[1::2]) / (2 * eps)).reshape(L, 4, -1)


def test_saliency_matches_finite_differences(fasta: Path) -> None:
    net = build(Smooth, L)
    window = Region("chrA", 150, 250)
    seq = CONTIGS["chrA"][150:250]
    want = _finite_differences(net, seq)
    maps = {}
    for method in ("saliency", "grad_x_input", "integrated_gradients"):
        mm = MutationMap(net, fasta, seq_length=L, method=method, model_kwargs={"device": "cpu"}, ig_steps=64)
        assert mm.labels == ["0:0", "0:1", "1:0", "1:1", "1:2"] or len(mm.labels) == 5
        maps[method] = mm.window_scores(window)
        assert maps[method].method == method
    got = maps["saliency"].scores["saliency"]
    assert got.shape == (L, 4, 5)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3 * np.abs(want).max())
    x = one_hot(str_to_codes(seq))
    np.testing.assert_allclose(maps["grad_x_input"].scores["grad_x_input"], got * x[:, :, None], rtol=1e-6)
    # integrated gradients: the attributions add up to f(x) - f(baseline 0)
    ig = maps["integrated_gradients"].scores["integrated_gradients"]
    delta = _targets(net, x[None].astype(np.float64))[0] - _targets(net, np.zeros((1, L, 4)))[0]
    np.testing.assert_allclose(ig.sum(axis=(0, 1)), delta, rtol=2e-3, atol=2e-3 * np.abs(delta).max())
    assert (ig[x == 0] == 0).all()


def test_output_selection_sum_and_aggregate(fasta: Path) -> None:
    net = build(Smooth, L)
    window = Region("chrA", 150, 250, "-")
    base: dict = {"seq_length": L, "method": "saliency", "model_kwargs": {"device": "cpu"}}
    each = MutationMap(net, fasta, **base).window_scores(window).scores["saliency"]
    summed = MutationMap(net, fasta, gradient_outputs="sum", model_outputs=[0, 3], **base)
    assert summed.labels[0].startswith("sum(")
    got = summed.window_scores(window).scores["saliency"]
    assert got.shape == (L, 4, 1)
    np.testing.assert_allclose(got[:, :, 0], each[:, :, 0] + each[:, :, 3], rtol=1e-5, atol=1e-6)
    # minus strand: the model saw the reverse complement; the map is on forward positions/bases
    seq = CONTIGS["chrA"][150:250]
    rc = seq[::-1].translate(str.maketrans("ACGT", "TGCA"))
    want = _finite_differences(net, rc)[::-1, ::-1]
    np.testing.assert_allclose(each, want, rtol=1e-3, atol=1e-3 * np.abs(want).max())
    # the profile head reduced at the window centre only (at_variant)
    centre = MutationMap(net, fasta, aggregate="at_variant", model_outputs=[0], **base)
    one = centre.window_scores(Region("chrA", 150, 250)).scores["saliency"][:, :, 0]
    far = np.abs(one[: 49 - 1 - 12]).max()  # beyond the receptive field (7 + 5 + 3 - 3 = 12 each side)
    assert far == 0 and np.abs(one[40:60]).max() > 0


def test_keras_saliency_of_a_linear_model_is_its_kernel(fasta: Path) -> None:
    keras = pytest.importorskip("keras")
    inp = keras.Input((20, 4))
    out = keras.layers.Dense(2)(keras.layers.Flatten()(inp))
    model = keras.Model(inp, out)
    kernel = np.random.default_rng(0).normal(size=(80, 2)).astype(np.float32)
    model.layers[-1].set_weights([kernel, np.zeros(2, np.float32)])
    mm = MutationMap(model, fasta, method="saliency")
    got = mm.window_scores(Region("chrA", 100, 120)).scores["saliency"]
    np.testing.assert_allclose(got, kernel.reshape(20, 4, 2), rtol=1e-6)
    gx = MutationMap(model, fasta, method="grad_x_input").window_scores(Region("chrA", 100, 120))
    x = one_hot(str_to_codes(CONTIGS["chrA"][100:120]))
    np.testing.assert_allclose(gx.scores["grad_x_input"], kernel.reshape(20, 4, 2) * x[:, :, None], rtol=1e-6)


def test_gradient_methods_refuse_plain_callables(fasta: Path) -> None:
    from _mutmap_fixtures import toy_model

    model, _ = toy_model(L)
    with pytest.raises(Exception, match="gradient maps need a PyTorch or Keras model"):
        MutationMap(model, fasta, method="saliency").window_scores(Region("chrA", 20, 120))
    with pytest.raises(InputError, match="unknown mutation map method"):
        MutationMap(model, fasta, method="gradient")


def test_hdf5_round_trip_of_every_method_and_version_1(fasta: Path, tmp_path: Path) -> None:
    net = build(Smooth, L)
    for method in ("naive", "fast", "saliency", "integrated_gradients"):
        mm = MutationMap(net, fasta, seq_length=L, method=method, ig_steps=8, model_kwargs={"device": "cpu"})
        out = tmp_path / f"{method}.h5"
        res = mm.query_region("chrA", 100, 250, output=out)
        assert res.method == method
        assert res.format_version == 2
        e = res.entries[0]
        assert e.method == method
        name = "diff" if method in ("naive", "fast") else method
        assert res.scores == (name,)
        arr = e.scores[name]
        assert arr.shape == (L, 4, 5) and arr.dtype == np.float32
        with h5py.File(out) as fh:
            assert fh.attrs["method"] == method
            assert fh.attrs["method_requested"] == method
            if method == "integrated_gradients":
                assert fh.attrs["ig_steps"] == 8 and fh.attrs["ig_baseline"] == "zeros"
        if method == "saliency":
            assert np.isfinite(arr).all()  # all four bases, the observed one included
    # a version-1 file (written before methods existed) reads as a naive ISM map
    with h5py.File(tmp_path / "naive.h5", "r+") as fh:
        fh.attrs["format_version"] = 1
        for key in ("method", "method_note", "method_requested"):
            del fh.attrs[key]
    old = load_mutation_map(tmp_path / "naive.h5")
    assert (old.format_version, old.method, old.entries[0].method) == (1, "naive", "naive")


def test_plots_of_every_method(fasta: Path, tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from veff.mutation_map.plot import plot_mutation_map

    net = build(AllKinds, L)
    titles = {}
    for method in ("naive", "fast", "saliency", "grad_x_input", "integrated_gradients"):
        mm = MutationMap(
            net, fasta, seq_length=L, method=method, model_outputs=[1], model_kwargs={"device": "cpu"}
        )
        path = tmp_path / f"{method}.h5"
        mm.query_region("chrA", 150, 250, output=path)
        png = tmp_path / f"{method}.png"
        res = plot_mutation_map(path, output=png)
        titles[method] = res.logos[0].get_title(loc="left")
        assert png.stat().st_size > 10_000
        with open(png, "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
        if method in ("saliency", "grad_x_input", "integrated_gradients"):
            assert res.logos[0].get_ylim()[0] < 0 or method == "saliency"  # signed letters
        plt.close(res.figure)
    assert "ISM (naive)" in titles["naive"]
    assert "ISM (receptive-field, fast)" in titles["fast"]
    assert "saliency" in titles["saliency"] and "gradient x input" in titles["grad_x_input"]
    assert "integrated gradients" in titles["integrated_gradients"]


def test_cli_methods(tmp_path: Path) -> None:
    model = f"{EXAMPLE / 'models' / 'donor_cnn' / 'donor_cnn.py'}::DonorCNN"
    weights = EXAMPLE / "models" / "donor_cnn" / "donor_cnn.pth"
    fasta = EXAMPLE / "reference" / "hg38_chr22_32000001-32300000.padded.fa.gz"
    runner = CliRunner()
    outs = {}
    for method in ("fast", "naive", "grad_x_input"):
        out = tmp_path / f"{method}.h5"
        args = [
            model,
            "--weights",
            str(weights),
            "--fasta",
            str(fasta),
            "--region",
            "chr22:32068401-32068501",
        ]
        res = runner.invoke(
            create_mutation_map_cmd, [*args, "-o", str(out), "--method", method, "--device", "cpu", "-vv"]
        )
        assert res.exit_code == 0, res.output
        assert f"method {method}" in res.output
        if method == "fast":  # -vv: the method, the self-check and the layers
            assert "fast ISM: receptive-field ISM over" in res.output
            assert "self-check on" in res.output
            assert "conv1: conv, length 93, window 9" in res.output
        outs[method] = load_mutation_map(out)
        png = tmp_path / f"{method}.png"
        res = runner.invoke(plot_mutation_map_cmd, [str(out), "-o", str(png)])
        assert res.exit_code == 0, res.output
        assert png.is_file()
    a, b = outs["fast"].entries[0].scores["diff"], outs["naive"].entries[0].scores["diff"]
    assert np.nanmax(np.abs(a - b)) <= 1e-5
    assert outs["grad_x_input"].scores == ("grad_x_input",)
    res = runner.invoke(
        create_mutation_map_cmd,
        [model, "--fasta", str(fasta), "--region", "chr22:1-10", "-o", "x.h5", "--method", "shap"],
    )
    assert res.exit_code == 2 and "shap" in res.output


@pytest.mark.parametrize(("method", "batch"), [("saliency", 2), ("integrated_gradients", 8)])
def test_windows_share_backward_passes(
    fasta: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str, batch: int
) -> None:
    """Several windows per forward/backward call give each window the map it gets alone, and the
    saliency forward pass is the stored reference prediction."""
    from veff.engine.outputs import flatten_output
    from veff.models.torch import TorchModel

    net = build(Smooth, L)
    calls: list[int] = []
    real = TorchModel.input_gradients

    def counting(self: TorchModel, x: np.ndarray, target: object) -> tuple[np.ndarray, object]:
        calls.append(len(x))
        return real(self, x, target)  # type: ignore[arg-type]

    monkeypatch.setattr(TorchModel, "input_gradients", counting)
    windows = [
        (Region("chrA", 20, 120), "a"),
        (Region("chrA", -30, 70), "b"),  # hangs over the contig start: NaN there
        (Region("chrA", 150, 250, "-"), "c"),
        (Region("chrA", 200, 300), "d", [(240, 241)]),  # mutate_within counts from the focus
        (Region("chrA", 100, 200, "-"), "e"),
    ]
    kw: dict = {"seq_length": L, "method": method, "ig_steps": 4, "mutate_within": 5}
    kw["model_kwargs"] = {"device": "cpu"}
    together = MutationMap(net, fasta, batch_size=batch, **kw)
    assert together.gradient_batch_size == batch
    res = together.query_windows(windows, output=tmp_path / "together.h5")
    steps = 4 if method == "integrated_gradients" else 1
    assert calls == ([8, 8, 4] if steps > 1 else [2, 2, 1])  # 2 windows a call (IG: 4 rows each)
    calls.clear()
    alone = MutationMap(net, fasta, batch_size=steps, **kw)
    one = alone.query_windows(windows, output=tmp_path / "alone.h5")
    assert calls == [steps] * len(windows)
    for e1, e2, (window, *_) in zip(res.entries, one.entries, windows, strict=True):
        a, b = e1.scores[method], e2.scores[method]
        assert np.array_equal(np.isnan(a), np.isnan(b))
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * np.nanmax(np.abs(b)))
        np.testing.assert_allclose(e1.ref_prediction, e2.ref_prediction, rtol=1e-5, atol=1e-6)
        codes = str_to_codes(e1.ref_seq)
        if window.strand == "-":
            codes = reverse_complement_codes(codes)
        want = flatten_output(together.model.predict(one_hot(codes[None])), 1)[0]
        np.testing.assert_allclose(e1.ref_prediction, want, rtol=1e-5, atol=1e-6)
    assert np.isnan(res.entries[1].scores[method][:30]).all()
    assert np.isnan(res.entries[3].scores[method][:35]).all()  # beyond 5 bases of the focus


class _Stop(Exception):
    pass


def test_integrated_gradients_builds_its_path_a_batch_at_a_time(fasta: Path, tmp_path: Path) -> None:
    """A huge ig_steps (10^12) was a numpy MemoryError traceback: the whole path was built first.
    Now each backward call gets its batch of path rows, alpha_k * x, made as it is needed."""
    net = build(Smooth, L)
    mm = MutationMap(
        net,
        fasta,
        seq_length=L,
        method="integrated_gradients",
        ig_steps=10**12,
        model_kwargs={"device": "cpu"},
    )
    seen: list[np.ndarray] = []

    def first_batch_only(x: np.ndarray, target: object) -> None:
        seen.append(np.array(x))
        raise _Stop

    mm.model.input_gradients = first_batch_only  # type: ignore[method-assign]
    out = tmp_path / "ig.h5"
    with pytest.raises(_Stop):
        mm.query_region("chrA", 100, 200, output=out)
    assert not out.exists() and list(tmp_path.iterdir()) == []
    (rows,) = seen
    assert len(rows) == mm.gradient_batch_size
    x = one_hot(str_to_codes(CONTIGS["chrA"][100:200]))
    alphas = (np.arange(len(rows), dtype=np.float32) + 0.5) / np.float32(10**12)
    np.testing.assert_array_equal(rows, (alphas[:, None, None] * x[None]).astype(np.float32))


def test_integrated_gradients_path_rows_are_the_old_path() -> None:
    """The rows made a slice at a time equal the path as a whole array (same bytes, any slice)."""
    from veff.mutation_map.gradients import _PathRows

    x = one_hot(np.random.default_rng(3).integers(0, 5, size=(3, 17)).astype(np.uint8))
    for steps in (1, 7, 50):
        alphas = (np.arange(steps, dtype=np.float32) + 0.5) / steps
        whole = (alphas[None, :, None, None] * x[:, None]).astype(np.float32).reshape(-1, 17, 4)
        rows = _PathRows(x, steps)
        assert rows.shape == whole.shape
        for lo, hi in ((0, len(whole)), (0, 5), (4, 11), (len(whole) - 3, len(whole) + 9)):
            np.testing.assert_array_equal(rows[lo:hi], whole[lo:hi])


class _Detached(torch.nn.Module):
    """Outputs cut from the graph (``.detach()``): no gradient reaches the input."""

    seq_len = L

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x.mean(-1)).detach()


class _Argmax(torch.nn.Module):
    """Integer-valued outputs (an argmax): not differentiable."""

    seq_len = L

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.argmax(1).float()[:, :2]


@pytest.mark.parametrize("net", [_Detached(), _Argmax()], ids=["detached", "argmax"])
@pytest.mark.parametrize("method", ["saliency", "integrated_gradients"])
def test_a_torch_model_without_input_gradients_is_a_model_error(
    fasta: Path, tmp_path: Path, net: torch.nn.Module, method: str
) -> None:
    """Was torch's 'element 0 of tensors does not require grad' RuntimeError."""
    out = tmp_path / "g.h5"
    out.write_bytes(b"old")
    mm = MutationMap(net, fasta, method=method, ig_steps=4, model_kwargs={"device": "cpu"})
    with pytest.raises(ModelError, match=r"no gradient with respect to the input.*use --method naive"):
        mm.query_region("chrA", 100, 200, output=out)
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.h5"]


def test_a_keras_model_without_input_gradients_is_a_model_error(fasta: Path, tmp_path: Path) -> None:
    """Was ``AttributeError: 'NoneType' object has no attribute 'numpy'`` from the tape."""
    keras = pytest.importorskip("keras")
    inp = keras.Input((L, 4))
    frozen = keras.layers.Lambda(lambda t: keras.ops.stop_gradient(t))(inp)
    net = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(frozen)))
    out = tmp_path / "g.h5"
    out.write_bytes(b"old")
    mm = MutationMap(net, fasta, method="saliency")
    with pytest.raises(ModelError, match=r"no gradient with respect to the input.*use --method naive"):
        mm.query_region("chrA", 100, 200, output=out)
    assert out.read_bytes() == b"old"
