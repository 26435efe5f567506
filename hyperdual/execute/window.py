"""Windowed lanes: a block of a large Hessian costs the block, not the whole input.

A pass that seeds only inputs ``x[lo:hi]`` of a long 1-D input has lanes
that are exactly zero outside ``[lo, hi)``.  :func:`hyperdual.plan.seeding.seed_inputs`
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
  :mod:`hyperdual.execute.chain` evaluates ``g'`` and ``g''`` on the window's
  elements and hands them to :func:`lift` here, which runs the kernels on its
  columns only (the value ``g(x)`` is
  still computed for every element).
* **two windowed operands** (``x ± y``, ``x * y``, ``g(x, y)``): the result's
  window is the smallest one covering both (operand lanes are zero-padded to it).
* **a constant factor** (``x * c``): lanes times ``c`` on the window.
* **a slice** ``x[a:b:s]`` (``s > 0``) or an integer index: the window moves
  (or ends, for a 0-d result).
* **a full sum** ``np.sum(x)``: the lanes' sum over the window (the zeros
  outside add nothing); the result is 0-d and has full lanes.
* **a function declared** ``reads=SAME`` in :mod:`hyperdual.ops.registry` (``np.copy``, a
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
from .chain import _EMPTY2, _flat_factor, _flat_lane, _out, value_of
from .context import join_contexts
from .lanes import _Choice, choose, negated, scale_lane
from .lanes import lane_sums as _lane_sums
from ..ops.registry import ELEMENTWISE, SAME, VALUE, ZERO, impl_reads, ufunc_kind

__all__ = ["densify", "windowed", "cut", "union", "pad", "result", "lift", "add", "scale", "operands"]

_new = HyperDual._new
_object_new = object.__new__


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


# ---- the chain rule, sums and constant factors on windows (hooks of hyperdual.execute.chain) --------
def lift(y, x, g1, g2, on_window=False):
    """The chain rule (:func:`hyperdual.execute.chain.lift`) on the window of ``x`` (None,
    with ``x`` expanded, when ``y`` is not elementwise in ``x``).  ``on_window``: the
    factors are given on the window already (None is returned, and ``x`` kept, if they
    are not window-shaped)."""
    n = x._value.shape[0]
    lo, hi = x._win
    e1 = x._e1
    if on_window and x._e2 is e1 and e1 is not None and y.shape == (n,) and type(g1) is np.ndarray \
            and g1.shape == (hi - lo,) and (g2 is None or type(g2) is float or (
                type(g2) is np.ndarray and g2.shape == g1.shape)) \
            and e1.flags.c_contiguous and y.flags.c_contiguous:
        return _lift_shared(y, x, g1, g2)
    if not on_window:
        c1, c2 = cut(g1, lo, hi, n), cut(g2, lo, hi, n)
    else:
        c1, c2 = cut(g1, 0, hi - lo, hi - lo), cut(g2, 0, hi - lo, hi - lo)
        if c1 is NotImplemented or c2 is NotImplemented:
            return None
    if y.shape != (n,) or c1 is NotImplemented or c2 is NotImplemented:
        densify(x)
        return None
    e1, e2, e12, ctx = x._e1, x._e2, x._e12, x._ctx
    w = hi - lo
    shape = (w,)
    shared = e2 is e1
    cross = c2 is not None and e1 is not None and e2 is not None
    n1, f1 = _out(e1 is not None, ctx.k1, shape, w)
    n2, f2 = _out(e2 is not None and not shared, ctx.k2, shape, w)
    n12, f12 = _out(e12 is not None or cross, ctx.npairs, shape, w)
    fe1 = _flat_lane(e1, shape, w)
    kernels = _Choice.kernels if _Choice.ready else choose(w * (f1.shape[0] + f2.shape[0] + f12.shape[0]))
    kernels.chain(y[lo:hi], _flat_factor(c1, shape, w), _flat_factor(c2, shape, w),
               fe1, fe1 if shared else _flat_lane(e2, shape, w), _flat_lane(e12, shape, w),
               ctx.ip, ctx.jp, f1, f2, f12)  # (y[lo:hi] of a 1-D y is contiguous)
    out = _object_new(HyperDual)  # (result() inlined)
    out._value, out._e1, out._e2, out._e12 = y, n1, n1 if shared else n2, n12
    out._ctx, out._win = ctx, x._win
    out._node = out._base = out._views = None
    out._flat = False
    return out


def _lift_shared(y, x, g1, g2):
    """:func:`lift` for the common case: ``e2 is e1`` (contiguous), ``g'`` given
    on the window, ``g''`` on the window, a number or None: the same kernel call,
    without the general case's layout work."""
    lo, hi = x._win
    e1, e12, ctx = x._e1, x._e12, x._ctx
    w = hi - lo
    rows = 0 if e12 is None and g2 is None else ctx.ip.shape[0]
    o1 = np.empty(e1.shape)
    o12 = np.empty((rows, w)) if rows else _EMPTY2
    kernels = _Choice.kernels if _Choice.ready else choose(w * (e1.shape[0] + rows))
    kernels.chain(y[lo:hi], g1 if g1.flags.c_contiguous else np.ascontiguousarray(g1),
               _flat_factor(g2, g1.shape, w), e1, e1,
               _EMPTY2 if e12 is None else np.ascontiguousarray(e12), ctx.ip, ctx.jp, o1, _EMPTY2, o12)
    out = _object_new(HyperDual)
    out._value, out._e1, out._e2, out._e12 = y, o1, o1, o12 if rows else None
    out._ctx, out._win = ctx, x._win
    out._node = out._base = out._views = None
    out._flat = False
    return out


