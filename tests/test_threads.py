"""Long lane operations split over threads give the same bits as one thread, and the
threads' settings reject bad values."""
import multiprocessing
import os

import numpy as np
import pytest

import hyperdual
from hyperdual import HyperDual
from hyperdual.execute import lanes, packed, threads

RNG = np.random.default_rng(11)


@pytest.fixture(autouse=True)
def keep_thread_count():
    before = hyperdual.get_num_threads()
    yield
    hyperdual.set_num_threads(before)


@pytest.fixture
def small_split(monkeypatch):
    """Split calls of a few hundred elements (the real thresholds need millions of entries),
    with ranges that are not multiples of the kernels' block.
    Packed paths off: arrays this short would take them, and they never split (packed
    lanes hold under 2**14 entries, the real threshold is 2**19)."""
    for name in ("kernels", "ranges", "ready"):  # (HYPERDUAL_TEST_KERNELS=numpy: restored after)
        monkeypatch.setattr(lanes._Choice, name, getattr(lanes._Choice, name))
    hyperdual.load_kernels()
    monkeypatch.setattr(packed.switch, "on", False)
    monkeypatch.setattr(threads, "MIN_ENTRIES", 64)
    monkeypatch.setattr(threads, "MIN_CHUNK", 97)


def all_pairs(k1, k2):
    ip, jp = np.meshgrid(np.arange(k1), np.arange(k2), indexing="ij")
    return ip.ravel(), jp.ravel()


def operand(n, k1, k2, shared, value=None):
    ip, jp = all_pairs(k1, k2)
    v = RNG.uniform(0.2, 2.0, n) if value is None else value
    e1 = RNG.standard_normal((k1, n))
    e2 = e1 if shared else RNG.standard_normal((k2, n))
    return HyperDual(v, e1, e2, RNG.standard_normal((ip.size, n)), pairs=(ip, jp))  # (e2 is e1: shared)


def lanes_of(x):
    return [x.value, x.e1, x.e2, x.e12]


def same_bits(a, b):
    for u, v in zip(lanes_of(a), lanes_of(b)):
        np.testing.assert_array_equal(u, v)  # (NaN equals NaN here)


OPS = {
    "x * y": lambda x, y: x * y,
    "sin": lambda x, y: np.sin(x),
    "sqrt": lambda x, y: np.sqrt(x),
    "x ** 3": lambda x, y: x ** 3,
    "deg2rad": lambda x, y: np.deg2rad(x),  # a constant g', no g''
    "exp(x) * y": lambda x, y: np.exp(x) * y,
}


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("k1,k2,shared", [(1, 1, False), (3, 2, False), (3, 3, True)])
@pytest.mark.parametrize("count", [2, 3])
def test_threads_give_the_same_bits(small_split, op, k1, k2, shared, count):
    n = 1000
    value = RNG.uniform(0.2, 2.0, n)
    value[[0, 333, 334, 999]] = [0.0, np.nan, np.inf, 1e300]  # edges, in different ranges
    x = operand(n, k1, k2, shared, value)
    y = operand(n, k1, k2, shared)
    y._ctx = x._ctx
    with np.errstate(all="ignore"):
        hyperdual.set_num_threads(1)
        want = OPS[op](x, y)
        hyperdual.set_num_threads(count)
        calls = []
        real = threads.split_call
        threads.split_call = lambda *a: calls.append(a[2:]) or real(*a)
        try:
            got = OPS[op](x, y)
        finally:
            threads.split_call = real
    assert calls, "the operation did not reach the threaded path"
    same_bits(got, want)
    if op == "x * y":  # and the product rule itself, written out
        ip, jp = x._ctx.ip, x._ctx.jp
        ok = np.isfinite(value) & (value < 1e300)
        cross = (y.value * x.e12 + x.value * y.e12 + x.e1[ip] * y.e2[jp] + y.e1[ip] * x.e2[jp])
        np.testing.assert_allclose(got.e12[:, ok], cross[:, ok], rtol=1e-13)
        assert np.isnan(got.e12[:, 333]).all()


def test_split_ranges_cover_every_element_once(small_split):
    hyperdual.set_num_threads(3)
    seen = []

    def kernel(tag, lo, hi):
        seen.append((tag, lo, hi))

    assert threads.split_call(kernel, ("t",), 1000, 4)
    bounds = sorted((lo, hi) for _, lo, hi in seen)
    assert bounds[0][0] == 0 and bounds[-1][1] == 1000
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    assert len(bounds) == 3 and all(hi - lo >= threads.MIN_CHUNK for lo, hi in bounds)


def test_small_calls_and_one_thread_are_not_split(small_split):
    ran = []
    hyperdual.set_num_threads(2)
    assert not threads.split_call(lambda lo, hi: ran.append(1), (), 150, 1)  # < 2 chunks
    assert not threads.split_call(lambda lo, hi: ran.append(1), (), 1000, 0)  # < MIN_ENTRIES
    hyperdual.set_num_threads(1)
    assert not threads.split_call(lambda lo, hi: ran.append(1), (), 10 ** 6, 10)
    assert ran == []


def test_an_error_in_a_range_reaches_the_caller(small_split):
    hyperdual.set_num_threads(2)

    def kernel(lo, hi):
        if lo > 0:
            raise RuntimeError(f"range {lo}:{hi}")

    with pytest.raises(RuntimeError, match="range 500:1000"):
        threads.split_call(kernel, (), 1000, 4)


