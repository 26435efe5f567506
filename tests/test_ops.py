"""The op registry (hyperdual.ops.registry): a new entry reaches every route.

A ufunc registered with its derivative rule, and a NumPy function registered as
linear with what its output elements read, keep the sparsity pattern (pairs
never seeded), windowed lanes and column lanes: checked by the counts in
``H.stats`` (structural zeros, windowed and column inputs, expansions to full
lanes), and every value against a closed form.  Registered without what it
reads, the same function expands the compact lanes first: the same numbers, the
expansion counted.
"""
import dataclasses

import numba
import numpy as np
import pytest

import hyperdual
from hyperdual.ops import registry as ops, rules
from hyperdual.plan.seeding import Settings, settings

N_LONG = 5000   # a long 1-D input: a block request seeds windowed lanes
N_BAND = 80     # a full request of this size finds the sparsity pattern first
B = 50          # samples of a batched request over [B, 3]: column lanes


@numba.vectorize(["float64(float64)"])
def cube(a):
    return a * a * a


def _cube_rule(a, y):
    return 3.0 * a * a, 6.0 * a


@pytest.fixture
def registry():
    """Undo the test's registrations afterwards, and pin the layout settings to their
    defaults (the HYPERDUAL_TEST_* modes change them for the rest of the suite)."""
    from hyperdual.execute import array
    saved = {name: dict(getattr(ops, name)) for name in ("_KIND", "_IMPL_KIND", "_READS", "_IMPL_READS")}
    functions, unary = dict(array.FUNCTIONS), dict(rules.UNARY)
    kept = dataclasses.asdict(settings)
    for field in dataclasses.fields(Settings):
        if field.name != "trace":
            setattr(settings, field.name, field.default)
    yield
    for name, table in saved.items():
        getattr(ops, name).clear()
        getattr(ops, name).update(table)
    array.FUNCTIONS.clear()
    array.FUNCTIONS.update(functions)
    rules.UNARY.clear()
    rules.UNARY.update(unary)
    for name, value in kept.items():
        setattr(settings, name, value)


def _band(d2):
    """The Hessian of ``sum(g(x[1:] - x[:-1]))`` from ``g''`` of each difference."""
    n = d2.size + 1
    H = np.zeros((n, n))
    k = np.arange(n - 1)
    H[k, k] += d2
    H[k + 1, k + 1] += d2
    H[k, k + 1] -= d2
    H[k + 1, k] -= d2
    return H


def _check_pattern(f, d2_of):
    x = np.random.default_rng(3).uniform(-0.9, 0.9, N_BAND)
    H = hyperdual.hessian(f, x)
    np.testing.assert_allclose(H[:], _band(d2_of(np.diff(x))), rtol=1e-13, atol=1e-12)
    assert H.stats.structural_zeros == N_BAND * (N_BAND + 1) // 2 - (2 * N_BAND - 1)  # the band alone


def _check_window(f, d2_of, expanded=False):
    x = np.linspace(-0.9, 0.9, N_LONG)
    H = hyperdual.hessian(f, x)
    np.testing.assert_allclose(H[1:3, 1:3], np.diag(d2_of(x[1:3])), rtol=1e-14, atol=1e-14)
    assert H.stats.windowed_inputs == 1 and (H.stats.expansions > 0) == expanded


def _check_columns(f, d2_of, expanded=False):
    X = np.random.default_rng(5).uniform(-0.9, 0.9, (B, 3))
    H = hyperdual.hessian(f, X, batch_axis=0)
    want = np.zeros((B, 3, 3))
    want[:, np.arange(3), np.arange(3)] = d2_of(X)
    np.testing.assert_allclose(H[:], want, rtol=1e-13, atol=1e-14)
    assert H.stats.column_inputs == 1 and (H.stats.expansions > 0) == expanded


# ---- a new elementwise ufunc -------------------------------------------------------------
def test_a_registered_ufunc_keeps_pattern_windows_and_columns(registry):
    hyperdual.register_ufunc(cube, _cube_rule)
    assert ops.ufunc_kind(cube) == ops.ELEMENTWISE
    _check_pattern(lambda x: np.sum(cube(x[1:] - x[:-1])), lambda d: 6.0 * d)
    _check_window(lambda x: np.sum(cube(x) * x), lambda v: 12.0 * v * v)   # x**4
    _check_columns(lambda X: np.sum(cube(X) * X, axis=-1), lambda v: 12.0 * v * v)


