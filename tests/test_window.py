"""Windowed lanes (hyperdual.execute.window): a block of a long 1-D input gives the same
numbers as full lanes, and the windows really are used.

Each case computes a Hessian block twice, with windows (the default for long
inputs) and with windows switched off, and also against a closed form where
one is short to write.  ``HYPERDUAL_TEST_WINDOWS=always`` additionally runs
the whole suite with windows on every 1-D input.
"""
import numpy as np
import pytest

import hyperdual
from hyperdual import HyperDual
from hyperdual.execute.window import cut, pad, union
from seeds import rosen, rosen_hessian

N = 600  # above settings.window_min_size


FUNCTIONS = {
    "rosen": rosen,
    "sin_x": lambda x: np.sum(np.sin(x) * x),
    "quotient": lambda x: np.sum(x[2:] / (1.5 + x[:-2] ** 2)),
    "strided": lambda x: np.sum(np.exp(x[1::3]) * x[::3][: x[1::3].size]),
    "mean_sq": lambda x: np.sum(x ** 2) / x.size + x[5] * x[-1],
    "int_index": lambda x: x[3] ** 3 * x[4] + np.cos(x[N - 1]),
    "scaled": lambda x: np.sum(np.linspace(1.0, 2.0, x.size) * x ** 3) + np.sum(x * 2.5),
    "const_left": lambda x: np.sum((2.0 - x) * (3.0 + x)),
    "arctan2": lambda x: np.sum(np.arctan2(x[1:], 2.0 + x[:-1] ** 2)),
    "power_both": lambda x: np.sum((2.0 + x[:-1] ** 2) ** (0.5 + 0.1 * x[1:])),
    "sum_keepdims": lambda x: x.sum(axis=0, keepdims=True)[0] ** 2 + np.sum(x, axis=-1),
    "reversed": lambda x: np.sum(x[::-1] * np.arange(x.size)) ** 2,  # densifies
    "matmul": lambda x: (x @ np.linspace(-1.0, 1.0, x.size)) ** 2,  # densifies
    "reshape": lambda x: np.sum(np.tanh(x.reshape(-1, 2)) ** 2),  # densifies
    "maximum": lambda x: np.sum(np.maximum(x, 0.1) ** 2),  # densifies
    "concat": lambda x: np.sum(np.concatenate([x[:3], x[3:] ** 2]) ** 2),  # densifies
    "broadcast_2d": lambda x: np.sum(x * np.ones((2, 1))),  # a 2-D result densifies
    "scalar_dual": lambda x: np.sum(x * x[0]) + np.sum(x[1] - x),  # a 0-d operand densifies
    "setitem": lambda x: _set(x),
    "fancy_index": lambda x: np.sum(x[[1, 2, 3, 300]] ** 3),  # densifies
    "ellipsis_index": lambda x: np.sum(x[..., 1:] ** 3) + np.sum(x[:, None] ** 2),  # densifies
    "sum_variants": lambda x: np.sum(x ** 3, axis=(0,)) + np.sum(x ** 2, dtype=np.float64)
    + np.sum(np.sin(x), axis=np.int64(0)),
    "sum_to_2d": lambda x: np.sum(np.arctan2(x, np.ones((2, 1)) * 1.5) ** 2),  # a 2-D lift densifies
    "windowed_plus_dual": lambda x: np.sum((x[2:] + (x[:-2] * x[1:-1])) ** 2),
    "add_constant_array": lambda x: np.sum((np.linspace(0.0, 1.0, x.size) + x) ** 3),
    "square_minus": lambda x: np.sum((x[:-1] ** 2 - x[1:]) ** 2),
    "shifted": lambda x: np.sum((x[1:] + 1.5) ** 2 * (x[:-1] - 2) * (3 + x[1:])),
    "one_element_output": lambda x: (x[3:4] * x[4:5] + x[N - 2:N - 1]) ** 2,
    "sum_out": lambda x: _sum_out(x),
    "binary_constants": lambda x: np.sum(np.arctan2(x, 1.5) + np.hypot(2.0, x)
                                         + np.logaddexp(x, np.linspace(0.0, 1.0, x.size))
                                         + np.arctan2(np.linspace(1.0, 2.0, x.size), x) + 2.0 ** x
                                         + x ** np.linspace(1.0, 2.0, x.size) + x ** 3.5 + x ** 1.0),
    "sum_axis_0d_array": lambda x: np.sum(x ** 3, axis=np.array(0)),  # densifies
    # x ± y of two windowed operands: equal and different windows, with and without
    # cross lanes on either side (hyperdual.execute.window._add_shared)
    "diff_windows": lambda x: np.sum((x[1:] - x[:-1] ** 2) ** 2),
    "minus_plain_right": lambda x: np.sum((np.sin(x[2:]) - x[:-2]) ** 2),
    "minus_plain_left": lambda x: np.sum((x[:-2] - np.sin(x[2:])) ** 2),
    "plus_plain_right": lambda x: np.sum((np.exp(x[1:]) + x[:-1]) ** 3),
    "same_window_minus": lambda x: np.sum((x ** 2 - np.cos(x)) ** 2) + np.sum((x - x ** 3) ** 2),
    "same_window_plus": lambda x: np.sum((x + np.sin(x)) ** 2) + np.sum((x ** 2 + x) ** 3),
    "plain_plus_plain": lambda x: np.sum((x[1:] + x[:-1]) ** 2 * (x[1:] - x[:-1])),
}


