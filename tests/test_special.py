"""scipy.special rules (hyperdual/special.py) against an independent reference.

The reference derivatives are mpmath's numerical derivatives (``mpmath.diff``,
40 digits) of mpmath's own implementations of each function, so neither the
rule nor scipy is checked against itself.  The edges (0, ±1, tiny, large, ±inf,
NaN) are checked against their closed-form limits.
"""
from __future__ import annotations

import subprocess
import sys

import mpmath as mp  # (with sympy, in the test extra)
import numpy as np
import pytest
import scipy.special as sc

import hyperdual
from hyperdual import special

mp.mp.dps = 40


def _i(nu, scaled):
    return lambda t: mp.besseli(nu, t) * (mp.exp(-abs(t)) if scaled else 1)


#: (scipy ufunc, the mpmath function, points inside its domain)
UNARY_CASES = [
    (sc.expit, lambda t: 1 / (1 + mp.exp(-t)), [-40.0, -3.0, -1.0, 0.0, 1e-9, 0.7, 1.0, 25.0, 40.0]),
    (sc.log_expit, lambda t: -mp.log(1 + mp.exp(-t)), [-50.0, -1.0, 0.0, 0.3, 1.0, 30.0, 50.0]),
    (sc.logit, lambda t: mp.log(t / (1 - t)), [1e-10, 0.01, 0.3, 0.5, 0.9, 1 - 1e-9]),
    (sc.erf, mp.erf, [-4.0, -1.0, 0.0, 1e-8, 0.5, 1.0, 3.0]),
    (sc.erfc, mp.erfc, [-3.0, -1.0, 0.0, 0.5, 1.0, 5.0, 20.0]),
    (sc.erfcx, lambda t: mp.exp(t * t) * mp.erfc(t),
     [-5.0, -1.0, 0.0, 0.5, 1.0, 9.5, 10.0, 10.5, 30.0, 1e3, 1e6]),
    (sc.erfinv, mp.erfinv, [-0.999, -0.5, 0.0, 1e-9, 0.3, 0.9, 0.999999]),
    (sc.ndtr, mp.ncdf, [-8.0, -1.0, 0.0, 0.5, 1.0, 6.0]),
    (sc.log_ndtr, lambda t: mp.log(mp.ncdf(t)),
     [-1e4, -1e3, -40.0, -10.5, -10.0, -9.5, -3.0, -1.0, 0.0, 1.0, 5.0, 30.0]),
    (sc.ndtri, lambda t: mp.sqrt(2) * mp.erfinv(2 * t - 1), [1e-30, 1e-10, 0.02, 0.5, 0.7, 0.999]),
    (sc.gamma, mp.gamma, [-2.5, -0.5, 1e-6, 0.5, 1.0, 2.0, 7.3, 150.0]),
    (sc.gammaln, lambda t: mp.log(abs(mp.gamma(t))), [-2.5, -0.5, 1e-8, 0.5, 1.0, 2.0, 10.0, 1e5]),
    (sc.digamma, mp.digamma, [-2.5, -0.5, 1e-6, 0.5, 1.0, 2.0, 10.0, 1e6]),
    (sc.entr, lambda t: -t * mp.log(t), [1e-12, 0.3, 1.0, 2.0, 1e8]),
    (sc.i0, _i(0, False), [-30.0, -1.0, -1e-8, 0.0, 0.3, 0.49, 0.5, 1.0, 5.0, 700.0]),
    (sc.i1, _i(1, False), [-30.0, -1.0, -1e-8, 0.0, 1e-8, 0.3, 0.49, 0.5, 1.0, 5.0, 700.0]),
    (sc.i0e, _i(0, True), [-30.0, -1.0, -1e-8, 1e-8, 0.3, 0.5, 1.0, 5.0, 1e4]),
    (sc.i1e, _i(1, True), [-30.0, -1.0, -1e-8, 1e-8, 0.3, 0.49, 0.5, 1.0, 5.0, 1e4]),
]


def _ours(ufunc, points):
    """``(f', f'')`` at each point, from the gradient and the diagonal of one Hessian."""
    x = np.array(points, dtype=np.float64)
    H = hyperdual.hessian(lambda v: np.sum(ufunc(v)), x)
    full = H[:]
    np.testing.assert_array_equal(full[~np.eye(x.size, dtype=bool)], 0.0)  # elementwise: diagonal
    return H.gradient, np.diag(full)


