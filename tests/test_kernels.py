"""The Numba kernels and their NumPy twins give the same lanes, for every branch."""
import itertools

import numpy as np
import pytest

from hyperdual.execute import kernels, lanes

RNG = np.random.default_rng(7)
N, K1, K2, P = 7, 3, 2, 5
IP = RNG.integers(0, K1, P)
JP = RNG.integers(0, K2, P)


def lane(rows, present, n=N):
    return RNG.standard_normal((rows, n)) if present else np.zeros((0, n))


def factor(kind, n=N):
    return {"array": RNG.standard_normal(n), "const": np.array([1.7]), "zero": np.zeros(0)}[kind]


def run_both(kernel, twin, args, outs):
    got = [np.full_like(o, -999.0) for o in outs]
    want = [np.full_like(o, -999.0) for o in outs]
    kernel(*args, *got)
    twin(*args, *want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-14, atol=1e-14)
    return got


@pytest.mark.parametrize("has1,has2,has12,g1kind,g2kind,nan",
                         list(itertools.product([True, False], [True, False], [True, False],
                                                ["array", "const"], ["array", "const", "zero"],
                                                [False, True])))
@pytest.mark.parametrize("n", [N, kernels._SMALL + 1])  # plain loops, and the blocked path
def test_chain_lanes_twin(has1, has2, has12, g1kind, g2kind, nan, n):
    y = RNG.standard_normal(n)
    if nan:
        y[2] = np.nan
    e1, e2, e12 = lane(K1, has1, n), lane(K2, has2, n), lane(P, has12, n)
    cross = g2kind != "zero" and has1 and has2
    outs = [np.empty((K1 if has1 else 0, n)), np.empty((K2 if has2 else 0, n)),
            np.empty((P if (has12 or cross) else 0, n))]
    g1, g2 = factor(g1kind, n), factor(g2kind, n)
    got = run_both(kernels.chain_lanes, lanes.chain_lanes_numpy,
                   (y, g1, g2, e1, e2, e12, IP, JP), outs)
    # the formula itself, written out
    if has1:
        np.testing.assert_allclose(got[0][:, ~np.isnan(y)], (g1 * e1)[:, ~np.isnan(y)], rtol=1e-14)
    if got[2].shape[0]:
        want = (g1 * e12 if has12 else 0.0) + (g2 * e1[IP] * e2[JP] if cross else 0.0)
        np.testing.assert_allclose(got[2][:, ~np.isnan(y)], np.broadcast_to(want, got[2].shape)[:, ~np.isnan(y)],
                                   rtol=1e-13, atol=1e-14)
    if nan:
        for o in got:
            assert np.isnan(o[:, 2]).all()


@pytest.mark.parametrize("x1,x2,x12,y1,y2,y12", [c for c in itertools.product([True, False], repeat=6)
                                                 if any(c)])
@pytest.mark.parametrize("second", ["full", "product"])
def test_binary_lanes_twin(x1, x2, x12, y1, y2, y12, second):
    y = RNG.standard_normal(N)
    y[4] = np.nan
    gx, gy = factor("array"), factor("const")
    if second == "full":
        gxx, gxy, gyy = factor("array"), factor("array"), factor("const")
    else:
        gxx, gxy, gyy = factor("zero"), np.ones(1), factor("zero")
    lane_list = [lane(K1, x1), lane(K2, x2), lane(P, x12), lane(K1, y1), lane(K2, y2), lane(P, y12)]
    outs = [np.empty((K1 if (x1 or y1) else 0, N)), np.empty((K2 if (x2 or y2) else 0, N)), np.empty((P, N))]
    got = run_both(kernels.binary_lanes, lanes.binary_lanes_numpy,
                   (y, gx, gy, gxx, gxy, gyy, *lane_list, IP, JP), outs)
    ok = ~np.isnan(y)
    z = np.zeros((1, N))
    a1, a2, a12, b1, b2, b12 = (lane if lane.shape[0] else z for lane in lane_list)
    want = (gx * a12 + gy * b12 + (gxx if gxx.size else 0) * a1[IP % len(a1)] * a2[JP % len(a2)]
            + (gyy if gyy.size else 0) * b1[IP % len(b1)] * b2[JP % len(b2)]
            + gxy * (a1[IP % len(a1)] * b2[JP % len(b2)] + b1[IP % len(b1)] * a2[JP % len(a2)]))
    np.testing.assert_allclose(got[2][:, ok], np.broadcast_to(want, (P, N))[:, ok], rtol=1e-12, atol=1e-13)
    assert np.isnan(got[2][:, 4]).all()


