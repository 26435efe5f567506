"""Sparse output: Hessian.sparse(), .sparsity() and .lower_triangle(), against the dense
Hessian, on the coloured path and on the pairs' paths (pattern, every pair)."""
import sys

import numpy as np
import pytest
import scipy.sparse

import hyperdual


def rosen(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def chain_exp(x):
    return np.sum(np.exp(0.3 * x[1:] * x[:-1])) + np.sum(np.sin(x) ** 2)


def minimal_surface(v, m=10):
    u = v.reshape(m, m)
    ux, uy = u[1:, :-1] - u[:-1, :-1], u[:-1, 1:] - u[:-1, :-1]
    return np.sum(np.sqrt(1.0 + ux ** 2 + uy ** 2))


A = np.random.default_rng(5).normal(size=(30, 30))


def dense_matmul(x):            # outside the analysis: the pairs' paths answer
    return np.sum(np.tanh(A @ x) ** 2)


def banded_matmul(x):           # a band through a step the analysis does not follow
    return np.sum(np.tanh(np.diff(x, axis=0)) ** 2) + np.sum(x ** 3)


CASES = [(rosen, 80), (chain_exp, 200), (minimal_surface, 100), (dense_matmul, 30), (banded_matmul, 60)]


@pytest.mark.parametrize("f, n", CASES, ids=[c[0].__name__ for c in CASES])
def test_sparse_equals_the_dense_hessian(f, n):
    x = np.random.default_rng(n).uniform(-1, 1, n)
    dense = hyperdual.hessian(f, x)[:]
    H = hyperdual.hessian(f, x)
    S = H.sparse()
    assert isinstance(S, scipy.sparse.csr_array) and S.shape == (n, n)
    np.testing.assert_allclose(S.toarray(), dense, rtol=1e-13, atol=1e-13 * max(1, np.abs(dense).max()))
    assert H.stats.nnz == S.nnz
    assert S.has_sorted_indices
    P = H.sparsity()
    assert P.dtype == bool and (P != (S != 0)).nnz == 0 or set(zip(*P.nonzero())) >= set(zip(*S.nonzero()))
    np.testing.assert_array_equal(P.toarray(), S.toarray() != 0 if P.nnz == S.nnz else P.toarray())
    np.testing.assert_allclose(H[:], S.toarray(), rtol=0, atol=0)  # later requests read what sparse() stored


def test_colouring_gives_the_structure_and_no_more():
    x = np.linspace(-1, 1, 500)
    H = hyperdual.hessian(rosen, x)
    P = H.sparsity()
    assert H.stats.passes == 0 and P.nnz == 3 * 500 - 2
    S = H.sparse()
    assert H.stats.method == "colouring" and H.stats.passes == 1 and S.nnz == 3 * 500 - 2
    np.testing.assert_array_equal(S.indices, P.indices)
    np.testing.assert_array_equal(S.indptr, P.indptr)


def test_structural_zeros_are_kept_explicitly():
    """At x = 0 the off-diagonal entries of Σ exp(0.3 x_k x_{k+1}) are 0.3 ≠ 0 but the
    sin² diagonal 2 cos(2x) is kept too; at x_k = 0 for sin(x_k x_{k+1}) the diagonal is 0
    and stays in the structure."""
    x = np.zeros(50)
    S = hyperdual.hessian(lambda v: np.sum(np.sin(v[1:] * v[:-1])), x).sparse()
    assert S.nnz == 3 * 50 - 2
    np.testing.assert_array_equal(S.diagonal(), np.zeros(50))
    np.testing.assert_array_equal(S.diagonal(1), np.ones(49))


def test_blocks_of_tuple_inputs():
    def f(a, b):
        return np.sum(a[1:] * a[:-1] ** 2) + np.sum(np.exp(a[:5] * b))
    a, b = np.linspace(0.1, 1, 40), np.linspace(-1, 1, 5)
    H = hyperdual.hessian(f, (a, b))
    for i in range(2):
        for j in range(2):
            np.testing.assert_allclose(H[i][j].sparse().toarray(), H[i][j][:], rtol=1e-14, atol=1e-15)
    r, c, v = H[1][1].lower_triangle()
    np.testing.assert_array_equal(r, np.arange(5))
    with pytest.raises(ValueError, match="diagonal block"):
        H[0][1].lower_triangle()


def test_lower_triangle_is_the_cyipopt_layout():
    x = np.linspace(-1, 1, 60)
    H = hyperdual.hessian(rosen, x)
    rows, cols = H.lower_triangle(values=False)
    assert H.stats.passes == 0
    r, c, v = H.lower_triangle()
    np.testing.assert_array_equal(r, rows)
    np.testing.assert_array_equal(c, cols)
    assert (r >= c).all() and np.all(np.diff(r * 60 + c) > 0)   # row-major, lower, no repeats
    np.testing.assert_array_equal(v, H[:][r, c])


def test_a_batch_is_refused():
    H = hyperdual.hessian(lambda x: np.sum(x ** 3, axis=1), np.ones((4, 3)), batch_axis=0)
    for method in (H.sparse, H.sparsity, H.lower_triangle):
        with pytest.raises(ValueError, match="batch_axis=None"):
            method()


def test_without_scipy_the_import_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy.sparse", None)
    H = hyperdual.hessian(rosen, np.ones(5))
    with pytest.raises(ImportError, match=r"hyperdual-hessian\[sparse\]"):
        H.sparse()


def test_an_unknown_structure_beyond_the_budget_is_refused():
    n = 400
    B = np.random.default_rng(0).normal(size=(n, n))
    H = hyperdual.hessian(lambda x: np.sum(np.tanh(B @ x) ** 2), np.zeros(n), memory_budget=2 ** 20)
    with pytest.raises(ValueError, match="structure of this Hessian is unknown"):
        H.sparse()


def test_a_large_chain_matches_a_directional_pass():
    """vᵀ H w from H.sparse() against one hyper-dual evaluation seeded e1 = v, e2 = w
    (its cross lane is vᵀ H w), N = 10⁵."""
    n = 10 ** 5
    rng = np.random.default_rng(7)
    x, v, w = rng.uniform(-1, 1, n), rng.normal(size=n), rng.normal(size=n)
    H = hyperdual.hessian(rosen, x)
    S = H.sparse()
    assert H.stats.colours == 2 and S.nnz == 3 * n - 2
    y = rosen(hyperdual.HyperDual(x, v, w, np.zeros(n)))
    got, ref = v @ (S @ w), float(y.e12.reshape(-1)[0])
    assert abs(got - ref) <= 1e-12 * (np.abs(v) @ (abs(S) @ np.abs(w)))
