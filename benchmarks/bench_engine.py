"""Benchmarks of the hyper-dual array engine (``x * y``, ``np.sin(x)``, import).

Each large-array class times a ``hyperdual`` operation beside a *floor*: a
plain NumPy pass that moves the same number of lane bytes (into preallocated,
already-touched buffers), so ``time_hyperdual_* / time_floor_*`` says how far
the operation is from memory bandwidth.  Run them with e.g.::

    asv run --python=same --quick -b bench_engine        # smoke test
    asv run --python=same --set-commit-hash $(git rev-parse HEAD) -b bench_engine
    asv show $(git rev-parse HEAD)                        # the saved medians

Sizes: ``n`` is the number of elements of the value; an operand with ``K1``
``e1`` rows, ``K2`` ``e2`` rows and ``P`` cross rows has ``L = 1 + K1 + K2 + P``
lanes of ``n`` float64 each.  ``(4, 4, 16)`` at ``n = 10_000_000`` would be
2 GB per operand, too much for a 24 GB / 2-core machine with three arrays and
the floor buffers, so that combination is skipped (``NotImplementedError`` in
``setup``, asv's way to skip one parameter combination) and ``n = 1_000_000``
covers it instead.
"""
import subprocess
import sys
import time
import tracemalloc

import numpy as np

import hyperdual
from hyperdual import HyperDual

#: (K1, K2, P) lane layouts: the textbook scalar hyper-dual, and 4 x 4 seeds
#: with every pair (a 4 x 4 Hessian block per element).
LAYOUTS = [(1, 1, 1), (4, 4, 16)]
SIZES = [100_000, 1_000_000, 10_000_000]
#: The largest n allowed for a layout with more than this many lanes.
_MAX_N_WIDE = 1_000_000
_WIDE_LANES = 4


def _nlanes(layout):
    k1, k2, p = layout
    return 1 + k1 + k2 + p


def _skip_too_big(n, layout):
    if _nlanes(layout) > _WIDE_LANES and n > _MAX_N_WIDE:
        raise NotImplementedError(
            f"n={n} with (K1, K2, P)={layout} needs {_nlanes(layout) * n * 8 / 1e9:.0f} GB per "
            f"operand; n={_MAX_N_WIDE} covers this layout")


def _all_pairs(k1, k2):
    """The default pair map: every (i, j), row p = i * K2 + j."""
    return np.repeat(np.arange(k1), k2), np.tile(np.arange(k2), k1)


def make_operand(rng, n, layout, low=-2.0, high=2.0):
    """A HyperDual with every lane present and random (value uniform in [low, high))."""
    k1, k2, p = layout
    ip, jp = _all_pairs(k1, k2)
    assert ip.size == p, "layouts here use every (i, j) pair"
    value = rng.uniform(low, high, n)
    e1 = rng.standard_normal((k1, n))
    e2 = rng.standard_normal((k2, n))
    e12 = rng.standard_normal((p, n))
    return HyperDual(value, e1, e2, e12, pairs=(ip, jp))


def _load_kernels():
    """Switch to the Numba kernels now, where the library has that switch.

    Newer versions run small problems on NumPy twins of the kernels until
    enough work has been done (``hyperdual.load_kernels()`` switches at
    once); older ones always use Numba.  Either way this leaves the process
    on the Numba kernels, loaded or compiled, so that no timing depends on
    how much work happened to run before it.
    """
    load = getattr(hyperdual, "load_kernels", None)
    if load is not None:
        load()


def _filled(shape, rng):
    """A float64 buffer whose pages are all touched (not lazily-mapped zeros)."""
    return rng.uniform(0.5, 1.5, shape)


class _Large:
    """Timing settings shared by the large-array classes (numpy-style attributes).

    One call is 0.1 ms .. 1 s; every sample is one call, and 3 to 10
    samples are taken per process within ~10 s.  ``setup`` runs the timed
    operation once at full size, so the exact code path that is timed has
    been compiled (or loaded from Numba's on-disk cache) and its output
    sizes seen once before any timing.
    """

    params = [SIZES, LAYOUTS]
    param_names = ["n", "layout"]
    number = 1
    repeat = (3, 10, 10.0)
    min_run_count = 2
    warmup_time = 0.2
    timeout = 300


