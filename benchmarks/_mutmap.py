"""Mutation-map benchmark cases: fast vs naive ISM, gradient maps, and tangermeme's ISM."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from _common import CHROM, FASTA

WINDOW_START = 32_100_000  # 0-based start of the first 1 kb window (real sequence)


def basset_module(seed: int = 0, length: int = 1000):
    """Basset-like: 3 x (conv, BatchNorm, ReLU, max pool), dense 1000-1000, 164 sigmoid outputs."""
    import torch
    from torch import nn

    torch.manual_seed(seed)

    def block(c_in: int, c_out: int, k: int, pool: int) -> list[nn.Module]:
        return [
            nn.Conv1d(c_in, c_out, k, padding=k // 2),
            nn.BatchNorm1d(c_out),
            nn.ReLU(),
            nn.MaxPool1d(pool),
        ]

    class Basset(nn.Module):
        seq_len = length
        input_layout = "4,L"

        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Sequential(*block(4, 300, 19, 3), *block(300, 200, 11, 4), *block(200, 200, 7, 4))
            n = 200 * (((length // 3) // 4) // 4)
            self.dense = nn.Sequential(
                nn.Flatten(),
                nn.Linear(n, 1000),
                nn.ReLU(),
                nn.Dropout(0.3),
                nn.Linear(1000, 1000),
                nn.ReLU(),
                nn.Dropout(0.3),
                nn.Linear(1000, 164),
                nn.Sigmoid(),
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.dense(self.conv(x))

    net = Basset()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm1d):
            with torch.no_grad():
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return net.eval()


def bpnet_module(seed: int = 0, length: int = 1000):
    """BPNet-like: conv 64 (k=21), 9 dilated residual convs (k=3, dilation 2..512), a profile head
    (k=75, 2 strands, (N, L, 2)) and a count head (mean over positions, dense 2)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)

    class BPNet(nn.Module):
        seq_len = length
        input_layout = "4,L"
        profile_outputs = ("0",)

        def __init__(self) -> None:
            super().__init__()
            self.iconv = nn.Conv1d(4, 64, 21, padding=10)
            self.rconvs = nn.ModuleList(
                nn.Conv1d(64, 64, 3, padding=2**i, dilation=2**i) for i in range(1, 10)
            )
            self.fconv = nn.Conv1d(64, 2, 75, padding=37)
            self.linear = nn.Linear(64, 2)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            h = torch.relu(self.iconv(x))
            for conv in self.rconvs:
                h = h + torch.relu(conv(h))
            profile = self.fconv(h).transpose(1, 2)
            return profile, self.linear(h.mean(dim=-1))

    return BPNet().eval()


def _windows(n: int, length: int) -> list:
    import veff

    return [
        (veff.Region(CHROM, WINDOW_START + k * length, WINDOW_START + (k + 1) * length), f"w{k}")
        for k in range(n)
    ]


def _map_rate(
    module, method: str, n: int, tmp: Path, length: int, batch: int | None, **kw
) -> tuple[float, Path]:
    import veff

    out = tmp / f"map_{method}_{id(module)}.h5"
    mm = veff.MutationMap(
        module,
        FASTA,
        seq_length=length,
        rc=False,
        batch_size=batch,
        method=method,
        model_kwargs={"device": "cpu"},
        **kw,
    )
    # set-up outside the timing: the output probe, the contig read into memory, the gradient batch
    _ = mm.labels, mm.fasta.contig(CHROM)
    if method in ("saliency", "grad_x_input", "integrated_gradients"):
        _ = mm.gradient_batch_size
    t = time.perf_counter()
    mm.query_windows(_windows(n, length), output=out)
    return n / (time.perf_counter() - t), out


def _max_rel(a: Path, b: Path, score: str = "diff") -> float:
    import veff

    ra, rb = veff.load_mutation_map(a), veff.load_mutation_map(b)
    worst = 0.0
    for ea, eb in zip(ra.entries, rb.entries, strict=False):  # b may hold fewer windows
        x, y = ea.scores[score], eb.scores[score]
        # the scale of the scored values: the reference's score (a summed track for "all sum")
        scale = (
            np.nanmax(np.abs(eb.scores["ref"]))
            if "ref" in eb.scores
            else np.nanmax(np.abs(eb.ref_prediction))
        )
        scale = scale or 1.0
        worst = max(worst, float(np.nanmax(np.abs(x - y)) / scale))
    return worst


def case_fast_ism(
    which: str, tmp: Path, n_fast: int, n_naive: int, batch: int | None = None, rounds: int = 2
) -> dict[str, float | str]:
    """Windows/s of fast and naive ISM on the same 1 kb windows (naive on the first ``n_naive``),
    each with veff's automatic batch unless ``batch`` is given,
    in alternating rounds (fast, naive, fast, ...; the best of each is kept, so that a burst of
    other work during one run does not decide the ratio), and the largest difference of their
    diff scores relative to the largest reference score."""
    import torch

    import veff

    torch.set_num_threads(1)  # the two methods get the same single core; their ratio is compared
    module = basset_module() if which == "basset" else bpnet_module()
    agg: dict = {"scores": ("diff", "ref")}
    if which != "basset":
        agg["aggregate"] = "all sum"
    fast = naive = 0.0
    for _ in range(rounds):
        rate, fast_out = _map_rate(module, "fast", n_fast, tmp, 1000, batch, **agg)
        fast = max(fast, rate)
        rate, naive_out = _map_rate(module, "naive", n_naive, tmp, 1000, batch, **agg)
        naive = max(naive, rate)
    return {
        "fast_windows_per_s": fast,
        "naive_windows_per_s": naive,
        "ratio": fast / naive,
        "max_rel_diff": _max_rel(fast_out, naive_out),
        "method": veff.load_mutation_map(fast_out).method,
        "rounds": float(rounds),
    }


