"""The whole Hessian of a sparse function from one coloured pass (a part of
:class:`hyperdual.lazy.problem.Problem`).

When a whole Hessian is asked for (``H[:]``) and the function has a record
(:mod:`hyperdual.trace.record`; recorded on demand when the Hessian was made
without one), :class:`ColouredPass` finds the record's frontier and the supports of
its elements (:mod:`hyperdual.plan.frontier`), colours the inputs
(:mod:`hyperdual.plan.colour`), runs one pass seeded with the colour indicators up
to the frontier and gathers every entry (:mod:`hyperdual.plan.recover`).  It
declines — and the pairs of the ordinary passes follow, with the same numbers —
when any of that does not apply: a batch, a NaN in the point or the lanes, a step
the analysis cannot follow, or a colouring that would not need fewer pairs than
seeding every pair.
"""
from __future__ import annotations

import math

import weakref

import numpy as np

from ..execute.array import HyperDual
from ..execute.context import join_contexts
from ..plan import recover
from .cache import SparseCache
from ..plan.colour import KERNEL_MIN, colour_inputs, kernels_loaded
from ..plan.frontier import Unsupported, find, supports
from ..plan.seeding import seed_colours, settings

__all__ = ["ColouredPass"]


def _peak_lane_bytes(program, frontier, lanes: int) -> int:
    """The most lane memory the pass up to the frontier holds at once: the values alive
    together (replayed in order, each freed after its last use; the frontier kept), plus
    a few temporaries of the largest array inside one step."""
    shapes = program.shapes
    size = [0 if s is None else math.prod(s) for s in shapes]
    keep = set(frontier.slots)
    live = sum(size[:len(program.leaves)])
    peak = live
    for j, step in enumerate(program.steps):
        if j in frontier.tail:
            continue
        live += size[step[1]]
        peak = max(peak, live)
        for r in step[5]:
            if r not in keep:
                live -= size[r]
    return (peak + 3 * max(size + [0])) * lanes * 8


#: The functions whose structure analysis stopped at a step it does not follow (or gave
#: too many colours), with the input shapes it saw: later Hessians of the same function
#: skip the attempt (and its recording call).  Only speed rides on it: a function that
#: would colour at another point just takes the pairs there.
_DECLINED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


