"""Lean paths: the common operations of a Hessian pass on small 1-D arrays, checked once.

A pass of a small Hessian runs a few dozen NumPy operations on arrays of a
few elements, and then the Python around each operation — which case of the
chain rule applies, whether lanes are windowed, recorded, in columns or
broadcast — costs more than the arithmetic.  A HyperDual whose ``_flat`` is
:data:`LEAN` has been checked once, when it was made, so that none of that
needs asking again:

* its value is a C-contiguous ``(n,)`` array and its lanes C-contiguous
  ``(K1, n)``, ``(K2, n)``, ``(P, n)`` arrays; both first-order lanes are
  present (``e2`` is often ``e1`` itself: one seed set, as in every Hessian
  pass), ``e12`` may be absent;
* its context is a pass's own (no pattern pass, no column lanes), it has no
  window and no record;
* its lanes are small: ``(K1 + K2 + P) n`` under the pool's threshold (plain
  ``np.empty``; :mod:`hyperdual.pool` serves larger ones), ``P`` counted even
  before the cross lane exists, so every lean result is small too.

An operation of lean operands (two of them in the same context, and of one
length) makes a lean result, with the same math as the general path in
:mod:`hyperdual.chain` (the same kernels, the same NumPy operations in the
same order, so the same bits).  Anything else — broadcasting, other
functions, ``x / y`` — takes the general path, whose results are *flat*
(``_flat is True``) and may become lean again through :func:`promote`.

The math, as everywhere (``e1`` first-order lanes, ``e12`` cross lane):

* ``a ± b``: every lane is the sum or difference of the operands' lanes;
* ``c * a``: every lane scaled by ``c``;
* ``g(a)``: ``e1 = g' a.e1``, ``e2 = g' a.e2``,
  ``e12 = g' a.e12 + g'' a.e1[ip] a.e2[jp]``;
* ``a * b``: ``e12 = b a.e12 + a b.e12 + a.e1[ip] b.e2[jp] + b.e1[ip] a.e2[jp]``;
* ``A @ x`` (``x @ B``) with a constant matrix: every lane times the matrix.
"""
from __future__ import annotations

import numpy as np

from .array import _LEAN_OPS, LEAN, HyperDual, link_view
from .lanes import _Choice, choose, constant, ones
from .pool import POOL_MIN_ENTRIES
from .rules import UNARY

__all__ = ["promote", "seeded"]

_object_new = object.__new__
_EMPTY2 = np.zeros((0, 0))
_EMPTY1 = np.zeros(0)


def _lean(y, e1, e2, e12, ctx):
    """A new lean HyperDual (the caller guarantees the layout of the module docstring)."""
    out = _object_new(HyperDual)
    out._value, out._e1, out._e2, out._e12 = y, e1, e2, e12
    out._ctx = ctx
    out._node = out._base = out._views = out._win = None
    out._flat = LEAN
    return out


class switch:
    """``switch.on = False`` makes nothing lean (every operation takes the general path):
    for tests, which compare the two."""

    on = True


def promote(out):
    """Mark a flat HyperDual (``hyperdual.chain.flat``) lean when it qualifies."""
    e1, e2, ctx = out._e1, out._e2, out._ctx
    if e1 is not None and e2 is not None and ctx is not None and ctx.pattern is None \
            and ctx.columns is None and switch.on and out._value.shape[0] * (
                e1.shape[0] + (0 if e2 is e1 else e2.shape[0]) + ctx.ip.shape[0]) < POOL_MIN_ENTRIES:
        # (counting the cross lane's P rows whether or not it exists yet: the results of
        # lean operations are lean, and the first nonlinear one makes that lane)
        out._flat = LEAN
    return out


def seeded(x):
    """Mark a freshly seeded (or hand-made) flat input lean when it qualifies."""
    if x._flat is True and x._win is None:
        promote(x)
    return x


def _factor(g, n):
    """A derivative factor for the kernels: ``(n,)``, ``(1,)`` for a constant, ``(0,)`` for None."""
    if type(g) is np.ndarray:
        if g.shape == (n,) and g.flags.c_contiguous:
            return g
        if g.size == 1:
            return g.reshape(1).astype(np.float64, copy=False)
        return np.ascontiguousarray(np.broadcast_to(g, (n,)), dtype=np.float64)
    if g is None:
        return _EMPTY1
    return constant(g)


