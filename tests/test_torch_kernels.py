"""Wide 1-D convolutions take faster paths on a CPU: same values up to round-off, nothing else changed."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import veff  # noqa: E402
from veff.models import torch_kernels  # noqa: E402
from veff.models.torch_kernels import has_wide_convs, wide_conv_kernels  # noqa: E402
from veff.variants.sequences import one_hot  # noqa: E402


class ProfileNet(torch.nn.Module):
    """A BPNet-style net: a narrow body and a wide profile head (64 channels, kernel 75)."""

    seq_len = 200
    input_layout = "4,L"

    def __init__(self, head_kernel: int = 75) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = torch.nn.Sequential(torch.nn.Conv1d(4, 64, 21, padding=10), torch.nn.ReLU())
        self.dil = torch.nn.Conv1d(64, 64, 3, padding=4, dilation=4)
        self.head = torch.nn.Conv1d(64, 2, head_kernel, padding=head_kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x)
        h = h + torch.relu(self.dil(h))
        return self.head(h).transpose(1, 2)  # (N, L, 2): positions first


def _codes(n: int, length: int) -> np.ndarray:
    return np.random.default_rng(1).choice(np.frombuffer(b"ACGT", np.uint8), (n, length))


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """Record the weight shapes the faster paths run (calls they decline are not counted)."""
    seen: list[tuple[int, ...]] = []
    plain = torch_kernels._wide_conv

    def spy(x, weight, *args, **kwargs):  # type: ignore[no-untyped-def]
        out = plain(x, weight, *args, **kwargs)
        if out is not None:
            seen.append(tuple(weight.shape))
        return out

    monkeypatch.setattr(torch_kernels, "_wide_conv", spy)
    return seen


def test_a_wide_profile_head_takes_the_fast_path_with_the_plain_values(monkeypatch):
    module = ProfileNet().eval()
    model = veff.load_model(module, device="cpu")
    assert model.wide_convs
    seen = _counting(monkeypatch)
    x = one_hot(_codes(5, 200))  # (N, L, 4), as the engine passes it
    got = model.predict(x)
    with torch.inference_mode():
        plain = module(torch.from_numpy(model.layout.to_model(x))).numpy()
    assert seen == [(2, 64, 75)]  # the head only: the 4-channel input conv and the k=3 one stay plain
    assert got.shape == plain.shape == (5, 200, 2)
    scale = np.abs(plain).max()
    assert np.abs(got - plain).max() <= 1e-5 * scale  # float32 round-off, not another answer
    assert np.array_equal(model.predict(x), got)  # deterministic


def test_a_model_without_wide_convolutions_runs_exactly_as_its_module(monkeypatch):
    module = ProfileNet(head_kernel=9).eval()
    model = veff.load_model(module, device="cpu")
    assert not model.wide_convs
    seen = _counting(monkeypatch)
    x = one_hot(_codes(4, 200))
    with torch.inference_mode():
        plain = module(torch.from_numpy(model.layout.to_model(x))).numpy()
    assert np.array_equal(model.predict(x), plain)
    assert seen == []


def test_half_precision_and_torchscript_keep_the_plain_kernels():
    model = veff.load_model(ProfileNet().eval(), device="cpu", precision="bfloat16")
    assert not model.wide_convs
    scripted = veff.load_model(torch.jit.script(ProfileNet().eval()), device="cpu", seq_length=200)
    assert not scripted.wide_convs  # TorchScript runs its own graph, which the context cannot reach


@pytest.mark.parametrize(
    ("conv", "taken"),
    [
        ({"in_channels": 32, "out_channels": 3, "kernel_size": 25, "stride": 2, "padding": 5}, True),
        ({"in_channels": 32, "out_channels": 3, "kernel_size": 21, "dilation": 3, "padding": (7,)}, True),
        ({"in_channels": 32, "out_channels": 3, "kernel_size": 31, "padding": "same"}, True),
        ({"in_channels": 32, "out_channels": 3, "kernel_size": 31, "padding": "valid", "bias": False}, True),
        ({"in_channels": 32, "out_channels": 2, "kernel_size": 20, "padding": "same"}, True),  # even K
        ({"in_channels": 32, "out_channels": 2, "kernel_size": 75, "padding": 37}, True),  # BPNet head
        ({"in_channels": 32, "out_channels": 16, "kernel_size": 25, "padding": 12}, True),  # channels-last
        ({"in_channels": 32, "out_channels": 4, "kernel_size": 25, "groups": 2}, False),  # grouped: plain
        ({"in_channels": 4, "out_channels": 32, "kernel_size": 25}, False),  # one-hot input: plain
        ({"in_channels": 32, "out_channels": 3, "kernel_size": 15}, False),  # narrow kernel: plain
    ],
)
@pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel")
def test_every_conv1d_argument_form_gives_the_plain_result(monkeypatch, conv, taken):
    torch.manual_seed(2)
    layer = torch.nn.Conv1d(**conv).eval()
    x = torch.randn(3, conv["in_channels"], 120)
    seen = _counting(monkeypatch)
    with torch.inference_mode():
        plain = layer(x)
        with wide_conv_kernels():
            got = layer(x)
            functional = torch.nn.functional.conv1d(
                x, layer.weight, layer.bias, layer.stride, layer.padding, layer.dilation, layer.groups
            )
    assert bool(seen) == taken
    assert got.shape == plain.shape and got.is_contiguous()
    assert torch.allclose(got, plain, rtol=1e-5, atol=1e-5 * float(plain.abs().max()))
    assert torch.allclose(functional, plain, rtol=1e-5, atol=1e-5 * float(plain.abs().max()))
    assert has_wide_convs(torch.nn.Sequential(layer)) == taken


def test_the_matrix_product_path_cut_into_parts_and_with_nan_inputs_gives_the_plain_result(monkeypatch):
    torch.manual_seed(4)
    layer = torch.nn.Conv1d(32, 2, 75, padding=37).eval()
    x = torch.randn(7, 32, 150)
    x[2, 5, 40] = float("nan")  # reaches the outputs 3..77 of row 2, as in the plain convolution
    monkeypatch.setattr(torch_kernels, "GEMM_TAPS_FLOATS", 2 * 150 * 150)  # two rows per product
    with torch.inference_mode():
        plain = layer(x)
        with wide_conv_kernels():
            got = layer(x)
    assert torch.equal(torch.isnan(got), torch.isnan(plain))
    assert torch.isnan(plain[2, :, 3:78]).all() and not torch.isnan(plain[2, :, 78:]).any()
    ok = ~torch.isnan(plain)
    assert torch.allclose(got[ok], plain[ok], rtol=1e-5, atol=1e-5 * float(plain[ok].abs().max()))


def test_a_lazy_convolution_is_looked_at_once_it_has_a_shape():
    lazy = torch.nn.Sequential(torch.nn.LazyConv1d(2, 75, padding=37))
    assert not has_wide_convs(lazy)  # no shape before its first call (and no error)
    lazy(torch.randn(1, 64, 100))
    assert has_wide_convs(lazy)


def test_unbatched_input_and_calls_outside_the_context_are_untouched(monkeypatch):
    layer = torch.nn.Conv1d(32, 3, 25).eval()
    seen = _counting(monkeypatch)
    with torch.inference_mode():
        with wide_conv_kernels():
            one = layer(torch.randn(32, 60))  # (C, L): no batch axis
        layer(torch.randn(2, 32, 60))
    assert one.shape == (3, 36)
    assert seen == []


def test_fast_ism_of_a_wide_head_matches_naive_ism(tmp_path):
    from veff.mutation_map import MutationMap
    from veff.types import Region

    fasta = tmp_path / "ref.fa"
    seq = "".join(np.random.default_rng(3).choice(list("ACGT"), 400))
    fasta.write_text(f">chr1\n{seq}\n")
    module = ProfileNet().eval()
    res = {}
    for method in ("fast", "naive"):
        mm = MutationMap(module, fasta, seq_length=200, method=method, aggregate="all sum")
        assert mm.model.wide_convs
        res[method] = mm.window_scores(Region("chr1", 100, 300))
    assert res["fast"].method == "fast"
    fast, naive = res["fast"].scores["diff"], res["naive"].scores["diff"]
    assert np.array_equal(np.isnan(fast), np.isnan(naive))
    assert np.nanmax(np.abs(fast - naive)) <= 1e-5 * np.abs(res["naive"].ref_prediction).max()


def test_a_run_says_in_its_verbose_log_that_the_faster_kernels_are_used(tmp_path, caplog):
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    vcf = root / "example_data" / "vcf" / "E1_hg38_chr22_32000001-32300000.vcf"
    fasta = root / "example_data" / "reference" / "hg38_chr22_32000001-32300000.padded.fa.gz"
    for kernel, said in ((75, True), (9, False)):
        caplog.clear()
        with caplog.at_level("INFO", logger="veff"):
            veff.score_variants(
                ProfileNet(kernel).eval(), vcf, fasta, tmp_path / f"k{kernel}.vcf.gz", aggregate="all sum"
            )
        assert any("faster CPU kernels" in r.getMessage() for r in caplog.records) == said
