"""Recording and replay: the ``hessian(ys, xs)`` call form.

Each test function below is plain NumPy code written once and used twice:
applied to ``hyperdual.variable(x0)`` to record ``ys`` (the ys form), and
passed as ``func`` (the callable form).  Both Hessians must equal each other
and, where written, the closed form typed out by hand here.
"""
from __future__ import annotations

import numpy as np
import pytest

import hyperdual

RTOL = 1e-10
ATOL = 1e-12


def close(got, want):
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    assert np.shape(got) == np.shape(want)


def both(func, x0, batch_axis=None):
    """(ys-form Hessian, callable-form Hessian) of the same code at ``x0``."""
    if isinstance(x0, tuple):
        vs = tuple(hyperdual.variable(x) for x in x0)
        Hy = hyperdual.hessian(func(*vs), vs, batch_axis)
    else:
        v = hyperdual.variable(x0)
        Hy = hyperdual.hessian(func(v), v, batch_axis)
    Hc = hyperdual.hessian(func, x0, batch_axis)
    return Hy, Hc


X3 = np.array([0.7, -1.3, 2.1])
C23 = np.array([[1.0, -0.5, 2.0], [0.3, 0.8, -1.2]])


# ---- shared NumPy code, each with a hand-written Hessian ---------------------------------------
def f_ufuncs(x):
    return np.sum(np.sin(x) * np.exp(x) + np.tanh(x) - x ** 3 / 3 + np.log(x ** 2) + 1.0 / (2.0 + x))


def h_ufuncs(x):
    t = np.tanh(x)
    d = (2 * np.exp(x) * np.cos(x)          # (e^x sin x)'' = 2 e^x cos x
         - 2 * t * (1 - t ** 2)             # tanh''
         - 2 * x                            # (-x^3/3)''
         - 2 / x ** 2                       # (log x^2)''
         + 2 / (2.0 + x) ** 3)              # (1/(2+x))''
    return np.diag(d)


def f_array_functions(x):
    s = np.stack([x, x ** 2])                              # (2, 3)
    return (np.mean(s, axis=0) @ np.ones(3)                # sum((x + x^2) / 2)
            + np.einsum("i,i->", x, x)                     # |x|^2
            + np.cumsum(x)[-1] * np.prod(x[:2])            # (x0+x1+x2) x0 x1
            + np.trace(np.outer(x, x))                     # |x|^2
            + np.sum(np.where(np.array([True, False, True]), x ** 3, 0.0)))


def h_array_functions(x):
    a, b, c = x
    h = np.diag(1.0 + 2 + 2 + np.array([6 * a, 0.0, 6 * c]))
    # (a + b + c) a b = a^2 b + a b^2 + a b c
    h[0, 0] += 2 * b
    h[1, 1] += 2 * a
    h[0, 1] += 2 * a + 2 * b + c
    h[1, 0] += 2 * a + 2 * b + c
    h[0, 2] += b
    h[2, 0] += b
    h[1, 2] += a
    h[2, 1] += a
    return h


def f_indexing(x):
    return (x[0] * x[1] ** 2 + x[-1] ** 3 + np.sum(x[::-1][:2] ** 2)
            + np.sum(x[[0, 2]] * x[np.array([True, False, True])]) + x[None][0, 1] * x.reshape(3, 1)[2, 0])


def h_indexing(x):
    a, b, c = x
    h = np.array([[0.0, 2 * b, 0], [2 * b, 2 * a, 0], [0, 0, 6 * c]])
    h += np.diag([0.0, 2.0, 2.0])          # x[2]^2 + x[1]^2
    h += np.diag([2.0, 0.0, 2.0])          # x0^2 + x2^2
    h[1, 2] += 1.0                         # x1 x2
    h[2, 1] += 1.0
    return h


def f_setitem(x):
    z = np.zeros_like(x)
    z[0] = x[1] ** 2
    z[1:] = x[1:] * 2
    return np.sum(z ** 2)


def h_setitem(x):
    # z = [x1^2, 2 x1, 2 x2]: sum z^2 = x1^4 + 4 x1^2 + 4 x2^2
    return np.diag([0.0, 12 * x[1] ** 2 + 8, 8.0])


def f_inplace(x):
    y = x * 1
    y += x ** 2
    y *= x
    y -= 3.0
    y /= 2.0
    return np.sum(y ** 2)


