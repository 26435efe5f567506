"""The frontier of a record: where a scalar function stops being nonlinear (a planner step).

Most objectives are sums of *elements*: ``f(x) = Σ_k w_k t_k(x) + (terms linear
in x)``, where ``t_k`` are the elements of arrays computed nonlinearly and the
rest of the program — sums, means, slices, reshapes, differences, scaling by
constants — is linear.  Walking the record (:class:`hyperdual.trace.record.Program`)
back from the output through those linear steps (the *tail*) reaches the
*frontier*: the nonlinear arrays whose values reach the output only linearly.
Then

.. math::

    H = \\sum_{F \\in \\text{frontier}} \\sum_k w_{F,k} \\, \\nabla^2 F_k,
    \\qquad w_F = \\partial f / \\partial F,

the weights ``w_F`` being constants, found by one value-only sweep of the tail's
transposes from ``∂f/∂f = 1`` (:func:`find`).  Each element's Hessian
``∇²F_k`` is nonzero only on its *support* (the inputs it depends on), which
:func:`supports` propagates through the record as index sets — structurally, so
a derivative that happens to vanish at the point never hides an input.  With
the supports :mod:`hyperdual.plan.colour` colours the inputs, and one pass seeded
with the colour indicators, run up to the frontier, gives every element's
Hessian (:mod:`hyperdual.plan.recover`).

The steps the tail follows, and their transposes:

* ``+``, ``-``, unary ``-``, ``*`` and ``/`` by constants (with broadcasting);
* ``np.sum`` and ``np.mean`` over any axes;
* the steps that only *move* elements (indexing, reshapes, transposes,
  ``broadcast_to``, ``repeat``, ``flip`` …): the transpose adds each output
  element's weight back to the element it came from, found by running the step on
  the element numbers.

Any other step ends the tail: the frontier is then closer to the output, with
larger supports and more colours, never a wrong number.
"""
from __future__ import annotations

import math

import numpy as np

from ..execute.array import _IMPL, FUNCTIONS
from ..ops.registry import ELEMENTWISE, SELECTION, ZERO, ufunc_kind
from .colour import distinct

__all__ = ["Frontier", "Support", "find", "supports", "Unsupported", "MOVERS"]


class Unsupported(Exception):
    """A step of the record the structure analysis cannot follow."""


#: NumPy functions that only move (select, repeat) elements of their first argument:
#: running them on element numbers tells which element each output element is.
MOVERS = frozenset((np.reshape, np.ravel, np.squeeze, np.transpose, np.swapaxes, np.moveaxis,
                    np.expand_dims, np.copy, np.broadcast_to, np.atleast_1d, np.atleast_2d,
                    np.atleast_3d, np.repeat, np.tile, np.take, np.diagonal, np.flip, np.roll))
_REDUCERS = (np.sum, np.mean)
_LINEAR_UFUNCS = frozenset((np.add, np.subtract, np.negative, np.positive))
_SCALE_UFUNCS = frozenset((np.multiply, np.true_divide))

_FUNC_OF: dict = {}  # implementation -> NumPy function (FUNCTIONS inverted, when it changes)


def _func_of(impl):
    if _FUNC_OF.get("size") != len(FUNCTIONS):  # (functions registered since: map again)
        _FUNC_OF.clear()
        _FUNC_OF.update({v: k for k, v in FUNCTIONS.items()})
        _FUNC_OF["size"] = len(FUNCTIONS)
    return _FUNC_OF.get(impl)


# ---- what a step is ------------------------------------------------------------------------
def _labels(shape) -> np.ndarray:
    return np.arange(math.prod(shape), dtype=np.int64).reshape(shape)


def _moved(call, shape):
    """For a step that only moves the elements of its one recorded operand (of ``shape``):
    the operand element of each output element (an int array of the output's shape);
    None for any other step."""
    impl, args, kwargs, front, refs = call
    if refs is None or len(refs) != 1 or refs[0][0] != 0:
        return None
    if impl is _IMPL.getitem:
        index = args[1]
        if _has_arrays_of_floats(index):
            return None
        return np.asarray(_labels(shape)[index])
    func = _func_of(impl)
    if func not in MOVERS:
        return None
    kw = {k: v for k, v in kwargs.items() if not (k == "out" and v is None)}
    return np.asarray(func(_labels(shape), *args[1:], **kw))


