"""Build veff's model adapter from a Kipoi model directory.

:func:`load_kipoi_model` reads the directory (:mod:`~veff.models.kipoi.spec`), works out the DNA input
(:func:`~veff.models.kipoi.describe.plan_model`), loads the model with its framework
(:mod:`~veff.models.kipoi.frameworks`) and returns a :class:`KipoiModel`. The adapter takes veff's
one-hot batches, shape (N, L, 4), and hands the model what its dataloader would have produced: the
layout of the schema (``(L, 4)``, ``(4, L)``, ``(4, 1, L)``, ``(L, 1, 4)``...), the alphabet order and
dtype of a kipoiseq dataloader, or strings for ``DNAStringSeq`` inputs (all-zero or N rows become
``N``). Outputs (an array, a list or a dict of arrays) are flattened to (N, T) in the order of the
output labels.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from veff.errors import ModelError
from veff.models.base import InputLayout, Model
from veff.models.kipoi.describe import DnaInput, ModelPlan, StringShape, plan_model
from veff.models.kipoi.frameworks import LOADERS
from veff.models.kipoi.scores import build_score
from veff.models.kipoi.spec import read_model_spec
from veff.scores import SCORES, Score

__all__ = ["KipoiModel", "is_kipoi_dir", "load_kipoi_model", "onehot_to_strings"]

log = logging.getLogger(__name__)

Predictor = Callable[[Any], Any]
_LETTERS = np.frombuffer(b"ACGTN", dtype=np.uint8)


def is_kipoi_dir(path: str | Path) -> bool:
    """Whether ``path`` is a directory holding a model.yaml."""
    p = Path(path)
    return p.is_dir() and (p / "model.yaml").is_file()


def onehot_to_strings(x: np.ndarray, shape: StringShape = "scalar") -> np.ndarray:
    """Turn one-hot sequences back into strings; rows that are not one-hot (N) become ``N``.

    Parameters
    ----------
    x
        One-hot sequences, shape (N, L, 4), channels A, C, G, T.
    shape
        ``scalar``: an array of N strings; ``wrapped``: shape (N, 1); ``chars``: shape (N, L) of
        single characters.

    Returns
    -------
    numpy.ndarray
        Unicode strings (dtype ``<U``).
    """
    n, length = x.shape[0], x.shape[1]
    hot = (x.max(axis=2) == 1) & (x.sum(axis=2) == 1)
    codes = np.where(hot, x.argmax(axis=2), 4)
    raw = np.ascontiguousarray(_LETTERS[codes])
    if shape == "chars":
        return raw.view("S1").reshape(n, length).astype("U1")
    strings = raw.view(f"S{length}").reshape(n).astype(f"U{length}") if length else np.full(n, "")
    return strings.reshape(n, 1) if shape == "wrapped" else strings


class KipoiModel(Model):
    """A model from a Kipoi model directory.

    Attributes
    ----------
    spec, plan
        What was read from the yaml files and how veff runs it.
    available_scores, default_scores
        Score labels the model offers and its defaults (kipoi-veff's rules, see
        :mod:`veff.models.kipoi.scores`).
    n_value
        One-hot value of N bases: 0.25 for kipoiseq ``SeqIntervalDl`` dataloaders (kipoiseq's
        encoding), 0 otherwise; settable.
    """

    def __init__(self, plan: ModelPlan, predictor: Predictor, *, n_value: float | None = None) -> None:
        if plan.dna is None:
            msg = f"{plan.spec.path}: {plan.reason}"
            raise ModelError(msg)
        self.spec = plan.spec
        self.plan = plan
        self.dna: DnaInput = plan.dna
        self.name = plan.spec.name
        self.framework = plan.spec.kind
        self.seq_length = plan.dna.length
        self.layout = plan.dna.layout or InputLayout()
        self.output_labels = plan.labels
        self.default_rc = bool(plan.use_rc)
        self.n_value = plan.n_value if n_value is None else float(n_value)
        self.available_scores = [s.label for s in plan.scores]
        self.default_scores = list(plan.default_scores)
        self._predictor: Predictor | None = predictor
        self._scores: dict[str, Score] = {}

    # -- inputs -----------------------------------------------------------------------------
    def encode(self, x: np.ndarray) -> np.ndarray:
        """Turn (N, L, 4) one-hot batches into the DNA input the model expects."""
        if self.dna.string:
            return onehot_to_strings(x, self.dna.string_shape or "scalar")
        if self.dna.channel_order is not None:
            x = x[..., list(self.dna.channel_order)]
        arr = self.layout.to_model(x)
        return arr.astype(self.dna.dtype) if self.dna.dtype else arr

    def pack(self, arr: np.ndarray) -> Any:
        """Put the DNA input into the structure of the schema (array, list or dict)."""
        if self.spec.input_form == "list" and self.framework != "keras":
            return [arr]
        if self.spec.input_form == "dict" and self.framework != "keras":
            return {self.dna.name: arr}
        return arr

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predict a batch of one-hot sequences, shape (N, L, 4); returns (N, T)."""
        if self.plan.other_inputs:
            msg = (
                f"{self.name}: inputs {', '.join(self.plan.other_inputs)} come from the model's "
                "dataloader; use predict_inputs() with every input"
            )
            raise ModelError(msg)
        return self.predict_inputs(self.pack(self.encode(x)), len(x))

    def predict_inputs(self, inputs: Any, n: int | None = None) -> np.ndarray:
        """Run the model on inputs in its own structure and layout; returns (N, T) float32."""
        if self._predictor is None:
            msg = f"{self.name}: the model was closed"
            raise ModelError(msg)
        if n is None:
            first = inputs[0] if isinstance(inputs, list) else (
                next(iter(inputs.values())) if isinstance(inputs, dict) else inputs)
            n = len(first)
        try:
            out = self._predictor(inputs)
        except ModelError:
            raise
        except Exception as exc:
            msg = f"{self.name}: the {self.framework} model failed on a batch: {type(exc).__name__}: {exc}"
            raise ModelError(msg.splitlines()[0]) from exc
        return self._flatten(out, n)

    # -- outputs ----------------------------------------------------------------------------
    def _flatten(self, out: Any, n: int) -> np.ndarray:
        names = [t.name for t in self.spec.targets]
        if isinstance(out, dict):
            items = sorted(out.items(), key=lambda kv: str(kv[0]))
        elif isinstance(out, (list, tuple)):
            keys = names if len(names) == len(out) else [str(i) for i in range(len(out))]
            items = list(zip(keys, out, strict=True))
            if self.spec.target_form == "dict":
                items.sort(key=lambda kv: kv[0])
        else:
            items = [("", out)]
        arrays = []
        for key, value in items:
            arr = np.asarray(value, dtype=np.float32)
            if arr.ndim == 0 or arr.shape[0] != n:
                msg = f"{self.name}: output {key or 0!r} has shape {arr.shape} for a batch of {n}"
                raise ModelError(msg)
            arrays.append(arr.reshape(n, -1))
        if self.output_labels is None and len(arrays) > 1:
            self.output_labels = tuple(
                f"{key}.{i}" for (key, _), arr in zip(items, arrays, strict=True) for i in range(arr.shape[1])
            )
        return np.concatenate(arrays, axis=1) if len(arrays) > 1 else arrays[0]

    # -- scores -----------------------------------------------------------------------------
    @property
    def scores(self) -> dict[str, Score]:
        """Every available score as a :class:`~veff.scores.Score` under its label.

        Custom scores are imported from the model directory on first access.
        """
        for entry in self.plan.scores:
            if entry.label not in self._scores:
                self._scores[entry.label] = build_score(entry, self.spec.path, self.spec.variant_effects)
        return dict(self._scores)

    def register_scores(self) -> list[str]:
        """Add the model's renamed and custom scores to :data:`veff.scores.SCORES`.

        Labels already registered are left alone. Returns the labels added.
        """
        added = []
        for entry in self.plan.scores:
            if entry.label in SCORES:
                continue
            SCORES[entry.label] = build_score(entry, self.spec.path, self.spec.variant_effects)
            added.append(entry.label)
        return added

    def close(self) -> None:
        """Drop the framework model."""
        self._predictor = None


def load_kipoi_model(
    path: str | Path,
    *,
    device: str = "auto",
    precision: str = "float32",
    n_value: float | None = None,
) -> KipoiModel:
    """Load a Kipoi model directory as a :class:`KipoiModel`.

    Parameters
    ----------
    path
        The model directory (holding model.yaml).
    device, precision
        PyTorch placement (``auto``, ``cpu``, ``cuda[:N]``) and autocast precision.
    n_value
        One-hot value of N bases; default 0.25 for kipoiseq ``SeqIntervalDl`` dataloaders, else 0.

    Raises
    ------
    ModelError
        When the directory cannot be read, veff does not support the model (the message names the
        reason, for example an unsupported model kind), or its files cannot be loaded. Models whose
        other inputs come from their dataloader load, but only :meth:`KipoiModel.predict_inputs`
        runs them.
    """
    spec = read_model_spec(path)
    plan = plan_model(spec)
    if not plan.supported and not plan.other_inputs:
        msg = f"{spec.path}: {plan.reason}"
        raise ModelError(msg)
    predictor = LOADERS[spec.kind](spec, device=device, precision=precision)
    model = KipoiModel(plan, predictor, n_value=n_value)
    for note in plan.notes:
        log.info("%s: %s", spec.name, note)
    return model