@pytest.mark.parametrize("ufunc, ref, points", UNARY_CASES, ids=[c[0].__name__ for c in UNARY_CASES])
def test_unary_rules_match_mpmath(ufunc, ref, points):
    d1, d2 = _ours(ufunc, points)
    for t, g1, g2 in zip(points, d1, d2):
        w1, w2 = (float(mp.diff(ref, mp.mpf(t), n)) for n in (1, 2))
        # (mpmath's numerical derivative of an exact 0 is ~1e-50, hence abs=)
        assert g1 == pytest.approx(w1, rel=2e-12, abs=1e-30), (ufunc.__name__, t, "first")
        assert g2 == pytest.approx(w2, rel=2e-11, abs=1e-30), (ufunc.__name__, t, "second")


#: (ufunc, point, f', f''): limits at the edges, and the conventions at kinks.
EDGES = [
    (sc.expit, np.inf, 0.0, 0.0), (sc.expit, -np.inf, 0.0, 0.0),
    (sc.log_expit, -np.inf, 1.0, 0.0), (sc.log_expit, np.inf, 0.0, 0.0),
    (sc.logit, 0.0, np.inf, -np.inf), (sc.logit, 1.0, np.inf, np.inf),
    (sc.erf, np.inf, 0.0, 0.0), (sc.erf, -np.inf, 0.0, 0.0),
    (sc.erfc, np.inf, 0.0, 0.0), (sc.erfc, -np.inf, 0.0, 0.0),
    (sc.erfcx, np.inf, 0.0, 0.0), (sc.erfcx, -np.inf, -np.inf, np.inf),
    (sc.erfinv, 1.0, np.inf, np.inf), (sc.erfinv, -1.0, np.inf, -np.inf),
    (sc.ndtr, np.inf, 0.0, 0.0), (sc.ndtr, -np.inf, 0.0, 0.0),
    (sc.log_ndtr, -np.inf, np.inf, -1.0), (sc.log_ndtr, np.inf, 0.0, 0.0),
    (sc.ndtri, 0.0, np.inf, -np.inf), (sc.ndtri, 1.0, np.inf, np.inf),
    (sc.gammaln, np.inf, np.inf, 0.0), (sc.digamma, np.inf, 0.0, -0.0),
    (sc.entr, 0.0, np.inf, -np.inf),
    (sc.i0, 0.0, 0.0, 0.5), (sc.i0, 800.0, np.inf, np.inf), (sc.i0, -800.0, -np.inf, np.inf),
    (sc.i1, 0.0, 0.5, 0.0), (sc.i1, 800.0, np.inf, np.inf), (sc.i1, -800.0, np.inf, -np.inf),
    (sc.i0e, 0.0, 0.0, 1.5),      # the kink of e^-|a|: f' = mean of ∓1, f'' = 3/2 on both sides
    (sc.i1e, 0.0, 0.5, 0.0),      # f'' = mean of ∓1
    (sc.i0e, np.inf, 0.0, 0.0), (sc.i1e, -np.inf, 0.0, 0.0),
]


@pytest.mark.parametrize("ufunc, t, w1, w2", EDGES, ids=[f"{e[0].__name__}({e[1]})" for e in EDGES])
def test_unary_rules_at_the_edges(ufunc, t, w1, w2):
    with np.errstate(all="ignore"):
        d1, d2 = _ours(ufunc, [t])
    assert d1[0] == w1 and d2[0] == w2


@pytest.mark.parametrize("ufunc", [c[0] for c in UNARY_CASES], ids=[c[0].__name__ for c in UNARY_CASES])
def test_unary_rules_nan_in_nan_out(ufunc):
    with np.errstate(all="ignore"):
        d1, d2 = _ours(ufunc, [np.nan])
        rule = hyperdual.ops.rules.UNARY[ufunc]
        g1, g2 = rule(np.array([np.nan, 0.5]), ufunc(np.array([np.nan, 0.5])))
    assert np.isnan(d1[0]) and np.isnan(d2[0])
    assert np.isnan(g1[0]) and np.isnan(g2[0])  # the rule itself, not only the chain rule
    assert np.isfinite(g1[1]) and np.isfinite(g2[1])