class Multiply(_Large):
    """``x * y`` of two hyper-duals with all lanes present, beside its memory floor.

    **Floor** (``time_floor_copy``): one streaming NumPy pass that reads
    exactly as many bytes as both operands' lanes (``2 * L * n`` float64)
    and writes exactly as many as the output lanes (``L * n`` float64):
    ``np.add(src[0], src[1], out=dst)`` with ``src`` one preallocated
    ``(2, L * n)`` buffer and ``dst`` one preallocated ``(L * n,)`` buffer,
    both filled in ``setup`` so no page is first touched in the timed call.
    (``np.copyto`` cannot read ``2M`` elements while writing ``M``; a
    one-add pass is memory-bound like a copy, at 3 bytes moved per byte
    written, exactly the traffic an ideal ``x * y`` needs.)

    ``time_floor_copy_alloc`` is the same pass into a fresh output
    (``np.add(src[0], src[1])``): what any NumPy op that returns a new
    array pays for allocating and first-touching its output, as
    ``x * y`` does.
    """

    def setup(self, n, layout):
        _skip_too_big(n, layout)
        rng = np.random.default_rng(0)
        self.x = make_operand(rng, n, layout)
        self.y = make_operand(rng, n, layout)
        lanes = _nlanes(layout)
        self.src = _filled((2, lanes * n), rng)
        self.dst = _filled((lanes * n,), rng)
        _load_kernels()
        self.x * self.y

    def time_hyperdual_multiply(self, n, layout):
        self.x * self.y

    def time_floor_copy(self, n, layout):
        np.add(self.src[0], self.src[1], out=self.dst)

    def time_floor_copy_alloc(self, n, layout):
        np.add(self.src[0], self.src[1])


class Sin(_Large):
    """``np.sin(x)`` of a hyper-dual with all lanes present, beside its floor.

    **Floor** (``time_floor_sin_cos_copy``): the transcendental work plus the
    lane traffic, into preallocated, touched outputs:
    ``np.sin(value, out=s)``, ``np.cos(value, out=c)`` (``g = sin``,
    ``g' = cos``; ``g'' = -sin`` is free), then one
    ``np.copyto(dst, src)`` of ``L * n`` float64, i.e. reading as many bytes
    as the input's lanes and writing as many as the output's lanes.
    """

    def setup(self, n, layout):
        _skip_too_big(n, layout)
        rng = np.random.default_rng(0)
        self.x = make_operand(rng, n, layout)
        self.value = self.x.value
        lanes = _nlanes(layout)
        self.s = _filled((n,), rng)
        self.c = _filled((n,), rng)
        self.src = _filled((lanes * n,), rng)
        self.dst = _filled((lanes * n,), rng)
        _load_kernels()
        np.sin(self.x)

    def time_hyperdual_sin(self, n, layout):
        np.sin(self.x)

    def time_floor_sin_cos_copy(self, n, layout):
        np.sin(self.value, out=self.s)
        np.cos(self.value, out=self.c)
        np.copyto(self.dst, self.src)


class PeakMem:
    """Memory of one operation: whole-process peak RSS, and traced NumPy bytes.

    ``peakmem_*``: asv's whole-process peak RSS, setup included.
    ``peakmem_operands`` (which does nothing) is the baseline, but the
    constructor's copies of the lanes make a transient of about one operand
    during ``setup``, so ``peakmem_multiply - peakmem_operands`` can hide up
    to one operand's worth of temporaries; use it for regressions only.

    ``track_*_extra_bytes``: the exact figure.  The operation runs once
    (warm), then once more under :mod:`tracemalloc` (NumPy reports its array
    buffers to it); the value is the traced peak above what was allocated
    before the call.  The ideal is one result, ``track_output_bytes``
    (``L * n * 8``); anything above is temporaries.  Kernel outputs come from
    ``hyperdual.execute.pool``: the warm call's outputs, dropped before the traced call,
    are handed out again rather than allocated, so the traced figure can be
    below ``track_output_bytes`` (the pool's idle memory is bounded by
    ``hyperdual.execute.pool.pool_limit()`` and shows in ``peakmem_*`` instead).
    """

    params = [[1_000_000], LAYOUTS]
    param_names = ["n", "layout"]

    def setup(self, n, layout):
        rng = np.random.default_rng(0)
        self.x = make_operand(rng, n, layout)
        self.y = make_operand(rng, n, layout)
        _load_kernels()
        small = make_operand(rng, 8, layout)
        small * small
        np.sin(small)

    def peakmem_operands(self, n, layout):
        pass

    def peakmem_multiply(self, n, layout):
        self.x * self.y

    def peakmem_sin(self, n, layout):
        np.sin(self.x)

    def _extra_bytes(self, op):
        op()  # warm: kernels loaded, one-time caches filled
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            result = op()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        del result
        return peak - before

    def track_multiply_extra_bytes(self, n, layout):
        return self._extra_bytes(lambda: self.x * self.y)

    track_multiply_extra_bytes.unit = "bytes"

    def track_sin_extra_bytes(self, n, layout):
        return self._extra_bytes(lambda: np.sin(self.x))

    track_sin_extra_bytes.unit = "bytes"

    def track_output_bytes(self, n, layout):
        """The size of one result (all L lanes): the ideal extra memory."""
        return _nlanes(layout) * n * 8

    track_output_bytes.unit = "bytes"


