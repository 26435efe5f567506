"""Flat HyperDuals (hyperdual.execute.chain.flat) and the packed paths that trust the mark.

A HyperDual marked flat promises: a 1-D C-contiguous value ``(n,)``, every present
lane a C-contiguous ``(K, n)`` array, no window.  The packed paths skip their layout
checks for such arrays, so the promise must hold wherever the mark is set, and the
packed paths must give the very numbers of the general ones.
"""
import numpy as np
import pytest

import hyperdual
from hyperdual import HyperDual
from hyperdual.execute import packed
from hyperdual.execute.context import SeedContext
from hyperdual.execute.array import PACKED
from hyperdual.lazy.problem import _upper_pairs
from hyperdual.execute.pool import POOL_MIN_ENTRIES
from hyperdual.plan.seeding import InputSpace, seed_inputs
from seeds import rosen, rosen_hessian


def _seeded(n=7, rng=None):
    rng = np.random.default_rng(0) if rng is None else rng
    point = rng.uniform(0.2, 1.5, n)
    point.flags.writeable = False
    U, ip, jp = _upper_pairs(n)
    (x,), _ = seed_inputs(InputSpace([point], None), U, ip, jp)
    return x


def _check_flat(v):
    """The promise of the mark, checked on a result that carries it."""
    assert v._flat
    assert v._win is None
    assert v._value.ndim == 1 and v._value.flags.c_contiguous and v._value.dtype == np.float64
    n = v._value.shape[0]
    for lane in (v._e1, v._e2, v._e12):
        if lane is not None:
            assert lane.ndim == 2 and lane.shape[1] == n and lane.flags.c_contiguous


def _check_packed(v):
    """The promise of the packed mark: flat, both first-order lanes, a plain pass context,
    small lanes."""
    _check_flat(v)
    assert v._e1 is not None and v._e2 is not None and v._node is None
    assert v._ctx is not None and v._ctx.pattern is None and v._ctx.columns is None
    assert v._e1.shape[0] == v._ctx.k1 and v._e2.shape[0] == v._ctx.k2
    rows = v._e1.shape[0] + (0 if v._e2 is v._e1 else v._e2.shape[0]) + v._ctx.npairs
    assert rows * v._value.shape[0] < POOL_MIN_ENTRIES
    if v._e12 is not None:
        assert v._e12.shape[0] == v._ctx.npairs
    # packed: every lane, in order, in one C-contiguous buffer; _lay says where
    k1, k2s, x12 = v._lay
    assert k1 == v._e1.shape[0] and k2s == (0 if v._e2 is v._e1 else v._e2.shape[0])
    assert (x12 < 0) == (v._e12 is None) and (x12 < 0 or x12 == k1 + k2s)
    lanes = [v._e1] + ([] if k2s == 0 else [v._e2]) + ([] if x12 < 0 else [v._e12])
    assert v._lanes.flags.c_contiguous and v._lanes.dtype == np.float64
    np.testing.assert_array_equal(v._lanes, np.concatenate(lanes))


