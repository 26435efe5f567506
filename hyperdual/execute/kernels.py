"""Numba kernels for the lane arithmetic of hyper-dual arrays.

Every kernel works on *flat, C-contiguous* lanes: a first-order lane is a
``(K, n)`` array (one row per seed direction), a cross lane a ``(P, n)`` array
(one row per index pair ``p = (ip[p], jp[p])``), and per-element factors
(``g'``, ``g''``, partial derivatives, values) are ``(n,)`` arrays.  Callers
flatten and broadcast before calling, so each kernel has exactly one compiled
variant and a cold call stays cheap.  Outputs are allocated by NumPy and passed
in (NumPy's allocation first-touches memory faster than Numba's).

Only the *cross* lane needs fused kernels: first-order lanes of unary
functions are one NumPy broadcast multiply (``g' * e1``), and linear
operations act on each lane with NumPy directly.

The math (``e1, e2`` first-order lanes, ``e12`` cross lane, ``i = ip[p]``,
``j = jp[p]``):

* chain rule, ``y = g(x)``::

      y.e12[p] = g'(x) * x.e12[p] + g''(x) * x.e1[i] * x.e2[j]

* binary chain rule, ``z = g(x, y)``::

      z.e1[k]  = gx * x.e1[k] + gy * y.e1[k]
      z.e12[p] = gx * x.e12[p] + gy * y.e12[p]
               + gxx * x.e1[i] * x.e2[j]
               + gxy * (x.e1[i] * y.e2[j] + y.e1[i] * x.e2[j])
               + gyy * y.e1[i] * y.e2[j]

* product rule, ``z = x * y`` (``gx = y, gy = x, gxy = 1``)::

      z.e12[p] = y * x.e12[p] + x * y.e12[p] + x.e1[i] * y.e2[j] + y.e1[i] * x.e2[j]

Absent lanes (known zeros) are passed as arrays with zero rows and skipped,
and a lane entry that is exactly zero stays zero whatever factor multiplies it
(``inf * 0 -> 0``, as ForwardDiff's NaN-safe mode): an infinite derivative at
one element (``sqrt`` at 0) does not turn the structurally zero directions of
other elements into NaN.  Where the value is NaN, every derivative is NaN.

The kernels, each computing every output lane in one call (a small operation pays
one dispatch):

* ``chain_lanes`` (unary), ``binary_lanes``, and the special cases
  ``product_lanes`` (``x * y``) and ``square_lanes`` (``x ** 2``);
* ``chain_range`` / ``product_range``: the blocked loops of the first two on a
  range of elements, which :mod:`hyperdual.execute.threads` runs side by side on long lanes;
* ``packed_*`` and ``row_sums``: the same arithmetic on *packed* lanes (every lane of
  an array in one buffer), for the small arrays of :mod:`hyperdual.execute.packed`.

Every kernel is its own top-level ``def`` with ``cache=True``: functions made
by a factory would share one on-disk cache entry.  No kernel is recursive: a
recursive function loaded from Numba's cache crashed the process.
"""
from __future__ import annotations

import numba as nb
import numpy as np

__all__ = ["chain_lanes", "chain_range", "binary_lanes", "product_lanes", "product_range", "square_lanes",
           "packed_chain", "packed_product", "packed_square", "packed_add", "packed_sum", "row_sums"]

_jit = nb.njit(cache=True, nogil=True, error_model="numpy")


@_jit
def _stride(g):  # pragma: no cover - compiled
    """Index stride of a factor: 1 for a length-n array, 0 for a constant (length 1)."""
    return 1 if g.shape[0] > 1 else 0


@_jit
def _mul(g, v):  # pragma: no cover - compiled
    """``g * v`` where a lane entry ``v == 0`` is a structural zero: ``inf * 0`` stays 0."""
    return g * v if v != 0.0 else 0.0


@_jit
def _lmul(u, v):  # pragma: no cover - compiled
    """``u * v`` of two lane entries: 0 where either is an exact zero (``inf * 0 -> 0``),
    the rule of :func:`_mul` for a product of derivative terms."""
    return u * v if (u != 0.0 and v != 0.0) else 0.0


