"""The chain rule: lifts every entry of the derivative table onto lanes.

``apply_ufunc`` is what ``np.sin(x)``, ``x * y``, ``2 ** x`` … end up in.
For a unary ``y = g(x)`` with ``g1 = g'(x)``, ``g2 = g''(x)``::

    y.e1  = g1 * x.e1          (NumPy broadcast: seeds lead, values trail)
    y.e2  = g1 * x.e2          (the same array when x.e2 is x.e1)
    y.e12 = g1 * x.e12 + g2 * x.e1[ip] * x.e2[jp]     (Numba, fused)

Binary functions use the binary chain rule of :mod:`hyperdual.execute.kernels`;
with one constant operand they reduce to the unary rule with the partials of
the other side.  Linear ufuncs (add, subtract, negative, …) act lane by lane;
selections (maximum, …) pick lanes by value.
"""
from __future__ import annotations

import numpy as np

from . import lanes, threads
from .lanes import _Choice, is_zero, negated as _negated, scale_lane as _scale
from .pool import POOL_MIN_ENTRIES, empty as _empty
from .array import _IMPL, _PACKED_OPS, FUNCTIONS, HyperDual, as_float_array
from .context import join_contexts
from ..ops.rules import BINARY, SELECT, UNARY, VALUE_ONLY, ZERO_DERIVATIVE, constant_power, provide, ufunc_name

__all__ = ["apply_ufunc", "operand", "lane_to", "UFUNC_METHODS", "unsupported_ufunc"]

_new = HyperDual._new
_EMPTY2 = np.zeros((0, 0))
_EMPTY1 = np.zeros(0)


def operand(v):
    """``(value, e1, e2, e12, ctx)`` of a HyperDual or a constant."""
    if type(v) is HyperDual:
        return v._value, v._e1, v._e2, v._e12, v._ctx
    return as_float_array(v, "operand"), None, None, None, None


def value_of(v):
    return v._value if type(v) is HyperDual else v


def lane_to(lane, shape):
    """A lane ``(K, *s)`` broadcast (as a view) to ``(K, *shape)``; None stays None."""
    if lane is None:
        return None
    if lane.shape[1:] == shape:
        return lane
    s = lane.shape[1:]
    if len(s) < len(shape):
        lane = lane.reshape(lane.shape[:1] + (1,) * (len(shape) - len(s)) + s)
    return np.broadcast_to(lane, lane.shape[:1] + shape)


def _flat_lane(lane, shape, n):
    """A lane as a C-contiguous ``(K, n)`` array (a zero-row array when absent)."""
    if lane is None:
        return _EMPTY2
    if lane.ndim == 2 and lane.shape[1] == n and len(shape) == 1 and lane.flags.c_contiguous:
        return lane
    if lane.shape[1:] != shape:
        lane = lane_to(lane, shape)
    if not lane.flags.c_contiguous:
        lane = np.ascontiguousarray(lane)
    return lane.reshape(lane.shape[0], n)


def _flat_factor(g, shape, n):
    """A derivative factor as a length-n array, length 1 for a constant, 0 for zero."""
    if g is None:
        return _EMPTY1
    if type(g) is np.ndarray:
        if g.shape == shape:
            if g.ndim == 1 and g.flags.c_contiguous:
                return g
            return g.reshape(n) if g.flags.c_contiguous else np.ascontiguousarray(g).reshape(n)
        if g.size == 1:
            return g.reshape(1).astype(np.float64, copy=False)
        return np.ascontiguousarray(np.broadcast_to(g, shape), dtype=np.float64).reshape(n)
    return lanes.constant(g)


def _out(wanted, rows, shape, n):
    """An output lane ``(rows, *shape)`` and its flat view; zero rows when not wanted."""
    if not wanted:
        return None, _EMPTY2
    out = _empty((rows,) + shape, rows * n)
    return out, (out if len(shape) == 1 else out.reshape(rows, n))


