"""Column lanes: a batched pass stores one lane row where full lanes need ``K + P``.

A batched pass over one input ``X`` of shape ``[B, m]`` seeds direction ``k``
at column ``c_k`` of every sample: full lanes are ``e1[k, b, c] = δ(c, c_k)``
(``K`` rows) and, as the pass goes on, cross lanes ``e12[p, b, c]`` (``P``
rows).  As long as every element depends on its own column of ``X`` only,
which holds for ``X`` itself and for everything elementwise in it, row ``k``
of ``e1`` is zero outside column ``c_k`` and row ``p = (i, j)`` of ``e12`` is
zero unless ``c_i = c_j`` (the same seed, ``i = j``), at that column.  So one
row holds them all:

    d1[b, c] = e1[k, b, c]    for the seed k of column c   (0 if c is not seeded)
    d12[b, c] = e12[p, b, c]  for the pair p = (k, k)

and the product and chain rules act on ``d1`` and ``d12`` exactly as on one
seed ``K = P = 1``: column ``c``'s derivatives never meet another column's.

:func:`hyperdual.plan.seeding.seed_inputs` stores such inputs with *column
lanes*: lanes of one row, ``(1, B, m)``, in a context of one seed and one
pair whose ``columns`` field is a :class:`ColumnSeeds` (the pass's real
context and the column of each seed).  Operations that keep every element in
its own column run unchanged on them, with one lane row instead of ``K + P``:

* elementwise ufuncs whose lane-carrying operands all have the result's shape
  (constants may broadcast): ``exp(X)``, ``X * X``, ``X ** 2 + c``; and, on the
  same condition, array functions whose output element ``t`` reads element
  ``t`` of each input (declared ``SAME`` or ``ELEMENT`` in :mod:`hyperdual.ops.registry`:
  ``where``, ``clip``, ``copy``, ``round``, registered ones): a linear map that
  keeps each element in place keeps the zeros of every other column;
* ``np.sum(Y, axis=-1)`` of a 2-D ``Y`` ends the column lanes: the sum over the
  columns is the only step that mixes seeds, and its result gets full lanes
  ``e1[k] = d1[:, c_k]``, ``e12[(k, k)] = d12[:, c_k]`` (zero for other pairs);
* a column ``Y[:, c]`` gets full lanes the same way (rows of other seeds are
  0), and ``np.prod(Y, axis=-1)`` multiplies such columns in NumPy's order.

Everything else (indexing, reshapes, ``prod``, matmul, ...) first expands the
lanes in place to the full ``(K, B, m)`` and ``(P, B, m)`` layout (:func:`densify`:
the same numbers, stored densely, counted in ``Hessian.stats.expansions``) and
runs as usual.
"""
from __future__ import annotations

import numpy as np

from .array import _IMPL, FUNCTIONS, HyperDual, link_view, nested
from .context import SeedContext
from ..ops.registry import ELEMENT, ELEMENTWISE, SAME, SELECTION, VALUE, ZERO, impl_reads, ufunc_kind

__all__ = ["ColumnSeeds", "seed", "densify", "settle", "compact_call"]

_new = HyperDual._new


class ColumnSeeds:
    """What a column-lane context stands for: the pass's real context ``ctx`` and
    ``col[k]``, the column of ``X`` that seed ``k`` moves (``m`` columns in all)."""

    __slots__ = ("ctx", "col", "m", "diagonal")

    def __init__(self, ctx: SeedContext, col: np.ndarray, m: int):
        self.ctx, self.col, self.m = ctx, col, m
        #: the pair rows p = (k, k): the only cross rows that column lanes carry
        self.diagonal = np.flatnonzero(ctx.ip == ctx.jp) if ctx.ip.size else ctx.ip