PROGRAMS = {
    "square": lambda x: x ** 2,
    "cube": lambda x: x ** 3,
    "sin": np.sin,
    "exp_times": lambda x: np.exp(x) * x,
    "scale": lambda x: 2.5 * x,
    "divide": lambda x: x / 3.0,
    "rsub": lambda x: 1 - x,
    "add_number": lambda x: x + 2,
    "slice_sub": lambda x: x[1:] - x[:-1] ** 2,
    "slice_step": lambda x: x[::2] * x[1::2][: x[::2].shape[0]] if x.shape[0] % 2 == 0 else x[::2] * 2.0,
    "rosen_terms": lambda x: 100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2,
    "product_chain": lambda x: x * np.sin(x) * np.cos(x),
    "quotient": lambda x: np.sin(x) / (1.0 + x * x),
    # the packed paths one by one (hyperdual.execute.packed), with and without cross lanes
    "negate": lambda x: -(x * x),
    "negate_input": lambda x: -x,
    "deg2rad": np.deg2rad,                   # a constant g', no g''
    "absolute": lambda x: np.abs(x - 0.7),   # g'' none: no cross lane at all
    "sqrt_power": lambda x: x ** 0.5,
    "cube_power": lambda x: (x * 2.0) ** 3,
    "square_ufunc": lambda x: np.square(np.sin(x)),
    "square_int": lambda x: (x + 1) ** 2,
    "rtruediv_number": lambda x: (x / 4) * 3,
    "sub_both": lambda x: x ** 2 - np.exp(x),
    "sub_cross_right": lambda x: x - x ** 2,
    "sub_cross_left": lambda x: x ** 2 - x,
    "add_cross_right": lambda x: x + x ** 2,
    "add_cross_left": lambda x: np.cos(x) + x,
    "add_plain": lambda x: x + x,
    "rsub_cross": lambda x: 2 - x ** 2,
    "mul_input": lambda x: x * x,
    "mul_mixed": lambda x: x[1:] * x[:-1] ** 2,
    "exp_log": lambda x: np.log(np.exp(x) + 1.5),
    "matrix_left": lambda x: np.sin(_A @ x) * (_A @ x),        # A @ x, A constant
    "matrix_right": lambda x: np.exp(x @ _B) + x[:5] * 2.0,     # x @ B, B constant
    "matrix_tall": lambda x: np.tanh(_C @ (x * x)),             # 12 rows from 8
    # exact zeros negated or scaled by a negative constant stay +0.0 on every path
    "negative_scale": lambda x: (x * x) * -2.0,
    "negative_divide": lambda x: np.sin(x) / -3.0,
    "np_negative": lambda x: np.negative(np.sin(x)),
    "rsub_number_cross": lambda x: 1.0 - x * x,
}
_RNG = np.random.default_rng(21)
_A = _RNG.standard_normal((8, 8)) / 3.0
_B = _RNG.standard_normal((8, 5)) / 3.0
_C = _RNG.standard_normal((12, 8)) / 3.0


@pytest.fixture
def packed_on(monkeypatch):
    """Packed paths on, also in the HYPERDUAL_TEST_PACKED=off run (these tests are about them)."""
    monkeypatch.setattr(packed.switch, "on", True)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_flat_mark_keeps_its_promise(name, packed_on):
    x = _seeded(8)
    assert x._flat
    out = PROGRAMS[name](x)
    # the quotient of two arrays takes the general binary rule, which does not mark
    assert bool(out._flat) == (name != "quotient")
    if out._flat:
        _check_flat(out)
    # ... and every other result of a seeded pass input is *packed* (hyperdual.execute.packed)
    assert (out._flat is PACKED) == (name != "quotient")
    if out._flat is PACKED:
        _check_packed(out)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_packed_paths_equal_the_general_paths(name, packed_on, monkeypatch):
    """The same program on inputs without the marks (the checked paths everywhere: nothing
    is made packed, and the input is not flat) gives the same bits."""
    marked = _seeded(8)
    monkeypatch.setattr(packed.switch, "on", False)
    plain = _seeded(8)
    plain._flat = False
    a = PROGRAMS[name](marked)
    b = PROGRAMS[name](plain)
    assert b._flat is not PACKED
    np.testing.assert_array_equal(a.value, b.value)
    for la, lb in ((a.e1, b.e1), (a.e2, b.e2), (a.e12, b.e12)):
        np.testing.assert_array_equal(la, lb)
        np.testing.assert_array_equal(np.signbit(la), np.signbit(lb))  # (the sign of zero too)


def test_packed_paths_on_non_contiguous_lanes():
    """Lanes that are strided views (not flat) go through the checked paths and agree with
    contiguous copies of themselves."""
    rng = np.random.default_rng(3)
    wide = rng.standard_normal((3, 12))
    ctx = SeedContext(np.array([0, 1, 2]), np.array([0, 1, 2]), 3, 3)
    x = HyperDual._new(rng.uniform(0.5, 1.0, 6), wide[:, ::2], wide[:, ::2], None, ctx)
    y = HyperDual._new(x._value.copy(), np.ascontiguousarray(wide[:, ::2]), None, None, ctx)
    y._e2 = y._e1
    for f in (np.sin, lambda v: v ** 2, lambda v: v * v, lambda v: 3.0 * v):
        a, b = f(x), f(y)
        np.testing.assert_array_equal(a.value, b.value)
        np.testing.assert_array_equal(a.e1, b.e1)
        np.testing.assert_array_equal(a.e12, b.e12)


def test_setitem_replaces_the_mark():
    x = _seeded(6)
    y = x * 1.0
    assert y._flat
    y[1:3] = np.zeros(2)  # the new lanes come from the general assignment path
    assert y._flat is False
    np.testing.assert_array_equal(y.value[1:3], 0.0)
    np.testing.assert_array_equal(y.e1[:, 1:3], 0.0)