def unsupported_ufunc(ufunc):
    name = ufunc_name(ufunc)
    return TypeError(
        f"hyperdual does not support the ufunc {name} on HyperDual arrays. "
        f"Apply it to `x.value` if no derivative is needed, or register its derivatives with "
        f"hyperdual.register_ufunc({name}, rule).")


# ---- entry point --------------------------------------------------------------
def apply_ufunc(ufunc, *inputs):
    if len(inputs) == 1:  # the common cases first: np.sin(x), x * y
        rule = UNARY.get(ufunc)
        if rule is not None:
            return unary(ufunc, inputs[0], rule)
    elif ufunc is np.multiply and type(inputs[0]) is HyperDual and type(inputs[1]) is HyperDual:
        return _binary_both(ufunc, None, *inputs)  # (the product rule needs no table entry)
    if ufunc in VALUE_ONLY:
        return ufunc(*(value_of(x) for x in inputs))
    if ufunc is np.matmul:
        return FUNCTIONS[np.matmul](*inputs)  # (a pattern pass stops before this: hyperdual.plan.pattern.check)
    if ufunc.nin == 1:  # (the table's own unary functions were handled above)
        (x,) = inputs
        if ufunc in ZERO_DERIVATIVE:
            return _new(ufunc(x._value), None, None, None, x._ctx)
        if provide(ufunc):  # scipy.special's rules, registered on first use
            return apply_ufunc(ufunc, *inputs)
        raise unsupported_ufunc(ufunc)
    if ufunc.nin == 2:
        a, b = inputs
        if ufunc is np.add or ufunc is np.subtract:
            return add(a, b, ufunc is np.subtract)
        if ufunc in SELECT:
            return select(ufunc, a, b)
        rule = BINARY.get(ufunc)
        if rule is not None:
            return binary(ufunc, rule, a, b)
        if provide(ufunc):
            return apply_ufunc(ufunc, *inputs)
    raise unsupported_ufunc(ufunc)


# ---- unary ---------------------------------------------------------------------
def unary(ufunc, x, rule):
    a = x._value
    y = ufunc(a)
    w = None if x._win is None else _factor_window(x, y)
    if w is not None:  # the derivatives are needed on the window only
        out = _IMPL.window_lift(y, x, *rule(a[w[0]:w[1]], y[w[0]:w[1]]), on_window=True)
        if out is not None:
            return out
    g1, g2 = rule(a, y)
    return lift(y, x, g1, g2)


def _factor_window(x, y):
    """The window of ``x`` when ``y`` is elementwise in it (same 1-D shape): factors
    ``g'``, ``g''`` are then computed on the window's elements only."""
    if x._win is not None and type(y) is np.ndarray and y.ndim == 1 and y.shape == x._value.shape:
        return x._win
    return None


def lift(y, x, g1, g2):
    """The chain rule: ``y = g(x)`` with ``g1 = g'(x)`` and ``g2 = g''(x)`` (None: zero)."""
    if type(y) is not np.ndarray:
        y = np.asarray(y)
    e1, e2 = x._e1, x._e2
    if e1 is not None and e2 is not None and y.ndim == 1 and x._win is None:
        out = _lift_1d(y, x, e1, e2, g1, g2)
        if out is not None:
            return out
    if x._win is not None:
        out = _IMPL.window_lift(y, x, g1, g2)
        if out is not None:
            return out
    e1, e2, e12, ctx = x._e1, x._e2, x._e12, x._ctx
    if e1 is None and e2 is None and e12 is None:
        return _new(y, None, None, None, ctx)
    shape, n = y.shape, y.size
    shared = e2 is e1
    cross = g2 is not None and e1 is not None and e2 is not None
    n1, f1 = _out(e1 is not None, ctx.k1, shape, n)
    n2, f2 = _out(e2 is not None and not shared, ctx.k2, shape, n)
    n12, f12 = _out(e12 is not None or cross, ctx.npairs, shape, n)
    fe1 = _flat_lane(e1, shape, n)  # (once: e2 is often the same array)
    if ctx.pattern is not None and g2 is not None and e1 is not None:
        ctx.pattern.add(fe1)  # g'' x.e1[i] x.e2[j] meets i and j here
    lanes.choose(n * (f1.shape[0] + f2.shape[0] + f12.shape[0])).chain(
                        y.reshape(n), _flat_factor(g1, shape, n), _flat_factor(g2, shape, n),
                        fe1, fe1 if shared else _flat_lane(e2, shape, n), _flat_lane(e12, shape, n),
                        ctx.ip, ctx.jp, f1, f2, f12)
    return _new(y, n1, n1 if shared else n2, n12, ctx)


