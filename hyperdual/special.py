"""Derivative rules for ``scipy.special``: one line per function, registered on first use.

``import hyperdual`` does not import scipy.  The first time a HyperDual meets
a ``scipy.special`` ufunc without a rule, :func:`hyperdual.ops.rules.provide`
imports this module, which registers every entry of :data:`UNARY` and
:data:`BINARY` below with :func:`hyperdual.register_ufunc`; the call then
goes on as for a NumPy ufunc.  The entries read as the table of
:mod:`hyperdual.ops.rules` does: ``(a, y) -> (g', g'')`` of ``y = g(a)``, and
partials of ``y = g(a, b)``.

Where a closed form cancels catastrophically, the rule switches to a series:
``erfcx`` for ``a > 10`` and ``log_ndtr`` for ``a < -10`` (asymptotic
expansions, 24 terms), ``i0e``/``i1e`` for ``|a| > 30`` (their asymptotic
series, differentiated term by term), ``i1``/``i1e`` near 0 (the power series).  At the
kink of ``e^{-|a|}`` in ``i0e`` and ``i1e`` (``a = 0``) each derivative is
the mean of its one-sided limits, as ``absolute`` takes ``sign(0) = 0``.
``xlogy(x, y)`` and ``xlog1py(x, y)`` are 0 wherever ``x == 0``, so their
derivatives in ``y`` are 0 there (even at ``y = 0``); ``rel_entr(x, y)`` is
0 on ``x == 0``, so its derivatives in ``y`` are too.

:func:`logsumexp`, :func:`softmax` and :func:`log_softmax` take the
arguments of scipy's functions.  scipy's own versions convert their input
with ``numpy.asanyarray``, which no array protocol can intercept, so a
function differentiated by hyperdual calls these instead (the error raised
inside scipy's says so).
"""
from __future__ import annotations

import numpy as np
import scipy.special as sc

from .execute.array import HyperDual
from .ops import rules
from .ops.rules import BinaryRule, register_ufunc

__all__ = ["UNARY", "BINARY", "logsumexp", "softmax", "log_softmax"]

_C_ERF = 2.0 / np.sqrt(np.pi)            # d/da erf(a) = _C_ERF · exp(-a²)
_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)
_TERMS = 24                               # of the asymptotic series


def _quiet(fn):
    """``fn`` with NumPy's floating-point warnings off (the rules meet 0, ±inf, NaN on purpose)."""
    def wrapped(*args):
        with np.errstate(all="ignore"):
            return fn(*args)
    wrapped.__doc__ = fn.__doc__
    return wrapped


def _asymptotic(a):
    """The terms ``t_n = (-1)^n (2n-1)!! / (2a²)^n``, ``n = 1 .. _TERMS``, of
    ``√π a e^{a²} erfc(a) = Σ_n t_n`` (``t_0 = 1``), for large ``a``."""
    t, out = np.ones_like(a), []
    for n in range(1, _TERMS + 1):
        t = t * (-(2 * n - 1) / (2.0 * a * a))
        out.append(t)
    return out


def _sum(terms, weighted=False):
    """``Σ_n t_n`` (``Σ_n n t_n`` when ``weighted``), smallest terms first."""
    total = np.zeros_like(terms[0])
    for n, t in reversed(list(enumerate(terms, start=1))):
        total = total + (n * t if weighted else t)
    return total


def _where_large(cond, a, series, direct):
    """``series(a)`` where ``cond``, ``direct(a)`` elsewhere (each on its own elements)."""
    a = np.asarray(a, dtype=np.float64)
    out = np.empty(np.broadcast(a, cond).shape)
    cond = np.broadcast_to(cond, out.shape)
    a = np.broadcast_to(a, out.shape)
    if cond.any():
        out[cond] = series(a[cond])
    if not cond.all():
        out[~cond] = direct(a[~cond])
    return out


