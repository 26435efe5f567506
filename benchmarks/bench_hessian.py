"""Benchmarks of the lazy Hessian: full matrices, blocks, diagonals, batches.

**Unit: xF.**  Every timing class has a ``time_hessian_*`` method (the
request) and, beside it, ``time_f_numpy``: one plain NumPy evaluation of the
same function at the same point, measured in the same class and run, so::

    xF = time_hessian_* / time_f_numpy          (same class, same params)

Run them with e.g.::

    asv run --python=same --quick --show-stderr -b bench_hessian   # smoke test
    asv run --python=same --show-stderr -b bench_hessian           # measurement
    asv show <commit> -b bench_hessian                             # the saved medians

Conventions:

* ``setup`` builds seeded data (``np.random.default_rng(0)``) and calls
  ``hyperdual.load_kernels()``, so every timing is the steady state on the
  Numba kernels (a fresh process starts small problems on NumPy twins of
  the kernels; that cold path is measured separately by :class:`FirstCall`).
  ``setup`` never runs a Hessian itself: asv re-runs it before each sample.
* The timed method builds a **fresh** Hessian and indexes it,
  ``hyperdual.hessian(f, x)[index]``, so the cache never makes a repeat
  free.  The time includes the value call that ``hessian()`` makes.
* ``track_*`` methods report the (deterministic) work: passes and unordered
  pairs seeded, from ``H.stats``.
"""
import functools
import inspect
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np

import hyperdual

try:
    from hyperdual.settings import settings as _SETTINGS
except ImportError:  # (commits before hyperdual/settings.py, for asv runs of older commits)
    from hyperdual.seeding import settings as _SETTINGS


# ---- the functions (plain NumPy; hyperdual differentiates the same code) ---------------------
def rosen(x):
    """Chained Rosenbrock: a tridiagonal Hessian."""
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def lse(x, A):
    """``logsumexp(A @ x) + sum(sin(x) * x)``: a dense Hessian.

    The logsumexp is the numerically stable form ``m + log(sum(exp(z - m)))``
    with ``m = max(z)`` (``np.max`` passes the derivatives of the maximum).
    """
    z = A @ x
    m = np.max(z)
    return m + np.log(np.sum(np.exp(z - m))) + np.sum(np.sin(x) * x)


def batched(X):
    """Per-sample ``sum(exp(x) * cos(x)) + prod(x)`` for ``X`` ``[B, 3]``: output ``[B]``."""
    return np.sum(np.exp(X) * np.cos(X), axis=1) + np.prod(X, axis=1)


def _point(n, rng=None):
    rng = np.random.default_rng(0) if rng is None else rng
    return rng.uniform(-2.0, 2.0, n)


def _lse_matrix(n, rng):
    return rng.standard_normal((n, n)) / np.sqrt(n)


class _Timing:
    """Timing settings shared by the classes (numpy/scipy-style attributes).

    A call takes from ~10 us (``time_f_numpy``) to several seconds (the full
    1000 x 1000 Rosenbrock Hessian).  Every sample is one call (this
    asv_runner re-runs ``setup`` between samples anyway); at least 3 and at
    most 20 samples per round, stopping after ~10 s, and 2 rounds (two
    processes) per benchmark.  The slowest case then costs about 2 x 4 calls.
    """

    number = 1
    repeat = (3, 20, 10.0)
    warmup_time = 0.2
    timeout = 300


class _Switch:
    """A benchmark parameter that leaves one field of ``hyperdual.settings.settings``
    at its default (``on``) or sets it to ``off_value``; ``teardown`` restores it."""

    switch_field = ""
    off_value = 2 ** 62

    def _switch(self, on):
        self._saved = getattr(_SETTINGS, self.switch_field)
        if not on:
            setattr(_SETTINGS, self.switch_field, self.off_value)

    def teardown(self, *params):
        setattr(_SETTINGS, self.switch_field, self._saved)


def _stats(func, x, index, **kwargs):
    H = hyperdual.hessian(func, x, **kwargs)
    H[index]
    return H.stats


