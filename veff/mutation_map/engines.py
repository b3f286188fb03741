"""How the mutants of a window are predicted: naive ISM, or receptive-field ISM behind a self-check.

:class:`MutantPredictor` chooses the method once per run. ``naive`` runs every mutant through
the model (:func:`veff.engine.batching.predict_pairs`). ``fast`` (and ``auto``, where it
applies) uses the model's :meth:`~veff.models.base.Model.mutant_engine` (receptive-field ISM
for PyTorch modules, :class:`veff.models.torch_ism.FastISM`). On the first
window the fast path is used for, a handful of its mutants are also predicted naively; if any
output differs by more than :data:`SELF_CHECK_RTOL` (relative to the largest magnitude of that
model output, a head's whole track for a profile head, among the checked mutants), or the fast
path raises, the run falls back to naive ISM with a
:class:`~veff.errors.VeffWarning`. :attr:`MutantPredictor.method` and
:attr:`MutantPredictor.note` say what was used and why, for the map's metadata and the log.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

from veff.engine.batching import Predictions, auto_batch_size, model_batch_size, predict_pairs
from veff.engine.outputs import flatten_output
from veff.errors import InputError, VeffWarning
from veff.models.base import Model, MutantEngine
from veff.mutation_map.gradients import GRADIENT_METHODS
from veff.variants.sequences import reverse_complement_codes

__all__ = [
    "FAST_ISM_MAX_BATCH",
    "ISM_METHODS",
    "METHODS",
    "SELF_CHECK_RTOL",
    "MutantPredictor",
    "check_method",
    "outputs_agree",
]

log = logging.getLogger("veff")

ISM_METHODS = ("auto", "naive", "fast")
METHODS = (*ISM_METHODS, *GRADIENT_METHODS)
SELF_CHECK_RTOL = 1e-5
"""Largest accepted difference between fast and naive ISM, relative to the output's magnitude."""
FAST_ISM_MAX_BATCH = 256
"""Most mutants per batch the automatic choice gives fast ISM (Basset-like net, 1 kb: 256 the
fastest of 16..4096; 2048 13 % slower, 16 35 % slower)."""
SELF_CHECK_MUTANTS = 8


def check_method(method: str) -> str:
    """Return ``method`` if veff knows it, else raise InputError listing the choices."""
    if method not in METHODS:
        msg = f"unknown mutation map method {method!r}; expected one of {', '.join(METHODS)}"
        raise InputError(msg)
    return method


def outputs_agree(
    fast: np.ndarray,
    naive: np.ndarray,
    rtol: float = SELF_CHECK_RTOL,
    groups: np.ndarray | None = None,
) -> tuple[bool, float]:
    """Compare (n, F) predictions.

    Each value's tolerance is ``rtol`` times the largest ``|naive|`` of its group of columns:
    one model output (head) each, given by ``groups`` (int, shape (F,)), so a profile track is
    measured against the track's scale rather than each position's own value. Without groups
    every column is its own group, floored at a hundredth of the largest value of all columns.

    Returns
    -------
    tuple
        ``(agree, worst)``: whether every value is within tolerance, and the largest difference
        in units of its scale (relative difference).
    """
    if fast.shape != naive.shape:
        return False, float("inf")
    if not naive.size:
        return True, 0.0
    if not (np.isfinite(fast) == np.isfinite(naive)).all():
        return False, float("inf")
    mag = np.nan_to_num(np.abs(naive))
    big = float(mag.max()) or 1.0
    if groups is None:
        scale = np.maximum(mag.max(axis=0), big * 1e-2)
    else:
        per = np.zeros(int(groups.max()) + 1)
        np.maximum.at(per, groups, mag.max(axis=0))
        scale = np.maximum(per[groups], big * 1e-6)
    rel = np.abs(np.nan_to_num(fast) - np.nan_to_num(naive)) / scale
    worst = float(rel.max())
    return worst <= rtol, worst


