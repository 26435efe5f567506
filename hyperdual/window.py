"""Windowed lanes: a block of a large Hessian costs the block, not the whole input.

A pass that seeds only inputs ``x[lo:hi]`` of a long 1-D input has lanes
that are exactly zero outside ``[lo, hi)``.  :func:`hyperdual.seeding.seed_inputs`
then stores them *windowed*: a 1-D HyperDual of length ``n`` with
``_win = (lo, hi)`` keeps lanes of shape ``(K, hi - lo)``, the columns
``lo .. hi - 1`` of its full lanes; every other column is zero.  It does so
when the input is long enough for that to pay (``settings.window_min_size``
elements, ``window_min_lanes`` elements of full lanes) and the window narrow
enough (``window_max_fraction``): each windowed operation costs a few
microseconds of bookkeeping that full lanes of a short input would not.

Which operations keep a window, and why the numbers are the same as with
full lanes:

* **elementwise** ``y = g(x)`` (and ``g(x, c)`` with a constant ``c``):
  ``y.e1 = g'(x) · x.e1`` and ``y.e12 = g'(x) · x.e12 + g''(x) · x.e1 x.e2``
  vanish wherever the lanes of ``x`` do (a zero lane entry stays zero
  through any factor, ``inf · 0 -> 0``), so ``y`` has the window of ``x``;
  :mod:`hyperdual.chain` evaluates ``g'`` and ``g''`` on the window's
  elements and runs the kernels on its columns only (the value ``g(x)`` is
  still computed for every element).
* **two windowed operands** (``x ± y``, ``x * y``, ``g(x, y)``): the result's
  window is the smallest one covering both (operand lanes are zero-padded to it).
* **a constant factor** (``x * c``): lanes times ``c`` on the window.
* **a slice** ``x[a:b:s]`` (``s > 0``) or an integer index: the window moves
  (or ends, for a 0-d result).
* **a full sum** ``np.sum(x)``: the lanes' sum over the window (the zeros
  outside add nothing); the result is 0-d and has full lanes.
* **a function declared** ``reads=SAME`` in :mod:`hyperdual.ops` (``np.copy``, a
  function registered with ``reads="same"``): output element ``t`` is one linear
  map of element ``t``, which takes the zeros outside the window to zeros; it
  runs on the window's lanes.

Everything else (reshapes, matmul, selections, ...) first expands the lanes
to full size in place (:func:`densify`: the same numbers, stored densely,
counted in ``Hessian.stats.expansions``)
and runs unchanged, so no result depends on windows.  A NaN value outside
the window has zero lanes here, where full lanes would carry NaN; it still
makes every derivative NaN once it reaches the output, which is where a NaN
value and NaN lanes meet in both layouts (selections move values and lanes
together).
"""
from __future__ import annotations

import numbers

import numpy as np

from .array import _IMPL, FUNCTIONS, HyperDual, link_view, nested
from .lanes import lane_sums as _lane_sums
from .ops import ELEMENTWISE, SAME, VALUE, ZERO, impl_reads, ufunc_kind

__all__ = ["densify", "windowed", "cut", "union", "pad", "result"]

_new = HyperDual._new


def densify(x: HyperDual) -> None:
    """Expand the windowed lanes of ``x`` to full ``(K, n)`` lanes, in place."""
    lo, hi = x._win
    n = x._value.shape[0]
    if x._ctx is not None and x._ctx.layouts is not None:
        x._ctx.layouts.expanded += 1

    def grow(lane):
        if lane is None:
            return None
        out = np.zeros((lane.shape[0], n))
        out[:, lo:hi] = lane
        return out

    e1 = grow(x._e1)
    e2 = e1 if x._e2 is x._e1 else grow(x._e2)
    x._e1, x._e2, x._e12, x._win = e1, e2, grow(x._e12), None


def _densify_all(obj) -> None:
    for x in nested(obj, HyperDual):
        if x._win is not None:
            densify(x)


# ---- helpers for the chain rule on windows --------------------------------------------
def cut(g, lo: int, hi: int, n: int):
    """A derivative factor restricted to the window: ``g[lo:hi]`` for a length-n array,
    ``g`` itself for a constant (or None).  ``NotImplemented`` for any other shape."""
    t = type(g)
    if g is None or t is float or t is int or t is np.float64:
        return g
    if t is np.ndarray:
        if g.shape == (n,):
            return g[lo:hi]
        if g.size == 1:
            return g
        return NotImplemented
    return g if isinstance(g, numbers.Number) else NotImplemented


def union(*wins):
    """The smallest window covering every given window (None entries are ignored)."""
    lo = hi = None
    for w in wins:
        if w is None:
            continue
        if lo is None or w[0] < lo:
            lo = w[0]
        if hi is None or w[1] > hi:
            hi = w[1]
    return lo, hi


def pad(lane, win, to):
    """A windowed lane ``(K, hi - lo)`` of window ``win`` as a lane of the window ``to``."""
    if lane is None or win == to:
        return lane
    out = np.zeros((lane.shape[0], to[1] - to[0]))
    out[:, win[0] - to[0]:win[1] - to[0]] = lane
    return out


def result(value, e1, e2, e12, ctx, win):
    out = _new(value, e1, e2, e12, ctx)
    out._win = win
    return out