# ---- 1. full Rosenbrock Hessian ----------------------------------------------------------------
class RosenbrockFull(_Switch, _Timing):
    """``H[:]`` of the chained Rosenbrock function, ``N`` in 10, 100, 1000.

    Reference points (paddle on this machine): ~3 ms at N = 10, 30-38 ms at
    N = 100.

    ``pairs``: ``"pattern"`` is the default (requests of 1024 pairs or more
    first find the sparsity pattern and seed only the pairs that can be
    nonzero, :mod:`hyperdual.plan.pattern`; N = 10 is below that); ``"all"``
    switches patterns off, so the two columns of one run show what they save.
    """

    params = [[10, 100, 1000], ["pattern", "all"]]
    param_names = ["N", "pairs"]
    switch_field = "pattern_min_pairs"

    def setup(self, N, pairs):
        self.x = _point(N)
        self._switch(pairs == "pattern")
        hyperdual.load_kernels()

    def time_hessian_full(self, N, pairs):
        hyperdual.hessian(rosen, self.x)[:]

    def time_f_numpy(self, N, pairs):
        rosen(self.x)

    def track_passes(self, N, pairs):
        return _stats(rosen, self.x, slice(None)).passes

    track_passes.unit = "passes"

    def track_pairs_evaluated(self, N, pairs):
        return _stats(rosen, self.x, slice(None)).pairs_evaluated

    track_pairs_evaluated.unit = "pairs"


# ---- 2. full Hessian of a dense function -----------------------------------------------------------
class LogSumExpFull(_Timing):
    """``H[:]`` of ``logsumexp(A @ x) + sum(sin(x) * x)``, ``A`` ``[N, N]`` / sqrt(N)."""

    params = [[10, 100, 300]]
    param_names = ["N"]

    def setup(self, N):
        rng = np.random.default_rng(0)
        self.A = _lse_matrix(N, rng)
        self.x = _point(N, rng)
        self.f = functools.partial(lse, A=self.A)
        hyperdual.load_kernels()

    def time_hessian_full(self, N):
        hyperdual.hessian(self.f, self.x)[:]

    def time_f_numpy(self, N):
        lse(self.x, self.A)

    def track_passes(self, N):
        return _stats(self.f, self.x, slice(None)).passes

    track_passes.unit = "passes"

    def track_pairs_evaluated(self, N):
        return _stats(self.f, self.x, slice(None)).pairs_evaluated

    track_pairs_evaluated.unit = "pairs"


# ---- 3. batched per-sample Hessians -------------------------------------------------------------
class Batched(_Switch, _Timing):
    """``H[:]`` (``[B, 3, 3]``) with ``batch_axis=0`` for ``B = 10000`` samples of 3 inputs.

    ``time_f_numpy`` is one vectorized evaluation of all ``B`` samples.  The
    request includes hyperdual's value call, which for a batch runs on 4 of the
    samples alone (the independence check's), and the pass, whose values are
    compared with theirs.

    ``lanes``: ``"columns"`` is the default (the pass starts with one lane row
    per derivative order, :mod:`hyperdual.execute.columns`); ``"full"`` switches column
    lanes off, so the two columns of one run show what they save.
    """

    params = [[10_000], ["columns", "full"]]
    param_names = ["B", "lanes"]
    switch_field = "column_lanes"
    off_value = False

    def setup(self, B, lanes):
        self.X = np.random.default_rng(0).uniform(-1.0, 1.0, (B, 3))
        self._switch(lanes == "columns")
        hyperdual.load_kernels()

    def time_hessian_full(self, B, lanes):
        hyperdual.hessian(batched, self.X, batch_axis=0)[:]

    def time_f_numpy(self, B, lanes):
        batched(self.X)

    def track_passes(self, B, lanes):
        return _stats(batched, self.X, slice(None), batch_axis=0).passes

    track_passes.unit = "passes"

    def track_pairs_evaluated(self, B, lanes):
        return _stats(batched, self.X, slice(None), batch_axis=0).pairs_evaluated

    track_pairs_evaluated.unit = "pairs"


