"""Batched requests: the per-sample block path, the independence check, and the
short-axis sum and product.

``H[:]``-like requests (one block repeated for every sample touched) are
computed per pair, not per (sample, pair); every result is compared with the
entry-by-entry path (``H[b, i, j]`` one at a time) and with closed forms.
"""
import numpy as np
import pytest

import hyperdual

# The paths of a function called per pass (a record replays every sample: tests/test_trace.py).
pytestmark = pytest.mark.usefixtures("per_pass")

B, N = 12, 3


def f(X):
    return np.sum(np.exp(X) * np.cos(X), axis=1) + np.prod(X, axis=1)


def f_hessian(x):
    """Closed form of one sample's Hessian of ``sum(exp(x) cos(x)) + prod(x)``."""
    d = np.exp(x) * (-2.0 * np.sin(x))  # (e^x cos x)'' = -2 e^x sin x
    H = np.diag(d)
    for i in range(3):
        for j in range(3):
            if i != j:
                H[i, j] += np.prod(np.delete(x, [i, j]))
    return H


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(7).uniform(-1.0, 1.0, (B, N))


def test_full_batch_matches_closed_form(X):
    H = hyperdual.hessian(f, X, batch_axis=0)
    got = H[:]
    want = np.stack([f_hessian(x) for x in X])
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)
    # one evaluation of the check's samples alone when H was made (its value call), one
    # pass: the full batch's values come from the pass and are compared with the subset's
    assert H.stats.function_calls == 2 and H.stats.passes == 1
    np.testing.assert_allclose(H.value, f(X), rtol=1e-15)
    assert H.stats.function_calls == 2


INDEXES = [np.s_[:], np.s_[...], np.s_[2:9, 1], np.s_[::-3, :, 0], np.s_[5], np.s_[None, 3:5],
           np.s_[:, [0, 2], 1], np.s_[[1, 4, 4], 0, 2], np.s_[-1, ::-1, ::2], np.s_[3:3],
           np.s_[np.arange(B) % 2 == 0], np.s_[..., None, 1]]


@pytest.mark.parametrize("k", range(len(INDEXES)))
def test_indexing_equals_numpy(X, k):
    index = INDEXES[k]
    want = np.stack([f_hessian(x) for x in X])[index]
    got = hyperdual.hessian(f, X, batch_axis=0)[index]
    assert np.shape(got) == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)


def test_partly_cached_then_everything(X):
    H = hyperdual.hessian(f, X, batch_axis=0)
    first = H[3]  # sample 3 alone
    assert H.stats.samples_evaluated == 1
    full = H[:]  # the rest: known entries are not recomputed wrongly
    np.testing.assert_allclose(full[3], first, rtol=0, atol=0)
    np.testing.assert_allclose(full, np.stack([f_hessian(x) for x in X]), rtol=1e-13, atol=1e-14)


def test_subset_of_samples_runs_only_those(X):
    H = hyperdual.hessian(f, X, batch_axis=0)
    got = H[2:5, 0, :]
    np.testing.assert_allclose(got, np.stack([f_hessian(x)[0] for x in X[2:5]]), rtol=1e-13)
    assert H.stats.samples_evaluated == 3


COUPLED = {
    "batch-mean": lambda X: np.sum(X ** 2, axis=1) - np.mean(X[:, 0]),
    "reversal": lambda X: X[:, 0] * X[::-1, 1],
    "shift": lambda X: X[:, 0] ** 2 * np.roll(X[:, 1], 1),
    "cumsum": lambda X: np.cumsum(X[:, 0]) * X[:, 1],
    "sort": lambda X: np.sort(X[:, 0]) * X[:, 2],
}


# The same couplings behind a transpose, which the batch rules of a record do not follow:
# the comparison of the check's samples with the full batch finds them.
VIA_TRANSPOSE = {
    "batch-mean": lambda X: np.sum(X ** 2, axis=1) - np.mean(X.T[0]),
    "reversal": lambda X: X[:, 0] * X.T[1, ::-1],
    "shift": lambda X: X[:, 0] ** 2 * np.roll(X.T[1], 1),
    "cumsum": lambda X: np.cumsum(X.T[0]) * X[:, 1],
    "sort": lambda X: np.sort(X.T[0]) * X[:, 2],
}
WORDS = {"batch-mean": "numpy.mean over the batch axis", "reversal": r"indexing \[::-1, 1\] selects",
         "shift": "numpy.roll over the batch axis", "cumsum": "numpy.cumsum over the batch axis",
         "sort": "numpy.sort over the batch axis"}


