"""The engine behind one lazy Hessian: requests → pairs → passes → cache.

A :class:`hyperdual.Hessian` (each block of a tuple input, and its gradient)
shares one :class:`Problem`: the function, the point and what is known of its
derivatives.  Its parts have one job each:

* :class:`SampleCheck`: the output's value, and with ``batch_axis=0`` whether
  the function keeps its samples independent (a per-sample Hessian exists);
* :class:`GradientCache`: first derivatives, which every pass yields beside its
  pairs (``e1`` lanes);
* :class:`Passes`: seeding the inputs of a pass (:mod:`hyperdual.plan.seeding`),
  running the function (or its record) and storing what the pass yields;
* :class:`SparsityPattern`: the pairs that can be nonzero, found once by a
  pattern pass (:mod:`hyperdual.plan.pattern`) for large requests;
* :class:`Problem` itself: routes entry, sample and block requests to the
  pairs still missing from the cache (:class:`hyperdual.lazy.cache.PairCache`).

A pass seeds ``K`` input directions and ``P`` pairs of them; its output's
``e12`` row ``p`` is ``∂²f / ∂x_i ∂x_j`` of pair ``p`` and its ``e1`` row
``k`` is ``∂f / ∂x_k``.
"""
from __future__ import annotations

import numbers
import threading
import warnings
from dataclasses import dataclass

import numpy as np

from ..execute.array import HyperDual, as_float_array
from .cache import PairCache, SparseCache
from .coloured import ColouredPass
from ..execute.columns import settle
from ..execute.context import SeedContext, join_contexts
from ..execute.packed import seeded
from ..plan.pattern import Recorder
from ..plan.seeding import LIVE_FACTOR, InputSpace, pass_capacity, plan_passes, seed_inputs, settings
from ..execute.window import densify

__all__ = ["Problem", "SampleCheck", "GradientCache", "Passes", "SparsityPattern", "Stats"]

_COUPLED = ("with batch_axis=0 the samples must be independent, but the outputs of some samples "
            "depend on other samples' inputs (e.g. a sum over the batch axis): a per-sample Hessian "
            "is not defined. Use batch_axis=None on the flattened input instead")


#: Requests (and passes) of at most this many entries (pairs) take Python-list paths.
_FEW = 16


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
    #: ``"pairs"``: entries come from seeded index pairs; ``"colouring"``: the whole Hessian
    #: came from one pass seeded with ``colours`` colour indicators (:mod:`hyperdual.lazy.coloured`)
    method: str = "pairs"
    colours: int = 0
    #: why a whole Hessian was not coloured (empty when it was, or when colouring was not tried)
    colouring: str = ""
    #: structural nonzeros of the whole Hessian (both triangles), once known (``H.sparse()``,
    #: ``H.sparsity()``, or a whole request by colouring); 0 until then
    nnz: int = 0


def _tally(stats: Stats, ctx) -> None:
    """Add a finished pass's lane layouts (:class:`hyperdual.execute.context.LayoutCounts`) to ``stats``."""
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


