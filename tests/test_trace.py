"""``hessian(func, xs)`` records ``func`` once and replays the record in every pass.

Within one Hessian the point is fixed, so the record made by the value call is
exact for every pass: these tests count the calls of the user's function, check
the numbers against closed forms, and check the fallback (``func`` called per
pass) and what ``H.stats`` says about it.
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest

import hyperdual
from hyperdual import PassMismatchError, seeding

from seeds import rosen, rosen_hessian


def counted(func):
    """``func`` with a list of the types it was called with."""
    calls = []

    def f(*args):
        calls.append(tuple(type(a).__name__ for a in args))
        return func(*args)
    f.calls = calls
    return f


def exp_x_hessian(x):
    """∂²/∂x² of Σ exp(x)·x: diag(exp(x)·(x + 2))."""
    return np.diag(np.exp(x) * (x + 2))


# ---- one call per Hessian ------------------------------------------------------------------------
def test_memoizing_function_is_exact(recorded):
    """The issue's example: a function that caches something derived from x on its first call."""
    cache = {}
    x = np.array([0.3, -1.0, 1.7])
    H = hyperdual.hessian(lambda v: np.sum(cache.setdefault("A", np.exp(v)) * v), x)
    np.testing.assert_allclose(H[:], exp_x_hessian(x), rtol=1e-15, atol=0)
    assert H.stats.mode == "recorded" and H.stats.reason == ""
    np.testing.assert_allclose(H.gradient, np.exp(x) * (x + 1), rtol=1e-15)


@pytest.mark.parametrize("n, budget_pairs", [(7, 1), (12, 5), (40, 64)])
def test_many_passes_one_call(recorded, n, budget_pairs):
    x = np.linspace(-1.2, 1.1, n)
    f = counted(rosen)
    budget = seeding.LIVE_FACTOR * 8 * n * (budget_pairs + 2)
    H = hyperdual.hessian(f, x, memory_budget=budget)
    assert len(f.calls) == 1 and f.calls[0] == ("HyperDual",)
    out = H[:]
    assert H.stats.passes > 1
    np.testing.assert_allclose(out, rosen_hessian(x), rtol=1e-14, atol=1e-12)
    H[0, n - 1], H.gradient, H.value
    assert len(f.calls) == 1
    # the value is the plain function's, bit for bit
    assert H.value == rosen(x)


def test_tuple_inputs_one_call(recorded):
    def g(a, b):
        return np.sum(a ** 2 * b[0]) + np.sum(np.sin(b) * a[:2])
    f = counted(g)
    a, b = np.array([0.5, -1.5, 2.0]), np.array([0.3, 1.1])
    H = hyperdual.hessian(f, (a, b), memory_budget=seeding.LIVE_FACTOR * 8 * 5 * 3)
    blocks = [[H[i][j][:] for j in range(2)] for i in range(2)]
    assert len(f.calls) == 1 and H[0][0].stats.passes > 1
    np.testing.assert_allclose(blocks[0][0], np.diag(2 * b[0] * np.ones(3)), rtol=1e-15)
    np.testing.assert_allclose(blocks[0][1], np.array([[2 * a[0] + np.cos(b[0]), 0],
                                                       [2 * a[1], np.cos(b[1])],
                                                       [2 * a[2], 0]]), rtol=1e-15)
    np.testing.assert_array_equal(blocks[1][0], blocks[0][1].T)
    np.testing.assert_allclose(blocks[1][1], np.diag(-np.sin(b) * a[:2]), rtol=1e-15)


def test_jacobian_gradient_hvp_one_call(recorded):
    x = np.array([0.2, -0.7, 1.3, 2.0])
    f = counted(lambda v: np.sin(v) * v[0])
    J = hyperdual.jacobian(f, x, memory_budget=seeding.LIVE_FACTOR * 8 * 4 * 2)
    want = np.diag(np.cos(x) * x[0])
    want[:, 0] += np.sin(x)
    np.testing.assert_allclose(J[:], want, rtol=1e-15)
    assert len(f.calls) == 1 and J.stats.passes > 1 and J.stats.mode == "recorded"
    g = counted(lambda v: np.sum(np.exp(v) * v))
    np.testing.assert_allclose(hyperdual.gradient(g, x), np.exp(x) * (x + 1), rtol=1e-15)
    assert len(g.calls) == 1
    h = counted(lambda v: np.sum(np.exp(v) * v))
    vec = np.array([1.0, -2.0, 0.5, 3.0])
    np.testing.assert_allclose(hyperdual.hvp(h, x, vec), exp_x_hessian(x) @ vec, rtol=1e-15)
    assert len(h.calls) == 1


def test_branches_on_values_are_those_of_the_point(recorded):
    def f(v):
        if v[0] > 0:  # the point's branch: exact for every pass
            return np.sum(v ** 3)
        return np.sum(v ** 2)
    x = np.array([1.0, 2.0])
    np.testing.assert_array_equal(hyperdual.hessian(f, x)[:], np.diag(6 * x))
    np.testing.assert_array_equal(hyperdual.hessian(f, -x)[:], 2 * np.eye(2))


