"""Parse the variant-effect settings of a Kipoi model into :class:`VariantEffectSpec`.

The section comes in three historic yaml forms, all read here: ``postprocessing: {variant_effects:
...}`` (2018-2021), ``postprocessing: [{type: variant_effects, args: ...}]`` (early 2018) and a
top-level ``variant_effects:`` section. It names the DNA inputs that get mutated (``seq_input``),
whether reverse complements are scored (``use_rc``, see :data:`UseRc`) and the declared scoring
functions (built-in ones from :data:`BUILTIN_SCORES`, or ``custom``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from veff.models.kipoi._yaml import KipoiSpecError, names_of, text_of

__all__ = [
    "BUILTIN_SCORES",
    "ScoringArgSpec",
    "ScoringFunctionSpec",
    "UseRc",
    "VariantEffectSpec",
    "find_variant_effects",
    "parse_variant_effects",
]

UseRc = bool | Literal["seq_only"]

BUILTIN_SCORES = ("ref", "alt", "diff", "logit_ref", "logit_alt", "logit", "deepsea_effect")
_SCORE_ALIASES = {"deepsea_scr": "deepsea_effect"}


@dataclass(frozen=True)
class ScoringArgSpec:
    """An argument of a custom scoring function, as declared in model.yaml."""

    name: str
    default: Any = None
    optional: bool = False
    doc: str = ""


@dataclass(frozen=True)
class ScoringFunctionSpec:
    """One entry of ``variant_effects.scoring_functions``.

    ``type`` is a built-in score name (``deepsea_scr`` is read as ``deepsea_effect``) or ``custom``.
    """

    type: str
    name: str = ""
    default: bool = False
    defined_as: str = ""
    args: tuple[ScoringArgSpec, ...] = ()


@dataclass(frozen=True)
class VariantEffectSpec:
    """The variant-effect section of model.yaml.

    Attributes
    ----------
    seq_input
        Names of the model inputs that hold DNA and get mutated.
    use_rc
        Whether reverse complements are scored: a bool, or ``"seq_only"`` (reverse-complement the
        DNA inputs only, pass other inputs unchanged).
    scoring_functions
        The declared scoring functions, in yaml order.
    form
        Where it was found: ``postprocessing``, ``postprocessing-list`` or ``top-level``.
    """

    seq_input: tuple[str, ...]
    use_rc: UseRc = False
    scoring_functions: tuple[ScoringFunctionSpec, ...] = ()
    form: str = "postprocessing"


def _use_rc(value: Any, where: str) -> UseRc:
    if isinstance(value, bool):
        return value
    text = text_of(value).lower()
    if text in ("", "none", "false", "no", "0"):
        return False
    if text in ("true", "yes", "1"):
        return True
    if text == "seq_only":
        return "seq_only"
    msg = f"{where}: use_rc must be true, false or seq_only, found {value!r}"
    raise KipoiSpecError(msg)


def _scoring_function(node: Any, where: str) -> ScoringFunctionSpec:
    if not isinstance(node, dict):
        msg = f"{where}: each scoring function must be a mapping, found {node!r}"
        raise KipoiSpecError(msg)
    kind = text_of(node.get("type")).lower()
    kind = _SCORE_ALIASES.get(kind, kind)
    if kind not in (*BUILTIN_SCORES, "custom"):
        msg = (
            f"{where}: unknown scoring function type {node.get('type')!r}; expected one of "
            f"{', '.join((*BUILTIN_SCORES, 'custom'))}"
        )
        raise KipoiSpecError(msg)
    args: list[ScoringArgSpec] = []
    raw_args = node.get("args") or {}
    if not isinstance(raw_args, dict):
        msg = f"{where}: scoring function args must be a mapping, found {raw_args!r}"
        raise KipoiSpecError(msg)
    for arg_name, arg in raw_args.items():
        arg = arg if isinstance(arg, dict) else {"default": arg}
        args.append(
            ScoringArgSpec(
                name=str(arg_name),
                default=arg.get("default"),
                optional=bool(arg.get("optional", False)),
                doc=text_of(arg.get("doc")),
            )
        )
    return ScoringFunctionSpec(
        type=kind,
        name=text_of(node.get("name")),
        default=bool(node.get("default", False)),
        defined_as=text_of(node.get("defined_as")),
        args=tuple(args),
    )


def find_variant_effects(data: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """Return the raw variant-effect section of a model or dataloader yaml and its form."""
    post = data.get("postprocessing")
    if isinstance(post, dict) and isinstance(post.get("variant_effects"), dict):
        return post["variant_effects"], "postprocessing"
    if isinstance(post, list):
        for item in post:
            kind = text_of(item.get("type")) if isinstance(item, dict) else ""
            if kind in ("variant_effects", "var_effect_prediction"):
                args = item.get("args")
                return (args if isinstance(args, dict) else {}), "postprocessing-list"
    if isinstance(data.get("variant_effects"), dict):
        return data["variant_effects"], "top-level"
    return None, ""


def parse_variant_effects(data: dict[str, Any], where: str) -> VariantEffectSpec | None:
    """Parse the variant-effect section of model.yaml in any of its three forms."""
    raw, form = find_variant_effects(data)
    if raw is None:
        return None
    funcs = raw.get("scoring_functions") or []
    if not isinstance(funcs, list):
        funcs = [funcs]
    return VariantEffectSpec(
        seq_input=names_of(raw.get("seq_input")),
        use_rc=_use_rc(raw.get("use_rc"), where),
        scoring_functions=tuple(_scoring_function(f, where) for f in funcs),
        form=form,
    )
