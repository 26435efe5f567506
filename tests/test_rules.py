"""Elementwise rules (ufuncs) of hyperdual against hand-written closed forms.

Every reference derivative below is written out by hand in this file (and the
hand-written formulas are themselves cross-checked against sympy in
``test_reference_formulas_match_sympy``); nothing is taken from
``hyperdual.ops.rules``.

Lane conventions checked throughout:

* identity seeds ``e1 = e2 = I_N`` give ``e1[k] = df/dx_k`` and
  ``e12[i*N + j] = d2f/dx_i dx_j`` (all combinations, K1 = K2 = N, P = N*N);
* dense seeds ``e1 = V`` (K1 x M), ``e2 = W`` (K2 x M) give
  ``e12[p] = V[ip[p]]^T H W[jp[p]]`` where H is the Hessian in the underlying
  variables.

Tolerances: single-term results (identity seeds) are compared with
``rtol=1e-12``; the library may evaluate a derivative with an algebraically
equal but different formula (e.g. ``1 + tan^2`` instead of ``1/cos^2``), which
costs a few ulps.  ``atol=1e-14`` absorbs results that are mathematically tiny
but computed as exactly 0 by one side (``1 - tanh(20)^2``).  Where several
terms are summed in different orders (dense seeds) the values are O(1) and
``atol=1e-12`` is used; compositions are compared with ``rtol=1e-10``.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings, strategies as st

from hyperdual import HyperDual
from seeds import derivs, seeded

RTOL = 1e-12
ATOL = 1e-14
LN2 = math.log(2.0)
LN10 = math.log(10.0)
EDGE = 1.0 - 2.0 ** -20   # dyadic: 1 - EDGE**2 is computed exactly by any formula
RNG_SEED = 20240607


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def assert_close(actual, expected, rtol=RTOL, atol=ATOL):
    actual = np.asarray(actual)
    expected = np.asarray(expected, dtype=float)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.dtype == np.float64
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def diag_grad(d1):
    """Expected gradient of an elementwise function of identity-seeded x: ``g[k, m] = δ_km d1_m``."""
    d1 = np.asarray(d1, dtype=float)
    return np.diag(d1)


def diag_hess(d2):
    """Expected Hessian of an elementwise function: ``H[i, j, m] = δ_im δ_jm d2_m``."""
    d2 = np.asarray(d2, dtype=float)
    n = d2.size
    h = np.zeros((n, n, n))
    h[np.arange(n), np.arange(n), np.arange(n)] = d2
    return h


def bcast(v, shape):
    return np.broadcast_to(np.asarray(v, dtype=float), shape).copy()


# ---------------------------------------------------------------------------------------------
# hand-written references: name -> (ufunc, g', g'', edge/ordinary points, ordinary points)
# ---------------------------------------------------------------------------------------------
def _sech2(a):
    with np.errstate(over="ignore"):      # cosh(1e8) = inf -> sech^2 = 0
        return 1.0 / np.cosh(a) ** 2


UNARY_REF = {
    "sin": (np.sin, lambda a: np.cos(a), lambda a: -np.sin(a),
            [0.0, 1.0, -1.0, 0.3, -2.5, 1e-8, 1e8], [0.3, -1.2, 2.0]),
    "cos": (np.cos, lambda a: -np.sin(a), lambda a: -np.cos(a),
            [0.0, 1.0, -1.0, 0.3, -2.5, 1e-8, 1e8], [0.3, -1.2, 2.0]),
    "tan": (np.tan, lambda a: 1.0 / np.cos(a) ** 2, lambda a: 2.0 * np.sin(a) / np.cos(a) ** 3,
            [0.0, 1.0, -1.0, 0.3, -1.2, 1e-8], [0.3, -1.2, 0.7]),
    "exp": (np.exp, np.exp, np.exp, [0.0, 1.0, -1.0, 1e-8, -1e8, 700.0], [0.3, -1.2, 2.0]),
    "exp2": (np.exp2, lambda a: LN2 * 2.0 ** a, lambda a: LN2 ** 2 * 2.0 ** a,
             [0.0, 1.0, -1.0, 1e-8, -1e8, 1000.0], [0.3, -1.2, 2.0]),
    "expm1": (np.expm1, np.exp, np.exp, [0.0, 1.0, -1.0, 1e-8, -1e8, 700.0], [0.3, -1.2, 2.0]),
    "log": (np.log, lambda a: 1.0 / a, lambda a: -1.0 / a ** 2,
            [1.0, 0.5, 3.0, 1e-8, 1e8], [0.3, 1.7, 4.0]),
    "log2": (np.log2, lambda a: 1.0 / (a * LN2), lambda a: -1.0 / (a ** 2 * LN2),
             [1.0, 0.5, 3.0, 1e-8, 1e8], [0.3, 1.7, 4.0]),
    "log10": (np.log10, lambda a: 1.0 / (a * LN10), lambda a: -1.0 / (a ** 2 * LN10),
              [1.0, 0.5, 3.0, 1e-8, 1e8], [0.3, 1.7, 4.0]),
    "log1p": (np.log1p, lambda a: 1.0 / (1.0 + a), lambda a: -1.0 / (1.0 + a) ** 2,
              [0.0, 1.0, -0.5, 1e-8, 1e8, -EDGE], [0.3, -0.4, 2.0]),
    "sqrt": (np.sqrt, lambda a: 0.5 * a ** -0.5, lambda a: -0.25 * a ** -1.5,
             [1.0, 0.25, 4.0, 1e-8, 1e8], [0.3, 1.7, 4.0]),
    "cbrt": (np.cbrt, lambda a: np.abs(a) ** (-2.0 / 3.0) / 3.0,
             lambda a: -2.0 / 9.0 * np.sign(a) * np.abs(a) ** (-5.0 / 3.0),
             [1.0, -1.0, 8.0, -8.0, 1e-8, 1e8, -1e8], [0.3, -1.7, 4.0]),
    "reciprocal": (np.reciprocal, lambda a: -1.0 / a ** 2, lambda a: 2.0 / a ** 3,
                   [1.0, -1.0, -3.0, 1e-8, 1e8], [0.3, -1.7, 4.0]),
    "square": (np.square, lambda a: 2.0 * a, lambda a: np.full_like(a, 2.0),
               [0.0, 1.0, -1.0, 1e8, 1e-8, -3.0], [0.3, -1.7, 4.0]),
    "arcsin": (np.arcsin, lambda a: (1.0 - a ** 2) ** -0.5, lambda a: a * (1.0 - a ** 2) ** -1.5,
               [0.0, 0.5, -0.5, EDGE, -EDGE, 1e-8], [0.3, -0.7, 0.1]),
    "arccos": (np.arccos, lambda a: -(1.0 - a ** 2) ** -0.5, lambda a: -a * (1.0 - a ** 2) ** -1.5,
               [0.0, 0.5, -0.5, EDGE, -EDGE, 1e-8], [0.3, -0.7, 0.1]),
    "arctan": (np.arctan, lambda a: 1.0 / (1.0 + a ** 2), lambda a: -2.0 * a / (1.0 + a ** 2) ** 2,
               [0.0, 1.0, -1.0, 1e8, 1e-8, -3.0], [0.3, -1.7, 4.0]),
    "sinh": (np.sinh, np.cosh, np.sinh, [0.0, 1.0, -1.0, 1e-8, 700.0, -700.0], [0.3, -1.7, 2.0]),
    "cosh": (np.cosh, np.sinh, np.cosh, [0.0, 1.0, -1.0, 1e-8, 700.0, -700.0], [0.3, -1.7, 2.0]),
    "tanh": (np.tanh, _sech2, lambda a: -2.0 * np.tanh(a) * _sech2(a),
             [0.0, 1.0, -1.0, 1e-8, 20.0, -20.0, 1e8], [0.3, -1.7, 2.0]),
    "arcsinh": (np.arcsinh, lambda a: (1.0 + a ** 2) ** -0.5, lambda a: -a * (1.0 + a ** 2) ** -1.5,
                [0.0, 1.0, -1.0, 1e8, -1e8, 1e-8], [0.3, -1.7, 2.0]),
    "arccosh": (np.arccosh, lambda a: (a ** 2 - 1.0) ** -0.5, lambda a: -a * (a ** 2 - 1.0) ** -1.5,
                [1.5, 2.0, 1e8, 1.0 + 2.0 ** -20], [1.3, 1.7, 4.0]),
    "arctanh": (np.arctanh, lambda a: 1.0 / (1.0 - a ** 2), lambda a: 2.0 * a / (1.0 - a ** 2) ** 2,
                [0.0, 0.5, -0.5, EDGE, -EDGE, 1e-8], [0.3, -0.7, 0.1]),
    "deg2rad": (np.deg2rad, lambda a: np.full_like(a, math.pi / 180.0), np.zeros_like,
                [0.0, 1.0, -1.0, 1e8, 1e-8, 180.0], [0.3, -1.7, 2.0]),
    "rad2deg": (np.rad2deg, lambda a: np.full_like(a, 180.0 / math.pi), np.zeros_like,
                [0.0, 1.0, -1.0, 1e8, 1e-8, math.pi], [0.3, -1.7, 2.0]),
    "radians": (np.radians, lambda a: np.full_like(a, math.pi / 180.0), np.zeros_like,
                [0.0, 1.0, -1.0, 90.0], [0.3, -1.7, 2.0]),
    "degrees": (np.degrees, lambda a: np.full_like(a, 180.0 / math.pi), np.zeros_like,
                [0.0, 1.0, -1.0, 2.0], [0.3, -1.7, 2.0]),
    # kink convention: derivative sign(a) (0 at 0), second derivative 0
    "absolute": (np.absolute, np.sign, np.zeros_like,
                 [0.0, 1.0, -1.0, 1e8, -1e-8, -1e8, 1e-8], [0.3, -1.7, 2.0]),
    "fabs": (np.fabs, np.sign, np.zeros_like, [0.0, 1.0, -1.0, 1e8, -1e-8, -1e8], [0.3, -1.7, 2.0]),
    "negative": (np.negative, lambda a: -np.ones_like(a), np.zeros_like,
                 [0.0, 1.0, -1.0, 1e8, 1e-8], [0.3, -1.7, 2.0]),
    "positive": (np.positive, np.ones_like, np.zeros_like, [0.0, 1.0, -1.0, 1e8, 1e-8], [0.3, -1.7, 2.0]),
    # piecewise constant: every derivative is zero
    "sign": (np.sign, np.zeros_like, np.zeros_like, [-1.5, 0.0, 0.5, 1e8, -1e-8], [0.3, -1.7, 2.0]),
    "floor": (np.floor, np.zeros_like, np.zeros_like, [-1.5, 0.0, 0.5, 2.5, 1e8 + 0.5], [0.3, -1.7, 2.0]),
    "ceil": (np.ceil, np.zeros_like, np.zeros_like, [-1.5, 0.0, 0.5, 2.5, 1e8 + 0.5], [0.3, -1.7, 2.0]),
    "rint": (np.rint, np.zeros_like, np.zeros_like, [-1.5, 0.0, 0.5, 2.5, -2.7], [0.3, -1.7, 2.0]),
    "trunc": (np.trunc, np.zeros_like, np.zeros_like, [-1.5, 0.0, 0.5, 2.5, -2.7], [0.3, -1.7, 2.0]),
}


def _expit(z):
    return 1.0 / (1.0 + np.exp(-z))


def _expit2(z):
    return 1.0 / (1.0 + 2.0 ** (-z))


def _power_ref(a, b):
    L = np.log(a)
    y = a ** b
    return (y, b * a ** (b - 1.0), y * L, b * (b - 1.0) * a ** (b - 2.0),
            a ** (b - 1.0) * (1.0 + b * L), y * L * L)


#: name -> (ufunc, ref(a, b) -> (f, fa, fb, faa, fab, fbb), points [(a, b), ...])
BINARY_REF = {
    "add": (np.add, lambda a, b: (a + b, 1.0, 1.0, 0.0, 0.0, 0.0),
            [(1.5, -2.0), (0.0, 3.0), (1e8, 1e-8), (-1.0, -1.0), (0.0, 0.0)]),
    "subtract": (np.subtract, lambda a, b: (a - b, 1.0, -1.0, 0.0, 0.0, 0.0),
                 [(1.5, -2.0), (0.0, 3.0), (1e8, 1e-8), (-1.0, -1.0), (0.0, 0.0)]),
    "multiply": (np.multiply, lambda a, b: (a * b, b, a, 0.0, 1.0, 0.0),
                 [(1.5, -2.0), (0.0, 3.0), (1e8, 1e-8), (-1.0, -1.0), (0.0, 0.0)]),
    "true_divide": (np.true_divide,
                    lambda a, b: (a / b, 1.0 / b, -a / b ** 2, 0.0, -1.0 / b ** 2, 2.0 * a / b ** 3),
                    [(1.0, 2.0), (0.0, 2.0), (1e8, 3.0), (-2.0, -0.5), (1.0, 1e-8), (1e-8, 1e8)]),
    "power": (np.power, _power_ref,
              [(2.0, 3.0), (0.5, -1.5), (1e8, 0.5), (1e-8, 2.0), (1.0, 7.0), (3.0, 0.0),
               (2.5, 1.0), (4.0, 2.0)]),
    "float_power": (np.float_power, _power_ref,
                    [(2.0, 3.0), (0.5, -1.5), (1e8, 0.5), (1e-8, 2.0), (1.0, 7.0), (3.0, 0.0)]),
    "arctan2": (np.arctan2,
                lambda a, b: (np.arctan2(a, b), b / (a * a + b * b), -a / (a * a + b * b),
                              -2.0 * a * b / (a * a + b * b) ** 2,
                              (a * a - b * b) / (a * a + b * b) ** 2,
                              2.0 * a * b / (a * a + b * b) ** 2),
                [(1.0, 1.0), (0.3, 0.7), (-1.0, 0.5), (1e-8, 1.0), (1e8, 1.0), (2.0, -3.0),
                 (0.0, 1.0), (1.0, 0.0)]),
    "hypot": (np.hypot,
              lambda a, b: (np.sqrt(a * a + b * b), a / np.sqrt(a * a + b * b),
                            b / np.sqrt(a * a + b * b), b * b / (a * a + b * b) ** 1.5,
                            -a * b / (a * a + b * b) ** 1.5, a * a / (a * a + b * b) ** 1.5),
              [(3.0, 4.0), (1e-8, 1.0), (1e8, 1.0), (-2.0, 5.0), (1.0, 1.0)]),
    "logaddexp": (np.logaddexp,
                  lambda a, b: (np.logaddexp(a, b), _expit(a - b), _expit(b - a),
                                _expit(a - b) * _expit(b - a), -_expit(a - b) * _expit(b - a),
                                _expit(a - b) * _expit(b - a)),
                  [(0.0, 0.0), (1.0, 2.0), (-3.0, 0.5), (700.0, 700.0), (1e-8, -1e-8), (30.0, -30.0)]),
    "logaddexp2": (np.logaddexp2,
                   lambda a, b: (np.logaddexp2(a, b), _expit2(a - b), _expit2(b - a),
                                 LN2 * _expit2(a - b) * _expit2(b - a),
                                 -LN2 * _expit2(a - b) * _expit2(b - a),
                                 LN2 * _expit2(a - b) * _expit2(b - a)),
                   [(0.0, 0.0), (1.0, 2.0), (-3.0, 0.5), (700.0, 700.0), (1e-8, -1e-8), (30.0, -30.0)]),
}

def binary_names(both_seeded):
    """Parameter list over BINARY_REF (arctan2's mixed partial, once wrong, is covered when
    both operands are seeded)."""
    return sorted(BINARY_REF)


def binary_partials(name, a, b):
    f, fa, fb, faa, fab, fbb = BINARY_REF[name][1](np.asarray(a, float), np.asarray(b, float))
    shape = np.broadcast_shapes(np.shape(a), np.shape(b))
    return tuple(bcast(t, shape) for t in (f, fa, fb, faa, fab, fbb))


# ---------------------------------------------------------------------------------------------
# the references themselves are right (checked against sympy at ordinary points)
# ---------------------------------------------------------------------------------------------
_t, _u = sp.symbols("t u", real=True)
SYMPY_UNARY = {
    "sin": sp.sin(_t), "cos": sp.cos(_t), "tan": sp.tan(_t), "exp": sp.exp(_t), "exp2": 2 ** _t,
    "expm1": sp.exp(_t) - 1, "log": sp.log(_t), "log2": sp.log(_t, 2), "log10": sp.log(_t, 10),
    "log1p": sp.log(1 + _t), "sqrt": sp.sqrt(_t), "cbrt": sp.cbrt(_t), "reciprocal": 1 / _t,
    "square": _t ** 2, "arcsin": sp.asin(_t), "arccos": sp.acos(_t), "arctan": sp.atan(_t),
    "sinh": sp.sinh(_t), "cosh": sp.cosh(_t), "tanh": sp.tanh(_t), "arcsinh": sp.asinh(_t),
    "arccosh": sp.acosh(_t), "arctanh": sp.atanh(_t), "deg2rad": sp.pi * _t / 180,
    "rad2deg": 180 * _t / sp.pi, "radians": sp.pi * _t / 180, "degrees": 180 * _t / sp.pi,
    "negative": -_t, "positive": _t,
}
SYMPY_BINARY = {
    "add": _t + _u, "subtract": _t - _u, "multiply": _t * _u, "true_divide": _t / _u,
    "power": _t ** _u, "float_power": _t ** _u, "arctan2": sp.atan2(_t, _u),
    "hypot": sp.sqrt(_t ** 2 + _u ** 2), "logaddexp": sp.log(sp.exp(_t) + sp.exp(_u)),
    "logaddexp2": sp.log(2 ** _t + 2 ** _u, 2),
}


@pytest.mark.parametrize("name", sorted(SYMPY_UNARY))
def test_unary_reference_formulas_match_sympy(name):
    _, d1, d2, _, ordinary = UNARY_REF[name]
    expr = SYMPY_UNARY[name]
    e1, e2 = sp.diff(expr, _t), sp.diff(expr, _t, 2)
    for a in ordinary:
        a = abs(a) if name == "cbrt" else a  # sympy's cbrt is the principal (complex) root
        assert float(d1(np.float64(a))) == pytest.approx(float(e1.subs(_t, a).evalf(30)), rel=1e-13)
        assert float(d2(np.float64(a))) == pytest.approx(float(e2.subs(_t, a).evalf(30)), rel=1e-13, abs=1e-300)


@pytest.mark.parametrize("name", sorted(SYMPY_BINARY))
def test_binary_reference_formulas_match_sympy(name):
    expr = SYMPY_BINARY[name]
    syms = [expr, sp.diff(expr, _t), sp.diff(expr, _u), sp.diff(expr, _t, 2),
            sp.diff(expr, _t, _u), sp.diff(expr, _u, 2)]
    for a, b in [(0.7, 1.3), (2.0, -0.4) if name not in ("power", "float_power") else (2.0, 0.4)]:
        ref = binary_partials(name, a, b)
        for got, e in zip(ref, syms):
            want = float(e.subs({_t: a, _u: b}).evalf(30))
            assert float(got) == pytest.approx(want, rel=1e-13, abs=1e-15)


# ---------------------------------------------------------------------------------------------
# unary rules
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shared", [False, True], ids=["e2-own", "e2-shared"])
@pytest.mark.parametrize("name", sorted(UNARY_REF))
def test_unary_identity_seeds_all_lanes(name, shared):
    """Edge and ordinary points with identity seeds: off-diagonal Hessian rows are exactly 0."""
    f, d1, d2, pts, _ = UNARY_REF[name]
    x0 = np.array(pts, dtype=float)
    n = x0.size
    y = f(seeded(x0, shared))
    v, g, h = derivs(y, n)
    assert_close(v, f(x0))
    assert_close(g, diag_grad(d1(x0)))
    assert_close(h, diag_hess(d2(x0)))
    # the off-diagonal rows are exactly zero (not just small)
    off = ~np.eye(n, dtype=bool)
    assert np.all(h[off] == 0.0)


def _dense_seeds(rng, n, k1=2, k2=3):
    V = rng.normal(size=(k1, n))
    W = rng.normal(size=(k2, n))
    return V, W


@pytest.mark.parametrize("with_e12", [False, True], ids=["no-e12", "with-e12"])
@pytest.mark.parametrize("name", sorted(UNARY_REF))
def test_unary_dense_seeds(name, with_e12):
    """e1 = V, e2 = W (K1=2, K2=3, P=6); elementwise Hessian contracted as V[ip]^T H W[jp]."""
    f, d1, d2, _, pts = UNARY_REF[name]
    rng = np.random.default_rng(RNG_SEED)
    x0 = np.array(pts, dtype=float)
    n = x0.size
    V, W = _dense_seeds(rng, n)
    ip, jp = np.repeat(np.arange(2), 3), np.tile(np.arange(3), 2)
    D = rng.normal(size=(6, n)) if with_e12 else None
    x = HyperDual(x0, e1=V, e2=W, e12=D)
    y = f(x)
    g1, g2 = bcast(d1(x0), x0.shape), bcast(d2(x0), x0.shape)
    assert_close(y.value, f(x0))
    assert_close(y.e1, g1 * V, atol=1e-12)
    assert_close(y.e2, g1 * W, atol=1e-12)
    expected = g2 * V[ip] * W[jp]
    if with_e12:
        expected = expected + g1 * D
    assert_close(y.e12, expected, atol=1e-12)
    np.testing.assert_array_equal(y.pairs[0], ip)
    np.testing.assert_array_equal(y.pairs[1], jp)


@pytest.mark.parametrize("name", ["sin", "exp", "log", "arctanh", "cbrt", "square", "absolute", "floor"])
def test_unary_subset_of_pairs(name):
    """A custom pair map with P < K1*K2: row p pairs V[ip[p]] with W[jp[p]]."""
    f, d1, d2, _, pts = UNARY_REF[name]
    rng = np.random.default_rng(RNG_SEED + 1)
    x0 = np.array(pts, dtype=float).reshape(3, 1) * np.array([1.0, 0.5])  # shape (3, 2)
    V = rng.normal(size=(2,) + x0.shape)
    W = rng.normal(size=(3,) + x0.shape)
    ip, jp = np.array([1, 0, 1]), np.array([2, 0, 0])
    D = rng.normal(size=(3,) + x0.shape)
    x = HyperDual(x0, e1=V, e2=W, e12=D, pairs=(ip, jp))
    y = f(x)
    g1, g2 = d1(x0), d2(x0)
    assert y.e12.shape == (3,) + x0.shape
    assert_close(y.value, f(x0))
    assert_close(y.e1, g1 * V, atol=1e-12)
    assert_close(y.e2, g1 * W, atol=1e-12)
    assert_close(y.e12, g1 * D + g2 * V[ip] * W[jp], atol=1e-12)
    np.testing.assert_array_equal(y.pairs[0], ip)
    np.testing.assert_array_equal(y.pairs[1], jp)


def test_unary_scalar_textbook_hyperdual():
    """K1 = K2 = P = 1 with a 0-d value: sin(a + e1 + e2)."""
    x = HyperDual(0.7, e1=1.0, e2=1.0)
    y = np.sin(x)
    assert y.shape == ()
    assert_close(y.value, np.sin(0.7))
    assert_close(y.e1, [np.cos(0.7)])
    assert_close(y.e2, [np.cos(0.7)])
    assert_close(y.e12, [-np.sin(0.7)])


def test_unary_composition_against_sympy():
    """A nested composition of many rules; second derivatives to rtol 1e-10."""
    a0 = np.array([0.3, 1.7])
    x = seeded(a0)
    p, q = x[0], x[1]
    y = np.sin(np.exp(p) * q) + np.log1p(q * q) / np.cosh(p) + np.arctan(np.sqrt(q) - p) ** 3
    t, u = sp.symbols("t u", real=True)
    expr = sp.sin(sp.exp(t) * u) + sp.log(1 + u * u) / sp.cosh(t) + sp.atan(sp.sqrt(u) - t) ** 3
    sub = {t: a0[0], u: a0[1]}
    v, g, h = derivs(y, 2)
    assert_close(v, float(expr.subs(sub).evalf(30)), rtol=1e-13)
    assert_close(g, [float(sp.diff(expr, s).subs(sub).evalf(30)) for s in (t, u)], rtol=1e-11)
    H = [[float(sp.diff(expr, s1, s2).subs(sub).evalf(30)) for s2 in (t, u)] for s1 in (t, u)]
    assert_close(h, H, rtol=1e-10)


# ---------------------------------------------------------------------------------------------
# NaN outside the domain
# ---------------------------------------------------------------------------------------------
NAN_CASES = {
    "log(-1)": (lambda x: np.log(x), -1.0, 2.0, 1 / 2.0, -1 / 4.0),
    "log2(-1)": (lambda x: np.log2(x), -1.0, 2.0, 1 / (2.0 * LN2), -1 / (4.0 * LN2)),
    "log10(-1)": (lambda x: np.log10(x), -1.0, 2.0, 1 / (2.0 * LN10), -1 / (4.0 * LN10)),
    "log1p(-2)": (lambda x: np.log1p(x), -2.0, 1.0, 0.5, -0.25),
    "sqrt(-1)": (lambda x: np.sqrt(x), -1.0, 4.0, 0.25, -0.25 / 8.0),
    "arcsin(2)": (lambda x: np.arcsin(x), 2.0, 0.0, 1.0, 0.0),
    "arccos(-2)": (lambda x: np.arccos(x), -2.0, 0.0, -1.0, 0.0),
    "arccosh(0.5)": (lambda x: np.arccosh(x), 0.5, 2.0, 3 ** -0.5, -2.0 * 3 ** -1.5),
    "arctanh(2)": (lambda x: np.arctanh(x), 2.0, 0.5, 4.0 / 3.0, 16.0 / 9.0),
    "(-1)**0.5": (lambda x: x ** 0.5, -1.0, 4.0, 0.25, -0.25 / 8.0),
    "(-2)**2.5": (lambda x: x ** 2.5, -2.0, 4.0, 2.5 * 8.0, 2.5 * 1.5 * 2.0),
    "(-2)**x": (lambda x: (-2.0) ** x, 0.5, 0.0, np.nan, np.nan),
}


@pytest.mark.parametrize("case", sorted(NAN_CASES))
def test_nan_domain_gives_nan_value_and_derivatives(case):
    f, bad, good, d1_good, d2_good = NAN_CASES[case]
    x = seeded([bad, good])
    with np.errstate(invalid="ignore", divide="ignore"):
        y = f(x)
    v, g, h = derivs(y, 2)
    # the bad element: value and every derivative lane are NaN (also seed directions not
    # touching it, since NaN * 0 is NaN)
    assert np.isnan(v[0])
    assert np.all(np.isnan(g[:, 0])), g
    assert np.all(np.isnan(y.e2[:, 0]))
    assert np.all(np.isnan(h[:, :, 0])), h
    if case == "(-2)**x":
        # (-2)**0 = 1 is a real value, but d/dx (-2)**x = (-2)**x log(-2) is not real
        assert v[1] == 1.0
        return
    # the good element is untouched by the NaN of its neighbour
    assert_close(v[1], f(np.array(good)))
    assert_close(g[:, 1], [0.0, d1_good])
    assert_close(h[:, :, 1], [[0.0, 0.0], [0.0, d2_good]])


def test_nan_derivatives_propagate_through_later_operations():
    x = seeded([3.0, 0.5])
    with np.errstate(invalid="ignore"):
        y = np.arcsin(x) * 2.0 + x ** 2
    assert np.isnan(y.value[0])
    assert np.all(np.isnan(y.e1[:, 0])) and np.all(np.isnan(y.e2[:, 0])) and np.all(np.isnan(y.e12[:, 0]))
    # the finite neighbour: d/dx (2 arcsin x + x^2) and d2
    v, g, h = derivs(y, 2)
    assert_close(v[1], 2 * np.arcsin(0.5) + 0.25)
    assert_close(g[:, 1], [0.0, 2 / np.sqrt(0.75) + 1.0])
    assert_close(h[:, :, 1], [[0.0, 0.0], [0.0, 2 * 0.5 / 0.75 ** 1.5 + 2.0]])


# ---------------------------------------------------------------------------------------------
# binary rules
# ---------------------------------------------------------------------------------------------
def _two_operands(A, B, shared=False):
    """a = A and b = B as HyperDuals in one context: seed k < n is a[k], seed n + k is b[k]."""
    n = A.size
    eye = np.eye(2 * n)
    e_a, e_b = eye[:, :n], eye[:, n:]
    a = HyperDual(A, e1=e_a, e2=e_a if shared else e_a.copy())
    b = HyperDual(B, e1=e_b, e2=e_b if shared else e_b.copy())
    return a, b


def _expected_two(name, A, B):
    """Gradient (2n, n) and Hessian (2n, 2n, n) of y_m = f(a_m, b_m) in (a, b)."""
    n = A.size
    f, fa, fb, faa, fab, fbb = binary_partials(name, A, B)
    g = np.zeros((2 * n, n))
    h = np.zeros((2 * n, 2 * n, n))
    m = np.arange(n)
    g[m, m], g[n + m, m] = fa, fb
    h[m, m, m], h[m, n + m, m], h[n + m, m, m], h[n + m, n + m, m] = faa, fab, fab, fbb
    return f, g, h


@pytest.mark.parametrize("shared", [False, True], ids=["e2-own", "e2-shared"])
@pytest.mark.parametrize("name", binary_names(both_seeded=True))
def test_binary_both_seeded(name, shared):
    """Both operands seeded on different variables, so the mixed partial f_ab appears."""
    pts = np.array(BINARY_REF[name][2], dtype=float)
    A, B = pts[:, 0], pts[:, 1]
    a, b = _two_operands(A, B, shared)
    y = BINARY_REF[name][0](a, b)
    f, g_ref, h_ref = _expected_two(name, A, B)
    v, g, h = derivs(y, 2 * A.size)
    assert_close(v, f)
    assert_close(g, g_ref)
    assert_close(h, h_ref)


@pytest.mark.parametrize("name", binary_names(both_seeded=False))
def test_binary_hyperdual_op_constant(name):
    pts = np.array(BINARY_REF[name][2], dtype=float)
    A, B = pts[:, 0], pts[:, 1]
    y = BINARY_REF[name][0](seeded(A), B)
    f, fa, _, faa, _, _ = binary_partials(name, A, B)
    v, g, h = derivs(y, A.size)
    assert_close(v, f)
    assert_close(g, diag_grad(fa))
    assert_close(h, diag_hess(faa))


@pytest.mark.parametrize("name", binary_names(both_seeded=False))
def test_binary_constant_op_hyperdual(name):
    pts = np.array(BINARY_REF[name][2], dtype=float)
    A, B = pts[:, 0], pts[:, 1]
    y = BINARY_REF[name][0](A, seeded(B))
    f, _, fb, _, _, fbb = binary_partials(name, A, B)
    v, g, h = derivs(y, B.size)
    assert_close(v, f)
    assert_close(g, diag_grad(fb))
    assert_close(h, diag_hess(fbb))


ORDINARY_AB = {
    "add": ([0.3, -1.2, 2.0], [1.1, 0.4, -0.7]),
    "subtract": ([0.3, -1.2, 2.0], [1.1, 0.4, -0.7]),
    "multiply": ([0.3, -1.2, 2.0], [1.1, 0.4, -0.7]),
    "true_divide": ([0.3, -1.2, 2.0], [1.1, 0.4, -0.7]),
    "power": ([0.3, 1.2, 2.0], [1.1, 0.4, -0.7]),
    "float_power": ([0.3, 1.2, 2.0], [1.1, 0.4, -0.7]),
    "arctan2": ([0.3, -1.2, 2.0], [1.1, 0.4, -0.7]),
    "hypot": ([0.3, -1.2, 2.0], [1.1, 0.4, -0.7]),
    "logaddexp": ([0.3, -1.2, 2.0], [1.1, 0.4, -0.7]),
    "logaddexp2": ([0.3, -1.2, 2.0], [1.1, 0.4, -0.7]),
}


@pytest.mark.parametrize("name", binary_names(both_seeded=True))
def test_binary_dense_seeds_with_curved_inputs(name):
    """a(t), b(t) are quadratics in t in R^4 with dense seed directions V (2x4), W (3x4).

    Input lanes: a.e1[k] = V[k].u_a, a.e2[k] = W[k].u_a, a.e12[p] = V[ip]^T Q_a W[jp].
    Reference: the Hessian of y(t) = f(a(t), b(t)) in t,
    H_y = f_a Q_a + f_b Q_b + J^T [[f_aa, f_ab], [f_ab, f_bb]] J with J = [u_a; u_b],
    contracted as V[ip]^T H_y W[jp].
    """
    rng = np.random.default_rng(RNG_SEED + 2)
    A, B = (np.array(v) for v in ORDINARY_AB[name])
    n, M = A.size, 4
    V, W = rng.normal(size=(2, M)), rng.normal(size=(3, M))
    ip, jp = np.repeat(np.arange(2), 3), np.tile(np.arange(3), 2)
    ua, ub = rng.normal(size=(n, M)), rng.normal(size=(n, M))
    Qa, Qb = rng.normal(size=(n, M, M)), rng.normal(size=(n, M, M))
    Qa, Qb = Qa + Qa.transpose(0, 2, 1), Qb + Qb.transpose(0, 2, 1)

    def lanes(u, Q):
        return (V @ u.T, W @ u.T, np.einsum("pi,mij,pj->pm", V[ip], Q, W[jp]))

    a = HyperDual(A, *lanes(ua, Qa))
    b = HyperDual(B, *lanes(ub, Qb))
    y = BINARY_REF[name][0](a, b)
    f, fa, fb, faa, fab, fbb = binary_partials(name, A, B)
    grad_t = fa[:, None] * ua + fb[:, None] * ub                      # (n, M)
    Hy = (fa[:, None, None] * Qa + fb[:, None, None] * Qb
          + faa[:, None, None] * np.einsum("mi,mj->mij", ua, ua)
          + fab[:, None, None] * (np.einsum("mi,mj->mij", ua, ub) + np.einsum("mi,mj->mij", ub, ua))
          + fbb[:, None, None] * np.einsum("mi,mj->mij", ub, ub))
    assert_close(y.value, f)
    assert_close(y.e1, V @ grad_t.T, atol=1e-12)
    assert_close(y.e2, W @ grad_t.T, atol=1e-12)
    assert_close(y.e12, np.einsum("pi,mij,pj->pm", V[ip], Hy, W[jp]), rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("order", ["hd-first", "const-first"])
@pytest.mark.parametrize("name", binary_names(both_seeded=False))
def test_binary_broadcast_hyperdual_against_constant_matrix(name, order):
    """HyperDual shape (3,) against a constant of shape (2, 3)."""
    A, B = (np.array(v) for v in ORDINARY_AB[name])
    C = np.vstack([B, B[::-1] * 0.9 + (0.5 if name in ("power", "float_power") else 0.0)])  # (2, 3)
    C = np.abs(C) if name in ("power", "float_power") and order == "const-first" else C
    x = seeded(A)
    uf = BINARY_REF[name][0]
    if order == "hd-first":
        y = uf(x, C)
        f, d1, _, d2, _, _ = binary_partials(name, A[None, :], C)
    else:
        y = uf(C, x)
        f, _, d1, _, _, d2 = binary_partials(name, C, A[None, :])
    assert y.shape == (2, 3)
    v, g, h = derivs(y, 3)
    eye = np.eye(3)
    assert_close(v, f)
    assert_close(g, eye[:, None, :] * d1[None], atol=1e-13)
    assert_close(h, eye[:, None, None, :] * eye[None, :, None, :] * d2[None, None], atol=1e-13)


@pytest.mark.parametrize("name", binary_names(both_seeded=True))
def test_binary_broadcast_two_hyperduals(name):
    """a: HyperDual (2, 1) on seeds 0-1, b: HyperDual (3,) on seeds 2-4; y[i, j] = f(a_i, b_j)."""
    A0, B0 = (np.array(v) for v in ORDINARY_AB[name])
    A = np.abs(A0[:2]).reshape(2, 1) + (0.2 if name in ("power", "float_power") else 0.0)
    B = B0
    eye = np.eye(5)
    a = HyperDual(A, e1=eye[:, :2].reshape(5, 2, 1), e2=eye[:, :2].reshape(5, 2, 1))
    b = HyperDual(B, e1=eye[:, 2:], e2=eye[:, 2:])
    y = BINARY_REF[name][0](a, b)
    assert y.shape == (2, 3)
    f, fa, fb, faa, fab, fbb = binary_partials(name, A, B[None, :])
    g = np.zeros((5, 2, 3))
    h = np.zeros((5, 5, 2, 3))
    for i in range(2):
        for j in range(3):
            ia, ib = i, 2 + j
            g[ia, i, j], g[ib, i, j] = fa[i, j], fb[i, j]
            h[ia, ia, i, j], h[ib, ib, i, j] = faa[i, j], fbb[i, j]
            h[ia, ib, i, j] = h[ib, ia, i, j] = fab[i, j]
    v, gg, hh = derivs(y, 5)
    assert_close(v, f)
    assert_close(gg, g)
    assert_close(hh, h)


def test_product_rule_both_seeded_closed_form():
    """x*y with x on component 0 and y on component 1 of a 2-vector: d2(xy)/dxdy = 1."""
    z = seeded([3.0, -2.0])
    y = z[0] * z[1] * z[1]          # x y^2
    v, g, h = derivs(y, 2)
    assert_close(v, 12.0)
    assert_close(g, [4.0, -12.0])
    assert_close(h, [[0.0, -4.0], [-4.0, 6.0]])


def test_quotient_rule_both_seeded_closed_form():
    z = seeded([3.0, -2.0])
    y = z[0] ** 2 / z[1]            # x^2 / y
    v, g, h = derivs(y, 2)
    assert_close(v, -4.5)
    assert_close(g, [2 * 3.0 / -2.0, -9.0 / 4.0])
    assert_close(h, [[2.0 / -2.0, -2 * 3.0 / 4.0], [-2 * 3.0 / 4.0, 2 * 9.0 / -8.0]])


def test_textbook_example_from_docstring():
    x = HyperDual(3.0, e1=1.0, e2=0.0)
    y = HyperDual(2.0, e1=0.0, e2=1.0)
    f = x ** 2 * y
    assert_close(f.value, 18.0)
    assert_close(f.e1, [12.0])
    assert_close(f.e2, [9.0])
    assert_close(f.e12, [6.0])


@settings(max_examples=60, deadline=None)
@given(a=st.floats(0.05, 20.0), b=st.floats(-5.0, 5.0))
def test_property_power_and_quotient_both_seeded(a, b):
    z = seeded([a, b])
    for name in ("power", "true_divide", "multiply", "hypot", "logaddexp"):
        if name == "true_divide" and abs(b) < 1e-3:
            continue
        y = BINARY_REF[name][0](z[0], z[1])
        f, fa, fb, faa, fab, fbb = binary_partials(name, a, b)
        v, g, h = derivs(y, 2)
        assert_close(v, f, rtol=1e-12, atol=1e-300)
        assert_close(g, [fa, fb], rtol=1e-11, atol=1e-300)
        assert_close(h, [[faa, fab], [fab, fbb]], rtol=1e-10, atol=1e-300)


# ---------------------------------------------------------------------------------------------
# power: all three forms and special exponents
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("c", [2.0, 1.0, 0.0, 3.0, 0.5, -1.0, -2.5, 1.5, 2, 3])
@pytest.mark.parametrize("form", ["operator", "np.power", "np.float_power"])
def test_power_hyperdual_to_scalar(c, form):
    integer = float(c).is_integer() and float(c) >= 0
    # non-integer or negative exponents: positive bases only (plus edges 1e-8, 1e8);
    # non-negative integer exponents: also negative bases and 0
    x0 = np.array([0.5, 2.0, -3.7, 0.0, -1e8, 1e-8]) if integer else np.array([0.5, 2.0, 3.7, 1e-8, 1e8])
    x = seeded(x0)
    y = {"operator": lambda: x ** c, "np.power": lambda: np.power(x, c),
         "np.float_power": lambda: np.float_power(x, c)}[form]()
    c = float(c)
    d1 = c * x0 ** (c - 1.0) if c != 0.0 else np.zeros_like(x0)
    d2 = c * (c - 1.0) * x0 ** (c - 2.0) if c not in (0.0, 1.0) else np.zeros_like(x0)
    v, g, h = derivs(y, x0.size)
    assert_close(v, np.float_power(x0, c))
    assert_close(g, diag_grad(d1))
    assert_close(h, diag_hess(d2))


def test_power_integer_exponent_negative_base_and_zero():
    x0 = np.array([-2.0, 0.0, -1e-8])
    y = seeded(x0) ** 3
    v, g, h = derivs(y, 3)
    assert_close(v, x0 ** 3)
    assert_close(g, diag_grad(3 * x0 ** 2))
    assert_close(h, diag_hess(6 * x0))


@pytest.mark.parametrize("base", [2.0, 0.5, math.e, 10.0, 1.0])
def test_power_scalar_to_hyperdual(base):
    x0 = np.array([0.0, 1.0, -1.0, 2.5, 1e-8, -30.0])
    y = base ** seeded(x0)
    L = math.log(base)
    v, g, h = derivs(y, x0.size)
    assert_close(v, base ** x0)
    assert_close(g, diag_grad(base ** x0 * L))
    assert_close(h, diag_hess(base ** x0 * L * L))
    y2 = np.power(np.full(x0.shape, base), seeded(x0))        # array base
    assert_close(y2.e12, y.e12)


def test_power_zero_base_to_hyperdual():
    """0**b = 0 for b > 0: every derivative with respect to b is 0."""
    x0 = np.array([0.5, 2.0, 3.0])
    y = 0.0 ** seeded(x0)
    v, g, h = derivs(y, 3)
    assert_close(v, np.zeros(3))
    assert np.all(g == 0.0) and np.all(h == 0.0)


def test_power_hyperdual_to_hyperdual_zero_base():
    """(a, b) = (0, 2): y = a^b; f_a = 0, f_b = 0, f_aa = 2, f_ab = 0, f_bb = 0."""
    z = seeded([0.0, 2.0])
    y = z[0] ** z[1]
    v, g, h = derivs(y, 2)
    assert_close(v, 0.0)
    assert_close(g, [0.0, 0.0])
    assert_close(h, [[2.0, 0.0], [0.0, 0.0]])


def test_power_hyperdual_to_array_exponent():
    x0 = np.array([0.5, 2.0, 3.0])
    c = np.array([2.0, -1.0, 0.5])
    y = seeded(x0) ** c
    v, g, h = derivs(y, 3)
    assert_close(v, x0 ** c)
    assert_close(g, diag_grad(c * x0 ** (c - 1)))
    assert_close(h, diag_hess(c * (c - 1) * x0 ** (c - 2)))


# ---------------------------------------------------------------------------------------------
# kinks, selections, clip
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [np.abs, np.absolute, np.fabs, abs])
def test_abs_at_zero_has_zero_derivatives(fn):
    x = HyperDual(np.array([0.0, -0.0, 2.0, -3.0]), e1=np.eye(4), e2=np.eye(4),
                  e12=np.ones((16, 4)))
    y = fn(x)
    assert_close(y.value, [0.0, 0.0, 2.0, 3.0])
    assert_close(y.e1, np.diag([0.0, 0.0, 1.0, -1.0]))
    # second derivative 0; the cross lane passes through times sign(a)
    assert_close(y.e12, np.ones((16, 4)) * np.array([0.0, 0.0, 1.0, -1.0]))


SELECT_CASES = {
    "maximum": (np.maximum, lambda a, b: a >= b),
    "minimum": (np.minimum, lambda a, b: a <= b),
    "fmax": (np.fmax, lambda a, b: a >= b),
    "fmin": (np.fmin, lambda a, b: a <= b),
}


@pytest.mark.parametrize("name", sorted(SELECT_CASES))
def test_selection_picks_lanes_by_value_ties_take_first(name):
    uf, take_first = SELECT_CASES[name]
    A = np.array([1.0, 2.0, -1.0, 5.0, 0.0, 1e8])
    B = np.array([2.0, 2.0, -3.0, 5.0, 0.0, 1e-8])   # ties at positions 1, 3, 4
    a, b = _two_operands(A, B)
    n = A.size
    for first, second, FA, FB in ((a, b, A, B), (b, a, B, A)):
        y = uf(first, second)
        v, g, h = derivs(y, 2 * n)
        assert_close(v, uf(FA, FB))
        sel = take_first(FA, FB)
        off_first = 0 if first is a else n
        off_second = n - off_first
        exp_g = np.zeros((2 * n, n))
        m = np.arange(n)
        exp_g[np.where(sel, off_first, off_second) + m, m] = 1.0
        assert_close(g, exp_g)
        assert np.all(h == 0.0)


@pytest.mark.parametrize("name", sorted(SELECT_CASES))
def test_selection_against_constant_and_with_curvature(name):
    uf, take_first = SELECT_CASES[name]
    x0 = np.array([0.5, -2.0, 1.0, 3.0])
    c = 1.0
    x = seeded(x0)
    y = uf(x ** 2, c)                    # lanes of x**2 where selected, zero where the constant wins
    sel = take_first(x0 ** 2, c)
    v, g, h = derivs(y, 4)
    assert_close(v, uf(x0 ** 2, c))
    assert_close(g, diag_grad(np.where(sel, 2 * x0, 0.0)))
    assert_close(h, diag_hess(np.where(sel, 2.0, 0.0)))
    y2 = uf(c, x ** 2)                   # constant first: ties take the constant (zero lanes)
    sel2 = take_first(np.full(4, c), x0 ** 2)
    assert_close(y2.e1, diag_grad(np.where(sel2, 0.0, 2 * x0)))


def test_selection_nan_propagation():
    """maximum/minimum propagate NaN (with its NaN lanes); fmax/fmin skip it."""
    with np.errstate(invalid="ignore"):
        bad = np.log(seeded([-1.0, 2.0]))          # element 0 is NaN with NaN lanes
    good = seeded([-1.0, 2.0]) * 0.0 + 7.0       # constant value 7, zero lanes, same context
    for uf in (np.maximum, np.minimum):
        for y in (uf(bad, good), uf(good, bad)):
            assert np.isnan(y.value[0]) and np.all(np.isnan(y.e1[:, 0])) and np.all(np.isnan(y.e12[:, 0]))
    for uf in (np.fmax, np.fmin):
        for y in (uf(bad, good), uf(good, bad)):
            assert y.value[0] == 7.0
            assert np.all(y.e1[:, 0] == 0.0) and np.all(y.e12[:, 0] == 0.0)


@pytest.mark.parametrize("how", ["np.clip", "method", "kw"])
def test_clip_inside_outside_and_at_bounds(how):
    x0 = np.array([-2.0, -1.0, 0.3, 1.0, 2.0])
    x = seeded(x0)
    if how == "np.clip":
        y = np.clip(x, -1.0, 1.0)
    elif how == "method":
        y = x.clip(-1.0, 1.0)
    else:
        y = np.clip(x, min=-1.0, max=1.0)
    v, g, h = derivs(y, 5)
    assert_close(v, np.clip(x0, -1.0, 1.0))
    # at a bound the derivative passes through (ties take the operand x)
    assert_close(g, diag_grad([0.0, 1.0, 1.0, 1.0, 0.0]))
    assert np.all(h == 0.0)


def test_clip_one_sided_and_curved():
    x0 = np.array([-2.0, 0.5, 3.0])
    y = np.clip(seeded(x0) ** 2, None, 4.0)
    v, g, h = derivs(y, 3)
    assert_close(v, [4.0, 0.25, 4.0])
    # x0 = -2: x^2 == 4 hits the bound exactly -> derivative passes through
    assert_close(g, diag_grad([-4.0, 1.0, 0.0]))
    assert_close(h, diag_hess([2.0, 2.0, 0.0]))


@pytest.mark.parametrize("name", ["sign", "floor", "ceil", "rint", "trunc"])
def test_piecewise_constant_zero_lanes_even_with_cross_input(name):
    uf = UNARY_REF[name][0]
    rng = np.random.default_rng(5)
    x0 = np.array([-1.5, 0.5, 2.7])
    x = HyperDual(x0, e1=rng.normal(size=(2, 3)), e2=rng.normal(size=(3, 3)), e12=rng.normal(size=(6, 3)))
    y = uf(x)
    assert isinstance(y, HyperDual)
    assert_close(y.value, uf(x0))
    for lane, rows in ((y.e1, 2), (y.e2, 3), (y.e12, 6)):
        assert lane.shape == (rows, 3)
        assert np.all(lane == 0.0)


# ---------------------------------------------------------------------------------------------
# value-only ufuncs
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [
    lambda x: x < 1.0, lambda x: x <= 1.0, lambda x: x > 1.0, lambda x: x >= 1.0,
    lambda x: x == 1.0, lambda x: x != 1.0, np.isfinite, np.isnan, np.isinf, np.signbit,
    lambda x: np.logical_and(x, True), lambda x: np.logical_not(x),
], ids=["lt", "le", "gt", "ge", "eq", "ne", "isfinite", "isnan", "isinf", "signbit", "and", "not"])
def test_value_only_ufuncs_return_plain_bool(fn):
    x0 = np.array([0.0, 1.0, -np.inf, np.nan, 2.0])
    with np.errstate(invalid="ignore"):
        got = fn(seeded(x0))
        want = fn(x0)
    assert type(got) is np.ndarray
    assert got.dtype == np.bool_
    np.testing.assert_array_equal(got, want)


def test_comparison_between_two_hyperduals():
    a, b = _two_operands(np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0]))
    got = a < b
    assert type(got) is np.ndarray
    np.testing.assert_array_equal(got, [True, False, False])


# ---------------------------------------------------------------------------------------------
# linear ufuncs lane by lane, operators and dtypes
# ---------------------------------------------------------------------------------------------
def test_operators_dispatch_to_the_rules():
    x0 = np.array([0.7, -1.3, 2.0])
    x = seeded(x0)
    cases = [
        (lambda z: 2.0 * z - z / 4.0 + 1.0, lambda a: 2 * a - a / 4 + 1, lambda a: 1.75 + 0 * a, lambda a: 0 * a),
        (lambda z: -z, lambda a: -a, lambda a: -1 + 0 * a, lambda a: 0 * a),
        (lambda z: +z, lambda a: a, lambda a: 1 + 0 * a, lambda a: 0 * a),
        (lambda z: 3.0 / z, lambda a: 3 / a, lambda a: -3 / a ** 2, lambda a: 6 / a ** 3),
        (lambda z: 1.0 - z * z, lambda a: 1 - a * a, lambda a: -2 * a, lambda a: -2 + 0 * a),
        (lambda z: abs(z), np.abs, np.sign, lambda a: 0 * a),
        (lambda z: 3.0 ** z, lambda a: 3.0 ** a, lambda a: 3.0 ** a * math.log(3), lambda a: 3.0 ** a * math.log(3) ** 2),
        (lambda z: np.array(2) ** z, lambda a: 2.0 ** a, lambda a: 2.0 ** a * LN2, lambda a: 2.0 ** a * LN2 ** 2),
        (lambda z: z ** 2 + np.float32(1.5) * z, lambda a: a ** 2 + 1.5 * a, lambda a: 2 * a + 1.5, lambda a: 2 + 0 * a),
        (lambda z: z * True + 3, lambda a: a + 3, lambda a: 1 + 0 * a, lambda a: 0 * a),
        (lambda z: [1, 2, 3] - z, lambda a: np.array([1, 2, 3]) - a, lambda a: -1 + 0 * a, lambda a: 0 * a),
    ]
    for fz, f, d1, d2 in cases:
        v, g, h = derivs(fz(x), 3)
        assert_close(v, f(x0))
        assert_close(g, diag_grad(d1(x0)))
        assert_close(h, diag_hess(d2(x0)))


def test_add_subtract_act_lane_by_lane_with_dense_lanes():
    rng = np.random.default_rng(11)
    shape = (2, 3)
    V1, W1, D1 = rng.normal(size=(2,) + shape), rng.normal(size=(3,) + shape), rng.normal(size=(6,) + shape)
    V2, W2, D2 = rng.normal(size=(2,) + shape), rng.normal(size=(3,) + shape), rng.normal(size=(6,) + shape)
    a = HyperDual(rng.normal(size=shape), V1, W1, D1)
    b = HyperDual(rng.normal(size=shape), V2, W2, D2)
    for y, s in ((a + b, 1.0), (a - b, -1.0)):
        assert_close(y.value, a.value + s * b.value)
        assert_close(y.e1, V1 + s * V2)
        assert_close(y.e2, W1 + s * W2)
        assert_close(y.e12, D1 + s * D2)


def test_ufunc_reduce_and_accumulate_methods_default_axis():
    x0 = np.array([[1.0, 2.0, 3.0], [4.0, -5.0, 6.0]])
    E = np.eye(6).reshape(6, 2, 3)
    x = seeded(x0)
    y = np.add.reduce(x)
    v, g, h = derivs(y, 6)
    assert_close(v, x0.sum(0))
    assert_close(g, E.sum(1))
    assert np.all(h == 0.0)
    y = np.multiply.reduce(x)
    v, g, h = derivs(y, 6)
    assert_close(v, x0.prod(0))
    assert_close(g, E[:, 0] * x0[1] + E[:, 1] * x0[0])
    assert_close(h, E[:, None, 0] * E[None, :, 1] + E[:, None, 1] * E[None, :, 0])
    y = np.maximum.reduce(x)
    assert_close(y.value, x0.max(0))
    assert_close(y.e1, E[:, [1, 0, 1], [0, 1, 2]])
    y = np.minimum.reduce(x)
    assert_close(y.e1, E[:, [0, 1, 0], [0, 1, 2]])
    y = np.add.accumulate(x)
    assert_close(y.value, np.cumsum(x0, axis=0))
    assert_close(y.e1, np.cumsum(E, axis=1))


def test_ufunc_reduce_with_axis():
    x0 = np.array([[1.0, 2.0, 3.0], [4.0, -5.0, 6.0]])
    x = seeded(x0)
    y = np.add.reduce(x, axis=1)
    assert_close(y.value, x0.sum(1))
    assert_close(y.e1, np.eye(6).reshape(6, 2, 3).sum(2))


def test_ufunc_out_argument():
    x = seeded([0.5, 1.5])
    out = seeded([0.0, 0.0]) * 0.0
    r = np.sin(x, out=out)
    assert r is out
    assert_close(out.value, np.sin([0.5, 1.5]))
    assert_close(out.e1, np.diag(np.cos([0.5, 1.5])))
    with pytest.raises(TypeError, match=r"\.value"):
        np.sin(x, out=np.zeros(2))


@pytest.mark.parametrize("value", [np.array([1, 2, 3]), np.array([True, False, True]),
                                   np.array([1.5, 2.5, 3.5], dtype=np.float32), [1, 2, 3], 4, 2.5])
def test_inputs_are_converted_to_float64(value):
    x = HyperDual(value, e1=np.ones(np.shape(value)))
    assert x.dtype == np.float64 and x.value.dtype == np.float64 and x.e1.dtype == np.float64
    np.testing.assert_array_equal(x.value, np.asarray(value, dtype=np.float64))
    y = np.sin(x)
    assert y.value.dtype == np.float64


@pytest.mark.parametrize("value", [np.array([1 + 2j]), 1j, np.array(["a"]), np.array([object()], dtype=object)],
                         ids=["complex-array", "complex", "str", "object"])
def test_non_real_inputs_raise_type_error(value):
    with pytest.raises(TypeError):
        HyperDual(value)
    with pytest.raises(TypeError):
        HyperDual(np.zeros(np.shape(value)), e1=value)
    x = seeded(np.zeros(np.shape(value)) + 1.0)
    with pytest.raises(TypeError):
        x * value


def test_unsupported_ufunc_raises_naming_it():
    x = seeded([1.0, 2.0])
    with pytest.raises(TypeError, match="fmod"):
        np.fmod(x, 2.0)
    with pytest.raises(TypeError, match="modf"):
        np.modf(x)


# ---------------------------------------------------------------------------------------------
# large operations (the library may switch lane kernels by problem size; the rules must not)
# ---------------------------------------------------------------------------------------------
N_LARGE = 20000        # with K1 = K2 = 4 and P = 16 an operation touches 480 000 lane elements


def _large_seeds(rng, shape):
    V = rng.normal(size=(4,) + shape)
    W = rng.normal(size=(4,) + shape)
    D = rng.normal(size=(16,) + shape)
    return V, W, D, np.repeat(np.arange(4), 4), np.tile(np.arange(4), 4)


@pytest.mark.parametrize("name", sorted(UNARY_REF))
def test_unary_large(name):
    f, d1, d2, _, pts = UNARY_REF[name]
    rng = np.random.default_rng(RNG_SEED + 3)
    x0 = np.resize(np.array(pts, dtype=float), N_LARGE) * (1.0 + 0.01 * rng.random(N_LARGE))
    V, W, D, ip, jp = _large_seeds(rng, x0.shape)
    y = f(HyperDual(x0, e1=V, e2=W, e12=D))
    g1, g2 = bcast(d1(x0), x0.shape), bcast(d2(x0), x0.shape)
    assert_close(y.value, f(x0))
    assert_close(y.e1, g1 * V, atol=1e-12)
    assert_close(y.e2, g1 * W, atol=1e-12)
    assert_close(y.e12, g1 * D + g2 * V[ip] * W[jp], atol=1e-12)


def _large_operands(name, rng):
    """N_LARGE-element operands near the ordinary points of ``name``, slightly jittered."""
    A0, B0 = (np.array(v) for v in ORDINARY_AB[name])
    return tuple(np.resize(v, N_LARGE) * (1.0 + 0.01 * rng.random(N_LARGE)) for v in (A0, B0))


@pytest.mark.parametrize("name", binary_names(both_seeded=True))
def test_binary_large_both_seeded(name):
    """Both operands carry dense lanes: the full binary chain rule with every term present."""
    rng = np.random.default_rng(RNG_SEED + 4)
    A, B = _large_operands(name, rng)
    Va, Wa, Da, ip, jp = _large_seeds(rng, A.shape)
    Vb, Wb, Db, _, _ = _large_seeds(rng, B.shape)
    y = BINARY_REF[name][0](HyperDual(A, Va, Wa, Da), HyperDual(B, Vb, Wb, Db))
    f, fa, fb, faa, fab, fbb = binary_partials(name, A, B)
    assert_close(y.value, f)
    assert_close(y.e1, fa * Va + fb * Vb, atol=1e-12)
    assert_close(y.e2, fa * Wa + fb * Wb, atol=1e-12)
    expected = (fa * Da + fb * Db + faa * Va[ip] * Wa[jp] + fab * (Va[ip] * Wb[jp] + Vb[ip] * Wa[jp])
                + fbb * Vb[ip] * Wb[jp])
    assert_close(y.e12, expected, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("name", binary_names(both_seeded=False))
def test_binary_large_one_side_seeded(name):
    rng = np.random.default_rng(RNG_SEED + 5)
    A, B = _large_operands(name, rng)
    V, W, D, ip, jp = _large_seeds(rng, A.shape)
    uf = BINARY_REF[name][0]
    f, fa, fb, faa, fab, fbb = binary_partials(name, A, B)
    y = uf(HyperDual(A, V, W, D), B)
    assert_close(y.value, f)
    assert_close(y.e1, fa * V, atol=1e-12)
    assert_close(y.e12, fa * D + faa * V[ip] * W[jp], atol=1e-12)
    y = uf(A, HyperDual(B, V, W, D))
    assert_close(y.value, f)
    assert_close(y.e2, fb * W, atol=1e-12)
    assert_close(y.e12, fb * D + fbb * V[ip] * W[jp], atol=1e-12)


def test_large_nan_domain():
    rng = np.random.default_rng(RNG_SEED + 6)
    x0 = rng.uniform(-1.0, 3.0, N_LARGE)
    V, W, D, ip, jp = _large_seeds(rng, x0.shape)
    with np.errstate(invalid="ignore"):
        y = np.log(HyperDual(x0, V, W, D))
    bad = x0 <= 0
    assert bad.any() and (~bad).any()
    assert np.all(np.isnan(y.value[bad]))
    for lane in (y.e1, y.e2, y.e12):
        assert np.all(np.isnan(lane[:, bad]))
        assert not np.any(np.isnan(lane[:, ~bad]))
    good = ~bad
    assert_close(y.e12[:, good], (D / x0 - V[ip] * W[jp] / x0 ** 2)[:, good], atol=1e-12)


# ---- the fast paths' specialisations of table entries, bit for bit -----------------------------
_EDGES = np.array([0.0, -0.0, 1e-300, -1e-300, 5e-324, 0.5, -0.5, 1.0, -1.0, 2.0, -3.5, 1e10, -1e10,
                   1e300, np.inf, -np.inf, np.nan])


@pytest.mark.parametrize("c", [-2.5, -2.0, -1.0, -0.5, 0.5, 1.5, 2.0, 3.0, 0.1, 7.0, 1e-3])
def test_constant_power_is_the_table_entry(c):
    """``rules.constant_power`` (what ``x ** c`` runs) against ``BINARY[np.power].dx``."""
    from hyperdual.ops.rules import BINARY, constant_power
    with np.errstate(all="ignore"):
        y = np.power(_EDGES, c)
        got = constant_power(_EDGES, c)
        want = BINARY[np.power].dx(_EDGES, c, y)
    for g, w in zip(got, want):
        g, w = np.broadcast_to(g, _EDGES.shape), np.broadcast_to(w, _EDGES.shape)
        np.testing.assert_array_equal(np.isnan(g), np.isnan(w))
        ok = ~np.isnan(w)
        np.testing.assert_array_equal(g[ok].view(np.int64), w[ok].view(np.int64))


@pytest.mark.parametrize("c", [-2.5, -1.0, 0.5, 1.5, 2.0, 3.0])
def test_power_by_a_constant_matches_the_table_on_every_path(c):
    """``x ** c`` (the packed, windowed and general fast paths) against ``np.power`` through
    the table's binary rule with the exponent as a (constant) second operand."""
    import hyperdual
    x = np.array([0.5, 1.5, 2.0, 3.0, 0.25, 4.0])
    H = hyperdual.hessian(lambda v: np.sum(v ** c), x)[:]
    want = np.diag(c * (c - 1.0) * x ** (c - 2.0))
    np.testing.assert_allclose(H, want, rtol=1e-15)
    Hb = hyperdual.hessian(lambda v: np.sum(np.power(v, np.full(6, c))), x)[:]
    np.testing.assert_array_equal(H, Hb)


