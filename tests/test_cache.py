"""The tiled pair cache: entries across tiles, batches, symmetry, partial fills."""
import numpy as np
import pytest

import hyperdual
from hyperdual.lazy.cache import TILE, PairCache


def cubic_chain(x):
    return np.sum(x ** 3) + np.sum(x[:-1] * x[1:]) + x[0] * x[-1]


def cubic_chain_hessian(x):
    n = x.size
    H = np.diag(6.0 * x)
    i = np.arange(n - 1)
    H[i, i + 1] += 1.0
    H[i + 1, i] += 1.0
    H[0, -1] += 1.0
    H[-1, 0] += 1.0
    return H


@pytest.mark.parametrize("n", [2 * TILE + 1, 3 * TILE + 7])
def test_full_hessian_across_tiles(n, no_colouring):
    x = np.linspace(-1.0, 1.0, n)
    H = hyperdual.hessian(cubic_chain, x)
    np.testing.assert_array_equal(H[:], cubic_chain_hessian(x))
    assert len(H._problem.cache.tiles) == (-(-n // TILE)) * (-(-n // TILE) + 1) // 2


def test_corner_entries_touch_only_their_tiles():
    n = 4 * TILE
    x = np.linspace(-1.0, 1.0, n)
    H = hyperdual.hessian(cubic_chain, x)
    assert H[0, n - 1] == 1.0 and H[n - 1, 0] == 1.0
    assert set(H._problem.cache.tiles) == {(0, 3)}
    assert H.stats.pairs_evaluated == 1
    got = H[[5, n - 2, 7], [n - 3, 5, 7]]
    np.testing.assert_array_equal(got, cubic_chain_hessian(x)[[5, n - 2, 7], [n - 3, 5, 7]])


def test_batched_across_tiles_and_sample_subsets(per_pass):
    B, n = 3, 2 * TILE + 5
    X = np.random.default_rng(1).uniform(-1, 1, (B, n))

    def f(X):
        return np.sum(X ** 3, axis=1) + np.sum(X[:, :-1] * X[:, 1:], axis=1) + X[:, 0] * X[:, -1]

    H = hyperdual.hessian(f, X, batch_axis=0)
    np.testing.assert_array_equal(H[1, 0:3, n - 3:], cubic_chain_hessian(X[1])[0:3, n - 3:])
    assert H.stats.samples_evaluated == 1
    full = H[:]
    for b in range(B):
        np.testing.assert_array_equal(full[b], cubic_chain_hessian(X[b]))


def test_lookup_of_unknown_entries_reports_them_unknown():
    c = PairCache(10, None)
    lo, hi = np.array([0, 1]), np.array([3, 4])
    values, known = c.lookup(None, lo, hi)
    assert not known.any() and (values == 0).all()
    c.store(None, lo[:1], hi[:1], np.array([[2.5]]))
    values, known = c.lookup(None, lo, hi)
    np.testing.assert_array_equal(known, [True, False])
    assert values[0] == 2.5


def test_store_all_fills_only_an_empty_one_tile_cache():
    from hyperdual.lazy.cache import PairCache
    c = PairCache(4, None)
    full = np.arange(16.0).reshape(4, 4)
    full = full + full.T
    assert c.store_all(full) == 10
    values, known = c.block(0, 4, 0, 4)
    np.testing.assert_array_equal(values, full)
    assert known.all()
    with pytest.raises(ValueError, match="empty cache of one tile"):
        c.store_all(full)
    with pytest.raises(ValueError, match="empty cache of one tile"):
        PairCache(300, None).store_all(np.zeros((300, 300)))


def test_few_entry_requests_refuse_to_return_unstored_pairs(monkeypatch):
    """The Python-list path of small requests (hyperdual.lazy.problem.Problem._few_entries) reads values back from
    the cache; a pass that stored nothing must not turn into zeros."""
    H = hyperdual.hessian(lambda x: np.sum(x ** 3), np.arange(1.0, 6.0))
    monkeypatch.setattr(H._problem.cache, "store_few", lambda lo, hi, h: None)
    with pytest.raises(RuntimeError, match="not stored"):
        H[0:2, 0:2]


def test_few_entry_requests_match_the_array_path():
    x = np.linspace(-1.0, 1.0, 300)  # several tiles
    f = lambda v: np.sum(np.sin(v[1:]) * v[:-1] ** 2)
    few = hyperdual.hessian(f, x)
    many = hyperdual.hessian(f, x)
    idx = (np.array([[0, 299], [150, 64]]), np.array([[1, 298], [149, 63]]))
    got = few[idx]                       # 4 entries: the Python-list path
    rows = np.r_[idx[0].ravel(), np.arange(40)]
    cols = np.r_[idx[1].ravel(), np.arange(40)]
    want = many[rows, cols][:4].reshape(2, 2)  # 44 entries: the array path
    np.testing.assert_array_equal(got, want)
    # closed form: d²/dx_t dx_{t+1} of sin(x_{t+1}) x_t² is 2 x_t cos(x_{t+1})
    t = np.minimum(*idx)
    np.testing.assert_allclose(got, 2 * x[t] * np.cos(x[t + 1]), rtol=1e-13)
