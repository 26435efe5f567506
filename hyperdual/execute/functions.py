"""NumPy array functions on HyperDual arrays (``__array_function__``).

Three kinds, each declared once:

* **Linear** functions (sum, reshape, indexing, concatenate, …) act on every
  lane the same way as on the value; a user axis ``k`` is lane axis ``k + 1``
  because the seed axis leads (:func:`linear`).
* **Multilinear** functions (matmul, dot, einsum, inner, outer, tensordot)
  follow the product rule for multilinear maps ``f(A_1, …, A_m)``::

      d1 f  = Σ_k f(…, d1 A_k, …)
      d12 f = Σ_k f(…, d12 A_k, …) + Σ_{k≠l} f(…, d1 A_k, …, d2 A_l, …)

  (:func:`multilinear`); a constant matrix costs one BLAS call per lane stack.
* **Selections** (max, min, sort, where) pick lanes by value; functions of the
  value alone (argmax, isclose, …) return plain arrays.

Other functions are built from these and from ufuncs (prod, norm, var, …), or
have their own rule (inv, slogdet).  Anything not listed raises ``TypeError``.
"""
from __future__ import annotations

import operator
import string
from typing import Callable

import numpy as np

from ..ops import registry as ops
from .array import _IMPL, FUNCTIONS, HyperDual, as_float_array, link_view, nested
from .chain import _align, flat, lane_to, operand, value_of
from .lanes import lane_sums as _lane_sums
from .context import join_contexts

__all__ = ["implements", "register_function", "linear", "multilinear", "getitem", "setitem"]

_new = HyperDual._new


def implements(*funcs: Callable):
    """Register an implementation for NumPy functions (``out=`` handled here); each
    function's kind is declared in :mod:`hyperdual.ops.registry`."""
    def deco(impl):
        def run(*args, out=None, **kwargs):
            result = impl(*args, **kwargs)
            if out is None:
                return result
            target = out[0] if isinstance(out, tuple) else out
            if not isinstance(target, HyperDual):
                raise TypeError("an out= argument must be a HyperDual: a plain ndarray cannot hold derivatives")
            target[...] = result
            return target
        run.__name__ = run.__qualname__ = impl.__name__
        run.__doc__ = impl.__doc__
        for f in funcs:
            ops.bind(f, run)  # (LookupError for a function without a declared kind)
            FUNCTIONS[f] = run
        return impl
    return deco


def register_function(numpy_function: Callable, implementation: Callable | None = None, kind: str = "opaque",
                      *, reads: str | None = None) -> None:
    """Use ``implementation`` for ``numpy_function`` on HyperDual arrays.

    The implementation receives the original arguments (HyperDual arrays
    among them) and must return a HyperDual built from supported operations
    (or a plain array for value-only results).

    Parameters
    ----------
    numpy_function : callable
        The NumPy function (dispatched through ``__array_function__``).
    implementation : callable, optional
        Its implementation for HyperDual arguments.  May be omitted for
        ``kind="linear"`` when only the first argument carries derivatives: a
        linear map ``L`` has ``L(a + b e1 + c e2 + d e1e2) = L(a) + L(b) e1 +
        L(c) e2 + L(d) e1e2``, so the function itself is applied to the value
        and to each derivative lane (one call per lane row).
    kind : str, optional
        What it does to the derivative lanes (:mod:`hyperdual.ops.registry`):
        ``"composed"`` when it is written with supported operations only (the
        sparsity pattern then sees through it), ``"linear"``, ``"selection"``,
        ``"zero"``, ``"value"``, ``"multilinear"``, or ``"opaque"`` (default:
        no route looks inside, so a Hessian through it seeds every pair).
    reads : str, optional
        Which input elements each output element reads (:class:`hyperdual.ops.registry.Reads`):
        ``"same"`` (element ``t`` of the one array input, by one map for every
        ``t``: windowed and column lanes keep through it), ``"element"``
        (element ``t`` of each input, the map depending on ``t``: column lanes
        keep), ``"along"`` (along the ``axis`` argument, second positional),
        ``"join"``, ``"reshape"``, ``"move"``, ``"stacked"``; None (default):
        not declared, so compact lane layouts are expanded first.

    Examples
    --------
    >>> import numpy as np, hyperdual
    >>> hyperdual.register_function(np.nansum, lambda x, **kw: np.sum(x, **kw), kind="composed")
    >>> H = hyperdual.hessian(lambda x: np.nansum(x ** 3), np.array([1.0, 2.0]))
    >>> H[:]
    array([[ 6.,  0.],
           [ 0., 12.]])

    A linear function needs no implementation:

    >>> hyperdual.register_function(np.triu, kind="linear", reads="element")
    >>> H = hyperdual.hessian(lambda x: np.sum(np.triu(np.outer(x, x))), np.array([1.0, 2.0]))
    >>> H[:]
    array([[2., 1.],
           [1., 2.]])
    """
    if implementation is None:
        if kind != ops.LINEAR:
            raise TypeError(f"register_function({getattr(numpy_function, '__name__', numpy_function)}) "
                            f"needs an implementation unless kind='linear'")
        implementation = _linear_of(numpy_function)
    elif not callable(implementation):
        raise TypeError("implementation must be callable")
    if reads == ops.ALONG:
        reads = ops.Reads(ops.ALONG, 1)  # (the axis: second positional, as numpy's reductions)
    ops.declare(kind, numpy_function, reads=reads)  # (ValueError for an unknown kind or reads)
    implements(numpy_function)(implementation)


