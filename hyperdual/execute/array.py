"""``HyperDual``: arrays of hyper-dual numbers with hidden seed axes.

See the class docstring for the algebra and the lane layout.  This module
holds the type, its NumPy protocols and the dispatch that every operation goes
through (plain evaluation, or recording when an operand derives from
:func:`hyperdual.variable`).  The math lives elsewhere: elementwise rules in
:mod:`hyperdual.ops.rules` lifted by :mod:`hyperdual.execute.chain`, array functions in
:mod:`hyperdual.execute.functions`.
"""
from __future__ import annotations

import numbers
import operator
import sys
import weakref
from typing import Any, Callable

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

from .context import SeedContext
from ..ops.rules import ufunc_name

__all__ = ["HyperDual", "as_float_array", "FUNCTIONS", "dispatch", "link_view", "OPERATORS"]

class _IMPL:
    """Implementations that live in modules importing this one (set when they load)."""

    apply_ufunc = getitem = setitem = windowed = densify = check_pattern = columns = densify_columns = None
    window_getitem = window_sum = None  # hyperdual.execute.window's own x[i], x[a:b], np.sum(x)
    window_lift = window_add = window_scale = window_operands = None  # and its chain-rule hooks
    record_call = record_ufunc = record_getitem = None  # hyperdual.trace.record's
    number_ops: dict = {}  # (ufunc, reflected) -> f(x, c) for a HyperDual and a Python number
    ufunc_methods: dict = {}  # (ufunc, "reduce" | "accumulate" ...) -> implementation (hyperdual.execute.chain)


#: ``HyperDual._flat`` of a *packed* array (:mod:`hyperdual.execute.packed`): flat, both first-order
#: lanes, a plain pass context, small lanes, no record.  ``True``: flat only.
PACKED = 2


class _PACKED_OPS:
    """The packed paths of :mod:`hyperdual.execute.packed` (set when it loads)."""

    both: dict = {}       # ufunc -> f(a, b) for two packed operands
    functions: dict = {}  # numpy function -> f(x) for one packed argument
    numbers: dict = {}    # (ufunc, reflected) -> f(x, c) for a packed x and a number c (np.float64)
    unary = negative = getitem = matmul = None
    promote = None  # marks a new flat array packed when it qualifies (hyperdual.execute.packed.seeded)
    mark = None     # marks a flat result of the chain rule packed when it qualifies (.promote)


#: ``numpy function -> implementation`` for ``__array_function__``; filled by
#: :mod:`hyperdual.execute.functions` and :func:`hyperdual.register_function`.
FUNCTIONS: dict[Callable, Callable] = {}

_ESCAPE = ("a HyperDual cannot become a plain number or NumPy array: that would silently drop "
           "its derivative lanes (or, while recording, its dependence on hyperdual.variable "
           "inputs). Use `x.value` for the value (a plain ndarray without derivatives)")


#: scipy.special functions that convert their input to an ndarray, and where ours are.
_CONVERTING = {"logsumexp": "hyperdual.special.logsumexp", "softmax": "hyperdual.special.softmax",
               "log_softmax": "hyperdual.special.log_softmax"}


def _escape_message() -> str:
    """:data:`_ESCAPE`, or, inside a scipy.special function that converts its input, the
    function of ours to call instead."""
    frame = sys._getframe(2)
    for _ in range(12):
        if frame is None:
            break
        name = frame.f_code.co_name
        if name in _CONVERTING and frame.f_globals.get("__name__", "").startswith("scipy.special"):
            return (f"scipy.special.{name} converts its input to a NumPy array, which would drop "
                    f"the derivative lanes of a HyperDual; call {_CONVERTING[name]} in the function "
                    f"instead (the same arguments)")
        frame = frame.f_back
    return _ESCAPE


def as_float_array(v: Any, what: str = "input") -> np.ndarray:
    """``v`` as a float64 ndarray; bool, int and float32 are converted.

    Complex, object, string and other dtypes raise ``TypeError``: a Hessian of
    them is undefined here, and a silent cast would be a wrong number.
    """
    t = type(v)
    if t is float or t is int:
        return np.float64(v)
    if t is HyperDual:
        raise TypeError(_ESCAPE)
    a = np.asarray(v)
    kind = a.dtype.kind
    if kind == "f":
        return a if a.dtype == np.float64 else a.astype(np.float64)
    if kind in "biu":
        return a.astype(np.float64)
    raise TypeError(f"{what} has dtype {a.dtype}: hyperdual works on real numbers only "
                    "(bool, integer and float inputs are computed in float64)")