@pytest.mark.parametrize("name", sorted(COUPLED))
def test_coupled_samples_are_refused_by_the_value_call_record(X, name):
    calls = []

    def f(A):
        calls.append(A.shape)
        return COUPLED[name](A)
    with pytest.raises(ValueError, match="the samples must be independent, but " + WORDS[name]):
        hyperdual.hessian(f, X, batch_axis=0)
    assert calls == [(4, X.shape[1])]  # the check's samples, recorded: one call


@pytest.mark.parametrize("name", sorted(VIA_TRANSPOSE))
def test_coupled_samples_are_refused_in_one_small_evaluation(X, name):
    H = hyperdual.hessian(VIA_TRANSPOSE[name], X, batch_axis=0)
    with pytest.raises(ValueError, match="the samples must be independent"):
        H[:]
    assert H.stats.passes == 0 and H.stats.function_calls == 2


def test_output_not_following_the_batch_gives_no_verdict():
    H = hyperdual.hessian(lambda X: np.zeros(10), np.ones((10, 2)), batch_axis=0)
    np.testing.assert_array_equal(H[:], np.zeros((10, 2, 2)))


def test_independence_check_leaving_the_domain_gives_no_verdict():
    X = np.linspace(0.5, 2.0, 20).reshape(10, 2)

    def g(X):  # raises on any subset: the check has no verdict, the passes still run
        if len(X) < 10:
            raise ValueError("needs the whole batch")
        return np.sum(np.log(X), axis=1)
    H = hyperdual.hessian(g, X, batch_axis=0)
    want = np.stack([np.diag(-1.0 / x ** 2) for x in X])
    np.testing.assert_allclose(H[:], want, rtol=1e-14)


@pytest.mark.parametrize("m", [2, 3, 5, 8, 9])
def test_short_axis_sum_and_prod_on_long_lanes(m):
    rng = np.random.default_rng(m)
    X = rng.uniform(0.5, 1.5, (2000, m))  # lanes above 4096 elements: the slice path

    def g(X):
        return np.sum(X ** 3, axis=1) + np.prod(X, axis=1) + np.sum(np.sin(X), axis=-1, keepdims=True)[:, 0]
    got = hyperdual.hessian(g, X, batch_axis=0)[:]
    want = np.zeros((2000, m, m))
    for i in range(m):
        want[:, i, i] = 6 * X[:, i] - np.sin(X[:, i])
        for j in range(m):
            if i != j:
                want[:, i, j] += np.prod(np.delete(X, [i, j], axis=1), axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)


def test_short_axis_prod_value_is_numpys():
    X = np.random.default_rng(1).uniform(-3.0, 3.0, (50, 7))
    H = hyperdual.hessian(lambda X: np.prod(X, axis=1), X, batch_axis=0)
    np.testing.assert_array_equal(H.value, np.prod(X, axis=1))


# ---- H[:] of a batched single input on a fresh cache: one pass, gathered -------------------
@pytest.mark.parametrize("index", [slice(None), Ellipsis, (), (slice(None),) * 3, (Ellipsis, slice(None))])
def test_whole_batched_request_is_one_pass(X, index):
    H = hyperdual.hessian(f, X, batch_axis=0)
    got = H[index]
    want = np.stack([f_hessian(x) for x in X])
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)
    st = H.stats
    assert st.passes == 1 and st.pairs_evaluated == 6 and st.entries_cached == 6 * B
    # everything is cached: entry by entry, mirrored, per sample, nothing runs
    for b, i, j in [(0, 0, 1), (B - 1, 2, 0), (5, 1, 1)]:
        assert H[b, i, j] == got[b, i, j] == got[b, j, i]
    np.testing.assert_array_equal(H[3], got[3])
    assert H.stats.passes == 1
    np.testing.assert_allclose(H.gradient, np.exp(X) * (np.cos(X) - np.sin(X))
                               + np.stack([[np.prod(np.delete(x, k)) for k in range(3)] for x in X]),
                               rtol=1e-13)
    assert H.stats.passes == 1  # the gradient came from the same pass


