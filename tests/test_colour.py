"""Colouring inputs for compressed Hessian passes (hyperdual.plan.colour).

Every colouring is checked to be valid (the inputs of each support differ), the
colour counts of the structured cases against their known optimum, and one pass
seeded with the colour indicators against the dense Hessian: every entry of
every element comes back exactly.
"""
import numpy as np
import pytest

import hyperdual
from hyperdual.plan.colour import ORDERS, Colouring, colour_inputs, conflicts


def _valid(colouring: Colouring, supports):
    for s in supports:
        c = colouring.colours[list(s)]
        assert np.unique(c).size == len(set(s)), (s, c)


def _chain(n):
    return [(k, k + 1) for k in range(n - 1)]


def _arrowhead(n):
    return [(0, k) for k in range(1, n)]


def _grid_edges(nx, ny):
    idx = np.arange(nx * ny).reshape(ny, nx)
    return [tuple(p) for p in np.stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()], 1)] + \
        [tuple(p) for p in np.stack([idx[:-1].ravel(), idx[1:].ravel()], 1)]


def _stencil(nx, ny):
    idx = np.arange(nx * ny).reshape(ny, nx)
    out = []
    for y in range(1, ny - 1):
        for x in range(1, nx - 1):
            out.append((idx[y, x], idx[y, x - 1], idx[y, x + 1], idx[y - 1, x], idx[y + 1, x]))
    return out


def _blocks(n, b):
    return [tuple(range(k, min(k + b, n))) for k in range(0, n, b)]


@pytest.mark.parametrize("case,supports,n,most", [
    ("chain", _chain(50), 50, 2),
    ("arrowhead", _arrowhead(40), 40, 2),
    ("grid edges", _grid_edges(12, 9), 108, 3),
    ("5-point stencil", _stencil(12, 10), 120, 5),
    ("dense blocks", _blocks(30, 4), 30, 4),
    ("one element", [tuple(range(7))], 7, 7),
])
def test_structured_colour_counts(case, supports, n, most):
    c = colour_inputs(supports, n)
    _valid(c, supports)
    assert c.count <= most, (case, c)
    if case in ("chain", "arrowhead", "dense blocks", "one element"):
        assert c.count == most  # (the optimum: a support of that size needs as many)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("order", ORDERS)
def test_every_order_gives_a_valid_colouring(seed, order):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    supports = [rng.choice(n, size=int(rng.integers(1, min(n, 5) + 1)), replace=False)
                for _ in range(int(rng.integers(0, 40)))]
    c = colour_inputs(supports, n, orders=(order,))
    assert c.order == order and c.colours.shape == (n,)
    _valid(c, [s.tolist() for s in supports])
    largest = max((len(s) for s in supports), default=1)
    degree = max((nb.size for nb in conflicts(supports, n)), default=0)
    assert largest <= c.count <= degree + 1  # (no fewer than a support; greedy's bound)


def test_the_portfolio_keeps_the_fewest_colours():
    # A crown graph (i ~ j' for i != j): the natural order interleaved badly needs n colours,
    # largest-first or smallest-last fewer; the kept colouring is the best of those tried.
    n = 6
    supports = [(2 * i, 2 * j + 1) for i in range(n) for j in range(n) if i != j]
    tried = {o: colour_inputs(supports, 2 * n, orders=(o,)).count for o in ORDERS}
    best = colour_inputs(supports, 2 * n)
    assert tried["natural"] == n
    assert best.count == min(tried.values()) and tried[best.order] == best.count
    _valid(best, supports)


def test_indicators_and_errors():
    c = colour_inputs(_chain(4), 4)
    np.testing.assert_array_equal(c.indicators(), [[1, 0, 1, 0], [0, 1, 0, 1]])
    assert "count=2" in repr(c)
    assert colour_inputs([], 3).count == 1 and colour_inputs([], 0).count == 0
    indptr, indices = np.array([0, 2, 4]), np.array([0, 1, 1, 2])
    assert colour_inputs((indptr, indices), 3).colours.tolist() == [0, 1, 0]
    with pytest.raises(ValueError, match="a support names an input outside 0 .. 2"):
        colour_inputs([(0, 3)], 3)
    with pytest.raises(ValueError, match="indptr must start at 0"):
        colour_inputs((np.array([0, 3]), np.array([0, 1])), 3)
    with pytest.raises(ValueError, match="order must be one of natural, largest_first, smallest_last"):
        colour_inputs(_chain(3), 3, orders=("random",))
    with pytest.raises(ValueError, match="orders is empty"):
        colour_inputs(_chain(3), 3, orders=())