def test_in_place_write_into_the_input(recorded):
    def f(v):
        v[0] = v[0] ** 3
        return np.sum(v ** 2)       # x0⁶ + x1² + x2²
    x = np.array([1.5, -0.5, 2.0])
    H = hyperdual.hessian(f, x)
    np.testing.assert_allclose(H[:], np.diag([30 * x[0] ** 4, 2, 2]), rtol=1e-15)
    np.testing.assert_array_equal(H.value, np.sum(np.array([x[0] ** 3, x[1], x[2]]) ** 2))
    assert x[0] == 1.5


@pytest.mark.parametrize("value", [3.0, np.array(4.0), np.float64(-1.5)])
def test_constant_output(recorded, value):
    f = counted(lambda v: value)
    H = hyperdual.hessian(f, np.ones(3))
    np.testing.assert_array_equal(H[:], np.zeros((3, 3)))
    np.testing.assert_array_equal(H.gradient, np.zeros(3))
    assert H.value == value and len(f.calls) == 1 and H.stats.mode == "recorded"


def test_out_argument_into_a_recorded_array():
    """``out=`` of an array function whose target is recorded: the record assigns the
    result into the target itself (it used to write into a stand-in: a zero Hessian)."""
    def f(v):
        t = np.zeros_like(v[0])
        np.einsum("i,i->", v, v, out=t)
        return t * v[0]             # (x0² + x1²) x0
    x = np.array([1.0, 2.0])
    want = np.array([[6 * x[0], 2 * x[1]], [2 * x[1], 2 * x[0]]])
    v = hyperdual.variable(x)
    np.testing.assert_array_equal(hyperdual.hessian(f(v), v)[:], want)
    for trace in (True, False):
        seeding.settings.trace, saved = trace, seeding.settings.trace
        try:
            np.testing.assert_array_equal(hyperdual.hessian(f, x)[:], want)
        finally:
            seeding.settings.trace = saved
    with pytest.raises(TypeError, match="an out= argument must be a HyperDual"):
        np.einsum("i,i->", v, v, out=np.zeros(()))


# ---- the fallback, and what stats say --------------------------------------------------------------
def test_fallback_when_the_record_fails(recorded):
    """A function that cannot be recorded is called per pass, and stats say why."""
    state = {"first": True}

    def f(v):
        if state.pop("first", False):
            raise LookupError("not ready on the first call")
        return np.sum(np.exp(v) * v)
    x = np.array([0.3, -1.0])
    H = hyperdual.hessian(f, x)
    assert H.stats.mode == "callable"
    assert "could not be recorded (LookupError: not ready on the first call)" in H.stats.reason
    np.testing.assert_allclose(H[:], exp_x_hessian(x), rtol=1e-15)
    assert H.stats.function_calls == 1 + H.stats.passes


def test_fallback_raises_the_functions_own_error(recorded):
    def f(v):
        raise ZeroDivisionError("the user's own error")
    with pytest.raises(ZeroDivisionError, match="the user's own error"):
        hyperdual.hessian(f, np.ones(2))


def test_per_pass_mode_says_so(per_pass):
    f = counted(lambda v: np.sum(v ** 3))
    H = hyperdual.hessian(f, np.array([1.0, 2.0]), memory_budget=seeding.LIVE_FACTOR * 8 * 2 * 3)
    np.testing.assert_array_equal(H[:], np.diag([6.0, 12.0]))
    assert H.stats.mode == "callable" and "recording is off" in H.stats.reason
    assert len(f.calls) == 1 + H.stats.passes and f.calls[0] == ("ndarray",)


def test_batch_is_called_per_pass_for_now(recorded):
    H = hyperdual.hessian(lambda X: np.sum(X ** 3, axis=1), np.ones((3, 2)), batch_axis=0)
    np.testing.assert_array_equal(H[:], np.broadcast_to(6 * np.eye(2), (3, 2, 2)))
    assert H.stats.mode == "callable" and "batch_axis=0" in H.stats.reason


def test_recorded_form_says_recorded():
    v = hyperdual.variable(np.array([1.0, 2.0]))
    H = hyperdual.hessian(np.sum(v ** 3), v)
    assert H.stats.mode == "recorded" and H.stats.reason == ""


def _cube_sum(v):
    return np.sum(v ** 3)


def test_pickled_recorded_hessian_calls_the_function(recorded):
    H = hyperdual.hessian(_cube_sum, np.array([1.0, 2.0, 3.0]))
    H[0, 0]
    back = pickle.loads(pickle.dumps(H))
    np.testing.assert_array_equal(back[:], np.diag([6.0, 12.0, 18.0]))
    assert back.stats.mode == "callable" and "unpickled" in back.stats.reason
    assert H.stats.mode == "recorded"


def test_an_array_kept_from_another_recording_is_refused(recorded):
    kept = []

    def f(v):
        kept.append(v)
        return np.sum(v * kept[0])
    x = np.array([1.0, 2.0])
    np.testing.assert_array_equal(hyperdual.hessian(f, x)[:], 2 * np.eye(2))  # v * v: exact
    with pytest.raises(PassMismatchError, match="recorded elsewhere"):
        hyperdual.hessian(f, x)
    outside = hyperdual.variable(x)
    with pytest.raises(PassMismatchError, match="made with hyperdual.variable"):
        hyperdual.hessian(lambda v: np.sum(v * outside), x)


