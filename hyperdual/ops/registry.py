"""The op registry: every supported NumPy function and ufunc, declared once with its kind.

A route that needs to know what an operation does to the lanes (the pattern
pass today; the window and column layouts, the record's planner next) asks
:func:`kind_of` / :func:`ufunc_kind` here instead of keeping a list of its own.
The kinds:

* ``ELEMENTWISE``: a ufunc with a unary or binary row of the derivative table
  (:mod:`hyperdual.ops.rules`); output element ``t`` reads element ``t`` of each
  (broadcast) input.  The table's other ufuncs are ``SELECTION`` (``maximum``),
  ``ZERO`` (``floor``) and ``VALUE`` (``greater``), elementwise too.
* ``LINEAR``: the output's lanes are the inputs' lanes moved, added and scaled
  by constants: reductions, cumulative sums and differences, indexing,
  reshapes, transposes, joins, repeats.
* ``SELECTION``: lanes moved by a choice made on the values (``sort``, ``max``,
  ``where``, ``clip``): linear once the values are known.
* ``ZERO``: piecewise constant (``round``) or a constant of the input's shape
  (``zeros_like``): a value with zero derivatives.
* ``COMPOSED``: written with other declared operations (``var``, ``std``,
  ``prod``, ``average``): the kinds of the steps it takes apply.
* ``MULTILINEAR``: products of several operands contracting axes (``@``,
  ``dot``, ``einsum``, ...): cross terms between operands, no table row.
* ``VALUE``: a function of the values alone, returning plain arrays
  (``argmax``, ``shape``, ``isclose``).
* ``OPAQUE``: its own derivative code that no route may look inside (linear
  algebra; a function registered with :func:`hyperdual.register_function`
  unless it says otherwise).

Linear and selection functions also declare which input elements each output
element *reads* (:class:`Reads`): the window and column layouts keep their
compact lanes through a function that reads element ``t`` only, and the batch
check (:mod:`hyperdual.trace.batch`) follows the samples through reductions along an
axis, joins, reshapes and moves.  Ufuncs read element ``t`` of each broadcast
input by definition.

This module imports nothing of the package but the derivative table.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from . import rules

__all__ = ["ELEMENTWISE", "LINEAR", "SELECTION", "ZERO", "COMPOSED", "MULTILINEAR", "VALUE", "OPAQUE",
           "KINDS", "PATTERN_KINDS", "declare", "kind_of", "functions_of", "ufunc_kind", "impl_kind", "bind",
           "Reads", "SAME", "ELEMENT", "ALONG", "JOIN", "RESHAPE", "MOVE", "STACKED", "READS",
           "reads_of", "impl_reads"]

ELEMENTWISE, LINEAR, SELECTION, ZERO = "elementwise", "linear", "selection", "zero"
COMPOSED, MULTILINEAR, VALUE, OPAQUE = "composed", "multilinear", "value", "opaque"
KINDS = (ELEMENTWISE, LINEAR, SELECTION, ZERO, COMPOSED, MULTILINEAR, VALUE, OPAQUE)

#: Kinds whose cross terms the pattern pass follows (:mod:`hyperdual.plan.pattern`):
#: every nonlinear step of these is an elementwise ufunc, which records its supports.
PATTERN_KINDS = frozenset((ELEMENTWISE, LINEAR, SELECTION, ZERO, COMPOSED, VALUE))

# ---- what an output element reads ----------------------------------------------------------
#: Element ``t`` of its one array input, by one map for every ``t`` (``copy``): a window
#: or column lanes keep through it, mapped as they are.
SAME = "same"
#: Element ``t`` of each (broadcast) input, the map depending on ``t`` (``where``,
#: ``clip``, ``triu``): column lanes keep through it.
ELEMENT = "element"
#: Elements along the ``axis`` argument (reductions, sorts, ``cumsum``, ``diff``, ``flip``).
ALONG = "along"
#: The inputs joined along the ``axis`` argument (``concatenate``, ``stack``, ``hstack``).
JOIN = "join"
#: The elements in their row-major order, by the ``order`` argument (``reshape``, ``ravel``).
RESHAPE = "reshape"
#: The elements with the axes moved (``transpose``, ``swapaxes``, ``expand_dims``).
MOVE = "move"
#: Each matrix of a stack, on the last two axes (``det``, ``inv``).
STACKED = "stacked"
READS = (SAME, ELEMENT, ALONG, JOIN, RESHAPE, MOVE, STACKED)


class Reads(tuple):
    """Which input elements each output element reads: ``how`` (one of :data:`READS`),
    with the position and default of the argument it depends on (``axis`` for
    ``ALONG`` and ``JOIN``, ``order`` for ``RESHAPE``; position None: keyword only)."""

    __slots__ = ()

    def __new__(cls, how: str, position: int | None = None, default=None):
        if how not in READS:
            raise ValueError(f"reads must be one of {', '.join(READS)}; got {how!r}")
        return super().__new__(cls, (how, position, default))

    how = property(lambda self: self[0])
    position = property(lambda self: self[1])
    default = property(lambda self: self[2])

    def argument(self, name: str, args: tuple, kwargs: dict):
        """The argument ``name`` of a call: by keyword, else by position, else the default."""
        if name in kwargs:
            return kwargs[name]
        return args[self.position] if self.position is not None and len(args) > self.position \
            else self.default


_KIND: dict = {}        # NumPy function -> kind
_IMPL_KIND: dict = {}   # the implementation dispatch calls -> kind
_READS: dict = {}       # NumPy function -> Reads
_IMPL_READS: dict = {}  # the implementation dispatch calls -> Reads


def declare(kind: str, *funcs: Callable, reads: Reads | str | None = None) -> None:
    """Declare the kind of NumPy functions (a later declaration replaces an earlier one),
    and what their output elements read (:class:`Reads`, or one of :data:`READS`; None:
    not declared, any element may read any)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    if reads is not None and not isinstance(reads, Reads):
        reads = Reads(reads)
    for f in funcs:
        _KIND[f] = kind
        if reads is None:
            _READS.pop(f, None)
        else:
            _READS[f] = reads