def seed(point: np.ndarray, ctx: SeedContext, col: np.ndarray, second: bool) -> HyperDual:
    """The input ``X`` ``[B, m]`` of a batched pass with column lanes (see the module)."""
    lane = np.zeros((1,) + point.shape)
    lane[0, :, col] = 1.0
    bad = np.isnan(point)
    if bad.any():  # a NaN input makes every derivative through it NaN, never a finite number
        lane[0, bad] = np.nan
    compact = SeedContext.trusted(np.zeros(1, np.int64), np.zeros(1, np.int64), 1, 1 if second else 0)
    compact.columns = ColumnSeeds(ctx, col, point.shape[1])
    compact.layouts = ctx.layouts
    return _new(point, lane, lane if second else None, None, compact)


def _full(lane, cs: ColumnSeeds, rows: np.ndarray, cols: np.ndarray):
    """Full lanes ``(R, *S)`` from a column lane ``(1, *S)``: row ``r`` is the lane's
    column ``cols[r]`` in place, zero elsewhere."""
    out = np.zeros((len(rows),) + lane.shape[1:])
    if len(rows):
        out[rows, ..., cols] = np.moveaxis(lane[0][..., cols], -1, 0)
    return out


def _dense_lanes(x: HyperDual):
    cs = x._ctx.columns
    real = cs.ctx
    k = real.k1
    e1 = None if x._e1 is None else _full(x._e1, cs, np.arange(k), cs.col)
    if x._e2 is x._e1:
        e2 = e1
    else:
        e2 = None if x._e2 is None else _full(x._e2, cs, np.arange(real.k2), cs.col[:real.k2])
    if x._e12 is None:
        e12 = None
    else:
        e12 = np.zeros((real.npairs,) + x._value.shape)
        d = cs.diagonal
        if d.size:
            e12[d, ..., cs.col[real.ip[d]]] = np.moveaxis(x._e12[0][..., cs.col[real.ip[d]]], -1, 0)
    return e1, e2, e12, real


def densify(x: HyperDual) -> None:
    """Expand the column lanes of ``x`` to full lanes of the pass's context, in place."""
    if x._ctx.layouts is not None:
        x._ctx.layouts.expanded += 1
    e1, e2, e12, real = _dense_lanes(x)
    x._e1, x._e2, x._e12, x._ctx, x._flat = e1, e2, e12, real, False


def settle(y):
    """The output of a pass with full lanes (a no-op unless it has column lanes)."""
    if type(y) is HyperDual and y._ctx is not None and y._ctx.columns is not None:
        densify(y)
    return y


def _densify_all(obj) -> None:
    for x in nested(obj, HyperDual):
        if x._ctx is not None and x._ctx.columns is not None:
            densify(x)


#: The ufunc kinds (:mod:`hyperdual.ops.registry`) that keep every element in its column.
_ELEMENTWISE_KINDS = frozenset((ELEMENTWISE, SELECTION, ZERO, VALUE))


def _elementwise(args) -> bool:
    """Whether a ufunc call keeps every element in its column: every HyperDual operand
    has column lanes of one context and the result's shape."""
    if ufunc_kind(args[0]) not in _ELEMENTWISE_KINDS:
        return False
    return _aligned(args[1:])


def _reads_element(impl, args, kwargs) -> bool:
    """Whether an array function keeps every element in its column: its output element
    ``t`` reads element ``t`` of each input (:data:`hyperdual.ops.registry.SAME` or
    :data:`~hyperdual.ops.registry.ELEMENT`) and its operands are aligned (:func:`_aligned`)."""
    reads = impl_reads(impl)
    if reads is None or (reads.how != SAME and reads.how != ELEMENT):
        return False
    return _aligned(list(args) + [v for v in kwargs.values() if type(v) is HyperDual or type(v) is np.ndarray])