@pytest.mark.parametrize("present", [c for c in itertools.product([True, False], repeat=6) if any(c)])
def test_product_lanes_twin_and_formula(present):
    xv, yv = RNG.standard_normal(N), RNG.standard_normal(N)
    xv[1] = 0.0
    y = xv * yv
    y[5] = np.nan
    x1, x2, x12, y1, y2, y12 = present
    lane_list = [lane(K1, x1), lane(K2, x2), lane(P, x12), lane(K1, y1), lane(K2, y2), lane(P, y12)]
    outs = [np.empty((K1 if (x1 or y1) else 0, N)), np.empty((K2 if (x2 or y2) else 0, N)), np.empty((P, N))]
    got = run_both(kernels.product_lanes, lanes.product_lanes_numpy, (y, xv, yv, *lane_list, IP, JP), outs)
    ref = [np.empty_like(o) for o in outs]
    kernels.binary_lanes(y, yv, xv, np.zeros(0), np.ones(1), np.zeros(0), *lane_list, IP, JP, *ref)
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, r, rtol=1e-14, atol=1e-14)
    assert np.isnan(got[2][:, 5]).all()


def test_product_lanes_with_a_broadcast_factor():
    # one value of length 1 (an element broadcast against a vector): the general path
    xv, yv = np.array([0.7]), RNG.standard_normal(N)
    y = xv * yv
    lane_list = [lane(K1, True), lane(K2, True), lane(P, True), lane(K1, True), lane(K2, True), lane(P, True)]
    outs = [np.empty((K1, N)), np.empty((K2, N)), np.empty((P, N))]
    got = run_both(kernels.product_lanes, lanes.product_lanes_numpy, (y, xv, yv, *lane_list, IP, JP), outs)
    a1, a2, a12, b1, b2, b12 = lane_list
    want = yv * a12 + xv * b12 + a1[IP] * b2[JP] + b1[IP] * a2[JP]
    np.testing.assert_allclose(got[2], want, rtol=1e-13)


def test_choice_switches_to_numba_after_enough_work(monkeypatch):
    monkeypatch.setattr(lanes._Choice, "ready", False)
    monkeypatch.setattr(lanes._Choice, "work", 0)
    monkeypatch.setattr(lanes._Choice, "kernels", lanes.Kernels(lanes.chain_lanes_numpy, lanes.binary_lanes_numpy,
                                                   lanes.product_lanes_numpy, lanes.square_lanes_numpy))
    assert lanes.choose(10).chain is lanes.chain_lanes_numpy
    assert lanes.choose(lanes.LOAD_AFTER_OP).chain is kernels.chain_lanes
    assert lanes._Choice.ready


def test_import_does_not_import_numba():
    import subprocess
    import sys
    code = "import sys, hyperdual; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


