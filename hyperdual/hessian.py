"""Lazy Hessian and Jacobian objects: index parsing, cache, symmetry, passes.

``hessian(f_or_ys, xs, batch_axis=None)`` returns :class:`Hessian` objects
that know their shape and nothing else.  Indexing one

1. applies the index to zero-cost broadcast views of the batch, row and
   column numbers, so NumPy itself decides which entries are touched, the
   result's shape, and raises its own errors (memory ∝ the result, not N²);
2. maps entry ``(i, j)`` to the unordered pair ``(min, max)`` of flat input
   indices (the Hessian is symmetric, and a tuple of inputs is one flat index
   space, so ``H[0][1]`` and ``H[1][0]`` share one cache) and drops pairs
   already cached;
3. runs the passes planned by :mod:`hyperdual.seeding` for the rest, storing
   values and the "computed" mask together (a pass that raises stores
   nothing);
4. returns a plain ``numpy.ndarray`` cut from the cache.
"""
from __future__ import annotations

import numbers
import threading
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .array import HyperDual, as_float_array
from .batch import Unknown, coupling
from .record import Node, Program, record_session, topological
from .cache import PairCache
from .columns import settle
from .context import SeedContext, join_contexts
from .pattern import Recorder
from .seeding import LIVE_FACTOR, InputSpace, pass_capacity, plan_passes, seed_inputs, settings
from .packed import seeded
from .window import densify

__all__ = ["Hessian", "Jacobian", "hessian", "jacobian", "hvp", "gradient", "Stats"]


#: Requests (and passes) of at most this many entries (pairs) take Python-list paths.
_FEW = 16

_COUPLED = ("with batch_axis=0 the samples must be independent, but the outputs of some samples "
            "depend on other samples' inputs (e.g. a sum over the batch axis): a per-sample Hessian "
            "is not defined. Use batch_axis=None on the flattened input instead")


@dataclass
class Stats:
    """Work done so far by one Hessian (shared by the blocks of a tuple input)."""

    passes: int = 0            #: evaluations with derivative lanes
    pairs_evaluated: int = 0   #: unordered index pairs seeded, summed over passes
    samples_evaluated: int = 0  #: batch samples run, summed over passes (batch_axis=0)
    function_calls: int = 0    #: calls of the user's function (or replays), value call included
    entries_cached: int = 0    #: (sample, pair) entries stored
    structural_zeros: int = 0  #: pairs known zero from the sparsity pattern, never seeded
    #: inputs seeded with windowed lanes (a block of a long 1-D input), summed over passes
    windowed_inputs: int = 0
    #: inputs seeded with column lanes (one lane row per sample), summed over passes
    column_inputs: int = 0
    #: times windowed or column lanes met an operation that could not keep them and were
    #: expanded to full lanes (the same numbers, at the full cost), summed over passes
    expansions: int = 0
    #: ``"recorded"``: the function was recorded once (its value call) and every pass
    #: replays the record; ``"callable"``: every pass calls the function.
    mode: str = "callable"
    reason: str = ""           #: why the function is called per pass (empty when recorded)


def _tally(stats: Stats, ctx) -> None:
    """Add a finished pass's lane layouts (:class:`hyperdual.context.LayoutCounts`) to ``stats``."""
    c = ctx.layouts
    if c.windowed or c.columns or c.expanded:
        stats.windowed_inputs += c.windowed
        stats.column_inputs += c.columns
        stats.expansions += c.expanded


def _distinct(values: np.ndarray, bound: int) -> np.ndarray:
    """The sorted distinct values of a non-negative int array, all below ``bound``.

    A mark-and-scan over ``bound`` slots when that is cheaper than sorting
    (and without the lazy import of numpy.ma that ``np.unique`` pays once).
    """
    values = values.reshape(-1)
    if values.size <= 32:  # a few entries: Python's set is quicker than any array pass
        return np.array(sorted(set(values.tolist())), dtype=np.int64)
    if bound <= 8 * values.size + 1024:
        seen = np.zeros(bound, dtype=bool)
        seen[values] = True
        return seen.nonzero()[0]
    v = np.sort(values)
    return v[np.concatenate(([True], v[1:] != v[:-1]))] if v.size else v


_UPPER: dict = {}


def _upper_pairs(n: int):
    """``(arange(n), i, j)`` with ``i <= j`` row by row: every unordered pair of ``n`` indices
    (shared, one set per size, never written; left writeable because the pair map goes
    to every kernel call, and Numba types read-only arguments on its slow path)."""
    found = _UPPER.get(n)
    if found is None:
        i, j = np.triu_indices(n)
        found = (np.arange(n), i.astype(np.int64), j.astype(np.int64))
        if len(_UPPER) >= 64:
            _UPPER.clear()
        _UPPER[n] = found
    return found


_SYMMETRIC: dict = {}


def _symmetric_rows(n: int) -> np.ndarray:
    """``(n, n)``: the row of :func:`_upper_pairs` that holds entry ``(i, j)`` or ``(j, i)``."""
    found = _SYMMETRIC.get(n)
    if found is None:
        _, ip, jp = _upper_pairs(n)
        found = np.empty((n, n), dtype=np.int64)
        found[ip, jp] = found[jp, ip] = np.arange(ip.size)
        found.flags.writeable = False
        if len(_SYMMETRIC) >= 64:
            _SYMMETRIC.clear()
        _SYMMETRIC[n] = found
    return found


# ---- argument checks --------------------------------------------------------------------
def _check_batch_axis(batch_axis):
    if batch_axis is None:
        return None
    if isinstance(batch_axis, (bool, np.bool_)):
        raise ValueError(f"batch_axis must be None or 0, got {batch_axis!r} (a bool is not an axis)")
    if not isinstance(batch_axis, (int, np.integer)):
        raise ValueError(f"batch_axis must be None or 0, got {batch_axis!r} of type {type(batch_axis).__name__}")
    if batch_axis != 0:
        raise ValueError(f"batch_axis must be None or 0 (only the leading axis can be a batch), got {batch_axis}")
    return 0


def _as_tuple(xs):
    if isinstance(xs, (tuple, list)):
        if len(xs) == 0:
            raise ValueError("xs is an empty tuple: give at least one input")
        return list(xs), True
    return [xs], False


def _check_shapes(points, batch, what="xs"):
    for k, p in enumerate(points):
        if (p.ndim <= 1) if batch is None else (p.ndim in (1, 2)):
            continue
        name = f"{what}[{k}]" if len(points) > 1 else what
        if batch is None and p.ndim > 1:
            raise ValueError(f"{name}.ndim should be 0 or 1 when batch_axis is None but got {p.ndim} "
                             f"(shape {p.shape}); flatten the input or use batch_axis=0 for [B, N] samples")
        if batch is not None and p.ndim not in (1, 2):
            raise ValueError(f"{name}.ndim should be 1 or 2 when batch_axis=0 but got {p.ndim} (shape {p.shape})")
    if batch is not None:
        sizes = {p.shape[0] for p in points}
        if len(sizes) > 1:
            raise ValueError(f"inputs have different batch sizes {[p.shape[0] for p in points]}; "
                             "with batch_axis=0 every input needs the same leading dimension")
        return points[0].shape[0]
    return None


def _point(x, k, multi):
    name = f"xs[{k}]" if multi else "xs"
    if isinstance(x, HyperDual):
        raise TypeError(f"{name} is a HyperDual: hessian()/jacobian() inside a function being "
                        "differentiated (nested differentiation) is not supported; compute the inner "
                        "derivative analytically or differentiate the outer function directly")
    if type(x) is np.ndarray and x.dtype == np.float64:
        return x.copy()  # (the common case, without the conversions below)
    return np.array(as_float_array(x, name), dtype=np.float64, copy=True)


