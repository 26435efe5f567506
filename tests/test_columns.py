"""Column lanes (hyperdual.execute.columns): batched passes over one [B, m] input.

Every result is compared with the same request computed with full lanes
(``column_lanes=False``) and, where it is short to write, with a closed form.
"""
import numpy as np
import pytest

import hyperdual
from hyperdual import HyperDual
from hyperdual.execute.columns import ColumnSeeds
from hyperdual.lazy.problem import _upper_pairs
from hyperdual.plan.seeding import InputSpace, seed_inputs

RNG = np.random.default_rng(7)
X = RNG.uniform(0.3, 1.6, (6, 3))


def _both(f, x, index=slice(None), **kw):
    """``H[index]`` with column lanes, and with full lanes."""
    a = hyperdual.hessian(f, x, batch_axis=0, **kw)[index]
    saved = hyperdual.settings.settings.column_lanes
    hyperdual.settings.settings.column_lanes = False
    try:
        b = hyperdual.hessian(f, x, batch_axis=0, **kw)[index]
    finally:
        hyperdual.settings.settings.column_lanes = saved
    return a, b


FUNCTIONS = {
    "bench": lambda X: np.sum(np.exp(X) * np.cos(X), axis=1) + np.prod(X, axis=1),
    "sum_only": lambda X: np.sum(np.sin(X) * X ** 2, axis=1),
    "sum_method": lambda X: (np.log1p(X) / (1.0 + X)).sum(axis=-1),
    "sum_tuple_axis": lambda X: np.sum(np.sqrt(X) * 3.0, axis=(1,)),
    "keepdims": lambda X: np.sum(X ** 3, axis=1, keepdims=True),
    "columns_picked": lambda X: X[:, 0] * np.exp(X[:, 1]) + X[:, 2] ** 2,
    "matmul": lambda X: np.tanh(X) @ np.array([1.0, -2.0, 0.5]),
    "constant_row": lambda X: np.sum(np.exp(X) * np.array([1.0, 2.0, 3.0]), axis=1),
    "two_operands": lambda X: np.sum(np.hypot(X, np.sin(X)) + np.arctan2(X, 1.0 + X), axis=1),
    "select": lambda X: np.sum(np.maximum(X, 1.0) * X, axis=1),
    "mixed_dense_and_columns": lambda X: np.sum(X ** 2, axis=1) * np.sum(np.cos(X), axis=1),
    "dense_times_columns": lambda X: np.sum(X * np.sum(X, axis=1, keepdims=True), axis=1),
    "reverse_columns": lambda X: np.sum(X[:, ::-1] * X, axis=1),
    "mean": lambda X: np.mean(np.exp(X), axis=1),
    "rows_then_sum": lambda X: np.sum(np.concatenate([X[:, :1], X[:, 1:] ** 2], axis=1), axis=1),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_column_lanes_equal_full_lanes(name):
    a, b = _both(FUNCTIONS[name], X)
    np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)


def test_benchmark_function_against_closed_form():
    a, _ = _both(FUNCTIONS["bench"], X)
    for s in range(X.shape[0]):
        x = X[s]
        # d2/dx2 of exp(x) cos(x) is -2 exp(x) sin(x); prod(x) has zero diagonal, x_k off it
        ref = np.diag(-2.0 * np.exp(x) * np.sin(x))
        for i in range(3):
            for j in range(3):
                if i != j:
                    ref[i, j] += x[3 - i - j]
        np.testing.assert_allclose(a[s], ref, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("index", [np.s_[:, 0:2, 0:2], np.s_[2:4], np.s_[:, 1, 2], np.s_[1], np.s_[:, ::-1, 0]])
def test_partial_requests(index):
    f = FUNCTIONS["bench"]
    a, b = _both(f, X, index)
    np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)


def test_nan_input_gives_nan_sample_only():
    x = X.copy()
    x[2, 1] = np.nan
    a, b = _both(FUNCTIONS["sum_only"], x)
    assert np.isnan(a[2]).all() and np.isnan(b[2]).all()
    np.testing.assert_allclose(np.delete(a, 2, 0), np.delete(b, 2, 0), rtol=1e-13)


def test_gradient_and_jacobian_with_column_lanes():
    f = FUNCTIONS["sum_only"]
    H = hyperdual.hessian(f, X, batch_axis=0)
    g = H.gradient
    ref = np.sin(X) * 2 * X + np.cos(X) * X ** 2
    np.testing.assert_allclose(g, ref, rtol=1e-13)
    J = hyperdual.jacobian(lambda X: np.exp(X) * 2.0, X, batch_axis=0)[:]
    ref_j = np.zeros((6, 3, 3))
    for s in range(6):
        ref_j[s] = np.diag(2.0 * np.exp(X[s]))
    np.testing.assert_allclose(J, ref_j, rtol=1e-13)


