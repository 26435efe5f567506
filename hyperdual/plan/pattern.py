"""The sparsity pattern of a Hessian: which index pairs can be nonzero at all.

A large full Hessian of a sparse function (chained Rosenbrock: tridiagonal)
costs O(N²) pairs in forward-over-forward mode, almost all of them exact
zeros.  A cross-lane row ``p = (i, j)`` only becomes nonzero where a
*nonlinear* step meets first-order lanes of both ``i`` and ``j`` in one
element:

* ``y = g(x)``: ``y.e12 = g' x.e12 + g'' x.e1[i] x.e2[j]``: new entries only
  for ``i, j`` both in the support of ``x.e1`` at some element;
* ``z = g(x, y)`` (products included): new entries only for ``i, j`` in the
  union of the supports of ``x.e1`` and ``y.e1`` at some element;
* linear steps (sums, indexing, reshapes, selections, scaling) only move,
  add and scale existing entries.

So one *pattern pass* with first-order lanes for every input (``e1 = I``,
no cross lanes) and a :class:`Recorder` on its seed context collects, at
every nonlinear step, the supports of its operands' ``e1`` lanes; the union of
``S × S`` over all elements of all those steps contains every pair that can
be nonzero (a superset: ``g''`` is treated as nonzero everywhere).  The
other pairs are exact zeros and need no pass.

Only steps whose cross terms are known here may run in a pattern pass: those
whose kind in the op registry (:mod:`hyperdual.ops.registry`) is one of
:data:`hyperdual.ops.registry.PATTERN_KINDS`: elementwise ufuncs (through
:mod:`hyperdual.execute.chain`), and array functions that are linear, selections,
constant, of the value, or composed of those.  Anything else (``matmul``,
``einsum``, ``inv``, a function registered as opaque, …) raises
:class:`PatternAbort`, and the Hessian falls back to seeding every pair.
"""
from __future__ import annotations

import numpy as np

from ..execute.array import _IMPL, HyperDual
from ..ops.registry import LINEAR, PATTERN_KINDS, impl_kind, ufunc_kind
from .colour import distinct

__all__ = ["Recorder", "PatternAbort", "safe"]

#: Largest support (inputs one element depends on, at a nonlinear step) a
#: pattern is built for; beyond it the Hessian is treated as dense.
MAX_SUPPORT = 64
#: Largest number of candidate pairs a pattern may collect.
MAX_CANDIDATES = 2 ** 24


class PatternAbort(Exception):
    """A step whose cross terms the pattern pass cannot follow."""


def safe(impl, args=()) -> bool:
    """Whether ``impl`` (a dispatched implementation; ``args[0]`` the ufunc of
    ``apply_ufunc``) may run in a pattern pass: its kind (:mod:`hyperdual.ops.registry`) is
    one the pass follows."""
    if impl is _IMPL.apply_ufunc:
        kind = ufunc_kind(args[0]) if args else None
    elif impl is _IMPL.getitem or impl is _IMPL.setitem:  # (dispatch's own entry points)
        kind = LINEAR
    else:
        kind = impl_kind(impl)
    return kind in PATTERN_KINDS


class Recorder:
    """Collects the candidate pairs of one pattern pass over ``n`` inputs.

    :meth:`add` is called by the chain rule at every nonlinear step with the
    flat first-order lanes ``(n, m)`` of its operands (their supports are the
    nonzero rows of each column).
    """

    def __init__(self, n: int):
        self.n = n
        self.codes: list[np.ndarray] = []
        self.count = 0
        self.dense = False      # a support too large: no useful pattern
        self.aborted = False    # a step it cannot follow ran (even if the error was caught)

    def abort(self, what: str):
        self.aborted = True
        return PatternAbort(what)

    def add(self, *lanes) -> None:
        """Record the pairs within the support of each element of the given lanes."""
        if self.dense:
            return
        support = None
        for lane in lanes:
            if lane is None or lane.shape[0] == 0:
                continue
            nz = lane != 0.0  # NaN counts as nonzero
            support = nz if support is None else support | nz
        if support is None:
            return
        sizes = support.sum(axis=0)
        smax = int(sizes.max()) if sizes.size else 0
        if smax == 0:
            return
        if smax > MAX_SUPPORT:
            self.dense = True
            return
        cols = np.nonzero(sizes)[0]
        sub = support[:, cols]                      # (n, m') elements with a support
        t, k = np.nonzero(sub.T)                    # sorted by element, then input
        starts = np.concatenate(([0], np.cumsum(sizes[cols])[:-1]))
        rank = np.arange(t.size) - starts[t]
        table = np.full((cols.size, smax), -1, dtype=np.int64)
        table[t, rank] = k
        a, b = table[:, :, None], table[:, None, :]
        keep = (a >= 0) & (b >= 0) & (a <= b)
        codes = (np.broadcast_to(a, keep.shape)[keep] * self.n + np.broadcast_to(b, keep.shape)[keep])
        codes = distinct(codes)
        self.count += codes.size
        if self.count > MAX_CANDIDATES:
            self.dense = True
            self.codes = []
            return
        self.codes.append(codes)

    def pairs(self) -> np.ndarray | None:
        """Sorted codes ``lo * n + hi`` of every pair that can be nonzero (None: unknown)."""
        if self.dense or self.aborted:
            return None
        if not self.codes:
            return np.zeros(0, dtype=np.int64)
        return distinct(np.concatenate(self.codes))


def _recorder_of(objs):
    for a in objs:
        t = type(a)
        if t is HyperDual:
            if a._ctx is not None and a._ctx.pattern is not None:
                return a._ctx.pattern
        elif t is list or t is tuple:
            found = _recorder_of(a)
            if found is not None:
                return found
    return None


def check(impl, args, kwargs) -> None:
    """Called by dispatch for operations on arrays of a pattern pass."""
    if not safe(impl, args):
        rec = _recorder_of(tuple(args) + tuple(kwargs.values()))
        raise rec.abort(getattr(impl, "__name__", "an operation"))


_IMPL.check_pattern = check