# ---- 4. a small block of a large Hessian --------------------------------------------------------------
class RosenbrockBlock(_Switch, _Timing):
    """``H[0:2, 0:2]`` of a large Rosenbrock Hessian: 3 unordered pairs, one pass.

    ``time_hessian_block3`` (``H[0:3, 0:3]``, 6 pairs) is the reference
    API's benchmark shape (paddle on this machine: ~2.2 ms at N = 1000).

    ``lanes``: ``"windowed"`` is the default (lanes of the seeded columns
    only, :mod:`hyperdual.execute.window`); ``"full"`` switches windows off, so the
    two rows of one run show what windows save.
    """

    params = [[1000, 10_000], ["windowed", "full"]]
    param_names = ["N", "lanes"]
    switch_field = "window_min_size"

    def setup(self, N, lanes):
        self.x = _point(N)
        self._switch(lanes == "windowed")
        hyperdual.load_kernels()

    def time_hessian_block(self, N, lanes):
        hyperdual.hessian(rosen, self.x)[0:2, 0:2]

    def time_hessian_block3(self, N, lanes):
        hyperdual.hessian(rosen, self.x)[0:3, 0:3]

    def time_f_numpy(self, N, lanes):
        rosen(self.x)

    def track_passes(self, N, lanes):
        return _stats(rosen, self.x, (slice(0, 2), slice(0, 2))).passes

    track_passes.unit = "passes"

    def track_pairs_evaluated(self, N, lanes):
        """Must be 3: (0, 0), (0, 1), (1, 1)."""
        return _stats(rosen, self.x, (slice(0, 2), slice(0, 2))).pairs_evaluated

    track_pairs_evaluated.unit = "pairs"


# ---- 5. the diagonal -----------------------------------------------------------------------------------
class RosenbrockDiagonal(_Timing):
    """``H[i, i]`` with ``i = arange(N)``: N pairs, no off-diagonal entry."""

    params = [[1000]]
    param_names = ["N"]

    def setup(self, N):
        self.x = _point(N)
        self.i = np.arange(N)
        hyperdual.load_kernels()

    def time_hessian_diagonal(self, N):
        hyperdual.hessian(rosen, self.x)[self.i, self.i]

    def time_f_numpy(self, N):
        rosen(self.x)

    def track_passes(self, N):
        return _stats(rosen, self.x, (self.i, self.i)).passes

    track_passes.unit = "passes"

    def track_pairs_evaluated(self, N):
        return _stats(rosen, self.x, (self.i, self.i)).pairs_evaluated

    track_pairs_evaluated.unit = "pairs"


# ---- 5b. the function recorded once, or called per pass -------------------------------------------------
class Recorded(_Timing):
    """The requests of the table above with the function recorded once and replayed
    in every pass (``record=True``) beside the calls per pass (``record=False``), in
    one class and run, so the two columns give the cost of recording.

    ``case``: ``rosen10`` full N = 10; ``lse10`` logsumexp full N = 10; ``rosen100``
    full N = 100 (sparsity pattern); ``block1000`` / ``block10000`` ``H[0:2, 0:2]``;
    ``diag1000`` the diagonal at N = 1000 (many passes).  ``time_f_numpy`` is F.
    """

    params = [["rosen10", "lse10", "rosen100", "block1000", "block10000", "diag1000"],
              ["per-pass", "recorded"]]
    param_names = ["case", "mode"]

    def setup(self, case, mode):
        rng = np.random.default_rng(0)
        n = int("".join(c for c in case if c.isdigit()))
        self.x = _point(n, rng)
        self.f = functools.partial(lse, A=_lse_matrix(n, rng)) if case.startswith("lse") else rosen
        i = np.arange(n)
        self.index = {"block": (slice(0, 2), slice(0, 2)), "diag": (i, i)}.get(
            case.rstrip("0123456789"), slice(None))
        self.record = mode == "recorded"
        hyperdual.load_kernels()

    def time_hessian(self, case, mode):
        hyperdual.hessian(self.f, self.x, record=self.record)[self.index]

    def time_f_numpy(self, case, mode):
        self.f(self.x)

    def track_function_calls(self, case, mode):
        calls = []

        def f(x):
            calls.append(1)
            return self.f(x)
        hyperdual.hessian(f, self.x, record=self.record)[self.index]
        return len(calls)

    track_function_calls.unit = "calls"


