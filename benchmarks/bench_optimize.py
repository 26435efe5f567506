"""Optimisers with hyperdual's exact derivatives beside BFGS and finite-difference Hessians.

The same problems, the same starting points, the same exact gradient (from
hyperdual) in every method; what differs is the second-order information:

* ``trust-exact``: ``hyperdual.minimize`` (exact Hessian per iterate);
* ``trust-ncg-hessp``: ``hyperdual.minimize(..., hessp=True)`` (exact
  Hessian-vector products, one pass each);
* ``fd-hessp``: ``scipy.optimize.minimize(method="trust-ncg", hess="2-point")``
  (Hessian-vector products by differences of the exact gradient);
* ``bfgs``: ``scipy.optimize.minimize(method="BFGS")`` (a quasi-Newton update).

Problems: chained Rosenbrock at N = 100 and 1000 from scipy's tutorial start
``[1.3, 0.7, 0.8, 1.9, 1.2]`` tiled, and the 13-atom Lennard-Jones cluster from a
perturbed icosahedron (minimum -44.326801).  BFGS at N = 1000 is not run: it
takes about 1400 iterations and 190 s here (measured once), longer than the
other three cases together by two orders of magnitude.

``track_iterations`` and ``track_function_calls`` (calls of the objective) are
deterministic; ``time_minimize`` is the wall time of one whole run.
"""
import numpy as np

import hyperdual

from .bench_hessian import rosen

IU = np.triu_indices(13, 1)


def lennard_jones(x):
    """The energy of 13 atoms in reduced units: ``4 Σ_{i<j} (r⁻¹² - r⁻⁶)``."""
    X = x.reshape(13, 3)
    d = X[:, None, :] - X[None, :, :]
    r2 = np.sum(d * d, axis=-1)[IU]
    inv6 = 1.0 / r2 ** 3
    return 4.0 * np.sum(inv6 * inv6 - inv6)


def _icosahedron(radius):
    p = (1 + 5 ** 0.5) / 2
    v = np.array([[0, 1, p], [0, -1, p], [0, 1, -p], [0, -1, -p], [1, p, 0], [-1, p, 0],
                  [1, -p, 0], [-1, -p, 0], [p, 0, 1], [-p, 0, 1], [p, 0, -1], [-p, 0, -1]])
    v *= radius / np.linalg.norm(v[0])
    return np.vstack([np.zeros(3), v])


def _problem(name):
    if name.startswith("rosen"):
        return rosen, np.resize([1.3, 0.7, 0.8, 1.9, 1.2], int(name[5:]))
    rng = np.random.default_rng(1)
    return lennard_jones, (_icosahedron(1.1) + 0.05 * rng.standard_normal((13, 3))).ravel()


def _run(name, method):
    from scipy import optimize
    f, x0 = _problem(name)
    if method == "trust-exact":
        res = hyperdual.minimize(f, x0, method="trust-exact")
        return res, res.function_calls
    if method == "trust-ncg-hessp":
        res = hyperdual.minimize(f, x0, method="trust-ncg", hessp=True)
        return res, res.function_calls
    d = hyperdual.derivatives(f)
    if method == "fd-hessp":
        res = optimize.minimize(d.fun, x0, method="trust-ncg", jac=d.jac, hess="2-point")
    else:
        res = optimize.minimize(d.fun, x0, method="BFGS", jac=d.jac)
    return res, d.function_calls


class Minimize:
    """One whole minimisation per sample (0.03 s to 3 s)."""

    params = [["rosen100", "rosen1000", "lj13"], ["trust-exact", "trust-ncg-hessp", "fd-hessp", "bfgs"]]
    param_names = ["problem", "method"]
    number = 1
    repeat = (2, 10, 10.0)
    warmup_time = 0.0
    timeout = 300

    def setup(self, problem, method):
        try:
            import scipy  # noqa: F401
        except ImportError:
            raise NotImplementedError("scipy is not installed")
        if problem == "rosen1000" and method == "bfgs":
            raise NotImplementedError("about 190 s (see the module docstring)")
        hyperdual.load_kernels()

    def time_minimize(self, problem, method):
        _run(problem, method)

    def track_iterations(self, problem, method):
        return int(_run(problem, method)[0].nit)

    def track_function_calls(self, problem, method):
        return int(_run(problem, method)[1])

    def track_success(self, problem, method):
        return int(bool(_run(problem, method)[0].success))