@_jit
def _has_nan(y):  # pragma: no cover - compiled
    for t in range(y.shape[0]):
        if y[t] != y[t]:
            return True
    return False


@_jit
def _poison(y, out):  # pragma: no cover - compiled
    """Where the value is NaN, every derivative is NaN."""
    for t in range(y.shape[0]):
        if y[t] != y[t]:
            for k in range(out.shape[0]):
                out[k, t] = np.nan


# ---- blocked kernels ---------------------------------------------------------------
# ``chain_lanes`` and the all-lanes path of ``product_lanes`` walk the elements in
# blocks of ``_BLOCK``, and inside a block go over every output row: the factor blocks
# and the first-order rows that the cross rows use (``e1[ip[p]]``, ``e2[jp[p]]``) are
# read from memory once and then again from cache for every pair, so a call moves
# about as many bytes as one pass over its lanes.  Row work is done by small helpers
# on 1-D row slices, each its own (not inlined) function: LLVM only vectorizes a loop
# once it can check at run time that its arrays do not overlap, which it does for
# these small loops but not for the same loops inlined into the block loop.  Loops
# run from 0 over a slice: an index ``t0 + u`` that Numba cannot prove non-negative
# gets a wraparound check that also blocks vectorization.

#: Elements per block: large enough that switching rows costs little streaming
#: bandwidth, small enough that the reused rows of a block stay in L2/L3.
_BLOCK = 1 << 15


@_jit
def _scale_row(g, e, o):  # pragma: no cover - compiled
    for t in range(o.shape[0]):
        o[t] = _mul(g[t], e[t])


@_jit
def _chain_cross_row(g1, e12, g2, x1, x2, o):  # pragma: no cover - compiled
    for t in range(o.shape[0]):
        o[t] = _mul(g1[t], e12[t]) + _mul(g2[t], _lmul(x1[t], x2[t]))


@_jit
def _cross_only_row(g2, x1, x2, o):  # pragma: no cover - compiled
    for t in range(o.shape[0]):
        o[t] = _mul(g2[t], _lmul(x1[t], x2[t]))


@_jit
def _any_nan(y):  # pragma: no cover - compiled
    bad = False
    for t in range(y.shape[0]):
        bad |= y[t] != y[t]
    return bad


@_jit
def _poison_block(y, out, t0, t1):  # pragma: no cover - compiled
    """``out[:, t0 + u] = nan`` where ``y[u]`` (a block of the value) is NaN."""
    for k in range(out.shape[0]):
        row = out[k, t0:t1]
        for u in range(row.shape[0]):
            if y[u] != y[u]:
                row[u] = np.nan


@_jit
def _factor_block(g, t0, t1, const):  # pragma: no cover - compiled
    """The block ``t0:t1`` of a factor: a slice, or of ``const`` (a constant broadcast)."""
    if g.shape[0] == 1:
        return const[:t1 - t0]
    return g[t0:t1]


@_jit
def _chain_single_row(g1, g2, e1, e2, e12, o1, o2, o12):  # pragma: no cover - compiled
    """Every output of one seed pair (K1 = K2 = P = 1) in one pass over its lanes."""
    for t in range(o12.shape[0]):
        g = g1[t]
        x1 = e1[t]
        x2 = e2[t]
        o1[t] = _mul(g, x1)
        o2[t] = _mul(g, x2)
        o12[t] = _mul(g, e12[t]) + _mul(g2[t], _lmul(x1, x2))


#: Up to this many elements a kernel runs plain loops over (row, element): per-row
#: helper calls and slices would cost more than the arithmetic (small Hessians).
_SMALL = 256