class MutantPredictor:
    """Predict a window's mutants with the method chosen for the run.

    Parameters
    ----------
    model
        The model adapter.
    length
        Window length L.
    method
        ``auto`` (fast ISM where it applies, else naive), ``naive`` or ``fast``.
    rc
        Also predict reverse complements.
    batch_size
        Sequences per forward call; None: automatic. Naive ISM then takes the model's batch
        (:func:`veff.engine.batching.model_batch_size`, as ``score-variants``); fast ISM the
        same rule applied to one mutant's cost in the fast path (its engine's
        ``activation_floats`` and ``flops_per_float``), at most :data:`FAST_ISM_MAX_BATCH`.
    groups
        int, shape (F,): the model output (head) of each flat output column, for the
        self-check's scale (:func:`outputs_agree`).

    Attributes
    ----------
    method
        ``naive`` or ``fast``: what is used now.
    note
        Why: where the fast path's local prefix ends, or why it is not used.
    """

    def __init__(
        self,
        model: Model,
        length: int,
        method: str,
        *,
        rc: bool,
        batch_size: int | None,
        groups: np.ndarray | None = None,
    ) -> None:
        self.model = model
        self.groups = groups
        self.length = int(length)
        self.requested = method
        self.rc = rc
        self.requested_batch = batch_size
        self.batch_size = batch_size or model_batch_size(model, self.length)
        self.fast_batch = self.batch_size
        self.method = "naive"
        self.note = "naive ISM requested" if method == "naive" else ""
        self.layers: list[str] = []
        self._fast: MutantEngine | None = None
        self._checked = False
        if method in ("auto", "fast"):
            self._setup_fast()
        if self.method == "naive":
            log.info("mutation map: %d sequences per batch", self.batch_size)

    def _setup_fast(self) -> None:
        try:
            fast = self.model.mutant_engine(self.length)
        except Exception as exc:  # an analysis failure must never stop a map: naive ISM is exact
            self._refuse(f"analysis failed: {type(exc).__name__}: {exc}")
            return
        self.layers = fast.layers
        if not fast.usable:
            self._refuse(fast.note)
            return
        self._fast, self.method, self.note = fast, "fast", fast.note
        if self.requested_batch is None:
            rule = auto_batch_size(
                self.length, None, self.model.accelerator, fast.activation_floats, fast.flops_per_float
            )
            self.fast_batch = min(FAST_ISM_MAX_BATCH, rule)
        log.info("mutation map: %d mutants per batch (naive ISM: %d)", self.fast_batch, self.batch_size)
        log.info("mutation map: fast ISM: %s", self.note)
        for line in self.layers:
            log.debug("mutation map:   %s", line)

    def _refuse(self, why: str) -> None:
        """Use naive ISM from now on, saying why (a warning when ``fast`` was asked for)."""
        self._fast, self.method = None, "naive"
        self.note = f"naive ISM: {why}"
        if self.requested == "fast":
            warnings.warn(f"--method fast: {why}; using naive ISM", VeffWarning, stacklevel=3)
        else:
            log.info("mutation map: %s", self.note)

    def predict(
        self, ref_in: np.ndarray, alt: np.ndarray, model_ref: np.ndarray, pos: np.ndarray, base: np.ndarray
    ) -> Predictions:
        """Predictions of the reference rows ``ref_in`` (0 or 1) and the mutants ``alt``.

        Parameters
        ----------
        ref_in
            uint8 (0 or 1, L): the reference window as fed to the model, when not yet predicted.
        alt
            uint8 (M, L): the mutants as fed to the model.
        model_ref
            uint8 (L,): the reference window as fed to the model.
        pos, base
            int64 (M,): each mutant's position and base (ACGT index) in the model's orientation.
        """
        naive = lambda: predict_pairs(self.model, ref_in, alt, rc=self.rc, batch_size=self.batch_size)  # noqa: E731
        fast = self._fast
        if fast is None or not len(alt):
            return naive()
        try:
            fwd = self._fast_predict(fast, model_ref, pos, base)
            rev = (
                self._fast_predict(fast, reverse_complement_codes(model_ref), self.length - 1 - pos, 3 - base)
                if self.rc
                else None
            )
        except Exception as exc:  # never a wrong answer: any failure means naive ISM
            self._fallback(f"the fast path failed ({type(exc).__name__}: {exc})")
            return naive()
        if not self._checked:
            self._checked = True
            failure = self._self_check(alt, fwd, rev)
            if failure:
                self._fallback(failure)
                return naive()
        ref = predict_pairs(self.model, ref_in, alt[:0], rc=self.rc, batch_size=self.batch_size)
        return Predictions(ref.ref, fwd, ref.ref_rc, rev)

    def _fast_predict(
        self, fast: MutantEngine, model_ref: np.ndarray, pos: np.ndarray, base: np.ndarray
    ) -> np.ndarray:
        """The fast path's predictions of the mutants ``pos``/``base``, flat float32 (M, F)."""
        batch = self.fast_batch
        outs = fast.predict(model_ref, pos, base, batch)
        sizes = [min(batch, len(pos) - lo) for lo in range(0, len(pos), batch)]
        if len(outs) != len(sizes):
            msg = f"the fast path returned {len(outs)} batches for {len(sizes)}"
            raise ValueError(msg)
        layout = self.model.declared_output_layout()
        return np.concatenate([flatten_output(o, n, layout) for o, n in zip(outs, sizes, strict=True)])

    def _self_check(self, alt: np.ndarray, fwd: np.ndarray, rev: np.ndarray | None) -> str:
        """Compare a few mutants with naive ISM; return why they disagree, or ""."""
        sel = np.unique(np.linspace(0, len(alt) - 1, SELF_CHECK_MUTANTS).round().astype(np.int64))
        ref = predict_pairs(self.model, alt[:0], alt[sel], rc=self.rc, batch_size=self.batch_size)
        ok, worst = outputs_agree(fwd[sel], ref.alt, groups=self.groups)
        if ok and rev is not None and ref.alt_rc is not None:
            ok, worst_rc = outputs_agree(rev[sel], ref.alt_rc, groups=self.groups)
            worst = max(worst, worst_rc)
        log.info(
            "mutation map: fast ISM self-check on %d mutants: max relative difference %.2g", len(sel), worst
        )
        if ok:
            return ""
        return (
            f"fast ISM differs from naive ISM on the first window (max relative difference {worst:.3g} "
            f"> {SELF_CHECK_RTOL:g})"
        )

    def _fallback(self, why: str) -> None:
        self._fast, self.method = None, "naive"
        self.note = f"naive ISM: {why}"
        warnings.warn(f"{why}; falling back to naive ISM", VeffWarning, stacklevel=4)