def _linear_of(func: Callable) -> Callable:
    """The implementation of a linear function of its first argument: ``func`` applied to
    the value and to each lane row (:func:`register_function`)."""
    name = getattr(func, "__name__", repr(func))

    def implementation(x, *args, **kwargs):
        if any(True for _ in nested((args, kwargs), HyperDual)):
            raise TypeError(f"{name} is registered as linear without an implementation: only its first "
                            f"argument may carry derivatives; register an implementation for the others")
        v = value_of(x)
        value = np.asarray(func(v, *args, **kwargs), dtype=float)

        def lanes(lane):
            if lane.shape[0] == 0:
                return np.zeros((0,) + value.shape)
            out = np.stack([np.asarray(func(row, *args, **kwargs), dtype=float) for row in lane])
            if lane.shape[1:] == v.shape and out.shape[1:] != value.shape:  # (windowed lanes: window.py checks)
                raise ValueError(f"{name} maps a lane of shape {lane.shape[1:]} to {out.shape[1:]}, the "
                                 f"value to {value.shape}: a linear function must map both alike")
            return out
        return linear(x, lambda v: value, lanes)
    implementation.__name__ = name
    return implementation


# ---- helpers -------------------------------------------------------------------------
def _hd(x) -> HyperDual:
    """A HyperDual view of an operand (constants get no lanes)."""
    if type(x) is HyperDual:
        return x
    return _new(as_float_array(x, "operand"), None, None, None, None)


def _axes(axis, ndim, zero_d_axis=False) -> tuple[int, ...]:
    """Normalized axes; ``zero_d_axis``: accept axis 0 / -1 of a 0-d array as no axis
    (as numpy.sum does, though numpy.mean does not)."""
    if axis is None:
        return tuple(range(ndim))
    if ndim == 0 and zero_d_axis and all(operator.index(a) in (0, -1) for a in np.atleast_1d(axis)):
        return ()
    if isinstance(axis, (tuple, list)):
        return tuple(_axis1(a, ndim) for a in axis)
    return (_axis1(axis, ndim),)


def _axis1(axis, ndim) -> int:
    a = operator.index(axis)
    if not -ndim <= a < ndim:
        raise np.exceptions.AxisError(a, ndim)
    return a % ndim


def _shift(axes):
    return tuple(a + 1 for a in axes)


def linear(x, fv: Callable, fl: Callable, view: bool = False) -> HyperDual:
    """Apply a linear map: ``fv`` to the value, ``fl`` to every lane ``(K, *S)``.

    ``view``: NumPy returns a view for this map, so the result is linked to ``x``
    and in-place writes to either are refused (hyperdual's lanes cannot alias).
    """
    x = _hd(x)
    e1, e2, e12 = x._e1, x._e2, x._e12
    n1 = None if e1 is None else fl(e1)
    n2 = n1 if e2 is e1 else (None if e2 is None else fl(e2))
    out = _new(np.asarray(fv(x._value)), n1, n2, None if e12 is None else fl(e12), x._ctx)
    return link_view(x, out) if view else out


def _rows(ctx, kind):
    return ctx.k1 if kind == 1 else ctx.k2 if kind == 2 else ctx.npairs


def _lanes_of(xs, kind, ctx):
    """The ``kind`` lane of every operand, zeros where absent (None if all absent)."""
    attr = ("_e1", "_e2", "_e12")[kind - 1]
    lanes = [getattr(x, attr) for x in xs]
    if all(lane is None for lane in lanes):
        return None
    rows = _rows(ctx, kind)
    return [np.zeros((rows,) + x.shape) if lane is None else lane for x, lane in zip(xs, lanes)]


def _gather(xs, fv, fl):
    """A function of several arrays that is linear in all of them jointly (concatenate…)."""
    xs = [_hd(x) for x in xs]
    ctx = None
    for x in xs:
        ctx = join_contexts(ctx, x._ctx)
    value = np.asarray(fv([x._value for x in xs]))
    if ctx is None:
        return _new(value, None, None, None, None)
    l1 = _lanes_of(xs, 1, ctx)
    e1 = None if l1 is None else fl(l1)
    if all(x._e2 is x._e1 for x in xs):
        e2 = e1
    else:
        l2 = _lanes_of(xs, 2, ctx)
        e2 = None if l2 is None else fl(l2)
    l12 = _lanes_of(xs, 3, ctx)
    return _new(value, e1, e2, None if l12 is None else fl(l12), ctx)


# ---- indexing --------------------------------------------------------------------------
def _is_basic(index: tuple) -> bool:
    for i in index:
        if i is None or i is Ellipsis or type(i) is slice:
            continue
        if isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_)):
            continue
        return False
    return True


def _check_index(index):
    items = index if isinstance(index, tuple) else (index,)
    for i in items:
        if isinstance(i, HyperDual):
            raise IndexError("arrays used as indices must be of integer (or boolean) type, "
                             "not HyperDual; index with x.value.astype(int) if that is intended")
    return items