@_jit
def _chain_small(y, g1, g2, e1, e2, e12, ip, jp, o1, o2, o12, cross, has12):  # pragma: no cover
    """:func:`chain_lanes` for short lanes, the same arithmetic in the same order."""
    n = y.shape[0]
    s1 = _stride(g1)
    s2 = _stride(g2) if g2.shape[0] > 0 else 0
    for k in range(o1.shape[0]):
        for t in range(n):
            o1[k, t] = _mul(g1[t * s1], e1[k, t])
    for k in range(o2.shape[0]):
        for t in range(n):
            o2[k, t] = _mul(g1[t * s1], e2[k, t])
    if cross:
        for p in range(o12.shape[0]):
            a = ip[p]
            b = jp[p]
            if has12:
                for t in range(n):
                    o12[p, t] = _mul(g1[t * s1], e12[p, t]) + _mul(g2[t * s2], _lmul(e1[a, t], e2[b, t]))
            else:
                for t in range(n):
                    o12[p, t] = _mul(g2[t * s2], _lmul(e1[a, t], e2[b, t]))
    elif has12:
        for p in range(o12.shape[0]):
            for t in range(n):
                o12[p, t] = _mul(g1[t * s1], e12[p, t])
    elif o12.shape[0] > 0:
        o12[:, :] = 0.0
    if _has_nan(y):
        _poison(y, o1)
        _poison(y, o2)
        _poison(y, o12)


@_jit
def _product_small(y, xv, yv, xe1, xe2, xe12, ye1, ye2, ye12, ip, jp, o1, o2, o12):  # pragma: no cover
    """The all-lanes :func:`product_lanes` for short lanes, the same arithmetic in the same order."""
    n = y.shape[0]
    for k in range(o1.shape[0]):
        for t in range(n):
            o1[k, t] = _mul(yv[t], xe1[k, t]) + _mul(xv[t], ye1[k, t])
    for k in range(o2.shape[0]):
        for t in range(n):
            o2[k, t] = _mul(yv[t], xe2[k, t]) + _mul(xv[t], ye2[k, t])
    for p in range(o12.shape[0]):
        a = ip[p]
        b = jp[p]
        for t in range(n):
            o12[p, t] = (_mul(yv[t], xe12[p, t]) + _mul(xv[t], ye12[p, t])
                         + _lmul(xe1[a, t], ye2[b, t]) + _lmul(ye1[a, t], xe2[b, t]))
    if _has_nan(y):
        _poison(y, o1)
        _poison(y, o2)
        _poison(y, o12)


@_jit
def chain_lanes(y, g1, g2, e1, e2, e12, ip, jp, o1, o2, o12):  # pragma: no cover - compiled
    """Unary chain rule on every lane; zero-row arrays are absent lanes/outputs.

    ``o1 = g1 e1``, ``o2 = g1 e2`` (skipped when ``o2`` has no rows: absent,
    or shared with ``o1``), ``o12 = g1 e12 + g2 e1[ip] e2[jp]``.  Factors have
    length n, or 1 for a constant; ``g2`` of length 0 means ``g'' = 0``.
    Where ``y`` is NaN every derivative is NaN.
    """
    n = y.shape[0]
    cross = g2.shape[0] > 0 and e1.shape[0] > 0 and e2.shape[0] > 0
    has12 = e12.shape[0] > 0
    if n <= _SMALL:
        _chain_small(y, g1, g2, e1, e2, e12, ip, jp, o1, o2, o12, cross, has12)
        return
    chain_range(y, g1, g2, e1, e2, e12, ip, jp, o1, o2, o12, 0, n)