def test_output_of_another_kind(recorded):
    """A HyperDual made apart from the inputs falls back to the calls per pass (which
    refuse its seeds); an output that is no number raises the same TypeError as
    without a record."""
    H = hyperdual.hessian(lambda v: hyperdual.HyperDual(2.0), np.ones(2))
    assert H.stats.mode == "callable" and "not an array computed from its inputs" in H.stats.reason
    with pytest.raises(PassMismatchError, match="two different seeding passes"):
        H[:]
    with pytest.raises(TypeError, match="the function returned str"):
        hyperdual.hessian(lambda v: "1.0", np.ones(2))
    with pytest.raises(TypeError, match="the output has dtype complex128"):
        hyperdual.hessian(lambda v: np.ones(()) * 1j, np.ones(2))


def test_replayed_entry_points_match_closed_forms():
    """Each kind of recorded call replays through the entry point the code used
    (operators either way round, -x, ufuncs, x[i], np functions, a list operand,
    a tuple result), in the ys form and in the recorded callable form."""
    def f(v):
        a = -v[0] * (2.0 - v[1]) / 3.0 + np.negative(v[2]) ** 2 + 3.0 / v[1]
        s, logdet = np.linalg.slogdet(np.diag(v))          # a tuple result: log(v0 v1 v2)
        w = np.concatenate([v, v ** v])                    # a list operand: the general step
        return a + s * logdet + np.sum(w[3:]) + np.sin(v[:1]) @ np.ones(1)
    x = np.array([0.7, 1.3, 2.1])
    x0, x1, x2 = x
    H = np.zeros((3, 3))
    H[0, 1] = H[1, 0] = 1 / 3                              # -x0 (2 - x1) / 3
    H[2, 2] += 2                                            # x2²
    H[1, 1] += 6 / x1 ** 3                                  # 3 / x1
    H[np.arange(3), np.arange(3)] += -1 / x ** 2            # log x0 + log x1 + log x2
    H[np.arange(3), np.arange(3)] += x ** x * ((np.log(x) + 1) ** 2 + 1 / x)  # Σ x^x
    H[0, 0] += -np.sin(x0)
    v = hyperdual.variable(x)
    np.testing.assert_allclose(hyperdual.hessian(f(v), v)[:], H, rtol=1e-14, atol=1e-14)
    saved, seeding.settings.trace = seeding.settings.trace, True
    try:
        Hf = hyperdual.hessian(f, x)
        np.testing.assert_allclose(Hf[:], H, rtol=1e-14, atol=1e-14)
        assert Hf.stats.mode == "recorded"
    finally:
        seeding.settings.trace = saved


@pytest.mark.parametrize("setting", [True, False])
def test_record_keyword_overrides_the_setting(set_settings, setting):
    set_settings(trace=setting)
    x = np.array([0.3, -1.0, 1.7])
    for record in (True, False):
        f = counted(lambda v: np.sum(np.exp(v) * v))
        budget = seeding.LIVE_FACTOR * 8 * 3 * 3
        H = hyperdual.hessian(f, x, record=record, memory_budget=budget)
        np.testing.assert_allclose(H[:], exp_x_hessian(x), rtol=1e-15)
        assert H.stats.mode == ("recorded" if record else "callable")
        assert len(f.calls) == (1 if record else 1 + H.stats.passes) and H.stats.passes > 1
        g = counted(lambda v: np.sum(np.exp(v) * v))
        np.testing.assert_allclose(hyperdual.gradient(g, x, record=record), np.exp(x) * (x + 1),
                                   rtol=1e-15)
        assert len(g.calls) == (1 if record else 2)
        j = counted(lambda v: np.exp(v) * v[0])
        J = hyperdual.jacobian(j, x, record=record, memory_budget=seeding.LIVE_FACTOR * 8 * 3 * 2)
        want = np.diag(np.exp(x) * x[0])
        want[:, 0] += np.exp(x)
        np.testing.assert_allclose(J[:], want, rtol=1e-15)
        assert J.stats.mode == ("recorded" if record else "callable")
        assert len(j.calls) == (1 if record else 1 + J.stats.passes) and J.stats.passes > 1


def test_record_keyword_errors():
    with pytest.raises(TypeError, match="record must be True, False or None, got 1"):
        hyperdual.hessian(np.sum, np.ones(2), record=1)
    with pytest.raises(TypeError, match="record must be True, False or None"):
        hyperdual.jacobian(np.sin, np.ones(2), record="yes")
    v = hyperdual.variable(np.ones(2))
    with pytest.raises(ValueError, match="record=False asks to call the function per pass, but ys"):
        hyperdual.hessian(np.sum(v ** 2), v, record=False)
    np.testing.assert_array_equal(hyperdual.hessian(np.sum(v ** 2), v, record=True)[:], 2 * np.eye(2))
