"""Read veff's results back: annotated VCFs (veff or kipoi style) and score tables.

:func:`read_scores` turns any of veff's outputs into one pandas form.

Wide form (``wide=True``)
    One row per (VCF record, ALT allele), in file order, indexed by ``variant``
    (``chrom:pos:ref:alt``, the index of ``score_variants(..., return_predictions=True)``; a record
    without ALT gives one row with ALT ``.``). Columns: ``chrom``, ``pos``, ``id``, ``ref``,
    ``alt``, then ``norm_pos``, ``norm_ref``, ``norm_alt`` (tables only: a VCF does not record the
    normalised allele), ``status`` (None when the file has no status tag), then one float32 column
    ``<score>/<label>`` per score and model output, NaN where the ALT was not scored. A VCF written
    with ``--info-aggregate max_abs`` gives ``<score>/max_abs`` (float32) and
    ``<score>/max_abs_label`` (str) instead. Rows that carry a feature (a per-feature score, see
    :class:`veff.types.RowKey`) add a ``feature`` column after ``alt``, one row per (record, ALT,
    feature), indexed ``chrom:pos:ref:alt:feature``; without features there is no such column.
Long form (``wide=False``)
    Columns ``variant``, ``score``, ``label``, ``value``: one row per wide row, score and output,
    in that order (NaN values included; ``.dropna()`` keeps the scored ones). For an aggregated
    VCF, one row per wide row and score, ``label`` being the output that was picked. A
    ``<score>_value_pctl`` column gives one row per wide row, with ``label`` ``""``.

For the scored ALTs, ``wide.loc[keys, [f"{score}/{label}" for label in labels]]`` holds the same
numbers as ``return_predictions[score]`` (exactly for veff-style VCFs and tables; to 8 decimals
for kipoi-style VCFs).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from veff.errors import InputError
from veff.types import SCORED_STATUSES

if TYPE_CHECKING:  # pandas is imported where frames are made (not at start-up)
    import pandas as pd

__all__ = ["read_scores"]

_VCF_SUFFIXES = (".vcf", ".vcf.gz", ".vcf.bgz", ".bcf")
_VEFF_DESC = re.compile(r"^veff score (?P<score>\S+) .*Format: ALLELE\|(?P<fmt>.*)$")
_KIPOI_DESC = re.compile(
    r"^(?P<score>\S+) SNV effect prediction\. Prediction from model outputs: (?P<fmt>.*)$"
)
_STATUS_DESC = "veff scoring status"
_FEATURE_ENTRIES = "one entry per ALT and feature"
_AGGREGATE_FMT = "max_abs|label"
_SCORED = frozenset(str(s) for s in SCORED_STATUSES)


def read_scores(
    path: str | os.PathLike[str], *, wide: bool = True, prefix: str | None = None
) -> pd.DataFrame:
    """Read the scores of a veff-annotated VCF or a veff score table.

    Parameters
    ----------
    path
        A VCF/BCF written by ``veff score-variants`` (veff-style ``<PREFIX>_<SCORE>`` tags,
        kipoi-style ``KV_<model>_<SCORE>`` tags, or ``KV:<model>:<SCORE>`` as kipoi-veff wrote
        them), or a table (``.tsv``, ``.tsv.gz``, ``.parquet``, ``.h5``) written with ``--table``.
    wide
        One row per (record, ALT) with a column per (score, output), or the long form with
        columns ``variant``, ``score``, ``label``, ``value`` (see the module docstring).
    prefix
        For VCFs annotated by several models: the tag prefix to read (``VEFF_<model>`` or
        ``KV_<model>``).

    Returns
    -------
    pandas.DataFrame
        Wide: shape (n_rows, n_meta + n_scores * T), index ``variant``. Long: shape
        (n_rows * n_scores * T, 4).

    Examples
    --------
    >>> df = read_scores("out.parquet")  # doctest: +SKIP
    >>> df.loc[df.status == "ok", "diff/task1"]  # doctest: +SKIP
    """
    name = Path(path).name.lower()
    if not Path(path).is_file():
        msg = f"{path}: file not found"
        raise InputError(msg)
    if name.endswith(_VCF_SUFFIXES):
        parsed = _read_vcf(Path(path), prefix)
    else:
        from veff.writers.table import read_table

        data = read_table(path)
        parsed = _Parsed(data.columns, data.labels, data.values, per_alt=data.per_alt)
    return parsed.wide() if wide else parsed.long()


@dataclass
class _Parsed:
    columns: dict[str, Any]
    labels: list[str]
    values: dict[str, np.ndarray]
    picked: dict[str, list[str | None]] = field(default_factory=dict)  # aggregated VCFs
    per_alt: dict[str, np.ndarray] = field(default_factory=dict)  # one value per row

    def keys(self) -> list[str]:
        c = self.columns
        keys = [
            f"{a}:{b}:{r}:{x}"
            for a, b, r, x in zip(c["chrom"], np.asarray(c["pos"]).tolist(), c["ref"], c["alt"], strict=True)
        ]
        if "feature" not in c:
            return keys
        return [f"{k}:{f}" if f else k for k, f in zip(keys, c["feature"], strict=True)]

    def wide(self) -> pd.DataFrame:
        import pandas as pd

        index = pd.Index(self.keys(), name="variant")
        order = ("chrom", "pos", "id", "ref", "alt", "feature", "norm_pos", "norm_ref", "norm_alt", "status")
        meta = {k: self.columns[k] for k in order if k in self.columns}
        meta["pos"] = np.asarray(meta["pos"], dtype=np.int64)
        if "norm_pos" in meta:
            meta["norm_pos"] = pd.array(meta["norm_pos"], dtype="Int64")
        frames = [pd.DataFrame(meta, index=index)]
        for s, arr in self.values.items():
            if s in self.picked:
                frames.append(
                    pd.DataFrame(
                        {f"{s}/max_abs": arr[:, 0], f"{s}/max_abs_label": self.picked[s]}, index=index
                    )
                )
            else:
                frames.append(pd.DataFrame(arr, index=index, columns=[f"{s}/{lab}" for lab in self.labels]))
        if self.per_alt:
            frames.append(pd.DataFrame(self.per_alt, index=index))
        return pd.concat(frames, axis=1)

    def long(self) -> pd.DataFrame:
        import pandas as pd

        keys = np.asarray(self.keys(), dtype=object)
        parts = []
        columns = self.values | {s: v[:, None] for s, v in self.per_alt.items()}
        for s, arr in columns.items():
            n, width = arr.shape
            labels = (
                np.asarray(self.picked[s], dtype=object)[:, None]
                if s in self.picked
                else np.full((n, 1), "", dtype=object)
                if s in self.per_alt
                else np.broadcast_to(np.asarray(self.labels, dtype=object), (n, width))
            )
            parts.append(
                (
                    np.repeat(keys, width),
                    np.full(n * width, s, dtype=object),
                    labels.ravel(),
                    arr.ravel(),
                    np.arange(n).repeat(width),
                )
            )
        if not parts:
            return pd.DataFrame({"variant": [], "score": [], "label": [], "value": np.empty(0, np.float32)})
        variant, score, label, value, row = (np.concatenate(p) for p in zip(*parts, strict=True))
        order = np.argsort(row, kind="stable")  # row-major: variant, then score, then output
        return pd.DataFrame(
            {
                "variant": variant[order].tolist(),
                "score": score[order].tolist(),
                "label": label[order].tolist(),
                "value": value[order].astype(np.float32),
            }
        )


@dataclass(frozen=True)
class _Tag:
    key: str
    score: str
    prefix: str
    style: str
    labels: tuple[str, ...]
    features: bool = False  # one entry per (ALT, feature): ALLELE|feature|values

    @property
    def aggregated(self) -> bool:
        return self.style == "veff" and "|".join(self.labels) == _AGGREGATE_FMT


def header_tags(info: list[dict[str, str]]) -> tuple[list[_Tag], dict[str, str]]:
    """Score tags and status tags (prefix -> key) declared in a VCF header."""
    tags, status = [], {}
    for h in info:
        key, desc = h["ID"], h.get("Description", "").strip('"')
        if desc.startswith(_STATUS_DESC):
            for sep in ("_", ":"):
                if key.endswith(f"{sep}STATUS"):
                    status[key[: -len("STATUS") - 1]] = key
            continue
        m = _VEFF_DESC.match(desc)
        if m and key.endswith(f"_{m['score'].upper()}"):
            fmt = tuple(m["fmt"].split("|"))
            features = _FEATURE_ENTRIES in desc and fmt[:1] == ("feature",)
            tags.append(
                _Tag(
                    key,
                    m["score"],
                    key[: -len(m["score"]) - 1],
                    "veff",
                    fmt[1:] if features else fmt,
                    features,
                )
            )
            continue
        m = _KIPOI_DESC.match(desc)
        for sep in (":", "_"):  # KV:<model>:<SCORE> (kipoi-veff, older veff) or KV_<model>_<SCORE>
            if m and key.endswith(f"{sep}{m['score']}") and len(key) > len(m["score"]) + 1:
                pre = key[: -len(m["score"]) - 1]
                tags.append(_Tag(key, m["score"].lower(), pre, "kipoi", tuple(m["fmt"].split("|"))))
                break
    return tags, status


def _pick_prefix(path: Path, tags: list[_Tag], prefix: str | None) -> list[_Tag]:
    prefixes = list(dict.fromkeys(t.prefix for t in tags))
    if not prefixes:
        msg = f"{path}: no veff or kipoi-veff score tags in the VCF header"
        raise InputError(msg)
    if prefix is None and len(prefixes) > 1:
        msg = f"{path}: scores of several models ({', '.join(prefixes)}); choose one with prefix="
        raise InputError(msg)
    chosen = prefix or prefixes[0]
    picked = [t for t in tags if t.prefix == chosen]
    if not picked:
        msg = f"{path}: no score tags with prefix {chosen!r}; found {', '.join(prefixes)}"
        raise InputError(msg)
    labels = {t.labels for t in picked}
    if len(labels) > 1:
        msg = f"{path}: the score tags of {chosen!r} declare different output labels"
        raise InputError(msg)
    return picked


def _read_vcf(path: Path, prefix: str | None) -> _Parsed:
    from veff.io.vcf import VcfReader

    reader = VcfReader(path, cyvcf2_records=True)
    try:
        info = [h.info() for h in reader.vcf.header_iter() if h.type == "INFO"]
        tags, status_keys = header_tags(info)
        tags = _pick_prefix(path, tags, prefix)
        status_key = status_keys.get(tags[0].prefix)
        features = tags[0].features
        names = ("chrom", "pos", "id", "ref", "alt", *(("feature",) if features else ()), "status")
        cols: dict[str, list[Any]] = {k: [] for k in names}
        text: dict[str, list[tuple[int, str]]] = {t.score: [] for t in tags}
        declared = {h["ID"] for h in info}
        pctl_keys = {
            f"{t.score}_value_pctl": f"{t.key}_VALUE_PCTL"
            for t in tags
            if t.style == "veff" and f"{t.key}_VALUE_PCTL" in declared
        }
        pctl: dict[str, list[float]] = {name: [] for name in pctl_keys}
        for v, rec in reader:
            alts = list(v.alts) or ["."]
            row0 = len(cols["alt"])
            statuses = _entries(rec.INFO.get(status_key) if status_key else None, len(alts))
            if features:
                _feature_rows(v, rec, tags, statuses, cols, text)
                continue
            for alt in alts:
                for k, x in zip(
                    ("chrom", "pos", "id", "ref", "alt"), (v.chrom, v.pos, v.id, v.ref, alt), strict=True
                ):
                    cols[k].append(x)
            cols["status"].extend(statuses)
            for name, key in pctl_keys.items():
                pctl[name].extend(_numbers(rec.INFO.get(key), len(alts)))
            for t in tags:
                raw = rec.INFO.get(t.key)
                if raw is not None:
                    text[t.score].extend(_place(t, _joined(raw), statuses, row0, len(alts)))
    finally:
        reader.close()
    n = len(cols["alt"])
    values, picked = {}, {}
    for t in tags:
        width = 1 if t.aggregated else len(t.labels)
        values[t.score], lab = _to_floats(path, t, text[t.score], n, width)
        if t.aggregated:
            picked[t.score] = lab
    labels = ["max_abs"] if tags[0].aggregated else list(tags[0].labels)
    per_alt = {name: np.asarray(v, dtype=np.float32) for name, v in pctl.items()}
    return _Parsed(cols, labels, values, picked, per_alt)


def _numbers(raw: Any, n_alts: int) -> list[float]:
    """The values of a ``Number=A,Type=Float`` INFO entry, NaN where missing or absent."""
    if raw is None:
        return [float("nan")] * n_alts
    vals = [
        float("nan") if x is None else float(x) for x in (raw if isinstance(raw, tuple | list) else (raw,))
    ]
    return (vals + [float("nan")] * n_alts)[:n_alts]


def _feature_rows(
    v: Any,
    rec: Any,
    tags: list[_Tag],
    statuses: list[str | None],
    cols: dict[str, list[Any]],
    text: dict[str, list[tuple[int, str]]],
) -> None:
    """Rows of one record whose tags hold one ``ALLELE|feature|values`` entry per (ALT, feature)."""
    alts = list(v.alts) or ["."]
    row0 = len(cols["alt"])
    per_tag = {}
    for t in tags:
        raw = rec.INFO.get(t.key)
        per_tag[t.score] = _joined(raw).split(",") if raw is not None else []
    first = per_tag[tags[0].score]
    keys = [_split_entry(e)[:2] for e in first] or [(a, "") for a in alts]
    for alt, feature in keys:
        for k, x in zip(
            ("chrom", "pos", "id", "ref", "alt"), (v.chrom, v.pos, v.id, v.ref, alt), strict=True
        ):
            cols[k].append(x)
        cols["feature"].append(feature)
        cols["status"].append(statuses[alts.index(alt)] if alt in alts else None)
    for t in tags:
        for j, entry in enumerate(per_tag[t.score][: len(keys)]):
            text[t.score].append((row0 + j, _split_entry(entry)[2]))


def _split_entry(entry: str) -> tuple[str, str, str]:
    """``ALLELE|feature|values`` -> its three parts (missing ones ``""``)."""
    allele, _, rest = entry.partition("|")
    feature, _, values = rest.partition("|")
    return allele, feature, values


def _joined(raw: Any) -> str:
    return ",".join(map(str, raw)) if isinstance(raw, tuple | list) else str(raw)


def _entries(raw: Any, n_alts: int) -> list[str | None]:
    """Statuses from ``ALLELE|status,...`` (None when absent)."""
    if raw is None:
        return [None] * n_alts
    out: list[str | None] = [e.rsplit("|", 1)[-1] for e in _joined(raw).split(",")]
    return (out + [None] * n_alts)[:n_alts]


def _place(t: _Tag, raw: str, statuses: list[str | None], row0: int, n_alts: int) -> list[tuple[int, str]]:
    """Pair each value group of one record with its row."""
    groups = raw.split(",")
    if t.style == "veff":  # one ALLELE|v1|... entry per ALT
        return [(row0 + a, g.split("|", 1)[1] if "|" in g else "") for a, g in enumerate(groups[:n_alts])]
    # veff's kipoi style has groups for the scored ALTs only; kipoi-veff's (no status) in ALT order
    known = any(s is not None for s in statuses)
    slots = [a for a, s in enumerate(statuses) if s in _SCORED] if known else list(range(n_alts))
    return [(row0 + a, g) for a, g in zip(slots, groups, strict=False)]


def _to_floats(
    path: Path, t: _Tag, text: list[tuple[int, str]], n: int, width: int
) -> tuple[np.ndarray, list[str | None]]:
    """Parse ``v1|...|vT`` strings (``.`` = missing) into (n, width) float32 (+ picked labels)."""
    out = np.full((n, width), np.nan, dtype=np.float32)
    picked: list[str | None] = [None] * n
    if not text:
        return out, picked
    rows = np.fromiter((r for r, _ in text), dtype=np.int64, count=len(text))
    parts = [s.split("|") for _, s in text]
    if t.aggregated:
        for r, p in zip(rows.tolist(), parts, strict=True):
            picked[r] = p[1] if len(p) > 1 and p[1] != "." else None
        parts = [p[:1] for p in parts]
    bad = next((k for k, p in enumerate(parts) if len(p) != width), None)
    if bad is not None:
        msg = (
            f"{path}: tag {t.key} has {len(parts[bad])} values where the header declares {width} "
            f"(record of row {rows[bad] + 1})"
        )
        raise InputError(msg)
    flat = np.array([x for p in parts for x in p], dtype=object)
    flat[flat == "."] = "nan"
    try:
        out[rows] = flat.astype(np.float64).astype(np.float32).reshape(len(rows), width)
    except ValueError as exc:
        msg = f"{path}: tag {t.key} holds a value that is not a number ({exc})"
        raise InputError(msg) from None
    return out, picked