def _lift_1d(y, x, e1, e2, g1, g2):
    """:func:`lift` for the common case, with fewer checks: a 1-D elementwise result
    of an input with both first-order lanes (``e2`` often ``e1``: every pass of a
    Hessian), no pattern pass.  None when another case applies."""
    ctx = x._ctx
    e12 = x._e12
    if ctx.pattern is not None or y.shape != x._value.shape:
        return None
    shared = e2 is e1
    if not x._flat:  # lanes of the value's shape, contiguous
        shape = y.shape
        if e1.shape[1:] != shape or e2.shape[1:] != shape or (e12 is not None and e12.shape[1:] != shape):
            return None
        e1 = np.ascontiguousarray(e1)
        e2 = e1 if shared else np.ascontiguousarray(e2)
        e12 = None if e12 is None else np.ascontiguousarray(e12)
    n = y.shape[0]
    k1, k2 = e1.shape[0], e2.shape[0]
    rows = 0 if e12 is None and g2 is None else ctx.ip.shape[0]
    packed, o1, o2, o12 = _outputs(n, k1, 0 if shared else k2, rows)
    kernels = _Choice.kernels if _Choice.ready else lanes.choose(n * (k1 + o2.shape[0] + rows))
    f1 = g1 if type(g1) is np.ndarray and g1.shape == y.shape and g1.flags.c_contiguous \
        else _flat_factor(g1, y.shape, n)
    f2 = g2 if type(g2) is np.ndarray and g2.shape == y.shape and g2.flags.c_contiguous \
        else _flat_factor(g2, y.shape, n)
    args = (y, f1, f2, e1, e2, _EMPTY2 if e12 is None else e12, ctx.ip, ctx.jp, o1, o2, o12)
    if (k1 + o2.shape[0] + rows) * n < threads.MIN_ENTRIES or not _Choice.ready \
            or not threads.split_call(_Choice.ranges.chain, args, n, k1 + o2.shape[0] + rows):
        kernels.chain(*args)
    return flat(y, o1, o1 if shared else o2, None if rows == 0 else o12, ctx, packed)


def _outputs(n, k1, k2s, rows):
    """Kernel outputs ``(packed, o1, o2, o12)`` for ``k1``, ``k2s`` (0: ``e2`` is ``e1``) and
    ``rows`` lane rows of length ``n``: views of one packed buffer when small (the
    layout of :mod:`hyperdual.execute.packed`, so the result can be packed without a copy), else
    separate arrays from :mod:`hyperdual.execute.pool`; an absent ``o2`` has zero rows."""
    total = (k1 + k2s + rows) * n
    if total < POOL_MIN_ENTRIES:
        packed = np.empty((k1 + k2s + rows, n))
        r = k1 + k2s
        return packed, packed[:k1], packed[k1:r] if k2s else _EMPTY2, packed[r:]
    return (None, _empty((k1, n), k1 * n), _empty((k2s, n), k2s * n) if k2s else _EMPTY2,
            _empty((rows, n), rows * n))


def flat(y, e1, e2, e12, ctx, packed=None):
    """A HyperDual marked *flat*: its value is a 1-D C-contiguous array ``(n,)``, its
    lanes (those present) C-contiguous ``(K, n)`` arrays, and it has no window.  The
    packed paths here then skip their shape and layout checks.  Lanes are never written
    in place, so the mark stays true (``__setitem__`` replaces it with the new one's)."""
    out = _object_new(HyperDual)  # (HyperDual._new inlined: y is a 1-D ndarray here)
    out._value, out._e1, out._e2, out._e12 = y, e1, e2, e12
    out._ctx = ctx
    out._node = out._base = out._views = out._win = None
    out._flat = True
    return _PACKED_OPS.mark(out, packed)  # (hyperdual.execute.packed.promote)