#: The entry point of a recorded ufunc call (see dispatch): the operator the user's code
#: may have written, or the ufunc itself.
OPERATORS = {np.add: operator.add, np.subtract: operator.sub, np.multiply: operator.mul,
             np.true_divide: operator.truediv, np.power: operator.pow}


class _Escapes:
    """What would turn a HyperDual into a plain number or array, refused (the derivatives
    would be dropped silently)."""

    __slots__ = ()

    def __array__(self, dtype=None, copy=None):
        raise TypeError(_escape_message())

    def __float__(self):
        raise TypeError(_ESCAPE)

    def __int__(self):
        raise TypeError(_ESCAPE)

    def __complex__(self):
        raise TypeError(_ESCAPE)

    def __index__(self):
        raise TypeError(_ESCAPE)

    def item(self, *args):
        raise TypeError(_ESCAPE)

    def tolist(self):
        raise TypeError(_ESCAPE)

    def __bool__(self) -> bool:
        return bool(self._value)


class _Operators(NDArrayOperatorsMixin):
    """Python's operators.  NumPy's mixin defines each one through ``__array_ufunc__``; the
    arithmetic ones here go straight to the chain rule (and the packed paths), which is
    what that route would reach, a microsecond sooner."""

    __slots__ = ()

    def _binop(ufunc, reflected=False):
        shift = ufunc is np.add or (ufunc is np.subtract and not reflected)
        packed_both = None if reflected else ufunc  # (packed paths are looked up when called)
        key = (ufunc, reflected)

        def op(self, other):
            t = type(other)
            if self._node is not None and (t in _PLAIN or not _foreign(other)):  # recording
                return _IMPL.record_ufunc(ufunc, (other, self) if reflected else (self, other), front)
            if self._flat is PACKED:  # (see hyperdual.execute.packed)
                if t is HyperDual:
                    if packed_both is not None and other._flat is PACKED and other._ctx is self._ctx \
                            and other._value.shape[0] == self._value.shape[0]:
                        f = _PACKED_OPS.both.get(packed_both)
                        if f is not None:
                            out = f(self, other)
                            if out is not None:
                                return out
                elif (t is float or t is int) and not shift:
                    f = _PACKED_OPS.numbers.get(key)
                    if f is not None:  # (np.float64: x / 0 is inf with NumPy's warning)
                        out = f(self, np.float64(other))
                        if out is not None:
                            return out
            if shift and (t is float or t is int):  # (recorded operands returned above)
                # x ± c: the lanes are unchanged (they are never written in place)
                out = HyperDual._new(self._value + other if ufunc is np.add else self._value - other,
                                     self._e1, self._e2, self._e12, self._ctx)
                out._win, out._flat = self._win, self._flat
                if out._flat is PACKED:
                    out._lanes, out._lay = self._lanes, self._lay
                return out
            if t is float or t is int:
                number_op = _IMPL.number_ops.get((ufunc, reflected))
                if number_op is not None:  # x * 2.0, x ** 2, 1 - x …: straight to the rule
                    return number_op(self, np.float64(other))
            if t not in _PLAIN and _foreign(other):
                return NotImplemented
            args = (ufunc, other, self) if reflected else (ufunc, self, other)
            if t is not list and t is not tuple and _direct(self) \
                    and (t is not HyperDual or _direct(other)):
                return _IMPL.apply_ufunc(*args)  # (the chain rule keeps windowed lanes itself)
            return dispatch(_IMPL.apply_ufunc, args, {}, front)
        front = OPERATORS[ufunc]
        op.__name__ = f"__{'r' if reflected else ''}{ufunc.__name__}__"
        return op

    __add__, __radd__ = _binop(np.add), _binop(np.add, True)
    __sub__, __rsub__ = _binop(np.subtract), _binop(np.subtract, True)
    __mul__, __rmul__ = _binop(np.multiply), _binop(np.multiply, True)
    __truediv__, __rtruediv__ = _binop(np.true_divide), _binop(np.true_divide, True)
    __pow__, __rpow__ = _binop(np.power), _binop(np.power, True)
    del _binop

    def __neg__(self):
        if self._node is not None:
            return _IMPL.record_ufunc(np.negative, (self,), operator.neg)
        if self._flat is PACKED:
            return _PACKED_OPS.negative(self)
        return dispatch(_IMPL.apply_ufunc, (np.negative, self), {}, operator.neg)


