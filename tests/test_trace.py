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
from hyperdual import PassMismatchError
from hyperdual.plan import seeding

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
def test_many_passes_one_call(recorded, no_colouring, n, budget_pairs):
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
def test_fallback_when_the_record_fails(recorded, no_colouring):
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
    assert H.stats.function_calls == 2 + H.stats.passes  # (the recording that failed, too)


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


# ---- batch_axis=0: independence read from the record ----------------------------------------------
def fd_sample_hessian(f, X, b, h=1e-4):
    """Central differences of output ``b`` with respect to sample ``b``'s inputs alone."""
    n = X.shape[1]

    def fb(x):
        Z = X.copy()
        Z[b] = x
        return f(Z)[b]
    H = np.zeros((n, n))
    e = np.eye(n) * h
    for i in range(n):
        for j in range(n):
            H[i, j] = (fb(X[b] + e[i] + e[j]) - fb(X[b] + e[i] - e[j]) - fb(X[b] - e[i] + e[j])
                       + fb(X[b] - e[i] - e[j])) / (4 * h * h)
    return H


_RNG = np.random.default_rng(7)
XB5 = _RNG.uniform(0.5, 1.5, (5, 3))
YB5 = _RNG.standard_normal((5, 3))


@pytest.mark.parametrize("f, X, op", [
    (lambda X: np.sum(X ** 2, axis=1) * np.max(X[:, 0]), XB5[:4], "numpy.max over the batch axis"),
    (lambda X: np.sum(np.flip(X, axis=0) ** 2 * X, axis=1), XB5[:3], "numpy.flip over the batch axis"),
    (lambda X: np.sum(X ** 2, axis=1) * X[2, 0] ** 2, np.vstack([XB5, XB5[:3]]),
     r"indexing \[2, 0\] selects along the batch axis"),
], ids=["max-of-a-column", "flip", "one-sample-entry"])
@pytest.mark.parametrize("record", [True, False])
def test_coupled_batch_refused_before_any_number(f, X, op, record):
    """The issue's three cases, which got past the sample comparison with wrong Hessians:
    refused by the value call's record, also when the function is then called per pass."""
    g = counted(f)
    with pytest.raises(ValueError, match="with batch_axis=0 the samples must be independent, but " + op):
        hyperdual.hessian(g, X, batch_axis=0, record=record)
    assert len(g.calls) == 1


def test_batch_shaped_constant_is_replayed_with_its_samples():
    """``Y`` ``[B, m]`` captured by the function: ``H[b]`` of one sample is exact."""
    f = counted(lambda X: np.sum((np.tanh(X) - YB5) ** 2, axis=1))
    H = hyperdual.hessian(f, XB5, batch_axis=0, record=True)
    for b in (3, 0):
        t = np.tanh(XB5[b])
        s = 1 - t ** 2
        np.testing.assert_allclose(H[b], np.diag(2 * s ** 2 - 4 * (t - YB5[b]) * t * s), rtol=1e-14)
    full = H[:]
    assert full.shape == (5, 3, 3) and len(f.calls) == 1 and H.stats.mode == "recorded"
    np.testing.assert_array_equal(full[3], H[3])


def test_independent_batch_one_call_many_passes():
    f = counted(lambda X: np.sum(X ** 3, axis=1) + X[:, 0] * X[:, 1])
    H = hyperdual.hessian(f, XB5, batch_axis=0, record=True,
                          memory_budget=seeding.LIVE_FACTOR * 8 * XB5.size * 3)
    out = H[:]
    assert H.stats.passes > 1 and len(f.calls) == 1
    want = np.zeros((5, 3, 3))
    want[:, np.arange(3), np.arange(3)] = 6 * XB5
    want[:, 0, 1] = want[:, 1, 0] = 1
    np.testing.assert_allclose(out, want, rtol=1e-15)
    np.testing.assert_allclose(H.gradient, 3 * XB5 ** 2 + np.stack([XB5[:, 1], XB5[:, 0], 0 * XB5[:, 0]], 1),
                               rtol=1e-15)
    np.testing.assert_array_equal(H.value, f(XB5))


_Z = np.zeros((5, 3))


def _assign_column(X):
    Z = np.zeros_like(X)
    Z[:, 0] = X[:, 1] ** 2
    return np.sum(Z * X, axis=1)