def test_slices_of_a_flat_array_are_linked_views():
    """x[1:] of a flat array copies its lanes (to keep them contiguous) but is still a view:
    writing into either is refused, as for every other view."""
    x = _seeded(6) * 1.0
    v = x[1:]
    _check_flat(v)
    with pytest.raises(TypeError, match="shares memory with a view"):
        x[0] = 1.0
    with pytest.raises(TypeError, match="shares memory with a view"):
        v[0] = 1.0


def test_hand_made_arrays_are_flat_when_1d():
    x = HyperDual(np.array([1.0, 2.0, 3.0]), np.eye(3), np.eye(3))
    _check_flat(x)
    assert not HyperDual(np.ones((2, 2)), np.ones((2, 2)))._flat
    assert not HyperDual(2.0, 1.0)._flat
    _check_flat(HyperDual(np.arange(4.0)[::2], np.arange(4.0)[::2], None, np.ones((1, 2))))
    y = np.sin(x) * x
    np.testing.assert_allclose(y.value, np.sin([1.0, 2.0, 3.0]) * [1.0, 2.0, 3.0])
    # d/dx (x sin x) = sin x + x cos x on the diagonal
    v = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(np.diagonal(y.e1), np.sin(v) + v * np.cos(v), rtol=1e-14)


def test_full_hessian_through_the_packed_paths_matches_closed_form():
    x = np.array([0.3, -1.2, 0.8, 1.1, -0.4])
    np.testing.assert_allclose(hyperdual.hessian(rosen, x)[:], rosen_hessian(x), rtol=1e-13, atol=1e-12)


# ---- the packed paths hand over to the general ones where their case does not apply -----------
def test_broadcast_result_larger_than_the_operand():
    """``x ** [1, 2, 3]`` with a one-element ``x``: the result is not x's shape."""
    x = HyperDual(np.array([2.0]), np.array([[1.0]]), np.array([[1.0]]), np.array([[0.0]]))
    y = x ** np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(y.value, [2.0, 4.0, 8.0])
    np.testing.assert_allclose(y.e1[0], [1.0, 4.0, 12.0])      # p x^(p-1)
    np.testing.assert_allclose(y.e12[0], [0.0, 2.0, 12.0])     # p (p-1) x^(p-2)


def test_product_with_an_operand_without_lanes():
    x = _seeded(5)
    f = np.floor(x * 3.0)  # zero derivative: no lanes, the pass's context
    assert f._e1 is None
    y = f * x
    np.testing.assert_allclose(y.value, np.floor(3.0 * x.value) * x.value)
    np.testing.assert_allclose(y.e1, np.diag(np.floor(3.0 * x.value)), rtol=1e-15)
    assert not np.any(y.e12)


def test_product_of_shared_and_separate_second_lanes():
    v = np.array([0.5, 1.5, -2.0])
    E = np.eye(3)
    x = HyperDual(v, E, E)                 # e2 is e1
    y = HyperDual(v * 2.0, E.copy(), E.copy())   # e2 a separate array
    assert x._e2 is x._e1 and y._e2 is not y._e1
    z = x * y                              # d²(x y)/dx_i dx_j = 2 δ_ij (here x = y/2 pointwise)
    np.testing.assert_allclose(z.value, 2.0 * v * v)
    np.testing.assert_allclose(z.e1, np.diag(3.0 * v), rtol=1e-15)
    np.testing.assert_allclose(z.e12.reshape(3, 3, 3)[np.arange(3), np.arange(3), np.arange(3)], 2.0)


def test_hand_made_arrays_with_equal_pair_maps_share_one_context():
    from hyperdual.execute import context
    v = np.array([1.0, 2.0])
    pairs = (np.array([0, 1]), np.array([1, 0]))
    a = HyperDual(v, np.eye(2), np.eye(2), np.ones((2, 2)), pairs=pairs)
    b = HyperDual(2 * v, np.eye(2), np.eye(2), np.zeros((2, 2)), pairs=(pairs[0].copy(), pairs[1].copy()))
    c = HyperDual(v, np.eye(2), np.eye(2), np.ones((2, 2)), pairs=(np.array([0, 1]), np.array([0, 1])))
    assert a._ctx is b._ctx and a._ctx is not c._ctx
    # e12[p] = b a.e12[p] + a b.e12[p] + a.e1[i] b.e2[j] + b.e1[i] a.e2[j]; the unit seeds
    # of pairs (0, 1) and (1, 0) never meet at one element, so only b a.e12 remains
    np.testing.assert_allclose((a * b).e12, [[2.0, 4.0], [2.0, 4.0]])
    for k in range(70):  # the shared table stays bounded
        context.SeedContext.shared(np.array([k % 3]), np.array([0]), 3, 1 + k)
    assert len(context._SHARED) <= 64