def _sum_out(x):
    t = x[0:1] * 0.0
    np.sum(x ** 2, keepdims=True, out=t)
    return t[0] * x[1]


def _set(x):
    y = x * 1.0
    y[2:4] = x[7:9] ** 2
    return np.sum(y ** 2)


BLOCKS = [(slice(0, 3), slice(0, 3)), (slice(4, 6), slice(2, 9)), (slice(N - 3, N), slice(N - 5, N)),
          (3, 4), (np.array([10, 1, 12]), np.array([12, 5, 10]))]


@pytest.fixture(scope="module")
def point():
    return np.random.default_rng(3).uniform(0.2, 1.2, N)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@pytest.mark.parametrize("block", range(len(BLOCKS)))
def test_windowed_equals_full_lanes(name, block, point, set_settings):
    f = FUNCTIONS[name]
    index = BLOCKS[block]
    # windows wherever the seeded columns are narrow (the default lane threshold would
    # give these short blocks full lanes: they cost less there)
    set_settings(window_min_size=256, window_max_fraction=0.5, window_min_lanes=0)
    got = hyperdual.hessian(f, point)[index]
    set_settings(window_min_size=10 ** 9)
    want = hyperdual.hessian(f, point)[index]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("block", range(len(BLOCKS)))
def test_windowed_rosenbrock_closed_form(block, point):
    index = BLOCKS[block]
    got = hyperdual.hessian(rosen, point)[index]
    np.testing.assert_allclose(got, rosen_hessian(point)[index], rtol=1e-12, atol=1e-9)


def test_block_request_seeds_a_window(point, default_windows, default_pattern, per_pass):
    seen = []

    def f(x):
        seen.append(getattr(x, "_win", "plain"))
        return rosen(x)
    H = hyperdual.hessian(f, point)
    H[10:15, 10:15]  # 5 seeds + 15 pairs = 20 lane rows of 600: 12 000 elements, windowed
    assert seen[-1] == (10, 15)
    H[[0, N - 1], [0, N - 1]]  # the seeded columns span the input: full lanes
    assert seen[-1] is None
    H[20:22, 20:23]  # 3 seeds + 5 pairs = 8 rows of 600: full lanes cost less than windows
    assert seen[-1] is None
    np.testing.assert_allclose(H[20:22, 20:23], rosen_hessian(point)[20:22, 20:23], rtol=1e-13)


def test_window_needs_a_long_input(no_windows, point):
    seen = []
    hyperdual.hessian(lambda x: seen.append(getattr(x, "_win", "plain")) or rosen(x), point)[0:2, 0:2]
    assert seen[-1] is None


def test_gradient_through_windows(point):
    H = hyperdual.hessian(rosen, point)
    H[0:2, 0:2]
    g = H.gradient
    x = point
    want = np.zeros(N)
    want[:-1] += -400 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    want[1:] += 200 * (x[1:] - x[:-1] ** 2)
    np.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-9)


def test_tuple_input_with_a_long_member(point):
    def f(a, b):
        return np.sum(a ** 2 * b[0]) + np.sum(np.sin(b))
    a = point[:400]
    b = np.array([0.3, -0.7])
    H = hyperdual.hessian(f, (a, b))
    np.testing.assert_allclose(H[0][0][5:8, 5:8], np.diag(2 * b[0] * np.ones(3)), atol=1e-15)
    np.testing.assert_allclose(H[0][1][5:8, 0], 2 * a[5:8], rtol=1e-14)
    np.testing.assert_allclose(H[1][1][:], np.diag(-np.sin(b)), rtol=1e-14)


def test_nan_outside_the_window_reaching_the_output(point):
    x = point.copy()
    x[500] = np.nan
    H = hyperdual.hessian(lambda v: np.sum(v ** 3), x)
    assert np.isnan(H[0:2, 0:2]).all()  # the NaN value reaches the output: no derivatives


def test_nan_outside_the_window_removed_by_where(point):
    x = point.copy()
    x[500] = np.nan

    def f(v):
        return np.sum(np.where(np.isnan(v), 0.0, v) ** 3)
    got = hyperdual.hessian(f, x)[0:2, 0:2]
    np.testing.assert_allclose(got, np.diag(6 * x[0:2]), rtol=1e-14)


