"""Sparsity patterns (hyperdual.plan.pattern): large requests seed only the pairs that
can be nonzero, and every other entry is an exact zero.

Each function's full Hessian is computed with the pattern (the default for
large requests) and with the pattern switched off, and compared; the sparse
ones are also checked against closed forms and for the work saved.
``HYPERDUAL_TEST_PATTERN=always`` runs the whole suite through the pattern path.
"""
import numpy as np
import pytest

import hyperdual
from hyperdual.plan.pattern import Recorder
from hyperdual.plan.seeding import settings
from seeds import rosen, rosen_hessian

N = 80


def _inv_block(x):
    return np.sum(np.linalg.inv(np.diag(1.0 + x[:4] ** 2))) + np.sum(x ** 2)


def _rewrapping(x):
    try:
        z = np.einsum("i,i->i", x[:3], x[3:6])  # the pattern pass aborts here ...
    except Exception as err:  # ... and the function turns that into its own error
        raise RuntimeError("cannot evaluate") from err
    return np.sum(z ** 2) + rosen(x)


def _swallowing(x):
    try:
        z = x[:3] @ np.ones((3, 3))  # the pattern pass aborts here; the error is caught
    except Exception:
        z = x[:3] * 3.0
    return np.sum(z ** 2) + rosen(x)


SPARSE = {
    "rosen": rosen,
    "stride_two": lambda x: np.sum(np.sin(x[2:] * x[:-2])) + np.sum(np.exp(0.1 * x)),
    "products_and_quotients": lambda x: np.sum(x[1:] / (2.0 + x[:-1] ** 2)) + np.prod(1.0 + 0.01 * x[:5]),
    "reshaped_pairs": lambda x: np.sum(np.tanh(x.reshape(-1, 2)).prod(axis=1)),
    "selections": lambda x: np.sum(np.maximum(x, 0.3) ** 3) + np.max(x[::7] ** 2) + np.sum(np.sort(x)[:5] ** 3),
    "where_clip_mean": lambda x: np.sum(np.where(x > 0, x ** 2, np.cos(x))) + np.mean(np.clip(x, -0.5, 0.5) ** 4),
    "var_std_cumsum": lambda x: np.var(x[:6]) + np.std(x[10:20]) + np.sum(np.cumsum(x[:4]) ** 2),
    "concat_roll_flip": lambda x: np.sum(np.concatenate([x[:3] ** 2, np.roll(x, 1)[5:9] * x[5:9]]))
    + np.sum(np.flip(x)[:4] ** 3),
    "setitem": lambda x: _setitem(x),
    "power_both": lambda x: np.sum((1.5 + x[:-1] ** 2) ** (0.5 + 0.1 * x[1:])),
}

FALLBACK = {  # the pattern pass cannot follow these (or they are dense): every pair is seeded
    "matmul": lambda x: np.sum(np.sin(np.linspace(-1, 1, x.size * x.size).reshape(x.size, x.size) @ x)),
    "einsum": lambda x: np.einsum("i,i->", x[:5], x[5:10]) + np.sum(x ** 3),
    "inv": _inv_block,
    "dense_square_of_sum": lambda x: np.sum(x) ** 2 + np.sum(x ** 3),
    "swallowed_abort": _swallowing,
    "rewrapped_abort": _rewrapping,
    "ufunc_reduce": lambda x: np.add.reduce(x ** 2) * x[0],
}


def _setitem(x):
    y = x * 1.0
    y[3:6] = x[10:13] ** 2
    return np.sum(y ** 2 * np.roll(y, 2))


@pytest.fixture(scope="module")
def point():
    return np.random.default_rng(11).uniform(-0.9, 0.9, N)


def _dense(f, x):
    saved = settings.pattern_min_pairs
    settings.pattern_min_pairs = 2 ** 62
    try:
        return hyperdual.hessian(f, x)[:]
    finally:
        settings.pattern_min_pairs = saved


@pytest.mark.parametrize("name", sorted(SPARSE))
def test_sparse_functions_skip_structural_zeros(name, point, default_pattern):
    f = SPARSE[name]
    H = hyperdual.hessian(f, point)
    got = H[:]
    want = _dense(f, point)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
    assert np.array_equal(got == 0.0, want == 0.0)  # the zeros are exact, and the same ones
    st = H.stats
    assert st.structural_zeros > 0
    assert st.pairs_evaluated + st.structural_zeros == N * (N + 1) // 2


@pytest.mark.parametrize("name", sorted(FALLBACK))
def test_functions_the_pattern_cannot_follow_fall_back(name, point, default_pattern):
    f = FALLBACK[name]
    H = hyperdual.hessian(f, point)
    got = H[:]
    np.testing.assert_allclose(got, _dense(f, point), rtol=1e-13, atol=1e-13)
    assert H.stats.structural_zeros == 0
    assert H.stats.pairs_evaluated == N * (N + 1) // 2