# ---- a new linear array function ---------------------------------------------------------
def test_a_registered_linear_function_keeps_pattern_windows_and_columns(registry):
    hyperdual.register_function(np.real, kind="linear", reads="same")  # (no implementation)
    assert ops.kind_of(np.real) == ops.LINEAR and ops.reads_of(np.real).how == ops.SAME
    _check_pattern(lambda x: np.sum(np.real(x[1:] - x[:-1]) ** 3), lambda d: 6.0 * d)
    _check_window(lambda x: np.sum(np.real(np.sin(x)) * x), lambda v: 2.0 * np.cos(v) - v * np.sin(v))
    _check_columns(lambda X: np.sum(np.real(np.exp(X)) * X, axis=-1), lambda v: (v + 2.0) * np.exp(v))


def test_without_what_it_reads_the_compact_lanes_are_expanded(registry):
    """The same function, its reads not declared: the same numbers, on full lanes."""
    hyperdual.register_function(np.real, kind="linear")
    _check_window(lambda x: np.sum(np.real(np.sin(x)) * x), lambda v: 2.0 * np.cos(v) - v * np.sin(v),
                  expanded=True)
    _check_columns(lambda X: np.sum(np.real(np.exp(X)) * X, axis=-1), lambda v: (v + 2.0) * np.exp(v),
                   expanded=True)


def test_builtin_copy_where_clip_keep_compact_lanes(registry):
    """Declared ``same`` (copy) and ``element`` (where, clip) in the registry."""
    _check_window(lambda x: np.sum(np.copy(x) ** 3), lambda v: 6.0 * v)
    _check_columns(lambda X: np.sum(np.where(X > 0, X ** 3, np.clip(X, -0.5, 0.5) ** 2), axis=-1),
                   lambda v: np.where(v > 0, 6.0 * v, np.where(np.abs(v) < 0.5, 2.0, 0.0)))


def test_a_position_dependent_linear_function(registry):
    """``reads="element"`` (the map depends on the position: triu), no implementation:
    every lane row goes through the function; the result against the closed form."""
    hyperdual.register_function(np.triu, kind="linear", reads="element")
    x = np.array([0.3, -1.2, 2.0])
    H = hyperdual.hessian(lambda v: np.sum(np.triu(np.outer(v, v ** 2))), x)
    # sum_{i <= j} x_i x_j^2
    want = np.zeros((3, 3))
    for i in range(3):
        for j in range(i, 3):
            if i == j:
                want[i, i] += 6.0 * x[i]
            else:
                want[j, j] += 2.0 * x[i]
                want[i, j] += 2.0 * x[j]
                want[j, i] += 2.0 * x[j]
    np.testing.assert_allclose(H[:], want, rtol=1e-14)


def test_the_batch_check_reads_the_axis_of_a_registered_reduction(registry):
    hyperdual.register_function(np.cumulative_sum, kind="linear", reads="along")
    X = np.random.default_rng(1).uniform(-1, 1, (6, 3))
    f = lambda V: np.sum(np.cumulative_sum(V, axis=1) ** 3, axis=1)  # noqa: E731
    H = hyperdual.hessian(f, X, batch_axis=0, record=True)
    want = np.zeros((6, 3, 3))
    for b in range(6):
        c = np.cumsum(X[b])
        for k in range(3):  # sum_k c_k^3, c_k = x_0 + ... + x_k
            m = np.zeros(3)
            m[:k + 1] = 1.0
            want[b] += 6.0 * c[k] * np.outer(m, m)
    np.testing.assert_allclose(H[:], want, rtol=1e-13, atol=1e-14)
    assert H.stats.mode == "recorded"
    with pytest.raises(ValueError, match="cumulative_sum over the batch axis"):
        hyperdual.hessian(lambda V: np.sum(np.cumulative_sum(V, axis=0) ** 3, axis=1), X,
                          batch_axis=0, record=True)[:]


# ---- registration errors -----------------------------------------------------------------
def test_registration_errors(registry):
    with pytest.raises(ValueError, match="reads must be one of same, element, .*got 'sideways'"):
        hyperdual.register_function(np.real, kind="linear", reads="sideways")
    with pytest.raises(TypeError, match=r"register_function\(imag\) needs an implementation unless "
                                        r"kind='linear'"):
        hyperdual.register_function(np.imag, kind="composed")
    hyperdual.register_function(np.ediff1d, kind="linear")
    x = hyperdual.variable(np.array([1.0, 3.0, 6.0]))
    with pytest.raises(TypeError, match="ediff1d is registered as linear without an implementation: "
                                        "only its first argument may carry derivatives"):
        np.ediff1d(x, to_end=x[:1])