@pytest.mark.parametrize("g1kind,g2kind", list(itertools.product(["array", "const"], ["array", "const"])))
@pytest.mark.parametrize("n", [7, kernels._SMALL + 1, 70_001])
def test_one_pair_and_blocked_paths_match_the_twins(g1kind, g2kind, n):
    # K1 = K2 = P = 1 takes the one-pass kernels; n above the block size crosses blocks.
    rng = np.random.default_rng(n)
    ip = jp = np.zeros(1, np.int64)
    y = rng.standard_normal(n)
    y[[0, n // 2, n - 1]] = np.nan
    lanes_ = [rng.standard_normal((1, n)) for _ in range(6)]
    for lane_ in lanes_:
        lane_[0, 1::5] = 0.0  # structural zeros meet infinite factors below
    g1 = rng.standard_normal(n) if g1kind == "array" else np.array([np.inf])
    g2 = rng.standard_normal(n) if g2kind == "array" else np.array([-2.5])
    if g1kind == "array":
        g1[1::7] = np.inf
    outs = [np.empty((1, n)) for _ in range(3)]
    run_both(kernels.chain_lanes, lanes.chain_lanes_numpy, (y, g1, g2, *lanes_[:3], ip, jp), outs)
    xv, yv = rng.standard_normal(n), rng.standard_normal(n)
    xv[2::9] = np.inf
    run_both(kernels.product_lanes, lanes.product_lanes_numpy, (y, xv, yv, *lanes_, ip, jp), outs)


@pytest.mark.parametrize("n", [5, kernels._SMALL, kernels._SMALL + 1, 70_001])
def test_wide_blocked_paths_match_the_twins(n):
    rng = np.random.default_rng(n)
    k1, k2 = 3, 2
    ip, jp = np.repeat(np.arange(k1), k2), np.tile(np.arange(k2), k1)
    y = rng.standard_normal(n)
    y[n - 1] = np.nan
    rows = [k1, k2, k1 * k2] * 2
    lanes_ = [rng.standard_normal((r, n)) for r in rows]
    lanes_[0][:, ::3] = 0.0
    g1, g2 = rng.standard_normal(n), rng.standard_normal(n)
    g1[::4] = np.inf
    outs = [np.empty((r, n)) for r in rows[:3]]
    run_both(kernels.chain_lanes, lanes.chain_lanes_numpy, (y, g1, g2, *lanes_[:3], ip, jp), outs)
    xv, yv = rng.standard_normal(n), rng.standard_normal(n)
    yv[::5] = -np.inf
    run_both(kernels.product_lanes, lanes.product_lanes_numpy, (y, xv, yv, *lanes_, ip, jp), outs)


@pytest.mark.parametrize("has12", [True, False])
@pytest.mark.parametrize("n", [1, 9, kernels._SMALL + 3])
def test_square_lanes_twin_and_formula(has12, n):
    """``y = a**2``: ``e1' = 2a e1``, ``e12' = 2a e12 + 2 e1[ip] e1[jp]``, with structural
    zeros kept through an infinite factor and NaN values poisoning every lane."""
    rng = np.random.default_rng(n)
    a = rng.standard_normal(n)
    a[0] = np.inf
    if n > 2:
        a[2] = np.nan
    e1 = rng.standard_normal((K1, n))
    e1[:, 0] = 0.0  # a structural zero under the infinite factor 2a
    e12 = rng.standard_normal((P, n)) if has12 else np.zeros((0, 0))
    if has12:
        e12[:, 0] = 0.0
    outs = [np.empty(n), np.empty((K1, n)), np.empty((P, n))]
    got = run_both(kernels.square_lanes, lanes.square_lanes_numpy, (a, e1, e12, IP, IP), outs)
    y, o1, o12 = got
    np.testing.assert_array_equal(y, a * a)
    ok = np.isfinite(a)
    with np.errstate(invalid="ignore"):  # (inf * 0 in the reference, outside `ok`)
        np.testing.assert_allclose(o1[:, ok], (2 * a * e1)[:, ok], rtol=1e-15)
        want = (2 * a * e12 if has12 else 0.0) + 2 * e1[IP] * e1[IP]
    np.testing.assert_allclose(o12[:, ok], np.broadcast_to(want, o12.shape)[:, ok], rtol=1e-14)
    assert (o1[:, 0] == 0).all() and (o12[:, 0] == 0).all()  # 2a = inf meets exact zeros
    if n > 2:
        assert np.isnan(o1[:, 2]).all() and np.isnan(o12[:, 2]).all()


def test_square_lanes_is_the_tables_square_rule():
    """The fused kernel restates one entry of the derivative table (np.square: g' = 2a,
    g'' = 2) for speed; it must be that entry lifted by the one chain-rule kernel."""
    from hyperdual.ops.rules import UNARY
    rng = np.random.default_rng(2)
    n = 9
    a = rng.standard_normal(n)
    a[1], a[2] = 0.0, 1e200
    e1, e12 = rng.standard_normal((K1, n)), rng.standard_normal((P, n))
    y, o1, o12 = np.empty(n), np.empty((K1, n)), np.empty((P, n))
    kernels.square_lanes(a, e1, e12, IP, IP, y, o1, o12)
    with np.errstate(over="ignore"):  # (1e200 ** 2 is inf, in both)
        sq = np.square(a)
    g1, g2 = UNARY[np.square](a, sq)
    w1, w12 = np.empty((K1, n)), np.empty((P, n))
    kernels.chain_lanes(sq, g1, np.full(1, g2), e1, e1, e12, IP, IP, w1, np.zeros((0, n)), w12)
    np.testing.assert_array_equal(y, sq)
    np.testing.assert_array_equal(o1, w1)
    np.testing.assert_array_equal(o12, w12)


@pytest.mark.parametrize("present", [(True,) * 6, (True, True, False, True, True, True),
                                     (True, True, False, True, True, False)])
@pytest.mark.parametrize("n", [1, 9, kernels._SMALL + 3])
def test_product_lanes_is_the_tables_multiply_rule(present, n):
    """The product kernel restates ``BINARY[np.multiply]`` (``g_x = y``, ``g_y = x``,
    ``g_xy = 1``) for speed; it must be that entry lifted by the one binary chain-rule
    kernel, bit for bit, at 0, -0, ±inf, NaN, huge and tiny values and lane entries."""
    from hyperdual.ops.rules import BINARY
    rng = np.random.default_rng(n)
    edges = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e300, -1e-300, 1.0, -1.0])

    def edgy(shape):
        v = rng.standard_normal(shape)
        flat = v.reshape(-1)
        flat[rng.integers(0, flat.size, flat.size // 2)] = rng.choice(edges, flat.size // 2)
        return v
    xv, yv = edgy(n), edgy(n)
    with np.errstate(all="ignore"):
        y = xv * yv
    x1, x2, x12, y1, y2, y12 = present
    lane_list = [edgy((K1, n)) if x1 else np.zeros((0, n)), edgy((K2, n)) if x2 else np.zeros((0, n)),
                 edgy((P, n)) if x12 else np.zeros((0, n)), edgy((K1, n)) if y1 else np.zeros((0, n)),
                 edgy((K2, n)) if y2 else np.zeros((0, n)), edgy((P, n)) if y12 else np.zeros((0, n))]
    outs = [np.empty((K1, n)), np.empty((K2, n)), np.empty((P, n))]
    got = [np.full_like(o, -999.0) for o in outs]
    kernels.product_lanes(y, xv, yv, *lane_list, IP, JP, *got)
    rule = BINARY[np.multiply]
    gx, _ = rule.dx(xv, yv, y)
    gy, _ = rule.dy(xv, yv, y)
    gxy = np.full(1, rule.dxy(xv, yv, y))
    want = [np.full_like(o, -999.0) for o in outs]
    none = np.zeros(0)
    kernels.binary_lanes(y, gx, gy, none, gxy, none, *lane_list, IP, JP, *want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
        np.testing.assert_array_equal(np.signbit(g), np.signbit(w))


# ---- packed-lane kernels (hyperdual.execute.packed): the general kernels' bits, on one buffer ------
def _edgy(rows, n):
    """A lane with exact zeros (structural: inf * 0 stays 0), infinities and a NaN."""
    lane = RNG.standard_normal((rows, n))
    if n > 3:
        lane[:, 1] = 0.0
        lane[0, 2] = np.inf
        lane[-1, 3] = np.nan
    return lane


def _packed(k1, k2s, has12, n, p=P):
    e1 = _edgy(k1, n)
    e2 = e1 if k2s == 0 else _edgy(k2s, n)
    e12 = _edgy(p, n) if has12 else None
    parts = [e1] + ([e2] if k2s else []) + ([e12] if has12 else [])
    return np.concatenate(parts), e1, e2, e12, (k1 + k2s if has12 else -1)


def _unpack(buf, k1, k2s, rows):
    r = k1 + k2s
    return buf[:k1], buf[k1:r] if k2s else np.zeros((0, buf.shape[1])), buf[r:r + rows]


def _pairs(k1, k2):
    return RNG.integers(0, k1, P), RNG.integers(0, k2, P)


@pytest.mark.parametrize("shared,has12,g1kind,g2kind,nan",
                         list(itertools.product([True, False], [True, False], ["array", "const"],
                                                ["array", "const", "zero"], [False, True])))
@pytest.mark.parametrize("n", [1, 9, kernels._SMALL + 5])
def test_packed_chain_equals_chain_lanes(shared, has12, g1kind, g2kind, nan, n):
    k1, k2 = 3, (3 if shared else 2)
    k2s = 0 if shared else k2
    buf, e1, e2, e12, x12 = _packed(k1, k2s, has12, n)
    ip, jp = _pairs(k1, k2)
    y = RNG.standard_normal(n)
    if nan:
        y[n // 2] = np.nan
    g1, g2 = factor(g1kind, n), factor(g2kind, n)
    if g1kind == "array" and n > 4:
        g1[4] = np.inf  # an infinite factor meets exact zeros of the lanes
    rows = 0 if not has12 and g2kind == "zero" else P
    out = np.full((k1 + k2s + rows, n), -999.0)
    kernels.packed_chain(y, g1, g2, buf, k1, k2s, x12, ip, jp, out)
    w1, w2, w12 = np.full((k1, n), -9.0), np.full((k2s, n), -9.0), np.full((rows, n), -9.0)
    with np.errstate(invalid="ignore"):
        kernels.chain_lanes(y, g1, g2, e1, e2, np.zeros((0, n)) if e12 is None else e12, ip, jp, w1, w2, w12)
    o1, o2, o12 = _unpack(out, k1, k2s, rows)
    for got, want in ((o1, w1), (o2, w2), (o12, w12)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("shared,a12,b12,nan", list(itertools.product([True, False], repeat=4)))
@pytest.mark.parametrize("n", [1, 9, kernels._SMALL + 5])
def test_packed_product_equals_product_lanes(shared, a12, b12, nan, n):
    k1, k2 = 3, (3 if shared else 2)
    k2s = 0 if shared else k2
    abuf, a1, a2, ae12, ax = _packed(k1, k2s, a12, n)
    bbuf, b1, b2, be12, bx = _packed(k1, k2s, b12, n)
    ip, jp = _pairs(k1, k2)
    av, bv = RNG.standard_normal(n), RNG.standard_normal(n)
    if nan:
        av[0] = np.nan
    if n > 5:
        bv[5] = np.inf
    v, out = np.empty(n), np.full((k1 + k2s + P, n), -999.0)
    with np.errstate(invalid="ignore"):
        kernels.packed_product(av, bv, abuf, bbuf, k1, k2s, ax, bx, ip, jp, v, out)
        wv = av * bv
        w1, w2, w12 = np.full((k1, n), -9.0), np.full((k2s, n), -9.0), np.full((P, n), -9.0)
        none = np.zeros((0, n))
        kernels.product_lanes(wv, av, bv, a1, a2, none if ae12 is None else ae12, b1, b2,
                              none if be12 is None else be12, ip, jp, w1, w2, w12)
    np.testing.assert_array_equal(v, wv)
    for got, want in zip(_unpack(out, k1, k2s, P), (w1, w2, w12)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("has12", [True, False])
@pytest.mark.parametrize("n", [1, 9, kernels._SMALL + 5])
def test_packed_square_equals_square_lanes(has12, n):
    buf, e1, _, e12, x12 = _packed(3, 0, has12, n)
    ip, jp = _pairs(3, 3)
    a = RNG.standard_normal(n)
    a[0] = np.nan
    y, out = np.empty(n), np.full((3 + P, n), -999.0)
    wy, w1, w12 = np.empty(n), np.empty((3, n)), np.empty((P, n))
    with np.errstate(invalid="ignore"):
        kernels.packed_square(a, buf, 3, x12, ip, jp, y, out)
        kernels.square_lanes(a, e1, np.zeros((0, n)) if e12 is None else e12, ip, jp, wy, w1, w12)
    np.testing.assert_array_equal(y, wy)
    np.testing.assert_array_equal(out[:3], w1)
    np.testing.assert_array_equal(out[3:], w12)


@pytest.mark.parametrize("negate", [False, True])
@pytest.mark.parametrize("cross_on", ["a", "b"])
def test_packed_add_equals_numpy(negate, cross_on):
    n, r = 9, 5
    a = _edgy(r + (P if cross_on == "a" else 0), n)
    b = _edgy(r + (P if cross_on == "b" else 0), n)
    out = np.full((r + P, n), -999.0)
    kernels.packed_add(a, b, r, r if cross_on == "a" else -1, r if cross_on == "b" else -1, negate, out)
    with np.errstate(invalid="ignore"):
        first = a[:r] - b[:r] if negate else a[:r] + b[:r]
    cross = a[r:] if cross_on == "a" else (-b[r:] if negate else b[r:])
    np.testing.assert_array_equal(out, np.concatenate((first, cross)))


@pytest.mark.parametrize("n", [0, 1, 7, 8, 64])
def test_row_sums_are_sequential_and_row_independent(n):
    lane = RNG.standard_normal((6, n)) * 10.0 ** RNG.integers(-8, 8, (6, n))
    out = np.empty(6)
    kernels.row_sums(lane, out)
    for k in range(6):
        s = 0.0
        for t in range(n):
            s += float(lane[k, t])
        assert out[k] == s
    part = np.empty(2)
    kernels.row_sums(np.ascontiguousarray(lane[2:4]), part)
    np.testing.assert_array_equal(part, out[2:4])
    np.testing.assert_allclose(out, lane.sum(axis=1), rtol=1e-10, atol=1e-300 + 1e-12 * np.abs(lane).sum())


def test_lane_sums_of_one_lane_or_several_are_the_same_bits():
    """Packed sums sum a packed buffer, the general path each lane: the bits must agree, on
    the Numba kernel and on NumPy's reduction alike."""
    buf = RNG.standard_normal((9, 40))
    whole = lanes.lane_sums(buf)
    np.testing.assert_array_equal(np.concatenate([lanes.lane_sums(buf[:3]), lanes.lane_sums(buf[3:4]),
                                                  lanes.lane_sums(buf[4:])]), whole)
    np.testing.assert_array_equal(lanes.lane_sums(np.asfortranarray(buf)), whole)
    np.testing.assert_array_equal(np.add.reduce(buf[:3], axis=1), np.add.reduce(buf, axis=1)[:3])