def _has_arrays_of_floats(index) -> bool:
    items = index if type(index) is tuple else (index,)
    return any(isinstance(i, np.ndarray) and i.dtype.kind not in "biu" for i in items)


def _reduced(call, shape):
    """``(axes, keepdims, mean)`` of ``np.sum``/``np.mean`` of the one recorded operand
    (of ``shape``), or None."""
    impl, args, kwargs, front, refs = call
    func = _func_of(impl)
    if func not in _REDUCERS or refs is None or len(refs) != 1 or refs[0][0] != 0:
        return None
    if len(args) > 2 or set(kwargs) - {"axis", "keepdims", "out", "dtype"} \
            or kwargs.get("out") is not None or kwargs.get("dtype") not in (None, float, np.float64):
        return None
    axis = args[1] if len(args) > 1 else kwargs.get("axis")
    ndim = len(shape)
    if axis is None:
        axes = tuple(range(ndim))
    else:
        axes = tuple(sorted(a % ndim if ndim else 0 for a in (axis if type(axis) is tuple else (axis,))))
    return axes, bool(kwargs.get("keepdims", False)), func is np.mean


def _ufunc_step(call):
    """``(ufunc, operands)`` of an ``apply_ufunc`` step with positional operands, or None."""
    impl, args, kwargs, front, refs = call
    if impl is not _IMPL.apply_ufunc or kwargs or refs is None:
        return None
    return args[0], args[1:]


def _unbroadcast(g: np.ndarray, shape) -> np.ndarray:
    """The sum of ``g`` over the axes that broadcasting added or stretched to reach its shape."""
    extra = g.ndim - len(shape)
    if extra:
        g = g.sum(axis=tuple(range(extra)))
    stretched = tuple(k for k, s in enumerate(shape) if s == 1 and g.shape[k] != 1)
    if stretched:
        g = g.sum(axis=stretched, keepdims=True)
    return g


def _transpose(call, g, shapes, reads):
    """The weights each recorded operand of a linear step gets from its output's ``g``:
    ``[(slot, weights)]``; None when the step is not one the tail follows."""
    uf = _ufunc_step(call)
    if uf is not None:
        ufunc, ops = uf
        if ufunc in _LINEAR_UFUNCS:
            out = []
            for pos, slot in reads:
                k = pos - 1
                sign = -1.0 if (ufunc is np.subtract and k == 1) or ufunc is np.negative else 1.0
                out.append((slot, _unbroadcast(g * sign if sign < 0 else g, shapes[slot])))
            return out
        if ufunc in _SCALE_UFUNCS and len(reads) == 1 and len(ops) == 2:
            pos, slot = reads[0]
            k = pos - 1
            c = ops[1 - k]
            if ufunc is np.true_divide:
                if k != 0:
                    return None  # (c / x is not linear in x)
                return [(slot, _unbroadcast(g / c, shapes[slot]))]
            return [(slot, _unbroadcast(g * c, shapes[slot]))]
        return None
    if reads is None or len(reads) != 1:
        return None
    slot = reads[0][1]
    shape = shapes[slot]
    red = _reduced(call, shape)
    if red is not None:
        axes, keepdims, mean = red
        if not keepdims:
            g = np.expand_dims(g, axes) if axes else g
        if mean:
            g = g / max(1, math.prod(shape[a] for a in axes))
        return [(slot, np.broadcast_to(g, shape))]
    moved = _moved(call, shape)
    if moved is not None:
        size = math.prod(shape)
        back = np.bincount(moved.reshape(-1), weights=np.broadcast_to(g, moved.shape).reshape(-1),
                           minlength=size)
        return [(slot, back.reshape(shape))]
    return None