# ---- the packed mark (hyperdual.execute.packed) -------------------------------------------------------
@pytest.mark.parametrize("n", [8, 100])  # a BLAS product with ones; past 64, the general sum
def test_packed_sum_equals_the_general_sum(n, packed_on, monkeypatch):
    marked = _seeded(n)
    a = np.sum(np.sin(marked) * marked)
    monkeypatch.setattr(packed.switch, "on", False)
    plain = _seeded(n)
    b = np.sum(np.sin(plain) * plain)
    np.testing.assert_array_equal(a.value, b.value)
    np.testing.assert_array_equal(a.e1, b.e1)
    np.testing.assert_array_equal(a.e12, b.e12)
    v = marked.value  # d²/dx_i² of sum(x sin x) = 2 cos x - x sin x, off-diagonal 0
    hess = np.zeros((n, n))
    hess[np.triu_indices(n)] = a.e12
    np.testing.assert_allclose(np.diag(hess), 2 * np.cos(v) - v * np.sin(v), rtol=1e-13)
    np.testing.assert_array_equal(hess[np.triu_indices(n, 1)], 0.0)


def test_packed_needs_one_context_and_one_length(packed_on):
    """Operands of two passes still raise (the general path joins contexts); operands of
    two lengths broadcast through the general path."""
    x, y = _seeded(5), _seeded(5)
    assert x._flat is PACKED and y._flat is PACKED and x._ctx is not y._ctx
    with pytest.raises(hyperdual.PassMismatchError):
        x + y * 1.0
    z = x[:1] * x  # (1,) * (5,): broadcast
    np.testing.assert_allclose(z.value, x.value[0] * x.value)
    np.testing.assert_allclose(z.e1[0], x.value + np.r_[x.value[0], 0, 0, 0, 0])  # d/dx0 (x0 x_t)


def test_nothing_is_packed_in_a_pattern_pass_or_a_record():
    from hyperdual.plan.pattern import Recorder
    point = np.linspace(0.5, 1.0, 6)
    U, ip, jp = _upper_pairs(6)
    (x,), ctx = seed_inputs(InputSpace([point], None), U, ip, jp, pattern=Recorder(6))
    assert x._flat is True and ctx.pattern is not None
    assert (x * x)._flat is not PACKED
    v = hyperdual.variable(point)
    assert v._flat is not PACKED and (v * 2.0)._flat is not PACKED


def test_packed_factors_of_every_form():
    one = np.array([3.0])
    np.testing.assert_array_equal(packed._factor(one, 4), [3.0])
    np.testing.assert_array_equal(packed._factor(np.array(2.0), 4), [2.0])       # 0-d: one value
    np.testing.assert_array_equal(packed._factor(np.arange(8.0)[::2], 4), [0, 2, 4, 6])  # strided
    assert packed._factor(np.arange(8.0)[::2], 4).flags.c_contiguous
    np.testing.assert_array_equal(packed._factor(0.25, 4), [0.25])
    assert packed._factor(None, 4).shape == (0,)
    g = np.arange(4.0)
    assert packed._factor(g, 4) is g  # (n,) and contiguous: as it is