# ---- linear operations that keep (or end) a window ------------------------------------
def _index_1d(index):
    if type(index) is tuple:
        if len(index) != 1:
            return NotImplemented
        index = index[0]
    if type(index) is slice:
        return index
    if isinstance(index, (int, np.integer)) and not isinstance(index, (bool, np.bool_)):
        return int(index)
    return NotImplemented


def _getitem(x, index):
    """``x[a:b:s]`` (``s > 0``) or ``x[i]`` of a windowed 1-D array."""
    idx = _index_1d(index)
    if idx is NotImplemented:
        return NotImplemented
    value = x._value[index]  # NumPy's own IndexError for a bad index
    lo, hi = x._win
    n = x._value.shape[0]
    e1, e2, e12 = x._e1, x._e2, x._e12
    if type(idx) is int:
        i = idx + n if idx < 0 else idx
        inside = lo <= i < hi

        def pick(lane):
            return lane[:, i - lo] if lane is not None and inside else None
        n1 = pick(e1)
        out = _new(value, n1, n1 if e2 is e1 else pick(e2), pick(e12), x._ctx)
        return link_view(x, out)
    start, stop, step = idx.indices(n)
    if step < 0:
        return NotImplemented
    length = value.shape[0]
    k_lo = max(0, -(-(lo - start) // step))
    k_hi = min(length, -(-(hi - start) // step))
    if k_hi <= k_lo:
        k_lo = k_hi = 0
        cols = slice(0, 0)
    else:
        first = start + k_lo * step - lo
        cols = slice(first, first + (k_hi - k_lo - 1) * step + 1, step)

    def take(lane):
        return None if lane is None else lane[:, cols]
    n1 = take(e1)
    out = result(value, n1, n1 if e2 is e1 else take(e2), take(e12), x._ctx, (k_lo, k_hi))
    return link_view(x, out)


def _sum(a, axis=None, dtype=None, keepdims=False, out=None):
    """``np.sum`` of a windowed 1-D array over its one axis."""
    if dtype not in (None, float, np.float64) or out is not None:
        return NotImplemented
    if axis is not None and (type(axis) is not tuple and not isinstance(axis, (int, np.integer))
                             or axis not in (0, -1, (0,), (-1,))):
        return NotImplemented
    value = np.add.reduce(a._value, axis=0, keepdims=bool(keepdims))

    def total(lane):
        if lane is None:
            return None
        s = _lane_sums(lane)
        return s[:, None] if keepdims else s
    e1 = total(a._e1)
    return _new(value, e1, e1 if a._e2 is a._e1 else total(a._e2), total(a._e12), a._ctx)


def _reads_same(impl) -> bool:
    reads = impl_reads(impl)
    return reads is not None and reads.how == SAME


def _same(impl, args, kwargs):
    """A function whose output element ``t`` is one linear map of element ``t`` of its
    one array input (:data:`hyperdual.ops.SAME`: ``copy``, a function registered with
    ``reads="same"``): run on the window's lanes, its result keeps the window (a lane
    entry outside it is zero, and the map takes zero to zero)."""
    x = args[0]
    if any(True for _ in nested(args[1:], HyperDual)) or any(True for _ in nested(kwargs, HyperDual)):
        return NotImplemented
    out = impl(*args, **kwargs)
    if type(out) is not HyperDual:
        return out
    width = (x._win[1] - x._win[0],)
    lanes = [lane for lane in (out._e1, out._e2, out._e12) if lane is not None]
    if out._value.shape != x._value.shape or any(lane.shape[1:] != width for lane in lanes):
        return NotImplemented  # (not the declared shape-keeping map: run on full lanes)
    if lanes:
        out._win = x._win
    return out


# ---- the entry point from dispatch -------------------------------------------------------
def windowed(impl, args: tuple, kwargs: dict):
    """Run ``impl`` on operands of which some are windowed, or expand them.

    Returns ``NotImplemented`` (after expanding every windowed operand in
    place) when ``impl`` has no window-aware form; the caller then runs it
    as usual.
    """
    result = NotImplemented
    if impl is _IMPL.apply_ufunc and not kwargs:
        ufunc = args[0]
        if ufunc_kind(ufunc) in _CARRIED:
            return impl(*args)  # the chain rule is window-aware itself
    elif impl is _IMPL.getitem and not kwargs and len(args) == 2 and _win1d(args[0]):
        result = _getitem(*args)
    elif impl is FUNCTIONS.get(np.sum) and len(args) == 1 and _win1d(args[0]) \
            and set(kwargs) <= {"axis", "dtype", "keepdims", "out"}:
        result = _sum(args[0], **kwargs)
    elif args and _win1d(args[0]) and _reads_same(impl):
        result = _same(impl, args, kwargs)
    if result is NotImplemented:
        _densify_all(args)
        _densify_all(tuple(kwargs.values()))
    return result


#: The ufunc kinds (:mod:`hyperdual.ops`) whose results keep their operands' window: the
#: chain rule's (a selection moves lanes by value, across the window's edge).
_CARRIED = frozenset((ELEMENTWISE, ZERO, VALUE))


def _win1d(x):
    return type(x) is HyperDual and x._win is not None


_IMPL.windowed, _IMPL.densify = windowed, densify
_IMPL.window_getitem, _IMPL.window_sum = _getitem, _sum