# ---- the frontier --------------------------------------------------------------------------
class Frontier:
    """The frontier of a scalar record: ``slots`` (the frontier arrays' slots in the
    program), ``weights[slot]`` (``∂f/∂F``, of ``F``'s shape) and ``tail`` (the step
    numbers of the linear tail, which a pass up to the frontier skips)."""

    __slots__ = ("slots", "weights", "tail")

    def __init__(self, slots, weights, tail):
        self.slots, self.weights, self.tail = slots, weights, tail

    def __repr__(self) -> str:
        return f"Frontier(slots={self.slots}, tail={len(self.tail)} steps)"


def find(program) -> Frontier:
    """The frontier of ``program`` (a scalar output), with its weights.

    The tail is grown back from the output: a step joins it when every use of its
    result is by a tail step (or it is the output) and it is a linear step this
    module follows; the operands of tail steps that are not themselves made by tail
    steps form the frontier (inputs used linearly add nothing to the Hessian and are
    left out).  When the output's own step is not linear, the output is the frontier.

    """
    steps, calls, shapes = program.steps, program.calls, program.shapes
    nleaves = len(program.leaves)
    uses = [0] * program.nslots
    for j, step in enumerate(steps):
        for r in program.operands(j):
            uses[r] += 1
    out = program.out
    weights = {out: np.ones(shapes[out])}
    tail_uses = [0] * program.nslots
    tail = set()
    for j in range(len(steps) - 1, -1, -1):
        slot = steps[j][1]
        if slot not in weights:
            continue
        if slot != out and tail_uses[slot] != uses[slot]:
            continue  # a frontier array (also read by a step outside the tail)
        info = calls[j]
        moved = None if info is None else _transpose(info[0], weights[slot], shapes, info[1])
        if moved is None:
            continue  # a frontier array (made by a step the tail does not follow)
        tail.add(j)
        del weights[slot]
        for r, g in moved:
            weights[r] = g if r not in weights else weights[r] + g
            tail_uses[r] += 1
    slots = sorted(s for s in weights if s >= nleaves)
    for s in list(weights):
        if s < nleaves:
            del weights[s]
    return Frontier(slots, {s: np.asarray(weights[s], dtype=np.float64) for s in slots}, tail)

# ---- supports ------------------------------------------------------------------------------
#: Largest number of (element, input) support entries one array may hold before the
#: analysis gives up (a dense function has no useful colouring).
MAX_SUPPORT_ENTRIES = 2 ** 23

_ALONG = (np.sum, np.mean, np.max, np.amax, np.min, np.amin, np.prod, np.var, np.std)
_ELEMENTWISE_FUNCS = (np.where, np.clip)


class Support:
    """Which inputs each element of an array depends on, as CSR rows over the array's
    flat elements: ``indices[indptr[t]:indptr[t + 1]]`` (sorted, distinct)."""

    __slots__ = ("indptr", "indices")

    def __init__(self, indptr: np.ndarray, indices: np.ndarray):
        if indices.size > MAX_SUPPORT_ENTRIES:
            raise Unsupported("the supports are too large for a colouring")
        self.indptr, self.indices = indptr, indices

    @property
    def rows(self) -> int:
        return self.indptr.size - 1

    @classmethod
    def empty(cls, rows: int) -> "Support":
        return cls(np.zeros(rows + 1, dtype=np.int64), np.zeros(0, dtype=np.int64))

    def take(self, rows: np.ndarray) -> "Support":
        """The rows ``rows`` (an int array, repeats allowed)."""
        rows = rows.reshape(-1)
        sizes = np.diff(self.indptr)[rows]
        indptr = np.zeros(rows.size + 1, dtype=np.int64)
        np.cumsum(sizes, out=indptr[1:])
        starts = np.repeat(self.indptr[:-1][rows] - indptr[:-1], sizes)
        return Support(indptr, self.indices[starts + np.arange(indptr[-1], dtype=np.int64)])

    def pairs(self):
        """``(row, input)`` of every entry."""
        return np.repeat(np.arange(self.rows, dtype=np.int64), np.diff(self.indptr)), self.indices