def _hand_made(n=8, seed=5):
    """A hand-made HyperDual with separate first-order lanes (K1 = 3, K2 = 2, P = 6):
    the textbook number with several seeds on each side, as hvp-style passes use."""
    rng = np.random.default_rng(seed)
    ip, jp = np.repeat(np.arange(3), 2), np.tile(np.arange(2), 3)
    return HyperDual(rng.uniform(0.2, 1.5, n), rng.standard_normal((3, n)), rng.standard_normal((2, n)),
                     rng.standard_normal((6, n)), pairs=(ip, jp))


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_packed_paths_with_separate_second_lanes(name, packed_on, monkeypatch):
    """Packed arrays whose ``e2`` is not ``e1`` (hand-made, K1 != K2): the packed paths give the
    bits of the general ones, and the results stay packed where the program allows."""
    marked = _hand_made()
    assert marked._flat is PACKED and marked._e2 is not marked._e1
    a = PROGRAMS[name](marked)
    if name != "quotient":
        assert a._flat is PACKED and a._e2 is not a._e1
        _check_packed(a)
    monkeypatch.setattr(packed.switch, "on", False)
    plain = _hand_made()
    assert plain._flat is True
    b = PROGRAMS[name](plain)
    np.testing.assert_array_equal(a.value, b.value)
    for la, lb in ((a.e1, b.e1), (a.e2, b.e2), (a.e12, b.e12)):
        np.testing.assert_array_equal(la, lb)


@pytest.mark.parametrize("make", ["seeded", "hand_made"])
def test_every_packed_result_keeps_the_packed_promise(make, packed_on, monkeypatch):
    """Every packed array made while running all the programs (intermediates too), from a
    seeded input (``e2 is e1``) and a hand-made one (separate ``e2``): flat, small, and
    its lanes packed in order in ``_lanes`` as ``_lay`` says."""
    made = []
    real = packed._packed

    def spy(*args):
        out = real(*args)
        made.append(out)
        return out

    monkeypatch.setattr(packed, "_packed", spy)
    for name in sorted(PROGRAMS):
        x = _seeded(8) if make == "seeded" else _hand_made()
        _check_packed(x)
        PROGRAMS[name](x)
    assert len(made) > 60
    for out in made:
        _check_packed(out)


def test_packed_product_of_one_shared_and_one_separate_operand(packed_on):
    """x * y with e2 is e1 on one side only: the general product rule (no packed result)."""
    v = np.array([0.5, 1.5, -2.0])
    E = np.eye(3)
    x = HyperDual(v, E, E)
    y = HyperDual(v * 2.0, E.copy(), E.copy())
    assert x._flat is PACKED and y._flat is PACKED and x._ctx is y._ctx
    z = x * y
    assert z._flat is not PACKED
    # e1 = y x.e1 + x y.e1 = (2v + v) on the diagonal; e12 = x.e1[i] y.e2[j] + y.e1[i] x.e2[j]
    np.testing.assert_allclose(z.e1, np.diag(3.0 * v), rtol=1e-15)
    np.testing.assert_allclose(z.e12.reshape(3, 3, 3)[np.arange(3), np.arange(3), np.arange(3)], 2.0)
    np.testing.assert_allclose((y * x).e1, z.e1, rtol=1e-15)


@pytest.mark.parametrize("op", ["add", "sub"])
def test_packed_sum_of_one_shared_and_one_separate_operand(op, packed_on):
    """x ± y with e2 is e1 on one side only: the general path, with every lane right."""
    v = np.array([0.5, 1.5, -2.0])
    E = np.eye(3)
    x = HyperDual(v, E, E, np.ones((9, 3)))
    y = HyperDual(v * 2.0, E * 3.0, E * 5.0, np.full((9, 3), 2.0))
    assert x._flat is PACKED and y._flat is PACKED and x._ctx is y._ctx and x._e2 is x._e1
    z = x + y if op == "add" else x - y
    sign = 1.0 if op == "add" else -1.0
    _check_packed(z)  # (the general path's flat result, packed: packed from here on)
    np.testing.assert_array_equal(z.value, v + sign * 2.0 * v)
    np.testing.assert_array_equal(z.e1, E + sign * 3.0 * E)
    np.testing.assert_array_equal(z.e2, E + sign * 5.0 * E)
    np.testing.assert_array_equal(z.e12, np.full((9, 3), 1.0 + sign * 2.0))


def test_packed_sum_with_separate_second_lanes(packed_on):
    x = _hand_made(5)
    s = np.sum(x)
    np.testing.assert_allclose(s.e1, x.e1.sum(axis=1), rtol=1e-15)
    np.testing.assert_allclose(s.e2, x.e2.sum(axis=1), rtol=1e-15)
    np.testing.assert_allclose(s.e12, x.e12.sum(axis=1), rtol=1e-15)