@_jit
def chain_range(y, g1, g2, e1, e2, e12, ip, jp, o1, o2, o12, lo, hi):  # pragma: no cover - compiled
    """The blocked :func:`chain_lanes` on the elements ``lo:hi`` only (lanes longer than
    ``_SMALL``): disjoint ranges write disjoint columns, so threads may share a call
    (:mod:`hyperdual.execute.threads`)."""
    cross = g2.shape[0] > 0 and e1.shape[0] > 0 and e2.shape[0] > 0
    has12 = e12.shape[0] > 0
    m0 = min(hi - lo, _BLOCK)
    c1 = np.full(m0, g1[0]) if g1.shape[0] == 1 else g1[:0]
    c2 = np.full(m0, g2[0]) if g2.shape[0] == 1 else g2[:0]
    single = o1.shape[0] == 1 and o2.shape[0] == 1 and o12.shape[0] == 1 and cross and has12
    for t0 in range(lo, hi, _BLOCK):
        t1 = min(t0 + _BLOCK, hi)
        gb1 = _factor_block(g1, t0, t1, c1)
        if single:
            _chain_single_row(gb1, _factor_block(g2, t0, t1, c2), e1[0, t0:t1], e2[0, t0:t1],
                              e12[0, t0:t1], o1[0, t0:t1], o2[0, t0:t1], o12[0, t0:t1])
        else:
            for k in range(o1.shape[0]):
                _scale_row(gb1, e1[k, t0:t1], o1[k, t0:t1])
            for k in range(o2.shape[0]):
                _scale_row(gb1, e2[k, t0:t1], o2[k, t0:t1])
            if cross:
                gb2 = _factor_block(g2, t0, t1, c2)
                for p in range(o12.shape[0]):
                    a = ip[p]
                    b = jp[p]
                    if has12:
                        _chain_cross_row(gb1, e12[p, t0:t1], gb2, e1[a, t0:t1], e2[b, t0:t1],
                                         o12[p, t0:t1])
                    else:
                        _cross_only_row(gb2, e1[a, t0:t1], e2[b, t0:t1], o12[p, t0:t1])
            elif has12:
                for p in range(o12.shape[0]):
                    _scale_row(gb1, e12[p, t0:t1], o12[p, t0:t1])
            elif o12.shape[0] > 0:
                o12[:, t0:t1] = 0.0
        yb = y[t0:t1]
        if _any_nan(yb):
            _poison_block(yb, o1, t0, t1)
            _poison_block(yb, o2, t0, t1)
            _poison_block(yb, o12, t0, t1)


@_jit
def _first(gx, xe, gy, ye, out):  # pragma: no cover - compiled
    n = out.shape[1]
    hx = xe.shape[0] > 0
    hy = ye.shape[0] > 0
    sx = _stride(gx)
    sy = _stride(gy)
    for k in range(out.shape[0]):
        if hx and hy:
            for t in range(n):
                out[k, t] = _mul(gx[t * sx], xe[k, t]) + _mul(gy[t * sy], ye[k, t])
        elif hx:
            for t in range(n):
                out[k, t] = _mul(gx[t * sx], xe[k, t])
        else:
            for t in range(n):
                out[k, t] = _mul(gy[t * sy], ye[k, t])


@_jit
def binary_lanes(y, gx, gy, gxx, gxy, gyy, xe1, xe2, xe12, ye1, ye2, ye12, ip, jp,
                 o1, o2, o12):  # pragma: no cover - compiled
    """Binary chain rule on every lane of ``z = g(x, y)``; zero-row arrays are absent.

    Factors have length n, 1 (a constant) or 0 (identically zero); where the
    value ``y`` is NaN every derivative is NaN.
    """
    n = y.shape[0]
    if o1.shape[0] > 0:
        _first(gx, xe1, gy, ye1, o1)
    if o2.shape[0] > 0:
        _first(gx, xe2, gy, ye2, o2)
    hx1 = xe1.shape[0] > 0
    hx2 = xe2.shape[0] > 0
    hy1 = ye1.shape[0] > 0
    hy2 = ye2.shape[0] > 0
    hx12 = xe12.shape[0] > 0
    hy12 = ye12.shape[0] > 0
    hxx = gxx.shape[0] > 0 and hx1 and hx2
    hyy = gyy.shape[0] > 0 and hy1 and hy2
    hxy_a = gxy.shape[0] > 0 and hx1 and hy2
    hxy_b = gxy.shape[0] > 0 and hy1 and hx2
    sx, sy = _stride(gx), _stride(gy)
    sxx = _stride(gxx) if gxx.shape[0] > 0 else 0
    sxy = _stride(gxy) if gxy.shape[0] > 0 else 0
    syy = _stride(gyy) if gyy.shape[0] > 0 else 0
    for p in range(o12.shape[0]):
        a = ip[p]
        b = jp[p]
        for t in range(n):
            s = 0.0
            if hx12:
                s += _mul(gx[t * sx], xe12[p, t])
            if hy12:
                s += _mul(gy[t * sy], ye12[p, t])
            if hxx:
                s += _mul(gxx[t * sxx], _lmul(xe1[a, t], xe2[b, t]))
            if hyy:
                s += _mul(gyy[t * syy], _lmul(ye1[a, t], ye2[b, t]))
            if hxy_a:
                s += _mul(gxy[t * sxy], _lmul(xe1[a, t], ye2[b, t]))
            if hxy_b:
                s += _mul(gxy[t * sxy], _lmul(ye1[a, t], xe2[b, t]))
            o12[p, t] = s
    if _has_nan(y):
        _poison(y, o1)
        _poison(y, o2)
        _poison(y, o12)