def case_gradients(tmp: Path, n: int, rounds: int = 3, n_ig: int = 4) -> dict[str, float]:
    """Gradient maps (saliency of the 164 outputs summed) vs the model's forward throughput at the
    same batch: windows/s of veff's saliency map (FASTA, forward + backward, HDF5), of the bare
    forward pass (the adapter's inference-mode call) and of a bare autograd forward + backward
    (the ceiling), each on the same ``n`` windows in batches of the rows veff's gradient maps use;
    rounds alternate and the best of each is kept."""
    import torch

    import veff
    from veff.io.fasta import Fasta
    from veff.variants.sequences import one_hot

    torch.set_num_threads(1)
    module = basset_module()
    model = veff.load_model(module, device="cpu")
    fa = Fasta(FASTA)
    codes = fa.fetch_many(CHROM, np.array([w.start for w, _ in _windows(n, 1000)]), 1000)
    x = model.layout.to_model(one_hot(codes))
    probe = veff.MutationMap(
        module, FASTA, seq_length=1000, method="saliency", model_kwargs={"device": "cpu"}
    )
    batch = probe.gradient_batch_size
    batches = [torch.from_numpy(x[k : k + batch]) for k in range(0, n, batch)]

    def forward() -> float:
        t = time.perf_counter()
        with torch.inference_mode():
            for xb in batches:
                module(xb)
        return n / (time.perf_counter() - t)

    def autograd() -> float:
        t = time.perf_counter()
        for xb in batches:
            xg = xb.clone().requires_grad_()
            torch.autograd.grad(module(xg).sum(), xg)
        return n / (time.perf_counter() - t)

    for p in module.parameters():
        p.requires_grad_(requires_grad=False)  # as veff's gradient maps do: input gradients only
    best = {"forward": 0.0, "autograd": 0.0, "saliency": 0.0}
    forward(), autograd()  # warm up
    for _ in range(rounds):
        best["forward"] = max(best["forward"], forward())
        best["autograd"] = max(best["autograd"], autograd())
        rate, _ = _map_rate(module, "saliency", n, tmp, 1000, 256, gradient_outputs="sum")
        best["saliency"] = max(best["saliency"], rate)
    ig, _ = _map_rate(
        module, "integrated_gradients", n_ig, tmp, 1000, 256, gradient_outputs="sum", ig_steps=20
    )
    return {
        "batch": float(batch),
        "forward_windows_per_s": best["forward"],
        "saliency_windows_per_s": best["saliency"],
        "ratio": best["saliency"] / best["forward"],
        "bare_autograd_windows_per_s": best["autograd"],
        "ratio_bare_autograd": best["autograd"] / best["forward"],
        "ig20_windows_per_s": ig,
    }


def bpnet_summed(seed: int = 0):
    """The BPNet-like net of case 11 with one (N, 4) output: the profile summed over positions,
    and the counts (tangermeme's ISM takes a model with one output)."""
    import torch

    bpnet = bpnet_module(seed)

    class Summed(torch.nn.Module):
        seq_len = bpnet.seq_len
        input_layout = "4,L"

        def __init__(self) -> None:
            super().__init__()
            self.net = bpnet

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            profile, counts = self.net(x)
            return torch.cat([profile.sum(dim=1), counts], dim=1)

    return Summed().eval()


def case_ism_vs_tangermeme(
    tmp: Path, n: int, batch: int = 128, net: str = "basset"
) -> dict[str, float | str]:
    """veff's ISM (method auto: fast here) vs tangermeme's saturation_mutagenesis (its own fast
    path, the default, and fast=False) on the Basset-like model (``net`` "basset") or the
    BPNet-like one with its outputs summed ("bpnet") and the same 1 kb windows."""
    import torch

    try:
        from tangermeme.saturation_mutagenesis import saturation_mutagenesis
    except ImportError as exc:
        return {"skipped": f"tangermeme not importable: {exc}"}
    import veff
    from veff.io.fasta import Fasta
    from veff.variants.sequences import one_hot

    torch.set_num_threads(1)
    module = basset_module() if net == "basset" else bpnet_summed()
    fa = Fasta(FASTA)
    codes = fa.fetch_many(CHROM, np.array([w.start for w, _ in _windows(n, 1000)]), 1000)
    x = torch.from_numpy(np.ascontiguousarray(one_hot(codes).transpose(0, 2, 1)))
    rates = {}
    for fast in (True, False):
        t = time.perf_counter()
        saturation_mutagenesis(module, x, batch_size=batch, device="cpu", verbose=False, fast=fast)
        rates[fast] = n / (time.perf_counter() - t)
    ours, out = _map_rate(module, "auto", n, tmp, 1000, batch)
    return {
        "veff_windows_per_s": ours,
        "tangermeme_fast_windows_per_s": rates[True],
        "tangermeme_naive_windows_per_s": rates[False],
        "ratio": ours / rates[True],
        "ratio_vs_tangermeme_naive": ours / rates[False],
        "veff_method": veff.load_mutation_map(out).method,
    }