@_quiet
def _erfcx(a, y):
    """``y = e^{a²} erfc(a)``: ``y' = 2ay - 2/√π``, ``y'' = 2y + 2ay'``; for ``a > 10``,
    ``y' = (2/√π) Σ_{n≥1} t_n`` and ``y'' = -(4/(√π a)) Σ_{n≥1} n t_n`` (no cancellation)."""
    big = a > 10.0
    d1 = _where_large(big, a, lambda s: _C_ERF * _sum(_asymptotic(s)),
                      lambda s: 2.0 * s * sc.erfcx(s) - _C_ERF)
    d2 = _where_large(big, a, lambda s: -2.0 * _C_ERF / s * _sum(_asymptotic(s), True),
                      lambda s: 2.0 * sc.erfcx(s) + 2.0 * s * (2.0 * s * sc.erfcx(s) - _C_ERF))
    return d1, d2


@_quiet
def _log_ndtr(a, y):
    """``y = log Φ(a)``: ``y' = φ(a)/Φ(a)``, ``y'' = -y'(a + y')``; for ``a < -10`` (``x = -a``),
    ``y' = x/Q`` and ``a + y' = x(1 - Q)/Q`` with ``Q = Σ_n t_n(x/√2)``, the Mills-ratio series.
    At ``-inf`` the limits ``y' = inf``, ``y'' = -1``."""
    small = a < -10.0
    d1 = _where_large(small, a, lambda s: -s / (1.0 + _sum(_asymptotic(-s / np.sqrt(2.0)))),
                      lambda s: np.exp(-0.5 * s * s - _LOG_SQRT_2PI - sc.log_ndtr(s)))

    def shifted(s):  # a + y' by the series
        x = -s
        terms = _asymptotic(x / np.sqrt(2.0))
        return -x * _sum(terms) / (1.0 + _sum(terms))
    d2 = -_keep0(d1, _where_large(small, a, shifted,
                                  lambda s: s + np.exp(-0.5 * s * s - _LOG_SQRT_2PI - sc.log_ndtr(s))))
    return np.where(a == -np.inf, np.inf, d1), np.where(a == -np.inf, -1.0, d2)


def _curvature_i1(a, scale):
    """``2 I1(a)/a² - I0(a)/a`` (times ``e^{-|a|}`` when ``scale``): direct for ``|a| ≥ 0.5``,
    else ``-Σ_{k≥1} k a^{2k-1} / (4^k k!² (k+1))``, the series without the cancelling ``1/a``."""
    i0, i1 = (sc.i0e, sc.i1e) if scale else (sc.i0, sc.i1)

    def series(s):
        total, coef = np.zeros_like(s), 1.0
        for k in range(1, 12):
            coef = coef / (4.0 * k * k)  # 1 / (4^k k!²)
            total = total - k / (k + 1.0) * coef * s ** (2 * k - 1)
        return total * (np.exp(-np.abs(s)) if scale else 1.0)
    return _where_large(np.abs(a) < 0.5, a, series, lambda s: 2.0 * i1(s) / (s * s) - i0(s) / s)


def _i1_over_a(a, scale):
    """``I1(a)/a`` (times ``e^{-|a|}`` when ``scale``), ``1/2`` at ``a = 0``."""
    i1 = sc.i1e if scale else sc.i1
    return np.where(a == 0, 0.5, i1(a) / np.where(a == 0, 1.0, a))


@_quiet
def _i0(a, y):
    """``y = I0(a)``: ``y' = I1``, ``y'' = I0 - I1/a`` (``+inf`` where ``I0`` overflows)."""
    return sc.i1(a), np.where(np.isinf(y), np.inf, y - _i1_over_a(a, False))


def _scaled_bessel_far(nu, order, a):
    """The ``order``-th derivative of ``e^{-a} I_nu(a)`` for ``a > 0`` large, from its
    asymptotic series ``(2π)^{-1/2} Σ_k (-1)^k u_k a^{-(k+1/2)}``,
    ``u_k = Π_{m=1..k} (4ν² - (2m-1)²) / (k! 8^k)``, differentiated term by term (the
    closed forms cancel there: ``i1e - i0e`` is ``O(a^{-3/2})`` of ``O(a^{-1/2})`` terms)."""
    total, u = np.zeros_like(a), 1.0
    for k in range(_TERMS):
        if k:
            u = u * (4.0 * nu * nu - (2 * k - 1) ** 2) / (8.0 * k)
        power = -(k + 0.5)
        coef = (-1) ** k * u
        for _ in range(order):  # d/da a^p = p a^(p-1)
            coef, power = coef * power, power - 1.0
        total = total + coef * a ** power
    return total / np.sqrt(2.0 * np.pi)