class _ArrayMethods:
    """The ``ndarray`` attributes and methods of a HyperDual, each through its NumPy
    function (or on the value, for value-only results)."""

    __slots__ = ()

    @property
    def shape(self) -> tuple[int, ...]:
        return self._value.shape

    @property
    def ndim(self) -> int:
        return self._value.ndim

    @property
    def size(self) -> int:
        return self._value.size

    @property
    def dtype(self) -> np.dtype:
        return self._value.dtype

    @property
    def T(self) -> "HyperDual":
        return np.transpose(self)

    def __len__(self) -> int:
        if self._value.ndim == 0:
            raise TypeError("len() of unsized object")
        return self._value.shape[0]

    def __iter__(self):
        if self._value.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        for i in range(self._value.shape[0]):
            yield self[i]

    def __repr__(self) -> str:
        if self._node is not None and self._ctx is None and self._e1 is None:
            return f"HyperDual(value={self._value!r}, recorded)"
        ctx = self._ctx
        if ctx is not None and ctx.columns is not None:
            ctx = ctx.columns.ctx  # (column lanes stand for the pass's full lanes)
        k = f"K1={ctx.k1}, K2={ctx.k2}, P={ctx.npairs}" if ctx is not None else "constant"
        return f"HyperDual(value={self._value!r}, {k})"

    def sum(self, axis=None, dtype=None, out=None, keepdims=False):
        return np.sum(self, axis=axis, keepdims=keepdims, out=out)

    def mean(self, axis=None, dtype=None, out=None, keepdims=False):
        return np.mean(self, axis=axis, keepdims=keepdims, out=out)

    def prod(self, axis=None, dtype=None, out=None, keepdims=False):
        return np.prod(self, axis=axis, keepdims=keepdims, out=out)

    def max(self, axis=None, out=None, keepdims=False):
        return np.max(self, axis=axis, keepdims=keepdims, out=out)

    def min(self, axis=None, out=None, keepdims=False):
        return np.min(self, axis=axis, keepdims=keepdims, out=out)

    def cumsum(self, axis=None, dtype=None, out=None):
        return np.cumsum(self, axis=axis, out=out)

    def reshape(self, *shape, order="C"):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return np.reshape(self, shape, order=order)

    def ravel(self, order="C"):
        return np.ravel(self, order=order)

    def flatten(self, order="C"):
        return np.ravel(self, order=order).copy()

    def transpose(self, *axes):
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]
        return np.transpose(self, axes or None)

    def swapaxes(self, axis1, axis2):
        return np.swapaxes(self, axis1, axis2)

    def squeeze(self, axis=None):
        return np.squeeze(self, axis=axis)

    def copy(self, order="C"):
        return np.copy(self)

    def dot(self, b):
        return np.dot(self, b)

    def clip(self, min=None, max=None):
        return np.clip(self, min, max)

    def diagonal(self, offset=0, axis1=0, axis2=1):
        return np.diagonal(self, offset, axis1, axis2)

    def trace(self, offset=0, axis1=0, axis2=1):
        return np.trace(self, offset, axis1, axis2)

    def argmax(self, axis=None):
        return np.argmax(self._value, axis=axis)

    def argmin(self, axis=None):
        return np.argmin(self._value, axis=axis)

    def argsort(self, axis=-1, kind=None, order=None):
        return np.argsort(self._value, axis=axis, kind=kind)

    def sort(self, axis=-1, kind=None, order=None):
        self[...] = np.sort(self, axis=axis, kind=kind)

    def any(self, axis=None):
        return np.any(self._value, axis=axis)

    def all(self, axis=None):
        return np.all(self._value, axis=axis)

    def astype(self, dtype, copy=True):
        if np.dtype(dtype) != np.float64:
            raise TypeError(f"a HyperDual is always float64; astype({np.dtype(dtype)}) would drop "
                            "derivatives. Use x.value.astype(...) for the value alone")
        return self.copy() if copy else self


