"""The batching engine: run reference, alternative and reverse-complement windows through a model.

All sequences of a chunk are laid out as ``[ref, alt, ref_rc, alt_rc]`` and cut into batches of
``batch_size`` sequences; each batch is one forward call. Reference windows are predicted once
and shared by every ALT that uses them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from veff.models.base import Model
from veff.outputs import OutputSpec, flatten_output
from veff.sequences import one_hot, reverse_complement_codes

__all__ = ["Predictions", "auto_batch_size", "predict_pairs", "probe_outputs"]


def auto_batch_size(length: int) -> int:
    """Default sequences per forward call: about 2**20 input bases, between 32 and 4096.

    Examples
    --------
    >>> auto_batch_size(101), auto_batch_size(1000), auto_batch_size(15000)
    (4096, 1024, 64)
    """
    size = 1 << max(0, (2**20 // max(length, 1)).bit_length() - 1)
    return int(min(4096, max(32, size)))


@dataclass(frozen=True)
class Predictions:
    """Model outputs for reference and alternative windows.

    Attributes
    ----------
    ref
        Predictions of the reference windows, shape (n_ref, T...).
    alt
        Predictions of the alt windows, shape (n_alt, T...).
    ref_rc, alt_rc
        The same for the reverse complements, or None when rc is off.
    """

    ref: np.ndarray
    alt: np.ndarray
    ref_rc: np.ndarray | None = None
    alt_rc: np.ndarray | None = None

    def paired(self, alt_ref: np.ndarray) -> Predictions:
        """Return predictions with the reference rows repeated to align with the ALT rows."""
        return Predictions(
            self.ref[alt_ref],
            self.alt,
            None if self.ref_rc is None else self.ref_rc[alt_ref],
            self.alt_rc,
        )

    def select(self, columns: np.ndarray | None) -> Predictions:
        """Keep only the given output columns (last axis)."""
        if columns is None:
            return self
        def pick(a: np.ndarray | None) -> (np.ndarray | None):
            return (
                    None if a is None else a[..., columns]
                )
        return Predictions(pick(self.ref), pick(self.alt), pick(self.ref_rc), pick(self.alt_rc))  # type: ignore[arg-type]


def _call(model: Model, batch: np.ndarray, extra: dict[str, np.ndarray] | None) -> np.ndarray:
    """``model.predict(batch)``, with the model's other inputs when there are any."""
    return model.predict(batch) if extra is None else model.predict(batch, extra)  # type: ignore[call-arg]


def run_batches(
    model: Model,
    groups: list[np.ndarray],
    batch_size: int,
    *,
    rc: bool,
    extras: list[dict[str, np.ndarray]] | None = None,
) -> list[np.ndarray]:
    """Predict several groups of windows in shared batches.

    Windows stay uint8 codes until a batch is cut; each batch is one-hot encoded on its own
    (so no float copy of the whole chunk is made) and sent to the model in one forward call.

    Parameters
    ----------
    model
        The model adapter.
    groups
        Groups of uint8 codes, each shape (n_i, L).
    batch_size
        Sequences per forward call.
    rc
        Also predict the reverse complement of every group (appended after the forward groups).
    extras
        Optional other model inputs per group (name -> array of shape (n_i, ...)), passed
        through unchanged, with the reverse complements as ``model.reverse_extra`` makes them.

    Returns
    -------
    list of numpy.ndarray
        One prediction array per group (forward groups first, then their rc twins).
    """
    groups = list(groups) + ([reverse_complement_codes(g) for g in groups] if rc else [])
    sizes = [len(g) for g in groups]
    total = sum(sizes)
    if total == 0:
        return [np.empty((0, 0), np.float32) for _ in groups]
    codes = np.concatenate(groups, axis=0) if len(groups) > 1 else groups[0]
    every = None
    if extras is not None:
        ex = list(extras) + ([model.reverse_extra(e) for e in extras] if rc else [])
        every = {k: np.concatenate([e[k] for e in ex]) for k in ex[0]}
    outs = []
    for lo in range(0, total, batch_size):
        batch = one_hot(codes[lo : lo + batch_size], model.n_value)
        part = None if every is None else {k: v[lo : lo + batch_size] for k, v in every.items()}
        outs.append(flatten_output(_call(model, batch, part), len(batch)))
    flat = np.concatenate(outs, axis=0)
    bounds = np.cumsum([0, *sizes])
    return [flat[bounds[k] : bounds[k + 1]] for k in range(len(groups))]


def predict_pairs(
    model: Model,
    ref_codes: np.ndarray,
    alt_codes: np.ndarray,
    *,
    rc: bool = False,
    batch_size: int = 256,
    extra: dict[str, np.ndarray] | None = None,
    alt_ref: np.ndarray | None = None,
) -> Predictions:
    """Predict reference and alternative windows (and their reverse complements).

    Parameters
    ----------
    model
        Model adapter.
    ref_codes
        uint8 codes of the reference windows, shape (n_ref, L).
    alt_codes
        uint8 codes of the alt windows, shape (n_alt, L).
    rc
        Whether to predict reverse complements too.
    batch_size
        Sequences per forward call.
    extra, alt_ref
        Other model inputs per reference window (name -> array of shape (n_ref, ...)) and the
        reference row of each alt window (shape (n_alt,)), for models whose dataloader makes them.
    """
    extras = None
    if extra is not None and alt_ref is not None:
        extras = [extra, {k: v[alt_ref] for k, v in extra.items()}]
    res = run_batches(model, [ref_codes, alt_codes], batch_size, rc=rc, extras=extras)
    if rc:
        return Predictions(res[0], res[1], res[2], res[3])
    return Predictions(res[0], res[1])


def probe_outputs(
    model: Model, length: int, *, offset: int | None = None, profile_heads: tuple[str, ...] = ()
) -> OutputSpec:
    """Learn the structure of the model's outputs by predicting one all-N window of ``length``.

    ``offset`` and ``profile_heads`` default to what the model declares (attributes
    ``output_offset`` and ``profile_outputs``); see :class:`veff.outputs.OutputSpec`.
    """
    x = one_hot(np.full((1, length), ord("N"), np.uint8), model.n_value)
    if offset is None:
        offset = getattr(model, "output_offset", None)
    heads = profile_heads or tuple(getattr(model, "profile_outputs", ()) or ())
    placeholder = getattr(model, "placeholder_inputs", None)
    out = _call(model, x, placeholder(1) if placeholder is not None else None)
    return OutputSpec.from_output(out, length, offset=offset, profile_heads=heads)
