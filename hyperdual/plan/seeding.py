"""Index pairs -> seeded inputs, grouped into passes within a memory budget.

One pass evaluates the function once on HyperDual inputs whose lanes carry
``K`` unit seed directions ``U = (u_0, …, u_{K-1})`` (flat input indices)
and ``P`` pairs ``(ip[p], jp[p])`` into them.  The output's cross lane row
``p`` is then ``∂²f / ∂x_{U[ip[p]]} ∂x_{U[jp[p]]}`` and its ``e1`` row ``k``
is ``∂f / ∂x_{U[k]}``.  Both sides use the same directions (``e2 is e1``),
which halves first-order work: the union of the row and column indices of a
chunk is never larger than the two sets together.

Passes are sized twice: never above the memory budget (estimated from the
input size: ``LIVE_FACTOR`` lane-sized intermediates alive at once), and by
default no larger than ``chunk_elements`` per lane, because cache-sized lanes
run several times faster than huge ones.
"""
from __future__ import annotations

import functools

import numpy as np

from ..execute import columns
from ..execute.array import HyperDual
from ..execute.context import LayoutCounts, SeedContext
from ..execute.packed import seeded
from ..settings import Settings, settings

__all__ = ["InputSpace", "pass_capacity", "plan_passes", "seed_inputs", "seed_colours", "settings", "Settings",
           "set_memory_budget"]

#: Estimated number of lane-sized intermediates alive at once in a pass.
LIVE_FACTOR = 16
#: Pairs a pass may take even when its lanes exceed ``chunk_elements`` (large batches):
#: below this, per-pass overhead costs more than the cache misses of large lanes.
MIN_PAIRS = 64




def set_memory_budget(nbytes: int) -> None:
    """Set the default per-pass lane memory budget in bytes (default 512 MiB).

    Examples
    --------
    >>> import hyperdual
    >>> hyperdual.set_memory_budget(256 * 2**20)
    >>> hyperdual.set_memory_budget(512 * 2**20)
    """
    nbytes = int(nbytes)
    if nbytes <= 0:
        raise ValueError(f"the memory budget must be positive, got {nbytes}")
    settings.memory_budget = nbytes


def _has_nan(p: np.ndarray) -> bool:
    """Whether ``p`` may hold a NaN (True for a NaN; a short array holding both
    infinities may also say True, which only costs the NaN-aware seeding)."""
    if p.size <= 64:  # a few numbers: quicker in Python than any array pass (a NaN makes
        s = sum(p.reshape(-1).tolist())  # the sum NaN; so does inf - inf, a harmless "maybe")
        return s != s
    s = np.minimum.reduce(p, axis=None)
    return bool(s != s)


class InputSpace:
    """The flat index space of one or several inputs.

    ``points[m]`` is member ``m`` (shape ``()``/``(M,)``, or ``(B,)``/``(B, M)``
    with a batch); its entries are flat indices ``offsets[m] .. offsets[m] + sizes[m]``.
    """

    __slots__ = ("points", "batch", "sizes", "has_axis", "offsets", "n", "has_nan")

    def __init__(self, points: list, batch: int | None):
        self.points, self.batch = points, batch
        nb = 0 if batch is None else 1
        self.has_axis, self.sizes, self.offsets, self.has_nan = [], [], [0], []
        n = 0
        for p in points:
            ax = p.ndim > nb
            size = int(p.shape[nb]) if ax else 1
            n += size
            self.has_axis.append(ax)
            self.sizes.append(size)
            self.offsets.append(n)
            self.has_nan.append(_has_nan(p))
        self.n = n

    def elements(self, nsamples: int | None) -> int:
        """Input elements of one lane row (the size estimate for intermediates)."""
        return max(1, self.n * (1 if nsamples is None else nsamples))


