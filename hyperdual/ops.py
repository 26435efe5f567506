"""The op registry: every supported NumPy function and ufunc, declared once with its kind.

A route that needs to know what an operation does to the lanes (the pattern
pass today; the window and column layouts, the record's planner next) asks
:func:`kind_of` / :func:`ufunc_kind` here instead of keeping a list of its own.
The kinds:

* ``ELEMENTWISE``: a ufunc with a unary or binary row of the derivative table
  (:mod:`hyperdual.rules`); output element ``t`` reads element ``t`` of each
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

This module imports nothing of the package but the derivative table.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from . import rules

__all__ = ["ELEMENTWISE", "LINEAR", "SELECTION", "ZERO", "COMPOSED", "MULTILINEAR", "VALUE", "OPAQUE",
           "KINDS", "PATTERN_KINDS", "declare", "kind_of", "functions_of", "ufunc_kind", "impl_kind", "bind"]

ELEMENTWISE, LINEAR, SELECTION, ZERO = "elementwise", "linear", "selection", "zero"
COMPOSED, MULTILINEAR, VALUE, OPAQUE = "composed", "multilinear", "value", "opaque"
KINDS = (ELEMENTWISE, LINEAR, SELECTION, ZERO, COMPOSED, MULTILINEAR, VALUE, OPAQUE)

#: Kinds whose cross terms the pattern pass follows (:mod:`hyperdual.pattern`):
#: every nonlinear step of these is an elementwise ufunc, which records its supports.
PATTERN_KINDS = frozenset((ELEMENTWISE, LINEAR, SELECTION, ZERO, COMPOSED, VALUE))

_KIND: dict = {}        # NumPy function -> kind
_IMPL_KIND: dict = {}   # the implementation dispatch calls -> kind


def declare(kind: str, *funcs: Callable) -> None:
    """Declare the kind of NumPy functions (a later declaration replaces an earlier one)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    for f in funcs:
        _KIND[f] = kind


def kind_of(func: Callable) -> str | None:
    """The declared kind of a NumPy function, or None."""
    return _KIND.get(func)


def bind(func: Callable, impl: Callable) -> None:
    """Note that dispatch runs ``impl`` for ``func`` (so a route holding the implementation
    finds the kind); ``func`` must be declared."""
    kind = _KIND.get(func)
    if kind is None:
        raise LookupError(f"{getattr(func, '__name__', func)} has no declared kind (hyperdual.ops.declare)")
    _IMPL_KIND[impl] = kind


def functions_of(kind: str) -> list:
    """The NumPy functions declared ``kind``, in the order declared."""
    return [f for f, k in _KIND.items() if k == kind]


def impl_kind(impl: Callable) -> str | None:
    """The kind of a dispatched implementation (None for one of no declared function)."""
    return _IMPL_KIND.get(impl)


def ufunc_kind(ufunc) -> str | None:
    """The kind of a ufunc, from the table of :mod:`hyperdual.rules` it is in:
    ``SELECTION`` (``maximum`` ...), ``ZERO`` (``floor`` ...), ``VALUE`` (``greater``
    ...), ``ELEMENTWISE`` (a unary or binary rule, registering a provided module's
    rules on first use: :func:`hyperdual.rules.provide`); ``MULTILINEAR`` for
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
declare(LINEAR,
        np.sum, np.mean, np.cumsum, np.diff, np.trace,
        np.reshape, np.ravel, np.transpose, np.swapaxes, np.moveaxis, np.expand_dims, np.squeeze,
        np.broadcast_to, np.atleast_1d, np.atleast_2d, np.atleast_3d,
        np.concatenate, np.stack, np.hstack, np.vstack, np.column_stack,
        np.flip, np.roll, np.repeat, np.tile, np.take, np.copy, np.diagonal, np.diag)
declare(SELECTION, np.max, np.amax, np.min, np.amin, np.sort, np.where, np.clip)
declare(ZERO, np.round, np.around, np.zeros_like, np.ones_like, np.empty_like, np.full_like)
declare(COMPOSED, np.var, np.std, np.average, np.prod)
declare(MULTILINEAR, np.matmul, np.einsum, np.dot, np.vdot, np.inner, np.outer, np.tensordot)
declare(VALUE,
        np.argmax, np.argmin, np.argsort, np.allclose, np.isclose, np.any, np.all, np.count_nonzero,
        np.nonzero, np.flatnonzero, np.shape, np.ndim, np.size, np.array_equal, np.searchsorted,
        np.argwhere, np.iscomplexobj, np.isrealobj)
declare(OPAQUE, np.linalg.norm, np.linalg.inv, np.linalg.solve, np.linalg.slogdet, np.linalg.det)