def _chain(y, x, g1, g2):
    """The chain rule on a lean ``x`` (``y = g(x)``, ``g1 = g'``, ``g2 = g''``; None: zero)."""
    e1, e2, e12, ctx = x._e1, x._e2, x._e12, x._ctx
    n = y.shape[0]
    rows = 0 if e12 is None and g2 is None else ctx.ip.shape[0]
    o1 = np.empty(e1.shape)
    o2 = _EMPTY2 if e2 is e1 else np.empty(e2.shape)
    o12 = _EMPTY2 if rows == 0 else np.empty((rows, n))
    kernels = _Choice.kernels if _Choice.ready else choose(n * (e1.shape[0] + o2.shape[0] + rows))
    kernels[0](y, _factor(g1, n), _factor(g2, n), e1, e2, _EMPTY2 if e12 is None else e12,
               ctx.ip, ctx.jp, o1, o2, o12)
    return _lean(y, o1, o1 if e2 is e1 else o2, None if rows == 0 else o12, ctx)


# ---- two lean operands (the caller checks: same context, same length) -----------------
def add(a, b):
    a1, b1, a12, b12 = a._e1, b._e1, a._e12, b._e12
    e1 = a1 + b1
    e2 = e1 if (a._e2 is a1 and b._e2 is b1) else a._e2 + b._e2
    e12 = a12 if b12 is None else b12 if a12 is None else a12 + b12
    return _lean(a._value + b._value, e1, e2, e12, a._ctx)


def subtract(a, b):
    a1, b1, a12, b12 = a._e1, b._e1, a._e12, b._e12
    e1 = a1 - b1
    e2 = e1 if (a._e2 is a1 and b._e2 is b1) else a._e2 - b._e2
    e12 = a12 if b12 is None else -b12 if a12 is None else a12 - b12
    return _lean(a._value - b._value, e1, e2, e12, a._ctx)


def multiply(a, b):
    """The product rule (one kernel for every lane); None when one operand shares its
    first-order lanes and the other does not (the general path handles that mix)."""
    a1, b1, a2, b2 = a._e1, b._e1, a._e2, b._e2
    shared = a2 is a1 and b2 is b1
    if not shared and (a2 is a1 or b2 is b1):
        return None
    av, bv, ctx = a._value, b._value, a._ctx
    y = av * bv
    n = y.shape[0]
    a12, b12 = a._e12, b._e12
    o1 = np.empty(a1.shape)
    o2 = _EMPTY2 if shared else np.empty(a2.shape)
    o12 = np.empty((ctx.ip.shape[0], n))
    kernels = _Choice.kernels if _Choice.ready else choose(n * (a1.shape[0] + o2.shape[0] + o12.shape[0]))
    kernels[2](y, av, bv, a1, a2, _EMPTY2 if a12 is None else a12, b1, b2,
               _EMPTY2 if b12 is None else b12, ctx.ip, ctx.jp, o1, o2, o12)
    return _lean(y, o1, o1 if shared else o2, o12, ctx)


# ---- a lean operand and a Python number c ------------------------------------------
def scale(x, c, y):
    """``y = x * c`` (or ``x / (1/c)``): every lane scaled by ``c``."""
    e1, e2, e12 = x._e1, x._e2, x._e12
    n1 = e1 * c
    return _lean(y, n1, n1 if e2 is e1 else e2 * c, None if e12 is None else e12 * c, x._ctx)


def rsubtract(x, c):
    """``c - x``: the lanes negated."""
    e1, e2, e12 = x._e1, x._e2, x._e12
    n1 = -e1
    return _lean(c - x._value, n1, n1 if e2 is e1 else -e2, None if e12 is None else -e12, x._ctx)


def negative(x):
    e1, e2, e12 = x._e1, x._e2, x._e12
    n1 = -e1
    return _lean(-x._value, n1, n1 if e2 is e1 else -e2, None if e12 is None else -e12, x._ctx)


def power(x, c):
    """``x ** c`` (``c`` a real number other than 0, 1 and 2):
    ``g' = c x^(c-1)``, ``g'' = c (c-1) x^(c-2)``."""
    a = x._value
    y = np.asarray(np.power(a, c))
    with np.errstate(divide="ignore", invalid="ignore"):
        g1 = c * np.power(a, c - 1.0)
        g2 = (c * (c - 1.0)) * np.power(a, c - 2.0)
    return _chain(y, x, g1, g2)


