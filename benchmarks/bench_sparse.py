"""Benchmarks of sparse Hessians by colouring (:mod:`hyperdual.lazy.coloured`).

**Unit: xF** as in :mod:`benchmarks.bench_hessian`: ``time_hessian_*`` over
``time_f_numpy`` (one plain NumPy evaluation of the same function, same class and
run).  Each timed call builds a **fresh** Hessian (``hyperdual.hessian(f, x)``,
its value call included) and asks for the whole matrix: dense ``H[:]`` or
``H.sparse()``.  ``setup`` loads the kernels (the steady state); ``track_*``
report the colours and the structural nonzeros; ``peakmem_*`` the process's peak
RSS (asv's), beside ``peakmem_baseline`` (the same setup and one evaluation).

Run with e.g. ``asv run --python=same --show-stderr -b bench_sparse``.
"""
import numpy as np

import hyperdual

try:
    from hyperdual.settings import settings as _SETTINGS
except ImportError:  # (commits before hyperdual/settings.py)
    from hyperdual.seeding import settings as _SETTINGS


def rosen(x):
    """Chained Rosenbrock: a tridiagonal Hessian."""
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def minimal_surface(v):
    """The area of the graph of ``u`` (``m x m`` grid, forward differences): each cell's
    element depends on three grid values."""
    m = int(round(np.sqrt(v.size)))
    u = v.reshape(m, m)
    ux, uy = u[1:, :-1] - u[:-1, :-1], u[:-1, 1:] - u[:-1, :-1]
    return np.sum(np.sqrt(1.0 + ux ** 2 + uy ** 2)) / (m - 1) ** 2


class _Timing:
    number = 1
    repeat = (3, 20, 10.0)
    warmup_time = 0.2
    timeout = 300


class RosenbrockColoured(_Timing):
    """Dense ``H[:]`` of the chained Rosenbrock function by one coloured pass
    (``"colouring"``, whatever N) or by seeded pairs (``"pairs"``: the sparsity
    pattern's, as before colouring), in one run."""

    params = [[100, 1000, 3000], ["colouring", "pairs"]]
    param_names = ["N", "method"]

    def setup(self, N, method):
        self.x = np.random.default_rng(0).uniform(-2.0, 2.0, N)
        self._saved = (_SETTINGS.colouring, _SETTINGS.colour_min_inputs) \
            if hasattr(_SETTINGS, "colouring") else None
        if method == "pairs":
            if self._saved is None:
                raise NotImplementedError("no colouring in this commit")  # (asv: skipped)
            _SETTINGS.colouring = False
        elif self._saved is None:
            raise NotImplementedError("no colouring in this commit")
        else:
            _SETTINGS.colour_min_inputs = 0
        if method == "pairs" and N > 1000:
            raise NotImplementedError("too slow to time (20 s at N = 3000)")
        hyperdual.load_kernels()

    def teardown(self, N, method):
        if self._saved is not None:
            _SETTINGS.colouring, _SETTINGS.colour_min_inputs = self._saved

    def time_hessian_full(self, N, method):
        hyperdual.hessian(rosen, self.x)[:]

    def time_f_numpy(self, N, method):
        rosen(self.x)

    def track_colours(self, N, method):
        H = hyperdual.hessian(rosen, self.x)
        H[:]
        return H.stats.colours

    track_colours.unit = "colours"


class _SparseOutput(_Timing):
    """``H.sparse()`` from a fresh ``hessian()``."""

    def _setup(self, f, n):
        if not hasattr(hyperdual.Hessian, "sparse"):
            raise NotImplementedError("no Hessian.sparse in this commit")
        self.f = f
        self.x = np.random.default_rng(0).uniform(-1.0, 1.0, n)
        hyperdual.load_kernels()

    def time_hessian_sparse(self, n):
        hyperdual.hessian(self.f, self.x).sparse()

    def time_f_numpy(self, n):
        self.f(self.x)

    def track_colours(self, n):
        H = hyperdual.hessian(self.f, self.x)
        H.sparse()
        return H.stats.colours

    track_colours.unit = "colours"

    def track_nnz(self, n):
        return hyperdual.hessian(self.f, self.x).sparse().nnz

    track_nnz.unit = "nonzeros"

    def peakmem_baseline(self, n):
        self.f(self.x)

    def peakmem_hessian_sparse(self, n):
        hyperdual.hessian(self.f, self.x).sparse()


class RosenbrockSparse(_SparseOutput):
    """``H.sparse()`` of the chained Rosenbrock function, ``N`` inputs."""

    params = [[10_000, 100_000]]
    param_names = ["N"]

    def setup(self, n):
        self._setup(rosen, n)


class MinimalSurfaceSparse(_SparseOutput):
    """``H.sparse()`` of the minimal-surface energy on an ``m x m`` grid (``N = m²``)."""

    params = [[10_000, 90_000]]
    param_names = ["N (m = 100, 300)"]

    def setup(self, n):
        self._setup(minimal_surface, n)


class SparseMillion:
    """Peak memory of ``H.sparse()`` of Rosenbrock at N = 10⁶ (the result holds 3·10⁶
    nonzeros, 36 MB as CSR), beside the baseline; one sample."""

    number = 1
    repeat = 1
    timeout = 600

    def setup(self):
        if not hasattr(hyperdual.Hessian, "sparse"):
            raise NotImplementedError("no Hessian.sparse in this commit")
        self.x = np.random.default_rng(0).uniform(-1.0, 1.0, 10 ** 6)
        hyperdual.load_kernels()

    def peakmem_baseline(self):
        rosen(self.x)

    def peakmem_hessian_sparse(self):
        hyperdual.hessian(rosen, self.x).sparse()

    def time_hessian_sparse(self):
        hyperdual.hessian(rosen, self.x).sparse()