def _far(nu, a, d1, d2):
    """``(d1, d2)`` of ``i0e`` (``nu = 0``, even) or ``i1e`` (odd), replaced by the series
    for ``|a| > 30``."""
    far = np.abs(a) > 30.0
    if not np.any(far):
        return d1, d2
    s, m = np.sign(a), np.abs(a)
    even1, even2 = (s, 1.0) if nu == 0 else (1.0, s)  # the parity of each derivative
    return (np.where(far, even1 * _scaled_bessel_far(nu, 1, m), d1),
            np.where(far, even2 * _scaled_bessel_far(nu, 2, m), d2))


@_quiet
def _i0e(a, y):
    """``y = e^{-|a|} I0(a)``, ``s = sign(a)``: ``y' = i1e - s y``, ``y'' = 2y - i1e/a - 2s i1e``
    (the one-sided second derivatives agree at 0; the first ones average to 0)."""
    s, i1e = np.sign(a), sc.i1e(a)
    return _far(0, a, i1e - s * y, 2.0 * y - _i1_over_a(a, True) - 2.0 * s * i1e)


@_quiet
def _i1e(a, y):
    """``y = e^{-|a|} I1(a)``: ``y' = i0e - i1e/a - s y``,
    ``y'' = 2y + (2 i1e/a² - i0e/a) - 2s (i0e - i1e/a)`` (0 at the kink, the mean of ∓1)."""
    s, i0e, ia = np.sign(a), sc.i0e(a), _i1_over_a(a, True)
    return _far(1, a, i0e - ia - s * y, 2.0 * y + _curvature_i1(a, True) - 2.0 * s * (i0e - ia))


@_quiet
def _i1(a, y):
    """``y = I1(a)``: ``y' = I0 - I1/a``, ``y'' = I1 + 2 I1/a² - I0/a`` (``+inf``, ``y`` where
    ``I1`` overflows)."""
    over = np.isinf(y)  # (and ±inf: the limits +inf and ±inf)
    return (np.where(over, np.inf, sc.i0(a) - _i1_over_a(a, False)),
            np.where(over, y, y + _curvature_i1(a, False)))


def _keep0(g, f):
    """``g · f``, exactly 0 where ``g == 0`` (a vanishing factor wins over an infinite one,
    as the limits at ``±inf`` have it)."""
    return np.where(g == 0, 0.0, g * f)


def _zero_where(x, value):
    """``value`` with 0 wherever ``x == 0`` (the ``x · log`` functions are 0 there)."""
    return np.where(x == 0, 0.0, value)


q = _quiet
# ---- unary: g -> (a, y) -> (g', g'') -----------------------------------------------------
UNARY = {
    sc.expit:     q(lambda a, y: ((d := y * sc.expit(-a)), -d * np.tanh(0.5 * a))),
    sc.log_expit: q(lambda a, y: (sc.expit(-a), -sc.expit(a) * sc.expit(-a))),
    sc.logit:     q(lambda a, y: ((d := 1.0 / (a * (1.0 - a))), (2.0 * a - 1.0) * d * d)),
    sc.erf:       q(lambda a, y: ((g := _C_ERF * np.exp(-a * a)), _keep0(g, -2.0 * a))),
    sc.erfc:      q(lambda a, y: (-(g := _C_ERF * np.exp(-a * a)), _keep0(g, 2.0 * a))),
    sc.erfcx:     _erfcx,
    sc.erfinv:    q(lambda a, y: ((d := 0.5 * np.sqrt(np.pi) * np.exp(y * y)), 2.0 * y * d * d)),
    sc.ndtr:      q(lambda a, y: ((g := np.exp(-0.5 * a * a - _LOG_SQRT_2PI)), _keep0(g, -a))),
    sc.log_ndtr:  _log_ndtr,
    sc.ndtri:     q(lambda a, y: ((d := np.exp(0.5 * y * y + _LOG_SQRT_2PI)), y * d * d)),
    sc.gamma:     q(lambda a, y: (y * (p := sc.digamma(a)), y * (p * p + sc.polygamma(1, a)))),
    sc.gammaln:   q(lambda a, y: (sc.digamma(a), sc.polygamma(1, a))),
    sc.digamma:   q(lambda a, y: (sc.polygamma(1, a), sc.polygamma(2, a))),
    sc.entr:      q(lambda a, y: (-(np.log(a) + 1.0), -1.0 / a)),
    sc.i0:        _i0,
    sc.i1:        _i1,
    sc.i0e:       _i0e,
    sc.i1e:       _i1e,
}