_object_new = object.__new__


# ---- linear and selection ----------------------------------------------------------
def _combine(la, lb, shape, negate_b):
    """``la ± lb`` for lanes of operands broadcast to ``shape`` (None: zero)."""
    if lb is None:
        return lane_to(la, shape) if la is not None else None
    if negate_b:
        lb = _negated(lb)
    if la is None:
        return lane_to(lb, shape)
    nd = len(shape)
    return _align(la, nd) + _align(lb, nd)


def _align(lane, nd):
    s = lane.shape[1:]
    if len(s) < nd:
        return lane.reshape(lane.shape[:1] + (1,) * (nd - len(s)) + s)
    return lane


def _lane_sum(la, lb, negate_b):
    """``la ± lb`` of two lanes of equal dimensions (None: zero)."""
    if lb is None:
        return la
    if la is None:
        return _negated(lb) if negate_b else lb
    return la - lb if negate_b else la + lb


def _add_same(a, b, negate_b):
    """``a ± b`` for the common case, with fewer checks: two HyperDuals of one shape
    with unwindowed lanes of full dimensions, or one and a Python number (None when
    another case applies)."""
    ta, tb = type(a) is HyperDual, type(b) is HyperDual
    if ta and tb:
        if a._win is not None or b._win is not None or a._value.shape != b._value.shape:
            return None
        nd = a._value.ndim + 1
        for lane in (a._e1, a._e2, a._e12, b._e1, b._e2, b._e12):
            if lane is not None and lane.ndim != nd:
                return None
        ctx = a._ctx if a._ctx is b._ctx else join_contexts(a._ctx, b._ctx)
        e1 = _lane_sum(a._e1, b._e1, negate_b)
        e2 = e1 if (a._e2 is a._e1 and b._e2 is b._e1) else _lane_sum(a._e2, b._e2, negate_b)
        y = a._value - b._value if negate_b else a._value + b._value
        out = _new(y, e1, e2, _lane_sum(a._e12, b._e12, negate_b), ctx)
        if a._flat and b._flat:
            out._flat = True
            _PACKED_OPS.mark(out)
        return out
    t = type(a)
    if tb and (t is float or t is int or t is np.float64) and b._win is None:  # c ± x
        if not negate_b:
            out = _new(a + b._value, b._e1, b._e2, b._e12, b._ctx)
        else:
            e1, e2, e12 = b._e1, b._e2, b._e12
            n1 = None if e1 is None else _negated(e1)
            n2 = n1 if e2 is e1 else (None if e2 is None else _negated(e2))
            out = _new(a - b._value, n1, n2, None if e12 is None else _negated(e12), b._ctx)
        if b._flat:
            out._flat = True
            _PACKED_OPS.mark(out)
        return out
    return None


def add(a, b, negate_b=False):
    out = _add_same(a, b, negate_b)
    if out is not None:
        return out
    if (type(a) is HyperDual and a._win is not None) or (type(b) is HyperDual and b._win is not None):
        out = _IMPL.window_add(a, b, negate_b)
        if out is not None:
            return out
    av, a1, a2, a12, actx = operand(a)
    bv, b1, b2, b12, bctx = operand(b)
    ctx = join_contexts(actx, bctx)
    y = np.asarray(av - bv if negate_b else av + bv)
    shape = y.shape
    e1 = _combine(a1, b1, shape, negate_b)
    if a2 is a1 and b2 is b1:
        e2 = e1
    else:
        e2 = _combine(a2, b2, shape, negate_b)
    e12 = _combine(a12, b12, shape, negate_b)
    return _new(y, e1, e2, e12, ctx)