def _assign_row(X):
    Z = X ** 2
    Z[0] = 1.0  # (a constant into one sample's row)
    return np.sum(Z * X, axis=1)


# f, verdict: None (independent, exact), "unknown" (called per pass), or the refusal's words
BATCH_RULES = [
    ("x[:, 0]", lambda X: X[:, 0] ** 2 * X[:, 1], None),
    ("x[..., 0]", lambda X: X[..., 0] ** 3, None),
    ("x[:, [0, 2]]", lambda X: np.sum(X[:, [0, 2]] ** 2, axis=1), None),
    ("x[0]", lambda X: np.sum(X * X[0], axis=1), r"indexing \[0\] selects"),
    ("x[1:]", lambda X: np.sum(X[1:] ** 2) * np.sum(X, axis=1), r"indexing \[1:\] selects"),
    ("x[::-1]", lambda X: np.sum(X[::-1] * X, axis=1), r"indexing \[::-1\] selects"),
    ("sum axis=-1", lambda X: np.sum(X ** 2, axis=-1), None),
    ("mean keepdims", lambda X: np.mean(X ** 2, axis=1, keepdims=True)[:, 0], None),
    ("sum axis=0", lambda X: np.sum(X, axis=1) * np.sum(X[:, 0], axis=0), "numpy.sum over the batch axis"),
    ("prod all", lambda X: np.sum(X, axis=1) * np.prod(X), "numpy.prod over the batch axis"),
    ("cumsum flat", lambda X: np.cumsum(X)[:5] * np.sum(X, axis=1), "numpy.cumsum over the batch axis"),
    ("cumsum axis=1", lambda X: np.cumsum(X ** 2, axis=1)[:, -1], None),
    ("diff", lambda X: np.sum(np.diff(X) ** 2, axis=1), None),
    ("sort", lambda X: np.sort(X)[:, 0] * X[:, 1], None),
    ("sort axis=0", lambda X: np.sort(X, axis=0)[:, 0] * X[:, 1], "numpy.sort over the batch axis"),
    ("roll axis=1", lambda X: np.sum(np.roll(X, 1, axis=1) * X, axis=1), None),
    ("norm", lambda X: np.linalg.norm(X, axis=1) ** 3, None),
    ("add.reduce", lambda X: np.add.reduce(X ** 2, axis=1), None),
    ("add.reduce axis 0", lambda X: np.add.reduce(X) @ np.ones(3) * X[:, 0],
     "numpy.add.reduce over the batch axis"),
    ("concatenate axis=1", lambda X: np.sum(np.concatenate([X, X ** 2], axis=1) ** 2, axis=1), None),
    ("concatenate axis=0", lambda X: np.sum(np.concatenate([X, X]).reshape(5, 6), axis=1),
     "numpy.concatenate joins along the batch axis"),
    ("vstack", lambda X: np.sum(np.vstack([X, X]).reshape(5, 6), axis=1), "numpy.vstack joins along"),
    ("stack axis=1", lambda X: np.sum(np.stack([X, X ** 2], axis=1) ** 2, axis=(1, 2)), None),
    ("hstack", lambda X: np.sum(np.hstack([X, X ** 2]) ** 2, axis=1), None),
    ("column_stack", lambda X: np.sum(np.column_stack([X[:, 0], X[:, 1] ** 2]) ** 2, axis=1), None),
    ("x @ W", lambda X: np.sum((X @ np.arange(6.0).reshape(3, 2)) ** 2, axis=1), None),
    ("W @ x", lambda X: np.sum((np.ones((5, 5)) @ X) ** 2, axis=1),
     "numpy.matmul contracts over the batch axis"),
    ("einsum bi,bi->b", lambda X: np.einsum("bi,bi->b", X, X ** 2), None),
    ("einsum bi,ci->b", lambda X: np.einsum("bi,ci->b", X, X), "numpy.einsum 'bi,ci->b'"),
    ("reshape rows", lambda X: np.sum(np.reshape(X ** 2, (5, 3, 1)), axis=(1, 2)), None),
    ("where", lambda X: np.sum(np.where(X > 1.0, X ** 2, X ** 3), axis=1), None),
    ("broadcast [B]", lambda X: np.sum(X[:, :, None] * X[:, 0], axis=(1, 2)),
     r"operator \* broadcasts an array of shape \(5,\) along the batch axis"),
    ("det stacked", lambda X: np.linalg.det(X[:, :, None] * X[:, None, :] + np.eye(3)), None),
    ("assign column", _assign_column, None),
    ("assign a constant row", _assign_row, None),
    ("ufunc with dtype=", lambda X: np.sum(np.sin(X, dtype=float) ** 2, axis=1), None),
    ("x[()]", lambda X: np.sum(X[()] ** 2, axis=1), None),
    ("x[..., 0] of [B]", lambda X: X[:, 0] * X[:, 0][..., 0], r"indexing \[\.\.\., 0\] selects"),
    ("x[index array]", lambda X: np.sum(X[np.array([1, 0, 2, 3, 4])] * X, axis=1),
     r"indexing \[<int64 array>\] selects"),
    ("transpose", lambda X: np.sum(X.T ** 2, axis=0), "unknown"),
    ("tile", lambda X: np.sum(np.tile(X, (2, 1))[:5] ** 2, axis=1), "unknown"),
    ("vstack of 2-D and 1-D", lambda X: np.sum(np.vstack([X, np.ones(3)])[:5] ** 2, axis=1), "unknown"),
    ("x[None]", lambda X: np.sum(X[None][0] ** 2, axis=1), "unknown"),
    ("separated index arrays", lambda X: np.sum(X.reshape(5, 3, 1, 1)[:, [0, 1], :, [0, 0]] ** 2,
                                                axis=(0, 2)), "unknown"),
    ("reshape flat", lambda X: np.reshape(X ** 2, -1)[::3], "unknown"),
]