def _output_value(y, what="the function"):
    """The value of an output, and whether it carries derivatives."""
    t = type(y)
    if t is HyperDual:
        return y._value
    if t is np.float64 or t is float:
        return np.asarray(y, dtype=np.float64)
    if isinstance(y, HyperDual):
        return y.value
    if isinstance(y, (numbers.Number, np.ndarray, np.generic)) and not isinstance(y, (str, bytes)):
        return as_float_array(y, "the output")
    raise TypeError(f"{what} returned {type(y).__name__}; expected a scalar (0-d or one-element "
                    "HyperDual or number), or a [B] array with batch_axis=0")


def _lane_rows(lane, count, rows, shape):
    """An output lane as a ``(count, rows)`` array (zeros when absent)."""
    if lane is None:
        return np.zeros((count, rows))
    if lane.size != count * rows:
        lane = np.broadcast_to(lane, (count,) + shape)
    return lane.reshape(count, rows)


# ---- the evaluation problem shared by all blocks -------------------------------------------------
class _Problem:
    """The function, the point, the cache and the pass machinery of one Hessian."""

    def __init__(self, evaluate, points, batch, out_value, order_kind, memory_budget, replay_all):
        self.evaluate = evaluate          # inputs -> output (HyperDual or constant)
        self.space = InputSpace(points, batch)
        self.batch = batch
        self._value = out_value           # None: not known yet (see the value property)
        self._subset = None               # (samples, their outputs) of a subset evaluation
        self.replay_all = replay_all      # the ys form replays every sample
        self.memory_budget = memory_budget
        self.kind = order_kind
        self.stats = Stats(function_calls=1 if order_kind == "callable" else 0)
        n = self.space.n
        self.cache = PairCache(n, batch)
        self._gval = self._gknown = None  # the gradient cache, allocated by _gradient_cache()
        self.lock = threading.RLock()
        self._one_pass_key = self._one_pass_answer = None

    @property
    def value(self):
        """The function value at the point; a batched callable-form Hessian learns it from
        its first pass over every sample, or from one plain evaluation if asked first."""
        if self._value is None:
            with self.lock:
                if self._value is None:
                    y = self.evaluate([p.copy() for p in self.space.points])
                    self.stats.function_calls += 1
                    value = _output_value(y)
                    self._check_output(value, self.batch, None, constant=True)
                    self._set_value(value, check=False)  # (checked by the next request)
        return self._value

    @value.setter
    def value(self, v):
        self._value = v

    def _set_value(self, value, check=True):
        """Keep the full batch's output values; check them against the subset evaluated
        when the Hessian was made (the independence check of the callable form)."""
        self._value = value.reshape(self.batch) if value.ndim else value
        if check and self._subset is not None:
            pick, got = self._subset
            full = np.reshape(self._value, -1)
            if full.shape != (self.batch,) or not np.allclose(got, full[pick], rtol=1e-9, atol=1e-12,
                                                               equal_nan=True):
                self._value = None  # so every later request checks, and refuses, again
                raise ValueError(_COUPLED)

    # The dense cache is allocated with np.zeros, which maps untouched pages lazily:
    # memory grows with the entries actually written, not with N².

    def __getstate__(self):
        if self.kind != "callable":
            raise TypeError("a Hessian of the hessian(ys, xs) form holds a record and cannot be pickled; "
                            "use the hessian(func, xs) form with a module-level function")
        state = self.__dict__.copy()
        del state["lock"]
        if isinstance(self.evaluate, _Replay):  # the record stays behind: f is called per pass
            state["evaluate"] = self.evaluate.func
            state["stats"] = stats = Stats(**vars(self.stats))
            stats.mode, stats.reason = "callable", "unpickled: the record is not pickled"
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.lock = threading.RLock()

    @property
    def budget(self):
        return settings.memory_budget if self.memory_budget is None else self.memory_budget

    def _run(self, U, ip, jp, samples, second, recorder=None):
        inputs, ctx = seed_inputs(self.space, U, ip, jp, samples, second, window=recorder is None,
                                  pattern=recorder)
        y = settle(self.evaluate(inputs, samples))
        self.stats.function_calls += 1
        dual = type(y) is HyperDual
        if dual and y._win is not None:
            densify(y)
        _tally(self.stats, ctx)
        nb = None if self.batch is None else (self.batch if samples is None else len(samples))
        value = _output_value(y)
        self._check_output(value, nb, samples, constant=not dual)
        if samples is None and self._value is None:  # the first pass over every sample
            self._set_value(value)                   # (ValueError for coupled samples)
        if dual and y._ctx is not None and y._ctx is not ctx:
            join_contexts(y._ctx, ctx)  # lanes of another pass: PassMismatchError
        rows = 1 if nb is None else nb
        g = _lane_rows(y._e1 if dual else None, len(U), rows, value.shape)
        h = _lane_rows(y._e12 if dual else None, len(ip), rows, value.shape) if second else None
        if rows == 1 and value.size == 1:
            v = value.reshape(-1)[0]
            if v == v:  # not NaN: the common case, checked without an array pass
                return g, h
        bad = np.isnan(value).reshape(-1)
        if bad.any():  # a NaN output has no derivatives, even where its lanes are zero
            bad = np.broadcast_to(bad, (rows,))
            g = np.where(bad, np.nan, g)
            h = None if h is None else np.where(bad, np.nan, h)
        return g, h

    def _check_output(self, value, nb, samples, constant=False):
        if nb is None:
            if value.size != 1:
                raise ValueError(f"Only support ys.numel()({value.size})==1 when batch_axis is None: "
                                 f"the output has shape {value.shape}; a Hessian needs a scalar output")
            return
        if value.ndim == 0 and constant:
            return  # a constant output (a plain number): its Hessian is zero for every sample
        if value.shape not in ((nb,), (nb, 1)):
            raise ValueError(f"Only support ys[0].numel()==1 when batch_axis=0: the output has shape "
                             f"{value.shape}; expected [{nb}] or [{nb}, 1] (one scalar per sample)")
        if samples is not None and np.ndim(self.value) > 0:
            full = np.reshape(self.value, -1)[samples]
            got = value.reshape(-1)
            if not np.allclose(got, full, rtol=1e-9, atol=1e-12, equal_nan=True):
                raise ValueError(_COUPLED)

    # -- Hessian entries ---------------------------------------------------------------
    def hessian_entries(self, b, i, j):
        """Values at flat entries (``b`` sample numbers or None, ``i``, ``j`` flat indices)."""
        if b is None and i.size <= _FEW and i.shape == j.shape:
            return self._few_entries(i, j)
        lo, hi = np.minimum(i, j), np.maximum(i, j)
        with self.lock:
            values, known = self.cache.lookup(b, lo, hi)
            if not known.all():
                self._compute(b, lo, hi, known)
                values, known = self.cache.lookup(b, lo, hi)
            return values

    def _few_entries(self, i, j):
        """:meth:`hessian_entries` (no batch) of at most ``_FEW`` entries, in Python lists:
        the same cache, passes and counts, without array bookkeeping that would cost more
        than the lookups (a block like ``H[0:2, 0:2]`` of a long input)."""
        il, jl = i.reshape(-1).tolist(), j.reshape(-1).tolist()
        lo = [a if a <= b else b for a, b in zip(il, jl)]
        hi = [b if a <= b else a for a, b in zip(il, jl)]
        with self.lock:
            values, missing = self.cache.get_few(lo, hi)
            if missing:
                n = self.space.n
                flat = np.array(sorted({a * n + b for a, b in missing}), dtype=np.int64)
                self._compute_flat(flat, None)
                values, missing = self.cache.get_few(lo, hi)
                if missing:  # (the passes store every pair they are given)
                    raise RuntimeError(f"hyperdual internal error: pairs {missing[:4]} were "
                                       "not stored by their pass")
        return np.array(values).reshape(i.shape)

    def _check_independent(self):
        """With a batch, check once that the samples are independent; ValueError if not.

        A function that couples samples (a sum or mean over the batch, a neighbour,
        a reversal, a cumulative sum) has no per-sample Hessian.  The callable form
        evaluates it on a few samples alone (``0, 1, B // 3, B - 1``, an asymmetric
        choice so reversals and shifts move their partners) when the Hessian is made,
        as its value call; independent samples give the full batch's outputs, which the
        first pass over every sample computes anyway (if that evaluation failed or did
        not follow the batch, the full batch is the value call and the subset is
        evaluated here, with no verdict if it fails).  A record (the ys form) cannot run on
        a subset (it may hold batch-shaped constants), and for ``B <= 4`` that subset
        is the batch, so these are evaluated twice on the full batch, once with the
        even-numbered samples moved and once with the odd ones: the samples left in
        place keep their outputs.  Best effort: a coupling that these evaluations do
        not disturb goes unnoticed (a request for a subset of the samples still
        checks), and outputs that depend on the batch size count as coupled.
        """
        self._independent = True
        if self.batch is None or self.batch < 2:
            return
        if self._subset is not None:  # evaluated when the Hessian was made: compared with
            if self._value is not None:  # the full batch's values as soon as they are known
                self._set_value(self._value)  # (by the first pass over every sample, or here)
            return
        if np.ndim(self.value) == 0:
            return
        want = np.reshape(self.value, -1)
        B = self.batch
        pick = _check_samples(B)
        moved = self.replay_all or pick.size == B
        if moved:
            trials = []
            for start in (0, 1):
                points = []
                for p in self.space.points:
                    q = p.copy()
                    q[start::2] += 0.5 + 0.25 * np.abs(q[start::2])
                    points.append(HyperDual._new(q, None, None, None, None) if self.replay_all else q)
                trials.append((points, slice(1 - start, None, 2)))
        else:
            trials = [([p[pick] for p in self.space.points], pick)]
        for inputs, kept in trials:
            try:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore")
                    got = _output_value(self.evaluate(inputs)).reshape(-1)
            except (ArithmeticError, ValueError):  # the trial left the domain: no verdict
                return
            finally:
                self.stats.function_calls += 1
            if moved:
                if got.shape != want.shape:
                    raise ValueError(_COUPLED)
                got = got[kept]
            elif got.shape != (pick.size,):  # the output does not follow the batch: no verdict
                return
            if not np.allclose(got, want[kept], rtol=1e-9, atol=1e-12, equal_nan=True):
                raise ValueError(_COUPLED)

    def hessian_samples(self, bsel, i, j):
        """``H[bsel[s], i, j]`` for every sample ``s`` of ``bsel`` (1-D): shape
        ``(len(bsel), *i.shape)``.  A request that repeats one block for every
        sample it touches (``H[:]``, ``H[5:9, 0]``) costs memory and work per
        pair here, not per (sample, pair)."""
        lo, hi = np.minimum(i, j), np.maximum(i, j)
        with self.lock:
            values, known = self.cache.lookup_samples(bsel, lo, hi)
            if not known.all():
                if known.any():
                    shape = known.shape
                    b = np.broadcast_to(bsel.reshape((-1,) + (1,) * lo.ndim), shape)
                    self._compute(b, np.broadcast_to(lo, shape), np.broadcast_to(hi, shape), known)
                else:
                    n = self.space.n
                    plo, phi = np.divmod(_distinct(lo * n + hi, n * n), n)
                    need = _distinct(bsel, self.batch)
                    self._compute_pairs(plo, phi, None if self.replay_all or need.size == self.batch
                                        else need)
                values, known = self.cache.lookup_samples(bsel, lo, hi)
            return values

    def _compute(self, b, lo, hi, known):
        miss = ~known
        n = self.space.n
        if known.any():
            flat = _distinct(lo[miss] * n + hi[miss], n * n)
        else:
            flat = _distinct(lo * n + hi, n * n)
        self._compute_flat(flat, self._samples_needed(b, miss))

    def _compute_flat(self, flat, samples, store_zeros=True):
        """Compute the unordered pairs with codes ``flat = lo * n + hi`` (sorted, distinct).

        Returns whether pairs were left out as structural zeros (stored as zeros
        unless ``store_zeros`` is False: then the caller fills them)."""
        n = self.space.n
        self._dropped = False
        if self.batch is None and (getattr(self, "_pattern", None) is not None or (
                flat.size >= settings.pattern_min_pairs
                and (flat.size >= 4 * n or settings.pattern_min_pairs == 0))):
            # (a pattern found once serves every request)
            flat = self._drop_structural_zeros(flat, store=store_zeros)
        plo, phi = np.divmod(flat, n)
        self._compute_pairs(plo, phi, samples)
        return self._dropped

    def hessian_block(self, a, b):
        """The whole block ``H[a][b]`` (no batch) as a new dense array, assembled tile by
        tile from the cache: a full request costs memory copies, not per-entry lookups."""
        sp = self.space
        oa, na, ob, nb = sp.offsets[a], sp.sizes[a], sp.offsets[b], sp.sizes[b]
        with self.lock:
            if na == nb == sp.n and not self.cache.tiles and self._one_pass(sp.n):
                return self._whole_space()
            values, known = self.cache.block(oa, na, ob, nb)
            if not known.all():
                ii, jj = np.nonzero(~known)
                i, j = ii + oa, jj + ob
                n = sp.n
                flat = _distinct(np.minimum(i, j) * n + np.maximum(i, j), n * n)
                if self._compute_flat(flat, None, store_zeros=False):
                    # every entry of the block still unknown is a structural zero
                    rows, cols = ((oa, na), (ob, nb)) if oa <= ob else ((ob, nb), (oa, na))
                    filled = self.cache.fill_zeros(*rows, *cols)
                    self.stats.entries_cached += filled
                    self.stats.structural_zeros += filled
                values, known = self.cache.block(oa, na, ob, nb)
            return values

    def _one_pass(self, n):
        """Whether every pair of a small problem (no batch) goes in one ordinary pass:
        too few pairs to look for a sparsity pattern, and the pass plan would not split
        them.  (A pattern is only found for larger requests, which fill the cache.)"""
        key = (n, self.budget, settings.pattern_min_pairs)
        if self._one_pass_key != key:  # (asked on every whole request: answered once)
            pairs = n * (n + 1) // 2
            self._one_pass_answer = pairs < settings.pattern_min_pairs and \
                pairs <= pass_capacity(max(1, n), self.budget)
            self._one_pass_key = key
        return self._one_pass_answer

    def _whole_space(self):
        """The whole Hessian (``[n, n]``, or ``[B, n, n]`` with a batch) from one pass over
        every pair ``i <= j``, with nothing cached yet: the shortcut of a whole request for
        what the general path would do anyway (the pairs, seeds and pass are the same),
        without its per-entry bookkeeping.  The pass's rows are gathered into the result
        and, gathered again, become the cache's tile."""
        n = self.space.n
        U, ip, jp = _upper_pairs(n)
        g, h = self._run(U, ip, jp, None, True)
        rows = _symmetric_rows(n)  # (i, j) -> the row of its pair
        if self.batch is None:  # the gradient (every input: U = 0 .. n-1) and the counts
            gval, gknown = self._gradient_cache()
            gval[...] = g[:, 0]
            gknown[...] = True
            self.stats.passes += 1
            self.stats.pairs_evaluated += len(ip)
            full = h.reshape(-1).take(rows)
            self.stats.entries_cached += self.cache.store_all(full.copy(), copy=False)
            return full
        self._store(None, U, g, ip, jp, None)  # the gradient and the counts
        full = h.T[:, rows.reshape(-1)].reshape(self.batch, n, n)
        tile = h.T[:, rows.reshape(-1)].reshape(self.batch, n, n)
        self.stats.entries_cached += self.cache.store_all(tile, copy=False) * self.batch
        return full

    def hessian_all_samples(self):
        """``H[:]`` of a batched single-input Hessian with nothing cached, when every pair
        fits one pass (None otherwise: the general path then runs)."""
        sp = self.space
        n = sp.n
        if len(sp.points) != 1 or self.cache.ntiles != 1 \
                or n * (n + 1) // 2 > pass_capacity(sp.elements(self.batch), self.budget):
            return None
        with self.lock:
            if self.cache.tiles:
                return None
            if not getattr(self, "_independent", False):
                self._check_independent()
            return self._whole_space()

    def _drop_structural_zeros(self, flat, store=True):
        """Store the pairs outside the sparsity pattern as exact zeros; return the others
        (``store=False``: the caller stores them; ``self._dropped`` says whether any were).

        The pattern comes from one pattern pass (:mod:`hyperdual.pattern`: first-order
        lanes for every input), run once per Hessian when a large request makes it
        worth it and its lanes fit the memory budget.  If the function uses a step the
        pattern pass cannot follow, or is dense, every pair is seeded as before.
        """
        if not hasattr(self, "_pattern"):
            self._pattern = self._find_pattern()
        pattern = self._pattern
        if pattern is None:
            return flat
        pos = np.searchsorted(pattern, flat)
        inside = pattern[np.minimum(pos, pattern.size - 1)] == flat if pattern.size else \
            np.zeros(flat.shape, dtype=bool)
        zeros = flat[~inside]
        self._dropped = zeros.size > 0
        if zeros.size and store:
            zlo, zhi = np.divmod(zeros, self.space.n)
            self.cache.store(None, zlo, zhi, np.zeros((zeros.size, 1)))
            self.stats.entries_cached += zeros.size
            self.stats.structural_zeros += zeros.size
        return flat[inside]

    def _find_pattern(self):
        """Sorted codes ``lo * n + hi`` of the pairs that can be nonzero, or None."""
        n = self.space.n
        if n * n * 8 * LIVE_FACTOR > self.budget:  # first-order lanes for every input must fit
            return None
        recorder = Recorder(n)
        U = np.arange(n)
        none = np.zeros(0, np.int64)
        try:
            g, _ = self._run(U, none, none, None, False, recorder=recorder)
        except Exception:  # noqa: BLE001 - a step it cannot follow (PatternAbort, maybe
            return None    # re-raised as another error by the function), or a genuine
            # error, which the ordinary passes then raise again
        pattern = recorder.pairs()
        if pattern is None or np.isnan(g).any():  # a NaN output: every entry is NaN, none zero
            return None
        self._store(None, U, g, none, none, None)  # the gradient, at no extra cost
        return pattern

    def _compute_pairs(self, plo, phi, samples):
        """Run the passes for unordered pairs ``(plo, phi)`` on ``samples`` (None: all)."""
        n = self.space.n
        if plo.size == 0:  # every pair was a structural zero
            return
        if samples is None and not getattr(self, "_independent", False):
            self._check_independent()
        nsamp = None if self.batch is None else (self.batch if samples is None else len(samples))
        for clo, chi in plan_passes(plo, phi, self.space.elements(nsamp), self.budget):
            if clo.size <= _FEW and self.batch is None:  # a few pairs: Python lists
                lo, hi = clo.tolist(), chi.tolist()
                seeds = sorted(set(lo) | set(hi))
                row = {u: k for k, u in enumerate(seeds)}
                U = np.array(seeds, dtype=np.int64)
                ip = np.array([row[a] for a in lo], dtype=np.int64)
                jp = np.array([row[b] for b in hi], dtype=np.int64)
                g, h = self._run(U, ip, jp, samples, True)
                self._store(samples, U, g, clo, chi, None)  # (gradient and counts)
                self.cache.store_few(lo, hi, h)
                self.stats.entries_cached += len(lo)
                continue
            U = _distinct(np.concatenate([clo, chi]), n)
            ip, jp = np.searchsorted(U, clo), np.searchsorted(U, chi)
            g, h = self._run(U, ip, jp, samples, True)
            self._store(samples, U, g, clo, chi, h)

    def _gradient_cache(self):
        """The gradient values and their "known" mask (``[n]``, or ``[B, n]``)."""
        if self._gval is None:
            n = self.space.n
            shape = (n,) if self.batch is None else (self.batch, n)
            self._gknown = np.zeros(shape, dtype=bool)
            self._gval = np.zeros(shape)
        return self._gval, self._gknown

    def _store(self, samples, U, g, lo, hi, h):
        # Values first, then the mask: an interruption leaves entries unknown, never wrong.
        self._gradient_cache()
        if self.batch is None:
            self._gval[U] = g[:, 0]
            self._gknown[U] = True
        elif samples is None and U.size == self.space.n:  # every sample and input (U is sorted)
            self._gval[...] = g.T
            self._gknown[...] = True
        else:
            s = slice(None) if samples is None else samples[:, None]
            self._gval[s, U] = g.T
            self._gknown[s, U] = True
        if h is not None:
            self.cache.store(samples, lo, hi, h)
            self.stats.entries_cached += len(lo) * (
                1 if self.batch is None else self.batch if samples is None else len(samples))
        self.stats.passes += 1
        self.stats.pairs_evaluated += len(lo)
        self.stats.samples_evaluated += 0 if self.batch is None else (
            self.batch if samples is None else len(samples))

    def hvp(self, v):
        """``H @ v`` by one pass of the function (or its record)."""
        def run(xd):
            y = settle(self.evaluate([xd]))
            self.stats.function_calls += 1
            self.stats.passes += 1
            return y
        with self.lock:
            return _hvp_pass(run, self.space.points[0], v)

    # -- gradient -------------------------------------------------------------------
    def gradient_entries(self, b, i):
        key = i if b is None else (b, i)
        with self.lock:
            known = self._gradient_cache()[1][key]
            if not known.all():
                miss = ~known
                U = _distinct(i[miss], self.space.n)
                samples = self._samples_needed(b, miss)
                nsamp = None if self.batch is None else (self.batch if samples is None else len(samples))
                no_pairs = np.zeros(0, np.int64)
                for cu, _ in plan_passes(U, U, self.space.elements(nsamp), self.budget):
                    g, _ = self._run(cu, no_pairs, no_pairs, samples, False)
                    self._store(samples, cu, g, no_pairs, no_pairs, None)
            return self._gval[key]

    def _samples_needed(self, b, miss):
        """The batch samples a request misses (None: all, or no batch)."""
        if b is None or self.replay_all:
            return None
        need = _distinct(b[miss], self.batch)
        return need if need.size < self.batch else None