def test_windowed_array_shows_full_lanes(set_settings):
    set_settings(window_min_size=256, window_max_fraction=0.5, window_min_lanes=0)
    space = hyperdual.plan.seeding.InputSpace([np.linspace(0.0, 1.0, 300)], None)
    (x,), _ = hyperdual.plan.seeding.seed_inputs(space, np.array([4, 6]), np.array([0, 0]), np.array([0, 1]),
                                            window=True)
    assert x._win == (4, 7)
    y = np.sin(x[2:])
    assert y._win == (2, 5)
    lane = y.e1  # the public lanes are full size
    assert lane.shape == (2, 298)
    want = np.zeros((2, 298))
    want[0, 2] = np.cos(x.value[4])
    want[1, 4] = np.cos(x.value[6])
    np.testing.assert_allclose(lane, want, rtol=1e-15)
    assert y._win is None  # expanded in place: the same numbers, stored densely
    assert x[100]._e1 is None  # an element outside the window has no lanes
    z = x[10:2]
    assert z.shape == (0,) and z._win == (0, 0)


def test_helpers():
    g = np.arange(5.0)
    assert cut(None, 1, 3, 5) is None
    assert cut(2.0, 1, 3, 5) == 2.0
    np.testing.assert_array_equal(cut(g, 1, 3, 5), [1.0, 2.0])
    assert cut(np.ones((2, 5)), 1, 3, 5) is NotImplemented
    assert union((1, 3), None, (2, 6)) == (1, 6)
    np.testing.assert_array_equal(pad(np.ones((1, 2)), (1, 3), (0, 4)), [[0.0, 1.0, 1.0, 0.0]])


def test_pickle_expands_windows():
    import pickle
    space = hyperdual.plan.seeding.InputSpace([np.linspace(0.0, 1.0, 300)], None)
    (x,), _ = hyperdual.plan.seeding.seed_inputs(space, np.array([4]), np.array([0]), np.array([0]), window=True)
    y = pickle.loads(pickle.dumps(x * 2.0))
    assert isinstance(y, HyperDual) and y.e1.shape == (1, 300) and y.e1[0, 4] == 2.0


def test_rule_with_factors_of_a_fixed_size(point):
    """A registered rule that returns full-size factors whatever it is given: the window
    path cannot use them and computes them on the whole input instead."""
    numba = pytest.importorskip("numba")

    @numba.vectorize(["float64(float64)"])
    def triple(a):
        return 3.0 * a
    three = np.full(N, 3.0)
    hyperdual.register_ufunc(triple, lambda a, y: (three if a.size != N else np.full(a.shape, 3.0), None))
    try:
        got = hyperdual.hessian(lambda x: np.sum(triple(x) ** 2), point)[0:2, 0:2]
    finally:
        for table in (hyperdual.ops.rules.UNARY,):
            table.pop(triple, None)
            table.pop(getattr(triple, "ufunc", None), None)
    np.testing.assert_allclose(got, 18.0 * np.eye(2), rtol=1e-14)


def test_windowed_sums_of_every_lane_layout():
    """``x ± y`` of windowed operands: the common case (one pass, ``e2 is e1`` or absent)
    and the general one (separate ``e2`` lanes) give the numbers of full lanes."""
    from hyperdual.execute.window import add as _add_window
    rng = np.random.default_rng(11)
    n = 12
    ctx = hyperdual.SeedContext(np.array([0, 1, 1]), np.array([0, 0, 1]), 2, 2)

    def windowed(win, with12, second):
        w = win[1] - win[0]
        e1 = rng.standard_normal((2, w))
        e2 = e1 if second == "shared" else None if second == "none" else rng.standard_normal((2, w))
        x = HyperDual._new(rng.standard_normal(n), e1, e2, rng.standard_normal((3, w)) if with12 else None, ctx)
        x._win = win
        return x

    def full(x):
        lo, hi = x._win
        out = []
        for lane in (x._e1, x._e2, x._e12):
            if lane is None:
                out.append(None)
                continue
            big = np.zeros((lane.shape[0], n))
            big[:, lo:hi] = lane
            out.append(big)
        return out

    for second in ("shared", "none", "separate"):
        for wa, wb in (((2, 5), (2, 5)), ((2, 5), (4, 9)), ((6, 8), (1, 3))):
            for a12, b12 in ((True, True), (True, False), (False, True), (False, False)):
                for negate in (False, True):
                    a, b = windowed(wa, a12, second), windowed(wb, b12, second)
                    fa, fb = full(a), full(b)
                    got = _add_window(a, b, negate)
                    np.testing.assert_array_equal(got.value, a.value - b.value if negate else a.value + b.value)
                    for k, lane in enumerate((got.e1, got.e2, got.e12)):
                        la, lb = fa[k], fb[k]
                        if la is None and lb is None:
                            assert not np.any(lane)
                            continue
                        la = 0.0 if la is None else la
                        lb = 0.0 if lb is None else lb
                        np.testing.assert_allclose(lane, la - lb if negate else la + lb, rtol=1e-15, atol=0)