@pytest.mark.parametrize("n", [2, 3, 17])
def test_one_coloured_pass_recovers_every_element_exactly(n):
    """Rosenbrock's elements ``t_k(x_k, x_{k+1})`` seeded with the colour indicators
    (``e1 = e2 = S``, every colour pair): each cross row is one entry of one element,
    and their sum is the dense Hessian, to the bits of a per-pair evaluation's scale."""
    rng = np.random.default_rng(n)
    x = rng.uniform(-1.5, 1.5, n)
    supports = _chain(n)
    c = colour_inputs(supports, n)
    S = c.indicators()
    ip, jp = np.triu_indices(c.count)
    row = {(a, b): p for p, (a, b) in enumerate(zip(ip.tolist(), jp.tolist()))}
    xd = hyperdual.HyperDual(x, S, S, None, pairs=(ip, jp))
    t = 100.0 * (xd[1:] - xd[:-1] ** 2) ** 2 + (1.0 - xd[:-1]) ** 2
    e12 = t.e12
    H = np.zeros((n, n))
    for k, (i, j) in enumerate(supports):
        a, b = c.colours[i], c.colours[j]
        H[i, i] += e12[row[(a, a)], k]
        H[j, j] += e12[row[(b, b)], k]
        off = e12[row[(min(a, b), max(a, b))], k]
        H[i, j] += off
        H[j, i] += off

    def rosen(v):
        return np.sum(100.0 * (v[1:] - v[:-1] ** 2) ** 2 + (1.0 - v[:-1]) ** 2)
    want = hyperdual.hessian(rosen, x)[:]
    np.testing.assert_allclose(H, want, rtol=1e-14, atol=1e-12)
    assert c.count == (1 if n == 1 else 2) and len(ip) == 3


@pytest.mark.parametrize("seed", range(6))
def test_the_numba_greedy_kernel_matches_the_python_loop(seed, monkeypatch):
    from hyperdual.plan import colour
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 300))
    supports = [rng.choice(n, size=int(rng.integers(1, min(n, 6) + 1)), replace=False)
                for _ in range(int(rng.integers(1, 200)))]
    adj, cols, _ = colour._adjacency(supports, n)
    order = rng.permutation(n)
    monkeypatch.setattr(colour, "kernels_loaded", lambda: False)
    monkeypatch.setattr(colour, "KERNEL_MIN", 10 ** 9)
    python = colour._greedy(order, adj, cols)
    monkeypatch.setattr(colour, "KERNEL_MIN", 0)
    kernel = colour._greedy(order, adj, cols)
    np.testing.assert_array_equal(kernel, python)
    assert (python >= 0).all()


def test_an_unknown_order_is_refused_even_after_an_optimal_one():
    with pytest.raises(ValueError, match="order must be one of"):
        colour_inputs([(0, 1), (1, 2)], 3, orders=("natural", "random"))


@pytest.mark.parametrize("seed", range(6))
def test_the_numba_smallest_last_order_matches_the_python_twin(seed, monkeypatch):
    from hyperdual.plan import colour
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 300))
    supports = [rng.choice(n, size=int(rng.integers(1, min(n, 6) + 1)), replace=False)
                for _ in range(int(rng.integers(1, 200)))]
    adj, cols, _ = colour._adjacency(supports, n)
    degree = np.diff(adj)
    monkeypatch.setattr(colour, "kernels_loaded", lambda: False)
    monkeypatch.setattr(colour, "KERNEL_MIN", 10 ** 9)
    python = colour._order("smallest_last", degree, adj, cols)
    monkeypatch.setattr(colour, "KERNEL_MIN", 0)
    kernel = colour._order("smallest_last", degree, adj, cols)
    np.testing.assert_array_equal(kernel, python)
    np.testing.assert_array_equal(np.sort(python), np.arange(n))


@pytest.mark.parametrize("seed", range(4))
def test_the_numba_natural_greedy_on_supports_matches_the_adjacency_greedy(seed, monkeypatch):
    from hyperdual.plan import colour
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 300))
    supports = [rng.choice(n, size=int(rng.integers(1, min(n, 6) + 1)), replace=False)
                for _ in range(int(rng.integers(1, 200)))]
    monkeypatch.setattr(colour, "kernels_loaded", lambda: False)
    monkeypatch.setattr(colour, "KERNEL_MIN", 10 ** 9)
    python = colour_inputs(supports, n, orders=("natural",))
    monkeypatch.setattr(colour, "KERNEL_MIN", 0)
    kernel = colour_inputs(supports, n, orders=("natural",))
    np.testing.assert_array_equal(kernel.colours, python.colours)
    assert kernel.count == python.count