def h_inplace(x):
    # y = (x^2 + x^3 - 3) / 2;  (y^2)'' = 2 y'^2 + 2 y y''
    y = (x ** 2 + x ** 3 - 3) / 2
    d1 = (2 * x + 3 * x ** 2) / 2
    d2 = (2 + 6 * x) / 2
    return np.diag(2 * d1 ** 2 + 2 * y * d2)


C33 = np.array([[4.0, 1.0, 0.5], [1.0, 5.0, 1.0], [0.5, 1.0, 6.0]])


def f_slogdet(x):
    sign, logdet = np.linalg.slogdet(C33 + np.diag(x))
    return sign * logdet


def h_slogdet(x):
    m = np.linalg.inv(C33 + np.diag(x))
    return -m * m.T           # d2 log det / dx_i dx_j = -(M^-1)_ij (M^-1)_ji


def f_matmul(x):
    return np.sin(C23 @ x).sum() + x @ C33 @ x


def h_matmul(x):
    return -C23.T @ np.diag(np.sin(C23 @ x)) @ C23 + C33 + C33.T


SHARED = [("ufuncs", f_ufuncs, h_ufuncs), ("array-functions", f_array_functions, h_array_functions),
          ("indexing", f_indexing, h_indexing), ("setitem", f_setitem, h_setitem),
          ("inplace", f_inplace, h_inplace), ("slogdet", f_slogdet, h_slogdet),
          ("matmul", f_matmul, h_matmul)]


@pytest.mark.parametrize("name,f,hf", SHARED, ids=[s[0] for s in SHARED])
def test_ys_form_equals_callable_form_and_closed_form(name, f, hf):
    Hy, Hc = both(f, X3)
    want = hf(X3)
    close(Hy[:], want)
    close(Hc[:], want)
    np.testing.assert_allclose(Hy[:], Hc[:], rtol=1e-13, atol=1e-13)
    assert Hy.value == pytest.approx(float(f(X3)), rel=1e-14)
    assert Hc.value == pytest.approx(float(f(X3)), rel=1e-14)
    close(Hy.gradient, Hc.gradient)


@pytest.mark.parametrize("name,f,hf", SHARED, ids=[s[0] for s in SHARED])
def test_ys_form_lazy_entries(name, f, hf, default_pattern):
    v = hyperdual.variable(X3)
    H = hyperdual.hessian(f(v), v)
    want = hf(X3)
    assert H.stats.passes == 0 and H.stats.function_calls == 0
    close(H[2, 0], want[2, 0])
    assert H.stats.pairs_evaluated == 1 and H.stats.function_calls == 1   # one replay
    close(H[0, 2], want[0, 2])
    assert H.stats.pairs_evaluated == 1
    close(H[1:, ::-1], want[1:, ::-1])


def test_replay_uses_recorded_copy_of_a_constant_matrix():
    A = np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 1.0]])
    keep = A.copy()
    x = hyperdual.variable(X3)
    y = np.sin(A @ x).sum() + x @ (A.T @ A) @ x
    A[:] = 0.0                # the caller mutates the constant after recording
    A[0, 0] = 50.0
    H = hyperdual.hessian(y, x)
    want = -keep.T @ np.diag(np.sin(keep @ X3)) @ keep + 2 * keep.T @ keep
    close(H[:], want)
    A[:] = -7.0               # and again between passes
    close(H[0], want[0])
    close(hyperdual.hessian(y, x)[:], want)


def test_replay_uses_recorded_copies_of_other_constants():
    c = [1.0, 2.0, 3.0]                                  # a list operand
    idx = np.array([0, 2])                               # an index array
    mask = np.array([True, False, True])                 # a where() condition
    val = np.array([5.0, 6.0])                           # an assigned value
    x = hyperdual.variable(X3)
    z = x ** 2
    z[1:] = val * x[1:]
    y = (np.sum(np.sin(x * c)) + np.sum(x[idx] ** 3) + np.sum(np.where(mask, x ** 4, x))
         + np.sum(z * x))
    c[0] = 100.0
    idx[:] = 1
    mask[:] = False
    val[:] = 0.0
    a, b, cc = X3
    want = np.diag(-np.sin(X3 * [1.0, 2.0, 3.0]) * np.array([1.0, 4.0, 9.0])
                   + np.array([6 * a, 0.0, 6 * cc])
                   + np.array([12 * a ** 2, 0.0, 12 * cc ** 2])
                   + np.array([6 * a, 10.0, 12.0]))     # z*x = [x0^3, 5 x1^2, 6 x2^2]
    close(hyperdual.hessian(y, x)[:], want)


