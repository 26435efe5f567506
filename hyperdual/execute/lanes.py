"""Lane kernels in NumPy, and the choice between them and the Numba kernels.

:mod:`hyperdual.execute.kernels` holds the Numba kernels ``chain_lanes`` and
``binary_lanes``.  Importing Numba and loading even cached kernels costs about
half a second in a fresh process, so small problems run NumPy twins of the
same kernels (same arguments, same results: checked by the tests) until the
work done makes that cost worth paying, or until :func:`load_kernels` is
called.  ``import hyperdual`` itself does not import Numba.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np

__all__ = ["choose", "load_kernels", "lane_sums", "chain_lanes_numpy", "binary_lanes_numpy",
           "product_lanes_numpy", "square_lanes_numpy"]

def _mul_np(lane, g, out=None):
    """``lane * g`` where exact zeros of the lane stay zero (``inf * 0 -> 0``)."""
    with np.errstate(invalid="ignore"):
        out = np.multiply(lane, g, out=out)
    np.copyto(out, 0.0, where=(lane == 0.0))
    return out


def _lmul_np(u, v):
    """``u * v`` of two lanes: 0 where either entry is an exact zero (``inf * 0 -> 0``)."""
    with np.errstate(invalid="ignore"):
        out = u * v
    np.copyto(out, 0.0, where=(u == 0.0) | (v == 0.0))
    return out


def scale_lane(lane, c, y=None):
    """``lane * c`` for a constant factor ``c`` (a number or an array broadcasting with the
    lane), with the bits the chain rule gives the table's ``(c, None)``: exact zeros of the
    lane stay +0.0 (also where ``c`` is negative, infinite or NaN: the kernels'
    zero-keeping multiply, :func:`hyperdual.execute.kernels._mul`), and where ``c`` is not finite,
    every lane is NaN where the value ``y`` (broadcasting like the lane's elements) is NaN.
    So ``x * inf`` and ``x * (0*x + inf)`` have the same lanes."""
    if type(c) is float and 0.0 < c < _INF:  # the common case: nothing to check
        return lane * c
    if (bool(np.isfinite(c).all()) if type(c) is np.ndarray else math.isfinite(c)):
        out = lane * c
        if (bool((c < 0).any()) if type(c) is np.ndarray else c < 0):
            np.add(out, 0.0, out=out)  # -0.0 -> +0.0: exact zeros stay +0.0, as in the kernels
        return out
    out = _mul_np(lane, c)
    if y is not None:
        np.copyto(out, np.nan, where=np.isnan(y))
    return out


def is_zero(c) -> bool:
    """Whether ``c`` is a scalar zero (``0.0``, ``-0.0``): a factor that leaves no derivative."""
    if type(c) is float:
        return c == 0.0
    return (type(c) is not np.ndarray or c.ndim == 0) and c == 0


_ZERO = np.zeros(())  # (a 0-d operand: cheaper for NumPy than the Python number 0.0)
_INF = float("inf")


def negated(lane, out=None):
    """``-lane`` with exact zeros ``+0.0`` (``0 - lane``): the sign the chain rule's kernels
    give ``np.negative`` (``_mul(-1, 0) = 0``), so every path negates to the same bits."""
    return np.subtract(_ZERO, lane, out=out)


def _poison_np(y, *outs):
    bad = np.isnan(y)
    if bad.any():
        for o in outs:
            if o.shape[0]:
                o[:, bad] = np.nan


def chain_lanes_numpy(y, g1, g2, e1, e2, e12, ip, jp, o1, o2, o12):
    """NumPy twin of :func:`hyperdual.execute.kernels.chain_lanes` (same arguments, same results)."""
    if o1.shape[0]:
        _mul_np(e1, g1, o1)
    if o2.shape[0]:
        _mul_np(e2, g1, o2)
    if o12.shape[0]:
        cross = g2.shape[0] > 0 and e1.shape[0] > 0 and e2.shape[0] > 0
        if cross:
            _mul_np(_lmul_np(e1[ip], e2[jp]), g2, o12)
            if e12.shape[0]:
                o12 += _mul_np(e12, g1)
        else:
            _mul_np(e12, g1, o12)
    _poison_np(y, o1, o2, o12)


def _first_np(gx, xe, gy, ye, out):
    if xe.shape[0] and ye.shape[0]:
        _mul_np(xe, gx, out)
        out += _mul_np(ye, gy)
    elif xe.shape[0]:
        _mul_np(xe, gx, out)
    else:
        _mul_np(ye, gy, out)


def binary_lanes_numpy(y, gx, gy, gxx, gxy, gyy, xe1, xe2, xe12, ye1, ye2, ye12, ip, jp, o1, o2, o12):
    """NumPy twin of :func:`hyperdual.execute.kernels.binary_lanes` (same arguments, same results)."""
    if o1.shape[0]:
        _first_np(gx, xe1, gy, ye1, o1)
    if o2.shape[0]:
        _first_np(gx, xe2, gy, ye2, o2)
    if o12.shape[0]:
        o12[...] = 0.0
        if xe12.shape[0]:
            o12 += _mul_np(xe12, gx)
        if ye12.shape[0]:
            o12 += _mul_np(ye12, gy)
        x1, x2, y1, y2 = (lane.shape[0] > 0 for lane in (xe1, xe2, ye1, ye2))
        if gxx.shape[0] and x1 and x2:
            o12 += _mul_np(_lmul_np(xe1[ip], xe2[jp]), gxx)
        if gyy.shape[0] and y1 and y2:
            o12 += _mul_np(_lmul_np(ye1[ip], ye2[jp]), gyy)
        if gxy.shape[0] and x1 and y2:
            o12 += _mul_np(_lmul_np(xe1[ip], ye2[jp]), gxy)
        if gxy.shape[0] and y1 and x2:
            o12 += _mul_np(_lmul_np(ye1[ip], xe2[jp]), gxy)
    _poison_np(y, o1, o2, o12)


_ONE = np.ones(1)
_NONE = np.zeros(0)


def product_lanes_numpy(y, xv, yv, xe1, xe2, xe12, ye1, ye2, ye12, ip, jp, o1, o2, o12):
    """NumPy twin of :func:`hyperdual.execute.kernels.product_lanes`."""
    binary_lanes_numpy(y, yv, xv, _NONE, _ONE, _NONE, xe1, xe2, xe12, ye1, ye2, ye12, ip, jp, o1, o2, o12)


_TWO = np.full(1, 2.0)
_EMPTY = np.zeros((0, 0))


def square_lanes_numpy(a, e1, e12, ip, jp, y, o1, o12):
    """NumPy twin of :func:`hyperdual.execute.kernels.square_lanes`."""
    np.multiply(a, a, out=y)
    chain_lanes_numpy(y, 2.0 * a, _TWO, e1, e1, e12, ip, jp, o1, _EMPTY, o12)


_CONSTANTS: dict = {}


def constant(g) -> np.ndarray:
    """A number ``g`` as the ``(1,)`` factor array the kernels broadcast (shared, at most
    256 of them kept)."""
    c = _CONSTANTS.get(g)
    if c is None:
        c = np.full(1, g, dtype=np.float64)
        if len(_CONSTANTS) < 256:
            _CONSTANTS[g] = c
    return c


def lane_sums(lane):
    """Row sums of a ``(K, n)`` lane (or of a packed buffer of lanes: each row's sum
    depends on that row alone, so summing lanes together or one by one gives the same
    bits).  Short rows: one call of :func:`hyperdual.execute.kernels.row_sums` once the Numba
    kernels are loaded; otherwise NumPy's reduction."""
    if lane.shape[1] <= 64:
        if not lane.flags.c_contiguous:  # (the same bits whatever the layout)
            lane = np.ascontiguousarray(lane)
        if _Choice.ready:
            out = np.empty(lane.shape[0])
            _Choice.packed.row_sums(lane, out)
            return out
    return np.add.reduce(lane, axis=1)


#: Elements of lane work after which the Numba kernels are loaded (one op, or in total).
LOAD_AFTER_OP = 2 ** 18
LOAD_AFTER_TOTAL = 2 ** 24


class Kernels(NamedTuple):
    """The lane kernels of the general layout (:mod:`hyperdual.execute.kernels`, or their NumPy twins)."""

    chain: Callable
    binary: Callable
    product: Callable
    square: Callable


class Ranges(NamedTuple):
    """The range kernels that :mod:`hyperdual.execute.threads` splits over threads."""

    chain: Callable
    product: Callable


class PackedKernels(NamedTuple):
    """The kernels of packed lanes (:mod:`hyperdual.execute.packed`); ``sum`` is None where its
    pairwise order is not NumPy's (checked when loaded)."""

    chain: Callable
    product: Callable
    square: Callable
    row_sums: Callable
    add: Callable
    sum: Callable | None


class _Choice:
    ready = False
    work = 0
    kernels = Kernels(chain_lanes_numpy, binary_lanes_numpy, product_lanes_numpy, square_lanes_numpy)
    #: The range kernels (:class:`Ranges`), once the Numba kernels are loaded.
    ranges: Ranges | None = None
    #: The packed-lane kernels (:class:`PackedKernels`), once the Numba kernels are loaded.
    packed: PackedKernels | None = None


def choose(work: int):
    """The :class:`Kernels` for an operation touching ``work`` lane elements."""
    if not _Choice.ready:
        _Choice.work += work
        if work >= LOAD_AFTER_OP or _Choice.work >= LOAD_AFTER_TOTAL:
            load_kernels()
    return _Choice.kernels


def _pairwise_is_numpys(packed_sum) -> bool:
    """Whether :func:`hyperdual.execute.kernels.packed_sum` sums values to ``np.add.reduce``'s bits
    on this NumPy (lengths 0 to 128, magnitudes over 20 decades, signed zeros).  If not,
    packed sums take their values from NumPy (0.6 µs more per small sum)."""
    rng = np.random.default_rng(12345)
    none = np.zeros((0, 1))
    for n in range(129):
        v = rng.standard_normal(n) * 10.0 ** rng.integers(-10, 10, n)
        if n % 7 == 3:
            v[: n // 2] = -0.0
        got = packed_sum(v, none, np.empty(0))
        want = np.add.reduce(v)
        if got != want or np.signbit(got) != np.signbit(want):
            return False
    return True


def load_kernels() -> None:
    """Load (from the on-disk cache, or compile) the Numba kernels now.

    Small problems start on NumPy implementations of the same kernels and
    switch when enough work has been done; call this once to switch at once
    (e.g. before timing many small Hessians).

    Examples
    --------
    >>> import hyperdual
    >>> hyperdual.load_kernels()
    """
    if _Choice.ready:
        return
    from .kernels import (binary_lanes, chain_lanes, chain_range, packed_add, packed_chain, packed_product,
                          packed_square, packed_sum, product_lanes, product_range, row_sums, square_lanes)

    y = np.ones(1)
    lane = np.ones((1, 1))
    pair = np.zeros(1, np.int64)
    none = np.zeros((0, 1))
    chain_lanes(y, y, y, lane, lane, lane, pair, pair, np.empty((1, 1)), none, np.empty((1, 1)))
    binary_lanes(y, y, y, y, y, y, lane, lane, lane, lane, lane, lane, pair, pair,
                 np.empty((1, 1)), none, np.empty((1, 1)))
    product_lanes(y, y, y, lane, lane, lane, lane, lane, lane, pair, pair,
                  np.empty((1, 1)), none, np.empty((1, 1)))
    square_lanes(y, lane, lane, pair, pair, np.empty(1), np.empty((1, 1)), np.empty((1, 1)))
    chain_range(y, y, y, lane, lane, lane, pair, pair, np.empty((1, 1)), none, np.empty((1, 1)), 0, 1)
    product_range(np.empty(1), y, y, lane, lane, lane, lane, lane, lane, pair, pair,
                  np.empty((1, 1)), none, np.empty((1, 1)), True, 0, 1)
    m = np.int64(-1)
    packed_chain(y, y, y, lane, 1, 0, m, pair, pair, np.empty((2, 1)))
    packed_product(y, y, lane, lane, 1, 0, m, m, pair, pair, np.empty(1), np.empty((2, 1)))
    packed_square(y, lane, 1, m, pair, pair, np.empty(1), np.empty((2, 1)))
    row_sums(lane, np.empty(1))
    packed_add(lane, lane, 1, m, m, False, np.empty((1, 1)))
    _Choice.packed = PackedKernels(packed_chain, packed_product, packed_square, row_sums, packed_add,
                                 packed_sum if _pairwise_is_numpys(packed_sum) else None)
    _Choice.kernels = Kernels(chain_lanes, binary_lanes, product_lanes, square_lanes)
    _Choice.ranges = Ranges(chain_range, product_range)
    from .sparse_kernels import csr_from_supports, greedy, greedy_from_supports, smallest_last
    one = np.zeros(2, dtype=np.int64)
    one[1] = 1
    idx = np.zeros(1, dtype=np.int64)
    greedy(one, idx, idx, np.full(1, -1, dtype=np.int64))
    greedy_from_supports(one, idx, 1, np.full(1, -1, dtype=np.int64))
    smallest_last(one, idx, idx, np.empty(1, dtype=np.int64))
    csr_from_supports(1, one, idx, np.ones(1), np.ones((1, 1)), idx, np.zeros((1, 1), dtype=np.int64))
    _Choice.ready = True