# ---- the public objects ---------------------------------------------------------------------
def _axis_numbers(base: np.ndarray, shape: tuple, axis: int | None) -> np.ndarray:
    """A read-only view of ``shape`` whose entries are their index along ``axis``.

    Zero strides everywhere else, so it costs no memory whatever the shape.
    """
    strides = tuple(8 if t == axis else 0 for t in range(len(shape)))
    view = np.ndarray(shape, dtype=np.int64, buffer=base, strides=strides)
    view.flags.writeable = False
    return view


_COORDINATES: dict = {}


def _coordinates(dims: list[tuple[str, int]]):
    """``(shape, {"b", "i", "j": read-only coordinate views})`` of a block; shared by
    every block of the same dimensions (the views are read-only and cost no memory)."""
    key = tuple(dims)
    found = _COORDINATES.get(key)
    if found is None:
        found = _make_coordinates(dims)
        if len(_COORDINATES) >= 256:
            _COORDINATES.clear()
        _COORDINATES[key] = found
    return found


def _make_coordinates(dims):
    shape = tuple(d for _, d in dims)
    base = np.arange(max([d for _, d in dims] + [1]), dtype=np.int64)
    axis = {name: k for k, (name, _) in enumerate(dims)}
    return shape, {name: _axis_numbers(base, shape, axis.get(name)) for name in ("b", "i", "j")}


