"""Whole Hessians by one coloured pass (hyperdual.lazy.coloured): the frontier of the
record, its weights and supports (hyperdual.plan.frontier), the colouring and the
recovery (hyperdual.plan.recover), against closed forms and the seeded pairs."""
import numpy as np
import pytest

import hyperdual
from hyperdual.plan import frontier
from hyperdual.trace.record import Program, topological


@pytest.fixture(autouse=True)
def _colour_small_problems(set_settings):
    """Colour from any size here (the default threshold is about speed, not numbers)."""
    set_settings(colour_min_inputs=0)


def _pairs(f, x):
    saved = hyperdual.settings.settings.colouring
    hyperdual.settings.settings.colouring = False
    try:
        return hyperdual.hessian(f, x)[:]
    finally:
        hyperdual.settings.settings.colouring = saved


def _coloured(f, x):
    H = hyperdual.hessian(f, x)
    return H[:], H.stats


def _program(f, x0):
    x = hyperdual.variable(x0)
    y = f(x)
    return Program(topological(y._node), [x._node], y._node)


def rosen(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def rosen_hessian(x):
    n = x.size
    H = np.zeros((n, n))
    d = np.zeros(n)
    d[:-1] += 1200 * x[:-1] ** 2 - 400 * x[1:] + 2
    d[1:] += 200
    H[np.arange(n), np.arange(n)] = d
    H[np.arange(n - 1), np.arange(1, n)] = H[np.arange(1, n), np.arange(n - 1)] = -400 * x[:-1]
    return H


def grid_edges(v, m=12):
    """A 2-D edge energy: Σ over horizontal and vertical edges of cosh(u_a - u_b)."""
    u = v.reshape(m, m)
    return np.sum(np.cosh(u[1:, :] - u[:-1, :])) + 0.5 * np.sum(np.cosh(u[:, 1:] - u[:, :-1]))


def stencil(v, m=12):
    """A 5-point stencil: Σ over interior points of (4 u - neighbours)² plus a quartic."""
    u = v.reshape(m, m)
    lap = 4 * u[1:-1, 1:-1] - u[:-2, 1:-1] - u[2:, 1:-1] - u[1:-1, :-2] - u[1:-1, 2:]
    return np.sum(np.sin(lap) * lap) + np.sum(u ** 4) / 4


def arrowhead(x):
    return np.sum(np.exp(x[0] * x[1:])) + np.sum(x ** 2)


def dense_blocks(x, b=6):
    blocks = x.reshape(-1, b)
    return np.sum(np.log(np.sum(np.exp(blocks), axis=1))) + 0.5 * np.mean(np.sin(blocks) ** 2)


CASES = [
    ("rosen", rosen, 60, 2),
    ("grid_edges", grid_edges, 144, 3),
    ("stencil", stencil, 144, 5),
    ("arrowhead", arrowhead, 50, 2),
    ("dense_blocks", dense_blocks, 60, 6),
]


@pytest.mark.parametrize("name, f, n, most", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("seed", [0, 1])
def test_element_structured_functions_match_the_pairs(name, f, n, most, seed):
    x = np.random.default_rng(seed).uniform(-1.2, 1.2, n)
    H, stats = _coloured(f, x)
    ref = _pairs(f, x)
    scale = max(1.0, np.abs(ref).max())
    np.testing.assert_allclose(H, ref, rtol=0, atol=1e-13 * scale)
    assert stats.method == "colouring" and stats.passes == 1
    assert 1 <= stats.colours <= most
    assert stats.pairs_evaluated == stats.colours * (stats.colours + 1) // 2
    np.testing.assert_array_equal(H, H.T)


def test_rosenbrock_closed_form_two_colours_and_the_counts():
    x = np.linspace(-1.1, 1.3, 200)
    H = hyperdual.hessian(rosen, x)
    np.testing.assert_allclose(H[:], rosen_hessian(x), rtol=1e-15, atol=1e-12)
    s = H.stats
    assert (s.method, s.colours, s.passes, s.pairs_evaluated) == ("colouring", 2, 1, 3)
    assert s.structural_zeros == 200 * 201 // 2 - (2 * 200 - 1)  # the band alone is nonzero
    assert H[5, 6] == -400 * x[5] and H[7, 3] == 0.0      # later requests read the cache
    assert H.stats.passes == 1


def test_supports_are_structural_not_numeric():
    """sin(x_k x_{k+1}) at x = 0: every first derivative is zero there, yet the mixed
    second derivatives are 1; numeric supports would miss them."""
    x = np.zeros(40)
    H, stats = _coloured(lambda v: np.sum(np.sin(v[1:] * v[:-1])), x)
    ref = np.zeros((40, 40))
    ref[np.arange(39), np.arange(1, 40)] = ref[np.arange(1, 40), np.arange(39)] = 1.0
    np.testing.assert_array_equal(H, ref)
    assert stats.method == "colouring" and stats.colours == 2


def test_weights_of_the_linear_tail():
    """3 mean(sin(x).reshape(2, 3), axis=0).sum() - 2 Σ exp(x[1:]) + x[0] / 4: the frontier
    is sin(x) with weights 3/2 and exp(x[1:]) with -2; x[0] enters linearly."""
    f = lambda x: 3 * np.mean(np.sin(x).reshape(2, 3), axis=0).sum() - 2 * np.sum(np.exp(x[1:])) + x[0] / 4
    p = _program(f, np.linspace(0.1, 0.6, 6))
    fr = frontier.find(p)
    got = sorted((p.shapes[s], fr.weights[s].tolist()) for s in fr.slots)
    assert got == [((5,), [-2.0] * 5), ((6,), [1.5] * 6)]


def test_weights_through_broadcasts_slices_and_transposes():
    f = lambda x: np.sum(np.transpose(np.exp(x).reshape(2, 3))[::2] * np.array([1.0, -3.0]))
    p = _program(f, np.linspace(0.1, 0.6, 6))
    fr = frontier.find(p)
    (s,) = fr.slots
    # element (i, j) of exp(x).reshape(2, 3) lands at row j of the transpose, column i
    np.testing.assert_array_equal(fr.weights[s].reshape(-1), [1.0, 0.0, 1.0, -3.0, 0.0, -3.0])
    x = np.linspace(0.1, 0.6, 60)
    g = lambda v: np.sum(np.transpose(np.exp(v).reshape(6, 10))[::2] * np.linspace(-1, 2, 6))
    H, stats = _coloured(g, x)
    np.testing.assert_allclose(H, _pairs(g, x), rtol=1e-15, atol=0)
    assert stats.method == "colouring" and stats.colours == 1


def test_the_output_itself_nonlinear_is_the_frontier():
    x = np.linspace(-1, 1, 40)
    f = lambda v: np.log(np.sum(np.exp(v[1:] - v[:-1])))
    H, stats = _coloured(f, x)
    assert stats.method == "pairs"          # one element depending on every input: n colours
    assert stats.colouring == "40 colours: no fewer pairs than seeding every pair"
    np.testing.assert_allclose(H, _pairs(f, x), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("point", [
    np.linspace(-1, 1, 40),
    np.r_[np.zeros(20), np.ones(20)],
    np.r_[1e-300, -1e-300, np.full(38, 1e150)],
    np.r_[np.inf, np.linspace(-1, 1, 39)],
    np.r_[np.nan, np.linspace(-1, 1, 39)],
    np.full(40, -np.inf),
], ids=["ordinary", "zeros-and-ones", "tiny-and-large", "inf", "nan", "all-minus-inf"])
def test_edges_give_the_numbers_of_the_pairs(point):
    f = lambda v: np.sum(np.exp(-v[1:] ** 2) * np.cos(v[:-1])) + np.sum(v ** 2)
    with np.errstate(all="ignore"):
        H, stats = _coloured(f, point)
        ref = _pairs(f, point)
    np.testing.assert_array_equal(np.isnan(H), np.isnan(ref))
    np.testing.assert_allclose(H, ref, rtol=1e-14, atol=1e-300)
    if np.isfinite(point).all():
        assert stats.method == "colouring"


def test_a_step_outside_the_analysis_falls_back_to_the_pairs():
    A = np.random.default_rng(2).normal(size=(40, 40))
    f = lambda v: np.sum(np.tanh(A @ v) ** 2)          # matmul before the frontier
    x = np.linspace(-0.5, 0.5, 40)
    H = hyperdual.hessian(f, x)
    np.testing.assert_allclose(H[:], _pairs(f, x), rtol=1e-14, atol=1e-14)
    assert H.stats.method == "pairs"
    assert "matmul" in H.stats.colouring and H.stats.colouring == H._problem.coloured.reason


def test_a_decline_is_remembered_per_function_and_shape(per_pass):
    A = np.random.default_rng(4).normal(size=(40, 40))

    def f(v):
        return np.sum(np.tanh(A @ v) ** 2)
    x = np.linspace(-0.5, 0.5, 40)
    first = hyperdual.hessian(f, x)
    ref = first[:]
    assert "matmul" in first.stats.colouring
    again = hyperdual.hessian(f, x + 0.1)
    np.testing.assert_allclose(again[:], _pairs(f, x + 0.1), rtol=1e-14, atol=1e-14)
    assert again.stats.colouring.startswith("declined for this function before")
    assert again.stats.function_calls == first.stats.function_calls - 1   # no recording call (per pass)
    other = hyperdual.hessian(f, np.linspace(-0.5, 0.5, 40).reshape(-1)[:40])  # same shape: remembered
    other[:]
    assert other.stats.colouring.startswith("declined")
    np.testing.assert_allclose(ref, _pairs(f, x), rtol=1e-14, atol=1e-14)


def test_ys_form_and_recorded_callables_colour_too(set_settings):
    x0 = np.linspace(-1.1, 1.3, 50)
    v = hyperdual.variable(x0)
    H = hyperdual.hessian(rosen(v), v)
    np.testing.assert_allclose(H[:], rosen_hessian(x0), rtol=1e-15, atol=1e-12)
    assert H.stats.method == "colouring" and H.stats.function_calls == 1
    set_settings(trace=True)
    calls = []
    H = hyperdual.hessian(lambda x: calls.append(1) or rosen(x), x0)
    np.testing.assert_allclose(H[:], rosen_hessian(x0), rtol=1e-15, atol=1e-12)
    assert H.stats.method == "colouring" and len(calls) == 1   # the record, replayed


def test_small_problems_and_batches_keep_the_pairs(set_settings):
    set_settings(colour_min_inputs=64)  # (the default, whatever HYPERDUAL_TEST_COLOURING says)
    H = hyperdual.hessian(rosen, np.linspace(-1, 1, 10))
    H[:]
    assert H.stats.method == "pairs"                  # below colour_min_inputs
    Hb = hyperdual.hessian(lambda x: np.sum(np.sin(x) * x, axis=1), np.ones((3, 40)), batch_axis=0)
    np.testing.assert_allclose(Hb[:][1], np.eye(40) * (2 * np.cos(1.0) - np.sin(1.0)), rtol=1e-15)
    assert Hb.stats.method == "pairs"


def test_colour_setting_off_seeds_pairs(set_settings):
    set_settings(colouring=False)
    H = hyperdual.hessian(rosen, np.linspace(-1, 1, 60))
    H[:]
    assert H.stats.method == "pairs" and H.stats.colours == 0


def test_pickled_hessian_computes_by_pairs():
    import pickle
    H = pickle.loads(pickle.dumps(hyperdual.hessian(rosen, np.linspace(-1, 1, 60))))
    np.testing.assert_allclose(H[:], rosen_hessian(np.linspace(-1, 1, 60)), rtol=1e-15, atol=1e-12)
    assert H.stats.method == "pairs"


@pytest.mark.parametrize("f, n", [(rosen, 300), (stencil, 144), (arrowhead, 200)])
def test_the_numba_recovery_matches_the_numpy_twin(f, n, monkeypatch):
    from hyperdual.lazy import coloured
    x = np.random.default_rng(3).uniform(-1, 1, n)
    got = {}
    for kernels in (False, True):
        monkeypatch.setattr(coloured.ColouredPass, "_kernels", lambda self, k=kernels: k)
        H = hyperdual.hessian(f, x)
        S = H.sparse()
        assert H.stats.method == "colouring"
        got[kernels] = (S, H.sparsity())
    (a, pa), (b, pb) = got[False], got[True]
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_allclose(a.data, b.data, rtol=1e-15, atol=0)
    np.testing.assert_array_equal(pa.indices, pb.indices)