class SmallOverhead:
    """Per-call overhead on tiny arrays (n = 10, K1 = K2 = P = 1): dispatch, not data.

    Timed on the Numba kernels (``_load_kernels`` in ``setup``), the path
    every long-running process ends up on; a fresh process starts tiny
    problems on NumPy twins instead, which would switch to Numba partway
    through a benchmark once enough work has accumulated.

    Timing: 10 to 20 samples of 5000 calls each, after 0.5 s of warm-up (the
    defaults took 1 to 10 short samples, whose medians on this shared 2-core host
    varied by 2x between runs of the same code).  Because the class has a
    ``setup``, asv re-runs it before every call and times each call on its own
    (asv#966): the figures include two clock reads and the first use of freshly
    made operands, 0.5-0.7 µs more per call than the same calls in a loop.  A
    version without ``setup`` (operands made once per process, calls batched as
    ``timeit`` does) measured ±1-3 µs between samples here, so this one stays.
    """

    number = 5000
    repeat = (10, 20, 20.0)
    warmup_time = 0.5

    def setup(self):
        rng = np.random.default_rng(0)
        self.x = make_operand(rng, 10, (1, 1, 1))
        self.y = make_operand(rng, 10, (1, 1, 1))
        _load_kernels()
        # Compile / load every kernel these paths use.
        self.x * self.y
        np.sin(self.x)
        self.x + 1.0
        np.sum(self.x)

    def time_multiply(self):
        self.x * self.y

    def time_sin(self):
        np.sin(self.x)

    def time_add_constant(self):
        self.x + 1.0

    def time_sum(self):
        np.sum(self.x)


def _median_import_seconds(statement, runs=3):
    """Median wall time of ``python -c statement`` in a fresh interpreter.

    One untimed warm-up run first, so the OS file cache, ``.pyc`` files and
    the Numba on-disk cache are warm.
    """
    cmd = [sys.executable, "-c", statement]
    subprocess.run(cmd, check=True)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


class Import:
    """Cold-process import time (interpreter start-up included), in seconds.

    ``track_import_overhead_seconds`` is ``import hyperdual`` minus
    ``import numpy, numba``.  Versions that load Numba lazily (only when a
    kernel is first needed) make it negative; ``track_import_numpy_seconds``
    is the baseline for those, and ``track_import_overhead_over_numpy_seconds``
    the cost of hyperdual's own modules.
    """

    timeout = 300

    def track_import_seconds(self):
        return _median_import_seconds("import hyperdual")

    track_import_seconds.unit = "seconds"

    def track_import_numpy_numba_seconds(self):
        return _median_import_seconds("import numpy, numba")

    track_import_numpy_numba_seconds.unit = "seconds"

    def track_import_numpy_seconds(self):
        return _median_import_seconds("import numpy")

    track_import_numpy_seconds.unit = "seconds"

    def track_import_overhead_seconds(self):
        """``import hyperdual`` minus ``import numpy, numba``, both measured here."""
        return (_median_import_seconds("import hyperdual")
                - _median_import_seconds("import numpy, numba"))

    track_import_overhead_seconds.unit = "seconds"

    def track_import_overhead_over_numpy_seconds(self):
        """``import hyperdual`` minus ``import numpy``, both measured here."""
        return (_median_import_seconds("import hyperdual")
                - _median_import_seconds("import numpy"))

    track_import_overhead_over_numpy_seconds.unit = "seconds"