@pytest.mark.skipif(os.environ.get("HYPERDUAL_TEST_THREADS") == "small",
                    reason="HYPERDUAL_TEST_THREADS=small lowers the thresholds on purpose")
def test_real_thresholds():
    """The defaults split only long calls: 2 x 2**14 elements and 2**19 output lane entries."""
    assert threads.MIN_ENTRIES == 2 ** 19 and threads.MIN_CHUNK == 2 ** 14
    hyperdual.set_num_threads(2)
    assert not threads.split_call(lambda lo, hi: None, (), 2 ** 15 - 1, 100)
    assert not threads.split_call(lambda lo, hi: None, (), 10 ** 5, 5)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2", None])
def test_set_num_threads_rejects(bad):
    with pytest.raises(ValueError, match="positive int"):
        hyperdual.set_num_threads(bad)


@pytest.mark.parametrize("text,want", [("3", 3), ("1", 1), ("0", None), ("-2", None), ("two", None)])
def test_thread_count_from_the_environment(monkeypatch, text, want):
    monkeypatch.setenv("HYPERDUAL_NUM_THREADS", text)
    if want is None:
        with pytest.raises(ValueError, match="HYPERDUAL_NUM_THREADS"):
            threads._default_threads()
    else:
        assert threads._default_threads() == want


def test_default_thread_count(monkeypatch):
    monkeypatch.delenv("HYPERDUAL_NUM_THREADS", raising=False)
    assert threads._default_threads() == max(1, min(len(os.sched_getaffinity(0)), 8))


def _product_in_child(queue):
    x = operand(1000, 2, 2, False)
    y = operand(1000, 2, 2, False)
    y._ctx = x._ctx
    ip, jp = x._ctx.ip, x._ctx.jp
    want = y.value * x.e12 + x.value * y.e12 + x.e1[ip] * y.e2[jp] + y.e1[ip] * x.e2[jp]
    queue.put(bool(np.allclose((x * y).e12, want, rtol=1e-13, atol=0)))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_a_forked_child_starts_its_own_threads(small_split):
    hyperdual.set_num_threads(2)
    threads.split_call(lambda lo, hi: None, (), 1000, 4)  # the parent's executor exists
    assert threads._State.executor is not None
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_product_in_child, args=(queue,))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert queue.get(timeout=5) is True


def test_hessian_with_threads_equals_one_thread(small_split, no_windows):
    """A whole Hessian request whose passes take the threaded kernels."""
    def f(x):
        return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2) + np.sum(np.sin(x) * x)

    x0 = np.linspace(-1.0, 1.5, 600)
    hyperdual.set_num_threads(1)
    want = hyperdual.hessian(f, x0)[0:3, 0:3]
    hyperdual.set_num_threads(2)
    calls = []
    real = threads.split_call
    threads.split_call = lambda *a: calls.append(a[2:]) or real(*a)
    try:
        got = hyperdual.hessian(f, x0)[0:3, 0:3]
    finally:
        threads.split_call = real
    assert len(calls) >= 4  # the squares, sin and the product
    np.testing.assert_array_equal(got, want)
    h = np.zeros((3, 3))  # closed form
    for i in range(3):
        h[i, i] = 1200 * x0[i] ** 2 - 400 * x0[i + 1] + 2 + (200 if i > 0 else 0) \
            + 2 * np.cos(x0[i]) - x0[i] * np.sin(x0[i])
    for i in range(2):
        h[i, i + 1] = h[i + 1, i] = -400 * x0[i]
    np.testing.assert_allclose(got, h, rtol=1e-12)


def test_callers_on_several_threads_share_the_executor(small_split):
    """Four user threads splitting their own calls at once: each gets its own, right result."""
    import threading as th

    xs = [operand(1000, 2, 2, False) for _ in range(4)]
    hyperdual.set_num_threads(1)
    want = [np.sin(x) * x for x in xs]
    hyperdual.set_num_threads(3)
    got = [None] * 4

    def work(k):
        for _ in range(20):
            got[k] = np.sin(xs[k]) * xs[k]

    workers = [th.Thread(target=work, args=(k,)) for k in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    for g, w in zip(got, want):
        same_bits(g, w)


def test_threaded_product_value_keeps_numpys_flags(small_split):
    """The value of a long x * y is computed in the threaded kernel; where NumPy would warn
    or raise (overflow here), NumPy recomputes it, so errstate acts as on plain arrays."""
    hyperdual.set_num_threads(2)
    value = RNG.uniform(0.5, 2.0, 1000)
    value[700] = 1e300
    x = operand(1000, 2, 2, False, value)
    y = operand(1000, 2, 2, False, value.copy())
    y._ctx = x._ctx
    with pytest.warns(RuntimeWarning, match="overflow"):
        z = x * y
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(z.value, value * value)
    with np.errstate(over="raise"), pytest.raises(FloatingPointError):
        x * y
    calm = operand(1000, 2, 2, False)
    hyperdual.set_num_threads(1)
    want = calm * calm
    hyperdual.set_num_threads(2)
    same_bits(calm * calm, want)


def test_threaded_product_when_the_split_does_not_happen(small_split, monkeypatch):
    """If the thread count changes between the check and the split, the value and lanes
    are still computed (by NumPy and the one-thread kernel)."""
    hyperdual.set_num_threads(2)
    x = operand(1000, 2, 2, False)
    hyperdual.set_num_threads(1)
    want = x * x
    hyperdual.set_num_threads(2)
    monkeypatch.setattr(threads, "split_call", lambda *a: None)
    same_bits(x * x, want)