class HyperDual(_Operators, _ArrayMethods, _Escapes):
    r"""An array of hyper-dual numbers ``a + b·e1 + c·e2 + d·e1e2``.

    ``e1² = e2² = 0`` and ``e1e2 ≠ 0``.  For a product and for any twice
    differentiable elementwise ``g``::

        (a1 + b1 e1 + c1 e2 + d1 e1e2)(a2 + b2 e1 + c2 e2 + d2 e1e2)
            = a1a2 + (a1b2 + b1a2) e1 + (a1c2 + c1a2) e2 + (a1d2 + b1c2 + c1b2 + d1a2) e1e2
        g(a + b e1 + c e2 + d e1e2)
            = g(a) + g'(a) b e1 + g'(a) c e2 + (g'(a) d + g''(a) b c) e1e2

    so seeding an input with ``b = e_i``, ``c = e_j``, ``d = 0`` makes the
    ``e1e2`` part of the output exactly ``∂²f/∂x_i∂x_j`` (no step size, no
    truncation error), the ``e1`` part ``∂f/∂x_i``.

    **Lanes.** The array shows the shape ``S`` of its value and stores

    ========  ==============  ==============================================
    lane      shape           meaning
    ========  ==============  ==============================================
    value     ``S``           the primal value
    e1        ``(K1, *S)``    one row per ``e1`` seed direction
    e2        ``(K2, *S)``    one row per ``e2`` seed direction
    e12       ``(P, *S)``     one row per pair ``p = (pairs[0][p], pairs[1][p])``
    ========  ==============  ==============================================

    ``K1 = K2 = P = 1`` is the textbook scalar hyper-dual; larger values carry
    many directions and index pairs through one evaluation.  Seed directions
    may be any dense vectors: ``e1 = e_i, e2 = e_j`` gives Hessian entries,
    ``e2 = v`` Hessian-vector products, ``e1 = v, e2 = w`` bilinear forms
    ``vᵀ H w``.  Lanes known to be zero are not stored (reading one gives
    zeros).  Values and lanes are always float64: bool, integer and float32
    inputs are converted.

    Parameters
    ----------
    value : array_like
        The primal value, shape ``S``.
    e1, e2 : array_like, optional
        First-order lanes, shape ``(K, *S)``, or shape ``S`` for ``K = 1``.
        Passing the same object for both shares it (a diagonal seeding).
    e12 : array_like, optional
        Cross lane, shape ``(P, *S)`` (or ``S`` for ``P = 1``).
    pairs : tuple of two int arrays, optional
        The pair map ``(ip, jp)`` of the cross-lane rows; by default every
        combination ``(i, j)``, row ``p = i * K2 + j``.

    Examples
    --------
    ``f(x, y) = x² y`` at ``(3, 2)``: seed ``x`` along ``e1`` and ``y`` along
    ``e2`` to get the mixed derivative ``∂²f/∂x∂y = 2x = 6``:

    >>> import numpy as np
    >>> from hyperdual import HyperDual
    >>> x = HyperDual(3.0, e1=1.0, e2=0.0)
    >>> y = HyperDual(2.0, e1=0.0, e2=1.0)
    >>> f = x ** 2 * y
    >>> float(f.value), float(f.e1[0]), float(f.e2[0]), float(f.e12[0])
    (18.0, 12.0, 9.0, 6.0)
    """

    __slots__ = ("_value", "_e1", "_e2", "_e12", "_ctx", "_node", "_base", "_views", "_win", "_flat", "_lanes", "_lay",
                 "__weakref__")
    __array_priority__ = 100.0

    # ---- construction -----------------------------------------------------
    def __init__(self, value, e1=None, e2=None, e12=None, *, pairs=None):
        v = np.array(as_float_array(value, "value"), dtype=np.float64, copy=True)
        shape = v.shape

        def lane(arr, name):
            if arr is None:
                return None
            a = np.array(as_float_array(arr, name), dtype=np.float64, copy=True)
            if a.shape == shape:
                return a[None]
            if a.shape[1:] == shape:
                return a
            raise ValueError(f"lane {name} has shape {a.shape}; expected {shape} (one direction) "
                             f"or (K, *{shape})")

        l1 = lane(e1, "e1")
        l2 = l1 if (e2 is e1 and e1 is not None) else lane(e2, "e2")
        l12 = lane(e12, "e12")
        k1 = l1.shape[0] if l1 is not None else 1
        k2 = l2.shape[0] if l2 is not None else 1
        if pairs is None:
            ctx = SeedContext.all_pairs(k1, k2)
        else:
            ip, jp = pairs
            ctx = SeedContext.shared(ip, jp, k1, k2)
        if l12 is not None and l12.shape[0] != ctx.npairs:
            raise ValueError(f"lane e12 has {l12.shape[0]} rows but the pair map has {ctx.npairs} pairs")
        self._value, self._e1, self._e2, self._e12 = v, l1, l2, l12
        self._ctx, self._node = ctx, None
        self._base = self._views = self._win = None
        self._flat = v.ndim == 1  # fresh C-contiguous copies: (n,) and (K, n) (hyperdual.execute.chain.flat)
        if self._flat and _PACKED_OPS.promote is not None:
            _PACKED_OPS.promote(self)  # (and maybe packed: hyperdual.execute.packed)

    @classmethod
    def _new(cls, value, e1, e2, e12, ctx, node=None) -> "HyperDual":
        """Internal constructor: no checks, no copies."""
        self = object.__new__(cls)
        if type(value) is not np.ndarray:
            value = np.asarray(value, dtype=np.float64)
        self._value, self._e1, self._e2, self._e12 = value, e1, e2, e12
        self._ctx, self._node = ctx, node
        self._base = self._views = self._win = None
        self._flat = False  # see hyperdual.execute.chain.flat
        return self

    def __reduce__(self):
        _dense(self)
        if self._node is not None:
            raise TypeError("an array recorded from hyperdual.variable inputs cannot be pickled; "
                            "pickle the Hessian of a module-level function instead")
        return (_restore, (self._value, self._e1, self._e2, self._e12, self._ctx,
                           self._e2 is self._e1 and self._e1 is not None))

    # ---- lanes -------------------------------------------------------------
    @property
    def value(self) -> np.ndarray:
        """The primal value (a plain ndarray, no derivatives)."""
        return self._value

    def _lane(self, name, kind):
        _dense(self)
        ctx = self._ctx
        rows = 0 if ctx is None else ctx.k1 if kind == 1 else ctx.k2 if kind == 2 else ctx.npairs
        lane = getattr(self, name)
        if lane is None:
            out = np.broadcast_to(np.zeros((), np.float64), (rows,) + self._value.shape)
        else:
            out = lane.view()
            out.flags.writeable = False
        return out

    @property
    def e1(self) -> np.ndarray:
        """First-order lane, ``(K1, *shape)``: derivative along each ``e1`` seed (read-only)."""
        return self._lane("_e1", 1)

    @property
    def e2(self) -> np.ndarray:
        """First-order lane, ``(K2, *shape)``: derivative along each ``e2`` seed (read-only)."""
        return self._lane("_e2", 2)

    @property
    def e12(self) -> np.ndarray:
        """Cross lane, ``(P, *shape)``: second derivative along each seed pair (read-only)."""
        return self._lane("_e12", 12)

    @property
    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """The pair map ``(ip, jp)``: cross-lane row ``p`` pairs ``e1[ip[p]]`` with ``e2[jp[p]]``."""
        _dense(self)
        if self._ctx is None:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return self._ctx.ip.copy(), self._ctx.jp.copy()

    @property
    def stop_gradient(self) -> bool:
        """Always False; accepted for code written for ``paddle`` (``x.stop_gradient = False``)."""
        return False

    @stop_gradient.setter
    def stop_gradient(self, flag) -> None:
        if flag:
            raise ValueError("stop_gradient=True is not supported: leave the input out of xs "
                             "(or pass its value as a constant) to treat it as a constant")

    # ---- NumPy protocols --------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if self._node is not None and method == "__call__" and not kwargs \
                and not any(type(x) not in _PLAIN and _foreign(x) for x in inputs):
            return _IMPL.record_ufunc(ufunc, inputs, OPERATORS.get(ufunc, ufunc))
        if self._flat is PACKED and method == "__call__" and not kwargs:
            if len(inputs) == 1:
                out = _PACKED_OPS.unary(ufunc, self)
                if out is not None:
                    return out
            elif ufunc is np.matmul:
                out = _PACKED_OPS.matmul(*inputs)
                if out is not None:
                    return out
        if len(inputs) == 1 and method == "__call__" and not kwargs and _direct(self):
            return _IMPL.apply_ufunc(ufunc, self)  # np.sin(x) and the like (the chain rule
            # keeps windowed lanes itself)
        for x in inputs:
            if type(x) not in _PLAIN and _foreign(x):
                return NotImplemented
        if method == "__call__" and not kwargs:
            return dispatch(_IMPL.apply_ufunc, (ufunc,) + inputs, {}, OPERATORS.get(ufunc, ufunc))
        out = kwargs.pop("out", None)
        if method == "__call__" and kwargs:
            kwargs.pop("casting", None)
            dtype = kwargs.pop("dtype", None)
            if dtype not in (None, float, np.float64):
                raise TypeError(f"{ufunc_name(ufunc)}(..., dtype={dtype!r}): a HyperDual is always "
                                "float64; leave dtype out")
            if kwargs:
                raise TypeError(f"hyperdual does not support the arguments {sorted(kwargs)} "
                                f"of {ufunc_name(ufunc)}")
        if method == "__call__":
            result = dispatch(_IMPL.apply_ufunc, (ufunc,) + inputs, {})
        else:
            reduction = _IMPL.ufunc_methods.get((ufunc, method))
            if reduction is None:
                raise TypeError(f"hyperdual does not support {ufunc_name(ufunc)}.{method}")
            result = dispatch(reduction, inputs, kwargs)
        if out is not None:
            target = out[0] if isinstance(out, tuple) else out
            if not isinstance(target, HyperDual):
                raise TypeError(_ESCAPE + " (an out= argument must be a HyperDual)")
            target[...] = result
            return target
        return result

    def __array_function__(self, func, types, args, kwargs):
        if self._flat is PACKED and not kwargs and len(args) == 1:
            packed = _PACKED_OPS.functions.get(func)
            if packed is not None:
                out = packed(self)
                if out is not None:
                    return out
        impl = FUNCTIONS.get(func)
        if impl is None:
            if any(not issubclass(t, (HyperDual, np.ndarray)) for t in types):
                return NotImplemented
            name = getattr(func, "__module__", "numpy") + "." + getattr(func, "__name__", repr(func))
            name = name.replace("numpy.lib._function_base_impl", "numpy").replace(".core", "")
            raise TypeError(
                f"hyperdual does not support {name}() on HyperDual arrays, so it would lose "
                f"derivatives. Rewrite it with supported functions, apply it to `x.value` if it "
                f"does not depend on the derivative, or register an implementation with "
                f"hyperdual.register_function({getattr(func, '__name__', 'func')}, impl) "
                f"(elementwise ufuncs: hyperdual.register_ufunc).")
        if len(args) == 1 and args[0] is self and self._win is None and _direct(self) \
                and not any(type(v) is HyperDual or type(v) is list or type(v) is tuple
                            for v in kwargs.values()):
            return impl(self, **kwargs)  # np.sum(x), np.exp… of one plain array: nothing to dispatch
        if func is np.sum and len(args) == 1 and args[0] is self and self._win is not None \
                and _direct(self) and set(kwargs) <= {"axis", "dtype", "keepdims", "out"}:
            out = _IMPL.window_sum(self, **kwargs)  # (what dispatch would reach)
            if out is not NotImplemented:
                return out
        return dispatch(impl, args, kwargs, func)

    # ---- indexing -----------------------------------------------------------
    def __getitem__(self, index):
        t = type(index)
        if self._node is not None:
            return _IMPL.record_getitem(self, index)
        if t is slice and self._flat is PACKED:
            out = _PACKED_OPS.getitem(self, index)
            if out is not None:
                return out
        if (t is slice or t is int) and _direct(self):
            if self._win is None:
                return _IMPL.getitem(self, index)  # x[1:], x[0]: nothing to dispatch
            out = _IMPL.window_getitem(self, index)  # (what dispatch would reach)
            if out is not NotImplemented:
                return out
        return dispatch(_IMPL.getitem, (self, index), {}, operator.getitem)

    def __setitem__(self, index, val):
        if self._base is not None or (self._views and any(r() is not None for r in self._views)):
            raise TypeError(
                "in-place assignment into a HyperDual that shares memory with a view (a slice, "
                "reshape, transpose, ... of it, or it is one): NumPy would update both, but "
                "hyperdual's lanes are not shared memory, so the result would be silently wrong. "
                "Take a copy (v = y[:2].copy()) or assign before taking views")
        new = dispatch(_IMPL.setitem, (self, index, val), {})
        self._value, self._e1, self._e2, self._e12 = new._value, new._e1, new._e2, new._e12
        self._ctx, self._node, self._flat = new._ctx, new._node, new._flat
        if new._flat is PACKED:
            self._lanes, self._lay = new._lanes, new._lay