# ---- binary: g -> partials in a, b, y -----------------------------------------------------
BINARY = {
    sc.xlogy:    BinaryRule(dx=q(lambda a, b, y: (np.log(b), None)),
                            dy=q(lambda a, b, y: (_zero_where(a, a / b), _zero_where(a, -a / (b * b)))),
                            dxy=q(lambda a, b, y: 1.0 / b)),
    sc.xlog1py:  BinaryRule(dx=q(lambda a, b, y: (np.log1p(b), None)),
                            dy=q(lambda a, b, y: (_zero_where(a, a / (1.0 + b)),
                                                  _zero_where(a, -a / ((1.0 + b) * (1.0 + b))))),
                            dxy=q(lambda a, b, y: 1.0 / (1.0 + b))),
    sc.rel_entr: BinaryRule(dx=q(lambda a, b, y: (np.log(a / b) + 1.0, 1.0 / a)),
                            dy=q(lambda a, b, y: (_zero_where(a, -a / b), _zero_where(a, a / (b * b)))),
                            dxy=q(lambda a, b, y: -1.0 / b)),
}
del q

for _ufunc, _rule in (*UNARY.items(), *BINARY.items()):
    if _ufunc not in rules.UNARY and _ufunc not in rules.BINARY:  # (a user's own rule stays)
        register_ufunc(_ufunc, _rule)


# ---- scipy.special's reductions, from supported NumPy functions ---------------------------
def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False):
    """``log(sum(b * exp(a), axis))``, as ``scipy.special.logsumexp``, for HyperDual arrays.

    Shifted by the (constant) maximum of ``a`` along ``axis``, so large
    entries do not overflow; the shift cancels exactly in the derivatives.

    Examples
    --------
    >>> import numpy as np, hyperdual
    >>> from hyperdual.special import logsumexp
    >>> H = hyperdual.hessian(lambda x: logsumexp(x), np.zeros(2))
    >>> H[:]
    array([[ 0.25, -0.25],
           [-0.25,  0.25]])
    """
    value = a.value if isinstance(a, HyperDual) else np.asarray(a, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        shift = np.amax(value, axis=axis, keepdims=True) if value.size else np.zeros((1,) * value.ndim)
    shift = np.where(np.isfinite(shift), shift, 0.0)  # (a constant: it cancels in the derivatives)
    e = np.exp(a - shift)
    s = np.sum(e if b is None else b * e, axis=axis, keepdims=True)
    sign = None
    if return_sign:
        sign = np.sign(s.value if isinstance(s, HyperDual) else s)
        s = s * sign
    with np.errstate(divide="ignore"):
        out = np.log(s) + shift
    if not keepdims:  # (every reduced axis has length 1 here; None: all of them)
        out = np.squeeze(out, axis=axis)
        sign = None if sign is None else np.squeeze(sign, axis=axis)
    return (out, sign) if return_sign else out


def softmax(x, axis=None):
    """``exp(x) / sum(exp(x), axis)``, as ``scipy.special.softmax``, for HyperDual arrays.

    Examples
    --------
    >>> import numpy as np, hyperdual
    >>> from hyperdual.special import softmax
    >>> hyperdual.gradient(lambda x: softmax(x)[0], np.zeros(2))
    array([ 0.25, -0.25])
    """
    return np.exp(log_softmax(x, axis=axis))


def log_softmax(x, axis=None):
    """``x - logsumexp(x, axis)``, as ``scipy.special.log_softmax``, for HyperDual arrays."""
    return x - logsumexp(x, axis=axis, keepdims=True)