def getitem(x, index):
    """``x[index]``: every lane indexed like the value (all NumPy indexing)."""
    if x._flat and type(index) is slice:
        value = x._value[index]
        if value.flags.c_contiguous:  # a contiguous run: contiguous lanes keep x flat
            e1, e2, e12 = x._e1, x._e2, x._e12
            n1 = None if e1 is None else e1[:, index].copy()
            n2 = n1 if e2 is e1 else (None if e2 is None else e2[:, index].copy())
            out = flat(value, n1, n2, None if e12 is None else e12[:, index].copy(), x._ctx)
            return link_view(x, out)
    items = _check_index(index)
    value = x._value[index]
    if _is_basic(items):
        lane_index = (slice(None),) + items
        return linear(x, lambda v: value, lambda lane: lane[lane_index], view=True)
    # Advanced indexing: index the positions once, then gather every lane by them.
    pos = np.arange(x._value.size).reshape(x._value.shape)[index]
    n = x._value.size
    return linear(x, lambda v: value,
                  lambda lane: np.ascontiguousarray(lane_to(lane, x.shape)).reshape(lane.shape[0], n)[:, pos])


def setitem(x, index, val):
    """``x[index] = val`` as a new array (lanes are never written in place)."""
    items = _check_index(index)
    vv, v1, v2, v12, vctx = operand(val)
    ctx = join_contexts(x._ctx, vctx)
    value = x._value.copy()
    value[index] = vv
    if ctx is None:
        return _new(value, None, None, None, None)
    basic = _is_basic(items)
    shape = value.shape
    n = value.size
    pos = None if basic else np.arange(n).reshape(shape)[index]
    sub_nd = value[index].ndim if basic else pos.ndim

    def put(xl, vl, rows):
        if xl is None and vl is None:
            return None
        base = np.zeros((rows,) + shape) if xl is None else np.array(lane_to(xl, shape), order="C")
        src = 0.0 if vl is None else _fit(vl, sub_nd)
        if basic:
            base[(slice(None),) + items] = src
        else:
            base.reshape(rows, n)[:, pos] = src
        return base

    e1 = put(x._e1, v1, ctx.k1)
    shared = x._e2 is x._e1 and (v2 is v1)
    e2 = e1 if shared else put(x._e2, v2, ctx.k2)
    return _new(value, e1, e2, put(x._e12, v12, ctx.npairs), ctx)


_IMPL.getitem, _IMPL.setitem = getitem, setitem


def _fit(lane, nd):
    """A lane ``(K, *s)`` shaped to broadcast into ``nd`` value axes, as NumPy assigns:
    missing leading axes are added, extra leading axes (of length 1) dropped."""
    s = lane.shape[1:]
    if len(s) > nd:
        return lane.reshape(lane.shape[:1] + s[len(s) - nd:])
    return _align(lane, nd)


# ---- reductions -----------------------------------------------------------------------
@implements(np.sum)
def sum_(a, axis=None, dtype=None, keepdims=False, initial=None, where=None):
    if initial is not None or where is not None:
        raise TypeError("hyperdual's numpy.sum does not support initial= or where=")
    if type(a) is HyperDual and a._flat and axis is None and not keepdims and a._value.shape[0] <= 64:
        e1, e2, e12 = a._e1, a._e2, a._e12  # a short 1-D array: one call per lane
        n1 = None if e1 is None else _lane_sums(e1)
        n2 = n1 if e2 is e1 else (None if e2 is None else _lane_sums(e2))
        return _new(np.add.reduce(a._value), n1, n2, None if e12 is None else _lane_sums(e12), a._ctx)
    x = _hd(a)
    ax = _axes(axis, x.ndim, zero_d_axis=True)
    lax = _shift(ax)
    return linear(x, lambda v: np.add.reduce(v, axis=ax, keepdims=keepdims),
                  lambda lane: _add_reduce(lane, lax, keepdims))


def _add_reduce(lane, axes, keepdims):
    """``np.add.reduce`` of a lane; a short axis (2-8 entries) is summed as slices, in
    NumPy's order (``(a0 + a1) + a2 …``), which is several times faster for a long
    lane than NumPy's reduction loop over a short inner axis."""
    if len(axes) == 1 and lane.ndim == 2 and axes[0] == 1 and not keepdims:
        return _lane_sums(lane)
    if len(axes) == 1 and lane.size >= 4096:
        a = axes[0]
        m = lane.shape[a]
        if 2 <= m <= 8:
            head = (slice(None),) * a
            out = lane[head + (0,)] + lane[head + (1,)]
            for k in range(2, m):
                out += lane[head + (k,)]
            return np.expand_dims(out, a) if keepdims else out
    return np.add.reduce(lane, axis=axes, keepdims=keepdims)


@implements(np.mean)
def mean_(a, axis=None, dtype=None, keepdims=False, where=None):
    if where is not None:
        raise TypeError("hyperdual's numpy.mean does not support where=")
    x = _hd(a)
    ax = _axes(axis, x.ndim)
    count = int(np.prod([x.shape[i] for i in ax])) if ax else 1
    return sum_(x, axis=ax, keepdims=keepdims) * (1.0 / count if count else np.nan)


@implements(np.var)
def var(a, axis=None, dtype=None, ddof=0, keepdims=False, where=None, mean=None, correction=None):
    if where is not None or mean is not None:
        raise TypeError("hyperdual's numpy.var does not support where= or mean=")
    if correction is not None:
        ddof = correction
    x = _hd(a)
    ax = _axes(axis, x.ndim)
    count = int(np.prod([x.shape[i] for i in ax])) if ax else 1
    centred = x - mean_(x, axis=ax, keepdims=True)
    return sum_(centred * centred, axis=ax, keepdims=keepdims) * (1.0 / (count - ddof))


@implements(np.std)
def std(a, axis=None, dtype=None, ddof=0, keepdims=False, where=None, mean=None, correction=None):
    return np.sqrt(var(a, axis=axis, ddof=ddof, keepdims=keepdims, where=where, mean=mean,
                       correction=correction))