def _whole(index, ndim: int = 2) -> bool:
    """Whether ``index`` selects a whole ``ndim``-D array as a copy-equivalent:
    ``:``, ``...``, ``()``, ``(:, :)``, ``(..., :)`` and the like."""
    if type(index) is slice:
        return index == _ALL
    items = index if type(index) is tuple else (index,)
    if len(items) > ndim or sum(1 for it in items if it is Ellipsis) > 1:
        return False
    for it in items:
        if it is not Ellipsis and (type(it) is not slice or it != _ALL):
            return False
    return True


_ALL = slice(None)


def _batch_only(rb, ri, rj):
    """The sample numbers (1-D) when a batched request is one block repeated per sample:
    ``rb`` varies along result axis 0 only and ``ri``, ``rj`` do not vary along it
    (zero strides of the coordinate views tell).  None otherwise."""
    if not isinstance(rb, np.ndarray) or rb.ndim == 0 or rb.size == 0:
        return None
    if any(st != 0 and d != 1 for st, d in zip(rb.strides[1:], rb.shape[1:])):
        return None
    if rb.shape[0] != 1 and (ri.strides[0] != 0 or rj.strides[0] != 0):
        return None
    return np.asarray(rb[(slice(None),) + (0,) * (rb.ndim - 1)], dtype=np.int64)