def _edge_dual(seed, packed_ok=False):
    """A HyperDual of 9 elements whose value holds 0, -0, huge and tiny entries and whose
    lanes hold 0, ±inf, huge and tiny ones (K1 = K2 = 2, three pairs); general (not flat)
    unless ``packed_ok``.  (No -0.0 lane entries: seeds are 0 and 1, and the kernels'
    zero-keeping multiply maps a -0.0 lane entry to +0.0 where scaling keeps its sign;
    only an underflow makes one.)"""
    from hyperdual.execute.context import SeedContext
    rng = np.random.default_rng(seed)
    pool = np.array([0.0, 0.0, 1.5, -2.0, 1e300, 1e-300, np.inf, -np.inf, 0.75])
    value = rng.permutation(np.array([0.0, -0.0, 2.0, -1.5, 1e200, 1e-200, 3.0, -0.5, 0.25]))
    lanes = [rng.choice(pool, (k, 9)) for k in (2, 2, 3)]
    ctx = SeedContext(np.array([0, 1, 1]), np.array([0, 0, 1]), 2, 2)
    x = HyperDual._new(value, *lanes, ctx)
    if packed_ok:
        x._flat = True
    return x


def _lifted(y, x, g1, g2):
    from hyperdual.execute import chain
    return chain.lift(np.asarray(y), x, g1, g2)


