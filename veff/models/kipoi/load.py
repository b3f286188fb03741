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
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from veff.errors import ModelError
from veff.models.base import DeclaredScore, InputLayout, Model, WindowRequest
from veff.models.kipoi.describe import ModelPlan, plan_model
from veff.models.kipoi.frameworks import LOADERS
from veff.models.kipoi.inputs import DnaInput, StringShape
from veff.models.kipoi.scores import declared_score
from veff.models.kipoi.spec import read_model_spec
from veff.variants.sequences import str_to_codes

if TYPE_CHECKING:
    from veff.types import Region
    from veff.variants.windows import WindowSet

__all__ = ["KipoiModel", "is_kipoi_dir", "load_kipoi_model", "onehot_to_strings"]

log = logging.getLogger(__name__)

Predictor = Callable[[Any], Any]
_LETTERS = np.frombuffer(b"ACGTN", dtype=np.uint8)
_ACGT = np.frombuffer(b"ACGT", dtype=np.uint8)


_TRACKS = ":tracks"


def tracks_key(name: str) -> str:
    """Key of the signal channels of DNA input ``name`` among a Kipoi model's other inputs."""
    return name + _TRACKS


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
    default_centering
        ``kipoi``: where veff places variant-centred windows unless told otherwise (kipoi-veff's
        ``L//2-1``), so a model directory scores as it did under kipoi-veff.
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
        self.default_centering = "kipoi"
        self._predictor: Predictor | None = predictor
        self._scores: dict[str, DeclaredScore] = {}

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

    @property
    def input_names(self) -> tuple[str, ...]:
        """Keys ``predict`` needs in ``extra``.

        The other inputs, then the signal channels of the DNA input (``<name>:tracks``) and of its
        reverse-complement twin.
        """
        tracks = [self.dna.name, self.dna.rc_twin] if self.dna.tracks else []
        return (*self.plan.other_inputs, *(tracks_key(n) for n in tracks if n))

    def _dna_inputs(self, x: np.ndarray, extra: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The DNA input (and its reverse-complement twin) of (N, L, 4) one-hot ``x``, by name."""
        name, twin = self.dna.name, self.dna.rc_twin
        out = {name: self.encode(x)}
        if twin:
            out[twin] = self.encode(np.ascontiguousarray(x[:, ::-1, ::-1]))
        if self.dna.tracks:
            for key in out:
                out[key] = np.concatenate([out[key], extra[tracks_key(key)].astype(out[key].dtype)], axis=-1)
        return out

    def reverse_extra(self, extra: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The other inputs for the reverse complement of a batch: signal channels read backwards."""
        if not self.dna.tracks:
            return extra
        keys = {tracks_key(n) for n in (self.dna.name, self.dna.rc_twin) if n}
        return {k: np.ascontiguousarray(v[:, ::-1]) if k in keys else v for k, v in extra.items()}

    def pack_all(self, arr: np.ndarray | dict[str, np.ndarray], extra: dict[str, np.ndarray]) -> Any:
        """Put the DNA input(s) and the other inputs into the structure of the schema."""
        named = {k: v for k, v in extra.items() if not k.endswith(_TRACKS)}
        if isinstance(arr, dict):
            named.update(arr)
        else:
            named[self.dna.name] = arr
        if self.spec.input_form == "list":
            return [named[a.name] for a in self.spec.inputs]
        return named

    def predict(self, x: np.ndarray, extra: dict[str, np.ndarray] | None = None) -> Any:
        """Predict one-hot sequences, shape (N, L, 4); returns (N, T) (or tracks, see ``_flatten``).

        ``extra`` holds the model's other inputs (from its dataloader), each shape (N, ...).
        """
        if self.input_names:
            missing = [k for k in self.input_names if extra is None or k not in extra]
            if missing:
                msg = (
                    f"{self.name}: inputs {', '.join(missing)} come from the model's dataloader; "
                    "score with the dataloader (score_variants) or use predict_inputs() with every input"
                )
                raise ModelError(msg)
        if self.input_names or self.dna.rc_twin:
            return self.predict_inputs(self.pack_all(self._dna_inputs(x, extra or {}), extra or {}), len(x))
        return self.predict_inputs(self.pack(self.encode(x)), len(x))

    def placeholder_inputs(self, n: int) -> dict[str, np.ndarray] | None:
        """Zero arrays for the other inputs (for probing the output count), or None when there are none.

        Raises
        ------
        ModelError
            When an other input's shape is not fixed in the schema.
        """
        if not self.input_names:
            return None
        out = {
            tracks_key(k): np.zeros((n, self.seq_length or 1, self.dna.tracks), np.float32)
            for k in (self.dna.name, self.dna.rc_twin)
            if k and self.dna.tracks
        }
        for name in self.plan.other_inputs:
            arr = self.spec.input(name)
            if arr is None or arr.shape is None or any(d is None for d in arr.shape):
                msg = f"{self.name}: input {name!r} has no fixed shape in model.yaml"
                raise ModelError(msg)
            out[name] = np.zeros((n, *(int(d or 0) for d in arr.shape)), np.float32)
        return out

    def split_inputs(self, inputs: Any) -> tuple[Any, dict[str, np.ndarray]]:
        """Split a batch of dataloader inputs (array, list or dict) into the DNA input and the others.

        Returns the DNA input as the dataloader gave it and the other inputs by schema name.
        """
        if isinstance(inputs, dict):
            if self.dna.name not in inputs and len(inputs) == 1:
                return next(iter(inputs.values())), {}
            if self.dna.name not in inputs:
                msg = f"{self.name}: the dataloader gave inputs {sorted(inputs)}, not {self.dna.name!r}"
                raise ModelError(msg)
            return self._split_tracks(
                inputs[self.dna.name], {k: np.asarray(v) for k, v in inputs.items() if k != self.dna.name}
            )
        if isinstance(inputs, (list, tuple)) and self.spec.input_form == "list":
            names = [a.name for a in self.spec.inputs]
            named = dict(zip(names, inputs, strict=False))
            return self._split_tracks(
                named[self.dna.name], {k: np.asarray(v) for k, v in named.items() if k != self.dna.name}
            )
        return self._split_tracks(inputs, {})

    def _split_tracks(self, dna: Any, extra: dict[str, np.ndarray]) -> tuple[Any, dict[str, np.ndarray]]:
        """Move the signal channels of the DNA input (and of its rc twin, rebuilt by veff) into ``extra``."""
        twin = extra.pop(self.dna.rc_twin, None) if self.dna.rc_twin else None
        if not self.dna.tracks:
            return dna, extra
        arr = np.asarray(dna)
        extra[tracks_key(self.dna.name)] = arr[..., 4:]
        if twin is not None:
            extra[tracks_key(str(self.dna.rc_twin))] = twin[..., 4:]
        return arr[..., :4], extra

    def dna_codes(self, dna: Any) -> np.ndarray:
        """Turn a batch of the DNA input, as the dataloader made it, into uint8 codes (N, L).

        One-hot rows that are not exactly one 1 (N, padding) become ``N``; ``DNAStringSeq``
        strings are read as they are (upper-cased).
        """
        if self.dna.string:
            arr = np.asarray(dna)
            if arr.ndim >= 2 and arr.dtype.kind == "U" and arr.dtype.itemsize == 4:  # characters
                rows = ["".join(r) for r in arr.reshape(len(arr), -1)]
            else:
                rows = [str(r) for r in arr.reshape(len(arr))]
            return np.stack([str_to_codes(r) for r in rows]) if rows else np.empty((0, 0), np.uint8)
        x = np.asarray(dna, dtype=np.float32)
        n = x.shape[0]
        dims = [d for d, a in zip(x.shape[1:], self.layout.axes, strict=False) if a != "1"]
        x = x.reshape(n, *dims)
        if self.layout.channels_first:
            x = x.transpose(0, 2, 1)
        if self.dna.channel_order is not None:
            x = x[..., np.argsort(self.dna.channel_order)]
        hot = (x.max(axis=2) == 1) & (x.sum(axis=2) == 1)
        return np.where(hot, _ACGT[x.argmax(axis=2)], ord("N")).astype(np.uint8)

    def predict_inputs(self, inputs: Any, n: int | None = None) -> np.ndarray | dict[str, np.ndarray]:
        """Run the model on inputs in its own structure and layout; float32 (N, T) (see ``_flatten``)."""
        if self._predictor is None:
            msg = f"{self.name}: the model was closed"
            raise ModelError(msg)
        if n is None:
            first = (
                inputs[0]
                if isinstance(inputs, list)
                else (next(iter(inputs.values())) if isinstance(inputs, dict) else inputs)
            )
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
    def _flatten(self, out: Any, n: int) -> np.ndarray | dict[str, np.ndarray]:
        """Return (N, T) (targets concatenated), (N, P, T), or named heads when a target is a track."""
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
        heads = {}
        for key, value in items:
            arr = np.asarray(value, dtype=np.float32)
            if arr.ndim == 0 or arr.shape[0] != n:
                msg = f"{self.name}: output {key or 0!r} has shape {arr.shape} for a batch of {n}"
                raise ModelError(msg)
            # (N, P, T) stays a position-resolved head; dummy axes are dropped
            shape = [d for d in arr.shape[1:] if d != 1] or [1]
            heads[str(key)] = arr.reshape(n, *shape) if len(shape) <= 2 else arr.reshape(n, -1)
        if len(heads) == 1:
            return heads[str(items[0][0])]
        if any(h.ndim == 3 for h in heads.values()):
            return heads  # position-resolved heads keep their shape (veff.engine.outputs names them)
        if self.output_labels is None:
            self.output_labels = tuple(f"{k}.{i}" for k, h in heads.items() for i in range(h.shape[1]))
        return np.concatenate(list(heads.values()), axis=1)

    # -- scores -----------------------------------------------------------------------------
    def declared_scores(self) -> dict[str, DeclaredScore]:
        """Every available score under its label (kipoi-veff's rules, :mod:`veff.models.kipoi.scores`).

        Custom scores are imported from the model directory on first call.
        """
        for entry in self.plan.scores:
            if entry.label not in self._scores:
                self._scores[entry.label] = declared_score(entry, self.spec.path, self.spec.variant_effects)
        return dict(self._scores)

    def resolve_scores(self, scores: Sequence[str | Any] | None) -> list[str | DeclaredScore | Any]:
        """Turn score names into the model's own :class:`~veff.models.base.DeclaredScore` where it has them.

        None (no scores chosen) gives the model's default scores. A label the model declares
        under a name of its own (a custom or renamed score, ``default_diff``...) resolves to the
        model's score; anything else is left for :func:`veff.scoring.registry.resolve_score_jobs`.
        """
        chosen = list(self.default_scores) if scores is None else list(scores)
        own = {e.label for e in self.plan.scores if e.type == "custom" or e.label != e.type}
        declared = self.declared_scores() if any(isinstance(s, str) and s in own for s in chosen) else {}
        return [declared[s] if isinstance(s, str) and s in own else s for s in chosen]

    # -- windows and regions from the model's own dataloader -----------------------------------
    def window_source(self, request: WindowRequest) -> Iterator[WindowSet] | None:
        """The chunks of the model's own dataloader (see :mod:`veff.models.kipoi.windows`), or None."""
        from veff.models.kipoi.windows import dataloader_chunks  # windows.py builds on this module

        return dataloader_chunks(self, request)

    def bound_regions(self, dataloader_args: Any, fasta: str | os.PathLike[str]) -> list[Region] | None:
        """The regions an overlap-mode dataloader returns; None for other models."""
        from veff.models.kipoi.windows import dataloader_regions

        return dataloader_regions(self, dataloader_args, fasta)

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