@_jit
def _product_first_row(yv, xe, xv, ye, o):  # pragma: no cover - compiled
    for t in range(o.shape[0]):
        o[t] = _mul(yv[t], xe[t]) + _mul(xv[t], ye[t])


@_jit
def _product_cross_row(yv, xe12, xv, ye12, x1, y2, y1, x2, o):  # pragma: no cover - compiled
    for t in range(o.shape[0]):
        o[t] = _mul(yv[t], xe12[t]) + _mul(xv[t], ye12[t]) + _lmul(x1[t], y2[t]) + _lmul(y1[t], x2[t])


@_jit
def _product_single_row(yv, xv, xe1, xe2, xe12, ye1, ye2, ye12, o1, o2, o12):  # pragma: no cover
    """Every output of one seed pair (K1 = K2 = P = 1) in one pass over its lanes."""
    for t in range(o12.shape[0]):
        a = yv[t]
        b = xv[t]
        x1 = xe1[t]
        x2 = xe2[t]
        y1 = ye1[t]
        y2 = ye2[t]
        o1[t] = _mul(a, x1) + _mul(b, y1)
        o2[t] = _mul(a, x2) + _mul(b, y2)
        o12[t] = _mul(a, xe12[t]) + _mul(b, ye12[t]) + x1 * y2 + y1 * x2


@_jit
def product_lanes(y, xv, yv, xe1, xe2, xe12, ye1, ye2, ye12, ip, jp, o1, o2, o12):  # pragma: no cover
    """Product rule on every lane of ``z = x * y`` (``binary_lanes`` with ``gx = y``,
    ``gy = x``, ``gxy = 1``); blocked and branch-free when every lane is present and
    both values have length n."""
    n = y.shape[0]
    full = (xe1.shape[0] > 0 and xe2.shape[0] > 0 and xe12.shape[0] > 0
            and ye1.shape[0] > 0 and ye2.shape[0] > 0 and ye12.shape[0] > 0
            and xv.shape[0] == n and yv.shape[0] == n)  # a broadcast (length-1) factor: general path
    if not full:
        one = np.ones(1)
        none = np.zeros(0)
        binary_lanes(y, yv, xv, none, one, none, xe1, xe2, xe12, ye1, ye2, ye12, ip, jp, o1, o2, o12)
        return
    if n <= _SMALL:
        _product_small(y, xv, yv, xe1, xe2, xe12, ye1, ye2, ye12, ip, jp, o1, o2, o12)
        return
    product_range(y, xv, yv, xe1, xe2, xe12, ye1, ye2, ye12, ip, jp, o1, o2, o12, False, 0, n)


@_jit
def _fill_product(xb, yb, vb):  # pragma: no cover - compiled
    """``vb = xb * yb``; True when NumPy would have raised a floating-point flag
    (:func:`_odd_product`)."""
    odd = False
    for t in range(vb.shape[0]):
        z = xb[t] * yb[t]
        vb[t] = z
        odd |= _odd_product(z, xb[t], yb[t])
    return odd