def _aligned(operands) -> bool:
    """Whether every HyperDual operand with lanes has column lanes of one context and the
    broadcast shape of all operands (constants may broadcast)."""
    ctx = None
    shapes = []
    for a in operands:
        if type(a) is HyperDual:
            if a._ctx is None:
                shapes.append(a._value.shape)
                continue
            if a._ctx.columns is None or (ctx is not None and a._ctx is not ctx):
                return False
            ctx = a._ctx
            shapes.append(a._value.shape)
        else:
            shapes.append(np.shape(a))
    try:
        out = np.broadcast_shapes(*shapes)
    except ValueError:
        return True  # NumPy raises its own error for these shapes
    return all(a._value.shape == out for a in operands
               if type(a) is HyperDual and a._ctx is not None)


def _row_sums(v: np.ndarray) -> np.ndarray:
    """``np.add.reduce(v, axis=1)`` of a 2-D array; a short row (2 to 8 entries) is summed as
    column slices in NumPy's own order ``(v0 + v1) + v2 …``, several times faster than
    NumPy's reduction loop over a short inner axis, and the same numbers."""
    m = v.shape[1]
    if not 2 <= m <= 8:
        return np.add.reduce(v, axis=1)
    out = v[:, 0] + v[:, 1]
    for c in range(2, m):
        out += v[:, c]
    return out


def _sum_columns(x, axis=None, dtype=None, out=None, keepdims=False, **kw):
    """``np.sum(x, axis=-1)`` of a 2-D array with column lanes: full lanes of ``[B]``."""
    if kw or keepdims or out is not None or dtype not in (None, float, np.float64) or x._value.ndim != 2 \
            or axis not in (1, -1, (1,), (-1,)):
        return NotImplemented
    cs = x._ctx.columns
    real = cs.ctx
    value = _row_sums(x._value)

    def pick(lane, rows, cols):
        if lane is None:
            return None
        out = np.zeros((rows,) + value.shape)
        out[:len(cols)] = lane[0][:, cols].T
        return out
    e1 = pick(x._e1, real.k1, cs.col)
    e2 = e1 if x._e2 is x._e1 else pick(x._e2, real.k2, cs.col[:real.k2])
    e12 = None
    if x._e12 is not None:
        e12 = np.zeros((real.npairs,) + value.shape)
        d = cs.diagonal
        e12[d] = x._e12[0][:, cs.col[real.ip[d]]].T
    return _new(value, e1, e2, e12, real)


def _column(x: HyperDual, c: int) -> HyperDual:
    """``x[:, c]`` of a 2-D array with column lanes, with full lanes ``(K, B)``: the seeds
    of column ``c`` (one at most) get the column's lane entries, every other row is 0."""
    cs = x._ctx.columns
    real = cs.ctx
    value = x._value[:, c]

    def full(lane, rows):
        if lane is None:
            return None
        out = np.zeros((rows,) + value.shape)
        out[np.flatnonzero(cs.col[:rows] == c)] = lane[0][:, c]
        return out
    e1 = full(x._e1, real.k1)
    e2 = e1 if x._e2 is x._e1 else full(x._e2, real.k2)
    e12 = None
    if x._e12 is not None:
        e12 = np.zeros((real.npairs,) + value.shape)
        d = cs.diagonal
        e12[d[cs.col[real.ip[d]] == c]] = x._e12[0][:, c]
    return link_view(x, _new(value, e1, e2, e12, real))


def _column_index(x, index):
    """``x[:, c]`` (``c`` an int) of a 2-D array: its full-lane column; else NotImplemented."""
    if type(index) is not tuple or len(index) != 2 or x._value.ndim != 2 or type(index[0]) is not slice \
            or index[0] != _ALL or not isinstance(index[1], (int, np.integer)) \
            or isinstance(index[1], (bool, np.bool_)):
        return NotImplemented
    m = x._value.shape[1]
    c = int(index[1])
    if not -m <= c < m:
        return NotImplemented  # NumPy's IndexError, from the expanded array
    return _column(x, c % m)