def pass_capacity(lane_elements: int, budget: int, chunk_elements: int | None = None) -> int:
    """Pairs one pass may take: its lanes within ``budget`` (0 if not even one pair fits)
    and, past ``MIN_PAIRS``, no larger than ``chunk_elements`` per lane."""
    chunk = settings.chunk_elements if chunk_elements is None else chunk_elements
    per_pair = lane_elements * 8 * LIVE_FACTOR
    if per_pair > budget:
        return 0
    return max(1, min(budget // per_pair, max(MIN_PAIRS, chunk // lane_elements)))


def plan_passes(lo, hi, lane_elements: int, budget: int, chunk_elements: int | None = None):
    """Split the pairs ``(lo[p], hi[p])`` into passes; yields ``(lo, hi)`` chunks."""
    per_pair = lane_elements * 8 * LIVE_FACTOR
    if per_pair > budget:
        raise ValueError(
            f"the memory budget of {budget} bytes is too small for even one index pair: a pass "
            f"needs about {per_pair} bytes of lanes for inputs of {lane_elements} elements; "
            f"raise memory_budget (or hyperdual.set_memory_budget)")
    pmax = pass_capacity(lane_elements, budget, chunk_elements)
    npairs = len(lo)
    if npairs <= pmax:
        yield lo, hi
        return
    width = max(1, int(np.sqrt(pmax)))
    order = np.lexsort((hi, lo, hi // width, lo // width))
    lo, hi = lo[order], hi[order]
    for s in range(0, npairs, pmax):
        yield lo[s:s + pmax], hi[s:s + pmax]


def _window(space: InputSpace, m: int, cols: np.ndarray, rows: int):
    """The window ``(lo, hi)`` of the seeded columns of input ``m``, when windowed
    lanes pay (see :mod:`hyperdual.execute.window`); None for full lanes.  ``rows``: the
    pass's lane rows (``K + P``)."""
    size = space.sizes[m]
    if space.batch is not None or not space.has_axis[m] or size < settings.window_min_size \
            or cols.size == 0 or rows * size < settings.window_min_lanes:
        return None
    if cols.size <= 64:
        c = cols.tolist()
        lo, hi = min(c), max(c) + 1
    else:
        lo, hi = int(cols.min()), int(cols.max()) + 1
    return (lo, hi) if hi - lo <= settings.window_max_fraction * size else None


_IDENTITY: dict = {}
#: Inputs up to this many elements get a writeable copy of the point in each pass.
_COPY_POINT = 4096


def _identity(n: int) -> np.ndarray:
    """``np.eye(n)``, shared (lanes are never written in place, and the public lane
    properties give read-only views).  Left writeable: Numba dispatches a call with a
    read-only array argument through its slow typing path (about 0.4 µs more each)."""
    eye = _IDENTITY.get(n)
    if eye is None:
        eye = np.eye(n)
        if len(_IDENTITY) >= 16 or n > 4096:
            _IDENTITY.clear()
        if n <= 4096:
            _IDENTITY[n] = eye
    return eye


def seed_inputs(space: InputSpace, U: np.ndarray, ip, jp, samples=None, second=True, window=False,
                pattern=None):
    """HyperDual inputs seeded along the flat indices ``U``.

    ``e1`` row ``k`` (and ``e2``, the same array, when ``second``) is the unit
    vector of flat index ``U[k]``; the context pairs rows ``(ip[p], jp[p])``.
    ``samples`` selects batch samples (None: all).  ``window``: a long 1-D
    input seeded in a narrow range of columns gets windowed lanes
    (:mod:`hyperdual.execute.window`).  ``pattern``: the recorder of a pattern pass
    (:mod:`hyperdual.plan.pattern`), set on the context before any input exists.
    """
    k = len(U)
    ctx = SeedContext.trusted(ip, jp, k, k if second else 0)
    ctx.pattern = pattern
    ctx.layouts = counts = LayoutCounts()
    single = len(space.points) == 1
    inputs = []
    for m, point in enumerate(space.points):
        if samples is not None:
            point = point[samples]
        elif point.size <= _COPY_POINT:
            point = point.copy()  # writeable (the Hessian's own point is read-only, which
            # would send every kernel call with its value to Numba's slow typing path)
        if single and space.batch is None and k == space.n and k and point.ndim == 1 \
                and not space.has_nan[m] and (not window or settings.window_max_fraction < 1.0) \
                and U[0] == 0 and U[-1] == k - 1:
            # every input seeded (U = 0 .. n-1; a window would span every column): the
            # identity lane, shared (never written; public lanes are read-only views)
            lane = _identity(k)
            x = HyperDual._new(point, lane, lane if second else None, None, ctx)
            x._flat = point.flags.c_contiguous
            inputs.append(seeded(x))
            continue
        lo, size = space.offsets[m], space.sizes[m]
        if single:
            rows, cols = np.arange(k), U
        else:
            rows = np.nonzero((U >= lo) & (U < lo + size))[0]
            if rows.size == 0:
                inputs.append(HyperDual._new(point, None, None, None, ctx))
                continue
            cols = U[rows] - lo
        win = _window(space, m, cols, k + len(ip)) if window else None
        if win is not None:
            lane = np.zeros((k, win[1] - win[0]))
            lane[rows, cols - win[0]] = 1.0
            if space.has_nan[m]:
                lane[:, np.isnan(point[win[0]:win[1]])] = np.nan
            x = HyperDual._new(point, lane, lane if second else None, None, ctx)
            x._win = win
            counts.windowed += 1
            inputs.append(x)
            continue
        if single and space.batch is not None and space.has_axis[m] and settings.column_lanes:
            inputs.append(columns.seed(point, ctx, cols, second))  # one lane row, not K + P
            counts.columns += 1
            continue
        lane = np.zeros((k,) + point.shape)
        if space.has_axis[m]:
            if space.batch is None:
                lane[rows, cols] = 1.0
            else:
                lane[rows, :, cols] = 1.0
        else:
            lane[rows] = 1.0
        if space.has_nan[m]:  # a NaN input makes every derivative through it NaN, never a finite number
            lane[:, np.isnan(point)] = np.nan
        x = HyperDual._new(point, lane, lane if second else None, None, ctx)
        x._flat = point.ndim == 1 and point.flags.c_contiguous  # (hyperdual.execute.chain.flat)
        inputs.append(seeded(x))
    return inputs, ctx


@functools.lru_cache(maxsize=64)
def _colour_pairs(count: int):
    """``np.triu_indices(count)`` as int64 (shared: read-only)."""
    ip, jp = (a.astype(np.int64) for a in np.triu_indices(count))
    ip.flags.writeable = jp.flags.writeable = False
    return ip, jp


def seed_colours(space: InputSpace, colours: np.ndarray, count: int):
    """Inputs (no batch) seeded with colour indicators, ``e1 = e2``: lane row ``c`` is 1
    at the flat indices of colour ``c`` (:mod:`hyperdual.plan.colour`), and the context
    pairs every two colours ``a <= b`` (``np.triu_indices(count)``).  Returns
    ``(inputs, ctx)``."""
    ip, jp = _colour_pairs(count)
    ctx = SeedContext.trusted(ip, jp, count, count)
    ctx.layouts = LayoutCounts()
    inputs = []
    for m, point in enumerate(space.points):
        lo, size = space.offsets[m], space.sizes[m]
        lane = np.zeros((count, size))
        lane[colours[lo:lo + size], np.arange(size)] = 1.0
        lane = lane.reshape((count,) + point.shape)
        x = HyperDual._new(point.copy(), lane, lane, None, ctx)
        x._flat = point.ndim == 1 and point.flags.c_contiguous
        inputs.append(seeded(x))
    return inputs, ctx