def test_assigning_samples_broadcast_along_the_batch_axis_is_refused():
    def f(X):
        Z = X.copy()
        Z[:] = X[:, 0]      # X [5, 5]: row b of Z gets every sample's X[., 0]
        return np.sum(Z ** 2, axis=1)
    with pytest.raises(ValueError, match=r"but assignment broadcasts an array of shape \(5,\)"):
        hyperdual.hessian(f, _RNG.standard_normal((5, 5)), batch_axis=0, record=True)


def test_assigning_a_sample_into_another_row_is_refused():
    def f(X):
        Z = X.copy()
        Z[0] = X[:, 1]      # X [5, 5]: sample b's X[b, 1] goes into sample 0's row
        return np.sum(Z ** 2, axis=1)
    with pytest.raises(ValueError, match=r"but assignment \[0\] selects along the batch axis"):
        hyperdual.hessian(f, _RNG.standard_normal((5, 5)), batch_axis=0, record=True)


@pytest.mark.parametrize("f, verdict", [r[1:] for r in BATCH_RULES], ids=[r[0] for r in BATCH_RULES])
def test_batch_rules(f, verdict):
    g = counted(f)
    if verdict not in (None, "unknown"):
        with pytest.raises(ValueError, match=verdict):
            hyperdual.hessian(g, XB5, batch_axis=0, record=True)
        assert len(g.calls) == 1
        return
    H = hyperdual.hessian(g, XB5, batch_axis=0, record=True)
    if verdict is None:
        assert H.stats.mode == "recorded" and H.stats.reason == ""
    else:
        assert H.stats.mode == "callable" and "has no rule for the batch axis" in H.stats.reason
    out = H[:]
    for b in range(5):
        np.testing.assert_allclose(out[b], fd_sample_hessian(f, XB5, b), rtol=2e-6, atol=2e-6)
    assert len(g.calls) == (1 if verdict is None else 1 + H.stats.passes + 1)


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
        avg, wsum = np.average(v, weights=v ** 2, returned=True)  # two recorded results: Σ v³
        return a + s * logdet + np.sum(w[3:]) + np.sin(v[:1]) @ np.ones(1) + avg * wsum
    x = np.array([0.7, 1.3, 2.1])
    x0, x1, x2 = x
    H = np.zeros((3, 3))
    H[0, 1] = H[1, 0] = 1 / 3                              # -x0 (2 - x1) / 3
    H[2, 2] += 2                                            # x2²
    H[1, 1] += 6 / x1 ** 3                                  # 3 / x1
    H[np.arange(3), np.arange(3)] += -1 / x ** 2            # log x0 + log x1 + log x2
    H[np.arange(3), np.arange(3)] += x ** x * ((np.log(x) + 1) ** 2 + 1 / x)  # Σ x^x
    H[0, 0] += -np.sin(x0)
    H[np.arange(3), np.arange(3)] += 6 * x                 # Σ x³
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
def test_record_keyword_overrides_the_setting(set_settings, no_colouring, setting):
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