def reads_of(func: Callable) -> Reads | None:
    """What the output elements of a NumPy function read, or None when not declared."""
    return _READS.get(func)


def impl_reads(impl: Callable) -> Reads | None:
    """:func:`reads_of` for a dispatched implementation."""
    return _IMPL_READS.get(impl)


def kind_of(func: Callable) -> str | None:
    """The declared kind of a NumPy function, or None."""
    return _KIND.get(func)


def bind(func: Callable, impl: Callable) -> None:
    """Note that dispatch runs ``impl`` for ``func`` (so a route holding the implementation
    finds the kind); ``func`` must be declared."""
    kind = _KIND.get(func)
    if kind is None:
        raise LookupError(f"{getattr(func, '__name__', func)} has no declared kind (hyperdual.ops.registry.declare)")
    _IMPL_KIND[impl] = kind
    reads = _READS.get(func)
    if reads is None:
        _IMPL_READS.pop(impl, None)
    else:
        _IMPL_READS[impl] = reads


def functions_of(kind: str) -> list:
    """The NumPy functions declared ``kind``, in the order declared."""
    return [f for f, k in _KIND.items() if k == kind]


def impl_kind(impl: Callable) -> str | None:
    """The kind of a dispatched implementation (None for one of no declared function)."""
    return _IMPL_KIND.get(impl)


def ufunc_kind(ufunc) -> str | None:
    """The kind of a ufunc, from the table of :mod:`hyperdual.ops.rules` it is in:
    ``SELECTION`` (``maximum`` ...), ``ZERO`` (``floor`` ...), ``VALUE`` (``greater``
    ...), ``ELEMENTWISE`` (a unary or binary rule, registering a provided module's
    rules on first use: :func:`hyperdual.ops.rules.provide`); ``MULTILINEAR`` for
    ``matmul``; None for a ufunc without a rule."""
    if ufunc is np.matmul:
        return MULTILINEAR
    if ufunc in rules.SELECT:
        return SELECTION
    if ufunc in rules.ZERO_DERIVATIVE:
        return ZERO
    if ufunc in rules.VALUE_ONLY:
        return VALUE
    if ufunc in rules.UNARY or ufunc in rules.BINARY or rules.provide(ufunc):
        return ELEMENTWISE
    return None


# ---- the declarations ---------------------------------------------------------------------
_AXIS, _AXIS_LAST, _AXIS_2, _AXIS_2_LAST = Reads(ALONG, 1), Reads(ALONG, 1, -1), Reads(ALONG, 2), Reads(ALONG, 2, -1)
declare(LINEAR, np.sum, np.mean, np.cumsum, np.flip, reads=_AXIS)
declare(LINEAR, np.diff, reads=_AXIS_2_LAST)
declare(LINEAR, np.roll, reads=_AXIS_2)
declare(LINEAR, np.reshape, reads=Reads(RESHAPE, 2, "C"))
declare(LINEAR, np.ravel, reads=Reads(RESHAPE, 1, "C"))
declare(LINEAR, np.squeeze, reads=Reads(RESHAPE, None, "C"))
declare(LINEAR, np.transpose, np.swapaxes, np.moveaxis, np.expand_dims, reads=MOVE)
declare(LINEAR, np.concatenate, np.stack, reads=Reads(JOIN, 1, 0))
declare(LINEAR, np.hstack, np.vstack, np.column_stack, reads=JOIN)
declare(LINEAR, np.copy, reads=SAME)
declare(LINEAR,
        np.trace, np.broadcast_to, np.atleast_1d, np.atleast_2d, np.atleast_3d,
        np.repeat, np.tile, np.take, np.diagonal, np.diag)
declare(SELECTION, np.max, np.amax, np.min, np.amin, reads=_AXIS)
declare(SELECTION, np.sort, reads=_AXIS_LAST)
declare(SELECTION, np.where, np.clip, reads=ELEMENT)
declare(ZERO, np.round, np.around, np.zeros_like, np.ones_like, np.empty_like, np.full_like, reads=ELEMENT)
declare(COMPOSED, np.var, np.std, np.average, np.prod, reads=_AXIS)
declare(MULTILINEAR, np.matmul, np.einsum, np.dot, np.vdot, np.inner, np.outer, np.tensordot)
declare(VALUE,
        np.argmax, np.argmin, np.argsort, np.allclose, np.isclose, np.any, np.all, np.count_nonzero,
        np.nonzero, np.flatnonzero, np.shape, np.ndim, np.size, np.array_equal, np.searchsorted,
        np.argwhere, np.iscomplexobj, np.isrealobj)
declare(OPAQUE, np.linalg.norm, reads=_AXIS_2)
declare(OPAQUE, np.linalg.inv, np.linalg.slogdet, np.linalg.det, reads=STACKED)
declare(OPAQUE, np.linalg.solve)
