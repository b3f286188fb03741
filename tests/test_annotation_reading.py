"""Reading GTF/GFF3 annotations: the fast reader gives what a direct reading of every attribute gives.

``veff.io.annotation`` searches each line's attribute column for the few keys it uses instead of
splitting every attribute. These tests hold it to a straightforward reading (all attributes
parsed by ``_all_attributes`` below, the reading veff always had) on random attribute columns and on
files with odd but valid lines, and check that bad lines keep their one-line messages.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from urllib.parse import unquote

import pytest
from helpers import EXAMPLE
from hypothesis import given, settings
from hypothesis import strategies as st

from veff import InputError
from veff.io import annotation
from veff.io.annotation import read_annotation

GTF = EXAMPLE / "annotation" / "gencode.v25.chr22_32000001-32300000.gtf"
_KEYS = annotation._WANTED
# pieces of attribute columns, plain and odd: keys, keys inside longer words, quotes, separators,
# %-escapes, whitespace other than a space
_PIECES = [
    *_KEYS,
    "x",
    "xtag",
    "tagx",
    "v",
    "1",
    " ",
    "  ",
    '"',
    ";",
    "; ",
    "=",
    ",",
    "%3B",
    "%",
    "\x0b",
    "\xa0",
]
_columns = st.lists(st.sampled_from(_PIECES), max_size=14).map("".join)


def _all_attributes(text: str, gff3: bool) -> dict[str, list[str]]:
    """Every attribute of a GTF/GFF3 attribute column, key -> its values in file order: the
    reading veff had before it searched for the keys it uses.

    GFF3: ``key=value,value;...`` (keys stripped, values %-unescaped). GTF: the items
    ``annotation._GTF_ATTR`` finds.
    """
    out: dict[str, list[str]] = {}
    if gff3:
        for item in text.strip().strip(";").split(";"):
            if "=" in item:
                k, v = item.split("=", 1)
                out.setdefault(k.strip(), []).extend(unquote(x) for x in v.split(","))
        return out
    for m in annotation._GTF_ATTR.finditer(text):
        out.setdefault(m.group(1), []).append(m.group(2))
    return out


@settings(max_examples=400, deadline=None)
@given(_columns, st.sampled_from(_KEYS))
def test_gtf_key_search_matches_reading_every_attribute(text: str, key: str) -> None:
    full = _all_attributes(text, gff3=False)
    assert annotation._gtf_values(annotation._gtf_column(text), key) == full.get(key, [])


@settings(max_examples=400, deadline=None)
@given(_columns, st.sampled_from(_KEYS))
def test_gff3_key_search_matches_reading_every_attribute(text: str, key: str) -> None:
    full = _all_attributes(text, gff3=True)
    assert annotation._gff3_values(annotation._gff3_column(text), key) == full.get(key, [])


@pytest.mark.parametrize(
    "text",
    [
        'gene_id "g"; transcript_id "t"; tag "basic"; tag "CCDS";',  # GENCODE
        'tag "CCDS"; transcript_id "t"; gene_id "g"',  # other order, no final ";"
        'gene_id  "g" ; transcript_id t;note "a; tag b"; xtag "no";',  # odd spacing, ";" quoted
        'transcript_id "t1"; transcript_id "t2"; gene_name "";',
    ],
)
def test_gtf_key_search_on_examples(text: str) -> None:
    full = _all_attributes(text, gff3=False)
    col = annotation._gtf_column(text)
    assert {k: annotation._gtf_values(col, k) for k in _KEYS} == {k: full.get(k, []) for k in _KEYS}


def _direct(path: Path) -> tuple[dict[str, tuple], dict[str, str], list[str]]:
    """A direct reading of a GTF/GFF3: every attribute parsed, one record per transcript ID."""
    txs: dict[str, dict] = {}
    names: dict[str, str] = {}
    order: list[str] = []
    gff3 = None
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        lines = fh.readlines()
    for line in lines:
        if line.startswith("#") or not line.strip():
            gff3 = True if line.startswith("##gff-version") else gff3
            continue
        cols = line.rstrip("\r\n").split("\t")
        gff3 = ("=" in cols[8] and '"' not in cols[8]) if gff3 is None else gff3
        kind, chrom, strand = cols[2].lower(), cols[0], cols[6]
        if kind not in annotation._FEATURES:
            continue
        attrs = _all_attributes(cols[8], gff3)

        def first(*keys: str, attrs: dict = attrs) -> str:
            return next((attrs[k][0] for k in keys if attrs.get(k)), "")

        if kind == "gene":
            if first("ID", "gene_id") and first("gene_name", "Name"):
                names[first("ID", "gene_id")] = first("gene_name", "Name")
            continue
        if strand not in ("+", "-"):
            continue
        order += [chrom] if chrom not in order else []
        id_key = ("Parent" if kind == "exon" else "ID") if gff3 else "transcript_id"
        for tid in attrs.get(id_key, []):
            tx = txs.setdefault(tid, {"chrom": chrom, "strand": strand, "gene_id": "", "gene_name": ""})
            tx.setdefault("tags", set()).update(attrs.get("tag", []))
            if kind == "exon":
                tx.setdefault("exons", []).append((int(cols[3]) - 1, int(cols[4])))
                tx["gene_id"] = tx["gene_id"] or first("gene_id")
            else:
                tx["span"] = (int(cols[3]) - 1, int(cols[4]))
                tx["gene_id"], tx["gene_name"] = first("gene_id", "Parent"), first("gene_name", "Name")
            tx["gene_name"] = tx["gene_name"] or first("gene_name")
    out = {
        tid: (
            t["chrom"],
            t["strand"],
            t["gene_id"],
            t["gene_name"],
            t["tags"],
            t.get("span"),
            t.get("exons", []),
        )
        for tid, t in txs.items()
    }
    return out, names, order


def _fast(path: Path) -> tuple[dict[str, tuple], dict[str, str], list[str]]:
    st_ = annotation._read_features(path)
    out = {
        tid: (
            t.chrom,
            t.strand,
            t.gene_id,
            t.gene_name,
            t.tags,
            t.span,
            list(zip(t.starts, t.ends, strict=True)),
        )
        for tid, t in st_.txs.items()
    }
    return out, st_.gene_names, list(st_.order)


ODD_GTF = (
    "##description: odd but valid lines\n"
    "#!genome-build GRCh38\n"
    "\n"
    # an exon before its transcript line, no final ";", CRLF line ends
    'chr1\tt\texon\t101\t200\t.\t+\t.\ttranscript_id "t1"; gene_id "g1"; tag "basic"\r\n'
    "chr1\tt\ttranscript\t101\t900\t.\t+\t.\t"
    'tag "CCDS"; gene_name "ONE"; transcript_id "t1"; gene_id "g1";\r\n'
    "chr1\tt\tCDS\t150\tx\t.\t+\t.\tnot read\r\n"  # a feature type not read: its columns are not checked
    'chr1\tt\texon\t801\t900\t.\t+\t.\tgene_id "g1";transcript_id "t1";tag "appris_principal_1";\n'
    # odd spacing, a bare value, ";" and a key inside quotes, a key inside a longer key
    'chr2\tt\texon\t51\t80\t.\t-\t.\tgene_id  "g2" ; transcript_id t2; note "a; tag b"; xtag "no";\n'
    'chr2\tt\tExon\t11\t30\t.\t-\t.\tgene_id "g2"; transcript_id "t2"; gene_name "";\n'
    # no gene_name: the gene line names it; a strand-less exon is not read
    'chr1\tt\texon\t301\t400\t.\t+\t.\tgene_id "g3"; transcript_id "t3"; tag "Ensembl_canonical";\n'
    'chr1\tt\tgene\t301\t400\t.\t+\t.\tgene_id "g3"; gene_name "THREE";\n'
    'chr1\tt\texon\t301\t350\t.\t.\t.\tgene_id "g3"; transcript_id "t4";\n'
    "chr1\tt\texon\t321\t380\t.\t+\t.\t"
    'gene_id "g3"; transcript_id "t5"; transcript_id "t6"; tag "MANE_Select";\n'
)
ODD_GFF3 = (
    "##gff-version 3\n"
    "# comment\n"
    "chr1\t.\tgene\t1\t1000\t.\t+\t.\tID=gene%3B1;Name=Gene%2C1\n"
    "chr1\t.\texon\t1\t100\t.\t+\t.\tParent=tx1,tx2;tag=basic\n"  # before its mRNA lines, two parents
    "chr1\t.\tmRNA\t1\t500\t.\t+\t.\tParent=gene%3B1; ID=tx1;tag=MANE_Select,CCDS;\n"
    "chr1\t.\texon\t401\t500\t.\t+\t.\tParent=tx1;Dbxref=GeneID:1;Note=tag%3Dx\n"
    "chr1\t.\tmRNA\t1\t100\t.\t+\t.\tID=tx2;Parent=gene%3B1\n"
)


@pytest.fixture
def odd_files(tmp_path: Path) -> dict[str, Path]:
    files = {}
    for name, text in (("odd.gtf", ODD_GTF), ("odd.gff3", ODD_GFF3)):
        files[name] = tmp_path / name
        files[name].write_bytes(text.encode())
        with gzip.open(tmp_path / f"{name}.gz", "wb") as fh:
            fh.write(text.encode())
        files[f"{name}.gz"] = tmp_path / f"{name}.gz"
    return files


def test_features_match_a_direct_reading(odd_files: dict[str, Path], tmp_path: Path) -> None:
    gencode_gz = tmp_path / "gencode.gtf.gz"
    gencode_gz.write_bytes(gzip.compress(GTF.read_bytes()))
    for path in [*odd_files.values(), GTF, gencode_gz]:
        assert _fast(path) == _direct(path), path


def _units(path: Path, choice: annotation.TranscriptChoice) -> list[tuple]:
    return [
        (
            t.name,
            t.chrom,
            t.strand,
            t.start,
            t.end,
            t.exon_starts.tolist(),
            t.exon_ends.tolist(),
            t.transcript_id,
            t.gene_id,
        )
        for t in read_annotation(path, transcripts=choice).transcripts
    ]


def test_odd_gtf_transcripts(odd_files: dict[str, Path]) -> None:
    t1 = ("ONE", "chr1", "+", 100, 900, [100, 800], [200, 900], "t1", "g1")
    t3 = ("THREE", "chr1", "+", 300, 400, [300], [400], "t3", "g3")
    t5, t6 = (("THREE", "chr1", "+", 320, 380, [320], [380], t, "g3") for t in ("t5", "t6"))
    t2 = ("g2", "chr2", "-", 10, 80, [10, 50], [30, 80], "t2", "g2")  # gene_name "" names nothing
    for path in (odd_files["odd.gtf"], odd_files["odd.gtf.gz"]):
        assert _units(path, "all") == [t1, t3, t5, t6, t2]
        assert _units(path, "canonical") == [t1, t3, t2]  # t3: Ensembl_canonical beats MANE_Select
        assert _units(path, "mane") == [t5, t6]


def test_odd_gff3_transcripts(odd_files: dict[str, Path]) -> None:
    tx1 = ("Gene,1", "chr1", "+", 0, 500, [0, 400], [100, 500], "tx1", "gene;1")
    tx2 = ("Gene,1", "chr1", "+", 0, 100, [0], [100], "tx2", "gene;1")
    for path in (odd_files["odd.gff3"], odd_files["odd.gff3.gz"]):
        assert _units(path, "all") == [tx1, tx2]
        assert _units(path, "canonical") == [tx1]
        assert _units(path, "mane") == [tx1]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('chr1\tt\texon\t1\t9\t.\t+\tgene_id "g";', "2: expected 9 tab-separated GTF/GFF3 columns, got 8"),
        ("chr1\tt\tCDS\t1\t9\t.\t+\t.\tx\textra", "2: expected 9 tab-separated GTF/GFF3 columns, got 10"),
        (
            'chr1\tt\texon\t1\tnine\t.\t+\t.\ttranscript_id "t";',
            "2: start and end (columns 4 and 5) must be integers",
        ),
        (
            'chr1\tt\texon\t1\t9\t.\t+\t.\tgene_id "g"; note "transcript_id";',
            "2: exon without a transcript_id attribute",
        ),
    ],
)
def test_bad_gtf_lines_are_named(tmp_path: Path, line: str, message: str) -> None:
    bad = tmp_path / "bad.gtf"
    bad.write_text(f'chr1\tt\texon\t1\t9\t.\t+\t.\ttranscript_id "t0";\n{line}\n')
    with pytest.raises(InputError) as err:
        read_annotation(bad)
    assert str(err.value) == f"{bad}:{message}"


def test_bad_gff3_exon_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gff3"
    bad.write_text("##gff-version 3\nchr1\t.\texon\t1\t9\t.\t+\t.\tID=e1;Note=Parent\n")
    with pytest.raises(InputError, match=r"bad.gff3:2: exon without a Parent attribute$"):
        read_annotation(bad)


def test_damaged_gzip_is_an_input_error(tmp_path: Path) -> None:
    whole = gzip.compress(GTF.read_bytes())
    cut = tmp_path / "cut.gtf.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputError, match=r"cut.gtf.gz: cannot read the annotation"):
        read_annotation(cut)
    bad = tmp_path / "bad.gtf.gz"
    for damaged in (
        whole[:-8] + bytes(b ^ 0xFF for b in whole[-8:-4]) + whole[-4:],  # CRC wrong
        whole[:10] + b"\xff" * 20 + whole[30:],  # deflate data wrong
    ):
        bad.write_bytes(damaged)
        with pytest.raises(InputError, match=r"bad.gtf.gz: cannot read the annotation"):
            read_annotation(bad)