def test_one_column_output_of_column_lanes():
    """An output that still has column lanes (``[B, 1]``, elementwise in ``X``) is
    expanded before its lanes are read."""
    x = RNG.uniform(0.5, 1.0, (5, 1))
    H = hyperdual.hessian(lambda X: np.exp(2.0 * X), x, batch_axis=0)[:]
    np.testing.assert_allclose(H[:, 0, 0], 4.0 * np.exp(2.0 * x[:, 0]), rtol=1e-13)


def test_coupled_samples_are_still_detected():
    with pytest.raises(ValueError, match="samples"):
        hyperdual.hessian(lambda X: np.sum(X ** 2, axis=1) + np.sum(X ** 2), X, batch_axis=0)[:]


def test_tuple_inputs_use_full_lanes():
    a = hyperdual.hessian(lambda X, Y: np.sum(X * Y, axis=1), (X, X + 1.0), batch_axis=0)
    np.testing.assert_allclose(a[0][1][:], np.broadcast_to(np.eye(3), (6, 3, 3)))


@pytest.fixture(autouse=True)
def column_lanes_on(set_settings):
    """These tests are about column lanes: on, whatever HYPERDUAL_TEST_COLUMNS says."""
    set_settings(column_lanes=True)


def _compact_input(second=True):
    space = InputSpace([X.copy()], 6)
    U, ip, jp = _upper_pairs(3)
    (x,), ctx = seed_inputs(space, U, ip, jp, None, second)
    return x, ctx


def test_seeded_input_has_one_lane_row():
    x, ctx = _compact_input()
    assert isinstance(x._ctx.columns, ColumnSeeds)
    assert x._e1.shape == (1, 6, 3) and x._e2 is x._e1 and x._e12 is None
    np.testing.assert_array_equal(x._e1[0], 1.0)
    assert x._ctx.columns.ctx is ctx


def test_elementwise_results_keep_column_lanes_and_others_expand():
    x, ctx = _compact_input()
    y = np.sin(x) * x + 2.0
    assert y._ctx is x._ctx and y._e12.shape == (1, 6, 3)
    z = y[:, 0]  # one column: full lanes of that column, y keeps its column lanes
    assert z._ctx is ctx and z._e1.shape == (3, 6) and y._ctx is x._ctx
    d1 = np.cos(X[:, 0]) * X[:, 0] + np.sin(X[:, 0])
    np.testing.assert_allclose(z._e1, [d1, np.zeros(6), np.zeros(6)], rtol=1e-15)
    w = y[1:, ::2]  # any other index: full lanes first
    assert w._ctx is ctx and y._ctx is ctx
    np.testing.assert_array_equal(y._e1.shape, (3, 6, 3))
    # full lanes: row k is zero outside column k
    for k in range(3):
        others = [c for c in range(3) if c != k]
        np.testing.assert_array_equal(y._e1[k][:, others], 0.0)


def test_column_lanes_meet_full_lanes_of_their_pass():
    """An operand with column lanes and one with the pass's full lanes meet through the
    dispatch, which expands the first: no PassMismatchError, the right numbers."""
    x, ctx = _compact_input()
    c = x * 1.0
    s = np.sum(x, axis=1, keepdims=True)  # full lanes (keepdims is not kept in columns)
    assert s._ctx is ctx and x._ctx is ctx  # (x itself was expanded in place for it)
    assert c._ctx.columns is not None
    out = c * s  # operator with a HyperDual of full lanes
    assert out._ctx is ctx
    np.testing.assert_allclose(out.value, X * X.sum(axis=1, keepdims=True))
    out2 = np.multiply(s, c * 2.0)
    np.testing.assert_allclose(out2.value, 2.0 * X * X.sum(axis=1, keepdims=True))


def test_broadcast_to_a_larger_shape_expands():
    x, ctx = _compact_input()
    big = np.ones((2, 6, 3))
    y = x * big  # the result is not x's shape: full lanes
    assert y._ctx is ctx and y._e1.shape == (3, 2, 6, 3)
    y2 = np.add(x, big)
    assert y2._ctx is ctx


def test_sum_without_second_order_lanes():
    x, ctx = _compact_input(second=False)
    s = np.sum(np.exp(x), axis=1)
    assert s._ctx is ctx and s._e2 is None and s._e12 is None
    np.testing.assert_allclose(s._e1, np.exp(X).T, rtol=1e-15)


def test_constant_hyperdual_keeps_column_lanes():
    x, _ = _compact_input()
    c = HyperDual._new(np.full((6, 3), 2.0), None, None, None, None)  # a HyperDual without lanes
    y = x * c
    assert y._ctx is x._ctx
    np.testing.assert_allclose(y.value, 2.0 * X)