@_jit
def product_range(y, xv, yv, xe1, xe2, xe12, ye1, ye2, ye12, ip, jp, o1, o2, o12, fill, lo, hi):  # pragma: no cover
    """The blocked all-lanes :func:`product_lanes` on the elements ``lo:hi`` only (every
    lane present, values of length n, lanes longer than ``_SMALL``): disjoint ranges
    write disjoint columns, so threads may share a call (:mod:`hyperdual.execute.threads`).
    With ``fill``, the value ``y = xv * yv`` is computed here too, block by block (one
    pass over the values, and a fresh output first touched by every thread); returns
    True when NumPy would have raised a floating-point flag computing it (the caller
    then recomputes ``y`` with NumPy, for its warnings)."""
    single = o1.shape[0] == 1 and o2.shape[0] == 1 and o12.shape[0] == 1
    odd = False
    for t0 in range(lo, hi, _BLOCK):
        t1 = min(t0 + _BLOCK, hi)
        xb = xv[t0:t1]
        yb = yv[t0:t1]
        if fill:
            odd |= _fill_product(xb, yb, y[t0:t1])
        if single:
            _product_single_row(yb, xb, xe1[0, t0:t1], xe2[0, t0:t1], xe12[0, t0:t1],
                                ye1[0, t0:t1], ye2[0, t0:t1], ye12[0, t0:t1],
                                o1[0, t0:t1], o2[0, t0:t1], o12[0, t0:t1])
        else:
            for k in range(o1.shape[0]):
                _product_first_row(yb, xe1[k, t0:t1], xb, ye1[k, t0:t1], o1[k, t0:t1])
            for k in range(o2.shape[0]):
                _product_first_row(yb, xe2[k, t0:t1], xb, ye2[k, t0:t1], o2[k, t0:t1])
            for p in range(o12.shape[0]):
                a = ip[p]
                b = jp[p]
                _product_cross_row(yb, xe12[p, t0:t1], xb, ye12[p, t0:t1], xe1[a, t0:t1],
                                   ye2[b, t0:t1], ye1[a, t0:t1], xe2[b, t0:t1], o12[p, t0:t1])
        vb = y[t0:t1]
        if _any_nan(vb):
            _poison_block(vb, o1, t0, t1)
            _poison_block(vb, o2, t0, t1)
            _poison_block(vb, o12, t0, t1)
    return odd


@_jit
def square_lanes(a, e1, e12, ip, jp, y, o1, o12):  # pragma: no cover - compiled
    """``y = a ** 2`` and its lanes in one call: :func:`chain_lanes` with ``g' = 2a``,
    ``g'' = 2`` and ``e2 = e1``, the same arithmetic in the same order (``o12`` has
    ``len(ip)`` rows; ``e12`` none when absent).  For the short lanes of small problems
    (:mod:`hyperdual.execute.packed`), where computing ``y`` and ``g'`` in NumPy first would cost
    more than the arithmetic (1.6 µs of 4.1 per ``x ** 2`` at n = 9, K = 10, P = 55).

    The one place a rule of the table (``np.square`` in :mod:`hyperdual.ops.rules`) is
    restated: ``tests/test_kernels.py`` checks that it equals that entry lifted by
    :func:`chain_lanes`, bit for bit."""
    n = a.shape[0]
    for t in range(n):
        y[t] = a[t] * a[t]
    for k in range(o1.shape[0]):
        for t in range(n):
            o1[k, t] = _mul(2.0 * a[t], e1[k, t])
    if e12.shape[0] > 0:
        for p in range(o12.shape[0]):
            i = ip[p]
            j = jp[p]
            for t in range(n):
                o12[p, t] = _mul(2.0 * a[t], e12[p, t]) + _mul(2.0, _lmul(e1[i, t], e1[j, t]))
    else:
        for p in range(o12.shape[0]):
            i = ip[p]
            j = jp[p]
            for t in range(n):
                o12[p, t] = _mul(2.0, _lmul(e1[i, t], e1[j, t]))
    if _has_nan(y):
        _poison(y, o1)
        _poison(y, o12)


