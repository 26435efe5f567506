"""The same bits on every path: one set of programs through every layout the engine has.

Each program's full Hessian (and gradient) is computed in the default
configuration and again with one layout forced: the general (checked) paths
instead of the packed ones, windowed lanes for every input, the sparsity
pattern for every request or for none, kernels split over threads, the NumPy
twins of the Numba kernels, and the record replayed.  Every entry must have
the same bits (NaN where the default has NaN; the sign of zero included), at
ordinary points and at 0, -0, ±inf, NaN, huge and tiny values.  Column lanes
are checked the same way on a batched program.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import hyperdual
from hyperdual.execute import lanes, packed, threads
from hyperdual.plan.seeding import settings

_C = np.linspace(-1.5, 2.0, 8)

PROGRAMS = {
    "rosenbrock": lambda x: np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2),
    "sqrt_times": lambda x: np.sum(np.sqrt(np.abs(x[:4])) * x[4:]),
    "exp_log": lambda x: np.sum(np.log1p(np.exp(x)) * x),
    "negations": lambda x: np.sum(-(x * x[::-1])) + (x[0] * x[1]) * -2.0 + (1.0 - x[2] * x[3]),
    "constant_factors": lambda x: np.sum((x * _C) ** 2 / 3.0) + np.sum(x * np.inf * 0.0 + x),
    "quotient": lambda x: np.sum(np.sin(x) / (1.0 + x * x)),
    "selection": lambda x: np.sum(np.maximum(x, 0.5 * x[::-1]) ** 2) + np.max(x * x),
    "powers": lambda x: np.sum(np.abs(x) ** 2.5 + x ** 3 + np.square(x)),
    "cumulative": lambda x: np.sum(np.cumsum(x * x) * np.tanh(x)),
    "matrix": lambda x: np.sum(np.cos(np.outer(_C, np.ones(8)) @ x) * x),
}

POINTS = {
    "ordinary": np.linspace(-1.2, 1.7, 8),
    "zeros": np.array([0.0, -0.0, 1.0, -1.0, 0.0, 2.0, -0.0, 0.5]),
    "huge_tiny": np.array([1e150, -1e-300, 5e-324, 3.0, -2e150, 1e-160, 0.7, -1e300]),
    "inf": np.array([np.inf, 1.0, -np.inf, 0.5, 2.0, 0.0, 1.5, -1.0]),
    "nan": np.array([1.0, np.nan, 0.5, 2.0, -1.0, 0.25, 3.0, 0.0]),
}


def _twins(monkeypatch):
    """The NumPy twins of every kernel, as before the Numba kernels load."""
    monkeypatch.setattr(lanes._Choice, "ready", False)
    monkeypatch.setattr(lanes._Choice, "kernels", lanes.Kernels(lanes.chain_lanes_numpy, lanes.binary_lanes_numpy,
                                                   lanes.product_lanes_numpy, lanes.square_lanes_numpy))
    monkeypatch.setattr(lanes._Choice, "ranges", None)
    monkeypatch.setattr(lanes._Choice, "packed", None)
    monkeypatch.setattr(lanes, "LOAD_AFTER_OP", float("inf"))
    monkeypatch.setattr(lanes, "LOAD_AFTER_TOTAL", float("inf"))


LAYOUTS = {
    "general": lambda mp: mp.setattr(packed.switch, "on", False),
    "windows": lambda mp: [mp.setattr(settings, "window_min_size", 0),
                           mp.setattr(settings, "window_max_fraction", 1.0),
                           mp.setattr(settings, "window_min_lanes", 0)],
    "pattern": lambda mp: mp.setattr(settings, "pattern_min_pairs", 0),
    "no_pattern": lambda mp: mp.setattr(settings, "pattern_min_pairs", 2 ** 62),
    "threads": lambda mp: [mp.setattr(threads, "MIN_ENTRIES", 8), mp.setattr(threads, "MIN_CHUNK", 3)],
    "twins": _twins,
    "recorded": lambda mp: mp.setattr(settings, "trace", True),
    "per_pass": lambda mp: mp.setattr(settings, "trace", False),
    "one_pair_per_pass": lambda mp: mp.setattr(settings, "memory_budget", 4096),
}


def _run(f, x):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        H = hyperdual.hessian(f, x)
        return H[:], H.gradient


def _same_bits(got, want, maxulp=0):
    """Equal bits (NaN where ``want`` has NaN); with ``maxulp``, the same NaN, infinities
    and signs, and finite entries within ``maxulp`` units of rounding of the largest."""
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan)
    got, want = got[~nan], want[~nan]
    if maxulp:
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
        np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
        fin = np.isfinite(want)
        scale = np.abs(want[fin]).max(initial=0.0)
        np.testing.assert_allclose(got[fin], want[fin], rtol=maxulp * 2.0 ** -52,
                                   atol=maxulp * 2.0 ** -52 * scale)
        return
    np.testing.assert_array_equal(got.view(np.int64), want.view(np.int64))


#: The NumPy twins sum lanes in NumPy's order where the packed Numba kernels sum pairwise
#: in their own (``cumsum`` and ``@`` of packed lanes): rounding apart (a few units of the
#: last place of the largest entry, more for an entry that cancels), never more.
#: Every other layout gives the same bits.
_ULPS = {"twins": 8}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("point", sorted(POINTS))
@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_every_layout_gives_the_same_bits(name, point, layout, monkeypatch):
    f, x = PROGRAMS[name], POINTS[point]
    want_h, want_g = _run(f, x)
    LAYOUTS[layout](monkeypatch)
    got_h, got_g = _run(f, x)
    _same_bits(got_h, want_h, _ULPS.get(layout, 0))
    _same_bits(got_g, want_g, _ULPS.get(layout, 0))


@pytest.mark.parametrize("point", sorted(POINTS))
def test_column_lanes_give_the_same_bits(point, monkeypatch):
    X = np.stack([POINTS[point], POINTS["ordinary"], POINTS[point][::-1]])

    def f(v):
        return np.sum(np.exp(-v * v) * v + np.sqrt(np.abs(v)) * v[:, ::-1], axis=1)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        want = hyperdual.hessian(f, X, batch_axis=0)[:]
        monkeypatch.setattr(settings, "column_lanes", False)
        got = hyperdual.hessian(f, X, batch_axis=0)[:]
    _same_bits(got, want)
