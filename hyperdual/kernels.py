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

Absent lanes (known zeros) are passed as arrays with zero rows and skipped;
that keeps ``0 * inf`` out of lanes that are structurally zero.

Every kernel is its own top-level ``def`` with ``cache=True``: functions made
by a factory would share one on-disk cache entry.
"""
from __future__ import annotations

import numba as nb

__all__ = ["cross_chain", "cross_chain_new", "first_order_binary", "cross_binary", "cross_product"]

_jit = nb.njit(cache=True, nogil=True, error_model="numpy")


@_jit
def cross_chain(g1, g2, e1, e2, e12, ip, jp, out):  # pragma: no cover - compiled
    """out[p] = g1 * e12[p] + g2 * e1[ip[p]] * e2[jp[p]]."""
    npairs, n = out.shape
    for p in range(npairs):
        a = ip[p]
        b = jp[p]
        for t in range(n):
            out[p, t] = g1[t] * e12[p, t] + g2[t] * e1[a, t] * e2[b, t]


@_jit
def cross_chain_new(g2, e1, e2, ip, jp, out):  # pragma: no cover - compiled
    """out[p] = g2 * e1[ip[p]] * e2[jp[p]] (the input had no cross lane)."""
    npairs, n = out.shape
    for p in range(npairs):
        a = ip[p]
        b = jp[p]
        for t in range(n):
            out[p, t] = g2[t] * e1[a, t] * e2[b, t]


@_jit
def first_order_binary(gx, xe, gy, ye, out):  # pragma: no cover - compiled
    """out[k] = gx * xe[k] + gy * ye[k]."""
    rows, n = out.shape
    for k in range(rows):
        for t in range(n):
            out[k, t] = gx[t] * xe[k, t] + gy[t] * ye[k, t]


@_jit
def cross_binary(gx, gy, gxx, gxy, gyy, xe1, xe2, xe12, ye1, ye2, ye12, ip, jp, out):  # pragma: no cover
    """Binary chain rule for the cross lane; zero-row lanes are absent (zero).

    ``gxx``, ``gxy`` or ``gyy`` with zero length mean an identically zero
    second partial.
    """
    npairs, n = out.shape
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
    for p in range(npairs):
        a = ip[p]
        b = jp[p]
        for t in range(n):
            s = 0.0
            if hx12:
                s += gx[t] * xe12[p, t]
            if hy12:
                s += gy[t] * ye12[p, t]
            if hxx:
                s += gxx[t] * xe1[a, t] * xe2[b, t]
            if hyy:
                s += gyy[t] * ye1[a, t] * ye2[b, t]
            if hxy_a:
                s += gxy[t] * xe1[a, t] * ye2[b, t]
            if hxy_b:
                s += gxy[t] * ye1[a, t] * xe2[b, t]
            out[p, t] = s


@_jit
def cross_product(xv, yv, xe1, xe2, xe12, ye1, ye2, ye12, ip, jp, out):  # pragma: no cover
    """Product rule for the cross lane of ``x * y``; zero-row lanes are absent."""
    npairs, n = out.shape
    hx12 = xe12.shape[0] > 0
    hy12 = ye12.shape[0] > 0
    ha = xe1.shape[0] > 0 and ye2.shape[0] > 0
    hb = ye1.shape[0] > 0 and xe2.shape[0] > 0
    for p in range(npairs):
        a = ip[p]
        b = jp[p]
        for t in range(n):
            s = 0.0
            if hx12:
                s += yv[t] * xe12[p, t]
            if hy12:
                s += xv[t] * ye12[p, t]
            if ha:
                s += xe1[a, t] * ye2[b, t]
            if hb:
                s += ye1[a, t] * xe2[b, t]
            out[p, t] = s