def test_rosenbrock_closed_form_and_work(point, default_pattern):
    H = hyperdual.hessian(rosen, point)
    np.testing.assert_allclose(H[:], rosen_hessian(point), rtol=1e-13, atol=1e-10)
    assert H.stats.pairs_evaluated == 2 * N - 1  # the tridiagonal band, upper half
    assert H.stats.structural_zeros == N * (N + 1) // 2 - (2 * N - 1)
    # the pattern pass also gave the gradient
    g = np.zeros(N)
    x = point
    g[:-1] += -400 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    g[1:] += 200 * (x[1:] - x[:-1] ** 2)
    calls = H.stats.function_calls
    np.testing.assert_allclose(H.gradient, g, rtol=1e-13, atol=1e-11)
    assert H.stats.function_calls == calls


def test_pattern_found_once_and_reused(point, default_pattern):
    H = hyperdual.hessian(rosen, point)
    H[:60, :60]
    assert H.stats.structural_zeros > 0
    calls, passes = H.stats.function_calls, H.stats.passes
    H[60:, :]  # a second large request: its passes only, no second pattern pass
    assert H.stats.passes > passes
    assert H.stats.function_calls - calls == H.stats.passes - passes
    np.testing.assert_allclose(H[:], rosen_hessian(point), rtol=1e-13, atol=1e-10)


def test_small_requests_skip_the_pattern(point, default_pattern):
    H = hyperdual.hessian(rosen, point)
    H[0:3, 0:3]
    assert H.stats.structural_zeros == 0 and H.stats.pairs_evaluated == 6


def test_small_requests_use_a_pattern_already_found(point, default_pattern):
    H = hyperdual.hessian(rosen, point)
    H[:60, :60]
    evaluated = H.stats.pairs_evaluated
    np.testing.assert_allclose(H[60:63, 60:63], rosen_hessian(point)[60:63, 60:63], rtol=1e-13)
    assert H.stats.pairs_evaluated - evaluated == 5  # the band only: (60,60) (60,61) (61,61) ...


def test_nan_output_gives_no_pattern(default_pattern):
    x = np.linspace(0.1, 1.0, N)
    x[7] = np.nan
    H = hyperdual.hessian(rosen, x)
    assert np.isnan(H[:]).all()
    assert H.stats.structural_zeros == 0