# ---- 6. memory ----------------------------------------------------------------------------------------
class MemoryBudget:
    """Memory of the full 1000 x 1000 Rosenbrock Hessian with the default budget.

    ``peakmem_*`` is asv's whole-process peak RSS (setup included), measured
    in a process forked from asv's server after this module was imported, so
    both methods start from the same imported state.  Read them together:

    * ``peakmem_baseline``: the same setup, one plain evaluation of ``f``
      and the ``[N, N]`` float64 result array allocated and touched
      (``np.zeros((N, N)).fill(1.0)``) -- what any Hessian of this size
      must hold;
    * ``peakmem_hessian_full``: ``hyperdual.hessian(rosen, x)[:]``;
    * ``peakmem_hessian_full - peakmem_baseline`` is what hyperdual adds
      (its dense cache and "known" mask, index arrays, the lanes of one
      pass).  It must stay below ``track_budget_bytes`` (the default
      per-pass lane budget, 512 MiB); the lanes of one pass alone are
      bounded by the budget by construction.

    ``track_hessian_full_extra_bytes`` is the exact NumPy-side figure: the
    :mod:`tracemalloc` peak during the call above what was allocated before
    it (NumPy reports its buffers to tracemalloc), result included.
    """

    params = [[1000]]
    param_names = ["N"]
    timeout = 300

    def setup(self, N):
        self.x = _point(N)
        hyperdual.load_kernels()

    def peakmem_baseline(self, N):
        rosen(self.x)
        out = np.zeros((N, N))
        out.fill(1.0)

    def peakmem_hessian_full(self, N):
        hyperdual.hessian(rosen, self.x)[:]

    def track_budget_bytes(self, N):
        return _SETTINGS.memory_budget

    track_budget_bytes.unit = "bytes"

    def track_hessian_full_extra_bytes(self, N):
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            result = hyperdual.hessian(rosen, self.x)[:]
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        del result
        return peak - before

    track_hessian_full_extra_bytes.unit = "bytes"

    def track_result_bytes(self, N):
        """One ``[N, N]`` float64 result: the unavoidable part of the extra bytes."""
        return N * N * 8

    track_result_bytes.unit = "bytes"


# ---- 7. cold first call ------------------------------------------------------------------------
_FIRST_CALL = """
import time
import numpy as np
import hyperdual
{source}
x = np.random.default_rng(0).uniform(-2.0, 2.0, {n})
t0 = time.perf_counter()
hyperdual.hessian(rosen, x)[:]
print(time.perf_counter() - t0)
"""


def _first_call_seconds(n, runs=3):
    """Median over ``runs`` fresh interpreters of the first ``hessian(rosen, x)[:]``.

    Import time is excluded (``bench_engine.Import`` measures it).  One
    untimed run first, so ``.pyc`` files and Numba's on-disk kernel cache
    exist and the OS file cache is warm.
    """
    code = _FIRST_CALL.format(source=textwrap.dedent(inspect.getsource(rosen)), n=n)
    cmd = [sys.executable, "-c", code]
    subprocess.run(cmd, check=True, capture_output=True)
    times = []
    for _ in range(runs):
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        times.append(float(out.split()[-1]))
    return float(np.median(times))


class FirstCall:
    """Seconds of the first full Rosenbrock Hessian in a fresh process (kernels cached on disk).

    What a script pays on its first Hessian after ``import hyperdual``: small
    problems start on the NumPy twins of the kernels, so no Numba loading is
    needed for them.  Target: < 50 ms for N <= 100.
    """

    params = [[10, 100]]
    param_names = ["N"]
    timeout = 300

    def track_first_call_seconds(self, N):
        return _first_call_seconds(N)

    track_first_call_seconds.unit = "seconds"