def _operand_windows(a, b, y):
    """The windows of two operands (None: no lanes) when the result ``y`` can keep a
    window; otherwise None, after expanding both to full lanes."""
    wins = []
    for v in (a, b):
        if type(v) is not HyperDual or (v._e1 is None and v._e2 is None and v._e12 is None):
            wins.append(None)
        elif v._win is not None and v._value.shape == y.shape:
            wins.append(v._win)
        else:
            wins = None
            break
    if wins is None or y.ndim != 1:
        for v in (a, b):
            if type(v) is HyperDual and v._win is not None:
                densify(v)
        return None
    return wins


def add(a, b, negate_b):
    """``a ± b`` with windowed operands: lanes added on the covering window."""
    if type(a) is HyperDual and type(b) is HyperDual and a._win is not None and b._win is not None \
            and a._ctx is b._ctx and a._e1 is not None and b._e1 is not None \
            and ((a._e2 is a._e1 and b._e2 is b._e1) or (a._e2 is None and b._e2 is None)) \
            and a._value.shape == b._value.shape:
        return _add_shared(a, b, negate_b)
    av, bv = value_of(a), value_of(b)
    y = np.asarray(av - bv if negate_b else av + bv)
    wins = _operand_windows(a, b, y)
    if wins is None:
        return None
    ctx = join_contexts(a._ctx if type(a) is HyperDual else None, b._ctx if type(b) is HyperDual else None)
    wa, wb = wins
    win = union(wa, wb)

    def combine(la, lb):
        if la is None and lb is None:
            return None
        if lb is None:
            return pad_lane(la, wa)
        if negate_b:
            lb = negated(lb)
        if la is None:
            return pad_lane(lb, wb)
        if wa == wb:
            return la + lb
        out = np.zeros((la.shape[0], win[1] - win[0]))  # a new array: lanes are never written in place
        out[:, wa[0] - win[0]:wa[1] - win[0]] = la
        out[:, wb[0] - win[0]:wb[1] - win[0]] += lb
        return out

    def pad_lane(lane, w):
        return pad(lane, w, win)

    a1, a2, a12 = (a._e1, a._e2, a._e12) if wa is not None else (None, None, None)
    b1, b2, b12 = (b._e1, b._e2, b._e12) if wb is not None else (None, None, None)
    e1 = combine(a1, b1)
    shared = (wa is None or a2 is a1) and (wb is None or b2 is b1)
    e2 = e1 if shared else combine(a2, b2)
    return result(y, e1, e2, combine(a12, b12), ctx, win)