@implements(np.average)
def average(a, axis=None, weights=None, returned=False, keepdims=False):
    if weights is None:
        x = _hd(a)
        avg = mean_(x, axis=axis, keepdims=keepdims)
        wsum = np.full(avg.shape, x.size / max(avg.size, 1))
    else:
        x, w = _hd(a), weights
        wv = value_of(w)
        if np.shape(wv) != x.shape:
            ax = _axes(axis, x.ndim)
            if np.ndim(wv) != 1 or len(ax) != 1:
                raise TypeError("hyperdual's numpy.average needs weights of the array's shape, "
                                "or 1-D weights with one axis")
            shape = [1] * x.ndim
            shape[ax[0]] = -1
            w = np.reshape(w, shape)
        wsum = np.sum(w, axis=axis, keepdims=keepdims)
        avg = np.sum(x * w, axis=axis, keepdims=keepdims) / wsum
        if type(wsum) is not HyperDual:  # NumPy returns the weight sums in the average's shape
            wsum = np.broadcast_to(wsum, avg.shape).copy()
    return (avg, wsum) if returned else avg


def _to_last(x, ax):
    """Move the axes ``ax`` to the end and merge them into one (``x`` itself when ``ax``
    is the last axis alone)."""
    rest = [i for i in range(x.ndim) if i not in ax]
    if len(ax) == 1 and ax[0] == x.ndim - 1:
        return x
    x = transpose(x, rest + list(ax))
    return reshape(x, tuple(x.shape[:len(rest)]) + (-1,))


def _keep(result, ax, keepdims):
    if keepdims:
        for a in sorted(ax):
            result = expand_dims(result, a)
    return result


@implements(np.prod)
def prod(a, axis=None, dtype=None, keepdims=False, initial=None, where=None):
    """Product by products of the entries (no division, so exact with zeros): in order
    along a short axis, by a tree of pairwise products along a long one."""
    if initial is not None or where is not None:
        raise TypeError("hyperdual's numpy.prod does not support initial= or where=")
    x = _hd(a)
    ax = _axes(axis, x.ndim)
    x = _to_last(x, ax)
    if x.shape[-1] == 0:
        return _keep(_new(np.ones(x.shape[:-1]), None, None, None, None), ax, keepdims)
    if x.shape[-1] <= 8:  # a short axis: NumPy's own order, ((x0 x1) x2) …
        r = x[..., 0]
        for k in range(1, x.shape[-1]):
            r = r * x[..., k]
        return _keep(r, ax, keepdims)
    while x.shape[-1] > 1:
        if x.shape[-1] % 2:
            x = concatenate([x, np.ones(x.shape[:-1] + (1,))], axis=-1)
        x = x[..., 0::2] * x[..., 1::2]
    return _keep(x[..., 0], ax, keepdims)


def _select_along(x, idx, axis):
    """Entries ``idx`` (indices along ``axis``, keepdims shape) of value and lanes."""
    return linear(x, lambda v: np.take_along_axis(v, idx, axis),
                  lambda lane: np.take_along_axis(lane, idx[None], axis + 1))


def _extreme(arg):
    def impl(a, axis=None, out=None, keepdims=False, initial=None, where=None):
        if initial is not None or where is not None:
            raise TypeError(f"hyperdual's numpy.{arg.__name__[3:]} does not support initial= or where=")
        x = _hd(a)
        ax = _axes(axis, x.ndim)
        if x.ndim == 0:
            return x
        if x.ndim == 1 and not keepdims:  # the whole of a vector: one entry (copied lanes)
            k = int(arg(x._value))
            shape = x._value.shape

            def entry(lane):
                return None if lane is None else lane_to(lane, shape)[:, k].copy()
            n1 = entry(x._e1)
            return _new(np.asarray(x._value[k]), n1, n1 if x._e2 is x._e1 else entry(x._e2),
                        entry(x._e12), x._ctx)
        x = _to_last(x, ax)
        idx = arg(x._value, axis=-1)[..., None]
        r = _select_along(x, idx, x.ndim - 1)[..., 0]
        return _keep(r, ax, keepdims)
    impl.__name__ = arg.__name__[3:]
    impl.__doc__ = "Select by value (the first of tied entries, NaN propagates as in NumPy)."
    return impl


implements(np.max, np.amax)(_extreme(np.argmax))
implements(np.min, np.amin)(_extreme(np.argmin))


@implements(np.sort)
def sort(a, axis=-1, kind=None, order=None, stable=None):
    """A value-ordered permutation of value and lanes."""
    x = _hd(a)
    if axis is None:
        x, axis = ravel(x), 0
    axis = _axis1(axis, x.ndim)
    return _select_along(x, np.argsort(x._value, axis=axis, kind=kind), axis)


@implements(np.cumsum)
def cumsum(a, axis=None, dtype=None):
    x = _hd(a)
    if axis is None:
        x, axis = ravel(x), 0
    axis = _axis1(axis, x.ndim)
    return linear(x, lambda v: np.cumsum(v, axis=axis), lambda lane: np.cumsum(lane, axis=axis + 1))


@implements(np.diff)
def diff(a, n=1, axis=-1, prepend=np._NoValue, append=np._NoValue):
    x = _hd(a)
    axis = _axis1(axis, x.ndim)
    parts = []
    for extra in (prepend, append):
        if extra is np._NoValue:
            parts.append(None)
            continue
        e = _hd(extra)
        if e.ndim == 0:
            shape = list(x.shape)
            shape[axis] = 1
            e = broadcast_to(e, tuple(shape))
        parts.append(e)
    if parts[0] is not None or parts[1] is not None:
        x = concatenate([p for p in (parts[0], x, parts[1]) if p is not None], axis=axis)
    return linear(x, lambda v: np.diff(v, n=n, axis=axis), lambda lane: np.diff(lane, n=n, axis=axis + 1))