def select(ufunc, a, b):
    """Elementwise selection by value: the chosen operand's lanes pass through."""
    av, a1, a2, a12, actx = operand(a)
    bv, b1, b2, b12, bctx = operand(b)
    ctx = join_contexts(actx, bctx)
    y = np.asarray(ufunc(av, bv))
    take_a = SELECT[ufunc](av, bv)
    shape = y.shape
    nd = len(shape)

    def pick(la, lb):
        if la is None and lb is None:
            return None
        la = 0.0 if la is None else _align(la, nd)
        lb = 0.0 if lb is None else _align(lb, nd)
        return np.where(take_a, la, lb)

    e1 = pick(a1, b1)
    e2 = e1 if (a2 is a1 and b2 is b1) else pick(a2, b2)
    return _new(y, e1, e2, pick(a12, b12), ctx)


# ---- binary ----------------------------------------------------------------------
def scale(x, c, y):
    """``x * c`` for a constant ``c``: every lane is scaled (linear, no kernel), to the bits
    of the table's ``(c, None)`` through the chain rule (:func:`hyperdual.execute.lanes.scale_lane`;
    a scalar zero leaves no lanes, as a zero factor does there)."""
    y = np.asarray(y)
    if is_zero(c):
        return _new(y, None, None, None, x._ctx)
    if x._win is not None:
        out = _IMPL.window_scale(x, c, y)  # (None, with x expanded, if y does not keep it)
        if out is not None:
            return out
    nd = y.ndim
    e1, e2, e12 = x._e1, x._e2, x._e12
    if x._flat and (type(c) is not np.ndarray or c.ndim == 0):  # a scalar: lanes stay (K, n)
        n1 = None if e1 is None else _scale(e1, c, y)
        n2 = n1 if e2 is e1 else (None if e2 is None else _scale(e2, c, y))
        return flat(y, n1, n2, None if e12 is None else _scale(e12, c, y), x._ctx)
    n1 = None if e1 is None else _scale(_align(e1, nd), c, y)
    n2 = n1 if e2 is e1 else (None if e2 is None else _scale(_align(e2, nd), c, y))
    return _new(y, n1, n2, None if e12 is None else _scale(_align(e12, nd), c, y), x._ctx)


def _scalar_power(x, c):
    """``x ** c`` for a constant real scalar ``c`` (the common case, kept cheap)."""
    a = x._value
    if c == 0.0:
        return _new(np.ones_like(a), None, None, None, x._ctx)
    y = a * a if c == 2.0 else a.copy() if c == 1.0 else np.asarray(np.power(a, c))
    w = None if x._win is None else _factor_window(x, y)
    s = a if w is None else a[w[0]:w[1]]  # the derivatives are needed on the window only
    if c == 2.0:
        g1, g2 = UNARY[np.square](s, None)
    elif c == 1.0:
        g1, g2 = 1.0, None
    else:
        g1, g2 = constant_power(s, c)
    if w is not None:
        return _IMPL.window_lift(y, x, g1, g2, on_window=True)
    return lift(y, x, g1, g2)


def binary(ufunc, rule, a, b):
    a_dual = type(a) is HyperDual
    b_dual = type(b) is HyperDual
    if not b_dual:
        bv = as_float_array(b, "operand")
        if (ufunc is np.power or ufunc is np.float_power) and bv.ndim == 0:
            return _scalar_power(a, float(bv))
        if ufunc is np.multiply:
            return scale(a, bv, a._value * bv)
        if ufunc is np.true_divide:
            return scale(a, 1.0 / bv, a._value / bv)
        av = a._value
        y = np.asarray(ufunc(av, bv))
        w = _factor_window(a, y)
        if w is not None and (bv.size == 1 or bv.shape == y.shape):
            lo, hi = w
            out = _IMPL.window_lift(y, a, *rule.dx(av[lo:hi], bv if bv.size == 1 else bv[lo:hi], y[lo:hi]),
                               on_window=True)
            if out is not None:
                return out
        g1, g2 = rule.dx(av, bv, y)
        return lift(y, a, g1, g2)
    if not a_dual:
        av = as_float_array(a, "operand")
        if ufunc is np.multiply:
            return scale(b, av, av * b._value)
        bv = b._value
        y = np.asarray(ufunc(av, bv))
        w = _factor_window(b, y)
        if w is not None and (av.size == 1 or av.shape == y.shape):
            lo, hi = w
            out = _IMPL.window_lift(y, b, *rule.dy(av if av.size == 1 else av[lo:hi], bv[lo:hi], y[lo:hi]),
                               on_window=True)
            if out is not None:
                return out
        g1, g2 = rule.dy(av, bv, y)
        return lift(y, b, g1, g2)
    return _binary_both(ufunc, rule, a, b)