def _mp_hessian(f, x, y):
    """The gradient and Hessian of ``f(x, y)`` by mpmath."""
    g = [float(mp.diff(f, (x, y), o)) for o in ((1, 0), (0, 1))]
    h = [[float(mp.diff(f, (x, y), (2, 0))), float(mp.diff(f, (x, y), (1, 1)))],
         [float(mp.diff(f, (x, y), (1, 1))), float(mp.diff(f, (x, y), (0, 2)))]]
    return np.array(g), np.array(h)


BINARY_CASES = [
    (sc.xlogy, lambda a, b: a * mp.log(b), [(0.5, 2.0), (-1.5, 0.3), (3.0, 1e-8), (1e-9, 7.0)]),
    (sc.xlog1py, lambda a, b: a * mp.log1p(b), [(0.5, 2.0), (-1.5, -0.3), (3.0, 1e-9), (2.0, -0.999)]),
    (sc.rel_entr, lambda a, b: a * mp.log(a / b), [(0.5, 2.0), (1.5, 0.3), (1e-9, 7.0), (4.0, 4.0)]),
]


@pytest.mark.parametrize("ufunc, ref, points", BINARY_CASES, ids=[c[0].__name__ for c in BINARY_CASES])
def test_binary_rules_match_mpmath(ufunc, ref, points):
    for a, b in points:
        H = hyperdual.hessian(lambda v: ufunc(v[0], v[1]), np.array([a, b]))
        g, h = _mp_hessian(ref, mp.mpf(a), mp.mpf(b))
        np.testing.assert_allclose(H.gradient, g, rtol=2e-12, atol=1e-30)
        np.testing.assert_allclose(H[:], h, rtol=2e-11, atol=1e-30)
        # one operand constant: the dx and dy pieces alone
        np.testing.assert_allclose(hyperdual.hessian(lambda t: ufunc(t, b), a)[()], h[0, 0],
                                   rtol=2e-11, atol=1e-30)
        np.testing.assert_allclose(hyperdual.hessian(lambda t: ufunc(a, t), b)[()], h[1, 1],
                                   rtol=2e-11, atol=1e-30)


def test_binary_rules_at_x_zero():
    """``x·log`` functions are 0 for ``x == 0`` whatever ``y``: no derivative in ``y`` there."""
    for ufunc, b, dxx in [(sc.xlogy, 0.0, -np.inf), (sc.xlogy, 2.0, np.log(2.0)),
                          (sc.xlog1py, -1.0, -np.inf), (sc.rel_entr, 3.0, -np.inf)]:
        with np.errstate(all="ignore"):
            H = hyperdual.hessian(lambda v: ufunc(v[0], v[1]), np.array([0.0, b]))
            g, h = H.gradient, H[:]
        assert g[1] == 0.0 and h[1, 1] == 0.0, ufunc.__name__
        assert g[0] == (dxx if ufunc is not sc.rel_entr else -np.inf), ufunc.__name__


def test_rules_reach_every_path():
    """Large inputs (windows, the pattern pass), small ones (packed lanes), recorded and batched."""
    x = np.linspace(-2, 2, 1500)
    f = lambda v: np.sum(sc.erf(v[1:] * v[:-1])) + np.sum(sc.log_expit(v))  # noqa: E731
    H = hyperdual.hessian(f, x)
    block = H[1000:1003, 999:1004]  # (a window of the long input)
    fd = hyperdual.hessian(f, x, record=True)[1000:1003, 999:1004]
    np.testing.assert_array_equal(block, fd)
    full = H[:]
    assert H.stats.structural_zeros > 0
    np.testing.assert_array_equal(full[1000:1003, 999:1004], block)
    X = np.linspace(0.1, 0.9, 12).reshape(4, 3)
    Hb = hyperdual.hessian(lambda v: np.sum(sc.logit(v) ** 2, axis=1), X, batch_axis=0)[:]
    for b in range(4):
        np.testing.assert_allclose(Hb[b], hyperdual.hessian(lambda v: np.sum(sc.logit(v) ** 2), X[b])[:],
                                   rtol=1e-15)


def test_rules_registered_on_first_use_only():
    code = ("import sys, numpy as np, hyperdual, scipy.special as sc\n"
            "assert 'hyperdual.special' not in sys.modules\n"
            "h = hyperdual.hessian(lambda v: sc.gammaln(v), np.array(2.0))[()]\n"
            "print('hyperdual.special' in sys.modules, h)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", repr(float(sc.polygamma(1, 2.0)))]