def square(x):
    """``x ** 2``: in one kernel call (:func:`hyperdual.kernels.square_lanes`) when ``e2`` is
    ``e1``, else the chain rule with ``g' = 2x``, ``g'' = 2``."""
    a, e1, e12, ctx = x._value, x._e1, x._e12, x._ctx
    if x._e2 is not e1:
        return _chain(a * a, x, 2.0 * a, 2.0)
    n = a.shape[0]
    y = np.empty(n)
    o1 = np.empty(e1.shape)
    o12 = np.empty((ctx.ip.shape[0], n))
    kernels = _Choice.kernels if _Choice.ready else choose(n * (e1.shape[0] + o12.shape[0]))
    kernels[3](a, e1, _EMPTY2 if e12 is None else e12, ctx.ip, ctx.jp, y, o1, o12)
    return _lean(y, o1, o1, o12, ctx)


def unary(ufunc, x):
    """``g(x)`` for a ufunc of the derivative table (None when it has no entry)."""
    if ufunc is np.square:
        return square(x)
    rule = UNARY.get(ufunc)
    if rule is None:
        return None
    a = x._value
    y = ufunc(a)
    g1, g2 = rule(a, y)
    return _chain(y, x, g1, g2)


def getitem(x, index):
    """``x[slice]`` of a contiguous run (None otherwise): the lanes' columns copied."""
    value = x._value[index]
    if not value.flags.c_contiguous or value.ndim != 1:
        return None
    e1, e2, e12 = x._e1, x._e2, x._e12
    n1 = e1[:, index].copy()
    out = _lean(value, n1, n1 if e2 is e1 else e2[:, index].copy(),
                None if e12 is None else e12[:, index].copy(), x._ctx)
    return link_view(x, out)


def sum_(x):
    """``np.sum(x)`` of a short array: one BLAS product with ones per lane (None when long)."""
    v = x._value
    n = v.shape[0]
    if n > 64:
        return None
    one = ones(n)
    e1, e2, e12 = x._e1, x._e2, x._e12
    n1 = e1 @ one
    out = _object_new(HyperDual)
    out._value, out._e1, out._e2 = np.add.reduce(v), n1, n1 if e2 is e1 else e2 @ one
    out._e12 = None if e12 is None else e12 @ one
    out._ctx = x._ctx
    out._node = out._base = out._views = out._win = None
    out._flat = False
    return out


def matmul(a, b):
    """``A @ x`` or ``x @ B`` with a constant 2-D float ``A`` / ``B`` (None otherwise, or
    when the result's lanes would not be small): every lane through the same NumPy
    ``matmul`` calls as :func:`hyperdual.functions.matmul` makes, one BLAS call per lane."""
    left = type(b) is HyperDual
    x, c = (b, a) if left else (a, b)
    if type(c) is not np.ndarray or c.ndim != 2 or c.dtype != np.float64 \
            or c.shape[1 if left else 0] != x._value.shape[0]:
        return None
    m = c.shape[0 if left else 1]
    e1, e2, e12, ctx = x._e1, x._e2, x._e12, x._ctx
    if m * (e1.shape[0] + (0 if e2 is e1 else e2.shape[0]) + ctx.ip.shape[0]) >= POOL_MIN_ENTRIES:
        return None
    if left:  # A @ v[:, None], A @ lane[:, :, None]: a column, as the general path has it
        def apply(v):
            return np.matmul(c, v[..., None])[..., 0]
    else:     # v[None, :] @ B, lane[:, None, :] @ B: a row
        def apply(v):
            return np.matmul(v[..., None, :], c)[..., 0, :]
    n1 = apply(e1)
    return _lean(apply(x._value), n1, n1 if e2 is e1 else apply(e2),
                 None if e12 is None else apply(e12), ctx)


def _power_number(x, c):
    if c == 2.0:
        return square(x)
    return None if c == 0.0 or c == 1.0 else power(x, c)


_LEAN_OPS.both.update({np.add: add, np.subtract: subtract, np.multiply: multiply})
_LEAN_OPS.numbers.update({
    (np.multiply, False): lambda x, c: scale(x, c, x._value * c),
    (np.multiply, True): lambda x, c: scale(x, c, c * x._value),
    (np.true_divide, False): lambda x, c: scale(x, 1.0 / c, x._value / c),
    (np.subtract, True): rsubtract,
    (np.power, False): _power_number,
})
_LEAN_OPS.unary = unary
_LEAN_OPS.matmul = matmul
_LEAN_OPS.negative = negative
_LEAN_OPS.getitem = getitem
_LEAN_OPS.functions.update({np.sum: sum_})
_LEAN_OPS.promote = seeded
