"""hyperdual.derivatives / hyperdual.minimize: exact derivatives for scipy.optimize.

The values are checked against scipy's closed forms of the Rosenbrock function
(``rosen_der``, ``rosen_hess``, ``rosen_hess_prod``); the count of calls of the
user's function is checked with the function's own counter: one call per point.
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import optimize  # (the test extra has scipy; hyperdual itself needs it only here)

import hyperdual


def rosen(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


class Counted:
    """A function that records every point it is called at (as bytes)."""

    def __init__(self, f):
        self.f, self.points = f, []

    def __call__(self, x, *args):
        self.points.append(np.asarray(x.value if isinstance(x, hyperdual.HyperDual) else x).tobytes())
        return self.f(x, *args)


I, J = np.triu_indices(13, 1)


def lennard_jones(x):
    """The energy of 13 atoms in reduced units: ``4 Σ_{i<j} (r⁻¹² - r⁻⁶)``, pair by pair
    (benchmarks/bench_optimize.py writes it with a distance matrix)."""
    X = x.reshape(13, 3)
    r2 = np.sum((X[I] - X[J]) ** 2, axis=1)
    return 4.0 * np.sum(r2 ** -6 - r2 ** -3)


def icosahedron(radius):
    """A centre atom and the 12 vertices ``(0, ±1, ±φ)`` and their cyclic shifts."""
    p = (1 + 5 ** 0.5) / 2
    base = [(0.0, s1, s2 * p) for s1 in (1, -1) for s2 in (1, -1)]
    v = np.array([np.roll(b, k) for k in range(3) for b in base])
    return np.vstack([np.zeros(3), v * radius / np.linalg.norm(v[0])])


#: The global minimum of the 13-atom Lennard-Jones cluster (the Cambridge Cluster Database).
LJ13_MINIMUM = -44.326801


# ---- derivatives -----------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_derivatives_match_the_closed_forms(seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, 7)
    p = rng.standard_normal(7)
    d = hyperdual.derivatives(rosen)
    assert d.fun(x) == pytest.approx(optimize.rosen(x), rel=1e-15)
    np.testing.assert_allclose(d.jac(x), optimize.rosen_der(x), rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(d.hessp(x, p), optimize.rosen_hess_prod(x, p), rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(d.hess(x), optimize.rosen_hess(x), rtol=1e-14, atol=1e-12)
    # after hess, hessp is the cached Hessian's product: the same numbers
    np.testing.assert_allclose(d.hessp(x, p), optimize.rosen_hess_prod(x, p), rtol=1e-13, atol=1e-12)


def test_derivatives_call_the_function_once_per_point():
    f = Counted(rosen)
    d = hyperdual.derivatives(f)
    x, y = np.linspace(-1, 1, 6), np.linspace(0, 2, 6)
    p = np.ones(6)
    d.fun(x), d.jac(x), d.hess(x), d.hessp(x, p), d.jac(x.copy())
    assert f.points == [x.tobytes()]
    d.hessp(y, p), d.fun(y), d.jac(y)
    assert f.points == [x.tobytes(), y.tobytes()]
    d.fun(x)  # an optimiser back at its iterate after a trial step: still known
    assert len(f.points) == 2 and d.function_calls == 2 and d.points == 2
    assert d.at(x) is d.at(x.copy())
    assert "points=2, function_calls=2" in repr(d)


def test_derivatives_hess_returns_a_new_array():
    d = hyperdual.derivatives(rosen)
    x = np.array([0.5, 1.5, -0.5])
    h = d.hess(x)
    h[:] = 0.0
    np.testing.assert_allclose(d.hess(x), optimize.rosen_hess(x), rtol=1e-15)


def test_derivatives_args_bound_and_per_call():
    def f(x, a, b):
        return np.sum(a * x ** 3) + b * x[0] * x[1]
    x = np.array([1.0, 2.0])
    want = np.array([[12.0, 3.0], [3.0, 24.0]])  # a = 2, b = 3
    d = hyperdual.derivatives(f, args=(2.0,))
    np.testing.assert_array_equal(d.hess(x, 3.0), want)
    np.testing.assert_array_equal(hyperdual.derivatives(f).hess(x, 2.0, 3.0), want)
    np.testing.assert_array_equal(hyperdual.derivatives(f, (2.0, 3.0)).jac(x), [6.0 + 6.0, 24.0 + 3.0])
    assert hyperdual.derivatives(lambda x, a: np.sum(a * x), 5.0).fun(x) == 15.0  # one bare argument


def test_derivatives_new_arguments_make_a_new_point():
    f = Counted(lambda x, a: np.sum(a * x ** 2))
    d = hyperdual.derivatives(f)
    x = np.array([1.0, 2.0])
    a1, a2 = np.array([1.0, 1.0]), np.array([3.0, 3.0])
    np.testing.assert_array_equal(d.jac(x, a1), [2.0, 4.0])
    np.testing.assert_array_equal(d.jac(x, a2), [6.0, 12.0])
    assert len(f.points) == 2


def test_derivatives_zero_d_point():
    d = hyperdual.derivatives(lambda t: t ** 4)
    assert d.fun(2.0) == 16.0
    assert d.jac(2.0) == 32.0
    assert d.hess(2.0) == 48.0
    assert d.hessp(2.0, 0.5) == 24.0
    assert hyperdual.derivatives(lambda t: t ** 4).hessp(2.0, 0.5) == 24.0


def test_derivatives_of_a_function_that_cannot_be_recorded():
    """It is called per pass: the same numbers, more calls (and the stats say why)."""
    state = {"first": True}

    def f(v):
        if state.pop("first", False):
            raise LookupError("not ready on the first call")
        return rosen(v)
    x = np.array([0.3, -1.0, 2.0])
    d = hyperdual.derivatives(f)
    np.testing.assert_allclose(d.hess(x), optimize.rosen_hess(x), rtol=1e-15)
    assert d.at(x).stats.mode == "callable" and "LookupError" in d.at(x).stats.reason
    assert d.function_calls > 2


def test_derivatives_record_false_calls_per_pass():
    f = Counted(rosen)
    d = hyperdual.derivatives(f, record=False)
    x = np.array([0.3, -1.0, 2.0])
    np.testing.assert_allclose(d.hess(x), optimize.rosen_hess(x), rtol=1e-15)
    assert len(f.points) == 1 + d.at(x).stats.passes and d.at(x).stats.mode == "callable"


def test_derivatives_bad_input():
    with pytest.raises(TypeError, match="func must be callable, got int"):
        hyperdual.derivatives(3)
    d = hyperdual.derivatives(rosen)
    with pytest.raises(ValueError, match=r"x must be 0-d or 1-d .* got shape \(2, 2\)"):
        d.fun(np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"v has shape \(2,\); expected the shape of x, \(3,\)"):
        d.hessp(np.ones(3), np.ones(2))
    d.hess(np.ones(3))
    with pytest.raises(ValueError, match=r"p has shape \(2,\); expected the shape of x, \(3,\)"):
        d.hessp(np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match="needs a scalar output"):
        hyperdual.derivatives(lambda x: x ** 2).hessp(np.ones(3), np.ones(3))


# ---- Hessian.hvp -----------------------------------------------------------------------------
@pytest.mark.parametrize("record", [True, False])
def test_hessian_hvp(record):
    f = Counted(rosen)
    x = np.array([0.5, -1.5, 2.0, 0.25])
    v = np.array([1.0, -2.0, 0.5, 3.0])
    H = hyperdual.hessian(f, x, record=record)
    calls = len(f.points)
    np.testing.assert_allclose(H.hvp(v), optimize.rosen_hess_prod(x, v), rtol=1e-14)
    assert H.stats.passes == 1
    assert len(f.points) == calls + (0 if record else 1)  # a recorded Hessian replays its record
    np.testing.assert_allclose(H.hvp(v), H[:] @ v, rtol=1e-14)


@pytest.mark.filterwarnings("ignore:invalid value encountered in log")
def test_hessian_hvp_nan_output_and_refusals():
    H = hyperdual.hessian(lambda x: np.sum(np.log(x)), np.array([-1.0, 2.0]))
    np.testing.assert_array_equal(H.hvp(np.ones(2)), [np.nan, np.nan])
    np.testing.assert_array_equal(hyperdual.hvp(lambda x: np.sum(np.log(x)), np.array([-1.0, 2.0]),
                                                 np.ones(2)), [np.nan, np.nan])
    Hb = hyperdual.hessian(lambda x: np.sum(x ** 2, axis=1), np.ones((3, 2)), batch_axis=0)
    with pytest.raises(ValueError, match="Hessian.hvp needs the Hessian of one input without a batch"):
        Hb.hvp(np.ones(2))
    Ht = hyperdual.hessian(lambda a, b: np.sum(a * b), (np.ones(2), np.ones(2)))
    with pytest.raises(ValueError, match="Hessian.hvp needs the Hessian of one input"):
        Ht[0][0].hvp(np.ones(2))


# ---- minimize --------------------------------------------------------------------------------
def _tiled(n):
    return np.resize([1.3, 0.7, 0.8, 1.9, 1.2], n)  # scipy's tutorial start, repeated


def test_minimize_rosenbrock_1000_trust_exact():
    f = Counted(rosen)
    res = hyperdual.minimize(f, _tiled(1000), method="trust-exact")
    assert res.success, res.message
    np.testing.assert_allclose(res.x, 1.0, atol=1e-7)
    assert res.fun < 1e-14
    assert len(f.points) == len(set(f.points)) == res.function_calls == res.nfev  # once per point


def test_minimize_rosenbrock_1000_trust_ncg_hessp():
    f = Counted(rosen)
    res = hyperdual.minimize(f, _tiled(1000), method="trust-ncg", hessp=True)
    assert res.success, res.message
    np.testing.assert_allclose(res.x, 1.0, atol=1e-5)
    assert res.nhev > res.nit  # several products per iterate, no new calls of f
    assert len(f.points) == len(set(f.points)) == res.function_calls == res.nfev


@pytest.mark.parametrize("method", ["trust-exact", "trust-ncg", "trust-krylov", "Newton-CG", "trust-constr"])
def test_minimize_lennard_jones_13(method):
    rng = np.random.default_rng(1)
    x0 = (icosahedron(1.1) + 0.05 * rng.standard_normal((13, 3))).ravel()
    f = Counted(lennard_jones)
    res = hyperdual.minimize(f, x0, method=method)
    assert res.success, res.message
    assert res.fun == pytest.approx(LJ13_MINIMUM, abs=5e-7)
    assert len(f.points) == len(set(f.points)) == res.function_calls


@pytest.mark.parametrize("method", ["trust-krylov", "Newton-CG", "trust-constr"])
def test_minimize_hessp_methods_agree_with_hess(method):
    x0 = _tiled(20)
    a = hyperdual.minimize(rosen, x0, method=method)
    b = hyperdual.minimize(rosen, x0, method=method, hessp=True)
    assert a.success and b.success
    np.testing.assert_allclose(b.x, a.x, atol=1e-5)


def test_minimize_agrees_with_scipy_closed_forms():
    """The same iterates as scipy with its hand-written derivatives, to rounding."""
    x0 = _tiled(30)
    ours = hyperdual.minimize(rosen, x0, method="trust-exact")
    theirs = optimize.minimize(optimize.rosen, x0, jac=optimize.rosen_der, hess=optimize.rosen_hess,
                               method="trust-exact")
    assert ours.nit == theirs.nit and ours.nfev == theirs.nfev
    np.testing.assert_allclose(ours.x, theirs.x, rtol=1e-12)


def test_minimize_args_and_passthrough():
    def f(x, c, scale):
        return scale * np.sum((x - c) ** 2) + np.sum(x ** 4)
    seen = []
    res = hyperdual.minimize(f, np.zeros(3), args=(np.array([1.0, -2.0, 0.5]), 2.0), method="trust-ncg",
                             options={"gtol": 1e-12}, callback=lambda xk: seen.append(xk.copy()))
    assert res.success and len(seen) == res.nit
    c = np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(4.0 * (res.x - c) + 4.0 * res.x ** 3, 0.0, atol=1e-11)


def test_minimize_trust_constr_with_a_constraint():
    cons = optimize.LinearConstraint(np.ones((1, 4)), 2.0, 2.0)  # x sums to 2
    res = hyperdual.minimize(lambda x: np.sum(x ** 2) + x[0] * x[1], np.zeros(4), method="trust-constr",
                             constraints=[cons])
    assert res.success
    np.testing.assert_allclose(res.x.sum(), 2.0, atol=1e-8)
    np.testing.assert_allclose(res.x, [0.4, 0.4, 0.6, 0.6], atol=1e-6)  # 3a = 2b = λ = 6/5


def test_minimize_bad_input():
    with pytest.raises(ValueError, match="methods that use second derivatives.*got method='BFGS'"):
        hyperdual.minimize(rosen, np.zeros(3), method="BFGS")
    with pytest.raises(ValueError, match="got method=None"):
        hyperdual.minimize(rosen, np.zeros(3), method=None)
    with pytest.raises(TypeError, match=r"computes jac, hess and hessp itself; got \['hess', 'jac'\]"):
        hyperdual.minimize(rosen, np.zeros(3), jac=optimize.rosen_der, hess=optimize.rosen_hess)
    with pytest.raises(ValueError, match="method='dogleg' takes a Hessian, not Hessian-vector products"):
        hyperdual.minimize(rosen, np.zeros(3), method="dogleg", hessp=True)


def test_minimize_without_scipy(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.optimize", None)
    with pytest.raises(ImportError, match=r"needs scipy.*hyperdual-hessian\[scipy\]"):
        hyperdual.minimize(rosen, np.zeros(3))
    d = hyperdual.derivatives(rosen)  # derivatives themselves need no scipy
    np.testing.assert_array_equal(d.jac(np.ones(3)), np.zeros(3))


def test_import_hyperdual_does_not_import_scipy():
    code = "import sys, hyperdual; hyperdual.derivatives(lambda x: x); print('scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
