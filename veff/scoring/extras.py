"""Columns derived from a run's scores: percentiles against a calibration and null-model statistics.

For each score ``s`` of the run they are written as further scores with the same outputs, so every
writer and :func:`veff.read_scores` handle them as they handle ``s``:

``s_pctl``
    percentile (0-100) of ``|s|`` among the calibration's background (``--calibration``);
``s_spctl``
    percentile (0-100) of the signed ``s`` among the background;
``s_null_z``, ``s_null_p``
    z-score and empirical two-sided p-value of ``s`` against the variant's own null windows
    (``--null dinuc-shuffle:N``, :mod:`veff.scoring.nulls`).

and one value per ALT (:meth:`ScoreExtras.per_alt_names`):

``s_value_pctl``
    percentile (0-100) of the ALT's largest ``|s|`` over the outputs the VCF carries (the
    magnitude of the numeric tag ``<TAG>_VALUE``) among the background ALTs' largest ``|s|`` over
    the same outputs (``--calibration``, when the calibration's ``max_abs_labels`` are those
    outputs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from veff.errors import InputError
from veff.scoring.apply import score_predictions
from veff.scoring.calibration import Calibration
from veff.scoring.nulls import null_statistics
from veff.scoring.registry import ScoreJob
from veff.scoring.tracks import Aggregation
from veff.variants.shuffle import DEFAULT_NULL_CORE, null_windows

if TYPE_CHECKING:
    from veff.engine.batching import Predictions
    from veff.engine.outputs import OutputSpec
    from veff.variants.windows import WindowSet

__all__ = ["ScoreExtras"]


@dataclass
class ScoreExtras:
    """The derived columns of a run (see the module docstring).

    Parameters
    ----------
    jobs
        The run's scores.
    labels
        All output labels (T), in the order of the score arrays.
    calibration
        The background, or None.
    n_null
        Null windows per ALT (0: none).
    null_seed, null_core
        Seed and kept core of the null windows (:func:`veff.variants.shuffle.null_windows`).
    spec, aggregation
        The model's outputs and the reduction of profile heads (to score the null windows).
    columns
        Indices of the outputs the VCF carries (``model_outputs``); None: all.
    """

    jobs: Sequence[ScoreJob]
    labels: list[str]
    calibration: Calibration | None = None
    n_null: int = 0
    null_seed: int = 0
    null_core: int = DEFAULT_NULL_CORE
    spec: OutputSpec | None = None
    aggregation: Aggregation | None = None
    columns: list[int] | None = None

    def __post_init__(self) -> None:
        clash = (set(self.names()) | set(self.per_alt_names())) & set(self.scores)
        if clash:
            msg = f"score {sorted(clash)[0]!r} has the name of a derived column; rename the score"
            raise InputError(msg)

    def __bool__(self) -> bool:
        return self.calibration is not None or self.n_null > 0

    @property
    def scores(self) -> list[str]:
        """The run's own score names."""
        return [j.name for j in self.jobs]

    def names(self) -> list[str]:
        """Derived score names, in column order (after the run's own scores)."""
        out = []
        for s in self.scores:
            if self.calibration is not None:
                out += [f"{s}_pctl", f"{s}_spctl"]
            if self.n_null:
                out += [f"{s}_null_z", f"{s}_null_p"]
        return out

    @property
    def kept_labels(self) -> list[str]:
        """Labels of the outputs the VCF carries (:attr:`columns`)."""
        return self.labels if self.columns is None else [self.labels[k] for k in self.columns]

    @property
    def value_percentiles(self) -> bool:
        """Whether the calibration's largest magnitudes are over the outputs the VCF carries."""
        return self.calibration is not None and self.calibration.covers_max_abs(self.kept_labels)

    def per_alt_names(self) -> list[str]:
        """Derived names with one value per ALT (``s_value_pctl``), in column order."""
        return [f"{s}_value_pctl" for s in self.scores] if self.value_percentiles else []

    def descriptions(self) -> dict[str, str]:
        """One-line header description per derived score."""
        out = {}
        bg = _clean(self.calibration.describe()) if self.calibration is not None else ""
        what = (
            f"{self.n_null} dinucleotide shuffles of its window outside a {self.null_core}-base core, "
            f"seed {self.null_seed}"
        )
        for s in self.scores:
            if self.calibration is not None:
                out[f"{s}_pctl"] = f"percentile 0-100 of |{s}| among {bg}"
                out[f"{s}_spctl"] = f"percentile 0-100 of signed {s} among {bg}"
            if self.value_percentiles:
                # completed by the VCF writer: "Percentile 0-100 of |<TAG>_VALUE| (...) among ..."
                out[f"{s}_value_pctl"] = f"among the largest |{s}| across the same outputs of {bg}"
            if self.n_null:
                out[f"{s}_null_z"] = f"z-score of {s} against {what}"
                out[f"{s}_null_p"] = (
                    f"empirical two-sided p-value (1+#|null|>=|obs|)/(N+1) of {s} against {what}"
                )
        return out

    def null_windows(self, ws: WindowSet) -> tuple[np.ndarray, np.ndarray] | None:
        """The reference and alt null windows of a chunk's scored ALTs, each (n_alt * N, L), or None."""
        if not self.n_null:
            return None
        if ws.extra_inputs is not None:
            msg = "null models (--null) cannot be used with a model that runs its own dataloader"
            raise InputError(msg)
        keys = [ws.variants[i].key(ws.variants[i].alts[a]) for i, a in ws.alt_slot.tolist()]
        return null_windows(
            ws.ref_codes[ws.alt_ref],
            ws.alt_codes,
            ws.alt_geometry,
            keys,
            self.n_null,
            seed=self.null_seed,
            core=self.null_core,
        )

    def compute(self, values: dict[str, np.ndarray], p: Predictions, ws: WindowSet) -> dict[str, np.ndarray]:
        """The derived columns of one chunk.

        Parameters
        ----------
        values
            Per score, float32 (n, T): the scored ALTs' values for every output.
        p
            The chunk's predictions; ``p.null`` holds those of the null windows when ``n_null``
            is set.
        ws
            The chunk's windows (for the geometry of the scored ALTs).

        Returns
        -------
        dict
            Derived name -> float32 (n, T).
        """
        out: dict[str, np.ndarray] = {}
        null_values = None
        if self.n_null and p.null is not None and self.spec is not None:
            q = p.null
            geometry = np.repeat(ws.alt_geometry, self.n_null, axis=0)
            agg = self.aggregation or Aggregation()
            null_values = score_predictions(
                self.jobs, self.spec, agg, q.ref, q.alt, q.ref_rc, q.alt_rc, geometry
            )
        for s in self.scores:
            v = values[s]
            if self.calibration is not None:
                out[f"{s}_pctl"], out[f"{s}_spctl"] = self.calibration.percentiles(s, v, self.labels)
            if null_values is not None:
                null = null_values[s].reshape(len(v), self.n_null, -1)
                out[f"{s}_null_z"], out[f"{s}_null_p"] = null_statistics(v, null)
        return {k: out[k] for k in self.names()}

    def compute_per_alt(self, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The one-value-per-ALT columns of one chunk: per score values (n, T) -> float32 (n,)."""
        if not self.value_percentiles or self.calibration is None:
            return {}
        kept = self.kept_labels
        out = {}
        for s in self.scores:
            v = values[s].reshape(len(values[s]), -1)
            shown = v if self.columns is None else v[:, self.columns]
            out[f"{s}_value_pctl"] = self.calibration.max_abs_percentile(s, shown, kept)
        return out


def _clean(text: str) -> str:
    """Text safe inside a quoted VCF header Description."""
    return text.replace('"', "'").replace("\n", " ").replace(">", ")").replace("<", "(")