def _add_shared(a, b, negate_b):
    """:func:`add` for the common case: two windowed 1-D operands of one pass
    with ``e2 is e1`` (or no ``e2``: a gradient pass).  The result's window covers
    both; each lane is ``a``'s lane placed on it plus (minus) ``b``'s."""
    av, bv = a._value, b._value
    y = av - bv if negate_b else av + bv
    wa, wb = a._win, b._win
    if wa == wb:
        win = wa
        e1 = a._e1 - b._e1 if negate_b else a._e1 + b._e1
        a12, b12 = a._e12, b._e12
        e12 = a12 if b12 is None else (negated(b12) if negate_b else b12) if a12 is None else \
            a12 - b12 if negate_b else a12 + b12
    else:
        lo, hi = min(wa[0], wb[0]), max(wa[1], wb[1])
        win = (lo, hi)
        sa, sb = slice(wa[0] - lo, wa[1] - lo), slice(wb[0] - lo, wb[1] - lo)

        def put(la, lb):
            if la is None and lb is None:
                return None
            rows = (la if la is not None else lb).shape[0]
            out = np.zeros((rows, hi - lo))  # a new array: lanes are never written in place
            if la is not None:
                out[:, sa] = la
            if lb is not None:
                if negate_b:
                    out[:, sb] -= lb
                else:
                    out[:, sb] += lb
            return out
        e1 = put(a._e1, b._e1)
        e12 = put(a._e12, b._e12)
    out = _new(y, e1, None if a._e2 is None else e1, e12, a._ctx)
    out._win = win
    return out


def scale(x, c, y):
    """``x * c`` (:func:`hyperdual.execute.chain.scale`) on the window of ``x``: every lane scaled
    on the window (None, with ``x`` expanded, when ``y`` or ``c`` is not elementwise in it)."""
    n = x._value.shape[0]
    cw = cut(c, *x._win, n) if type(c) is np.ndarray and c.ndim else c
    if y.shape == (n,) and cw is not NotImplemented:
        e1, e2, e12 = x._e1, x._e2, x._e12
        yw = y[x._win[0]:x._win[1]]
        n1 = None if e1 is None else scale_lane(e1, cw, yw)
        n2 = n1 if e2 is e1 else (None if e2 is None else scale_lane(e2, cw, yw))
        return result(y, n1, n2, None if e12 is None else scale_lane(e12, cw, yw), x._ctx, x._win)
    densify(x)
    return None


def operands(a, b, y):
    """The lanes of two operands of an elementwise ``y = g(a, b)`` on the window covering
    both: ``(window, (a1, a2, a12), (b1, b2, b12))`` (None for an operand without lanes),
    or None, after expanding both, when ``y`` cannot keep a window."""
    wins = _operand_windows(a, b, y)
    if wins is None:
        return None
    win = union(*wins)
    a_lanes = [pad(v, wins[0], win) for v in (a._e1, a._e2, a._e12)]
    b_lanes = [pad(v, wins[1], win) for v in (b._e1, b._e2, b._e12)]
    if a._e2 is a._e1:
        a_lanes[1] = a_lanes[0]
    if b._e2 is b._e1:
        b_lanes[1] = b_lanes[0]
    return (win, a_lanes if wins[0] is not None else (None, None, None),
            b_lanes if wins[1] is not None else (None, None, None))


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
    one array input (:data:`hyperdual.ops.registry.SAME`: ``copy``, a function registered with
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


#: The ufunc kinds (:mod:`hyperdual.ops.registry`) whose results keep their operands' window: the
#: chain rule's (a selection moves lanes by value, across the window's edge).
_CARRIED = frozenset((ELEMENTWISE, ZERO, VALUE))


def _win1d(x):
    return type(x) is HyperDual and x._win is not None


_IMPL.windowed, _IMPL.densify = windowed, densify
_IMPL.window_lift, _IMPL.window_add, _IMPL.window_scale, _IMPL.window_operands = lift, add, scale, operands
_IMPL.window_getitem, _IMPL.window_sum = _getitem, _sum
