"""Scoring functions: turn model predictions for REF and ALT into variant scores.

Every score lives in one registry, :data:`SCORES`, filled by :func:`register_score`; the Python
API, the command line's choices and the kipoi model-zoo reader all read it.

A score is computed on predictions of shape (N, T) (or (N, ..., T)): ``ref`` and ``alt`` for the
forward strand and, when reverse complements are scored, ``ref_rc`` and ``alt_rc``. Pairwise scores
``f(ref, alt)`` are evaluated on each strand and the two results merged with ``rc_merging``
(``mean`` by default, or ``min``, ``max``, ``median``, ``absmax``, or a callable ``f(fwd, rc)``).
Scores marked ``rc_aware`` receive all four arrays and the merge function themselves.

Logit scores clip probabilities to ``[eps, 1 - eps]`` (``eps=1e-7`` unless given) so that 0 and 1
give finite values, and warn once per run when model outputs fall outside [0, 1].
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Literal

import numpy as np

from veff.errors import InputError, VeffWarning
from veff.models.base import DeclaredScore, Model

__all__ = [
    "RC_MERGES",
    "SCORES",
    "Score",
    "ScoreJob",
    "get_score",
    "logit",
    "merge_rc",
    "model_scores",
    "register_model_scores",
    "register_score",
    "resolve_score_jobs",
]

RcMerging = Literal["mean", "min", "max", "median", "absmax"]
MergeFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
DEFAULT_EPS = 1e-7


def _absmax(fwd: np.ndarray, rc: np.ndarray) -> np.ndarray:
    """Element-wise the value with the larger magnitude (ties keep the forward value)."""
    return np.where(np.abs(rc) > np.abs(fwd), rc, fwd)


RC_MERGES: dict[str, MergeFn] = {
    "mean": lambda f, r: (f + r) / 2,
    "min": np.minimum,
    "max": np.maximum,
    "median": lambda f, r: (f + r) / 2,  # the median of two values is their mean
    "absmax": _absmax,
}


def resolve_merge(rc_merging: str | MergeFn) -> MergeFn:
    """Return the merge function for a name in :data:`RC_MERGES` or a callable."""
    if callable(rc_merging):
        return rc_merging
    try:
        return RC_MERGES[rc_merging]
    except KeyError:
        msg = f"unknown rc_merging {rc_merging!r}; expected one of {sorted(RC_MERGES)} or a callable"
        raise InputError(msg) from None


def merge_rc(fwd: np.ndarray, rc: np.ndarray | None, rc_merging: str | MergeFn = "mean") -> np.ndarray:
    """Merge forward and reverse-complement scores; returns ``fwd`` unchanged when ``rc`` is None.

    Examples
    --------
    >>> merge_rc(np.array([1.0, -4.0]), np.array([-2.0, 3.0]), "absmax")
    array([-2., -4.])
    """
    if rc is None:
        return fwd
    return resolve_merge(rc_merging)(fwd, rc)


@dataclass(frozen=True)
class Score:
    """A registered scoring function.

    Attributes
    ----------
    name
        Registry name (also the upper-cased INFO tag suffix).
    fn
        ``fn(ref, alt, **kwargs)`` for pairwise scores, or
        ``fn(ref, alt, ref_rc, alt_rc, merge, **kwargs)`` when ``rc_aware``.
    rc_aware
        Whether ``fn`` handles the reverse complement itself.
    positional
        A profile score: ``fn(ref, alt, mask, **kwargs)`` takes tracks (N, P, T) (NaN where the
        alt track has no value) and the positions to use, bool (N, P), and returns (N, T)
        (see :mod:`veff.engine.outputs`). Other scores are applied position by position.
    description
        One line for headers and ``--help``.
    """

    name: str
    fn: Callable[..., np.ndarray]
    rc_aware: bool = False
    description: str = ""
    positional: bool = False

    def __call__(
        self,
        ref: np.ndarray,
        alt: np.ndarray,
        ref_rc: np.ndarray | None = None,
        alt_rc: np.ndarray | None = None,
        *,
        rc_merging: str | MergeFn = "mean",
        **kwargs: Any,
    ) -> np.ndarray:
        """Compute the score; arrays are never modified in place. Returns shape of ``ref``.

        Examples
        --------
        ``diff`` on both strands, merged by the mean (the default) or the maximum:

        >>> ref, alt = np.array([[0.2]]), np.array([[0.5]])
        >>> ref_rc, alt_rc = np.array([[0.2]]), np.array([[0.3]])
        >>> SCORES["diff"](ref, alt, ref_rc, alt_rc)
        array([[0.2]])
        >>> SCORES["diff"](ref, alt, ref_rc, alt_rc, rc_merging="max")
        array([[0.3]])
        """
        merge = resolve_merge(rc_merging)
        if self.rc_aware:
            return np.asarray(self.fn(ref, alt, ref_rc, alt_rc, merge, **kwargs))
        fwd = np.asarray(self.fn(ref, alt, **kwargs))
        if ref_rc is None or alt_rc is None:
            return fwd
        return merge(fwd, np.asarray(self.fn(ref_rc, alt_rc, **kwargs)))


SCORES: dict[str, Score] = {}


def register_score(
    name: str,
    *,
    rc_aware: bool = False,
    description: str = "",
    overwrite: bool = False,
    positional: bool = False,
) -> Callable[[Callable[..., np.ndarray]], Callable[..., np.ndarray]]:
    """Register a scoring function under ``name`` (decorator).

    Examples
    --------
    >>> @register_score("abs_diff_doc", description="|alt - ref|")
    ... def abs_diff(ref, alt):
    ...     return np.abs(alt - ref)
    >>> SCORES["abs_diff_doc"](np.zeros((1, 2)), np.ones((1, 2)))
    array([[1., 1.]])
    >>> del SCORES["abs_diff_doc"]  # leave the registry as it was
    """

    def deco(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
        if name in SCORES and not overwrite:
            msg = f"a score named {name!r} is already registered"
            raise InputError(msg)
        SCORES[name] = Score(name, fn, rc_aware, description or (fn.__doc__ or "").strip(), positional)
        return fn

    return deco


_warned_bounds = False


def _check_probabilities(*arrays: np.ndarray | None) -> None:
    """Warn once per process when logit inputs fall outside [0, 1]."""
    global _warned_bounds
    if _warned_bounds:
        return
    for arr in arrays:
        if arr is not None and arr.size and (np.nanmin(arr) < 0 or np.nanmax(arr) > 1):
            _warned_bounds = True
            warnings.warn(
                "logit scores applied to model outputs outside [0, 1]; values are clipped",
                VeffWarning,
                stacklevel=4,
            )
            return


def logit(p: np.ndarray, eps: float = DEFAULT_EPS) -> np.ndarray:
    """Return ``log(p / (1 - p))`` with ``p`` clipped to ``[eps, 1 - eps]``.

    Examples
    --------
    >>> logit(np.array([0.5, 0.9]))
    array([0.        , 2.19722458])
    >>> bool(np.isfinite(logit(np.array([0.0, 1.0]))).all())  # clipped, never infinite
    True
    """
    q = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    return np.log(q / (1 - q))


@register_score("diff", description="alt - ref")
def _diff(ref: np.ndarray, alt: np.ndarray) -> np.ndarray:
    return alt - ref


@register_score("ref", description="prediction for the reference allele")
def _ref(ref: np.ndarray, alt: np.ndarray) -> np.ndarray:
    return ref.copy()


@register_score("alt", description="prediction for the alternative allele")
def _alt(ref: np.ndarray, alt: np.ndarray) -> np.ndarray:
    return alt.copy()


@register_score("logit", description="logit(alt) - logit(ref)")
def _logit(ref: np.ndarray, alt: np.ndarray, eps: float = DEFAULT_EPS) -> np.ndarray:
    _check_probabilities(ref, alt)
    return logit(alt, eps) - logit(ref, eps)


@register_score("logit_ref", description="logit(ref)")
def _logit_ref(ref: np.ndarray, alt: np.ndarray, eps: float = DEFAULT_EPS) -> np.ndarray:
    _check_probabilities(ref)
    return logit(ref, eps)


@register_score("logit_alt", description="logit(alt)")
def _logit_alt(ref: np.ndarray, alt: np.ndarray, eps: float = DEFAULT_EPS) -> np.ndarray:
    _check_probabilities(alt)
    return logit(alt, eps)


@register_score(
    "deepsea_effect",
    rc_aware=True,
    description="|logit(alt) - logit(ref)| * |alt - ref|, each merged over strands first",
)
def _deepsea_effect(
    ref: np.ndarray,
    alt: np.ndarray,
    ref_rc: np.ndarray | None,
    alt_rc: np.ndarray | None,
    merge: MergeFn,
    eps: float = DEFAULT_EPS,
) -> np.ndarray:
    _check_probabilities(ref, alt, ref_rc, alt_rc)
    logit_diff = logit(alt, eps) - logit(ref, eps)
    diff = alt - ref
    if ref_rc is not None and alt_rc is not None:
        logit_diff = merge(logit_diff, logit(alt_rc, eps) - logit(ref_rc, eps))
        diff = merge(diff, alt_rc - ref_rc)
    return np.abs(logit_diff) * np.abs(diff)


@register_score(
    "logfc",
    positional=True,
    description="log2 fold change of the summed track, (sum alt + pc) / (sum ref + pc)",
)
def _logfc(ref: np.ndarray, alt: np.ndarray, mask: np.ndarray, pseudocount: float = 1e-6) -> np.ndarray:
    """Positions where the aligned alt track is missing are left out of both sums."""
    keep = mask[:, :, None] & ~np.isnan(alt) & ~np.isnan(ref)
    s_ref = np.where(keep, ref, 0.0).sum(axis=1, dtype=np.float64)
    s_alt = np.where(keep, alt, 0.0).sum(axis=1, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log2((s_alt + pseudocount) / (s_ref + pseudocount))
    return np.where(keep.any(axis=1), out, np.nan)


def _normalise(track: np.ndarray, keep: np.ndarray, softmax: bool) -> np.ndarray:
    x = np.where(keep, track.astype(np.float64), -np.inf if softmax else 0.0)
    if softmax:
        x = np.exp(x - np.max(x, axis=1, keepdims=True))
    elif np.any(x < 0):
        msg = 'jsd needs non-negative profiles; give score kwargs {"softmax": true} for logits'
        raise InputError(msg)
    with np.errstate(divide="ignore", invalid="ignore"):
        return x / x.sum(axis=1, keepdims=True)


@register_score(
    "jsd",
    positional=True,
    description="Jensen-Shannon distance (base 2) between ref and alt tracks normalised to sum 1",
)
def _jsd(ref: np.ndarray, alt: np.ndarray, mask: np.ndarray, softmax: bool = False) -> np.ndarray:
    """Per task, over the selected positions where both tracks have values; 0 = same shape, 1 = disjoint."""
    keep = mask[:, :, None] & ~np.isnan(alt) & ~np.isnan(ref)
    p, q = _normalise(ref, keep, softmax), _normalise(alt, keep, softmax)
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0).sum(axis=1)
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0).sum(axis=1)
    return np.sqrt(np.clip((kl_p + kl_q) / 2, 0.0, 1.0))


_plugins_loaded = False


def _load_plugins() -> None:
    """Register scores that installed packages expose in the ``veff.scoring.registry`` entry-point group."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in entry_points(group="veff.scoring.registry"):
        if ep.name in SCORES:
            continue
        obj = ep.load()
        if isinstance(obj, Score):
            SCORES[ep.name] = obj
        else:
            SCORES[ep.name] = Score(ep.name, obj, rc_aware=_takes_four(obj))