def link_view(base: HyperDual, view: HyperDual) -> HyperDual:
    """Remember that ``view`` is a NumPy view of ``base`` (so in-place writes are refused)."""
    view._base = base
    if base._views is None:
        base._views = []
    base._views.append(weakref.ref(view))
    return view


def _restore(value, e1, e2, e12, ctx, shared):
    return HyperDual._new(value, e1, e1 if shared else e2, e12, ctx)


_PLAIN = {HyperDual, np.ndarray, float, int, np.float64}


def _direct(x: HyperDual) -> bool:
    """The dispatch guard: True when an operation on ``x`` has nothing for :func:`dispatch`
    to do — ``x`` is not recorded, not in a pattern pass and has no column lanes — so the
    operator and protocol fast paths of :class:`HyperDual` call the implementation
    directly. (Windowed lanes are each route's own business: the chain rule and
    ``getitem`` keep them.)"""
    ctx = x._ctx
    return x._node is None and (ctx is None or (ctx.pattern is None and ctx.columns is None))


def _foreign(x) -> bool:
    """True for array types of other libraries, which get their own turn."""
    if isinstance(x, (HyperDual, np.ndarray, numbers.Number, np.generic, list, tuple)) or x is None:
        return False
    return hasattr(x, "__array_ufunc__") or hasattr(x, "__array_function__")