def test_in_place_update_keeps_earlier_uses():
    x = hyperdual.variable(X3)
    y = x * 1
    w = y ** 2          # uses y before the update
    y += 5.0
    s = np.sum(w) + np.sum(y ** 3)
    close(hyperdual.hessian(s, x)[:], np.diag(2.0 + 6 * (X3 + 5.0)))


def test_out_argument_is_recorded():
    def g(x):
        z = np.zeros_like(x)
        np.multiply(x, x, out=z)
        return np.sum(z * x)
    Hy, Hc = both(g, X3)
    close(Hy[:], np.diag(6 * X3))
    close(Hc[:], np.diag(6 * X3))


@pytest.mark.parametrize("make_view", [lambda y: y[:2], lambda y: y.reshape(3, 1), lambda y: y.T,
                                       lambda y: y[::-1], lambda y: np.flip(y)])
def test_in_place_update_through_a_view_is_refused(make_view):
    # NumPy aliases views (sum(v**3) would see the update); hyperdual's lanes cannot alias,
    # so writing into an array with a live view (or into a view) is refused, never wrong.
    def f(x):
        y = x * 1.0
        v = make_view(y)
        y += 1.0
        return np.sum(v ** 3)

    def g(x):
        y = x * 1.0
        v = make_view(y)
        v[...] = 2.0
        return np.sum(y ** 3)

    x0 = np.array([1.0, 2.0, 3.0])
    for func in (f, g):
        with pytest.raises(TypeError, match="view"):
            hyperdual.hessian(func, x0)[:]
        with pytest.raises(TypeError, match="view"):
            func(hyperdual.variable(x0))


def test_in_place_update_after_the_view_is_gone_or_copied_works():
    def f(x):
        y = x * 1.0
        s = np.sum(y[:2] ** 2)   # a temporary view, dead before the write
        v = y[:2].copy()         # an independent copy
        y += 1.0
        return s + np.sum(v ** 3) + np.sum(y ** 2)

    x0 = np.array([1.0, 2.0, 3.0])
    want = np.diag([2 + 6 * 1.0 + 2, 2 + 6 * 2.0 + 2, 2.0])
    close(hyperdual.hessian(f, x0)[:], want)
    v = hyperdual.variable(x0)
    close(hyperdual.hessian(f(v), v)[:], want)


def test_slogdet_returns_a_tuple_with_a_recorded_logdet():
    x = hyperdual.variable(X3)
    res = np.linalg.slogdet(C33 + np.diag(x))
    sign, logdet = res
    assert sign == 1.0
    assert isinstance(logdet, hyperdual.HyperDual)
    assert logdet.value == pytest.approx(np.linalg.slogdet(C33 + np.diag(X3))[1])
    assert [r[0] for r in hyperdual.trace_of(logdet)] == ["variable", "diag", "add", "slogdet"]
    close(hyperdual.hessian(logdet, x)[:], h_slogdet(X3))
    close(hyperdual.hessian(np.linalg.det(C33 + np.diag(x)), x)[:],
          hyperdual.hessian(lambda z: np.linalg.det(C33 + np.diag(z)), X3)[:])


def test_tuple_variables_and_shared_subexpression():
    a0, b0 = np.array([0.3, 1.1]), np.array([2.0, -1.0])

    def f(a, b):
        s = np.sin(a).sum()
        return s * s + a @ b

    Hy, Hc = both(f, (a0, b0))
    s = np.sum(np.sin(a0))
    haa = 2 * np.outer(np.cos(a0), np.cos(a0)) - 2 * s * np.diag(np.sin(a0))
    for H in (Hy, Hc):
        close(H[0][0][:], haa)
        close(H[0][1][:], np.eye(2))
        close(H[1][0][:], np.eye(2))
        close(H[1][1][:], np.zeros((2, 2)))


def test_batched_ys_form():
    X = np.array([[0.1, 0.2, 0.3], [-1.0, 0.5, 2.0], [1.5, -0.3, 0.7]])

    def f(x):
        return np.sum(np.exp(x) * np.cos(x), axis=1) + np.prod(x, axis=1)

    Hy, Hc = both(f, X, 0)
    want = []
    for r in X:
        h = np.diag(-2 * np.exp(r) * np.sin(r))
        h[0, 1] = h[1, 0] = r[2]
        h[0, 2] = h[2, 0] = r[1]
        h[1, 2] = h[2, 1] = r[0]
        want.append(h)
    want = np.stack(want)
    close(Hy[1], want[1])
    close(Hy[:], want)
    close(Hc[:], want)
    close(Hy.value, [f(r[None])[0] for r in X])