# ---- shape ------------------------------------------------------------------------------
@implements(np.reshape)
def reshape(a, shape=None, order="C", *, newshape=None, copy=None):
    x = _hd(a)
    shape = newshape if shape is None else shape
    if order == "F":
        return transpose(reshape(transpose(x), tuple(np.atleast_1d(shape))[::-1]))
    if order != "C":
        raise TypeError(f"hyperdual's numpy.reshape supports order='C' and 'F', not {order!r}")
    value = x._value.reshape(shape)
    return linear(x, lambda v: value, lambda lane: lane.reshape(lane.shape[:1] + value.shape), view=True)


@implements(np.ravel)
def ravel(a, order="C"):
    return reshape(a, -1, order=order)


@implements(np.transpose)
def transpose(a, axes=None):
    x = _hd(a)
    axes = tuple(range(x.ndim))[::-1] if axes is None else tuple(_axis1(i, x.ndim) for i in axes)
    return linear(x, lambda v: np.transpose(v, axes), lambda lane: np.transpose(lane, (0,) + _shift(axes)),
                  view=True)


@implements(np.swapaxes)
def swapaxes(a, axis1, axis2):
    x = _hd(a)
    i, j = _axis1(axis1, x.ndim), _axis1(axis2, x.ndim)
    return linear(x, lambda v: np.swapaxes(v, i, j), lambda lane: np.swapaxes(lane, i + 1, j + 1), view=True)


@implements(np.moveaxis)
def moveaxis(a, source, destination):
    x = _hd(a)
    src, dst = _axes(source, x.ndim), _axes(destination, x.ndim)
    return linear(x, lambda v: np.moveaxis(v, src, dst),
                  lambda lane: np.moveaxis(lane, _shift(src), _shift(dst)), view=True)


@implements(np.expand_dims)
def expand_dims(a, axis):
    x = _hd(a)
    value = np.expand_dims(x._value, axis)
    ax = _axes(axis, value.ndim)
    return linear(x, lambda v: value, lambda lane: np.expand_dims(lane, _shift(ax)), view=True)


@implements(np.squeeze)
def squeeze(a, axis=None):
    x = _hd(a)
    value = np.squeeze(x._value, axis)
    ax = tuple(i for i in range(x.ndim) if x.shape[i] == 1) if axis is None else _axes(axis, x.ndim)
    return linear(x, lambda v: value, lambda lane: np.squeeze(lane, _shift(ax)), view=True)


@implements(np.broadcast_to)
def broadcast_to(array, shape, subok=False):
    x = _hd(array)
    value = np.broadcast_to(x._value, shape)
    return linear(x, lambda v: value, lambda lane: lane_to(lane, value.shape), view=True)


def _atleast(fn):
    def impl(*arys):
        out = []
        for a in arys:
            x = _hd(a)
            out.append(reshape(x, fn(x._value).shape))
        return out[0] if len(out) == 1 else tuple(out)
    impl.__name__ = fn.__name__
    return impl


for _fn in (np.atleast_1d, np.atleast_2d, np.atleast_3d):
    implements(_fn)(_atleast(_fn))


@implements(np.concatenate)
def concatenate(arrays, axis=0, dtype=None, casting="same_kind"):
    if axis is None:
        return concatenate([ravel(a) for a in arrays], axis=0)
    xs = [_hd(a) for a in arrays]
    if not xs:
        raise ValueError("need at least one array to concatenate")
    ax = _axis1(axis, xs[0].ndim)
    return _gather(xs, lambda vs: np.concatenate(vs, axis=ax),
                   lambda lanes: np.concatenate(lanes, axis=ax + 1))


@implements(np.stack)
def stack(arrays, axis=0, dtype=None, casting="same_kind"):
    xs = [_hd(a) for a in arrays]
    if not xs:
        raise ValueError("need at least one array to stack")
    ax = _axis1(axis, xs[0].ndim + 1)
    return concatenate([expand_dims(x, ax) for x in xs], axis=ax)


@implements(np.hstack)
def hstack(tup, dtype=None, casting="same_kind"):
    xs = [_atleast(np.atleast_1d)(a) for a in tup]
    return concatenate(xs, axis=0 if xs and xs[0].ndim == 1 else 1)


@implements(np.vstack)
def vstack(tup, dtype=None, casting="same_kind"):
    return concatenate([_atleast(np.atleast_2d)(a) for a in tup], axis=0)


@implements(np.column_stack)
def column_stack(tup):
    xs = [_hd(a) for a in tup]
    return concatenate([reshape(x, (-1, 1)) if x.ndim < 2 else x for x in xs], axis=1)


@implements(np.flip)
def flip(m, axis=None):
    x = _hd(m)
    ax = _axes(axis, x.ndim)
    return linear(x, lambda v: np.flip(v, ax), lambda lane: np.flip(lane, _shift(ax)), view=True)


@implements(np.roll)
def roll(a, shift, axis=None):
    x = _hd(a)
    if axis is None:
        return reshape(roll(ravel(x), shift, 0), x.shape)
    ax = _axes(axis, x.ndim)
    return linear(x, lambda v: np.roll(v, shift, ax), lambda lane: np.roll(lane, shift, _shift(ax)))