def _product_1d(a, b, ctx):
    """``a * b`` (value and lanes) for the common case, with fewer checks: 1-D operands of
    one shape with every first-order lane present (``e2`` may be ``e1``: then on both),
    no windows, no pattern pass.  None when another case applies."""
    a1, b1, a2, b2 = a._e1, b._e1, a._e2, b._e2
    if a1 is None or b1 is None or a2 is None or b2 is None or ctx.pattern is not None \
            or a._win is not None or b._win is not None:
        return None
    shared = a2 is a1 and b2 is b1
    if not shared and (a2 is a1 or b2 is b1):
        return None
    av, bv = a._value, b._value
    a12, b12 = a._e12, b._e12
    shape = av.shape
    if not (a._flat and b._flat and bv.shape == shape):
        if len(shape) != 1 or bv.shape != shape:
            return None
        for lane in (a1, a2, a12, b1, b2, b12):
            if lane is not None and lane.shape[1:] != shape:
                return None
        av, bv = np.ascontiguousarray(av), np.ascontiguousarray(bv)
        a1, b1 = np.ascontiguousarray(a1), np.ascontiguousarray(b1)
        a2, b2 = (a1, b1) if shared else (np.ascontiguousarray(a2), np.ascontiguousarray(b2))
        a12 = None if a12 is None else np.ascontiguousarray(a12)
        b12 = None if b12 is None else np.ascontiguousarray(b12)
    n = shape[0]
    k1, k2, npairs = a1.shape[0], a2.shape[0], ctx.ip.shape[0]
    packed, o1, o2, o12 = _outputs(n, k1, 0 if shared else k2, npairs)
    rows = k1 + o2.shape[0] + npairs
    kernels = _Choice.kernels if _Choice.ready else lanes.choose(n * rows)
    if _Choice.ready and a12 is not None and b12 is not None and threads.will_split(n, rows):
        # (product_range needs every lane present) the value in the same threaded pass, into
        # a fresh array: the lanes' buffers stay within the pool's limit
        y = np.empty(n)
        odd = threads.split_call(_Choice.ranges.product, (y, av, bv, a1, a2, a12, b1, b2, b12, ctx.ip, ctx.jp,
                                                     o1, o2, o12, True), n, rows)
        if odd is None or any(odd):  # (None: the thread count changed meanwhile)
            np.multiply(av, bv, out=y)  # NumPy's value (the same bits), with its warnings
            if odd is None:
                kernels.product(y, av, bv, a1, a2, a12, b1, b2, b12, ctx.ip, ctx.jp, o1, o2, o12)
    else:
        y = np.multiply(av, bv)
        kernels.product(y, av, bv, a1, a2, _EMPTY2 if a12 is None else a12, b1, b2,
                   _EMPTY2 if b12 is None else b12, ctx.ip, ctx.jp, o1, o2, o12)
    return flat(y, o1, o1 if shared else o2, o12, ctx, packed)