class Hessian:
    """A lazy Hessian block: computes nothing until indexed, then only what was asked.

    Index it exactly like the full ``numpy.ndarray`` it stands for
    (``H[:]``, ``H[0:2, 1]``, ``H[..., ::-1]``, integer arrays, masks); the
    result is a plain ``numpy.ndarray`` (a NumPy scalar for a full integer
    index).  Entries are cached; ``H[j, i]`` after ``H[i, j]`` runs nothing.

    Attributes
    ----------
    shape, ndim, dtype
        Of the full block.
    value
        The function value at the point (``[B]`` with a batch).
    gradient
        The gradient with respect to this block's row input (computed, or
        taken from the passes already run).
    stats
        A :class:`Stats` of the work done so far (shared by all blocks).

    Examples
    --------
    >>> import numpy as np, hyperdual
    >>> H = hyperdual.hessian(lambda x: np.sum(x ** 3) + x[1] * x[2], np.array([1.0, 2.0, 3.0]))
    >>> H.shape, H.stats.passes
    ((3, 3), 0)
    >>> H[1:, 1:]
    array([[12.,  1.],
           [ 1., 18.]])
    >>> H.stats.pairs_evaluated
    3
    """

    def __init__(self, problem: _Problem, a: int, b: int):
        self._problem = problem
        self._a, self._b = a, b
        sp = problem.space
        dims = []
        if problem.batch is not None:
            dims.append(("b", problem.batch))
        if sp.has_axis[a]:
            dims.append(("i", sp.sizes[a]))
        if sp.has_axis[b]:
            dims.append(("j", sp.sizes[b]))
        self._shape, self._coords = _coordinates(dims)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def ndim(self) -> int:
        return len(self._shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float64)

    @property
    def size(self) -> int:
        return int(np.prod(self._shape))

    def __len__(self) -> int:
        if not self._shape:
            raise TypeError("len() of unsized object")
        return self._shape[0]

    @property
    def stats(self) -> Stats:
        return self._problem.stats

    @property
    def value(self) -> np.ndarray:
        return np.array(self._problem.value)

    @property
    def gradient(self) -> np.ndarray:
        p = self._problem
        off = int(p.space.offsets[self._a])
        dims = []
        if p.batch is not None:
            dims.append(("b", p.batch))
        if p.space.has_axis[self._a]:
            dims.append(("i", p.space.sizes[self._a]))
        _, c = _coordinates(dims)
        b = None if p.batch is None else np.array(c["b"])
        return np.asarray(p.gradient_entries(b, off + np.array(c["i"])))

    def hvp(self, v) -> np.ndarray:
        """The product ``H @ v`` in one pass, without forming ``H``.

        For the Hessian of one input without a batch.  A recorded Hessian
        replays its record (the function is not called again).

        Examples
        --------
        >>> import numpy as np, hyperdual
        >>> H = hyperdual.hessian(lambda x: np.sum(x ** 3), np.array([1.0, 2.0]))
        >>> H.hvp(np.array([1.0, 1.0]))
        array([ 6., 12.])
        """
        p = self._problem
        if p.batch is not None or len(p.space.points) != 1:
            raise ValueError("Hessian.hvp needs the Hessian of one input without a batch; "
                             "index the blocks (H[:]) and multiply instead")
        return p.hvp(v)

    def __getitem__(self, index) -> Any:
        p = self._problem
        if p.batch is None and len(self._shape) == 2 and _whole(index):
            return p.hessian_block(self._a, self._b)
        if p.batch is not None and len(self._shape) == 3 and _whole(index, 3):
            full = p.hessian_all_samples()
            if full is not None:
                return full
        c = self._coords
        ri = c["i"][index]
        rj = c["j"][index]
        scalar = not isinstance(ri, np.ndarray)
        bsel = None
        if p.batch is not None:
            rb = c["b"][index]
            bsel = _batch_only(rb, ri, rj)
            if bsel is not None:  # the same block for every sample touched: work per pair
                ri, rj = ri[0], rj[0]
        i, j = np.asarray(ri, dtype=np.int64), np.asarray(rj, dtype=np.int64)
        off_a, off_b = p.space.offsets[self._a], p.space.offsets[self._b]
        if off_a:
            i = i + off_a
        if off_b:
            j = j + off_b
        if p.batch is None:
            out = p.hessian_entries(None, i, j)
        elif bsel is not None:
            out = p.hessian_samples(bsel, i, j)
        else:
            out = p.hessian_entries(np.asarray(rb, dtype=np.int64), i, j)
        return out[()] if scalar else np.asarray(out)

    def __array__(self, dtype=None, copy=None):
        full = np.asarray(self[...])
        return full if dtype is None else full.astype(dtype)

    def __repr__(self) -> str:
        st = self._problem.stats
        return f"Hessian(shape={self._shape}, entries_cached={st.entries_cached}, passes={st.passes})"