@implements(np.repeat)
def repeat(a, repeats, axis=None):
    x = _hd(a)
    if axis is None:
        x, axis = ravel(x), 0
    ax = _axis1(axis, x.ndim)
    return linear(x, lambda v: np.repeat(v, repeats, ax), lambda lane: np.repeat(lane, repeats, ax + 1))


@implements(np.tile)
def tile(A, reps):
    x = _hd(A)
    reps = tuple(np.atleast_1d(reps))
    value = np.tile(x._value, reps)
    x = reshape(x, (1,) * (value.ndim - x.ndim) + x.shape)
    reps = (1,) * (value.ndim - len(reps)) + reps
    return linear(x, lambda v: value, lambda lane: np.tile(lane, (1,) + reps))


@implements(np.take)
def take(a, indices, axis=None, mode=None):
    if mode not in (None, "raise"):
        raise TypeError("hyperdual's numpy.take supports mode='raise' only")
    x = _hd(a)
    if axis is None:
        return getitem(ravel(x), indices)
    ax = _axis1(axis, x.ndim)
    return getitem(x, (slice(None),) * ax + (np.asarray(indices),))


@implements(np.copy)
def copy(a, order="K", subok=False):
    x = _hd(a)
    return _new(x._value.copy(), x._e1, x._e2, x._e12, x._ctx)


@implements(np.where)
def where(condition, x=np._NoValue, y=np._NoValue):
    if x is np._NoValue and y is np._NoValue:
        return np.where(value_of(condition))
    cond = np.asarray(value_of(condition), dtype=bool)
    xs = [_hd(x), _hd(y)]
    shape = np.broadcast_shapes(cond.shape, xs[0].shape, xs[1].shape)
    nd = len(shape)

    def pick(lanes):
        return lane_to(np.where(cond, _align(lanes[0], nd), _align(lanes[1], nd)), shape)
    return _gather(xs, lambda vs: np.where(cond, vs[0], vs[1]), pick)


@implements(np.clip)
def clip(a, a_min=np._NoValue, a_max=np._NoValue, out=None, *, min=np._NoValue, max=np._NoValue):
    """``minimum(maximum(a, a_min), a_max)``: at a bound the derivative passes through."""
    lo = a_min if a_min is not np._NoValue else (None if min is np._NoValue else min)
    hi = a_max if a_max is not np._NoValue else (None if max is np._NoValue else max)
    x = _hd(a)
    if lo is not None:
        x = np.maximum(x, lo)
    if hi is not None:
        x = np.minimum(x, hi)
    return x


@implements(np.round, np.around)
def round_(a, decimals=0):
    """Piecewise constant: derivatives are zero."""
    x = _hd(a)
    return _new(np.asarray(np.round(x._value, decimals)), None, None, None, x._ctx)


# ---- multilinear -----------------------------------------------------------------------
def multilinear(op: Callable, operands) -> HyperDual:
    """Product rule for a map linear in each operand.

    ``op(args, batched)`` evaluates the map where ``batched[k]`` says that
    ``args[k]`` carries a leading lane axis (all batched args share it).
    """
    xs = [_hd(o) for o in operands]
    ctx = None
    for x in xs:
        ctx = join_contexts(ctx, x._ctx)
    vals = [x._value for x in xs]
    m = len(xs)
    flat = [False] * m
    value = np.asarray(op(vals, flat))
    if ctx is None:
        return _new(value, None, None, None, None)

    def with_lanes(subs):
        args, batched = list(vals), list(flat)
        for k, lane in subs:
            args[k], batched[k] = lane, True
        return op(args, batched)

    def first(attr):
        total = None
        for k, x in enumerate(xs):
            lane = getattr(x, attr)
            if lane is not None:
                t = with_lanes([(k, lane)])
                total = t if total is None else total + t
        return total

    e1 = first("_e1")
    e2 = e1 if all(x._e2 is x._e1 for x in xs) else first("_e2")
    e12 = first("_e12")
    for k, xk in enumerate(xs):
        if xk._e1 is None:
            continue
        a = xk._e1[ctx.ip]
        for l, xl in enumerate(xs):
            if l == k or xl._e2 is None:
                continue
            t = with_lanes([(k, a), (l, xl._e2[ctx.jp])])
            e12 = t if e12 is None else e12 + t
    return _new(value, e1, e2, e12, ctx)


def _matmul_op(args, batched):
    a, b = args
    ba, bb = batched
    a_nd = a.ndim - ba
    b_nd = b.ndim - bb
    if a_nd == 0 or b_nd == 0:
        raise ValueError("matmul: Input operand does not have enough dimensions")
    if a_nd == 1:
        a = np.expand_dims(a, a.ndim - 1)
    if b_nd == 1:
        b = np.expand_dims(b, b.ndim)
    nd = max(max(a_nd, 2), max(b_nd, 2))
    if ba:
        a = _align(a, nd)
    if bb:
        b = _align(b, nd)
    out = np.matmul(a, b)
    if b_nd == 1:
        out = out[..., 0]
    if a_nd == 1:
        out = out[..., 0, :] if b_nd != 1 else out[..., 0]
    return out


@implements(np.matmul)
def matmul(x1, x2):
    """``x1 @ x2``; a constant operand costs one (batched) BLAS call per lane."""
    return multilinear(_matmul_op, (x1, x2))


_LETTERS = string.ascii_letters


def _explicit(subscripts: str, ndims) -> str:
    subscripts = subscripts.replace(" ", "")
    if "->" in subscripts:
        return subscripts
    letters = [c for c in subscripts if c.isalpha()]
    out = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    return subscripts + "->" + ("..." if "..." in subscripts else "") + out