# ---- packed lanes (hyperdual.execute.packed) ---------------------------------------------------
# A packed HyperDual keeps all its lanes in one C-contiguous ``(R, n)`` buffer: the rows of
# ``e1`` (``k1`` of them), then those of ``e2`` unless it is ``e1`` itself (``k2s`` rows,
# 0 when shared), then the cross rows from row ``x12`` (``x12 < 0``: no cross lane).  A
# kernel over such buffers takes 5-7 arrays instead of 11-14, and Numba's dispatch costs
# about 50 ns per array argument, which is most of a small operation's budget.  The
# arithmetic is that of the kernels above, expression by expression, so packed results
# equal the general paths' bits (``tests/test_flat.py``).


@_jit
def _odd_product(z, a, b):  # pragma: no cover - compiled
    """Whether NumPy computing ``z = a * b`` would raise a floating-point flag (overflow,
    invalid, underflow) or meets a NaN: ``z`` not finite, or tiny (subnormal or 0) from
    two nonzero factors.  Kernels that compute a value NumPy would compute report it, and
    the caller recomputes that value with NumPy, so that ``np.errstate`` / ``np.seterr``
    act as they would on the plain arrays (same bits either way)."""
    if z - z != 0.0:
        return True
    return abs(z) < 2.2250738585072014e-308 and a != 0.0 and b != 0.0


@_jit
def _pairwise(a):  # pragma: no cover - compiled
    """NumPy's pairwise summation (``DOUBLE_pairwise_sum``) of at most 128 elements: plain
    below 8, else eight accumulators.  (Longer arrays are split in halves by NumPy; the
    packed paths sum at most 64.)  ``load_kernels`` checks that it gives
    ``np.add.reduce``'s bits before anything uses it."""
    n = a.shape[0]
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[i]
        return res
    r0, r1, r2, r3, r4, r5, r6, r7 = a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]
    i = 8
    stop = n - n % 8
    while i < stop:
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[i]
        i += 1
    return res


@_jit
def packed_sum(v, lanes, out):  # pragma: no cover - compiled
    """``np.add.reduce(v)`` of at most 128 elements (returned; NumPy's pairwise order) and the row sums of the
    packed ``lanes`` into ``out`` (:func:`row_sums`).  A result that is not finite is
    recomputed by the caller with NumPy, for its warnings."""
    row_sums(lanes, out)
    return 0.0 + _pairwise(v)


@_jit
def packed_chain(y, g1, g2, xl, k1, k2s, x12, ip, jp, ol):  # pragma: no cover - compiled
    """:func:`chain_lanes` on packed lanes: ``ol`` has the first-order rows of ``xl``
    (``k1 + k2s``), then any cross rows (``g1 e12 + g2 e1[ip] e2[jp]``, or the terms
    that exist)."""
    n = y.shape[0]
    s1 = _stride(g1)
    r = k1 + k2s
    for k in range(r):
        for t in range(n):
            ol[k, t] = _mul(g1[t * s1], xl[k, t])
    rows = ol.shape[0] - r
    if rows > 0:
        e2o = k1 if k2s > 0 else 0
        cross = g2.shape[0] > 0 and k1 > 0
        s2 = _stride(g2) if cross else 0
        for p in range(rows):
            a = ip[p]
            b = e2o + jp[p]
            q = r + p
            if x12 >= 0 and cross:
                for t in range(n):
                    ol[q, t] = _mul(g1[t * s1], xl[x12 + p, t]) + _mul(g2[t * s2], _lmul(xl[a, t], xl[b, t]))
            elif cross:
                for t in range(n):
                    ol[q, t] = _mul(g2[t * s2], _lmul(xl[a, t], xl[b, t]))
            elif x12 >= 0:
                for t in range(n):
                    ol[q, t] = _mul(g1[t * s1], xl[x12 + p, t])
            else:
                for t in range(n):
                    ol[q, t] = 0.0
    if _has_nan(y):
        _poison(y, ol)