def _takes_four(fn: Callable[..., Any]) -> bool:
    """Return whether ``fn`` takes (ref, alt, ref_rc, alt_rc, ...) rather than (ref, alt)."""
    import inspect

    try:
        params = [
            p
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
    except (TypeError, ValueError):
        return False
    return len(params) >= 4


def _four_arg(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """Adapt a user callable ``f(ref, alt, ref_rc, alt_rc)`` to the rc-aware calling convention."""

    def wrapped(ref: Any, alt: Any, ref_rc: Any, alt_rc: Any, merge: Any, **kw: Any) -> np.ndarray:
        return fn(ref, alt, ref_rc, alt_rc, **kw)

    return wrapped


def _merge_name(merge: MergeFn) -> str | MergeFn:
    """The name of a merge function in :data:`RC_MERGES`, else the function itself."""
    return next((k for k, f in RC_MERGES.items() if f is merge), merge)


def _declared(score: DeclaredScore) -> Score:
    """The :class:`Score` of a score a model declares (:class:`~veff.models.base.DeclaredScore`)."""
    if score.fn is None:
        base = get_score(score.computes)
        if base.name == score.name:
            return base
        return Score(
            score.name, base.fn, base.rc_aware, score.description or base.description, base.positional
        )
    fn = score.fn

    def rc_aware(
        ref: np.ndarray,
        alt: np.ndarray,
        ref_rc: np.ndarray | None,
        alt_rc: np.ndarray | None,
        merge: MergeFn,
        **kwargs: Any,
    ) -> np.ndarray:
        return fn(ref, alt, ref_rc, alt_rc, _merge_name(merge), **kwargs)

    return Score(score.name, rc_aware, rc_aware=True, description=score.description)


def model_scores(model: Model) -> dict[str, Score]:
    """Every score ``model`` declares (:meth:`~veff.models.base.Model.declared_scores`), as a Score."""
    return {label: _declared(d) for label, d in model.declared_scores().items()}


def register_model_scores(model: Model) -> list[str]:
    """Add the scores ``model`` declares to :data:`SCORES` under their labels.

    Labels already registered are left alone. Returns the labels added.
    """
    added = []
    for label, declared in model.declared_scores().items():
        if label not in SCORES:
            SCORES[label] = _declared(declared)
            added.append(label)
    return added


def get_score(score: str | Score | DeclaredScore | Callable[..., np.ndarray]) -> Score:
    """Return the :class:`Score` for a registered name, a Score, a model's declared score, or a callable.

    A callable taking four arrays ``(ref, alt, ref_rc, alt_rc)`` handles strands itself; one
    taking two ``(ref, alt)`` is applied per strand and merged.
    """
    if isinstance(score, Score):
        return score
    if isinstance(score, DeclaredScore):
        return _declared(score)
    if callable(score):
        name = getattr(score, "__name__", "custom")
        if _takes_four(score):
            return Score(name, _four_arg(score), rc_aware=True)
        return Score(name, score)
    _load_plugins()
    try:
        return SCORES[score]
    except KeyError:
        msg = f"unknown score {score!r}; available: {', '.join(sorted(SCORES))}"
        raise InputError(msg) from None


@dataclass(frozen=True)
class ScoreJob:
    """A score chosen for a run, with its keyword arguments (``rc_merging``, ``eps``...)."""

    name: str
    score: Score
    kwargs: dict[str, Any]

    def compute(
        self,
        ref: np.ndarray,
        alt: np.ndarray,
        ref_rc: np.ndarray | None,
        alt_rc: np.ndarray | None,
        **extra: Any,
    ) -> np.ndarray:
        """Return the score in the shape the function gives (``extra`` joins the kwargs)."""
        try:
            return np.asarray(self.score(ref, alt, ref_rc, alt_rc, **self.kwargs, **extra))
        except TypeError as exc:
            msg = f"score {self.name!r} rejected its arguments {self.kwargs}: {exc}"
            raise InputError(msg) from exc

    def apply(
        self, ref: np.ndarray, alt: np.ndarray, ref_rc: np.ndarray | None, alt_rc: np.ndarray | None
    ) -> np.ndarray:
        """Return the score as float32, shape (N, T) (outputs flattened)."""
        return np.asarray(self.compute(ref, alt, ref_rc, alt_rc), dtype=np.float32).reshape(len(alt), -1)


def resolve_score_jobs(
    scores: str | Callable[..., Any] | Sequence[str | DeclaredScore | Callable[..., Any]],
    score_kwargs: Sequence[dict[str, Any]] | dict[str, Any] | None = None,
) -> list[ScoreJob]:
    """Resolve score names/callables and their kwargs (one dict per score, or one for all).

    Raises
    ------
    InputError
        For an unknown score, a kwargs count that fits neither rule, a non-dict entry, or
        repeated names.
    """
    if isinstance(scores, str) or callable(scores):
        scores = [scores]
    if not scores:
        msg = "no score selected"
        raise InputError(msg)
    kws = [score_kwargs] if isinstance(score_kwargs, dict) else list(score_kwargs or [])
    if len(kws) not in (0, 1, len(scores)):
        msg = f"{len(kws)} score_kwargs given for {len(scores)} scores; give one per score"
        raise InputError(msg)
    jobs = []
    for k, s in enumerate(scores):
        sc = get_score(s)
        kw = kws[k if len(kws) > 1 else 0] if kws else {}
        if not isinstance(kw, dict):
            msg = f"score_kwargs for {sc.name!r} must be a JSON object, got {kw!r}"
            raise InputError(msg)
        jobs.append(ScoreJob(sc.name.replace("/", "_"), sc, dict(kw)))
    names = [j.name for j in jobs]
    if len(set(names)) != len(names):
        msg = f"score names repeat: {names}"
        raise InputError(msg)
    return jobs