def _prod_columns(x, axis=None, dtype=None, out=None, keepdims=False, **kw):
    """``np.prod(x, axis=-1)`` of a 2-D array with column lanes and at most 8 columns.

    Up to 4 columns with finite values: the product rule in closed form.  With
    ``q_S`` the product of the columns not in ``S`` (in order)::

        e1[k]       = q_{c_k} d1[:, c_k]
        e12[(k, k)] = q_{c_k} d12[:, c_k]
        e12[(k, l)] = q_{c_k, c_l} d1[:, c_k] d1[:, c_l]      (c_k != c_l)

    (a zero lane entry gives 0 whatever the finite factor, as in the kernels).
    Otherwise the full-lane columns are multiplied in NumPy's order ``((x0 x1) x2) …``.
    """
    if kw or keepdims or out is not None or dtype not in (None, float, np.float64) or x._value.ndim != 2 \
            or axis not in (1, -1, (1,), (-1,)) or not 1 <= x._value.shape[1] <= 8:
        return NotImplemented
    v = x._value
    m = v.shape[1]
    if m > 4 or not np.isfinite(v).all():
        r = _column(x, 0)
        for c in range(1, m):
            r = r * _column(x, c)
        return r
    cs = x._ctx.columns
    real, col = cs.ctx, cs.col
    cols = [v[:, c] for c in range(m)]
    value = cols[0].copy()
    for c in range(1, m):
        value = value * cols[c]
    others: dict = {}

    def q(skip):  # the product of the other columns, in order; None for none
        key = tuple(sorted(set(skip)))
        if key not in others:
            r = None
            for c in range(m):
                if c not in key:
                    r = cols[c] if r is None else r * cols[c]
            others[key] = r
        return others[key]

    def scaled(factor, lane):
        return lane.copy() if factor is None else factor * lane

    def first(lane, rows):
        if lane is None:
            return None
        return np.stack([scaled(q((col[k],)), lane[0][:, col[k]]) for k in range(rows)]) if rows else \
            np.zeros((0,) + value.shape)
    e1 = first(x._e1, real.k1)
    e2 = e1 if x._e2 is x._e1 else first(x._e2, real.k2)
    e12 = None
    if x._e12 is not None or (e1 is not None and e2 is not None):
        e12 = np.zeros((real.npairs,) + value.shape)
        for p_ in range(real.npairs):
            i, j = real.ip[p_], real.jp[p_]
            ci, cj = col[i], col[j]
            if ci == cj:
                if x._e12 is not None:
                    e12[p_] = scaled(q((ci,)), x._e12[0][:, ci])
            else:
                e12[p_] = scaled(q((ci, cj)), x._e1[0][:, ci] * x._e2[0][:, cj])
    return _new(value, e1, e2, e12, real)


_ALL = slice(None)


def compact_call(impl, args: tuple, kwargs: dict):
    """Run ``impl`` on operands of which some have column lanes, or expand them.

    Returns ``NotImplemented`` (after expanding every such operand in place) when
    ``impl`` cannot keep them; the caller then runs it as usual.
    """
    if impl is _IMPL.apply_ufunc and not kwargs and _elementwise(args):
        return impl(*args)
    if _reads_element(impl, args, kwargs):
        return impl(*args, **kwargs)  # (element t's lanes map as the element does)
    x = args[0] if args else None
    if type(x) is HyperDual and x._ctx is not None and x._ctx.columns is not None:
        result = NotImplemented
        if impl is FUNCTIONS.get(np.sum) and len(args) == 1:
            result = _sum_columns(x, **kwargs)
        elif impl is FUNCTIONS.get(np.prod) and len(args) == 1:
            result = _prod_columns(x, **kwargs)
        elif impl is _IMPL.getitem and len(args) == 2 and not kwargs:
            result = _column_index(x, args[1])
        if result is not NotImplemented:
            return result
    _densify_all(args)
    _densify_all(kwargs)
    return NotImplemented


_IMPL.columns = compact_call
_IMPL.densify_columns = densify
