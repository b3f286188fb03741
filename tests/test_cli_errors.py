"""The command line's error convention: one ``veff: error:`` line, exit 1 (input) or 2 (usage), no traceback.

Each case here was a Python traceback or a multi-line message once; every test runs the real
command on real files and reads what it printed on stderr.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import E1, EXAMPLE, HG38

from veff.cli import main

TORCH_MODEL = EXAMPLE / "models" / "donor_cnn" / "donor_cnn.pt"


def _score(*extra: str, model: Path | str = TORCH_MODEL, vcf: Path = E1, fasta: Path = HG38) -> list[str]:
    return ["score-variants", str(model), "--vcf", str(vcf), "--fasta", str(fasta), "-q", *extra]


def fails_with(args: list[str], *messages: str, code: int = 1) -> str:
    """Run the command; assert exit ``code`` and one ``veff: error:`` line holding every message."""
    res = CliRunner().invoke(main, args)
    assert isinstance(res.exception, SystemExit), res.exception  # not an uncaught exception
    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("veff: error: "), lines[0]
    for m in messages:
        assert m in lines[0], lines[0]
    return lines[0]


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed command as a user runs it (a separate process: htslib writes to fd 2 itself)."""
    return subprocess.run(
        [sys.executable, "-m", "veff", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["score-variants"], "Missing argument 'MODEL'. (see 'veff score-variants -h')"),
        (["score-varaints"], "No such command 'score-varaints'"),
        (_score("-o", "x.vcf", "--threads", "0"), "Invalid value for '--threads'"),
        (_score("-o", "x.vcf", "--no-such-option"), "No such option '--no-such-option'"),
        (_score(), "give -o/--output, --table or --dump-sequences"),
        (["models", "info"], "Missing argument 'MODEL'. (see 'veff models info -h')"),
    ],
)
def test_usage_errors_are_one_line_with_exit_status_2(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    fails_with(args, message, code=2)
    assert not (tmp_path / "x.vcf").exists()


def test_bare_command_prints_help_and_succeeds():
    res = CliRunner().invoke(main, [])
    assert res.exit_code == 0 and res.stdout.startswith("Usage: veff")


def test_warnings_are_one_veff_line_and_htslib_stays_quiet(tmp_path):
    """An unsorted input's bgzipped output (htslib's indexer complains) and kipoi-style tags (htslib
    warned that ``KV:...`` was not a valid INFO key): stderr holds veff's own lines only."""
    lines = E1.read_text().splitlines(keepends=True)
    header = [x for x in lines if x.startswith("#")]
    records = [x for x in lines if not x.startswith("#")]
    unsorted = tmp_path / "unsorted.vcf"
    unsorted.write_text("".join(header + records[::-1]))
    res = _cli(_score("-o", "out.vcf.gz", "--info-style", "kipoi", vcf=unsorted), tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "out.vcf.gz").exists()
    err = res.stderr.splitlines()
    assert err == [
        "veff: warning: out.vcf.gz: written without an index because the input's records are not sorted "
        "by position (sort with `bcftools sort` and index with `bcftools index`)"
    ]


# -- the model: shapes it rejects, devices, weights, pickles -------------------------------------

DONOR_PY = EXAMPLE / "models" / "donor_cnn" / "donor_cnn.py"
DONOR_PTH = EXAMPLE / "models" / "donor_cnn" / "donor_cnn.pth"


def test_window_length_the_model_rejects_names_the_shape_and_the_first_layers(tmp_path):
    line = fails_with(_score("-o", str(tmp_path / "o.vcf"), "--seq-length", "200"), "shape (1, 4, 200)")
    assert "Conv1d takes 4 input channels" in line and "Linear layer takes 272 features" in line
    assert "declares seq_len 101" in line and "--seq-length" in line
    assert not (tmp_path / "o.vcf").exists()


def test_input_layout_the_model_rejects_names_the_shape(tmp_path):
    fails_with(
        _score("-o", str(tmp_path / "o.vcf"), "--input-layout", "L,4"),
        "shape (1, 101, 4) (length 101, layout L,4)",
        "expected input[1, 101, 4] to have 4 channels",
        "--input-layout",
    )


@pytest.mark.tensorflow
def test_keras_model_rejecting_the_length_names_its_input_shape(tmp_path):
    from helpers import DONOR_H5

    fails_with(
        _score("-o", str(tmp_path / "o.vcf"), "--seq-length", "30", model=DONOR_H5),
        "shape (1, 30, 4)",
        "its input shape is (None, 18, 4)",
    )


@pytest.mark.parametrize("device", ["gpu", "cuda0", "CPU"])
def test_unknown_device_lists_the_valid_ones(tmp_path, device):
    fails_with(
        _score("-o", str(tmp_path / "o.vcf"), "--device", device),
        f"unknown device {device!r}; use auto, cpu, cuda, cuda:N",
    )


def test_corrupt_weights_file(tmp_path):
    bad = tmp_path / "cut.pth"
    bad.write_bytes(DONOR_PTH.read_bytes()[:4000])
    line = fails_with(
        _score("-o", str(tmp_path / "o.vcf"), "--weights", str(bad), model=f"{DONOR_PY}::DonorCNN"),
        f"{bad}: cannot read as a PyTorch state dict",
    )
    assert "torch.save(model.state_dict(), PATH)" in line


def test_weights_of_another_architecture_name_the_keys_that_differ(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.syspath_prepend(str(DONOR_PY.parent))
    from donor_cnn import DonorCNN

    other = tmp_path / "narrow.pth"
    torch.save(DonorCNN(n_filters=8).state_dict(), other)
    fails_with(
        _score("-o", str(tmp_path / "o.vcf"), "--weights", str(other), model=f"{DONOR_PY}::DonorCNN"),
        f"{other}: does not fit",
        "conv1.weight (8, 4, 9) vs (16, 4, 9)",
    )


def test_torchscript_file_given_as_weights(tmp_path):
    fails_with(
        _score("-o", str(tmp_path / "o.vcf"), "--weights", str(TORCH_MODEL), model=f"{DONOR_PY}::DonorCNN"),
        "a TorchScript module, not a state dict",
    )


def test_weights_with_a_model_that_takes_none(tmp_path):
    fails_with(
        _score("-o", str(tmp_path / "o.vcf"), "--weights", str(DONOR_PTH)),
        "go with a model given as FILE.py::Class",
    )


def test_class_without_weights_is_refused_unless_asked_for(tmp_path):
    spec = f"{DONOR_PY}::DonorCNN"
    fails_with(
        _score("-o", str(tmp_path / "o.vcf"), model=spec),
        "would score with its random initial weights",
        "--weights",
        "veff_weights_included = True",
        "--random-weights",
    )
    res = CliRunner().invoke(main, _score("-o", str(tmp_path / "r.vcf"), "--random-weights", model=spec))
    assert res.exit_code == 0, res.output
    assert "VEFF_donor_cnn_STATUS=G|ok" in (tmp_path / "r.vcf").read_text()


def test_class_that_loads_its_own_weights_needs_no_flag(tmp_path):
    """A class declaring ``veff_weights_included`` scores like the state dict it loads."""
    own = tmp_path / "own.py"
    own.write_text(
        "import torch\n"
        "from donor_cnn import DonorCNN\n\n\n"
        "class Trained(DonorCNN):\n"
        "    veff_weights_included = True\n\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        f"        self.load_state_dict(torch.load({str(DONOR_PTH)!r}, weights_only=True))\n"
    )
    (tmp_path / "donor_cnn.py").write_text(DONOR_PY.read_text())
    res = CliRunner().invoke(
        main, _score("-o", str(tmp_path / "own.vcf"), "--info-prefix", "P", model=f"{own}::Trained")
    )
    assert res.exit_code == 0, res.output
    ref = CliRunner().invoke(main, _score("-o", str(tmp_path / "ts.vcf"), "--info-prefix", "P"))
    assert ref.exit_code == 0, ref.output

    def body(path: Path) -> list[str]:
        return [x for x in path.read_text().splitlines() if not x.startswith("#")]

    assert body(tmp_path / "own.vcf") == body(tmp_path / "ts.vcf")


def _pickled_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    torch = pytest.importorskip("torch")
    monkeypatch.syspath_prepend(str(DONOR_PY.parent))
    from donor_cnn import DonorCNN

    module = DonorCNN()
    module.load_state_dict(torch.load(DONOR_PTH, weights_only=True))
    path = tmp_path / "full.pt"
    torch.save(module, path)
    return path


def test_pickled_module_needs_trust_model(tmp_path, monkeypatch):
    full = _pickled_module(tmp_path, monkeypatch)
    fails_with(
        _score("-o", str(tmp_path / "o.vcf"), model=full),
        "a pickled PyTorch module; unpickling it runs code from the file",
        "--trust-model",
    )
    fails_with(["models", "info", str(full)], "--trust-model")
    res = CliRunner().invoke(main, _score("-o", str(tmp_path / "t.vcf"), "--trust-model", model=full))
    assert res.exit_code == 0, res.output
    info = CliRunner().invoke(main, ["models", "info", str(full), "--trust-model", "--json"])
    assert info.exit_code == 0 and '"donor"' in info.stdout


def test_malicious_pickle_does_not_run(tmp_path):
    """A pickle whose loading would run a command: refused, and the command never runs."""
    torch = pytest.importorskip("torch")
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    evil = tmp_path / "evil.pt"
    torch.save({"model": Evil()}, evil)
    fails_with(_score("-o", str(tmp_path / "o.vcf"), model=evil), "--trust-model")
    fails_with(["models", "info", str(evil)], "--trust-model")
    fails_with(
        [
            "create-mutation-map",
            str(evil),
            "--fasta",
            str(HG38),
            "--region",
            "chr22:32081920-32082020",
            "-o",
            str(tmp_path / "m.h5"),
        ],
        "--trust-model",
    )
    assert not marker.exists()
    evil_weights = CliRunner().invoke(
        main, _score("-o", str(tmp_path / "o.vcf"), "--weights", str(evil), model=f"{DONOR_PY}::DonorCNN")
    )
    assert evil_weights.exit_code == 1 and "not a state dict" in evil_weights.stderr
    assert not marker.exists()
