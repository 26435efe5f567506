"""Packed paths: the common operations of a Hessian pass on small 1-D arrays, checked once.

A pass of a small Hessian runs a few dozen NumPy operations on arrays of a
few elements, and then the Python around each operation — which case of the
chain rule applies, whether lanes are windowed, recorded, in columns or
broadcast — costs more than the arithmetic.  A HyperDual whose ``_flat`` is
:data:`PACKED` has been checked once, when it was made, so that none of that
needs asking again:

* its value is a C-contiguous ``(n,)`` array and its lanes C-contiguous
  ``(K1, n)``, ``(K2, n)``, ``(P, n)`` arrays; both first-order lanes are
  present (``e2`` is often ``e1`` itself: one seed set, as in every Hessian
  pass), ``e12`` may be absent;
* its context is a pass's own (no pattern pass, no column lanes), it has no
  window and no record;
* its lanes are small: ``(K1 + K2 + P) n`` under the pool's threshold (plain
  ``np.empty``; :mod:`hyperdual.execute.pool` serves larger ones), ``P`` counted even
  before the cross lane exists, so every packed result is small too;
* ``_lanes`` holds all its lanes *packed* in one C-contiguous ``(R, n)``
  buffer: the rows of ``e1``, then those of ``e2`` unless it is ``e1``, then
  the cross rows.  Packed results are made in one such buffer (``e1``, ``e2``,
  ``e12`` are views of it); a kernel over packed lanes takes half the array
  arguments, and Numba's dispatch costs about 50 ns per array.  ``x ± y`` and
  ``c * x`` of packed lanes are one NumPy operation instead of two or three.

An operation of packed operands (two of them in the same context, and of one
length) makes a packed result, with the same math as the general path in
:mod:`hyperdual.execute.chain` (the same kernels, the same NumPy operations in the
same order, so the same bits).  Anything else — broadcasting, other
functions, ``x / y`` — takes the general path, whose results are *flat*
(``_flat is True``) and may become packed again through :func:`promote`.

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

from .array import _PACKED_OPS, PACKED, HyperDual, link_view
from .lanes import _Choice, choose, constant, is_zero, lane_sums, negated, scale_lane
from .pool import POOL_MIN_ENTRIES
from ..ops.rules import UNARY, constant_power

__all__ = ["promote", "seeded"]

_object_new = object.__new__
_EMPTY2 = np.zeros((0, 0))
_EMPTY1 = np.zeros(0)


def _packed(y, lanes, lay, ctx):
    """A new packed HyperDual over the packed buffer ``lanes`` with the layout ``lay`` =
    ``(k1, k2s, x12)``: ``k1`` rows of ``e1``, then ``k2s`` of ``e2`` (0: ``e2`` is
    ``e1``), then the cross rows from row ``x12`` (-1: no cross lane)."""
    out = _object_new(HyperDual)
    k1, k2s, x12 = lay
    e1 = lanes if k2s == 0 and x12 < 0 else lanes[:k1]
    out._value, out._lanes, out._lay, out._e1 = y, lanes, lay, e1
    out._e2 = e1 if k2s == 0 else lanes[k1:k1 + k2s]
    out._e12 = None if x12 < 0 else lanes[x12:]
    out._ctx = ctx
    out._node = out._base = out._views = out._win = None
    out._flat = PACKED
    return out


class switch:
    """``switch.on = False`` makes nothing packed (every operation takes the general path):
    for tests, which compare the two."""

    on = True


def promote(out, lanes=None):
    """Mark a flat HyperDual (``hyperdual.execute.chain.flat``) packed when it qualifies; ``lanes``,
    when given, is its lanes' packed buffer already (else it is packed here: a copy,
    unless ``e1`` is the only lane)."""
    e1, e2, ctx = out._e1, out._e2, out._ctx
    if e1 is not None and e2 is not None and ctx is not None and ctx.pattern is None \
            and ctx.columns is None and switch.on and out._value.shape[0] * (
                e1.shape[0] + (0 if e2 is e1 else e2.shape[0]) + ctx.ip.shape[0]) < POOL_MIN_ENTRIES:
        # (counting the cross lane's P rows whether or not it exists yet: the results of
        # packed operations are packed, and the first nonlinear one makes that lane)
        if lanes is None:
            e12 = out._e12
            if e12 is None:
                lanes = e1 if e2 is e1 else np.concatenate((e1, e2))
            else:
                lanes = np.concatenate((e1, e12) if e2 is e1 else (e1, e2, e12))
        k1 = e1.shape[0]
        r = k1 if e2 is e1 else k1 + e2.shape[0]
        out._lanes, out._lay = lanes, (k1, r - k1, -1 if out._e12 is None else r)
        out._flat = PACKED
    return out


def seeded(x):
    """Mark a freshly seeded (or hand-made) flat input packed when it qualifies."""
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


def _views(lanes, k1, k2s, rows):
    """The output views ``(o1, o2, o12)`` of a packed buffer, in the twins' convention
    (zero-row arrays for absent outputs)."""
    r = k1 + k2s
    return lanes[:k1], lanes[k1:r] if k2s else _EMPTY2, lanes[r:] if rows else _EMPTY2


def _chain(y, x, g1, g2):
    """The chain rule on a packed ``x`` (``y = g(x)``, ``g1 = g'``, ``g2 = g''``; None: zero)."""
    ctx = x._ctx
    k1, k2s, x12 = x._lay
    n = y.shape[0]
    rows = 0 if x12 < 0 and g2 is None else ctx.ip.shape[0]
    r = k1 + k2s
    out = np.empty((r + rows, n))
    # (factors from the table's NumPy expressions in a: fresh (n,) arrays, used as they are;
    # anything else, e.g. a registered rule's broadcast view, made contiguous: a strided
    # factor would make Numba compile another variant of the kernel)
    f1 = g1 if type(g1) is np.ndarray and g1.ndim == 1 and g1.shape[0] == n \
        and g1.flags.c_contiguous else _factor(g1, n)
    f2 = g2 if type(g2) is np.ndarray and g2.ndim == 1 and g2.shape[0] == n \
        and g2.flags.c_contiguous else _factor(g2, n)
    if _Choice.ready or choose(n * (r + rows)) and _Choice.ready:
        _Choice.packed.chain(y, f1, f2, x._lanes, k1, k2s, x12, ctx.ip, ctx.jp, out)
    else:  # the NumPy twins, on views
        o1, o2, o12 = _views(out, k1, k2s, rows)
        _Choice.kernels.chain(y, f1, f2, x._e1, x._e2, _EMPTY2 if x12 < 0 else x._e12,
                           ctx.ip, ctx.jp, o1, o2, o12)
    return _packed(y, out, x._lay if rows == 0 or x12 >= 0 else (k1, k2s, r), ctx)


# ---- two packed operands (the caller checks: same context, same length) -----------------
def _add(a, b, negate):
    ka, sa, a12 = a._lay
    _, sb, b12 = b._lay
    if sa != sb:
        return None  # one shares e2 = e1, the other does not: the general path
    al, bl = a._lanes, b._lanes
    y = a._value - b._value if negate else a._value + b._value
    if (a12 < 0) == (b12 < 0):
        return _packed(y, al - bl if negate else al + bl, a._lay, a._ctx)
    r = ka + sa
    out = np.empty((al.shape[0] if a12 >= 0 else bl.shape[0], y.shape[0]))
    if _Choice.ready:
        _Choice.packed.add(al, bl, r, a12, b12, negate, out)
    elif a12 >= 0:
        (np.subtract if negate else np.add)(al[:r], bl, out=out[:r])
        out[r:] = al[r:]
    else:
        (np.subtract if negate else np.add)(al, bl[:r], out=out[:r])
        if negate:
            negated(bl[r:], out=out[r:])
        else:
            out[r:] = bl[r:]
    return _packed(y, out, a._lay if a12 >= 0 else b._lay, a._ctx)


def add(a, b):
    return _add(a, b, False)


def subtract(a, b):
    return _add(a, b, True)


def multiply(a, b):
    """The product rule (one kernel for every lane); None when one operand shares its
    first-order lanes and the other does not (the general path handles that mix)."""
    k1, k2s, a12 = a._lay
    _, s2, b12 = b._lay
    if s2 != k2s:
        return None
    av, bv, ctx = a._value, b._value, a._ctx
    n = av.shape[0]
    rows = ctx.ip.shape[0]
    r = k1 + k2s
    out = np.empty((r + rows, n))
    y = np.empty(n)
    if _Choice.ready or choose(n * (r + rows)) and _Choice.ready:
        if _Choice.packed.product(av, bv, a._lanes, b._lanes, k1, k2s, a12, b12, ctx.ip, ctx.jp, y, out):
            np.multiply(av, bv, out=y)  # (NumPy's floating-point warnings, the same bits)
    else:
        np.multiply(av, bv, out=y)
        o1, o2, o12 = _views(out, k1, k2s, rows)
        _Choice.kernels.product(y, av, bv, a._e1, a._e2, _EMPTY2 if a12 < 0 else a._e12, b._e1, b._e2,
                           _EMPTY2 if b12 < 0 else b._e12, ctx.ip, ctx.jp, o1, o2, o12)
    return _packed(y, out, a._lay if a12 >= 0 else b._lay if b12 >= 0 else (k1, k2s, r), ctx)


# ---- a packed operand and a Python number c ------------------------------------------
def scale(x, c, y):
    """``y = x * c`` (or ``x / (1/c)``): every lane scaled by ``c``
    (:func:`hyperdual.execute.lanes.scale_lane`; a zero ``c`` leaves no lanes)."""
    if is_zero(c):
        return HyperDual._new(np.asarray(y), None, None, None, x._ctx)
    return _packed(y, scale_lane(x._lanes, c, y), x._lay, x._ctx)


def rsubtract(x, c):
    """``c - x``: the lanes negated."""
    return _packed(c - x._value, negated(x._lanes), x._lay, x._ctx)


def negative(x):
    return _packed(-x._value, negated(x._lanes), x._lay, x._ctx)


def power(x, c):
    """``x ** c`` (``c`` a real number other than 0, 1 and 2):
    ``g' = c x^(c-1)``, ``g'' = c (c-1) x^(c-2)``."""
    a = x._value
    y = np.asarray(np.power(a, c))
    return _chain(y, x, *constant_power(a, c))


def square(x):
    """``x ** 2``: in one kernel call (:func:`hyperdual.execute.kernels.packed_square`) when ``e2`` is
    ``e1`` (that kernel is tested bit for bit against the table's entry), else the chain
    rule with the entry ``UNARY[np.square]`` itself."""
    a = x._value
    k1, k2s, x12 = x._lay
    if k2s:
        return _chain(a * a, x, *UNARY[np.square](a, None))
    ctx = x._ctx
    n = a.shape[0]
    rows = ctx.ip.shape[0]
    y = np.empty(n)
    out = np.empty((k1 + rows, n))
    if _Choice.ready or choose(n * (k1 + rows)) and _Choice.ready:
        if _Choice.packed.square(a, x._lanes, k1, x12, ctx.ip, ctx.jp, y, out):
            np.multiply(a, a, out=y)  # (NumPy's floating-point warnings, the same bits)
    else:
        _Choice.kernels.square(a, x._e1, _EMPTY2 if x12 < 0 else x._e12, ctx.ip, ctx.jp, y,
                           out[:k1], out[k1:])
    return _packed(y, out, x._lay if x12 >= 0 else (k1, 0, k1), ctx)


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
    return link_view(x, _packed(value, x._lanes[:, index].copy(), x._lay, x._ctx))


def sum_(x):
    """``np.sum(x)`` of a short array (None when long): the value in NumPy's pairwise order
    and the lanes' row sums, as the general path sums each lane
    (:func:`hyperdual.execute.lanes.lane_sums`), in one call of :func:`hyperdual.execute.kernels.packed_sum`."""
    v = x._value
    n = v.shape[0]
    if n > 64:
        return None
    k1, k2s, x12 = x._lay
    lanes = x._lanes
    kernel = _Choice.packed.sum if _Choice.ready else None
    if kernel is not None:  # value and lanes in one call
        sums = np.empty(lanes.shape[0])
        value = kernel(v, lanes, sums)
        value = np.float64(value) if value - value == 0.0 else np.add.reduce(v)  # (inf, nan:
        # NumPy's own, for its warnings)
    else:
        sums = lane_sums(lanes)
        value = np.add.reduce(v)
    r = k1 + k2s
    out = _object_new(HyperDual)
    out._value = value
    out._e1 = n1 = sums[:k1]
    out._e2 = n1 if k2s == 0 else sums[k1:r]
    out._e12 = None if x12 < 0 else sums[r:]
    out._ctx = x._ctx
    out._node = out._base = out._views = out._win = None
    out._flat = False
    return out


def matmul(a, b):
    """``A @ x`` or ``x @ B`` with a constant 2-D float ``A`` / ``B`` (None otherwise, or
    when the result's lanes would not be small): all lanes, stacked, through the same
    NumPy ``matmul`` calls as :func:`hyperdual.execute.functions.matmul` makes (one BLAS call
    per lane row)."""
    left = type(b) is HyperDual
    x, c = (b, a) if left else (a, b)
    if type(c) is not np.ndarray or c.ndim != 2 or c.dtype != np.float64 \
            or c.shape[1 if left else 0] != x._value.shape[0]:
        return None
    m = c.shape[0 if left else 1]
    k1, k2s, x12 = x._lay
    ctx = x._ctx
    if m * (k1 + k2s + ctx.ip.shape[0]) >= POOL_MIN_ENTRIES:
        return None
    if left:  # A @ v[:, None], A @ lane[:, :, None]: a column, as the general path has it
        def apply(v):
            return np.matmul(c, v[..., None])[..., 0]
    else:     # v[None, :] @ B, lane[:, None, :] @ B: a row
        def apply(v):
            return np.matmul(v[..., None, :], c)[..., 0, :]
    return _packed(apply(x._value), np.ascontiguousarray(apply(x._lanes)), x._lay, ctx)


def _power_number(x, c):
    if c == 2.0:
        return square(x)
    return None if c == 0.0 or c == 1.0 else power(x, c)


_PACKED_OPS.both.update({np.add: add, np.subtract: subtract, np.multiply: multiply})
_PACKED_OPS.numbers.update({
    (np.multiply, False): lambda x, c: scale(x, c, x._value * c),
    (np.multiply, True): lambda x, c: scale(x, c, c * x._value),
    (np.true_divide, False): lambda x, c: scale(x, 1.0 / c, x._value / c),
    (np.subtract, True): rsubtract,
    (np.power, False): _power_number,
})
_PACKED_OPS.unary = unary
_PACKED_OPS.matmul = matmul
_PACKED_OPS.negative = negative
_PACKED_OPS.getitem = getitem
_PACKED_OPS.functions.update({np.sum: sum_})
_PACKED_OPS.promote = seeded
_PACKED_OPS.mark = promote