_TRACED, _WINDOWED, _PATTERN, _COLUMNS = 1, 2, 4, 8


def _flags(args) -> int:
    """``_TRACED`` if an operand is recorded, ``| _WINDOWED`` if one has windowed lanes,
    ``| _PATTERN`` if one belongs to a pattern pass (:mod:`hyperdual.plan.pattern`),
    ``| _COLUMNS`` if one has column lanes (:mod:`hyperdual.execute.columns`)."""
    flags = 0
    for a in args:
        t = type(a)
        if t is HyperDual:
            if a._node is not None:
                flags |= _TRACED
            if a._win is not None:
                flags |= _WINDOWED
            ctx = a._ctx
            if ctx is not None:
                if ctx.pattern is not None:
                    flags |= _PATTERN
                if ctx.columns is not None:
                    flags |= _COLUMNS
        elif t is list or t is tuple:
            flags |= _flags(a)
    return flags


def nested(obj, cls):
    """Every instance of ``cls`` in ``obj`` and in its nested lists, tuples and dict values
    (the operands of a NumPy call)."""
    t = type(obj)
    if t is cls:
        yield obj
    elif t is list or t is tuple:
        for o in obj:
            yield from nested(o, cls)
    elif t is dict:
        for o in obj.values():
            yield from nested(o, cls)


