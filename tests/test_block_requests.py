"""Whole-block requests (``H[:]``, ``H[...]``, ``H[()]``, ``H[0][1][:, :]``):
assembled tile by tile from the cache, with structural zeros filled by tiles.

Every result is compared with the same entries asked for through integer
arrays (the entry-by-entry path) on a fresh Hessian, with closed forms where
short, and for the work done.
"""
import numpy as np
import pytest

import hyperdual
from hyperdual.lazy.cache import PairCache
from hyperdual.lazy.hessian import _whole
from hyperdual.plan.seeding import settings
from seeds import rosen


def pair_fn(a, b):
    """Couples a[k] with b[k % 7] only, plus a dense part in b."""
    return np.sum(np.sin(a) * np.cos(b[np.arange(a.size) % 7])) + np.sum(b) ** 2 + np.sum(a[:-1] * a[1:])


def _entrywise(H):
    n, m = H.shape
    return H[np.arange(n)[:, None], np.arange(m)[None, :]]


WHOLE = [np.s_[:], np.s_[...], (), np.s_[:, :], np.s_[..., :], np.s_[:, ...]]


@pytest.mark.parametrize("k", range(len(WHOLE)))
@pytest.mark.parametrize("n", [9, 200])
def test_whole_single_input(k, n, default_pattern):
    x = np.random.default_rng(n).uniform(-1.0, 1.0, n)
    got = hyperdual.hessian(rosen, x)[WHOLE[k]]
    want = _entrywise(hyperdual.hessian(rosen, x))
    assert type(got) is np.ndarray and got.shape == (n, n)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("pattern", [True, False])
def test_whole_tuple_blocks(pattern, default_pattern):
    rng = np.random.default_rng(5)
    a, b = rng.uniform(-1, 1, 150), rng.uniform(-1, 1, 40)
    if not pattern:
        settings.pattern_min_pairs = 2 ** 62
    H = hyperdual.hessian(pair_fn, (a, b))
    H[0][0][3:5, 100:102]  # something cached first
    R = hyperdual.hessian(pair_fn, (a, b))
    for i in range(2):
        for j in range(2):
            got = H[i][j][:]
            np.testing.assert_allclose(got, _entrywise(R[i][j]), rtol=1e-14, atol=1e-14)
    np.testing.assert_array_equal(H[0][1][:], H[1][0][...].T)
    if pattern:
        assert H[0][0].stats.structural_zeros > 0
    else:
        assert H[0][0].stats.structural_zeros == 0
    # closed form of the a-a block: diag(-sin(a) cos(b[k % 7])) + the chain a[k] a[k+1]
    want = np.diag(-np.sin(a) * np.cos(b[np.arange(a.size) % 7]))
    want[np.arange(149), np.arange(1, 150)] += 1.0
    want[np.arange(1, 150), np.arange(149)] += 1.0
    np.testing.assert_allclose(H[0][0][:], want, rtol=1e-14, atol=1e-15)


def test_whole_block_result_is_a_copy(default_pattern):
    H = hyperdual.hessian(rosen, np.linspace(-1, 1, 30))
    R = H[:]
    R[0, 0] = 1e9
    assert H[:][0, 0] != 1e9 and H[0, 0] != 1e9


def test_whole_block_after_partial_requests_runs_only_the_rest(default_pattern):
    x = np.linspace(-1.0, 1.0, 300)
    H = hyperdual.hessian(rosen, x)
    H[0:10, 0:10]
    evaluated = H.stats.pairs_evaluated
    full = H[:]
    assert H.stats.pairs_evaluated - evaluated == 2 * 300 - 1 - (2 * 10 - 1)  # the band, minus known
    np.testing.assert_array_equal(full, _entrywise(hyperdual.hessian(rosen, x)))
    assert H.stats.entries_cached == 300 * 301 // 2


def test_fill_zeros_marks_only_unknown_upper_entries():
    c = PairCache(200, None)
    c.store(None, np.array([3, 70]), np.array([5, 150]), np.array([[2.0], [4.0]]))
    filled = c.fill_zeros(0, 200, 0, 200)
    assert filled == 200 * 201 // 2 - 2
    values, known = c.block(0, 200, 0, 200)
    assert known.all()
    assert values[3, 5] == values[5, 3] == 2.0 and values[70, 150] == values[150, 70] == 4.0
    assert np.count_nonzero(values) == 4
    assert c.fill_zeros(0, 200, 0, 200) == 0


def test_block_of_an_empty_cache():
    values, known = PairCache(50, None).block(10, 5, 20, 7)
    assert values.shape == known.shape == (5, 7) and not known.any() and not values.any()


@pytest.mark.parametrize("index, whole", [
    (slice(None), True), (Ellipsis, True), ((), True), ((slice(None), slice(None)), True),
    ((Ellipsis, slice(None)), True), ((slice(None), Ellipsis), True),
    (slice(0, None), False), (slice(None, None, -1), False), ((slice(None),) * 3, False),
    ((Ellipsis, Ellipsis), False), (0, False), (np.arange(3), False), ((None, slice(None)), False),
])
def test_whole_index_detection(index, whole):
    assert _whole(index) is whole


@pytest.mark.parametrize("index", [np.s_[0:0], np.s_[5:5, 0:3], np.s_[[], []], np.s_[:0, :],
                                   np.s_[np.zeros(0, int)], np.s_[3:1, ::-1]])
def test_empty_requests_on_a_cache_with_tiles(index):
    H = hyperdual.hessian(rosen, np.linspace(-1.0, 1.0, 300))  # several tiles
    H[0:2, 0:2]
    want = np.zeros((300, 300))[index]
    got = H[index]
    assert got.shape == want.shape and got.dtype == np.float64
    assert H.stats.pairs_evaluated == 3


def _multi_tile_indexes():
    from test_hessian import INDEXES
    return [(name, index) for name, index in INDEXES if "bool" not in name]


@pytest.mark.parametrize("name, index", _multi_tile_indexes(), ids=[n for n, _ in _multi_tile_indexes()])
def test_indexing_equals_numpy_on_several_tiles(name, index, default_pattern):
    from seeds import rosen_hessian
    x = np.linspace(-1.0, 1.2, 300)
    want = rosen_hessian(x)[index]
    H = hyperdual.hessian(rosen, x)
    H[100:140, 60:140]  # tiles cached first (with the sparsity pattern: 3200 entries)
    got = H[index]
    assert type(got) is type(want) and np.shape(got) == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-9)
    np.testing.assert_allclose(H[index], want, rtol=1e-13, atol=1e-9)