def _binary_both(ufunc, rule, a, b):
    av, bv = a._value, b._value
    ctx = join_contexts(a._ctx, b._ctx)
    if ufunc is np.multiply and ctx is not None:
        out = _product_1d(a, b, ctx)
        if out is not None:
            return out
    y = ufunc(av, bv)
    if type(y) is not np.ndarray:
        y = np.asarray(y)
    if ctx is None:
        return _new(y, None, None, None, None)
    win = None
    if a._win is not None or b._win is not None:
        found = _IMPL.window_operands(a, b, y)  # (None, with both expanded, if y cannot keep one)
        if found is not None:
            win, (a1, a2, a12), (b1, b2, b12) = found
    if win is None:
        a1, a2, a12 = a._e1, a._e2, a._e12
        b1, b2, b12 = b._e1, b._e2, b._e12
        shape, n, yw = y.shape, y.size, y
    else:
        lo, hi = win
        full = y.shape[0]
        shape, n, yw = (hi - lo,), hi - lo, np.ascontiguousarray(y[lo:hi])
        av = av[lo:hi] if av.shape == (full,) else av
        bv = bv[lo:hi] if bv.shape == (full,) else bv
    product = ufunc is np.multiply
    if not product:
        gx, gxx = rule.dx(av, bv, yw)
        gy, gyy = rule.dy(av, bv, yw)
        gxy = rule.dxy(av, bv, yw)
    shared = a2 is a1 and b2 is b1
    has1 = a1 is not None or b1 is not None
    has2 = a2 is not None or b2 is not None
    n1, f1 = _out(has1, ctx.k1, shape, n)
    n2, f2 = _out(has2 and not shared, ctx.k2, shape, n)
    n12, f12 = _out(a12 is not None or b12 is not None or (has1 and has2), ctx.npairs, shape, n)
    work = n * (f1.shape[0] + f2.shape[0] + f12.shape[0])
    fa1, fb1 = _flat_lane(a1, shape, n), _flat_lane(b1, shape, n)
    lanes_in = (fa1, fa1 if a2 is a1 else _flat_lane(a2, shape, n), _flat_lane(a12, shape, n),
                fb1, fb1 if b2 is b1 else _flat_lane(b2, shape, n), _flat_lane(b12, shape, n))
    if ctx.pattern is not None and (product or gxx is not None or gxy is not None or gyy is not None):
        ctx.pattern.add(lanes_in[0] if a1 is not None else None,
                        lanes_in[3] if b1 is not None else None)  # second-order terms meet both
    if product:
        lanes.choose(work).product(yw.reshape(n), _flat_factor(av, shape, n), _flat_factor(bv, shape, n),
                              *lanes_in, ctx.ip, ctx.jp, f1, f2, f12)
    else:
        lanes.choose(work).binary(yw.reshape(n), _flat_factor(gx, shape, n), _flat_factor(gy, shape, n),
                              _flat_factor(gxx, shape, n), _flat_factor(gxy, shape, n),
                              _flat_factor(gyy, shape, n), *lanes_in, ctx.ip, ctx.jp, f1, f2, f12)
    out = _new(y, n1, n1 if shared else n2, n12, ctx)
    out._win = win
    return out


# ---- ufunc methods that are reductions -----------------------------------------------
def _reduce(name):
    def run(x, axis=0, dtype=None, out=None, keepdims=False, **kw):
        if kw:
            raise TypeError(f"hyperdual does not support the arguments {sorted(kw)} of a ufunc reduction")
        return getattr(np, name)(x, axis=axis, keepdims=keepdims)
    run.__name__ = name
    return run


_IMPL.apply_ufunc = apply_ufunc
#: ``x op c`` / ``c op x`` with a Python number ``c``: what :func:`apply_ufunc` would do
#: for these, without its dispatch (``x ± c`` keeps the lanes: see ``HyperDual._binop``).
_IMPL.number_ops = {
    (np.multiply, False): lambda x, c: scale(x, c, x._value * c),
    (np.multiply, True): lambda x, c: scale(x, c, c * x._value),
    (np.true_divide, False): lambda x, c: scale(x, 1.0 / c, x._value / c),
    (np.power, False): _scalar_power,
    (np.subtract, True): lambda x, c: add(c, x, True),
}

UFUNC_METHODS = {
    (np.add, "reduce"): _reduce("sum"),
    (np.multiply, "reduce"): _reduce("prod"),
    (np.maximum, "reduce"): _reduce("max"),
    (np.minimum, "reduce"): _reduce("min"),
    (np.add, "accumulate"): lambda x, axis=0, **kw: np.cumsum(x, axis=axis),
}
_IMPL.ufunc_methods = UFUNC_METHODS