def _check_samples(B: int) -> np.ndarray:
    """The samples of the independence check: ``0, 1, B // 3, B - 1`` (distinct)."""
    return _distinct(np.array([0, 1, B // 3, B - 1]), B)


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


# ---- the parts of a Problem -------------------------------------------------------------------
class SampleCheck:
    """The function's output value at the point and, with a batch, whether its samples are
    independent (a per-sample Hessian is defined only then: :meth:`check_independent`)."""

    def __init__(self, problem: "Problem", value):
        self.problem = problem
        self.known = value        # the output values (None: not known yet, see value)
        self.subset = None        # (samples, their outputs) of the subset value call
        self.independent = False  # checked (or proven by the record's batch rules)

    @property
    def value(self):
        """The function value at the point; a batched callable-form Hessian learns it from
        its first pass over every sample, or from one plain evaluation if asked first."""
        if self.known is None:
            p = self.problem
            with p.lock:
                if self.known is None:
                    y = p.evaluate([q.copy() for q in p.space.points])
                    p.stats.function_calls += 1
                    value = _output_value(y)
                    self.check_output(value, p.batch, None, constant=True)
                    self.set_value(value, check=False)  # (checked by the next request)
        return self.known

    def set_value(self, value, check=True):
        """Keep the full batch's output values; check them against the subset evaluated
        when the Hessian was made (the independence check of the callable form)."""
        batch = self.problem.batch
        self.known = value.reshape(batch) if value.ndim else value
        if check and self.subset is not None:
            pick, got = self.subset
            full = np.reshape(self.known, -1)
            if full.shape != (batch,) or not np.allclose(got, full[pick], rtol=1e-9, atol=1e-12,
                                                         equal_nan=True):
                self.known = None  # so every later request checks, and refuses, again
                raise ValueError(_COUPLED)

    def check_output(self, value, nb, samples, constant=False):
        """Refuse an output that is not one scalar (per sample), or whose samples' values
        differ from the full batch's (``samples``: the samples a pass ran)."""
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

    def check_independent(self):
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
        self.independent = True
        p = self.problem
        if p.batch is None or p.batch < 2:
            return
        if self.subset is not None:  # evaluated when the Hessian was made: compared with
            if self.known is not None:  # the full batch's values as soon as they are known
                self.set_value(self.known)  # (by the first pass over every sample, or here)
            return
        if np.ndim(self.value) == 0:
            return
        want = np.reshape(self.value, -1)
        B = p.batch
        pick = _check_samples(B)
        moved = p.replay_all or pick.size == B
        if moved:
            trials = []
            for start in (0, 1):
                points = []
                for q in p.space.points:
                    q = q.copy()
                    q[start::2] += 0.5 + 0.25 * np.abs(q[start::2])
                    points.append(HyperDual._new(q, None, None, None, None) if p.replay_all else q)
                trials.append((points, slice(1 - start, None, 2)))
        else:
            trials = [([q[pick] for q in p.space.points], pick)]
        for inputs, kept in trials:
            try:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore")
                    got = _output_value(p.evaluate(inputs)).reshape(-1)
            except (ArithmeticError, ValueError):  # the trial left the domain: no verdict
                return
            finally:
                p.stats.function_calls += 1
            if moved:
                if got.shape != want.shape:
                    raise ValueError(_COUPLED)
                got = got[kept]
            elif got.shape != (pick.size,):  # the output does not follow the batch: no verdict
                return
            if not np.allclose(got, want[kept], rtol=1e-9, atol=1e-12, equal_nan=True):
                raise ValueError(_COUPLED)


class GradientCache:
    """First derivatives at the point (``[n]``, or ``[B, n]``) and which are known.  The
    arrays are made with ``np.zeros``, whose pages are mapped when first written."""

    def __init__(self, n: int, batch: int | None):
        shape = (n,) if batch is None else (batch, n)
        self.values = np.zeros(shape)
        self.known = np.zeros(shape, dtype=bool)
        self.batch, self.n = batch, n

    def store(self, samples, U, g):
        """``g`` (``(len(U), rows)``) of a pass that seeded inputs ``U`` on ``samples``.
        Values first, then the mask: an interruption leaves entries unknown, never wrong."""
        if samples is None and U.size == self.n:  # every sample and input (U is sorted)
            self.values[...] = g[:, 0] if self.batch is None else g.T
            self.known[...] = True
        elif self.batch is None:
            self.values[U] = g[:, 0]
            self.known[U] = True
        else:
            s = slice(None) if samples is None else samples[:, None]
            self.values[s, U] = g.T
            self.known[s, U] = True


class Passes:
    """Runs passes: seeds the inputs, evaluates the function (or replays its record) and
    stores the pairs, the gradient and the counts that a pass yields."""

    def __init__(self, problem: "Problem"):
        self.problem = problem

    def run(self, U, ip, jp, samples, second, recorder=None):
        """One pass seeding inputs ``U`` with pairs ``(ip, jp)`` (rows into ``U``) on
        ``samples`` (None: all): its ``(g, h)`` lanes as ``(K, rows)`` and ``(P, rows)``
        arrays (``h`` None unless ``second``), NaN where the output is NaN."""
        p = self.problem
        checks = p.samples
        inputs, ctx = seed_inputs(p.space, U, ip, jp, samples, second, window=recorder is None,
                                  pattern=recorder)
        y = settle(p.evaluate(inputs, samples))
        p.stats.function_calls += 1
        dual = type(y) is HyperDual
        if dual and y._win is not None:
            densify(y)
        _tally(p.stats, ctx)
        nb = None if p.batch is None else (p.batch if samples is None else len(samples))
        value = _output_value(y)
        checks.check_output(value, nb, samples, constant=not dual)
        if samples is None and checks.known is None:  # the first pass over every sample
            checks.set_value(value)                   # (ValueError for coupled samples)
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

    def pairs(self, plo, phi, samples):
        """Run the passes for unordered pairs ``(plo, phi)`` on ``samples`` (None: all)."""
        p = self.problem
        n = p.space.n
        if plo.size == 0:  # every pair was a structural zero
            return
        if samples is None and not p.samples.independent:
            p.samples.check_independent()
        nsamp = None if p.batch is None else (p.batch if samples is None else len(samples))
        for clo, chi in plan_passes(plo, phi, p.space.elements(nsamp), p.budget):
            if clo.size <= _FEW and p.batch is None:  # a few pairs: Python lists
                lo, hi = clo.tolist(), chi.tolist()
                seeds = sorted(set(lo) | set(hi))
                row = {u: k for k, u in enumerate(seeds)}
                U = np.array(seeds, dtype=np.int64)
                ip = np.array([row[a] for a in lo], dtype=np.int64)
                jp = np.array([row[b] for b in hi], dtype=np.int64)
                g, h = self.run(U, ip, jp, samples, True)
                self.store(samples, U, g, clo, chi, None)  # (gradient and counts)
                p.cache.store_few(lo, hi, h)
                p.stats.entries_cached += len(lo)
                continue
            U = _distinct(np.concatenate([clo, chi]), n)
            ip, jp = np.searchsorted(U, clo), np.searchsorted(U, chi)
            g, h = self.run(U, ip, jp, samples, True)
            self.store(samples, U, g, clo, chi, h)

    def gradients(self, U, samples):
        """Run first-order passes for inputs ``U`` (sorted, distinct) on ``samples``."""
        p = self.problem
        nsamp = None if p.batch is None else (p.batch if samples is None else len(samples))
        no_pairs = np.zeros(0, np.int64)
        for cu, _ in plan_passes(U, U, p.space.elements(nsamp), p.budget):
            g, _ = self.run(cu, no_pairs, no_pairs, samples, False)
            self.store(samples, cu, g, no_pairs, no_pairs, None)

    def store(self, samples, U, g, lo, hi, h):
        """Store a pass's gradient rows and pairs (``h`` None: stored by the caller), and
        count the pass."""
        p = self.problem
        p.gradient.store(samples, U, g)
        if h is not None:
            p.cache.store(samples, lo, hi, h)
            p.stats.entries_cached += len(lo) * (
                1 if p.batch is None else p.batch if samples is None else len(samples))
        p.stats.passes += 1
        p.stats.pairs_evaluated += len(lo)
        p.stats.samples_evaluated += 0 if p.batch is None else (
            p.batch if samples is None else len(samples))


class SparsityPattern:
    """The pairs that can be nonzero, found once per Hessian by a pattern pass
    (:mod:`hyperdual.plan.pattern`: first-order lanes for every input) when a large request
    makes it worth it and its lanes fit the memory budget.  If the function uses a step
    the pattern pass cannot follow, or is dense, every pair is seeded."""

    def __init__(self, problem: "Problem"):
        self.problem = problem
        self.searched = False
        self.codes = None  # sorted codes lo * n + hi of the pairs that can be nonzero

    def wanted(self, pairs: int) -> bool:
        """Whether a request for ``pairs`` pairs (no batch) looks for the pattern: one found
        serves every request; else large requests (and at least 4 pairs per input)."""
        p = self.problem
        return p.batch is None and (self.codes is not None or (
            pairs >= settings.pattern_min_pairs
            and (pairs >= 4 * p.space.n or settings.pattern_min_pairs == 0)))

    def drop_zeros(self, flat, store=True):
        """The pairs of ``flat`` inside the pattern, and whether any were left out; those
        are stored as exact zeros unless ``store`` is False (the caller stores them)."""
        pattern = self.found()
        if pattern is None:
            return flat, False
        p = self.problem
        pos = np.searchsorted(pattern, flat)
        inside = pattern[np.minimum(pos, pattern.size - 1)] == flat if pattern.size else \
            np.zeros(flat.shape, dtype=bool)
        zeros = flat[~inside]
        if zeros.size and store:
            zlo, zhi = np.divmod(zeros, p.space.n)
            p.cache.store(None, zlo, zhi, np.zeros((zeros.size, 1)))
            p.stats.entries_cached += zeros.size
            p.stats.structural_zeros += zeros.size
        return flat[inside], zeros.size > 0

    def found(self):
        """The pattern's codes, searched for once (None: no pattern)."""
        if not self.searched:
            self.codes = self._find()
            self.searched = True
        return self.codes

    def _find(self):
        """Sorted codes ``lo * n + hi`` of the pairs that can be nonzero, or None."""
        p = self.problem
        n = p.space.n
        if n * n * 8 * LIVE_FACTOR > p.budget:  # first-order lanes for every input must fit
            return None
        recorder = Recorder(n)
        U = np.arange(n)
        none = np.zeros(0, np.int64)
        try:
            g, _ = p.passes.run(U, none, none, None, False, recorder=recorder)
        except Exception:  # noqa: BLE001 - a step it cannot follow (PatternAbort, maybe
            return None    # re-raised as another error by the function), or a genuine
            # error, which the ordinary passes then raise again
        pattern = recorder.pairs()
        if pattern is None or np.isnan(g).any():  # a NaN output: every entry is NaN, none zero
            return None
        p.passes.store(None, U, g, none, none, None)  # the gradient, at no extra cost
        return pattern


def _both_triangles(n, lo, hi, values):
    """``(codes, values)`` sorted over both triangles from the upper pairs ``lo <= hi``."""
    off = lo != hi
    codes = np.concatenate([lo * n + hi, hi[off] * n + lo[off]])
    vals = np.concatenate([values, values[off]])
    order = np.argsort(codes, kind="stable")
    return codes[order], vals[order]


# ---- the problem: requests -> pairs ------------------------------------------------------------
class Problem:
    """The function, the point and what is known of its derivatives, shared by every block
    (and the gradient) of one Hessian; entry, sample and block requests are routed to the
    pairs still missing from the cache, and those to passes.

    ``evaluate`` maps a pass's inputs (and its samples) to the output; ``out_value`` is
    the output's value when known; ``order_kind`` is ``"callable"`` (the function, or its
    record, per pass) or ``"recorded"`` (the ys form); ``replay_all``: every pass runs every
    sample (a record cannot run on a subset).
    """

    def __init__(self, evaluate, points, batch, out_value, order_kind, memory_budget, replay_all):
        self.evaluate = evaluate
        self.space = InputSpace(points, batch)
        self.batch = batch
        self.replay_all = replay_all
        self.memory_budget = memory_budget
        self.kind = order_kind
        self.stats = Stats(function_calls=1 if order_kind == "callable" else 0)
        self.cache = PairCache(self.space.n, batch)
        self.lock = threading.RLock()
        self.samples = SampleCheck(self, out_value)
        self.gradient = GradientCache(self.space.n, batch)
        self.passes = Passes(self)
        self.pattern = SparsityPattern(self)
        self.coloured = ColouredPass(self)
        self._one_pass_key = self._one_pass_answer = None

    @property
    def value(self):
        """The function value at the point (:attr:`SampleCheck.value`)."""
        return self.samples.value

    @property
    def budget(self):
        return settings.memory_budget if self.memory_budget is None else self.memory_budget

    # The dense cache is allocated with np.zeros, which maps untouched pages lazily:
    # memory grows with the entries actually written, not with N².

    def __getstate__(self):
        if self.kind != "callable":
            raise TypeError("a Hessian of the hessian(ys, xs) form holds a record and cannot be pickled; "
                            "use the hessian(func, xs) form with a module-level function")
        state = self.__dict__.copy()
        del state["lock"]
        if getattr(self.evaluate, "replays", False):  # a record stays behind: the function
            state["evaluate"] = self.evaluate.func     # is called per pass
            state["_unpickled_record"] = True
        return state

    def __setstate__(self, state):
        if state.pop("_unpickled_record", False):
            stats = state["stats"]
            stats.mode, stats.reason = "callable", "unpickled: the record is not pickled"
        self.__dict__.update(state)
        self.lock = threading.RLock()

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
                    self.passes.pairs(plo, phi, None if self.replay_all or need.size == self.batch
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
        dropped = False
        if self.pattern.wanted(flat.size):
            flat, dropped = self.pattern.drop_zeros(flat, store=store_zeros)
        plo, phi = np.divmod(flat, self.space.n)
        self.passes.pairs(plo, phi, samples)
        return dropped

    def hessian_block(self, a, b):
        """The whole block ``H[a][b]`` (no batch) as a new dense array, assembled tile by
        tile from the cache: a full request costs memory copies, not per-entry lookups."""
        sp = self.space
        oa, na, ob, nb = sp.offsets[a], sp.sizes[a], sp.offsets[b], sp.sizes[b]
        with self.lock:
            if na == nb == sp.n and self.cache.empty:
                full = self.coloured.whole()
                if full is not None:
                    return full
                if self._one_pass(sp.n):
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

    # -- the whole Hessian's structure (no batch) ---------------------------------------
    def sparse_whole(self):
        """``(codes, values)``: the sorted ``i * n + j`` (both triangles) of the whole
        Hessian's structural nonzeros and their values.  By a coloured pass when it
        applies; else the sparsity pattern's pairs (or every pair) by seeded passes."""
        with self.lock:
            if type(self.cache) is not SparseCache:
                if not (self.cache.empty and self.coloured.run(any_size=True)):
                    upper = self._upper_structure("H.sparse()")
                    n = self.space.n
                    lo, hi = np.divmod(upper, n)
                    values = self.hessian_entries(None, lo, hi)
                    self.cache = SparseCache(n, *_both_triangles(n, lo, hi, values))
                self.stats.nnz = self.cache.codes.size
            return self.cache.codes, self.cache.values

    def structure_whole(self):
        """The sorted codes ``i * n + j`` (both triangles) of the whole Hessian's structural
        nonzeros, without their values when the analysis can tell (a coloured plan, or a
        pattern pass)."""
        with self.lock:
            if type(self.cache) is SparseCache:
                return self.cache.codes
            codes = self.coloured.structure()
            if codes is None:
                n = self.space.n
                lo, hi = np.divmod(self._upper_structure("H.sparsity()"), n)
                codes = _both_triangles(n, lo, hi, np.zeros(lo.size))[0]
            self.stats.nnz = codes.size
            return codes

    def _upper_structure(self, what):
        """Sorted codes ``lo * n + hi`` of the pairs that can be nonzero: the sparsity
        pattern, or every pair (refused beyond the memory budget)."""
        n = self.space.n
        codes = self.pattern.found()
        if codes is not None:
            return codes
        if n * (n + 1) // 2 * 8 * 4 > self.budget:
            reason = self.coloured.reason or "no sparsity pattern could be found"
            raise ValueError(
                f"{what}: the structure of this Hessian is unknown ({reason}), and every one of its "
                f"{n * (n + 1) // 2} pairs would not fit the memory budget ({self.budget} bytes). "
                "Write the function with steps the analysis follows (hyperdual.plan.frontier), "
                "raise memory_budget, or ask for blocks H[a:b, c:d]")
        lo, hi = np.triu_indices(n)
        return lo.astype(np.int64) * n + hi

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
        g, h = self.passes.run(U, ip, jp, None, True)
        rows = _symmetric_rows(n)  # (i, j) -> the row of its pair
        if self.batch is None:  # the gradient (every input: U = 0 .. n-1) and the counts
            self.gradient.store(None, U, g)
            self.stats.passes += 1
            self.stats.pairs_evaluated += len(ip)
            full = h.reshape(-1).take(rows)
            self.stats.entries_cached += self.cache.store_all(full.copy(), copy=False)
            return full
        self.passes.store(None, U, g, ip, jp, None)  # the gradient and the counts
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
            if not self.samples.independent:
                self.samples.check_independent()
            return self._whole_space()

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
            known = self.gradient.known[key]
            if not known.all():
                miss = ~known
                self.passes.gradients(_distinct(i[miss], self.space.n), self._samples_needed(b, miss))
            return self.gradient.values[key]

    def _samples_needed(self, b, miss):
        """The batch samples a request misses (None: all, or no batch)."""
        if b is None or self.replay_all:
            return None
        need = _distinct(b[miss], self.batch)
        return need if need.size < self.batch else None