def _dense(x: HyperDual) -> None:
    """Expand windowed lanes (:mod:`hyperdual.execute.window`) and column lanes
    (:mod:`hyperdual.execute.columns`) to full lanes, in place (the same numbers, stored densely)."""
    if x._win is not None:
        _IMPL.densify(x)
    if x._ctx is not None and x._ctx.columns is not None:
        _IMPL.densify_columns(x)


def dispatch(impl: Callable, args: tuple, kwargs: dict, front: Callable | None = None):
    """Run ``impl(*args, **kwargs)``, recording it if an operand is recorded.

    ``front`` is the entry point the user's code called, taking the same arguments
    (a ufunc's inputs alone for ``apply_ufunc``): the replay of a record calls it
    (see :class:`hyperdual.trace.record.Call`).
    Operands with windowed lanes (:mod:`hyperdual.execute.window`) go to the window-aware
    implementation when there is one, and are expanded to full lanes otherwise.
    """
    flags = _flags(args)
    if kwargs:
        flags |= _flags(tuple(kwargs.values()))
    if flags:
        if flags & _PATTERN:
            _IMPL.check_pattern(impl, args, kwargs)
        if flags & _COLUMNS:
            result = _IMPL.columns(impl, args, kwargs)
            if result is not NotImplemented:
                return result
        if flags & _WINDOWED:
            result = _IMPL.windowed(impl, args, kwargs)
            if result is not NotImplemented:
                return result
        if flags & _TRACED:
            return _IMPL.record_call(impl, args, kwargs, front)
    return impl(*args, **kwargs)