# ---- the lane map of a linear function ---------------------------------------------------
_A = np.arange(12.0).reshape(4, 3) / 7.0 - 0.5
_SQ = np.arange(9.0).reshape(3, 3) / 5.0 - 0.8
LINEAR_CALLS = {  # every builtin declared LINEAR, called on HyperDual operands (and ints)
    np.sum: lambda x: ((x,), {"axis": 1}), np.mean: lambda x: ((x,), {"axis": 0}),
    np.cumsum: lambda x: ((x,), {"axis": 1}), np.diff: lambda x: ((x,), {"n": 2, "axis": 0}),
    np.trace: lambda x: ((x,), {"offset": 1}), np.reshape: lambda x: ((x, (3, 4)), {}),
    np.ravel: lambda x: ((x,), {}), np.transpose: lambda x: ((x,), {}),
    np.swapaxes: lambda x: ((x, 0, 1), {}), np.moveaxis: lambda x: ((x, 0, -1), {}),
    np.expand_dims: lambda x: ((x, 1), {}), np.squeeze: lambda x: ((x[None],), {}),
    np.broadcast_to: lambda x: ((x, (2, 4, 3)), {}), np.atleast_1d: lambda x: ((x[0, 0],), {}),
    np.atleast_2d: lambda x: ((x[0],), {}), np.atleast_3d: lambda x: ((x,), {}),
    np.concatenate: lambda x: (([x, 2.0 * x],), {"axis": 1}), np.stack: lambda x: (([x, x[::-1]],), {}),
    np.hstack: lambda x: (([x, x],), {}), np.vstack: lambda x: (([x, x[:1]],), {}),
    np.column_stack: lambda x: (([x[:, 0], x],), {}), np.flip: lambda x: ((x,), {"axis": 0}),
    np.roll: lambda x: ((x, 2), {"axis": 1}), np.repeat: lambda x: ((x, 2), {"axis": 0}),
    np.tile: lambda x: ((x, (2, 1)), {}), np.take: lambda x: ((x, [2, 0, 2]), {"axis": 1}),
    np.copy: lambda x: ((x,), {}), np.diagonal: lambda x: ((x,), {"offset": -1}),
    np.diag: lambda x: ((x[1],), {"k": 1}),
}


def _hd(value, seed):
    rng = np.random.default_rng(seed)
    k1, k2 = 3, 2
    ip, jp = np.array([0, 1, 2, 2]), np.array([0, 1, 0, 1])
    lane = lambda k: rng.standard_normal((k,) + value.shape)  # noqa: E731
    return hyperdual.HyperDual(value, lane(k1), lane(k2), lane(4), pairs=(ip, jp))


def _rows(obj, attr, k):
    """``obj`` with every HyperDual replaced by row ``k`` of its lane ``attr`` (None: value)."""
    if type(obj) is hyperdual.HyperDual:
        return obj.value if attr is None else getattr(obj, attr)[k]
    if isinstance(obj, (list, tuple)):
        return type(obj)(_rows(o, attr, k) for o in obj)
    return obj


def test_declared_linear_functions_are_complete():
    assert set(ops.functions_of(ops.LINEAR)) - {np.triu, np.nansum} == set(LINEAR_CALLS)


@pytest.mark.parametrize("func", list(LINEAR_CALLS), ids=lambda f: f.__name__)
def test_a_linear_function_maps_each_lane_as_it_maps_the_value(func):
    """The lane map of every linear function is the function itself, applied to each
    lane row (linearity); the implementations are vectorised forms of that map, and give
    its numbers bit for bit.  A planner may therefore run any linear op row by row."""
    x = _hd(_A, 1)
    args, kwargs = LINEAR_CALLS[func](x)
    got = func(*args, **kwargs)
    np.testing.assert_array_equal(got.value, func(*_rows(args, None, 0), **kwargs))
    for attr, rows in (("e1", 3), ("e2", 2), ("e12", 4)):
        want = np.stack([np.asarray(func(*_rows(args, attr, k), **kwargs)) for k in range(rows)])
        np.testing.assert_array_equal(getattr(got, attr), want)
