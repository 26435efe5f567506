"""Shared test helpers: identity seeds, and derivatives read back from the lanes."""
import numpy as np

from hyperdual import HyperDual


def seeded(x0, shared=False):
    """Identity seeds on every element of ``x0``: K1 = K2 = N, P = N*N (all pairs)."""
    x0 = np.asarray(x0, dtype=float)
    n = x0.size
    eye = np.eye(n).reshape((n,) + x0.shape)
    return HyperDual(x0, e1=eye, e2=eye if shared else eye.copy())


def derivs(y, n):
    """``(value, gradient (n, *S), Hessian (n, n, *S))`` from identity-seeded lanes."""
    assert isinstance(y, HyperDual), type(y)
    g = np.asarray(y.e1)
    assert g.shape == (n,) + y.shape
    np.testing.assert_allclose(y.e2, g, rtol=1e-15, atol=0)  # e2 seeds equal e1 seeds
    ip, jp = y.pairs
    np.testing.assert_array_equal(ip, np.repeat(np.arange(n), n))
    np.testing.assert_array_equal(jp, np.tile(np.arange(n), n))
    h = np.asarray(y.e12)
    assert h.shape == (n * n,) + y.shape
    return np.asarray(y.value), g, h.reshape((n, n) + y.shape)


def rosen(x):
    """The chained Rosenbrock function (NumPy code, differentiated as written)."""
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def rosen_hessian(x):
    """Closed form of the chained Rosenbrock Hessian: tridiagonal."""
    n = x.size
    H = np.zeros((n, n))
    i = np.arange(n - 1)
    H[i, i] += 1200 * x[:-1] ** 2 - 400 * x[1:] + 2
    H[i + 1, i + 1] += 200
    H[i, i + 1] = H[i + 1, i] = -400 * x[:-1]
    return H