class _CallFunction:
    """Calls the user's function with one pass's inputs (picklable when ``func`` is)."""

    def __init__(self, func, multi):
        self.func, self.multi = func, multi

    def __call__(self, inputs, samples=None):
        return self.func(*inputs) if self.multi else self.func(inputs[0])


def _callable_points(xs, batch_axis):
    if type(xs) is np.ndarray and xs.dtype == np.float64 and batch_axis is None and xs.ndim <= 1:
        point = xs.copy()  # the common case: one float vector, nothing to convert or check
        point.flags.writeable = False
        return [point], None, False
    items, multi = _as_tuple(xs)
    points = [_point(x, k, multi) for k, x in enumerate(items)]
    batch = _check_shapes(points, batch_axis)
    for p in points:  # the Hessian's own point: nothing may move it
        p.flags.writeable = False
    return points, batch, multi


def _check_samples(B: int) -> np.ndarray:
    """The samples of the independence check: ``0, 1, B // 3, B - 1`` (distinct)."""
    return _distinct(np.array([0, 1, B // 3, B - 1]), B)


def _subset_output(evaluate, points, pick):
    """The outputs of ``pick``'s samples alone (``[len(pick)]``), or None when that
    evaluation fails or its output does not follow the batch; and whether its record
    shows the samples kept apart (ValueError when it shows a step that mixes them)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        replay_, y, _ = _record(evaluate, [p[pick] for p in points], pick.size, replay=False)
    if y is None:  # (the full evaluation then raises its error, or not)
        return None, False
    value = _output_value(y)
    if value.shape not in ((pick.size,), (pick.size, 1)):
        return None, False
    return value.reshape(-1), replay_ is not None


class _Replay:
    """Replays the record of one call of the user's function with a pass's inputs.

    Within one Hessian the point is fixed, so the record made by the value call is
    exact for every pass whatever branches the function took: the passes differ only
    in their seeds, which the function never sees.  Pickled, it becomes the function
    itself (the record holds the implementations it ran, not the user's code)."""

    def __init__(self, program, output, func):
        self.program, self.output, self.func = program, output, func

    def __call__(self, inputs, samples=None):
        if self.program is None:  # an output that does not depend on the inputs
            return self.output
        return self.program.run(inputs)


def _samples_apart(nodes, leaves, output, batch):
    """The batch rules' verdict on a record (:mod:`hyperdual.batch`): "" when it keeps
    the samples apart, else why it has no verdict (a step without a rule, or one the
    rules cannot read: the samples are then compared).  ValueError when a step mixes
    the samples."""
    try:
        mixed = coupling(nodes, leaves, output, batch)
    except Unknown as exc:
        return f"with batch_axis=0, {exc} has no rule for the batch axis (hyperdual.batch)"
    except Exception as exc:  # noqa: BLE001 - a rule that cannot read this call: no verdict
        return (f"with batch_axis=0, the batch rules could not read the record "
                f"({type(exc).__name__}: {exc})")
    if mixed:
        raise ValueError(f"with batch_axis=0 the samples must be independent, but {mixed}, which "
                         "mixes them: a per-sample Hessian is not defined. Use batch_axis=None on "
                         "the flattened input instead")
    return ""


def _record(evaluate, points, batch=None, replay=True, vector=False):
    """Call the user's function once on recorded inputs: ``(replay, output, "")``, or
    ``(None, None, reason)`` when it cannot be recorded (it is then called per pass),
    or ``(None, output, reason)`` when the batch rules cannot judge it.  ``replay=False``:
    only the verdict on the samples is wanted: True in place of the replay.  ``vector``:
    the output may be ``[B, M]`` (a Jacobian's), not only ``[B]``.

    With a batch, the record must keep the samples apart (:mod:`hyperdual.batch`):
    ValueError naming the first step that mixes them; a step without a batch rule
    makes the function be called per pass, as without a record."""
    leaves = [Node(None, None, p) for p in points]
    inputs = [HyperDual._new(p, None, None, None, None, leaf) for p, leaf in zip(points, leaves)]
    try:
        y, nodes = record_session(lambda: evaluate(inputs), leaves)
    except Exception as exc:  # noqa: BLE001 - the plain value call raises it again, or not
        return None, None, f"the function could not be recorded ({type(exc).__name__}: {exc})"
    if type(y) is HyperDual and y._node is not None:
        shape = y._value.shape
        if batch is not None and batch > 1 and (shape in ((batch,), (batch, 1)) or
                                                (vector and shape[:1] == (batch,))):
            # (an output of another shape is refused by the caller, with its own message)
            why = _samples_apart(nodes, leaves, y._node, batch)
            if why:  # (the output's value serves the calls per pass)
                return None, y, why + ": the function is called per pass"
        return (_Replay(Program(nodes, leaves, y._node), None, evaluate) if replay else True), y, ""
    if isinstance(y, HyperDual) or (isinstance(y, np.ndarray) and y.dtype.kind not in "biuf"):
        return None, None, "the function's output is not an array computed from its inputs"
    try:
        value = _output_value(y)
    except TypeError as exc:
        return None, None, str(exc)
    return _Replay(None, value.copy(), evaluate), value, ""


_RECORD_OFF = "recording is off (record=False, or hyperdual.seeding.settings.trace)"


class _Counted:
    """The user's function, counting its calls while a Hessian is made."""

    def __init__(self, evaluate):
        self.evaluate, self.calls = evaluate, 0

    def __call__(self, inputs, samples=None):
        self.calls += 1
        return self.evaluate(inputs, samples)


def _callable_problem(func, xs, batch_axis, memory_budget, record=None):
    points, batch, multi = _callable_points(xs, batch_axis)
    evaluate = _CallFunction(func, multi)
    counted = _Counted(evaluate)
    reason, y, proven = _RECORD_OFF, None, False
    if settings.trace if record is None else record:
        replay_, y, reason = _record(counted, points, batch)
        if replay_ is not None:  # (a batch: every pass replays every sample, kept apart)
            replay_.func = evaluate
            value = _output_value(y)
            problem = _Problem(replay_, points, batch, value, "callable", memory_budget,
                               replay_all=batch is not None)
            problem.stats.mode = "recorded"
            problem._check_output(value, batch, None, constant=replay_.program is None)
            problem.value = value.reshape(()) if batch is None else \
                (value.reshape(batch) if value.ndim else value)
            problem._independent = True
            return problem, multi
    elif batch is not None and batch > 4:
        # A batch: the value call runs on the independence check's samples alone, which
        # shows the output's shape; the full batch's values come with the first pass
        # (or one plain evaluation when asked first) and are compared with these.  It is
        # recorded: a step of the record that mixes samples is refused here.
        pick = _check_samples(batch)
        got, proven = _subset_output(counted, points, pick)
        if got is not None:
            problem = _Problem(evaluate, points, batch, None, "callable", memory_budget, replay_all=False)
            problem._subset = (pick, got)
            problem.stats.reason = reason
            problem.stats.function_calls = counted.calls
            if proven:
                problem._independent = True
            return problem, multi
    if y is None and batch is not None and batch > 1 and counted.calls == 0:
        replay_, y, _ = _record(counted, points, batch, replay=False)  # (ValueError: mixed)
        proven = replay_ is not None
    if y is None:
        y = counted([p.copy() for p in points])
    value = _output_value(y)
    problem = _Problem(evaluate, points, batch, value, "callable", memory_budget, replay_all=False)
    problem.stats.function_calls = counted.calls
    problem._check_output(value, batch, None, constant=not isinstance(y, HyperDual))
    problem.value = value.reshape(()) if batch is None else (value.reshape(batch) if value.ndim else value)
    problem.stats.reason = reason
    if proven:
        problem._independent = True
    return problem, multi


def _recorded_problem(ys, xs, batch_axis, memory_budget, check=True):
    items, multi = _as_tuple(xs)
    leaves = []
    for k, x in enumerate(items):
        name = f"xs[{k}]" if multi else "xs"
        if not isinstance(x, HyperDual) or x._node is None:
            raise TypeError(f"{name} must be an input made with hyperdual.variable() when ys is an "
                            "array (the hessian(ys, xs) form); or pass a function: hessian(func, xs)")
        if x._node.call is not None:
            raise ValueError(f"{name} was modified in place after hyperdual.variable() created it; "
                             "the record no longer refers to it as an input. Create a new variable "
                             "instead of assigning into it")
        if any(x._node is leaf for leaf in leaves):
            raise ValueError(f"{name} is the same variable as an earlier member of xs; give each "
                             "variable once (its blocks are the same)")
        leaves.append(x._node)
    if not isinstance(ys, HyperDual) or ys._node is None:
        raise TypeError(f"ys is a {type(ys).__name__}, not an array computed from hyperdual.variable "
                        "inputs; for a function, call hessian(func, xs)")
    points = [leaf.value for leaf in leaves]
    batch = _check_shapes(points, batch_axis)
    order = topological(ys._node)
    present = {id(n) for n in order}
    if not any(id(leaf) in present for leaf in leaves):
        raise ValueError("ys was not computed from xs: none of the given inputs appears in its record")
    ours = {id(leaf) for leaf in leaves}  # other variables are constants here
    program = Program(order, leaves + [n for n in order if n.call is None and id(n) not in ours],
                      ys._node)

    def evaluate(inputs, samples=None):
        return program.run(inputs)

    problem = _Problem(evaluate, points, batch, ys.value, "recorded", memory_budget, replay_all=True)
    problem.stats.mode = "recorded"
    if check:
        problem._check_output(ys.value, batch, None)
    if batch is not None and batch > 1 and ys.value.shape in ((batch,), (batch, 1)):
        problem.stats.reason = _samples_apart(order, leaves, ys._node, batch)
        if not problem.stats.reason:  # (otherwise the samples are compared)
            problem._independent = True
    return problem, multi


def _check_record(record, f_or_ys):
    if record is not None and type(record) is not bool:
        raise TypeError(f"record must be True, False or None, got {record!r}")
    if record is False and not callable(f_or_ys):
        raise ValueError("record=False asks to call the function per pass, but ys is already a "
                         "record (the hessian(ys, xs) form); pass the function instead")
    return record


def _problem(f_or_ys, xs, batch_axis, memory_budget, record=None):
    batch_axis = _check_batch_axis(batch_axis)
    record = _check_record(record, f_or_ys)
    if memory_budget is not None and int(memory_budget) <= 0:
        raise ValueError(f"memory_budget must be a positive number of bytes, got {memory_budget}")
    if callable(f_or_ys):
        return _callable_problem(f_or_ys, xs, batch_axis, memory_budget, record)
    return _recorded_problem(f_or_ys, xs, batch_axis, memory_budget)


def hessian(f_or_ys: Callable | HyperDual, xs, batch_axis: int | None = None, *,
            memory_budget: int | None = None, record: bool | None = None):
    """Lazy Hessian of a scalar function (or a recorded output) at a point.

    Parameters
    ----------
    f_or_ys : callable or HyperDual
        A function ``f(x)`` (``f(*xs)`` for a tuple/list ``xs``) written with
        NumPy, returning a scalar (``[B]`` with ``batch_axis=0``); or ``ys``,
        an output computed from inputs made with :func:`hyperdual.variable`.
    xs : array_like or tuple/list of array_like
        The point: ``[N]`` or 0-d (``[B, N]`` or ``[B]`` with a batch); the
        Hessian keeps its own float64 copy.  With ``ys``, the variables.
    batch_axis : None or 0
        ``0``: the leading axis holds independent samples; ``H`` is ``[B, N, N]``.
    memory_budget : int, optional
        Bytes of lanes per pass (default :func:`hyperdual.set_memory_budget`, 512 MiB).
    record : bool, optional
        For a function: ``True`` records it once, on the value call, and replays
        the record in every pass, so it is called once per Hessian (exact for a
        function that caches something derived from its input on its first call);
        ``False`` calls it in every pass.  ``None`` (default): the setting
        ``hyperdual.seeding.settings.trace`` (False for now: recording costs about
        40-85 µs per Hessian).  A function that cannot be recorded is called per
        pass, and ``H.stats.mode`` / ``H.stats.reason`` say which mode ran and why.
        With ``batch_axis=0`` the function is called per pass.

    Returns
    -------
    Hessian or tuple of tuples of Hessian
        ``H[i][j]`` is the block of inputs ``i`` and ``j`` for a tuple ``xs``.
        Nothing is differentiated until a block is indexed.

    Examples
    --------
    >>> import numpy as np, hyperdual
    >>> def rosen(x):
    ...     return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
    >>> H = hyperdual.hessian(rosen, np.array([1.0, 1.0, 1.0]))
    >>> H[:]
    array([[ 802., -400.,    0.],
           [-400., 1002., -400.],
           [   0., -400.,  200.]])
    """
    problem, multi = _problem(f_or_ys, xs, batch_axis, memory_budget, record)
    m = len(problem.space.points)
    if not multi:
        return Hessian(problem, 0, 0)
    return tuple(tuple(Hessian(problem, a, b) for b in range(m)) for a in range(m))


def gradient(func: Callable, x, batch_axis: int | None = None, *,
             record: bool | None = None) -> np.ndarray:
    """The exact gradient of a scalar function (one pass of first-order lanes).

    ``record`` as for :func:`hessian`.

    Examples
    --------
    >>> import numpy as np, hyperdual
    >>> hyperdual.gradient(lambda x: np.sum(x ** 2), np.array([1.0, -2.0]))
    array([ 2., -4.])
    """
    return hessian(func, x, batch_axis, record=record).gradient


def hvp(func: Callable, x, v) -> np.ndarray:
    """The Hessian-vector product ``H(x) @ v`` of a scalar function.

    One pass with ``e1`` the unit vectors and ``e2 = v``: row ``i`` of the
    cross lane is ``e_iᵀ H v``.  (:meth:`Hessian.hvp` does the same on a lazy
    Hessian, reusing its record.)

    Examples
    --------
    >>> import numpy as np, hyperdual
    >>> hyperdual.hvp(lambda x: np.sum(x ** 3), np.array([1.0, 2.0]), np.array([1.0, 1.0]))
    array([ 6., 12.])
    """
    point = _point(x, 0, False)
    return _hvp_pass(func, point, v)


def _hvp_pass(evaluate, point, v):
    """``H @ v`` from one pass of ``evaluate`` (a HyperDual input -> the output)."""
    if point.ndim > 1:
        raise ValueError(f"x.ndim should be 0 or 1 but got {point.ndim}")
    vec = as_float_array(v, "v")
    if vec.shape != point.shape:
        raise ValueError(f"v has shape {vec.shape}; expected the shape of x, {point.shape}")
    n = point.size
    ctx = SeedContext(np.arange(n), np.zeros(n, np.int64), n, 1, token=object())
    e1 = np.eye(n).reshape((n,) + point.shape)
    xd = HyperDual._new(point, e1, vec.reshape((1,) + point.shape).copy(), None, ctx)
    if point.ndim == 1:  # fresh contiguous (n,) value and (K, n) lanes: flat, maybe packed
        xd._flat = True
        seeded(xd)
    y = evaluate(xd)
    value = _output_value(y)
    if value.size != 1:
        raise ValueError(f"hvp needs a scalar output, got shape {value.shape}")
    if np.isnan(value).any():  # a NaN output has no derivatives, as in the Hessian's passes
        return np.full(point.shape, np.nan)
    if not isinstance(y, HyperDual) or y._e12 is None:
        return np.zeros(point.shape)
    return y._e12.reshape(point.shape).copy()


# ---- Jacobian --------------------------------------------------------------------------------
class Jacobian:
    """A lazy Jacobian block ``∂ys/∂xs[k]``: columns are computed when indexed.

    ``ys`` ``[M]`` (or 0-d) and ``x`` ``[N]`` (or 0-d) give ``[M, N]``;
    with ``batch_axis=0``, ``[B, M]`` and ``[B, N]`` give ``[B, M, N]``.

    Examples
    --------
    >>> import numpy as np, hyperdual
    >>> J = hyperdual.jacobian(lambda x: np.array([1.0, 2.0]) * x ** 2, np.array([1.0, 3.0]))
    >>> J[:]
    array([[ 2.,  0.],
           [ 0., 12.]])
    """

    def __init__(self, problem, k):
        self._p, self._k = problem, k
        p = problem
        dims = []
        if p.batch is not None:
            dims.append(("b", p.batch))
        if p.out_axis:
            dims.append(("i", p.out_size))
        if p.space.has_axis[k]:
            dims.append(("j", p.space.sizes[k]))
        self._shape, self._coords = _coordinates(dims)

    shape = property(lambda self: self._shape)
    ndim = property(lambda self: len(self._shape))
    dtype = property(lambda self: np.dtype(np.float64))
    stats = property(lambda self: self._p.stats)

    def __len__(self):
        if not self._shape:
            raise TypeError("len() of unsized object")
        return self._shape[0]

    def __getitem__(self, index):
        c = self._coords
        ri, rj = c["i"][index], c["j"][index]
        scalar = not isinstance(ri, np.ndarray)
        j = self._p.space.offsets[self._k] + np.asarray(rj, dtype=np.int64)
        b = None if self._p.batch is None else np.asarray(c["b"][index], dtype=np.int64)
        out = self._p.entries(b, np.asarray(ri, dtype=np.int64), j)
        return out[()] if scalar else np.asarray(out)

    def __array__(self, dtype=None, copy=None):
        full = np.asarray(self[...])
        return full if dtype is None else full.astype(dtype)


class _JacobianProblem(_Problem):
    def __init__(self, evaluate, points, batch, out_value, kind, budget, replay_all):
        super().__init__(evaluate, points, batch, out_value, kind, budget, replay_all)
        nb = 0 if batch is None else 1
        if out_value.ndim > nb + 1:
            raise ValueError(f"ys.ndim should be {nb} or {nb + 1} for a Jacobian "
                             f"({'with' if batch is not None else 'without'} batch_axis) but got "
                             f"{out_value.ndim} (shape {out_value.shape})")
        if batch is not None and (out_value.ndim == 0 or out_value.shape[0] != batch):
            raise ValueError(f"ys has shape {out_value.shape}; with batch_axis=0 it needs the batch "
                             f"size {batch} as its leading dimension")
        self.out_axis = out_value.ndim > nb
        self.out_size = out_value.shape[nb] if self.out_axis else 1
        n = self.space.n
        shape = (self.out_size, n) if batch is None else (batch, self.out_size, n)
        self._jval = np.zeros(shape)
        self._jknown = np.zeros(n if batch is None else (batch, n), dtype=bool)
        self.cache = None

    def entries(self, b, i, j):
        with self.lock:
            known = self._jknown[j] if b is None else self._jknown[b, j]
            if not known.all():
                cols = _distinct(j[~known], self.space.n)
                nsamp = self.batch
                for cu, _ in plan_passes(cols, cols, self.space.elements(nsamp), self.budget):
                    inputs, ctx = seed_inputs(self.space, cu, np.zeros(0, np.int64),
                                              np.zeros(0, np.int64), None, False)
                    y = settle(self.evaluate(inputs, None))
                    _tally(self.stats, ctx)
                    self.stats.function_calls += 1
                    self.stats.passes += 1
                    value = _output_value(y)
                    if value.shape != self.value.shape:
                        raise ValueError(f"the output changed shape between calls: {value.shape} "
                                         f"vs {self.value.shape}")
                    lane = y._e1 if isinstance(y, HyperDual) else None
                    k = len(cu)
                    if lane is None:
                        lane = np.zeros((k,) + value.shape)
                    lane = np.broadcast_to(lane, (k,) + value.shape)
                    if self.batch is None:
                        self._jval[:, cu] = lane.reshape(k, self.out_size).T
                        self._jknown[cu] = True
                    else:
                        self._jval[:, :, cu] = np.moveaxis(lane.reshape(k, self.batch, self.out_size), 0, -1)
                        self._jknown[:, cu] = True
            return self._jval[(i, j)] if b is None else self._jval[(b, i, j)]


def jacobian(f_or_ys: Callable | HyperDual, xs, batch_axis: int | None = None, *,
             memory_budget: int | None = None, record: bool | None = None):
    """Lazy Jacobian of a function (or a recorded output) at a point.

    Parameters are as for :func:`hessian`; the output may be ``[M]`` (``[B, M]``
    with ``batch_axis=0``).  Returns a :class:`Jacobian`, or a tuple of them
    (one per input) for a tuple ``xs``.

    Examples
    --------
    >>> import numpy as np, hyperdual
    >>> J = hyperdual.jacobian(lambda x: np.sin(x) * x[0], np.array([0.0, 1.0]))
    >>> np.round(J[:], 6)
    array([[0.      , 0.      ],
           [0.841471, 0.      ]])
    """
    batch_axis = _check_batch_axis(batch_axis)
    record = _check_record(record, f_or_ys)
    if callable(f_or_ys):
        points, batch, multi = _callable_points(xs, batch_axis)
        evaluate = _CallFunction(f_or_ys, multi)
        reason, replay_, y = _RECORD_OFF, None, None
        if settings.trace if record is None else record:
            replay_, y, reason = _record(evaluate, points, batch, vector=True)
        elif batch is not None and batch > 1:  # (ValueError when a step mixes samples)
            _, y, _ = _record(evaluate, points, batch, replay=False, vector=True)
        if y is None:
            y = evaluate([p.copy() for p in points])
        problem = _JacobianProblem(evaluate if replay_ is None else replay_, points, batch,
                                   _output_value(y), "callable", memory_budget, False)
        problem.stats.mode = "callable" if replay_ is None else "recorded"
        problem.stats.reason = reason
    else:
        base, multi = _recorded_problem(f_or_ys, xs, batch_axis, memory_budget, check=False)
        problem = _JacobianProblem(base.evaluate, base.space.points, base.batch, np.asarray(base.value),
                                   "recorded", memory_budget, True)
    m = len(problem.space.points)
    js = tuple(Jacobian(problem, k) for k in range(m))
    return js if multi else js[0]