def _merge(rows: int, parts, n: int) -> Support:
    """The union, row by row, of ``(row, input)`` entry lists."""
    r = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
    c = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
    if r.size > MAX_SUPPORT_ENTRIES:
        raise Unsupported("the supports are too large for a colouring")
    codes = distinct(r * n + c)
    r, c = np.divmod(codes, n)
    indptr = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(r, minlength=rows), out=indptr[1:])
    return Support(indptr, c)


def _broadcast_support(sup: Support, shape, out_shape) -> Support:
    if tuple(shape) == tuple(out_shape):
        return sup
    return sup.take(np.broadcast_to(_labels(shape), out_shape))


def _step_support(call, reads, shapes, out_shape, sup, n):
    """The support of a step's result from its operands' supports ``sup[slot]``."""
    size = math.prod(out_shape)
    uf = _ufunc_step(call)
    if uf is not None:
        kind = ufunc_kind(uf[0])
        if kind == ZERO:
            return Support.empty(size)
        if kind not in (ELEMENTWISE, SELECTION):
            raise Unsupported(f"the ufunc {getattr(uf[0], '__name__', uf[0])}")
        parts = [_broadcast_support(sup[s], shapes[s], out_shape) for _, s in reads]
        return parts[0] if len(parts) == 1 else _merge(size, [p.pairs() for p in parts], n)
    if reads is None:
        raise Unsupported("a step with operands in nested arguments")
    impl, args, kwargs = call[0], call[1], call[2]
    func = _func_of(impl)
    if len(reads) == 1 and reads[0][0] == 0:
        slot = reads[0][1]
        shape = shapes[slot]
        moved = _moved(call, shape)
        if moved is not None:
            return sup[slot].take(moved)
        if func in _ALONG and (len(args) < 2 or args[1] is None or type(args[1]) in (int, tuple)):
            axis = args[1] if len(args) > 1 else kwargs.get("axis")
            ndim = len(shape)
            axes = tuple(range(ndim)) if axis is None else \
                tuple(sorted(a % ndim for a in (axis if type(axis) is tuple else (axis,))))
            rest = tuple(k for k in range(ndim) if k not in axes)
            groups = np.transpose(_labels(shape), rest + axes).reshape(
                math.prod(shape[k] for k in rest), -1)
            if groups.shape[0] != size:
                raise Unsupported(f"{func.__name__} with these arguments")
            rows, cols = sup[slot].take(groups).pairs()
            return _merge(size, [(rows // max(1, groups.shape[1]), cols)], n)
    if func in _ELEMENTWISE_FUNCS:
        parts = [_broadcast_support(sup[s], shapes[s], out_shape).pairs() for _, s in reads]
        return _merge(size, parts, n)
    raise Unsupported(getattr(func, "__name__", None) or getattr(impl, "__name__", "a step"))


def supports(program, frontier: Frontier, offsets) -> dict:
    """The :class:`Support` of each frontier array, propagated from the inputs
    (input ``m`` starting at flat index ``offsets[m]``) through the steps before the
    frontier; :class:`Unsupported` for a step it cannot follow."""
    n = int(offsets[-1])
    sup: dict = {}
    for m, leaf in enumerate(program.leaves):
        if m + 1 < len(offsets):
            size = int(offsets[m + 1] - offsets[m])
            sup[m] = Support(np.arange(size + 1, dtype=np.int64),
                             offsets[m] + np.arange(size, dtype=np.int64))
        else:  # (another recorded variable: a constant here)
            sup[m] = Support.empty(leaf.value.size)
    shapes = program.shapes
    for j, step in enumerate(program.steps):
        if j in frontier.tail:
            continue
        info = program.calls[j]
        if info is None:
            raise Unsupported("an item of a tuple result")
        call, reads = info
        if shapes[step[1]] is None:
            raise Unsupported("a step with a tuple result")
        sup[step[1]] = _step_support(call, reads, shapes, shapes[step[1]], sup, n)
    return {s: sup[s] for s in frontier.slots}
