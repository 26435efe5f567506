"""Non-finite values are honest: NaN where the value is NaN, never a finite wrong number."""
import warnings

import numpy as np
import pytest

import hyperdual
from hyperdual.seeding import LIVE_FACTOR


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


def test_same_pass_entries_may_turn_nan_but_never_finite_wrong():
    # Documented: in ONE pass, 0 * inf in a structurally zero lane can make other entries NaN.
    x = np.array([0.0, 1.0, 4.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        full = hyperdual.hessian(sqrt_sum, x)[:]
    exact = np.diag([-np.inf, -0.25, -0.25 / 8.0])
    ok = np.isnan(full) | (full == exact)
    assert ok.all(), full


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