def test_a_users_rule_is_kept(monkeypatch):
    monkeypatch.setitem(hyperdual.ops.rules.UNARY, sc.erf, lambda a, y: (7.0, None))
    import importlib
    importlib.reload(special)  # registering again keeps the user's entry
    assert hyperdual.gradient(lambda v: np.sum(sc.erf(v)), np.ones(2)).tolist() == [7.0, 7.0]


def test_unsupported_scipy_ufunc_is_named():
    with pytest.raises(TypeError, match=r"the ufunc scipy\.special\.struve on HyperDual arrays.*"
                                        r"register_ufunc\(scipy\.special\.struve, rule\)"):
        hyperdual.hessian(lambda v: np.sum(sc.struve(1.0, v)), np.ones(2))[:]
    with pytest.raises(TypeError, match=r"does not support scipy\.special\.xlogy\.reduce"):
        hyperdual.hessian(lambda v: sc.xlogy.reduce(v), np.ones(2))[:]
    with pytest.raises(TypeError, match="the ufunc numpy.spacing"):
        hyperdual.hessian(lambda v: np.sum(np.spacing(v)), np.ones(2))[:]


# ---- logsumexp, softmax, log_softmax ------------------------------------------------------------
def _fd_hessian(f, x, h=1e-4):
    n = x.size
    H = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            e_i, e_j = np.eye(n)[i] * h, np.eye(n)[j] * h
            H[i, j] = (f(x + e_i + e_j) - f(x + e_i - e_j) - f(x - e_i + e_j) + f(x - e_i - e_j)) / (4 * h * h)
    return H


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 1)])
def test_logsumexp_matches_scipy(axis):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(6) * 3
    b = np.array([[1.0, 2.0, 0.5], [0.0, 1.0, 3.0]])
    for kw in ({}, {"b": b}, {"keepdims": True}):
        def f(v, lib):
            return np.sum(lib.logsumexp(v.reshape(2, 3), axis=axis, **kw) ** 2)
        H = hyperdual.hessian(lambda v: f(v, special), x)
        assert H.value == pytest.approx(f(x, sc), rel=1e-14)
        np.testing.assert_allclose(H[:], _fd_hessian(lambda v: f(v, sc), x), rtol=2e-6, atol=2e-6)


def test_logsumexp_large_entries_and_signs():
    x = np.array([1000.0, 1001.0, -np.inf])
    H = hyperdual.hessian(lambda v: special.logsumexp(v), x)
    e = np.exp(x - x.max())
    p = e / e.sum()
    assert H.value == sc.logsumexp(x)
    np.testing.assert_allclose(H.gradient, p, rtol=1e-15)
    np.testing.assert_allclose(H[:], np.diag(p) - np.outer(p, p), rtol=1e-14, atol=1e-300)
    bw = np.array([1.0, -3.0])
    v = np.array([0.5, 0.2])
    out, sign = special.logsumexp(hyperdual.variable(v), b=bw, return_sign=True)
    want, wsign = sc.logsumexp(v, b=bw, return_sign=True)
    assert out.value == pytest.approx(want, rel=1e-15) and sign == wsign


def test_softmax_and_log_softmax_match_scipy():
    x = np.array([0.3, -1.0, 2.0, 0.5])
    w = np.array([1.0, 2.0, 3.0, 4.0])
    for ours, theirs in [(special.softmax, sc.softmax), (special.log_softmax, sc.log_softmax)]:
        H = hyperdual.hessian(lambda v: np.sum(w * ours(v)), x)
        assert H.value == pytest.approx(np.sum(w * theirs(x)), rel=1e-14)
        np.testing.assert_allclose(H[:], _fd_hessian(lambda v: np.sum(w * theirs(v)), x), rtol=1e-6, atol=1e-6)
        X = x.reshape(2, 2)
        np.testing.assert_allclose(ours(X, axis=1), theirs(X, axis=1), rtol=1e-15)


@pytest.mark.parametrize("name", ["logsumexp", "softmax", "log_softmax"])
def test_scipys_converting_functions_name_ours(name):
    with pytest.raises(TypeError, match=rf"scipy\.special\.{name} converts its input.*"
                                        rf"call hyperdual\.special\.{name} in the function instead"):
        hyperdual.hessian(lambda v: np.sum(getattr(sc, name)(v)), np.ones(3))[:]
