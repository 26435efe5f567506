"""Non-finite values are honest: NaN where the value is NaN, never a finite wrong number."""
import warnings

import numpy as np
import pytest

import hyperdual
from hyperdual.plan.seeding import LIVE_FACTOR


def one_pair_budget(n):
    """A memory budget that fits exactly one index pair per pass (inputs of n elements)."""
    return LIVE_FACTOR * 8 * n


def sqrt_sum(x):
    return np.sum(np.sqrt(x))


def test_sqrt_at_zero_other_passes_exact():
    x = np.array([0.0, 1.0, 4.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        H = hyperdual.hessian(sqrt_sum, x, memory_budget=one_pair_budget(3))
        diag = H[[0, 1, 2], [0, 1, 2]]
    assert H.stats.passes == 3
    assert diag[0] == -np.inf                       # d²/dx² sqrt(x) -> -inf at 0
    assert diag[1] == -0.25                         # -x^(-3/2)/4, exact
    assert diag[2] == -0.25 / 8.0


@pytest.mark.parametrize("n", [3, 400])
@pytest.mark.parametrize("record", [False, True])
def test_one_pass_with_an_infinite_derivative_is_exact(n, record, default_pattern):
    """``0 · inf`` in a structurally zero lane entry stays 0 in the cross terms too
    (``e1[i] · e2[j]`` with one factor infinite): every entry exact, in one pass."""
    x = np.r_[0.0, 1.0, np.linspace(2.0, 4.0, n - 2)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        H = hyperdual.hessian(sqrt_sum, x, record=record)
        full = H[:3, :3] if n > 3 else H[:]
    assert H.stats.passes == 1 or n > 3
    with np.errstate(divide="ignore"):
        want = np.diag(-0.25 * x[:3] ** -1.5)
    np.testing.assert_allclose(full, want, rtol=1e-15, atol=0)  # (inf == inf; zeros exact)


@pytest.mark.parametrize("n", [4, 400])
def test_infinite_derivative_times_a_variable(n):
    """``sqrt(x0) * x1`` at ``(0, 2)``: ``-inf`` and ``inf``, not NaN (the product rule's
    ``x0.e1 · x1.e2`` has an infinite and a zero factor)."""
    x = np.r_[0.0, 2.0, np.ones(n - 2)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        H = hyperdual.hessian(lambda v: np.sqrt(v[0]) * v[1] + np.sum(v[2:] ** 2), x)
        np.testing.assert_array_equal(H[:2, :2], [[-np.inf, np.inf], [np.inf, 0.0]])
        Hv = hyperdual.hessian(lambda v: np.sum(np.sqrt(v[: n // 2]) * v[n // 2:]), np.r_[np.zeros(n // 2), np.full(n // 2, 2.0)])
        np.testing.assert_array_equal(Hv[0, [0, n // 2]], [-np.inf, np.inf])
        np.testing.assert_array_equal(Hv[0, 1], 0.0)


@pytest.mark.parametrize("n", [3, 3000])
@pytest.mark.parametrize("write", [lambda v: v * np.inf, lambda v: np.inf * v, lambda v: v / 0.0,
                                   lambda v: v * (0 * v + np.inf)])
def test_an_infinite_constant_factor_keeps_zero_lanes(n, write):
    """``x * inf`` (the constant-factor path, packed, windowed or general) keeps the exact
    zeros of the lanes, as the product kernel does for ``x * (0*x + inf)``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        g = hyperdual.gradient(lambda v: np.sum(write(v)), np.linspace(1.0, 2.0, n))
        H = hyperdual.hessian(lambda v: np.sum(write(v)[:2] ** 2), np.linspace(1.0, 2.0, n))
        block = H[:3, :3]
    np.testing.assert_array_equal(g, np.full(n, np.inf))
    assert block[0, 1] == 0.0 and block[1, 0] == 0.0 and block[2, 2] == 0.0
    assert block[0, 0] == np.inf and block[1, 1] == np.inf


@pytest.mark.parametrize("n", [2, 5, 40, 300])
@pytest.mark.parametrize("record", [False, True])
@pytest.mark.parametrize("write", [lambda v: -(v[0] * v[1]), lambda v: (v[0] * v[1]) * -2.0,
                                   lambda v: 1.0 - v[0] * v[1], lambda v: np.sum(1.0 - v * v[::-1]),
                                   lambda v: np.sum(v * v[::-1] / -3.0), lambda v: np.sum(-(v * v[::-1])),
                                   lambda v: v[0] - v[0] * v[1]])
def test_zero_entries_are_positive_zeros(n, record, write):
    """A negation or a negative constant factor never turns an exact zero into -0.0, on
    any path (packed, general, pattern pass, recorded): one sign of zero everywhere."""
    H = hyperdual.hessian(write, np.ones(n), record=record)[:]
    assert (H == 0).any()
    assert not np.signbit(H[H == 0]).any()


@pytest.mark.parametrize("func,x", [
    (lambda x: np.sum(np.log(x)), np.array([-1.0, 2.0])),
    (lambda x: np.sum(np.arcsin(x)), np.array([2.0, 0.5])),
    (lambda x: np.sum(np.sqrt(x)), np.array([-1.0, 4.0])),
    (lambda x: np.sum(np.arccosh(x)), np.array([0.5, 2.0])),
    (lambda x: np.sum(np.log1p(x)), np.array([-2.0, 1.0])),
])
def test_outside_the_domain_value_and_derivatives_are_nan(func, x):
    with pytest.warns(RuntimeWarning):
        H = hyperdual.hessian(func, x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        full = H[:]
        grad = H.gradient
    assert np.isnan(H.value)
    assert np.isnan(full).all()   # the output is NaN: every derivative of it is NaN
    assert np.isnan(grad).all()


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_input(bad):
    x = np.array([bad, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        H = hyperdual.hessian(lambda x: np.sum(np.sin(x) * x), x)
        full = H[:]
    assert np.isnan(H.value)
    assert not np.isfinite(full).all()
    assert not (np.isfinite(full) & (full != 0)).any() or np.isnan(full).all()


def test_nan_input_makes_linear_derivatives_nan_too():
    # a NaN input point has no derivative: even a linear function's entries are NaN
    H = hyperdual.hessian(lambda x: np.sum(2.0 * x), np.array([np.nan, 1.0]))
    assert np.isnan(H.gradient).all()
    assert np.isnan(H[:]).all()


def test_finite_entries_of_a_nan_free_block_stay_exact():
    # Only x[0] enters the log; the block of x[1], x[2] is computed in its own pass.
    def f(x):
        return np.log(x[0]) + x[1] ** 2 * x[2]

    x = np.array([-1.0, 2.0, 3.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        H = hyperdual.hessian(f, x)
        block = H[1:, 1:]
    # the output value is NaN, so these entries are NaN too: the rule is about the output
    assert np.isnan(block).all()


def test_scaling_by_an_infinite_constant_warns_as_numpy_does():
    """``v * inf`` of finite ``v`` raises no floating-point warning in NumPy, and none from
    the lanes either (the finiteness check of the factor must not compute ``inf - inf``)."""
    x = np.array([1.0, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        np.testing.assert_array_equal(hyperdual.gradient(lambda v: np.sum(v * np.inf), x), [np.inf, np.inf])
        np.testing.assert_array_equal(hyperdual.gradient(lambda v: np.sum(v * np.float64(-np.inf)), x),
                                      [-np.inf, -np.inf])