@pytest.mark.parametrize("n,packed_expected", [(10, True), (40, False), (100, False)])
def test_packed_only_where_every_lane_of_the_pass_is_small(n, packed_expected, packed_on):
    """The mark counts the cross lane's rows (P) before that lane exists: an input of 100
    elements seeded for 5050 pairs has a small e1 but would grow a 5050 x 99 cross lane
    in its first nonlinear step, which belongs to the pooled general path."""
    x = _seeded(n)
    assert (x._flat is PACKED) == packed_expected
    y = np.sum(x[1:] ** 2 - np.sin(x[:-1]))
    for v in (x[1:], x[1:] ** 2, np.sin(x) * x):
        assert (v._flat is PACKED) == packed_expected
        if packed_expected:
            _check_packed(v)
    v = x.value  # d²/dx_t² of sum(x[1:]² - sin(x[:-1])): 2 (t >= 1) + sin(x_t) (t < n-1)
    hess = np.zeros((n, n))
    hess[np.triu_indices(n)] = y.e12
    want = np.zeros(n)
    want[1:] += 2.0
    want[:-1] += np.sin(v[:-1])
    np.testing.assert_allclose(np.diag(hess), want, rtol=1e-14)


EDGE_POINTS = {
    "zeros_and_ones": np.array([0.0, -0.0, 1.0, -1.0, 0.5, 2.0, -2.0, 1e-12]),
    "large_and_tiny": np.array([1e300, -1e300, 1e-300, -1e-300, 3.0, 1e154, 7.0, 1e-154]),
    "nonfinite": np.array([np.inf, -np.inf, np.nan, 1.0, 0.0, 2.0, -3.0, 0.25]),
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
@pytest.mark.parametrize("where", sorted(EDGE_POINTS))
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_packed_paths_equal_the_general_paths_at_edges(name, where, packed_on, monkeypatch):
    """0, -0, ±1, huge, tiny, inf and NaN: the packed paths keep the general paths' bits
    (NaN where they have NaN, structural zeros where they have them)."""
    point = EDGE_POINTS[where]
    U, ip, jp = _upper_pairs(point.size)

    def run():
        (x,), _ = seed_inputs(InputSpace([point], None), U, ip, jp)
        with np.errstate(all="ignore"):
            return x._flat, PROGRAMS[name](x)
    mark, a = run()
    assert mark is PACKED
    monkeypatch.setattr(packed.switch, "on", False)
    mark, b = run()
    assert mark is not PACKED
    np.testing.assert_array_equal(a.value, b.value)
    for la, lb in ((a.e1, b.e1), (a.e2, b.e2), (a.e12, b.e12)):
        np.testing.assert_array_equal(la, lb)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_packed_empty_and_one_element_slices(packed_on):
    x = _seeded(6)
    e = x[4:2]  # an empty run
    assert e._flat is PACKED and e.shape == (0,)
    s = np.sum(e ** 2 + e)
    assert s.value == 0.0 and not np.any(s.e1) and not np.any(s.e12)
    one = x[2:3] ** 3  # d/dx2 = 3 x2², d²/dx2² = 6 x2
    v = x.value[2]
    np.testing.assert_allclose(one.e1[:, 0], 3 * v * v * np.eye(6)[2], rtol=1e-15)
    cross = np.zeros((6, 6))
    cross[np.triu_indices(6)] = one.e12[:, 0]
    np.testing.assert_allclose(cross[2, 2], 6 * v, rtol=1e-15)
    assert np.count_nonzero(cross) == 1


def test_packed_arrays_and_recorded_variables_never_mix(packed_on):
    """A recorded variable meeting a packed pass array (a variable made inside a function
    being differentiated): refused in both orders, as for any seeded array, so no packed
    result ever carries a record that its packed operations would skip."""
    x = _seeded(4)
    v = hyperdual.variable(np.array([1.0, 2.0, 3.0, 4.0]))
    assert x._flat is PACKED and v._flat is not PACKED
    for make in (lambda: x * v, lambda: v * x, lambda: x + v, lambda: v - x, lambda: np.maximum(x, v)):
        with pytest.raises(ValueError, match="recording and seeded evaluation cannot be mixed"):
            make()


def test_packed_matmul_hands_over_where_its_case_does_not_apply(packed_on):
    """Not a constant float matrix, or a result too large for packed lanes: the general
    product rule, with the same numbers."""
    x = _seeded(8)
    for other in (np.ones((8, 8), dtype=np.int64), np.ones(8), np.ones((2, 8, 8))):
        y = other @ x
        assert y._flat is not PACKED
        np.testing.assert_allclose(y.value, np.asarray(other, float) @ x.value)
    big = np.ones((400, 8)) / 8.0  # 400 x (8 + 8 + 36) lane entries: above the packed bound
    y = big @ x
    assert y._flat is not PACKED
    np.testing.assert_allclose(y.e1, np.broadcast_to(np.eye(8) @ big.T, (8, 400)), rtol=1e-15)


def test_hvp_input_is_packed_and_gives_the_general_bits(packed_on, monkeypatch):
    """hvp seeds e1 = I and e2 = v (K1 = n, K2 = 1): a packed input with separate second
    lanes; the product equals H @ v and the general paths' bits."""
    f = lambda x: np.sum(np.sin(x) * x ** 2) + np.sum(x[1:] * x[:-1]) + np.sum(np.exp(0.3 * x))
    x = np.linspace(0.1, 1.0, 12)
    v = np.linspace(-1.0, 1.0, 12)
    seen = []
    got = hyperdual.hvp(lambda z: seen.append(z._flat) or f(z), x, v)
    assert seen == [PACKED]
    # closed form: diag (2 - x²) sin x + 4 x cos x + 0.09 e^{0.3 x}, off-diagonal 1 beside it
    H = np.diag((2 - x * x) * np.sin(x) + 4 * x * np.cos(x) + 0.09 * np.exp(0.3 * x))
    H += np.diag(np.ones(11), 1) + np.diag(np.ones(11), -1)
    np.testing.assert_allclose(got, H @ v, rtol=1e-13, atol=1e-13)
    monkeypatch.setattr(packed.switch, "on", False)
    np.testing.assert_array_equal(hyperdual.hvp(f, x, v), got)


@pytest.mark.parametrize("c", [0, 0.0, -0.0, np.inf, np.nan, 10 ** 400 // 10 ** 300])
@pytest.mark.parametrize("op", ["truediv", "mul", "rmul", "rsub", "pow", "add", "sub"])
def test_packed_number_operands_follow_numpy(c, op, packed_on, monkeypatch):
    """x op c with a Python number at its edges (x / 0 is inf with NumPy's warning, not
    ZeroDivisionError): the packed result has the general paths' bits."""
    f = {"truediv": lambda x: x / c, "mul": lambda x: x * c, "rmul": lambda x: c * x,
         "rsub": lambda x: c - x, "pow": lambda x: (x * 1.0) ** c, "add": lambda x: x + c,
         "sub": lambda x: x - c}[op]

    def run():
        x = _seeded(5) ** 2  # with a cross lane
        with np.errstate(all="ignore"):
            return f(x)
    a = run()
    monkeypatch.setattr(packed.switch, "on", False)
    b = run()
    np.testing.assert_array_equal(a.value, b.value)
    for la, lb in ((a.e1, b.e1), (a.e2, b.e2), (a.e12, b.e12)):
        np.testing.assert_array_equal(la, lb)


def test_packed_division_by_zero_is_numpys(packed_on):
    x = _seeded(3) ** 2
    assert x._flat is PACKED
    with pytest.warns(RuntimeWarning) as record:  # (0 * inf in the lanes warns too, as in NumPy)
        y = x / 0
    assert any("divide by zero" in str(w.message) for w in record)
    assert np.all(np.isinf(y.value))


@pytest.mark.parametrize("make", ["seeded", "hand_made"])
@pytest.mark.parametrize("name", sorted(PROGRAMS))
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_packed_paths_on_the_numpy_twins(name, make, packed_on, monkeypatch):
    """Before the Numba kernels are loaded, packed operations run the twins on views of
    their packed buffers: the general paths' bits there too, and the Numba results up to
    rounding."""
    from hyperdual.execute import lanes

    def inputs():
        return _hand_made() if make == "hand_made" else _seeded(8)

    numba_result = PROGRAMS[name](inputs())
    # the state of a fresh process: twins, and no switch to Numba however much work
    monkeypatch.setattr(lanes._Choice, "ready", False)
    monkeypatch.setattr(lanes._Choice, "kernels", lanes.Kernels(lanes.chain_lanes_numpy, lanes.binary_lanes_numpy,
                                                   lanes.product_lanes_numpy, lanes.square_lanes_numpy))
    monkeypatch.setattr(lanes, "LOAD_AFTER_OP", float("inf"))
    monkeypatch.setattr(lanes, "LOAD_AFTER_TOTAL", float("inf"))
    a = PROGRAMS[name](inputs())
    if name != "quotient":
        assert a._flat is PACKED
        _check_packed(a)
    monkeypatch.setattr(packed.switch, "on", False)
    plain = inputs()
    plain._flat = False
    b = PROGRAMS[name](plain)
    for la, lb, ln in ((a.value, b.value, numba_result.value), (a.e1, b.e1, numba_result.e1),
                       (a.e2, b.e2, numba_result.e2), (a.e12, b.e12, numba_result.e12)):
        np.testing.assert_array_equal(la, lb)
        np.testing.assert_allclose(la, ln, rtol=1e-13, atol=1e-13)


def _packed_input(values):
    """A packed input of these values (two seeds on each side, a cross lane of every pair)."""
    n = len(values)
    rng = np.random.default_rng(n)
    x = HyperDual(np.asarray(values, dtype=float), rng.standard_normal((2, n)), rng.standard_normal((2, n)),
                  rng.standard_normal((4, n)))
    assert x._flat is PACKED
    return x


@pytest.mark.parametrize("n", [1, 2, 7, 8, 9, 15, 16, 17, 33, 64])
def test_packed_sum_value_is_numpys_sum(n, packed_on):
    """The packed sum's value (NumPy's pairwise order, computed in the kernel) is
    ``np.sum`` of the value, bit for bit, at every length up to 64."""
    from hyperdual.execute import lanes
    assert not lanes._Choice.ready or lanes._Choice.packed.sum is not None  # (checked at load)
    rng = np.random.default_rng(n)
    for _ in range(50):
        v = rng.standard_normal(n) * 10.0 ** rng.integers(-12, 12, n)
        v[rng.random(n) < 0.1] = -0.0
        s = np.sum(_packed_input(v))
        assert s.value == np.sum(v) and np.signbit(s.value) == np.signbit(np.sum(v))
        assert type(s.value) is np.float64


def test_pairwise_check_rejects_a_wrong_sum():
    from hyperdual.execute import lanes

    def sequential(v, lanes_, out):
        s = 0.0
        for t in v:
            s += t
        return s

    assert not lanes._pairwise_is_numpys(sequential)


@pytest.mark.parametrize("op", ["x * y", "x ** 2", "sum"])
def test_packed_values_keep_numpys_floating_point_flags(op, packed_on):
    """Values computed inside packed kernels warn and raise as NumPy's would (the kernel
    reports an odd value and NumPy recomputes it)."""
    big = _packed_input([1e200, 2.0, 1e300])
    tiny = _packed_input([1e-200, 2.0, 3.0])
    run = {"x * y": lambda a: a * a, "x ** 2": lambda a: a ** 2, "sum": lambda a: np.sum(a * 1e10)}[op]
    with pytest.warns(RuntimeWarning, match="overflow"):
        out = run(big)
    assert np.isinf(out.value).any()
    with np.errstate(over="raise"), pytest.raises(FloatingPointError):
        run(big)
    if op != "sum":
        with np.errstate(under="raise"), pytest.raises(FloatingPointError):
            run(tiny)
        with np.errstate(all="raise"):  # a nan input raises nothing, in NumPy as here
            z = run(_packed_input([np.nan, 1.0]))
        assert np.isnan(z.value[0]) and np.isnan(z.e1[:, 0]).all()


def test_packed_chain_with_a_registered_rule_returning_views(packed_on, monkeypatch):
    """A registered rule may return broadcast or strided views as g' and g'': the packed
    chain rule makes them contiguous and gives the general path's bits."""
    from hyperdual.ops import rules

    ufunc = np.cbrt  # borrowed: its table entry is swapped for one returning views
    monkeypatch.setitem(rules.UNARY, ufunc, lambda a, y: (np.broadcast_to(np.float64(0.5), a.shape),
                                                          np.stack([a, a], axis=1)[:, 0]))
    marked = _seeded(8)
    a = ufunc(marked)
    assert a._flat is PACKED
    monkeypatch.setattr(packed.switch, "on", False)
    plain = _seeded(8)
    plain._flat = False
    b = ufunc(plain)
    for la, lb in ((a.value, b.value), (a.e1, b.e1), (a.e12, b.e12)):
        np.testing.assert_array_equal(la, lb)
    np.testing.assert_array_equal(a.e1, 0.5 * marked.e1)
