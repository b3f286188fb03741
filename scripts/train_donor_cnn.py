"""Train the small splice-donor CNN shipped in ``example_data/models/donor_cnn``.

Positives are the annotated splice donors of the GENCODE v25 transcripts on the
example GRCh38 chr22 slice (32,000,001-32,300,000): the first intron base after
every non-last exon of a transcript, read on the transcript strand. Negatives
are other ``GT`` dinucleotides on either strand of the slice, sampled with a
fixed seed (``--neg-ratio`` per positive). Every example is a 101 bp
transcript-strand window with the ``G`` of the ``GT`` at index 50.

Two kinds of extra negatives make the model depend on the ``GT`` itself (with
``GT`` negatives alone the centre is constant and carries no information):

* background windows, random positions on either strand whose centre is not
  ``GT`` (``--bg-ratio`` per positive);
* GT-knockout copies of the *training* donors (each single-base change of the
  ``G`` and of the ``T``, except ``T -> C`` since ``GC`` donors exist); test
  donors are never mutated for training.

Sites in the last 20 % of the slice (by coordinate) are held out for testing;
sites whose window would overlap the train/test boundary are dropped.

The script writes, into ``example_data/models/donor_cnn/``:

* ``donor_cnn.pth`` -- the state dict of :class:`DonorCNN`;
* ``donor_cnn.pt`` -- a TorchScript version (``torch.jit.script``);
* ``training_report.json`` -- data counts, held-out metrics and a mutation
  sanity check.

Run from the repository root::

    python scripts/train_donor_cnn.py

It is deterministic and takes well under a minute on two CPU cores.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import itertools
import json
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import cast

import numpy as np
import pysam
import torch
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = REPO_ROOT / "example_data"
FASTA = DATA_DIR / "reference" / "hg38_chr22_32000001-32300000.padded.fa.gz"
GTF = DATA_DIR / "annotation" / "gencode.v25.chr22_32000001-32300000.gtf"
MODEL_DIR = DATA_DIR / "models" / "donor_cnn"
MODEL_SOURCE = MODEL_DIR / "donor_cnn.py"

CHROM = "chr22"
SLICE_START = 32_000_001  # 1-based, inclusive; bases before it are N
SLICE_END = 32_300_000  # 1-based, inclusive
SEQ_LEN = 101
CENTER = (SEQ_LEN - 1) // 2  # index of the G of the GT
BASES = "ACGT"
COMPLEMENT = str.maketrans("ACGTN", "TGCAN")
TRANSCRIPT_ID_RE = re.compile(r'transcript_id "([^"]+)"')

# A site is (strand, g0): strand "+" or "-", g0 the 0-based genomic position of
# the transcript-strand G of the GT (genomic "C" of "AC" for the minus strand).
Site = tuple[str, int]


def load_model_module(path: Path = MODEL_SOURCE) -> ModuleType:
    """Import ``donor_cnn.py`` from its file path.

    Parameters
    ----------
    path : Path, optional
        Location of the model definition.

    Returns
    -------
    ModuleType
        The imported module (registered in ``sys.modules`` as ``donor_cnn``).
    """
    spec = importlib.util.spec_from_file_location("donor_cnn", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import model definition from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["donor_cnn"] = module
    spec.loader.exec_module(module)
    return module


def read_transcript_exons(gtf: Path) -> dict[str, tuple[str, list[tuple[int, int]]]]:
    """Collect the exons of every transcript in a GTF file.

    Parameters
    ----------
    gtf : Path
        GTF file.

    Returns
    -------
    dict
        ``transcript_id -> (strand, sorted list of 1-based inclusive (start, end))``.
    """
    exons: dict[str, list[tuple[int, int]]] = defaultdict(list)
    strands: dict[str, str] = {}
    with gtf.open() as handle:
        for line in handle:
            if line.startswith("#"):
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 9 or fields[2] != "exon" or fields[0] != CHROM:
                continue
            match = TRANSCRIPT_ID_RE.search(fields[8])
            if match is None:
                continue
            tx_id = match.group(1)
            exons[tx_id].append((int(fields[3]), int(fields[4])))
            strands[tx_id] = fields[6]
    return {tx: (strands[tx], sorted(ex)) for tx, ex in exons.items()}


def annotated_donors(transcripts: dict[str, tuple[str, list[tuple[int, int]]]]) -> set[Site]:
    """Derive deduplicated donor sites from transcript exon structures.

    Parameters
    ----------
    transcripts : dict
        Output of :func:`read_transcript_exons`.

    Returns
    -------
    set of Site
        For ``+`` transcripts the base after each non-last exon's end; for
        ``-`` transcripts the base before each non-last (in transcript order)
        exon's start. Positions are 0-based genomic.
    """
    sites: set[Site] = set()
    for strand, exons in transcripts.values():
        for left, right in itertools.pairwise(exons):
            if strand == "+":
                # first intron base is 1-based left_end + 1 -> 0-based left_end
                sites.add(("+", left[1]))
            elif strand == "-":
                # first intron base (transcript order) is 1-based right_start - 1
                sites.add(("-", right[0] - 2))
    return sites


def site_window(seq: str, offset: int, site: Site) -> str | None:
    """Return the transcript-strand window of a site.

    Parameters
    ----------
    seq : str
        Upper-case genomic sequence starting at 0-based position ``offset``.
    offset : int
        0-based genomic coordinate of ``seq[0]``.
    site : Site
        ``(strand, g0)``.

    Returns
    -------
    str or None
        ``SEQ_LEN`` bases with the G of the GT at ``CENTER``, or ``None`` if
        the window leaves ``seq``.
    """
    strand, g0 = site
    start = g0 - CENTER - offset
    end = start + SEQ_LEN
    if start < 0 or end > len(seq):
        return None
    window = seq[start:end]
    if strand == "-":
        window = window.translate(COMPLEMENT)[::-1]
    return window


def candidate_gt_sites(seq: str, offset: int) -> list[Site]:
    """List every GT dinucleotide on both strands whose window fits in ``seq``.

    Parameters
    ----------
    seq : str
        Upper-case genomic sequence.
    offset : int
        0-based genomic coordinate of ``seq[0]``.

    Returns
    -------
    list of Site
        Sorted by strand then position.
    """
    sites: list[Site] = []
    lo, hi = CENTER, len(seq) - (SEQ_LEN - CENTER)
    for i in range(lo, hi + 1):
        if seq[i] == "G" and seq[i + 1] == "T":
            sites.append(("+", i + offset))
    for i in range(lo, hi + 1):
        if seq[i] == "C" and seq[i - 1] == "A":
            sites.append(("-", i + offset))
    return sites


def background_sites(seq: str, offset: int, n: int, rng: np.random.Generator) -> list[Site]:
    """Sample random positions whose transcript-strand centre is not ``GT``.

    Parameters
    ----------
    seq : str
        Upper-case genomic sequence.
    offset : int
        0-based genomic coordinate of ``seq[0]``.
    n : int
        Number of distinct sites to return.
    rng : np.random.Generator
        Seeded generator.

    Returns
    -------
    list of Site
        Sorted sites; their windows fit in ``seq`` and contain no ``N``.
    """
    lo, hi = CENTER, len(seq) - (SEQ_LEN - CENTER)
    chosen: set[Site] = set()
    while len(chosen) < n:
        i = int(rng.integers(lo, hi + 1))
        strand = "+" if rng.random() < 0.5 else "-"
        site = (strand, i + offset)
        window = site_window(seq, offset, site)
        if window is None or window[CENTER : CENTER + 2] == "GT" or "N" in window:
            continue
        chosen.add(site)
    return sorted(chosen, key=lambda s: (s[1], s[0]))


def one_hot(windows: list[str]) -> np.ndarray:
    """One-hot encode equal-length sequences.

    Parameters
    ----------
    windows : list of str
        Sequences of length ``SEQ_LEN``.

    Returns
    -------
    np.ndarray
        float32 array ``(N, 4, SEQ_LEN)``, channels A, C, G, T; other bases zero.
    """
    lut = np.full(256, -1, dtype=np.int64)
    for k, base in enumerate(BASES):
        lut[ord(base)] = k
    codes = lut[np.frombuffer("".join(windows).encode("ascii"), dtype=np.uint8)].reshape(
        len(windows), SEQ_LEN
    )
    out = np.zeros((len(windows), 4, SEQ_LEN), dtype=np.float32)
    n_idx, pos_idx = np.nonzero(codes >= 0)
    out[n_idx, codes[n_idx, pos_idx], pos_idx] = 1.0
    return out


def mutate_center(x: np.ndarray, offset: int, base: str) -> np.ndarray:
    """Return a copy of one-hot windows with one position set to ``base``.

    Parameters
    ----------
    x : np.ndarray
        ``(N, 4, SEQ_LEN)`` one-hot windows.
    offset : int
        Position relative to ``CENTER`` (0 = the G of the GT, 1 = the T).
    base : str
        Replacement base, one of ``A, C, G, T``.

    Returns
    -------
    np.ndarray
        Mutated copy.
    """
    out = x.copy()
    out[:, :, CENTER + offset] = 0.0
    out[:, BASES.index(base), CENTER + offset] = 1.0
    return out


def gt_knockouts(x: np.ndarray) -> np.ndarray:
    """Knock out the donor GT of positive windows (used as extra negatives).

    Every single-base change of the G (to A, C, T) and of the T (to A, G) is
    produced. ``T -> C`` is skipped because ``GC`` is a real (rare) donor.

    Parameters
    ----------
    x : np.ndarray
        ``(N, 4, SEQ_LEN)`` one-hot windows with ``GT`` at ``CENTER``.

    Returns
    -------
    np.ndarray
        ``(5 * N, 4, SEQ_LEN)`` mutated windows.
    """
    changes = [(0, "A"), (0, "C"), (0, "T"), (1, "A"), (1, "G")]
    return np.concatenate([mutate_center(x, off, b) for off, b in changes])


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties).

    Parameters
    ----------
    labels : np.ndarray
        Binary labels (1 = positive).
    scores : np.ndarray
        Scores, higher meaning more likely positive.

    Returns
    -------
    float
        AUROC, or NaN if one class is missing.
    """
    labels = labels.astype(bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Average precision (area under the precision-recall curve, step-wise).

    Parameters
    ----------
    labels : np.ndarray
        Binary labels (1 = positive).
    scores : np.ndarray
        Scores, higher meaning more likely positive.

    Returns
    -------
    float
        Average precision, or NaN without positives.
    """
    labels = labels.astype(bool)
    if not labels.any():
        return float("nan")
    order = np.argsort(-scores, kind="mergesort")
    hits = labels[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].mean())


def predict(model: nn.Module, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Score one-hot windows in eval mode.

    Parameters
    ----------
    model : nn.Module
        Model returning ``(N, 1)`` probabilities.
    x : np.ndarray
        ``(N, 4, SEQ_LEN)`` float32.
    batch_size : int, optional
        Inference batch size.

    Returns
    -------
    np.ndarray
        ``(N,)`` float32 probabilities.
    """
    model.eval()
    outs = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            outs.append(model(torch.from_numpy(x[i : i + batch_size]))[:, 0].numpy())
    return np.concatenate(outs) if outs else np.zeros(0, dtype=np.float32)


def metrics(labels: np.ndarray, probs: np.ndarray) -> dict[str, float | int]:
    """Summarise binary classification performance at threshold 0.5.

    Parameters
    ----------
    labels : np.ndarray
        Binary labels.
    probs : np.ndarray
        Predicted probabilities.

    Returns
    -------
    dict
        Counts, accuracy, balanced accuracy, AUROC and average precision.
    """
    pred = probs >= 0.5
    pos = labels == 1
    tpr = float(pred[pos].mean()) if pos.any() else float("nan")
    tnr = float((~pred[~pos]).mean()) if (~pos).any() else float("nan")
    return {
        "n_positive": int(pos.sum()),
        "n_negative": int((~pos).sum()),
        "accuracy": float((pred == pos).mean()),
        "majority_class_accuracy": float(max(pos.mean(), 1 - pos.mean())),
        "sensitivity": tpr,
        "specificity": tnr,
        "balanced_accuracy": (tpr + tnr) / 2.0,
        "auroc": auroc(labels, probs),
        "average_precision": average_precision(labels, probs),
        "positive_rate": float(pos.mean()),
    }


def train(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    seed: int,
) -> list[float]:
    """Fit ``model`` with class-balanced binary cross-entropy.

    Parameters
    ----------
    model : nn.Module
        Model exposing ``logits(x)``.
    x : np.ndarray
        ``(N, 4, SEQ_LEN)`` float32 inputs.
    y : np.ndarray
        ``(N,)`` binary labels.
    epochs : int
        Passes over the data.
    batch_size : int
        Mini-batch size.
    lr : float
        Adam learning rate.
    weight_decay : float
        AdamW weight decay.
    seed : int
        Seed of the shuffling generator.

    Returns
    -------
    list of float
        Mean training loss per epoch.
    """
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(y.astype(np.float32))[:, None]
    pos_weight = torch.tensor([(len(y) - y.sum()) / max(y.sum(), 1)], dtype=torch.float32)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    logits_fn = cast(Callable[[torch.Tensor], torch.Tensor], model.logits)
    gen = torch.Generator().manual_seed(seed)
    history = []
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(xt), generator=gen)
        total = 0.0
        for i in range(0, len(perm), batch_size):
            idx = perm[i : i + batch_size]
            optimiser.zero_grad()
            loss = loss_fn(logits_fn(xt[idx]), yt[idx])
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(idx)
        history.append(total / len(xt))
    return history


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse command-line options.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (defaults to ``sys.argv[1:]``).

    Returns
    -------
    argparse.Namespace
        Parsed options.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--neg-ratio", type=int, default=40, help="negatives sampled per positive")
    parser.add_argument(
        "--bg-ratio", type=int, default=10, help="background (non-GT centre) negatives per positive"
    )
    parser.add_argument(
        "--no-knockouts",
        dest="knockouts",
        action="store_false",
        help="do not add GT-knockout copies of training donors as negatives",
    )
    parser.add_argument(
        "--test-fraction", type=float, default=0.2, help="last fraction of the slice held out"
    )
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-2)
    parser.add_argument("--out-dir", type=Path, default=MODEL_DIR)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Build the data set, train, evaluate and export the model.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments.

    Returns
    -------
    int
        Exit status.
    """
    args = parse_args(argv)
    t0 = time.perf_counter()
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(2)
    rng = np.random.default_rng(args.seed)

    offset = SLICE_START - 1
    with pysam.FastaFile(str(FASTA)) as fasta:
        seq = fasta.fetch(CHROM, offset, SLICE_END).upper()

    transcripts = read_transcript_exons(GTF)
    donors = annotated_donors(transcripts)
    positives: list[Site] = []
    non_canonical: list[dict[str, object]] = []
    for site in sorted(donors, key=lambda s: (s[1], s[0])):
        window = site_window(seq, offset, site)
        if window is None:
            continue
        if window[CENTER : CENTER + 2] != "GT":
            non_canonical.append(
                {
                    "strand": site[0],
                    "pos_1based": site[1] + 1,
                    "dinucleotide": window[CENTER : CENTER + 2],
                }
            )
            continue
        positives.append(site)
    donor_set = set(positives)

    candidates = [s for s in candidate_gt_sites(seq, offset) if s not in donor_set]
    n_neg = min(len(candidates), args.neg_ratio * len(positives))
    neg_idx = np.sort(rng.choice(len(candidates), size=n_neg, replace=False))
    negatives = [candidates[i] for i in neg_idx]
    # Background negatives (centre is not GT) teach the model that the GT itself
    # is required; without them every training window has GT at the centre and
    # the GT carries no information.
    background = [
        s for s in background_sites(seq, offset, args.bg_ratio * len(positives), rng) if s not in donor_set
    ]

    sites = positives + negatives + background
    labels = np.array([1] * len(positives) + [0] * (len(negatives) + len(background)), dtype=np.int64)
    is_background = np.array([False] * (len(positives) + len(negatives)) + [True] * len(background))
    windows = [site_window(seq, offset, s) for s in sites]
    assert all(w is not None for w in windows)
    assert all(
        w[CENTER : CENTER + 2] == "GT"
        for w, bg in zip(windows, is_background, strict=True)
        if w is not None and not bg
    )
    x = one_hot([w for w in windows if w is not None])

    # split by coordinate: last test_fraction of the slice is held out; sites
    # whose windows would straddle the boundary are dropped (no shared bases).
    split = offset + round((SLICE_END - offset) * (1.0 - args.test_fraction))
    g0 = np.array([s[1] for s in sites])
    in_train = g0 + (SEQ_LEN - CENTER) <= split
    in_test = g0 - CENTER >= split
    module = load_model_module()
    model = module.DonorCNN()
    # GT-knockout copies of the *training* donors are added as negatives, so the
    # model learns that the donor context without its GT is not a donor.
    train_pos = x[in_train & (labels == 1)]
    knockouts = gt_knockouts(train_pos) if args.knockouts else np.zeros((0, 4, SEQ_LEN), dtype=np.float32)
    x_train = np.concatenate([x[in_train], knockouts])
    y_train = np.concatenate([labels[in_train], np.zeros(len(knockouts), dtype=np.int64)])
    history = train(
        model,
        x_train,
        y_train,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        seed=args.seed,
    )
    model.eval()
    probs = predict(model, x)
    gt_only = ~is_background
    train_metrics = metrics(labels[in_train & gt_only], probs[in_train & gt_only])
    test_metrics = metrics(labels[in_test & gt_only], probs[in_test & gt_only])
    test_metrics_bg = metrics(labels[in_test], probs[in_test])

    # sanity check: GT -> AT at the donor (G at CENTER mutated to A)
    pos_x = x[labels == 1]
    p_ref, p_mut = predict(model, pos_x), predict(model, mutate_center(pos_x, 0, "A"))
    test_pos = in_test[labels == 1]

    args.out_dir.mkdir(parents=True, exist_ok=True)
    pth = args.out_dir / "donor_cnn.pth"
    pt = args.out_dir / "donor_cnn.pt"
    torch.save(model.state_dict(), pth)
    scripted = torch.jit.script(model)
    torch.jit.save(scripted, str(pt))
    reloaded = torch.jit.load(str(pt))
    reloaded.eval()
    check = torch.from_numpy(x[:: max(1, len(x) // 256)])
    with torch.no_grad():
        ts_equal = bool(torch.equal(reloaded(check), model(check)))
    fresh = module.DonorCNN()
    fresh.load_state_dict(torch.load(pth, weights_only=True))
    fresh.eval()
    with torch.no_grad():
        sd_equal = bool(torch.equal(fresh(check), model(check)))
    if not (ts_equal and sd_equal):
        raise RuntimeError(f"reloaded model differs (torchscript={ts_equal}, state_dict={sd_equal})")

    report = {
        "model": "DonorCNN",
        "task": "splice donor (GT, first intron base) vs. other GT dinucleotides, transcript strand",
        "reference": str(FASTA.relative_to(REPO_ROOT)),
        "annotation": str(GTF.relative_to(REPO_ROOT)),
        "region": f"{CHROM}:{SLICE_START}-{SLICE_END}",
        "seq_len": SEQ_LEN,
        "center_index": CENTER,
        "input_layout": "4,L (one-hot A,C,G,T; N = all zero)",
        "seed": args.seed,
        "n_transcripts": len(transcripts),
        "n_annotated_donor_sites": len(donors),
        "n_non_canonical_donors_excluded": len(non_canonical),
        "non_canonical_donors_excluded": non_canonical,
        "n_positives": len(positives),
        "n_positives_plus_strand": sum(s[0] == "+" for s in positives),
        "n_positives_minus_strand": sum(s[0] == "-" for s in positives),
        "n_candidate_gt_sites": len(candidates),
        "negative_ratio": args.neg_ratio,
        "n_gt_negatives": len(negatives),
        "background_ratio": args.bg_ratio,
        "n_background_negatives": len(background),
        "n_negatives": len(negatives) + len(background),
        "n_gt_knockout_negatives_train_only": len(knockouts),
        "split": {
            "method": "by coordinate; sites with windows overlapping the boundary dropped",
            "test_fraction": args.test_fraction,
            "train_region_1based": f"{CHROM}:{SLICE_START}-{split}",
            "test_region_1based": f"{CHROM}:{split + 1}-{SLICE_END}",
            "n_dropped_at_boundary": int((~in_train & ~in_test).sum()),
        },
        "training": {
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "optimizer": "AdamW",
            "lr": args.lr,
            "weight_decay": args.weight_decay,
            "loss": "BCEWithLogits, pos_weight = n_neg / n_pos (class-balanced)",
            "final_loss": history[-1],
            "torch_version": torch.__version__,
            "num_threads": 2,
        },
        "metrics_note": "train/test metrics: positives vs. GT negatives only (the hard task); "
        "test_metrics_with_background adds the non-GT background negatives",
        "train_metrics": train_metrics,
        "test_metrics": test_metrics,
        "test_metrics_with_background": test_metrics_bg,
        "gt_to_at_sanity_check": {
            "description": "mean probability of annotated donors before/after mutating "
            "the G of the GT to A "
            "(test positives were never seen, nor were their knockouts)",
            "test_positives_p_ref": [round(float(v), 4) for v in p_ref[test_pos]],
            "test_positives_p_mut": [round(float(v), 4) for v in p_mut[test_pos]],
            "all_positives_mean_p_ref": float(p_ref.mean()),
            "all_positives_mean_p_mut": float(p_mut.mean()),
            "test_positives_mean_p_ref": float(p_ref[test_pos].mean()),
            "test_positives_mean_p_mut": float(p_mut[test_pos].mean()),
            "max_p_mut": float(p_mut.max()),
            "n_positives_drop_over_0.5": int((p_ref - p_mut > 0.5).sum()),
        },
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "torchscript_reload_identical": ts_equal,
        "state_dict_reload_identical": sd_equal,
        "files": {p.name: p.stat().st_size for p in (pth, pt)},
        # donor_cnn.pth is byte-identical across runs; donor_cnn.pt is not (the
        # TorchScript archive stores a random serialization id), only its
        # weights and outputs are.
        "state_dict_sha256": hashlib.sha256(pth.read_bytes()).hexdigest(),
    }
    report_path = args.out_dir / "training_report.json"
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"positives={len(positives)} negatives={len(negatives)}+{len(background)} background "
        f"test AUROC={test_metrics['auroc']:.4f} AP={test_metrics['average_precision']:.4f} "
        f"acc={test_metrics['accuracy']:.4f} "
        f"(n_pos={test_metrics['n_positive']}, n_neg={test_metrics['n_negative']}) "
        f"GT->AT mean p {p_ref.mean():.3f} -> {p_mut.mean():.3f} "
        f"[{time.perf_counter() - t0:.1f}s]"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