class ColouredPass:
    """Answers whole-Hessian requests of one :class:`Problem` by a coloured pass.

    ``program`` is a callable returning the function's
    :class:`hyperdual.trace.record.Program` (or None), set by the Hessian that
    made the problem; ``reason`` says why the last request was declined."""

    def __init__(self, problem):
        self.problem = problem
        self.program = None
        self.plan = None       # (program, frontier, supports, colouring), found once
        self.searched = False
        self.reason = ""
        self.key = None        # (the user's function, the input shapes), to remember a decline
        self._structural = False  # the last decline is the function's structure, not the point

    def __getstate__(self):  # (a pickled Hessian calls its function per pass: no record)
        state = self.__dict__.copy()
        state["program"] = state["plan"] = state["key"] = None
        return state

    def remember(self, func, points) -> None:
        """Key later declines by ``func`` and the inputs' shapes (:data:`_DECLINED`)."""
        try:
            weakref.ref(func)
        except TypeError:
            return  # (a function that cannot be weakly referenced is not remembered)
        self.key = (func, tuple(p.shape for p in points))

    def wanted(self, any_size: bool = False) -> bool:
        p = self.problem
        n = p.space.n
        return (self.program is not None and p.batch is None and settings.colouring
                and (any_size or n >= settings.colour_min_inputs) and not any(p.space.has_nan))

    def _find(self):
        self._structural = False
        p = self.problem
        program = self.program()
        if program is None:
            return "no record of the function"
        if program.shapes[program.out] is None or math.prod(program.shapes[program.out]) != 1:
            return "the output is not a scalar"
        try:
            frontier = find(program)
            sups = supports(program, frontier, np.asarray(p.space.offsets, dtype=np.int64))
        except Unsupported as exc:
            self._structural = True
            return f"the structure analysis stops at {exc}"
        n = p.space.n
        parts = [(sups[s], frontier.weights[s]) for s in frontier.slots]
        live = [sup.take(np.nonzero(w.reshape(-1) != 0)[0]) for sup, w in parts]
        if live:
            indptr = np.concatenate([[0]] + [s.indptr[1:] + off for s, off in
                                             zip(live, np.cumsum([0] + [s.indices.size for s in live])[:-1])])
            indices = np.concatenate([s.indices for s in live])
        else:
            indptr, indices = np.zeros(1, np.int64), np.zeros(0, np.int64)
        colouring = colour_inputs((indptr, indices), n)
        count = max(1, colouring.count)
        if count * (count + 1) // 2 * 2 > n * (n + 1) // 2:
            self._structural = True
            return f"{colouring.count} colours: no fewer pairs than seeding every pair"
        lanes = 2 * count + count * (count + 1) // 2
        if _peak_lane_bytes(program, frontier, lanes) > p.budget:
            return "the coloured pass would not fit the memory budget"
        self.plan = (program, frontier, sups, colouring, count)
        return ""

    def _planned(self, any_size: bool) -> bool:
        """Whether a coloured pass applies (the analysis is made on the first call)."""
        if not self.wanted(any_size):
            return False
        p = self.problem
        if not np.isfinite(p.value).all():
            return False  # (a NaN output has no derivatives: the ordinary passes say so)
        if not self.searched:
            self.searched = True
            func, shapes = self.key if self.key is not None else (None, None)
            before = _DECLINED.get(func, {}).get(shapes) if func is not None else None
            if before is not None:
                self.reason = f"declined for this function before: {before}"
                p.stats.colouring = self.reason
                return False
            try:
                self.reason = self._find()
            except Exception as exc:  # noqa: BLE001 - a record that cannot be made or read
                self.reason = f"the structure analysis failed ({type(exc).__name__}: {exc})"
                self.plan = None
            p.stats.colouring = self.reason
            if self.plan is None and func is not None and self._structural:
                _DECLINED.setdefault(func, {})[shapes] = self.reason
        return self.plan is not None

    def run(self, any_size: bool = False) -> bool:
        """Run the coloured pass and keep the Hessian's nonzeros in the problem's cache (a
        :class:`hyperdual.lazy.cache.SparseCache`); False when declined.  ``any_size``:
        whatever the number of inputs (a sparse result is wanted)."""
        if not self._planned(any_size):
            return False
        p = self.problem
        program, frontier, sups, colouring, count = self.plan
        inputs, ctx = seed_colours(p.space, colouring.colours, count)
        vals = program.run(inputs, skip=frontier.tail, keep=set(frontier.slots))
        p.stats.function_calls += 1
        p.stats.passes += 1
        rows = recover.pair_rows(count)
        items = []
        for s in frontier.slots:
            F = vals[s]
            if type(F) is not HyperDual:
                continue  # (a constant: no second derivatives)
            if F._ctx is not None and F._ctx is not ctx:
                join_contexts(F._ctx, ctx)  # lanes of another pass: PassMismatchError
            w = frontier.weights[s]
            e12 = F.e12.reshape(count * (count + 1) // 2, -1)
            if not (np.isfinite(e12).all() and np.isfinite(w).all() and np.isfinite(F.value).all()):
                self.reason = "a frontier array is not finite: the ordinary passes say where"
                p.stats.colouring = self.reason
                return False
            items.append((sups[s], w, e12))
        n = p.space.n
        indptr, indices, values = recover.collect(n, items, colouring.colours, rows, self._kernels())
        codes = np.repeat(np.arange(n, dtype=np.int64) * n, np.diff(indptr)) + indices
        upper = int(np.count_nonzero(indices >= codes // n)) if n else 0
        p.stats.structural_zeros += n * (n + 1) // 2 - upper
        p.stats.pairs_evaluated += count * (count + 1) // 2
        p.stats.method = "colouring"
        p.stats.colours = count
        p.stats.entries_cached += n * (n + 1) // 2
        p.stats.nnz = codes.size
        p.cache = SparseCache(n, codes, values, indptr)
        return True

    def _kernels(self) -> bool:
        return self.problem.space.n >= KERNEL_MIN or kernels_loaded()

    def whole(self):
        """The whole ``n x n`` Hessian (its nonzeros kept in the cache), or None (declined)."""
        if not self.run():
            return None
        c = self.problem.cache
        return recover.dense(c.n, c.codes, c.values)

    def structure(self):
        """The sorted codes ``i * n + j`` (both triangles) of the Hessian's structural
        nonzeros from the analysis alone (no pass), or None (declined)."""
        if not self._planned(True):
            return None
        program, frontier, sups, colouring, count = self.plan
        n = self.problem.space.n
        items = [(sups[s], frontier.weights[s], None) for s in frontier.slots]
        indptr, indices, _ = recover.collect(n, items, None, None, self._kernels())
        return np.repeat(np.arange(n, dtype=np.int64) * n, np.diff(indptr)) + indices