def test_shapes_that_do_not_broadcast_raise_numpys_error():
    x, _ = _compact_input()
    with pytest.raises(ValueError, match="broadcast"):
        np.add(x, np.ones(4))


@pytest.mark.parametrize("index", [np.s_[:, -1], np.s_[:, np.int64(1)], np.s_[:, 3], np.s_[:, True],
                                   (np.array([0, 2]), 1), np.s_[1:, 0], np.s_[..., 0]])
def test_column_index_edges(index):
    """Negative and NumPy-integer columns are columns; an out-of-range one raises NumPy's
    IndexError; a bool is not a column (NumPy's own meaning, from full lanes)."""
    x, ctx = _compact_input()
    y = x * 2.0
    try:
        ref = (X * 2.0)[index]
    except IndexError:
        with pytest.raises(IndexError):
            y[index]
        return
    z = y[index]
    np.testing.assert_array_equal(z.value, ref)
    assert z._ctx is ctx


def test_prod_of_many_columns_expands():
    wide = RNG.uniform(0.5, 1.5, (4, 10))
    a, b = _both(lambda X: np.prod(X, axis=1), wide)
    np.testing.assert_allclose(a, b, rtol=1e-13)
    a, b = _both(lambda X: np.prod(X ** 2, axis=-1, keepdims=True), X)
    np.testing.assert_allclose(a, b, rtol=1e-13)


@pytest.mark.parametrize("m", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("special", [None, "nan", "inf", "zero"])
def test_prod_over_columns_closed_form_and_fallback(m, special):
    """``np.prod(Y, axis=1)`` with column lanes: the closed form (up to 4 finite columns)
    and the full-lane products agree with full lanes throughout, including zero, NaN
    and infinite entries."""
    x = np.random.default_rng(m).uniform(0.5, 1.5, (5, m))
    if special == "nan":
        x[1, 0] = np.nan
    elif special == "inf":
        x[2, m - 1] = np.inf
    elif special == "zero":
        x[3, :] = 0.0
    f = lambda X: np.prod(np.sin(X) + X, axis=1)  # noqa: E731 - a column lane with e12
    with np.errstate(invalid="ignore"):
        a, b = _both(f, x)
    np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13, equal_nan=True)
    if special is None:
        s = np.sin(x) + x
        d1, d2 = np.cos(x) + 1.0, -np.sin(x)
        for r in range(5):
            ref = np.empty((m, m))
            for i in range(m):
                for j in range(m):
                    rest = np.prod(np.delete(s[r], [i, j]))
                    ref[i, j] = rest * (d2[r, i] if i == j else d1[r, i] * d1[r, j])
            np.testing.assert_allclose(a[r], ref, rtol=1e-12, atol=1e-13)


def test_prod_of_the_input_itself():
    a, b = _both(lambda X: np.prod(X, axis=-1), X)
    np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)
    for r in range(X.shape[0]):
        ref = np.array([[0.0 if i == j else np.prod(np.delete(X[r], [i, j])) for j in range(3)]
                        for i in range(3)])
        np.testing.assert_allclose(a[r], ref, rtol=1e-13)


def test_gradient_of_prod_over_columns():
    """A gradient pass (no e2 lanes) through the closed-form product."""
    g = hyperdual.hessian(lambda X: np.prod(X, axis=1), X, batch_axis=0).gradient
    ref = np.stack([[np.prod(np.delete(x, k)) for k in range(3)] for x in X])
    np.testing.assert_allclose(g, ref, rtol=1e-13)


def test_public_lanes_and_pairs_of_column_lanes_are_full():
    """``.e1``, ``.e2``, ``.e12`` and ``.pairs`` inside a batched pass show the pass's full
    lanes (the column layout is an internal detail), and pickling keeps them."""
    import pickle
    x, ctx = _compact_input()
    y = np.sin(x) * x
    assert repr(y).endswith("K1=3, K2=3, P=6)") and y._ctx.columns is not None
    assert y.e1.shape == (3, 6, 3) and y.e12.shape == (6, 6, 3)
    ip, jp = y.pairs
    np.testing.assert_array_equal(ip, ctx.ip)
    np.testing.assert_array_equal(jp, ctx.jp)
    d1 = np.cos(X) * X + np.sin(X)
    for k in range(3):
        np.testing.assert_allclose(y.e1[k][:, k], d1[:, k], rtol=1e-15)
        np.testing.assert_array_equal(np.delete(y.e1[k], k, axis=1), 0.0)
    z = np.sin(x) * 2.0
    back = pickle.loads(pickle.dumps(z))
    assert back.e1.shape == (3, 6, 3)
    np.testing.assert_allclose(back.e12, z.e12, rtol=0)