def test_whole_batched_request_after_a_partial_one_uses_the_cache(X):
    H = hyperdual.hessian(f, X, batch_axis=0)
    H[:, 0, 0]
    passes = H.stats.passes
    got = H[:]
    np.testing.assert_allclose(got, np.stack([f_hessian(x) for x in X]), rtol=1e-13, atol=1e-14)
    assert H.stats.passes > passes  # the rest was computed by the general path
    assert H.stats.pairs_evaluated == 6


def test_whole_batched_request_too_large_for_one_pass_splits(X, set_settings):
    set_settings(chunk_elements=1)  # at most MIN_PAIRS pairs a pass
    wide = np.random.default_rng(1).uniform(-1.0, 1.0, (3, 12))  # 78 pairs
    g = lambda Y: np.sum(np.sin(Y) * Y[:, ::-1], axis=1)  # noqa: E731
    H = hyperdual.hessian(g, wide, batch_axis=0)
    got = H[:]
    assert H.stats.passes == 2
    for s in range(3):
        ref = hyperdual.hessian(lambda y: np.sum(np.sin(y) * y[::-1]), wide[s])[:]
        np.testing.assert_allclose(got[s], ref, rtol=1e-13, atol=1e-14)


def test_whole_batched_request_with_tuple_inputs_takes_the_general_path(X):
    H = hyperdual.hessian(lambda A, C: np.sum(A * C ** 2, axis=1), (X, X + 1.0), batch_axis=0)
    got = H[0][1][:]
    np.testing.assert_allclose(got, np.stack([np.diag(2.0 * (x + 1.0)) for x in X]), rtol=1e-13)


# ---- the value call of a batch runs on the independence check's samples ------------------
def test_value_before_any_pass_then_everything(X):
    H = hyperdual.hessian(f, X, batch_axis=0)
    assert H.stats.function_calls == 1  # the check's samples alone
    np.testing.assert_allclose(H.value, f(X), rtol=1e-15)
    assert H.stats.function_calls == 2 and H.stats.passes == 0  # one plain evaluation
    got = H[:]
    np.testing.assert_allclose(got, np.stack([f_hessian(x) for x in X]), rtol=1e-13, atol=1e-14)
    assert H.stats.function_calls == 3 and H.stats.passes == 1


@pytest.mark.parametrize("value_first", [False, True])
def test_coupled_samples_found_from_the_subset_evaluation(X, value_first):
    """The outputs of the check's samples alone (evaluated when H was made) differ from the
    full batch's: the first request over every sample refuses, and caches nothing."""
    coupled = lambda A: A[:, 0] * np.sum(A.T)  # noqa: E731  (a transpose: no batch rule)
    H = hyperdual.hessian(coupled, X, batch_axis=0)
    if value_first:
        np.testing.assert_allclose(H.value, coupled(X), rtol=1e-15)  # the value itself is fine
    with pytest.raises(ValueError, match="samples"):
        H[:]
    assert H.stats.entries_cached == 0
    with pytest.raises(ValueError, match="samples"):
        H[:, 0, 1]


def test_subset_evaluation_that_fails_falls_back_to_the_full_batch(X):
    """A function that only runs on the full batch (a batch-shaped constant): the value call
    is the full batch's, and the independence check gives no verdict, as before."""
    W = np.linspace(1.0, 2.0, X.size).reshape(X.shape)
    g = lambda A: np.sum(A ** 2 * W, axis=1)  # noqa: E731
    H = hyperdual.hessian(g, X, batch_axis=0)
    assert H.stats.function_calls == 2  # the subset (failed) and the full batch
    got = H[:]
    np.testing.assert_allclose(got, np.stack([np.diag(2.0 * w) for w in W]), rtol=1e-13)


def test_subset_output_not_following_the_batch_falls_back(X):
    """A wrong output shape is reported with the full batch's shapes."""
    with pytest.raises(ValueError, match=r"shape \(12, 2\)"):
        hyperdual.hessian(lambda A: A[:, :2] ** 2, X, batch_axis=0)