def _einsum_op(spec: str):
    ins, out = spec.split("->")
    ins = ins.split(",")
    used = set(spec)
    z = next(c for c in _LETTERS if c not in used)

    def op(args, batched):
        if not any(batched):
            return np.einsum(spec, *args, optimize=True)
        s = ",".join(z + i if b else i for i, b in zip(ins, batched)) + "->" + z + out
        return np.einsum(s, *args, optimize=True)
    return op


@implements(np.einsum)
def einsum(subscripts, *operands, optimize=False, **kwargs):
    if not isinstance(subscripts, str):
        raise TypeError("hyperdual's numpy.einsum takes the subscripts-string form only")
    if kwargs:
        raise TypeError(f"hyperdual's numpy.einsum does not support {sorted(kwargs)}")
    spec = _explicit(subscripts, [np.ndim(value_of(o)) for o in operands])
    return multilinear(_einsum_op(spec), operands)


@implements(np.dot)
def dot(a, b):
    a, b = _hd(a), _hd(b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    if b.ndim <= 2:
        return matmul(a, b)
    return tensordot(a, b, axes=([-1], [-2]))


@implements(np.vdot)
def vdot(a, b):
    return dot(ravel(a), ravel(b))


@implements(np.inner)
def inner(a, b):
    a, b = _hd(a), _hd(b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    return tensordot(a, b, axes=([-1], [-1]))


@implements(np.outer)
def outer(a, b, out=None):
    return multilinear(_einsum_op("i,j->ij"), (ravel(a), ravel(b)))


@implements(np.tensordot)
def tensordot(a, b, axes=2):
    a, b = _hd(a), _hd(b)
    if isinstance(axes, (int, np.integer)):
        ax_a = list(range(a.ndim - axes, a.ndim))
        ax_b = list(range(axes))
    else:
        ax_a, ax_b = axes
        ax_a = [ax_a] if isinstance(ax_a, (int, np.integer)) else list(ax_a)
        ax_b = [ax_b] if isinstance(ax_b, (int, np.integer)) else list(ax_b)
    ax_a = [_axis1(i, a.ndim) for i in ax_a]
    ax_b = [_axis1(i, b.ndim) for i in ax_b]
    if len(ax_a) != len(ax_b):
        raise ValueError("shape-mismatch for sum")
    letters = iter(_LETTERS)
    la = [next(letters) for _ in range(a.ndim)]
    lb = [next(letters) for _ in range(b.ndim)]
    for i, j in zip(ax_a, ax_b):
        lb[j] = la[i]
    out = [c for i, c in enumerate(la) if i not in ax_a] + [c for j, c in enumerate(lb) if j not in ax_b]
    spec = "".join(la) + "," + "".join(lb) + "->" + "".join(out)
    return multilinear(_einsum_op(spec), (a, b))


@implements(np.diagonal)
def diagonal(a, offset=0, axis1=0, axis2=1):
    x = _hd(a)
    i, j = _axis1(axis1, x.ndim), _axis1(axis2, x.ndim)
    return linear(x, lambda v: np.diagonal(v, offset, i, j),
                  lambda lane: np.diagonal(lane, offset, i + 1, j + 1), view=True)


@implements(np.trace)
def trace(a, offset=0, axis1=0, axis2=1, dtype=None):
    return sum_(diagonal(a, offset, axis1, axis2), axis=-1)


@implements(np.diag)
def diag(v, k=0):
    x = _hd(v)
    if x.ndim == 2:
        return diagonal(x, k)
    if x.ndim != 1:
        raise ValueError("Input must be 1- or 2-d.")
    n = x.shape[0] + abs(k)
    out = _new(np.zeros((n, n)), None, None, None, None)
    rows = np.arange(x.shape[0]) + max(-k, 0)
    cols = np.arange(x.shape[0]) + max(k, 0)
    return setitem(out, (rows, cols), x)


# ---- linear algebra ----------------------------------------------------------------------
@implements(np.linalg.norm)
def norm(x, ord=None, axis=None, keepdims=False):
    x = _hd(x)
    if axis is None:
        if ord is None or (ord == "fro" and x.ndim == 2) or (ord == 2 and x.ndim == 1):
            r = np.sqrt(sum_(x * x))  # NumPy: the 2-norm of the flattened array
            return reshape(r, (1,) * x.ndim) if keepdims else r
        if x.ndim > 2:
            raise ValueError("Improper number of dimensions to norm.")
        axis = (0,) if x.ndim == 1 else (0, 1)
    ax = _axes(axis, x.ndim)
    if len(ax) == 1:
        return _vector_norm(x, ord, ax, keepdims)
    if len(ax) == 2:
        r0, c0 = ax
        if ord in (None, "fro"):
            return np.sqrt(sum_(x * x, axis=ax, keepdims=keepdims))
        if ord in (1, -1):
            s = sum_(np.abs(x), axis=r0, keepdims=True)
            r = (np.max if ord == 1 else np.min)(s, axis=c0, keepdims=True)
        elif ord in (np.inf, -np.inf):
            s = sum_(np.abs(x), axis=c0, keepdims=True)
            r = (np.max if ord == np.inf else np.min)(s, axis=r0, keepdims=True)
        else:
            raise TypeError(f"hyperdual's numpy.linalg.norm does not support matrix ord={ord!r} "
                            "(singular-value norms); use 'fro', 1, -1, inf or -inf")
        return r if keepdims else squeeze(r, axis=ax)
    raise ValueError("Improper number of dimensions to norm.")


def _vector_norm(x, ord, ax, keepdims):
    if isinstance(ord, str):
        raise ValueError(f"Invalid norm order '{ord}' for vectors")
    if ord is None or ord == 2:
        return np.sqrt(sum_(x * x, axis=ax, keepdims=keepdims))
    if ord == np.inf:
        return np.max(np.abs(x), axis=ax, keepdims=keepdims)
    if ord == -np.inf:
        return np.min(np.abs(x), axis=ax, keepdims=keepdims)
    if ord == 1:
        return sum_(np.abs(x), axis=ax, keepdims=keepdims)
    if ord == 0:
        raise TypeError(f"hyperdual's numpy.linalg.norm does not support vector ord={ord!r}")
    p = float(ord)
    return sum_(np.abs(x) ** p, axis=ax, keepdims=keepdims) ** (1.0 / p)


def _mm(a, b):
    return np.matmul(a, b)


@implements(np.linalg.inv)
def inv(a):
    """``d(A⁻¹) = -A⁻¹ dA A⁻¹``; ``d12(A⁻¹) = A⁻¹(A1 A⁻¹ A2 + A2 A⁻¹ A1 - A12)A⁻¹``."""
    x = _hd(a)
    ai = np.linalg.inv(x._value)
    ctx = x._ctx
    nd = ai.ndim

    def first(lane):
        return None if lane is None else -_mm(_mm(ai, _align(lane, nd)), ai)

    e1 = first(x._e1)
    e2 = e1 if x._e2 is x._e1 else first(x._e2)
    e12 = None
    if x._e12 is not None:
        e12 = -_mm(_mm(ai, _align(x._e12, nd)), ai)
    if x._e1 is not None and x._e2 is not None:
        a1 = _align(x._e1, nd)[ctx.ip]
        a2 = _align(x._e2, nd)[ctx.jp]
        cross = _mm(_mm(_mm(_mm(ai, a1), ai), a2), ai) + _mm(_mm(_mm(_mm(ai, a2), ai), a1), ai)
        e12 = cross if e12 is None else e12 + cross
    return _new(ai, e1, e2, e12, ctx)


@implements(np.linalg.solve)
def solve(a, b):
    """With a constant ``A`` every lane is one solve; otherwise ``inv(A) @ b``."""
    if type(a) is HyperDual and a._ctx is not None:
        return matmul(inv(a), b)
    A = a._value if type(a) is HyperDual else as_float_array(a, "matrix")
    x = _hd(b)
    vec = x.ndim == 1

    def fl(lane):
        if vec:
            return np.linalg.solve(A, lane.T).T
        return np.linalg.solve(A, _align(lane, x.ndim))
    return linear(x, lambda v: np.linalg.solve(A, v), fl)


@implements(np.linalg.slogdet)
def slogdet(a):
    """``d log|A| = tr(A⁻¹ dA)``; ``d12 = tr(A⁻¹ A12) - tr(A⁻¹ A1 A⁻¹ A2)``."""
    x = _hd(a)
    sign, logdet = np.linalg.slogdet(x._value)
    ctx = x._ctx
    if ctx is None:
        return type(np.linalg.slogdet(np.eye(1)))(sign, _new(np.asarray(logdet), None, None, None, None))
    with np.errstate(all="ignore"):
        ai = np.linalg.inv(x._value)
    nd = ai.ndim

    def tr(m):  # trace of A⁻¹ m for a lane stack m (R, ..., n, n)
        return np.einsum("...ji,r...ij->r...", ai, _align(m, nd))

    e1 = None if x._e1 is None else tr(x._e1)
    e2 = e1 if x._e2 is x._e1 else (None if x._e2 is None else tr(x._e2))
    e12 = None if x._e12 is None else tr(x._e12)
    if x._e1 is not None and x._e2 is not None:
        m1 = _mm(ai, _align(x._e1, nd)[ctx.ip])
        m2 = _mm(ai, _align(x._e2, nd)[ctx.jp])
        cross = -np.einsum("r...ij,r...ji->r...", m1, m2)
        e12 = cross if e12 is None else e12 + cross
    result = type(np.linalg.slogdet(np.eye(1)))
    return result(sign, _new(np.asarray(logdet), e1, e2, e12, ctx))


@implements(np.linalg.det)
def det(a):
    """``sign · exp(log|det A|)``; derivatives are NaN at singular matrices."""
    sign, logdet = slogdet(a)
    return np.exp(logdet) * sign


# ---- *_like and value-only functions ----------------------------------------------------------
def _like(fn):
    def impl(prototype, *args, dtype=None, **kwargs):
        value = fn(value_of(prototype), *args, dtype=dtype, **kwargs)
        if value.dtype != np.float64:
            return value
        return _new(value, None, None, None, None)
    impl.__name__ = fn.__name__
    return impl


for _fn in (np.zeros_like, np.ones_like, np.empty_like, np.full_like):
    implements(_fn)(_like(_fn))


def _values(obj):
    if type(obj) is HyperDual:
        return obj._value
    if isinstance(obj, (list, tuple)):
        return type(obj)(_values(o) for o in obj)
    return obj


def _value_only(fn):
    def impl(*args, **kwargs):
        return fn(*_values(args), **{k: _values(v) for k, v in kwargs.items()})
    impl.__name__ = fn.__name__
    return impl


for _fn in ops.functions_of(ops.VALUE):
    implements(_fn)(_value_only(_fn))

del _fn