def test_zero_d_variable():
    v = hyperdual.variable(np.array(2.0))
    H = hyperdual.hessian(np.exp(v) * v ** 3, v)
    e = np.exp(2.0)
    assert H.shape == ()
    assert H[()] == pytest.approx(e * (8 + 24 + 12))   # e^x (x^3 + 6x^2 + 6x) at x = 2


# ---- trace_of --------------------------------------------------------------------------------
def test_trace_of_lists_nodes():
    x = hyperdual.variable(np.ones(3))
    tr = hyperdual.trace_of(np.sin(x).sum())
    assert [r[0] for r in tr] == ["variable", "sin", "sum"]
    assert [r[2] for r in tr] == [(3,), (3,), ()]
    assert tr[0][1] == () and tr[1][1] == ("v0",) and tr[2][1] == ("v1",)
    assert "sin(v0) -> (3,)" in repr(tr[1])

    z = f_setitem(x)
    names = [r[0] for r in hyperdual.trace_of(z)]
    assert names[0] == "variable" and names[-1] == "sum"
    assert names.count("setitem") == 2 and "zeros_like" in names and "getitem" in names
    # every input of a node is an earlier node
    tr = hyperdual.trace_of(z)
    for k, r in enumerate(tr):
        for ref in r[1]:
            assert int(ref[1:]) < k

    names = [r[0] for r in hyperdual.trace_of(f_inplace(x))]
    assert names.count("variable") == 1 and "multiply" in names and "add" in names
    a = hyperdual.variable(np.ones(2))
    b = hyperdual.variable(np.ones(2))
    tr = hyperdual.trace_of(a @ b + np.sum(a))
    assert [r[0] for r in tr].count("variable") == 2
    mm = [r for r in tr if r[0] == "matmul"]
    assert len(mm) == 1 and len(mm[0][1]) == 2


def test_trace_of_needs_a_record():
    with pytest.raises(TypeError):
        hyperdual.trace_of(np.ones(2))
    with pytest.raises(TypeError):
        hyperdual.trace_of(1.0)


# ---- escaping a record ---------------------------------------------------------------------
@pytest.mark.parametrize("escape", [np.asarray, np.array, float, lambda y: y.item(),
                                    lambda y: y.tolist(), int],
                         ids=["asarray", "array", "float", "item", "tolist", "int"])
def test_recorded_arrays_refuse_to_become_plain(escape):
    x = hyperdual.variable(X3)
    y = np.sin(x) * 2
    with pytest.raises(TypeError, match=r"\.value"):
        escape(y[0] if escape in (float, int) else y)
    with pytest.raises(TypeError, match=r"\.value"):
        escape(x[0] if escape in (float, int) else x)
    # the value itself is available, and is a plain ndarray
    assert isinstance(y.value, np.ndarray)
    close(y.value, 2 * np.sin(X3))


def test_variable_copies_and_converts():
    a = np.array([1, 2, 3])
    v = hyperdual.variable(a)
    assert v.dtype == np.float64
    a[0] = 100
    assert v.value[0] == 1.0
    with pytest.raises(TypeError):
        hyperdual.variable(v)
    with pytest.raises(TypeError):
        hyperdual.variable(np.array([1j]))


# ---- which inputs are differentiated ---------------------------------------------------------
def test_ys_form_with_a_subset_of_the_variables():
    a0, b0 = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    a, b = hyperdual.variable(a0), hyperdual.variable(b0)
    y = np.sum(a ** 2 * b ** 2) + a @ b
    close(hyperdual.hessian(y, a)[:], np.diag(2 * b0 ** 2))      # b is a constant here
    close(hyperdual.hessian(y, b)[:], np.diag(2 * a0 ** 2))
    H = hyperdual.hessian(y, (b, a))                               # order of xs is respected
    close(H[0][0][:], np.diag(2 * a0 ** 2))
    close(H[0][1][:], np.diag(4 * a0 * b0) + np.eye(2))
    close(H[1][1][:], np.diag(2 * b0 ** 2))


def test_same_variable_twice_in_xs():
    x = hyperdual.variable(np.array([1.0, 2.0]))
    y = np.sum(x ** 3)
    try:
        H = hyperdual.hessian(y, (x, x))
    except ValueError:
        return                      # refusing is fine too
    for i in range(2):
        for j in range(2):
            close(H[i][j][:], np.diag([6.0, 12.0]))