def test_budget_too_small_for_the_pattern_pass(point, default_pattern):
    per_pass = N * N * 8 * hyperdual.plan.seeding.LIVE_FACTOR
    H = hyperdual.hessian(rosen, point, memory_budget=per_pass // 2)
    np.testing.assert_allclose(H[:], rosen_hessian(point), rtol=1e-13, atol=1e-10)
    assert H.stats.structural_zeros == 0


@pytest.fixture
def restore_registry(monkeypatch):
    """Undo a test's registrations (functions, kinds, ufunc rules) afterwards."""
    from hyperdual.ops import registry as ops, rules
    saved = {name: dict(getattr(ops, name)) for name in ("_KIND", "_IMPL_KIND", "_READS", "_IMPL_READS")}
    functions, unary = dict(hyperdual.execute.array.FUNCTIONS), dict(rules.UNARY)
    yield
    for name, table in saved.items():
        getattr(ops, name).clear()
        getattr(ops, name).update(table)
    hyperdual.execute.array.FUNCTIONS.clear()
    hyperdual.execute.array.FUNCTIONS.update(functions)
    rules.UNARY.clear()
    rules.UNARY.update(unary)


def _chain_of(fn):
    """A tridiagonal function through ``fn`` (a reduction): chained Rosenbrock-like terms."""
    return lambda x: fn((x[1:] - x[:-1] ** 2) ** 2) + np.sum(np.sin(x))


def test_registered_function_falls_back(point, default_pattern, restore_registry):
    """Registered without a kind, a function is opaque: every pair is seeded."""
    hyperdual.register_function(np.nansum, lambda a, **kw: np.sum(a, **kw))
    f = lambda x: np.nansum(x ** 3) * x[0]  # noqa: E731
    H = hyperdual.hessian(f, point)
    np.testing.assert_allclose(H[:], _dense(f, point), rtol=1e-13, atol=1e-13)
    assert H.stats.structural_zeros == 0


@pytest.mark.parametrize("kind", ["composed", "linear"])
def test_a_registered_function_of_a_followed_kind_keeps_the_pattern(point, default_pattern,
                                                                     restore_registry, kind):
    hyperdual.register_function(np.nansum, lambda a, **kw: np.sum(a, **kw), kind=kind)
    f = _chain_of(np.nansum)
    H = hyperdual.hessian(f, point)
    np.testing.assert_allclose(H[:], _dense(f, point), rtol=1e-13, atol=1e-13)
    assert H.stats.structural_zeros == N * (N + 1) // 2 - (2 * N - 1)  # the band alone was seeded


def test_a_registered_ufunc_keeps_the_pattern(point, default_pattern, restore_registry):
    import numba

    @numba.vectorize(["float64(float64)"])
    def cube(a):
        return a * a * a
    hyperdual.register_ufunc(cube, lambda a, y: (3.0 * a * a, 6.0 * a))
    f = _chain_of(lambda t: np.sum(cube(t)))
    H = hyperdual.hessian(f, point)
    np.testing.assert_allclose(H[:], _dense(f, point), rtol=1e-13, atol=1e-13)
    assert H.stats.structural_zeros == N * (N + 1) // 2 - (2 * N - 1)


def test_every_implementation_has_a_declared_kind():
    """One registry: each NumPy function dispatch implements is declared in hyperdual.ops.registry
    (implements() refuses one that is not), and nothing is declared without one."""
    from hyperdual.ops import registry as ops
    implemented = set(hyperdual.execute.array.FUNCTIONS)
    assert all(ops.kind_of(f) in ops.KINDS for f in implemented)
    declared = {f for kind in ops.KINDS for f in ops.functions_of(kind)}
    assert declared - implemented <= {np.nansum, np.triu}  # (doctests register these)
    with pytest.raises(LookupError, match="nanmax has no declared kind"):
        hyperdual.execute.functions.implements(np.nanmax)(lambda a: a)
    with pytest.raises(ValueError, match="kind must be one of .*got 'sparse'"):
        hyperdual.register_function(np.nanmax, lambda a: a, kind="sparse")
    assert np.nanmax not in hyperdual.execute.array.FUNCTIONS


def test_ys_form_uses_the_pattern(point, default_pattern):
    x = hyperdual.variable(point)
    y = rosen(x)
    H = hyperdual.hessian(y, x)
    np.testing.assert_allclose(H[:], rosen_hessian(point), rtol=1e-13, atol=1e-10)
    assert H.stats.pairs_evaluated == 2 * N - 1


def test_recorder_collects_pairs_within_each_support():
    rec = Recorder(5)
    lane = np.zeros((5, 3))
    lane[[0, 2], 0] = 1.0      # element 0 depends on inputs 0 and 2
    lane[4, 1] = np.nan        # element 1 on input 4 (NaN counts as nonzero)
    rec.add(lane)
    other = np.zeros((5, 3))
    other[1, 2] = 2.0
    rec.add(None, other)
    codes = rec.pairs()
    want = sorted([0 * 5 + 0, 0 * 5 + 2, 2 * 5 + 2, 4 * 5 + 4, 1 * 5 + 1])
    np.testing.assert_array_equal(codes, want)
    assert Recorder(3).pairs().size == 0


def test_recorder_gives_up_on_large_supports():
    rec = Recorder(100)
    rec.add(np.ones((100, 4)))
    assert rec.dense and rec.pairs() is None
    rec = Recorder(3)
    rec.abort("x")
    assert rec.pairs() is None


def test_request_of_structural_zeros_only_runs_no_pass(point, default_pattern):
    H = hyperdual.hessian(rosen, point)
    H[:60, :60]
    passes = H.stats.passes
    far = H[0:40, 45:80]  # 1400 entries, all at least 5 apart: zeros without a pass
    assert H.stats.passes == passes
    assert far.shape == (40, 35) and not far.any()


def test_recorder_edge_cases(monkeypatch):
    from hyperdual.plan import pattern
    rec = Recorder(4)
    rec.add(None, np.zeros((0, 3)))  # no lanes
    rec.add(np.zeros((4, 3)))        # lanes without support
    assert rec.pairs().size == 0
    monkeypatch.setattr(pattern, "MAX_CANDIDATES", 2)
    rec = Recorder(4)
    rec.add(np.ones((4, 1)))  # 10 candidate pairs > 2
    assert rec.dense and rec.pairs() is None
    rec.add(np.ones((4, 1)))  # ignored once dense
    assert rec.pairs() is None


def test_recorder_found_inside_lists():
    from hyperdual.execute.context import SeedContext
    from hyperdual.plan.pattern import PatternAbort, check
    ctx = SeedContext(np.zeros(0, np.int64), np.zeros(0, np.int64), 1, 0)
    ctx.pattern = Recorder(1)
    x = hyperdual.HyperDual._new(np.ones(2), np.ones((1, 2)), None, None, ctx)
    with pytest.raises(PatternAbort):
        check(lambda xs: xs, ([1.0, (x,)],), {})
    assert ctx.pattern.aborted
    check(hyperdual.execute.array.FUNCTIONS[np.sum], (x,), {})  # a safe function passes


def test_genuine_error_in_the_pattern_pass_is_raised_by_the_passes(point, default_pattern, per_pass):
    calls = []

    def f(x):
        calls.append(type(x).__name__)
        if len(calls) > 1:
            raise ArithmeticError("fails on every evaluation after the first")
        return rosen(x)
    H = hyperdual.hessian(f, point)
    with pytest.raises(ArithmeticError, match="fails on every evaluation"):
        H[:]
    assert calls == ["ndarray", "HyperDual", "HyperDual"]  # value call, pattern pass, a pass
