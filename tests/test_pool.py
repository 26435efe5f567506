"""Recycled kernel outputs (hyperdual.execute.pool.empty): a buffer is handed out again
only when nothing but the pool references it, so live arrays never change."""
import threading

import numpy as np

import hyperdual
from hyperdual import HyperDual
from hyperdual.execute import pool

BIG = pool.POOL_MIN_ENTRIES


def test_buffer_reused_only_when_unreferenced():
    shape = (3, BIG)
    a = pool.empty(shape, 3 * BIG)
    held = pool.empty(shape, 3 * BIG)
    assert held is not a  # a is still referenced here
    ident = id(a)
    del a
    again = pool.empty(shape, 3 * BIG)
    assert id(again) == ident  # recycled
    view = again[1]
    del again
    other = pool.empty(shape, 3 * BIG)
    assert other.base is None and not np.shares_memory(other, view)  # a view keeps it alive
    small = pool.empty((2, 3), 6)
    assert small is not pool.empty((2, 3), 6)  # small buffers are never pooled


def test_pool_is_bounded_per_shape(monkeypatch):
    monkeypatch.setattr(pool._Pool, "buffers", {})  # an empty pool (earlier tests may have filled it)
    monkeypatch.setattr(pool._Pool, "nbytes", 0)
    shape = (5, BIG + 1)
    held = [pool.empty(shape, 5 * (BIG + 1)) for _ in range(6)]
    assert len(pool._Pool.buffers[shape]) == 4
    assert len({id(h) for h in held}) == 6
    assert pool._Pool.nbytes == 4 * held[0].nbytes <= pool.POOL_MAX_BYTES


def test_pool_is_bounded_in_bytes(monkeypatch):
    monkeypatch.setattr(pool._Pool, "buffers", {})
    monkeypatch.setattr(pool._Pool, "nbytes", 0)
    monkeypatch.setattr(pool, "pool_limit", lambda: 8 * BIG * 2)
    a = pool.empty((1, BIG), BIG)
    b = pool.empty((3, BIG), 3 * BIG)  # larger than the limit alone: handed out, not pooled
    assert len(pool._Pool.buffers[(1, BIG)]) == 1 and pool._Pool.buffers[(3, BIG)] == []
    assert a.shape == (1, BIG) and b.shape == (3, BIG)
    assert pool._Pool.nbytes == a.nbytes


def test_pool_drops_the_least_recently_requested_shapes(monkeypatch):
    monkeypatch.setattr(pool._Pool, "buffers", {})
    monkeypatch.setattr(pool._Pool, "nbytes", 0)
    monkeypatch.setattr(pool, "pool_limit", lambda: 8 * BIG * 4)
    a = pool.empty((1, BIG), BIG)
    b = pool.empty((1, BIG + 1), BIG + 1)
    again = pool.empty((1, BIG), BIG)  # (1, BIG) is now the most recent shape
    assert again is not a
    c = pool.empty((1, BIG + 2), BIG + 2)  # no room: (1, BIG + 1) goes first
    assert list(pool._Pool.buffers) == [(1, BIG), (1, BIG + 2)]
    assert pool._Pool.nbytes == a.nbytes + again.nbytes + c.nbytes <= 8 * BIG * 4
    del a
    assert pool.empty((1, BIG), BIG) is pool._Pool.buffers[(1, BIG)][0]  # still recycled
    assert b.shape == (1, BIG + 1)  # a dropped buffer in use stays valid


def test_pool_limit_follows_the_memory_budget(monkeypatch):
    from hyperdual.plan.seeding import settings
    monkeypatch.setattr(settings, "memory_budget", 2 ** 30)
    assert pool.pool_limit() == 2 ** 29
    monkeypatch.setattr(settings, "memory_budget", 2 ** 20)
    assert pool.pool_limit() == pool.POOL_MAX_BYTES


def _seeded(n, k=2):
    x = np.linspace(0.1, 2.0, n)
    e1 = np.zeros((k, n))
    e1[0, :] = 1.0
    e1[1, ::2] = 1.0
    return HyperDual(x, e1=e1, e2=e1)


def test_live_results_keep_their_lanes():
    x = _seeded(BIG * 2)
    y = np.sin(x)
    saved = (y.e1.copy(), y.e12.copy())
    for _ in range(5):  # produce and drop many results of the same shape
        np.cos(x) * np.exp(x)
    np.testing.assert_array_equal(y.e1, saved[0])
    np.testing.assert_array_equal(y.e12, saved[1])
    np.testing.assert_allclose(y.e1[0], np.cos(x.value), rtol=1e-15)


def test_threads_with_large_lanes_give_correct_hessians():
    X = np.random.default_rng(2).uniform(0.5, 1.5, (4000, 3))

    def f(X):
        return np.sum(np.exp(X) * np.sin(X), axis=1)

    want = np.exp(X) * 2 * np.cos(X)  # (e^x sin x)'' = 2 e^x cos x
    results, errors = [], []

    def work():
        try:
            for _ in range(3):
                H = hyperdual.hessian(f, X, batch_axis=0)[:]
                results.append(np.diagonal(H, axis1=1, axis2=2).copy())
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)
    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 9
    for r in results:
        np.testing.assert_allclose(r, want, rtol=1e-13)


def test_forked_child_starts_with_an_empty_pool():
    import os
    import sys
    if not hasattr(os, "fork") or sys.platform == "win32":  # pragma: no cover
        return
    pool.empty((2, BIG), 2 * BIG)
    assert pool._Pool.nbytes > 0
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report the pool state and leave at once
        os.write(w, f"{pool._Pool.nbytes} {len(pool._Pool.buffers)}".encode())
        os._exit(0)
    os.close(w)
    report = os.read(r, 100).decode()
    os.waitpid(pid, 0)
    assert report == "0 0"


def test_heap_is_prepared_once_for_lane_sized_temporaries(monkeypatch):
    """The first large request maps and frees one block (glibc then serves lane-sized
    temporaries from its heap); later ones do not, and small requests never do."""
    calls = []
    real = pool._heap_for_lanes
    monkeypatch.setattr(pool._Pool, "heap_ready", False)
    monkeypatch.setattr(pool, "_heap_for_lanes", lambda: (calls.append(1), real()))
    pool.empty((2, 3), 6)
    assert calls == [] and not pool._Pool.heap_ready
    a = pool.empty((1, BIG), BIG)
    b = pool.empty((1, BIG), BIG)
    assert calls == [1] and pool._Pool.heap_ready
    assert a.shape == b.shape == (1, BIG) and a is not b