def _bits_equal(a, b):
    for la, lb in ((a.value, b.value), (a.e1, b.e1), (a.e2, b.e2), (a.e12, b.e12)):
        la, lb = np.asarray(la), np.asarray(lb)
        np.testing.assert_array_equal(np.isnan(la), np.isnan(lb))
        ok = ~np.isnan(lb)
        np.testing.assert_array_equal(la[ok].view(np.int64), lb[ok].view(np.int64))


@pytest.mark.parametrize("c", [2.5, -3.0, 0.0, -0.0, np.inf, -np.inf, 1e-310])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_constant_operand_paths_are_the_table_entries(c, seed):
    """``x * c``, ``c * x``, ``x / c``, ``c - x``, ``x + c`` take their own routes (scaling,
    shifting); each gives the bits of its table entry lifted by the one chain rule.  A zero
    factor (``x * 0``, ``x / inf``: a function identically 0) leaves no derivative at all,
    where the chain rule's ``0 · inf`` of a general factor would be NaN."""
    from hyperdual.ops.rules import BINARY
    x = _edge_dual(seed)
    xv = x.value
    with np.errstate(all="ignore"):
        if c == 0:
            for q in (x * c, c * x):
                assert q.e1 is not None and not q.e1.any() and not q.e12.any()
        cases = [] if c == 0 else [(x * c, xv * c, BINARY[np.multiply].dx(xv, c, xv * c)),
                                   (c * x, c * xv, BINARY[np.multiply].dy(c, xv, c * xv))]
        cases += [(x + c, xv + c, BINARY[np.add].dx(xv, c, xv + c)),
                 (c - x, c - xv, BINARY[np.subtract].dy(c, xv, c - xv))]
        if np.isfinite(c) and c != 0:
            cases.append((x / c, xv / c, BINARY[np.true_divide].dx(xv, c, xv / c)))
        for got, y, (g1, g2) in cases:
            _bits_equal(got, _lifted(y, x, g1, g2))
        if not np.isfinite(c):  # x / ±inf is 0 for every finite x: no derivative at all (the
            q = x / c           # kernels' g = 0 times an infinite lane entry would be NaN)
            assert q.e1 is not None and not q.e1.any() and not q.e12.any()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_own_routes_of_two_operands_and_negation_are_the_table_entries(seed):
    """``x ± y`` (lane sums), ``x * y`` (the product kernel) and ``-x`` against the table's
    ``add``/``subtract``/``multiply`` partials through the binary kernel, and ``negative``'s."""
    from hyperdual.execute import chain
    from hyperdual.ops.rules import BINARY, UNARY
    x, z = _edge_dual(seed), _edge_dual(seed + 10)
    with np.errstate(all="ignore"):
        for ufunc, got in ((np.add, x + z), (np.subtract, x - z), (np.multiply, x * z)):
            _bits_equal(got, chain._binary_both(ufunc, BINARY[ufunc], x, z))
        _bits_equal(-x, _lifted(-x.value, x, *UNARY[np.negative](x.value, -x.value)))
