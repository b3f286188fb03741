from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.special import logit as sp_logit

import veff.scoring.registry as sc
from veff.errors import InputError, VeffWarning
from veff.scoring.registry import SCORES, get_score, register_score

probs = arrays(np.float64, (3, 2), elements=st.floats(0.01, 0.99))


@given(probs, probs)
def test_diff_is_antisymmetric(r, a):
    np.testing.assert_allclose(SCORES["diff"](r, a), -SCORES["diff"](a, r))


def test_formulas_match_predecessor():
    r = np.array([[0.2, 0.7]])
    a = np.array([[0.6, 0.1]])
    np.testing.assert_allclose(SCORES["logit"](r, a), sp_logit(a) - sp_logit(r))
    np.testing.assert_allclose(SCORES["logit_ref"](r, a), sp_logit(r))
    np.testing.assert_allclose(SCORES["logit_alt"](r, a), sp_logit(a))
    np.testing.assert_allclose(
        SCORES["deepsea_effect"](r, a), np.abs(sp_logit(a) - sp_logit(r)) * np.abs(a - r)
    )
    np.testing.assert_allclose(SCORES["ref"](r, a), r)
    np.testing.assert_allclose(SCORES["alt"](r, a), a)


@pytest.mark.parametrize(
    ("merge", "expected"),
    [
        ("mean", [0.0, 0.15]),
        ("min", [-0.1, 0.1]),
        ("max", [0.1, 0.2]),
        ("median", [0.0, 0.15]),
        ("absmax", [0.1, 0.2]),
    ],
)
def test_rc_merging(merge, expected):
    r, a = np.array([[0.5, 0.5]]), np.array([[0.6, 0.6]])
    rr, ar = np.array([[0.5, 0.5]]), np.array([[0.4, 0.7]])
    got = SCORES["diff"](r, a, rr, ar, rc_merging=merge)
    np.testing.assert_allclose(got[0], expected)


def test_absmax_keeps_forward_on_ties_and_inputs_untouched():
    r, a, rr, ar = (np.array([[0.5]]), np.array([[0.3]]), np.array([[0.5]]), np.array([[0.7]]))
    copies = [x.copy() for x in (r, a, rr, ar)]
    assert SCORES["diff"](r, a, rr, ar, rc_merging="absmax")[0, 0] == pytest.approx(-0.2)
    for x, c in zip((r, a, rr, ar), copies, strict=True):
        np.testing.assert_array_equal(x, c)


def test_callable_merge_and_bad_merge():
    r, a = np.array([[0.1]]), np.array([[0.3]])
    got = SCORES["diff"](r, a, r, a * 2, rc_merging=lambda f, rc: f * 10 + rc)
    assert got[0, 0] == pytest.approx(2.0 + 0.5)
    with pytest.raises(InputError, match="unknown rc_merging 'mode'"):
        SCORES["diff"](r, a, r, a, rc_merging="mode")


def test_deepsea_effect_merges_components_first():
    r, a, rr, ar = (np.array([[0.2]]), np.array([[0.4]]), np.array([[0.3]]), np.array([[0.2]]))
    got = SCORES["deepsea_effect"](r, a, rr, ar, rc_merging="max")
    ld = max(sp_logit(0.4) - sp_logit(0.2), sp_logit(0.2) - sp_logit(0.3))
    d = max(0.2, -0.1)
    assert got[0, 0] == pytest.approx(abs(ld) * abs(d))


def test_logit_clips_and_warns_once(monkeypatch):
    monkeypatch.setattr(sc, "_warned_bounds", False)
    with pytest.warns(VeffWarning, match="outside"):
        v = SCORES["logit"](np.array([[0.0]]), np.array([[1.5]]))
    assert np.isfinite(v).all()
    assert v[0, 0] == pytest.approx(2 * np.log((1 - 1e-7) / 1e-7))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SCORES["logit"](np.array([[-1.0]]), np.array([[0.5]]))  # second time: no warning
    assert np.isfinite(SCORES["logit_ref"](np.array([[1.0]]), np.array([[0.0]]), eps=1e-3)).all()


def test_custom_scores_register_and_four_argument_callables():
    @register_score("test_sum_alt")
    def sum_alt(ref, alt):
        return alt * 2

    assert get_score("test_sum_alt")(np.ones((1, 1)), np.ones((1, 1)))[0, 0] == 2
    with pytest.raises(InputError, match="already registered"):
        register_score("test_sum_alt")(sum_alt)

    def four(ref, alt, ref_rc, alt_rc):
        return alt - ref + (0 if alt_rc is None else alt_rc - ref_rc)

    s = get_score(four)
    assert s.rc_aware
    assert s(np.zeros((1, 1)), np.ones((1, 1)), np.zeros((1, 1)), np.ones((1, 1)) * 3)[0, 0] == 4
    with pytest.raises(InputError, match="unknown score 'nope'"):
        get_score("nope")


def test_resolve_score_jobs_rules():
    from veff.scoring.registry import resolve_score_jobs

    jobs = resolve_score_jobs(["diff", "logit"], [{"rc_merging": "max"}])
    assert [j.kwargs for j in jobs] == [{"rc_merging": "max"}] * 2  # one dict applies to all
    assert resolve_score_jobs("diff")[0].name == "diff"
    with pytest.raises(InputError, match="2 score_kwargs given for 3 scores"):
        resolve_score_jobs(["diff", "ref", "alt"], [{}, {}])
    with pytest.raises(InputError, match="score names repeat"):
        resolve_score_jobs(["diff", "diff"])
    got = jobs[0].apply(np.array([[0.1]]), np.array([[0.4]]), np.array([[0.2]]), np.array([[0.3]]))
    assert got.dtype == np.float32 and got[0, 0] == pytest.approx(0.3)