@_jit
def packed_product(xv, yv, xl, yl, k1, k2s, x12, y12, ip, jp, v, ol):  # pragma: no cover - compiled
    """``v = xv * yv`` and :func:`product_lanes` on packed lanes (both operands with the
    same first-order rows; ``ol`` has those, then one row per pair).  Returns True when
    NumPy would have raised a floating-point flag computing ``v`` (see
    :func:`_odd_product`): the caller recomputes ``v`` with NumPy, for its warnings."""
    n = xv.shape[0]
    odd = False
    for t in range(n):
        v[t] = xv[t] * yv[t]
        odd |= _odd_product(v[t], xv[t], yv[t])
    r = k1 + k2s
    for k in range(r):
        for t in range(n):
            ol[k, t] = _mul(yv[t], xl[k, t]) + _mul(xv[t], yl[k, t])
    e2o = k1 if k2s > 0 else 0
    for p in range(ol.shape[0] - r):
        a = ip[p]
        b = e2o + jp[p]
        q = r + p
        if x12 >= 0 and y12 >= 0:  # product_lanes' all-lanes arithmetic
            for t in range(n):
                ol[q, t] = (_mul(yv[t], xl[x12 + p, t]) + _mul(xv[t], yl[y12 + p, t])
                            + _lmul(xl[a, t], yl[b, t]) + _lmul(yl[a, t], xl[b, t]))
        else:  # binary_lanes' (gx = y, gy = x, gxy = 1), a cross lane missing
            for t in range(n):
                s = 0.0
                if x12 >= 0:
                    s += _mul(yv[t], xl[x12 + p, t])
                if y12 >= 0:
                    s += _mul(xv[t], yl[y12 + p, t])
                s += _mul(1.0, _lmul(xl[a, t], yl[b, t]))
                s += _mul(1.0, _lmul(yl[a, t], xl[b, t]))
                ol[q, t] = s
    if _has_nan(v):
        _poison(v, ol)
    return odd


@_jit
def packed_square(a, xl, k1, x12, ip, jp, y, ol):  # pragma: no cover - compiled
    """:func:`square_lanes` on packed lanes (``e2`` is ``e1``: ``xl`` has ``k1``
    first-order rows); ``ol`` has ``k1`` rows, then one per pair.  Returns True as
    :func:`packed_product` does."""
    n = a.shape[0]
    odd = False
    for t in range(n):
        y[t] = a[t] * a[t]
        odd |= _odd_product(y[t], a[t], a[t])
    for k in range(k1):
        for t in range(n):
            ol[k, t] = _mul(2.0 * a[t], xl[k, t])
    for p in range(ol.shape[0] - k1):
        i = ip[p]
        j = jp[p]
        q = k1 + p
        if x12 >= 0:
            for t in range(n):
                ol[q, t] = _mul(2.0 * a[t], xl[x12 + p, t]) + _mul(2.0, _lmul(xl[i, t], xl[j, t]))
        else:
            for t in range(n):
                ol[q, t] = _mul(2.0, _lmul(xl[i, t], xl[j, t]))
    if _has_nan(y):
        _poison(y, ol)
    return odd


@_jit
def row_sums(lanes, out):  # pragma: no cover - compiled
    """``out[k] = lanes[k, 0] + lanes[k, 1] + ...`` in that order (short rows: the sums of
    a small array's lanes, packed or not, so that both give the same bits)."""
    for k in range(lanes.shape[0]):
        s = 0.0
        for t in range(lanes.shape[1]):
            s += lanes[k, t]
        out[k] = s


@_jit
def packed_add(al, bl, r, a12, b12, negate, out):  # pragma: no cover - compiled
    """``a ± b`` on packed lanes with the same ``r`` first-order rows, where only one
    operand has cross rows (``a12``/``b12``: their first row, or -1): the first-order
    rows added or subtracted, the cross rows copied (negated for ``- b``)."""
    n = out.shape[1]
    for k in range(r):
        if negate:
            for t in range(n):
                out[k, t] = al[k, t] - bl[k, t]
        else:
            for t in range(n):
                out[k, t] = al[k, t] + bl[k, t]
    for p in range(out.shape[0] - r):
        q = r + p
        if a12 >= 0:
            for t in range(n):
                out[q, t] = al[a12 + p, t]
        elif negate:
            for t in range(n):
                out[q, t] = 0.0 - bl[b12 + p, t]  # (+0.0 for a zero, as _mul(-1, 0))
        else:
            for t in range(n):
                out[q, t] = bl[b12 + p, t]