def test_ys_form_batch_read_from_its_record():
    """The ys form reads its record too: a mixing step is refused when the Hessian is made,
    an independent record needs no replays beyond its passes."""
    V = hyperdual.variable(XB5)
    with pytest.raises(ValueError, match="samples must be independent, but numpy.max over the batch axis"):
        hyperdual.hessian(np.sum(V ** 2, axis=1) * np.max(V[:, 0]), V, batch_axis=0)
    H = hyperdual.hessian(np.sum(V ** 3, axis=1), V, batch_axis=0)
    want = np.zeros((5, 3, 3))
    want[:, np.arange(3), np.arange(3)] = 6 * XB5
    np.testing.assert_allclose(H[:], want, rtol=1e-15)
    assert H.stats.function_calls == H.stats.passes == 1
    T = hyperdual.hessian(np.sum(V.T ** 3, axis=0), V, batch_axis=0)  # (no rule: samples compared)
    assert "numpy.transpose has no rule" in T.stats.reason
    np.testing.assert_allclose(T[:], want, rtol=1e-15)
    assert T.stats.function_calls == T.stats.passes + 2


@pytest.mark.parametrize("record", [True, False])
def test_batched_jacobian_read_from_its_record(record):
    f = counted(lambda X: np.sin(X) * X[:, :1])
    J = hyperdual.jacobian(f, XB5, batch_axis=0, record=record)
    want = np.zeros((5, 3, 3))
    want[:, np.arange(3), np.arange(3)] = np.cos(XB5) * XB5[:, :1]
    want[:, :, 0] += np.sin(XB5)
    np.testing.assert_allclose(J[:], want, rtol=1e-15)
    assert len(f.calls) == (1 if record else 1 + J.stats.passes)
    with pytest.raises(ValueError, match="samples must be independent, but numpy.sum over the batch axis"):
        hyperdual.jacobian(lambda X: X * np.sum(X[:, 0]), XB5, batch_axis=0, record=record)


def test_replay_frees_each_intermediate_after_its_last_use():
    """A pass holds its intermediates no longer than a direct call (a long input's lanes
    go back to the pool within the pass): every slot but the output is emptied by the
    step that reads it last, and never read afterwards."""
    H = hyperdual.hessian(rosen, np.linspace(-1, 1, 6), record=True)
    program = H._problem.evaluate.program
    freed, reads = {}, {}
    for j, (kind, out, fn, a, b, free) in enumerate(program.steps):
        used = {"ss": (a, b), "s": (a,), "sc": (a,), "cs": (b,), "item": (a,)}.get(kind)
        for r in used if used is not None else ():
            reads.setdefault(r, []).append(j)
        for r in free:
            assert r not in freed
            freed[r] = j
    assert program.out not in freed
    assert set(freed) == set(reads)
    assert all(freed[r] == max(js) for r, js in reads.items())
    np.testing.assert_allclose(H[:], rosen_hessian(np.linspace(-1, 1, 6)), rtol=1e-14, atol=1e-12)


def test_batch_rules_that_fail_give_no_verdict(monkeypatch):
    """A rule that cannot read a call never breaks a Hessian: the samples are compared,
    as for a step without a rule."""
    from hyperdual.trace import batch

    def broken(*args):
        raise IndexError("a rule read past its arguments")
    monkeypatch.setattr(batch, "_verdict", broken)
    f = counted(lambda X: np.sum(X ** 3, axis=1))
    H = hyperdual.hessian(f, XB5, batch_axis=0, record=True)
    assert H.stats.mode == "callable"
    assert "could not read the record (IndexError: a rule read past its arguments)" in H.stats.reason
    want = np.zeros((5, 3, 3))
    want[:, np.arange(3), np.arange(3)] = 6 * XB5
    np.testing.assert_allclose(H[:], want, rtol=1e-15)
    V = hyperdual.variable(XB5)
    Hy = hyperdual.hessian(np.sum(V ** 3, axis=1), V, batch_axis=0)
    assert "could not read the record (IndexError" in Hy.stats.reason
    np.testing.assert_allclose(Hy[:], want, rtol=1e-15)
