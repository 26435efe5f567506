"""NumPy array functions on HyperDual arrays against independent references.

* Linear functions: every lane row must equal the same NumPy function applied
  to that lane row on its own (the loop over rows is in the test).
* Nonlinear functions: the full Hessian (identity seeds) against a closed
  form, or against central finite differences of the *plain NumPy* function.

Finite-difference tolerances: the gradient uses central differences with
``h = 1e-6`` (truncation ``h^2 |f'''| / 6 ~ 1e-13``, rounding
``eps |f| / h ~ 1e-10``), compared with ``rtol = atol = 1e-7`` (times the
scale).  The Hessian uses the 4-point second-order formula with
``h = 1e-4`` (truncation ``h^2 |f''''| / 6 ~ 2e-9``, rounding
``eps |f| / h^2 ~ 2e-8``), compared with ``rtol = 1e-5`` and
``atol = 1e-5 * max(1, max |H|)``: two to three orders of magnitude above
the expected error, and far below the size of any wrong entry.
"""
from __future__ import annotations

import math
import pickle
import zlib

import numba
import numpy as np
import pytest

import hyperdual
import hyperdual.execute.array
import hyperdual.ops.rules
from hyperdual import HyperDual, PassMismatchError
from seeds import derivs, seeded

RTOL = 1e-12
ATOL = 1e-14


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def assert_close(actual, expected, rtol=RTOL, atol=ATOL):
    actual = np.asarray(actual)
    expected = np.asarray(expected, dtype=float)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def random_hd(shape, rng, k1=2, k2=3):
    """A HyperDual with dense, distinct random lanes: K1=2, K2=3, P=6 (default pairs)."""
    return HyperDual(rng.normal(size=shape), e1=rng.normal(size=(k1,) + shape),
                     e2=rng.normal(size=(k2,) + shape), e12=rng.normal(size=(k1 * k2,) + shape))


LANES = ("e1", "e2", "e12")


def check_linear(y, x, op, rtol=1e-13, atol=1e-13, exact=False):
    """``y = op(x)`` for a linear ``op``: value and every lane row equal ``op`` of that row."""
    assert isinstance(y, HyperDual)
    cmp = (lambda a, b: np.testing.assert_array_equal(a, b)) if exact else \
        (lambda a, b: assert_close(a, b, rtol=rtol, atol=atol))
    cmp(y.value, np.asarray(op(x.value), dtype=float))
    for lane in LANES:
        rows = getattr(x, lane)
        expected = np.stack([np.asarray(op(r), dtype=float) for r in rows])
        cmp(getattr(y, lane), expected)
    np.testing.assert_array_equal(y.pairs[0], x.pairs[0])
    np.testing.assert_array_equal(y.pairs[1], x.pairs[1])


def fd_grad(f, x0, h=1e-6):
    x0 = np.asarray(x0, dtype=float)
    n = x0.size
    out = []
    for i in range(n):
        d = np.zeros(n)
        d[i] = h
        d = d.reshape(x0.shape)
        out.append((np.asarray(f(x0 + d)) - np.asarray(f(x0 - d))) / (2 * h))
    return np.array(out)


def fd_hess(f, x0, h=1e-4):
    x0 = np.asarray(x0, dtype=float)
    n = x0.size
    E = np.eye(n).reshape((n,) + x0.shape) * h
    out = np.empty((n, n) + np.shape(f(x0)))
    for i in range(n):
        for j in range(i, n):
            v = (np.asarray(f(x0 + E[i] + E[j])) - np.asarray(f(x0 + E[i] - E[j]))
                 - np.asarray(f(x0 - E[i] + E[j])) + np.asarray(f(x0 - E[i] - E[j]))) / (4 * h * h)
            out[i, j] = out[j, i] = v
    return out


def check_against_fd(f, x0, shared=False):
    """Value, gradient and full Hessian of ``f`` (HyperDual and ndarray alike) against FD."""
    x0 = np.asarray(x0, dtype=float)
    y = f(seeded(x0, shared))
    v, g, h = derivs(y, x0.size)
    assert_close(v, f(x0), rtol=1e-12, atol=1e-13)
    G = fd_grad(f, x0)
    H = fd_hess(f, x0)
    assert_close(g, G, rtol=1e-7, atol=1e-7 * max(1.0, np.max(np.abs(G))))
    assert_close(h, H, rtol=1e-5, atol=1e-5 * max(1.0, np.max(np.abs(H))))
    return v, g, h


# ---------------------------------------------------------------------------------------------
# linear functions: lanes transform exactly like the value
# ---------------------------------------------------------------------------------------------
LINEAR_OPS = {
    "sum": (lambda a: np.sum(a), (3, 4, 2)),
    "sum-axis0": (lambda a: np.sum(a, axis=0), (3, 4, 2)),
    "sum-axis-1": (lambda a: np.sum(a, axis=-1), (3, 4, 2)),
    "sum-axes02-keepdims": (lambda a: np.sum(a, axis=(0, 2), keepdims=True), (3, 4, 2)),
    "sum-method": (lambda a: a.sum(axis=1), (3, 4, 2)),
    "mean": (lambda a: np.mean(a), (3, 4, 2)),
    "mean-axis1": (lambda a: np.mean(a, axis=1), (3, 4, 2)),
    "mean-axes-keepdims": (lambda a: np.mean(a, axis=(1, 2), keepdims=True), (3, 4, 2)),
    "mean-method": (lambda a: a.mean(axis=0), (3, 4, 2)),
    "cumsum": (lambda a: np.cumsum(a), (3, 4)),
    "cumsum-axis1": (lambda a: np.cumsum(a, axis=1), (3, 4)),
    "cumsum-axis-2": (lambda a: np.cumsum(a, axis=-2), (3, 4)),
    "cumsum-method": (lambda a: a.cumsum(axis=0), (3, 4)),
    "trace": (lambda a: np.trace(a), (3, 4)),
    "trace-offset": (lambda a: np.trace(a, offset=1), (3, 4)),
    "trace-3d-axes": (lambda a: np.trace(a, 0, 0, 2), (3, 4, 3)),
    "trace-method": (lambda a: a.trace(-1), (4, 4)),
    "diagonal": (lambda a: np.diagonal(a), (3, 4)),
    "diagonal-offset": (lambda a: np.diagonal(a, offset=-1), (3, 4)),
    "diagonal-3d": (lambda a: np.diagonal(a, 1, 2, 0), (3, 4, 3)),
    "diagonal-method": (lambda a: a.diagonal(1), (3, 4)),
    "diag-1d": (lambda a: np.diag(a), (4,)),
    "diag-1d-k1": (lambda a: np.diag(a, k=1), (4,)),
    "diag-1d-k-2": (lambda a: np.diag(a, k=-2), (3,)),
    "diag-2d": (lambda a: np.diag(a), (3, 4)),
    "diag-2d-k1": (lambda a: np.diag(a, 1), (3, 4)),
    "reshape": (lambda a: np.reshape(a, (4, 6)), (3, 4, 2)),
    "reshape-minus1": (lambda a: np.reshape(a, (-1, 3)), (3, 4, 2)),
    "reshape-F": (lambda a: np.reshape(a, (4, 6), order="F"), (3, 4, 2)),
    "reshape-method-args": (lambda a: a.reshape(2, 12), (3, 4, 2)),
    "reshape-method-tuple": (lambda a: a.reshape((6, 4)), (3, 4, 2)),
    "ravel": (lambda a: np.ravel(a), (3, 4, 2)),
    "ravel-F": (lambda a: np.ravel(a, order="F"), (3, 4, 2)),
    "ravel-method": (lambda a: a.ravel(), (3, 4)),
    "flatten": (lambda a: a.flatten(), (3, 4)),
    "transpose": (lambda a: np.transpose(a), (3, 4, 2)),
    "transpose-axes": (lambda a: np.transpose(a, (1, 2, 0)), (3, 4, 2)),
    "transpose-neg-axes": (lambda a: np.transpose(a, (-1, 0, -2)), (3, 4, 2)),
    "T": (lambda a: a.T, (3, 4)),
    "transpose-method": (lambda a: a.transpose(2, 0, 1), (3, 4, 2)),
    "swapaxes": (lambda a: np.swapaxes(a, 0, 2), (3, 4, 2)),
    "swapaxes-method": (lambda a: a.swapaxes(-1, 1), (3, 4, 2)),
    "moveaxis": (lambda a: np.moveaxis(a, 0, -1), (3, 4, 2)),
    "moveaxis-multi": (lambda a: np.moveaxis(a, (0, 1), (2, 0)), (3, 4, 2)),
    "expand_dims0": (lambda a: np.expand_dims(a, 0), (3, 4)),
    "expand_dims-1": (lambda a: np.expand_dims(a, -1), (3, 4)),
    "expand_dims-tuple": (lambda a: np.expand_dims(a, (0, 2)), (3, 4)),
    "squeeze": (lambda a: np.squeeze(a), (3, 1, 4, 1)),
    "squeeze-axis": (lambda a: np.squeeze(a, axis=1), (3, 1, 4, 1)),
    "squeeze-method": (lambda a: a.squeeze(-1), (3, 1, 4, 1)),
    "broadcast_to": (lambda a: np.broadcast_to(a, (2, 3, 4)), (3, 4)),
    "broadcast_to-1": (lambda a: np.broadcast_to(a, (3, 4)), (3, 1)),
    "diff": (lambda a: np.diff(a), (3, 5)),
    "diff-n2-axis0": (lambda a: np.diff(a, n=2, axis=0), (4, 3)),
    "flip": (lambda a: np.flip(a), (3, 4)),
    "flip-axis0": (lambda a: np.flip(a, axis=0), (3, 4)),
    "flip-axes": (lambda a: np.flip(a, axis=(0, 1)), (3, 4, 2)),
    "roll": (lambda a: np.roll(a, 2), (3, 4)),
    "roll-axis1": (lambda a: np.roll(a, -1, axis=1), (3, 4)),
    "roll-axes": (lambda a: np.roll(a, (1, 2), axis=(0, 1)), (3, 4)),
    "copy": (lambda a: np.copy(a), (3, 4)),
    "copy-method": (lambda a: a.copy(), (3, 4)),
    "getitem": (lambda a: a[1:, ::2], (3, 4)),
    "matmul-const-right": (lambda a: a @ np.arange(8.0).reshape(4, 2), (3, 4)),
    "matmul-const-left": (lambda a: np.arange(6.0).reshape(2, 3) @ a, (3, 4)),
    "matmul-vec": (lambda a: np.matmul(a, np.array([1.0, -2.0, 0.5, 3.0])), (3, 4)),
    "matmul-vec-vec": (lambda a: np.matmul(np.array([1.0, -2.0, 0.5, 3.0]), a), (4,)),
    "matmul-batched": (lambda a: np.matmul(a, np.arange(24.0).reshape(2, 4, 3)), (3, 4)),
    "matmul-stack": (lambda a: a @ np.arange(6.0).reshape(3, 2), (2, 4, 3)),
    "dot-const": (lambda a: np.dot(a, np.arange(8.0).reshape(4, 2)), (3, 4)),
    "dot-const-left": (lambda a: np.dot(np.arange(6.0).reshape(2, 3), a), (3, 4)),
    "dot-3d": (lambda a: np.dot(a, np.arange(24.0).reshape(2, 4, 3)), (3, 4)),
    "dot-method": (lambda a: a.dot(np.arange(4.0)), (3, 4)),
    "dot-scalar": (lambda a: np.dot(a, 2.5), (3, 4)),
    "inner": (lambda a: np.inner(a, np.arange(8.0).reshape(2, 4)), (3, 4)),
    "outer": (lambda a: np.outer(a, np.array([1.0, -1.0, 2.0])), (4,)),
    "outer-left": (lambda a: np.outer(np.array([1.0, -1.0, 2.0]), a), (2, 2)),
    "tensordot": (lambda a: np.tensordot(a, np.arange(24.0).reshape(4, 2, 3), axes=([1, 2], [0, 1])), (3, 4, 2)),
    "tensordot-int": (lambda a: np.tensordot(np.arange(24.0).reshape(2, 3, 4), a, axes=2), (3, 4)),
    "einsum-matvec": (lambda a: np.einsum("ij,j->i", a, np.arange(4.0)), (3, 4)),
    "einsum-implicit": (lambda a: np.einsum("ij,jk", a, np.arange(8.0).reshape(4, 2)), (3, 4)),
    "einsum-trace": (lambda a: np.einsum("ii", a), (3, 3)),
    "einsum-ellipsis": (lambda a: np.einsum("...ij->...ji", a), (2, 3, 4)),
    "solve-const-vec": (lambda a: np.linalg.solve(np.array([[3.0, 1.0, 0.0], [1.0, 4.0, 1.0], [0.5, 0.0, 2.0]]), a), (3,)),
    "solve-const-mat": (lambda a: np.linalg.solve(np.array([[3.0, 1.0, 0.0], [1.0, 4.0, 1.0], [0.5, 0.0, 2.0]]), a), (3, 2)),
}


@pytest.mark.parametrize("name", sorted(LINEAR_OPS))
def test_linear_function_acts_on_each_lane_row(name):
    op, shape = LINEAR_OPS[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    x = random_hd(shape, rng)
    check_linear(op(x), x, op)


@pytest.mark.parametrize("name", ["sum", "reshape", "T", "cumsum", "flip", "matmul-const-right",
                                  "broadcast_to", "diag-1d"])
def test_linear_function_with_shared_identity_seeds(name):
    """Identity seeds with one shared e1/e2 object; lanes again equal op of each row."""
    op, shape = LINEAR_OPS[name]
    x0 = np.arange(1.0, 1.0 + np.prod(shape)).reshape(shape)
    x = seeded(x0, shared=True)
    y = op(x)
    check_linear(y, x, op)
    assert np.all(y.e12 == 0.0)


def test_diff_with_constant_prepend_and_append():
    rng = np.random.default_rng(3)
    x = random_hd((3, 4), rng)
    y = np.diff(x, axis=1, prepend=1.5, append=np.array([[1.0], [2.0], [3.0]]))
    # constants have zero lanes
    assert_close(y.value, np.diff(x.value, axis=1, prepend=1.5, append=np.array([[1.0], [2.0], [3.0]])))
    for lane in LANES:
        expected = np.stack([np.diff(r, axis=1, prepend=0.0, append=np.zeros((3, 1))) for r in getattr(x, lane)])
        assert_close(getattr(y, lane), expected)


def test_like_functions():
    rng = np.random.default_rng(4)
    x = random_hd((2, 3), rng)
    for fn, val in ((np.zeros_like, 0.0), (np.ones_like, 1.0), (lambda a: np.full_like(a, 2.5), 2.5)):
        z = fn(x)
        assert isinstance(z, HyperDual)
        assert z.shape == (2, 3) and z.dtype == np.float64
        np.testing.assert_array_equal(z.value, np.full((2, 3), val))
        # a constant: adding it to x leaves x's lanes unchanged
        s = z + x
        assert_close(s.value, x.value + val)
        for lane in LANES:
            np.testing.assert_array_equal(getattr(s, lane), getattr(x, lane))
    e = np.empty_like(x)
    assert isinstance(e, HyperDual) and e.shape == (2, 3)
    zi = np.zeros_like(x, dtype=int)
    assert type(zi) is np.ndarray and zi.dtype.kind == "i"


# ---------------------------------------------------------------------------------------------
# indexing
# ---------------------------------------------------------------------------------------------
X3 = (3, 4, 5)
_MASK3 = np.random.default_rng(99).normal(size=X3) > 0
INDICES = {
    "int": 1,
    "negative-int": -1,
    "np-int": np.int64(2),
    "tuple-ints": (1, 2),
    "scalar-result": (1, 2, 3),
    "negative-tuple": (-1, -2, -3),
    "slice": slice(1, 3),
    "slice-step": (slice(None, None, 2), 1),
    "negative-step": (slice(None, None, -1), slice(3, 0, -2)),
    "ellipsis": Ellipsis,
    "ellipsis-last": (Ellipsis, 2),
    "ellipsis-mid": (0, Ellipsis, 1),
    "none": (None, 1),
    "none-mid": (1, None, slice(None), None),
    "int-list": [0, 2],
    "int-array-repeats": np.array([2, 0, 2]),
    "negative-int-array": np.array([-1, 0]),
    "adjacent-advanced": (slice(None), [0, 3], [1, 4]),
    "non-adjacent-advanced": ([0, 1], slice(None), [1, 0]),
    "advanced-with-int": (1, [0, 2], slice(1, 3)),
    "broadcast-index-arrays": (np.array([[0], [2]]), np.array([1, 3])),
    "ellipsis-advanced": (Ellipsis, [1, 0]),
    "bool-full-mask": _MASK3,
    "bool-axis0": np.array([True, False, True]),
    "bool-mask-and-int": (np.array([True, False, True]), 0),
    "bool-2d-mask": (slice(None), _MASK3[0, :, :4].any(axis=1)),
    "advanced-2d-array": np.array([[0, 1], [2, 0]]),
}


@pytest.mark.parametrize("name", sorted(INDICES))
def test_indexing_preserves_lanes_exactly(name):
    index = INDICES[name]
    rng = np.random.default_rng(7)
    x = random_hd(X3, rng)
    y = x[index]
    np.testing.assert_array_equal(y.value, x.value[index])
    assert y.shape == x.value[index].shape
    for lane in LANES:
        expected = np.stack([r[index] for r in getattr(x, lane)])
        np.testing.assert_array_equal(getattr(y, lane), expected)


def test_indexing_of_broadcast_result_and_iteration():
    rng = np.random.default_rng(8)
    x = random_hd((4,), rng)
    b = x + np.zeros((3, 1))           # lanes broadcast to (3, 4)
    for index in ((slice(None), [0, 2]), (1,), (b.value > 0,)):
        y = b[index]
        for lane in LANES:
            expected = np.stack([np.broadcast_to(r, (3, 4))[index] for r in getattr(x, lane)])
            np.testing.assert_array_equal(getattr(y, lane), expected)
    rows = list(x.reshape(2, 2))
    assert len(rows) == 2 and len(x) == 4
    np.testing.assert_array_equal(rows[1].e12, x.e12[:, 2:])


def test_index_with_hyperdual_is_refused():
    x = seeded([0.0, 1.0])
    with pytest.raises(IndexError):
        x[x]


def test_take_repeat_tile():
    rng = np.random.default_rng(9)
    x = random_hd((3, 4), rng)
    for op in (lambda a: np.take(a, [2, 0], axis=1), lambda a: np.take(a, [5, 1]),
               lambda a: np.repeat(a, 2, axis=0), lambda a: np.tile(a, (2, 1))):
        check_linear(op(x), x, op, exact=True)


# ---------------------------------------------------------------------------------------------
# item assignment
# ---------------------------------------------------------------------------------------------
SET_CASES = {
    "slice-hd": (slice(1, 3), "hd", (2, 3)),
    "row-hd": (0, "hd", (3,)),
    "slice-broadcast-row-hd": (slice(1, 3), "hd", (3,)),
    "int-array-hd": ([0, 3], "hd", (2, 3)),
    "column-hd": ((slice(None), 1), "hd", (4,)),
    "ellipsis-scalar-hd": ((Ellipsis, 2), "hd", ()),
    "advanced-pairs-hd": (([0, 2, 3], [1, 0, 2]), "hd", (3,)),
    "bool-mask-hd": ("mask", "hd", None),
    "element-hd": ((2, 2), "hd", ()),
    "slice-float": (slice(1, 3), "float", None),
    "int-array-ndarray": (([0, 2], 1), "ndarray", (2,)),
    "bool-mask-ndarray": ("mask", "ndarray", None),
    "everything-ndarray": (Ellipsis, "ndarray", (4, 3)),
}


@pytest.mark.parametrize("name", sorted(SET_CASES))
def test_item_assignment(name):
    index, kind, rshape = SET_CASES[name]
    rng = np.random.default_rng(10)
    x = random_hd((4, 3), rng)
    if isinstance(index, str):
        index = x.value > 0
    before = x.copy()
    before_lanes = {lane: np.array(getattr(x, lane)) for lane in LANES}
    if rshape is None:
        rshape = x.value[index].shape
    if kind == "hd":
        rhs = random_hd(rshape, rng)
        rv = rhs.value
        rl = {lane: getattr(rhs, lane) for lane in LANES}
    elif kind == "float":
        rhs = rv = 0.25
        rl = {lane: np.zeros((getattr(x, lane).shape[0],)) for lane in LANES}
    else:
        rhs = rv = rng.normal(size=rshape)
        rl = {lane: np.zeros((getattr(x, lane).shape[0],) + rshape) for lane in LANES}
    x[index] = rhs
    ev = before.value.copy()
    ev[index] = rv
    np.testing.assert_array_equal(x.value, ev)
    for lane in LANES:
        exp = []
        for r, src in zip(before_lanes[lane], rl[lane]):
            r = r.copy()
            r[index] = src
            exp.append(r)
        np.testing.assert_array_equal(getattr(x, lane), np.stack(exp))
    # the copy taken before the assignment is unchanged
    for lane in LANES:
        np.testing.assert_array_equal(getattr(before, lane), before_lanes[lane])


def test_item_assignment_into_constant_array():
    x = seeded([1.0, 2.0, 3.0])
    z = np.zeros_like(x)
    z = z + np.zeros(3)            # still a constant HyperDual
    z[1:3] = x[0:2] * 2.0
    np.testing.assert_array_equal(z.value, [0.0, 2.0, 4.0])
    np.testing.assert_array_equal(z.e1, [[0.0, 2.0, 0.0], [0.0, 0.0, 2.0], [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(z.e2, z.e1)
    np.testing.assert_array_equal(z.e12, np.zeros((9, 3)))
    # the result of an assignment is a working member of x's pass
    w = z * x
    v, g, h = derivs(w, 3)
    np.testing.assert_array_equal(v, [0.0, 4.0, 12.0])
    assert_close(h[0, 1], [0.0, 2.0, 0.0])
    assert_close(h[1, 2], [0.0, 0.0, 2.0])
    assert_close(h[0, 0], [0.0, 0.0, 0.0])


@pytest.mark.parametrize("index,rshape", [(0, (1, 3)), ([1], (1, 1, 3))], ids=["row-from-1x3", "fancy-from-1x1x3"])
def test_item_assignment_drops_leading_unit_axes_like_numpy(index, rshape):
    rng = np.random.default_rng(18)
    x = random_hd((2, 3), rng)
    before = {lane: np.array(getattr(x, lane)) for lane in LANES}
    ev = x.value.copy()
    rhs = random_hd(rshape, rng)
    ev[index] = rhs.value                      # plain NumPy accepts this
    x[index] = rhs
    np.testing.assert_array_equal(x.value, ev)
    for lane in LANES:
        exp = before[lane].copy()
        for r in range(exp.shape[0]):
            exp[r][index] = getattr(rhs, lane)[r]
        np.testing.assert_array_equal(getattr(x, lane), exp)


def test_sort_method_in_place():
    x = seeded([3.0, 1.0, 2.0])
    x.sort()
    np.testing.assert_array_equal(x.value, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(x.e1, np.eye(3)[:, [1, 2, 0]])


# ---------------------------------------------------------------------------------------------
# joining: constants and HyperDuals
# ---------------------------------------------------------------------------------------------
def _join_case(name, a, b, C):
    """(HyperDual result, value op, lane op with zeros for constants)."""
    Z = np.zeros_like(C)
    cases = {
        "concatenate": (lambda u, v, c: np.concatenate([u, c, v]), None),
        "concatenate-const-first": (lambda u, v, c: np.concatenate([c, u], axis=1), None),
        "concatenate-axis-none": (lambda u, v, c: np.concatenate([u, c], axis=None), None),
        "concatenate-neg-axis": (lambda u, v, c: np.concatenate([u, v, c], axis=-2), None),
        "stack": (lambda u, v, c: np.stack([u, c]), None),
        "stack-axis1": (lambda u, v, c: np.stack([c, u, u], axis=1), None),
        "stack-axis-1": (lambda u, v, c: np.stack([u, c], axis=-1), None),
        "hstack": (lambda u, v, c: np.hstack([u, c, u]), None),
        "vstack": (lambda u, v, c: np.vstack([c, u, v]), None),
        "vstack-1d": (lambda u, v, c: np.vstack([u[0], c[1], v[0]]), None),
        "hstack-1d": (lambda u, v, c: np.hstack([u[0], c[1]]), None),
        "column_stack": (lambda u, v, c: np.column_stack([u[0], c[1]]), None),
        "where-hd-const": (lambda u, v, c: np.where(np.array([True, False, True]), u, c), None),
        "where-const-hd": (lambda u, v, c: np.where(np.array([[True], [False]]), c, u), None),
        "where-hd-hd": (lambda u, v, c: np.where(c > 0, u, v), "mask-from-const"),
        "where-hd-scalar": (lambda u, v, c: np.where(np.array([True, False, False]), u, 0.5), None),
    }
    op, _ = cases[name]
    y = op(a, b, C)
    return y, op, Z


JOIN_NAMES = ["concatenate", "concatenate-const-first", "concatenate-axis-none", "concatenate-neg-axis",
              "stack", "stack-axis1", "stack-axis-1", "hstack", "vstack", "vstack-1d", "hstack-1d",
              "column_stack", "where-hd-const", "where-const-hd", "where-hd-hd", "where-hd-scalar"]


@pytest.mark.parametrize("name", JOIN_NAMES)
def test_joining_constants_and_hyperduals(name):
    rng = np.random.default_rng(12)
    a = random_hd((2, 3), rng)
    b = random_hd((2, 3), rng)
    C = rng.normal(size=(2, 3))
    y, op, Z = _join_case(name, a, b, C)
    assert isinstance(y, HyperDual)
    assert_close(y.value, op(a.value, b.value, C), rtol=0, atol=0)
    for lane in LANES:
        la, lb = getattr(a, lane), getattr(b, lane)
        if name == "where-hd-scalar":
            expected = np.stack([np.where(np.array([True, False, False]), ra, 0.0) for ra in la])
        elif name == "where-hd-hd":
            expected = np.stack([np.where(C > 0, ra, rb) for ra, rb in zip(la, lb)])
        else:
            expected = np.stack([op(ra, rb, Z) for ra, rb in zip(la, lb)])
        np.testing.assert_array_equal(getattr(y, lane), expected)


def test_where_value_only_form():
    x = seeded([0.0, 2.0, -1.0, 3.0])
    got = np.where(x > 0.5)
    assert isinstance(got, tuple) and type(got[0]) is np.ndarray
    np.testing.assert_array_equal(got[0], [1, 3])


def test_concatenate_with_only_constants_in_hyperdual_wrapper():
    z = np.zeros_like(seeded([1.0, 2.0]))
    y = np.concatenate([z, np.ones(2)])
    assert isinstance(y, HyperDual)
    np.testing.assert_array_equal(y.value, [0.0, 0.0, 1.0, 1.0])


# ---------------------------------------------------------------------------------------------
# nonlinear reductions: prod, max/min, sort, var/std
# ---------------------------------------------------------------------------------------------
def prod_reference(v):
    """Closed form for prod over a 1-D vector: grad_i = prod_{k!=i}, H_ij = prod_{k!=i,j} (i != j)."""
    n = v.size
    g = np.array([np.prod(np.delete(v, i)) for i in range(n)])
    h = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j:
                h[i, j] = np.prod(np.delete(v, [i, j]))
    return np.prod(v), g, h


@pytest.mark.parametrize("v", [
    [2.0, 3.0, 4.0, 5.0], [2.0, 0.0, 3.0, 4.0], [0.0, 0.0, 3.0, 4.0], [0.0, 0.0, 0.0, 2.0],
    [1.5, -2.0, 0.5, 3.0, -1.0], [0.0, 7.0, 0.0, -2.0, 3.0, 0.5, 1.25], [4.0], [0.0, 5.0],
    [1e8, 1e-8, 3.0], [0.0, 0.0, 0.0],
], ids=lambda v: str(v))
def test_prod_vector_exact_with_zeros(v):
    v = np.array(v)
    y = np.prod(seeded(v))
    val, g, h = derivs(y, v.size)
    rv, rg, rh = prod_reference(v)
    assert_close(val, rv, rtol=1e-14)
    assert_close(g, rg, rtol=1e-14)
    assert_close(h, rh, rtol=1e-14)
    # exact zeros where the closed form has zeros (no 0 * inf or cancellation)
    assert np.all(h[rh == 0.0] == 0.0)
    assert np.all(g[rg == 0.0] == 0.0)


@pytest.mark.parametrize("axis,keepdims", [(0, False), (1, False), (-1, True), ((0, 1), False), (None, True)])
def test_prod_axis(axis, keepdims):
    x0 = np.array([[2.0, 0.0, 3.0], [1.5, -1.0, 0.0]])
    y = np.prod(seeded(x0), axis=axis, keepdims=keepdims)
    v, g, h = derivs(y, 6)
    assert_close(v, np.prod(x0, axis=axis, keepdims=keepdims))
    # reference: each output is the product over the flat inputs k with sel[k][out]
    idx = np.arange(6).reshape(2, 3)
    sel = np.stack([np.any(idx == k, axis=axis, keepdims=keepdims) for k in range(6)])
    assert sel.shape[1:] == v.shape
    G = np.zeros_like(g)
    H = np.zeros_like(h)
    for out in np.ndindex(v.shape):
        members = [k for k in range(6) if sel[(k,) + out]]
        rv, rg, rh = prod_reference(x0.ravel()[members])
        for a, ka in enumerate(members):
            G[(ka,) + out] = rg[a]
            for b, kb in enumerate(members):
                H[(ka, kb) + out] = rh[a, b]
    assert_close(g, G)
    assert_close(h, H)


def test_prod_method_and_float_dtype():
    x0 = np.array([1.0, 2.0, 3.0])
    y = seeded(x0).prod()
    v, g, h = derivs(y, 3)
    assert_close(g, [6.0, 3.0, 2.0])
    assert_close(h, [[0.0, 3.0, 2.0], [3.0, 0.0, 1.0], [2.0, 1.0, 0.0]])


EXTREMES = {"max": (np.max, np.argmax), "min": (np.min, np.argmin),
            "amax": (np.amax, np.argmax), "amin": (np.amin, np.argmin),
            "max-method": (lambda a, **k: a.max(**k), np.argmax),
            "min-method": (lambda a, **k: a.min(**k), np.argmin)}


@pytest.mark.parametrize("axis,keepdims", [(None, False), (0, False), (1, True), (-1, False), (None, True)])
@pytest.mark.parametrize("name", sorted(EXTREMES))
def test_max_min_select_by_value_first_tie(name, axis, keepdims):
    fn, arg = EXTREMES[name]
    x0 = np.array([[1.0, 5.0, 5.0, -2.0], [3.0, -4.0, 3.0, -4.0], [0.5, 2.0, 5.0, 7.0]])
    x = seeded(x0)
    y = fn(x ** 2 * 0.5 + x, axis=axis, keepdims=keepdims)   # curvature so e12 is selected too
    f0 = x0 ** 2 * 0.5 + x0
    n = x0.size
    v, g, h = derivs(y, n)
    assert_close(v, fn(f0, axis=axis, keepdims=keepdims))
    # reference: pick the flat index of the first extreme entry of each slice
    flat = np.arange(n).reshape(x0.shape)
    if axis is None:
        chosen = np.array(flat.ravel()[arg(f0)])
        chosen = chosen.reshape((1, 1)) if keepdims else chosen
    else:
        chosen = np.take_along_axis(flat, np.expand_dims(arg(f0, axis=axis), axis), axis)
        chosen = chosen if keepdims else np.squeeze(chosen, axis)
    G = np.zeros((n,) + chosen.shape)
    H = np.zeros((n, n) + chosen.shape)
    for out in np.ndindex(chosen.shape):
        k = chosen[out]
        G[(k,) + out] = x0.ravel()[k] + 1.0
        H[(k, k) + out] = 1.0
    assert_close(g, G)
    assert_close(h, H)


@pytest.mark.parametrize("axis", [None, 0, -1, (0,)])
@pytest.mark.parametrize("name", sorted(EXTREMES))
@pytest.mark.parametrize("shared", [True, False])
def test_max_min_of_a_vector_first_tie(name, axis, shared):
    """The whole of a 1-D array (the short path: one entry's lanes, copied): the first of
    tied entries, with its gradient row and curvature; the result is not a view."""
    fn, arg = EXTREMES[name]
    x0 = np.array([1.0, -3.0, 5.0, 5.0, -3.0, 0.5])
    x = seeded(x0, shared)
    y = fn(x ** 2 * 0.5 + x, axis=axis)    # f = x²/2 + x: f' = x + 1, f'' = 1
    f0 = x0 ** 2 * 0.5 + x0
    k = arg(f0)                             # max: index 2 (first of the tie); min: index 5
    v, g, h = derivs(y, x0.size)
    assert_close(v, f0[k])
    G = np.zeros(x0.size)
    G[k] = x0[k] + 1.0
    H = np.zeros((x0.size, x0.size))
    H[k, k] = 1.0
    assert_close(g, G)
    assert_close(h, H)
    m = fn(x, axis=axis)
    x[np.argmax(x0) if arg is np.argmax else np.argmin(x0)] = 100.0  # m is not a view of x:
    assert_close(m.value, x0.max() if arg is np.argmax else x0.min())  # assignment is allowed


def test_max_of_0d_and_nan_propagation():
    y = np.max(seeded(2.0))
    assert_close(y.value, 2.0)
    assert_close(y.e1, [1.0])
    with np.errstate(invalid="ignore"):
        z = np.log(seeded([1.0, -1.0, 3.0]))
    m = np.max(z)
    assert np.isnan(m.value) and np.all(np.isnan(m.e1))


@pytest.mark.parametrize("axis", [-1, 0, None])
def test_sort_permutes_lanes_by_value(axis):
    rng = np.random.default_rng(13)
    x = random_hd((3, 4), rng)
    y = np.sort(x, axis=axis)
    perm_src = x.value.ravel() if axis is None else x.value
    ax = 0 if axis is None else axis
    idx = np.argsort(perm_src, axis=ax)
    assert_close(y.value, np.sort(x.value, axis=axis), rtol=0, atol=0)
    for lane in LANES:
        rows = getattr(x, lane)
        expected = np.stack([np.take_along_axis(r.ravel() if axis is None else r, idx, ax) for r in rows])
        np.testing.assert_array_equal(getattr(y, lane), expected)


def test_sort_ties_are_stable_with_stable_kind():
    x = seeded([2.0, 1.0, 2.0, 1.0])
    y = np.sort(x, kind="stable")
    np.testing.assert_array_equal(y.value, [1.0, 1.0, 2.0, 2.0])
    np.testing.assert_array_equal(y.e1, np.eye(4)[:, [1, 3, 0, 2]])


@pytest.mark.parametrize("ddof", [0, 1])
@pytest.mark.parametrize("axis", [None, 0, 1])
def test_var_closed_form(axis, ddof):
    x0 = np.array([[1.0, 2.5, -0.5], [3.0, 0.25, 2.0]])
    y = np.var(seeded(x0), axis=axis, ddof=ddof)
    v, g, h = derivs(y, 6)
    assert_close(v, np.var(x0, axis=axis, ddof=ddof))
    # var = sum (x - mean)^2 / (m - ddof): grad = 2 (x - mean) / (m - ddof) on members,
    # Hessian = 2 / (m - ddof) (delta_ij - 1/m) on members of the same group
    idx = np.arange(6).reshape(2, 3)
    G = np.zeros_like(g)
    H = np.zeros_like(h)
    groups = [idx.ravel()] if axis is None else list(np.moveaxis(idx, axis, -1))
    for o, members in enumerate(groups):
        out = () if axis is None else (o,)
        m = len(members)
        mu = x0.ravel()[members].mean()
        for a in members:
            G[(a,) + out] = 2 * (x0.ravel()[a] - mu) / (m - ddof)
            for b in members:
                H[(a, b) + out] = 2 / (m - ddof) * ((a == b) - 1 / m)
    assert_close(g, G, atol=1e-13)
    assert_close(h, H, atol=1e-13)


@pytest.mark.parametrize("ddof", [0, 1])
@pytest.mark.parametrize("axis", [None, 1])
def test_std_against_fd(axis, ddof):
    x0 = np.array([[1.0, 2.5, -0.5], [3.0, 0.25, 2.0]])
    check_against_fd(lambda a: np.std(a, axis=axis, ddof=ddof), x0)


def test_mean_keepdims_and_average():
    x0 = np.array([[1.0, 2.0], [3.0, 5.0]])
    y = np.mean(seeded(x0), axis=0, keepdims=True)
    v, g, h = derivs(y, 4)
    assert_close(v, [[2.0, 3.5]])
    assert_close(g, np.eye(4).reshape(4, 2, 2).mean(axis=1, keepdims=True))


# ---------------------------------------------------------------------------------------------
# multilinear functions with both sides seeded
# ---------------------------------------------------------------------------------------------
A3 = np.array([[2.0, -1.0, 0.5], [0.3, 1.0, 4.0], [-2.0, 0.7, 3.0]])
BILINEAR_CLOSED = {
    # name: (f, Hessian closed form for x in R^3 (scalar output))
    "x@A@x": (lambda x: x @ A3 @ x, A3 + A3.T),
    "dot(x,dot(A,x))": (lambda x: np.dot(x, np.dot(A3, x)), A3 + A3.T),
    "einsum-xAx": (lambda x: np.einsum("i,ij,j->", x, A3, x), A3 + A3.T),
    "einsum-xAx-implicit": (lambda x: np.einsum("i,ij,j", x, A3, x), A3 + A3.T),
    "inner(x,A@x)": (lambda x: np.inner(x, A3 @ x), A3 + A3.T),
    "x@x": (lambda x: x @ x, 2 * np.eye(3)),
    "dot(x,x)": (lambda x: np.dot(x, x), 2 * np.eye(3)),
    "inner(x,x)": (lambda x: np.inner(x, x), 2 * np.eye(3)),
    "vdot(x,x)": (lambda x: np.vdot(x, x), 2 * np.eye(3)),
    "tensordot(x,x,1)": (lambda x: np.tensordot(x, x, axes=1), 2 * np.eye(3)),
    "einsum-i,i": (lambda x: np.einsum("i,i->", x, x), 2 * np.eye(3)),
    "x.dot(A.T@x)": (lambda x: x.dot(A3.T @ x), A3 + A3.T),
}


@pytest.mark.parametrize("shared", [False, True], ids=["e2-own", "e2-shared"])
@pytest.mark.parametrize("name", sorted(BILINEAR_CLOSED))
def test_quadratic_forms_closed_form(name, shared):
    f, H = BILINEAR_CLOSED[name]
    x0 = np.array([0.5, -1.5, 2.0])
    v, g, h = derivs(f(seeded(x0, shared)), 3)
    assert_close(v, x0 @ (H / 2) @ x0)
    assert_close(g, H @ x0)
    assert_close(h, H)


def test_quadratic_form_dense_seeds():
    """e1 = V (2x3), e2 = W (3x3), P = 6: e12[p] = V[ip]^T (A + A^T) W[jp]; e1 = V grad."""
    rng = np.random.default_rng(14)
    V, W = rng.normal(size=(2, 3)), rng.normal(size=(3, 3))
    x0 = np.array([0.5, -1.5, 2.0])
    y = HyperDual(x0, e1=V, e2=W) @ A3 @ HyperDual(x0, e1=V, e2=W)
    H = A3 + A3.T
    ip, jp = np.repeat(np.arange(2), 3), np.tile(np.arange(3), 2)
    assert_close(y.value, x0 @ A3 @ x0)
    assert_close(y.e1, V @ (H @ x0))
    assert_close(y.e2, W @ (H @ x0))
    assert_close(y.e12, np.einsum("pi,ij,pj->p", V[ip], H, W[jp]))


def test_cubic_einsum_three_operands():
    x0 = np.array([0.5, -1.5, 2.0])
    v, g, h = derivs(np.einsum("i,i,i->", *(seeded(x0),) * 3), 3)
    assert_close(v, np.sum(x0 ** 3))
    assert_close(g, 3 * x0 ** 2)
    assert_close(h, np.diag(6 * x0))


def test_outer_both_seeded_closed_form():
    x0 = np.array([0.5, -1.5, 2.0])
    v, g, h = derivs(np.outer(*(seeded(x0),) * 2), 3)
    E = np.eye(3)
    assert_close(v, np.outer(x0, x0))
    # d(x_a x_b)/dx_i = δ_ai x_b + x_a δ_bi ; d2/dx_i dx_j = δ_ai δ_bj + δ_aj δ_bi
    assert_close(g, E[:, :, None] * x0[None, None, :] + x0[None, :, None] * E[:, None, :])
    assert_close(h, E[:, None, :, None] * E[None, :, None, :] + E[None, :, :, None] * E[:, None, None, :])


MATRIX_PRODUCTS = {
    "X@X": lambda x: x.reshape(2, 2) @ x.reshape(2, 2),
    "matmul(X,X.T)": lambda x: np.matmul(x.reshape(2, 2), x.reshape(2, 2).T),
    "dot(X,X)": lambda x: np.dot(x.reshape(2, 2), x.reshape(2, 2)),
    "einsum-ij,jk": lambda x: np.einsum("ij,jk->ik", x.reshape(2, 2), x.reshape(2, 2)),
    "einsum-ij,ij->i": lambda x: np.einsum("ij,ij->i", x.reshape(2, 2), x.reshape(2, 2)),
    "tensordot-axes": lambda x: np.tensordot(x.reshape(2, 2), x.reshape(2, 2), axes=([1], [0])),
    "tensordot-int": lambda x: np.tensordot(x.reshape(2, 2), x.reshape(2, 2), axes=2),
    "inner(X,X)": lambda x: np.inner(x.reshape(2, 2), x.reshape(2, 2)),
    "X@x[:2]": lambda x: x.reshape(2, 2) @ x[:2],
    "x[:2]@X": lambda x: x[:2] @ x.reshape(2, 2),
    "batched": lambda x: np.matmul(x.reshape(2, 1, 2), x.reshape(2, 2, 1)),
    "outer-sum": lambda x: np.outer(x[:2], x[2:]).sum(axis=0),
    "trace(X@X)": lambda x: np.trace(x.reshape(2, 2) @ x.reshape(2, 2)),
}


@pytest.mark.parametrize("name", sorted(MATRIX_PRODUCTS))
def test_matrix_products_both_seeded_against_fd(name):
    check_against_fd(MATRIX_PRODUCTS[name], np.array([0.5, -1.5, 2.0, 0.75]))


# ---------------------------------------------------------------------------------------------
# norms
# ---------------------------------------------------------------------------------------------
XV = np.array([0.5, -1.5, 2.0, 0.25])


def test_vector_norm_2_closed_form():
    for ord_ in (None, 2):
        v, g, h = derivs(np.linalg.norm(seeded(XV), ord=ord_), 4)
        r = np.sqrt(np.sum(XV ** 2))
        assert_close(v, r)
        assert_close(g, XV / r)
        assert_close(h, (np.eye(4) - np.outer(XV, XV) / r ** 2) / r)


def test_vector_norm_1_and_inf_closed_form():
    v, g, h = derivs(np.linalg.norm(seeded(XV), ord=1), 4)
    assert_close(v, np.sum(np.abs(XV)))
    assert_close(g, np.sign(XV))
    assert np.all(h == 0.0)
    v, g, h = derivs(np.linalg.norm(seeded(XV), ord=np.inf), 4)
    assert_close(v, 2.0)
    assert_close(g, [0.0, 0.0, 1.0, 0.0])
    assert np.all(h == 0.0)
    v, g, h = derivs(np.linalg.norm(seeded(XV), ord=-np.inf), 4)
    assert_close(v, 0.25)
    assert_close(g, [0.0, 0.0, 0.0, 1.0])
    v, g, h = derivs(np.linalg.norm(seeded(-XV), ord=np.inf), 4)
    assert_close(g, [0.0, 0.0, -1.0, 0.0])


@pytest.mark.parametrize("p", [3, 1.5, 4.0])
def test_vector_norm_p_against_closed_form_and_fd(p):
    v, g, h = check_against_fd(lambda a: np.linalg.norm(a, ord=p), XV)
    # closed form: r = (Σ|x|^p)^(1/p); g = sign(x)|x|^(p-1) r^(1-p);
    # H = (p-1) r^(1-p) diag(|x|^(p-2)) + (1-p) r^(1-2p) u u^T with u = sign(x)|x|^(p-1)
    a = np.abs(XV)
    r = np.sum(a ** p) ** (1 / p)
    u = np.sign(XV) * a ** (p - 1)
    assert_close(v, r)
    assert_close(g, u * r ** (1 - p), rtol=1e-12)
    assert_close(h, (p - 1) * r ** (1 - p) * np.diag(a ** (p - 2)) + (1 - p) * r ** (1 - 2 * p) * np.outer(u, u),
                 rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("axis,ord_", [(0, None), (1, None), (1, 1), (0, np.inf), (-1, 3)])
def test_vector_norm_along_axis_against_fd(axis, ord_):
    check_against_fd(lambda a: np.linalg.norm(a.reshape(2, 3), ord=ord_, axis=axis),
                     np.array([0.5, -1.5, 2.0, 0.25, 1.25, -0.75]))


XM = np.array([[0.5, -1.5, 2.0], [0.25, 1.25, -0.75], [3.0, 0.1, -0.2]])


def test_matrix_norm_fro_closed_form():
    for kw in ({}, {"ord": "fro"}, {"ord": None, "axis": (0, 1)}):
        v, g, h = derivs(np.linalg.norm(seeded(XM), **kw), 9)
        x = XM.ravel()
        r = np.sqrt(np.sum(x ** 2))
        assert_close(v, r)
        assert_close(g, x / r)
        assert_close(h, (np.eye(9) - np.outer(x, x) / r ** 2) / r)


@pytest.mark.parametrize("ord_", [1, np.inf, -1, -np.inf])
def test_matrix_norm_1_inf_closed_form(ord_):
    v, g, h = derivs(np.linalg.norm(seeded(XM), ord=ord_), 9)
    A = np.abs(XM)
    if ord_ in (1, -1):
        sums = A.sum(axis=0)
        k = np.argmax(sums) if ord_ == 1 else np.argmin(sums)
        G = np.zeros((3, 3))
        G[:, k] = np.sign(XM[:, k])
    else:
        sums = A.sum(axis=1)
        k = np.argmax(sums) if ord_ == np.inf else np.argmin(sums)
        G = np.zeros((3, 3))
        G[k, :] = np.sign(XM[k, :])
    assert_close(v, np.linalg.norm(XM, ord=ord_))
    assert_close(g, G.ravel())
    assert np.all(h == 0.0)


def test_matrix_norm_keepdims_and_unsupported_ord():
    y = np.linalg.norm(seeded(XM), ord=1, keepdims=True)
    assert y.shape == (1, 1)
    assert_close(y.value, np.linalg.norm(XM, ord=1, keepdims=True))
    with pytest.raises(TypeError):
        np.linalg.norm(seeded(XM), ord=2)


# ---------------------------------------------------------------------------------------------
# linear algebra: inv, det, slogdet, solve
# ---------------------------------------------------------------------------------------------
def test_inv_against_fd_and_closed_form_gradient():
    v, g, h = check_against_fd(lambda a: np.linalg.inv(a.reshape(3, 3)), XM.ravel())
    Ai = np.linalg.inv(XM)
    # d(A^-1)_ab / dA_ij = -(A^-1)_ai (A^-1)_jb
    G = -np.einsum("ai,jb->ijab", Ai, Ai).reshape(9, 3, 3)
    assert_close(g, G, rtol=1e-11, atol=1e-13)
    # d2(A^-1)_ab / dA_ij dA_kl = (A^-1)_ai (A^-1)_jk (A^-1)_lb + (A^-1)_ak (A^-1)_li (A^-1)_jb
    H = (np.einsum("ai,jk,lb->ijklab", Ai, Ai, Ai) + np.einsum("ak,li,jb->ijklab", Ai, Ai, Ai)).reshape(9, 9, 3, 3)
    assert_close(h, H, rtol=1e-10, atol=1e-12)


def test_inv_with_e12_input_lane():
    """A(t) = A0 + t1 B + t2 C + t1 t2 D: the input's cross lane D enters as -A^-1 D A^-1."""
    rng = np.random.default_rng(15)
    B, C, D = rng.normal(size=(3, 3, 3))
    A = HyperDual(XM, e1=B, e2=C, e12=D)
    y = np.linalg.inv(A)
    Ai = np.linalg.inv(XM)
    assert_close(y.value, Ai)
    assert_close(y.e1, [-Ai @ B @ Ai], rtol=1e-11, atol=1e-13)
    assert_close(y.e12, [Ai @ B @ Ai @ C @ Ai + Ai @ C @ Ai @ B @ Ai - Ai @ D @ Ai], rtol=1e-11, atol=1e-13)
    # the same from a finite difference in (t1, t2)
    f = lambda t: np.linalg.inv(XM + t[0] * B + t[1] * C + t[0] * t[1] * D)
    assert_close(y.e12[0], fd_hess(f, np.zeros(2))[0, 1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("M", [XM, -XM, np.array([[2.0, 1.0], [1.0, 3.0]]), np.array([[0.0, 1.0], [1.0, 0.0]])],
                         ids=["3x3", "3x3-neg", "2x2-spd", "2x2-negdet"])
def test_det_and_slogdet_closed_form(M):
    n = M.shape[0]
    Ai = np.linalg.inv(M)
    d = np.linalg.det(M)
    # Jacobi: d det / dA_ij = det (A^-1)_ji ; d2 det / dA_ij dA_kl = det [(A^-1)_ji (A^-1)_lk - (A^-1)_li (A^-1)_jk]
    G = (d * Ai.T).ravel()
    H = d * (np.einsum("ji,lk->ijkl", Ai, Ai) - np.einsum("li,jk->ijkl", Ai, Ai)).reshape(n * n, n * n)
    v, g, h = derivs(np.linalg.det(seeded(M)), n * n)
    assert_close(v, d, rtol=1e-13)
    assert_close(g, G, rtol=1e-11, atol=1e-13)
    assert_close(h, H, rtol=1e-11, atol=1e-13)
    # the closed form itself agrees with finite differences of np.linalg.det
    assert_close(H, fd_hess(lambda a: np.linalg.det(a.reshape(n, n)), M.ravel()), rtol=1e-5, atol=1e-5 * np.abs(H).max())
    sign, logdet = np.linalg.slogdet(seeded(M))
    assert type(sign) is not HyperDual and float(sign) == np.sign(d)
    v, g, h = derivs(logdet, n * n)
    assert_close(v, np.log(abs(d)), rtol=1e-13, atol=1e-14)
    assert_close(g, Ai.T.ravel(), rtol=1e-12, atol=1e-14)
    assert_close(h, -np.einsum("jk,li->ijkl", Ai, Ai).reshape(n * n, n * n), rtol=1e-11, atol=1e-13)


def test_slogdet_result_fields_and_constant_input():
    r = np.linalg.slogdet(seeded(XM))
    assert isinstance(r.logabsdet, HyperDual)
    assert_close(r.logabsdet.value, np.linalg.slogdet(XM)[1])
    c = np.linalg.slogdet(np.zeros_like(seeded(XM)) + XM)
    assert_close(c.logabsdet.value, np.linalg.slogdet(XM)[1])


def test_det_of_batched_stack_against_fd():
    M = np.stack([XM, XM.T * 0.5 + np.eye(3)])
    check_against_fd(lambda a: np.linalg.det(a.reshape(2, 3, 3)), M.ravel())


def test_solve_with_seeded_matrix_and_rhs_against_fd():
    b0 = np.array([1.0, -2.0, 0.5])
    z0 = np.concatenate([XM.ravel(), b0])
    check_against_fd(lambda z: np.linalg.solve(z[:9].reshape(3, 3), z[9:]), z0)
    # matrix right-hand side, seeded A only
    B = np.array([[1.0, 2.0], [0.0, -1.0], [3.0, 0.5]])
    check_against_fd(lambda z: np.linalg.solve(z.reshape(3, 3), B), XM.ravel())


def test_solve_constant_matrix_closed_form():
    b0 = np.array([1.0, -2.0, 0.5])
    v, g, h = derivs(np.linalg.solve(XM, seeded(b0) ** 2), 3)
    Ai = np.linalg.inv(XM)
    assert_close(v, Ai @ b0 ** 2, rtol=1e-12, atol=1e-14)
    assert_close(g, (Ai * 2 * b0[None, :]).T, rtol=1e-12, atol=1e-14)
    H = np.zeros((3, 3, 3))
    for i in range(3):
        H[i, i] = 2 * Ai[:, i]
    assert_close(h, H, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------------------------
# dense seeds through nonlinear functions: V^T H W
# ---------------------------------------------------------------------------------------------
DENSE_FUNCS = {
    "det": (lambda a: np.linalg.det(a.reshape(3, 3)), XM.ravel()),
    "logdet": (lambda a: np.linalg.slogdet(a.reshape(3, 3))[1], XM.ravel()),
    "prod": (lambda a: np.prod(a), np.array([1.5, -2.0, 0.5, 3.0, 0.0])),
    "norm3": (lambda a: np.linalg.norm(a, 3), XV),
    "var": (lambda a: np.var(a), XV),
    "trace-inv": (lambda a: np.trace(np.linalg.inv(a.reshape(3, 3))), XM.ravel()),
}


@pytest.mark.parametrize("name", sorted(DENSE_FUNCS))
def test_dense_seed_bilinear_forms_against_fd(name):
    f, x0 = DENSE_FUNCS[name]
    rng = np.random.default_rng(16)
    n = x0.size
    V, W = rng.normal(size=(2, n)), rng.normal(size=(3, n))
    ip, jp = np.array([0, 1, 1, 0]), np.array([2, 0, 1, 1])
    y = f(HyperDual(x0, e1=V, e2=W, pairs=(ip, jp)))
    G, H = fd_grad(f, x0), fd_hess(f, x0)
    sg, sh = max(1.0, np.abs(G).max()), max(1.0, np.abs(H).max())
    assert_close(y.value, f(x0))
    assert_close(y.e1, V @ G, rtol=1e-7, atol=1e-7 * sg * n)
    assert_close(y.e2, W @ G, rtol=1e-7, atol=1e-7 * sg * n)
    assert_close(y.e12, np.einsum("pi,ij,pj->p", V[ip], H, W[jp]), rtol=1e-5, atol=1e-5 * sh * n)


# ---------------------------------------------------------------------------------------------
# value-only functions
# ---------------------------------------------------------------------------------------------
VALUE_ONLY = {
    "argmax": lambda a: np.argmax(a),
    "argmax-axis": lambda a: np.argmax(a, axis=1),
    "argmin": lambda a: np.argmin(a, axis=0),
    "argsort": lambda a: np.argsort(a, axis=1),
    "allclose": lambda a: np.allclose(a, a * 1.0),
    "isclose": lambda a: np.isclose(a, 0.5),
    "any": lambda a: np.any(a > 1.0),
    "all": lambda a: np.all(a, axis=0),
    "count_nonzero": lambda a: np.count_nonzero(a),
    "count_nonzero-axis": lambda a: np.count_nonzero(a, axis=1),
    "shape": lambda a: np.shape(a),
    "ndim": lambda a: np.ndim(a),
    "size": lambda a: np.size(a),
    "nonzero": lambda a: np.nonzero(a),
}


@pytest.mark.parametrize("name", sorted(VALUE_ONLY))
def test_value_only_functions_return_plain_results(name):
    fn = VALUE_ONLY[name]
    x0 = np.array([[0.5, 0.0, 2.0], [3.0, -1.0, 0.5]])
    got = fn(seeded(x0))
    want = fn(x0)
    flat = got if isinstance(got, tuple) else (got,)
    for item in flat:
        assert not isinstance(item, HyperDual)
    if isinstance(want, tuple):
        assert len(got) == len(want)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)
    else:
        np.testing.assert_array_equal(got, want)
        assert np.asarray(got).dtype == np.asarray(want).dtype


def test_value_only_methods():
    x0 = np.array([[0.5, 0.0, 2.0], [3.0, -1.0, 0.5]])
    x = seeded(x0)
    assert x.argmax() == 3 and x.argmin() == 4
    np.testing.assert_array_equal(x.argsort(), np.argsort(x0))
    assert x.any() and not x.all()
    assert type(x.argmax(axis=0)) is np.ndarray
    assert x.shape == (2, 3) and x.ndim == 2 and x.size == 6 and x.dtype == np.float64


# ---------------------------------------------------------------------------------------------
# refusals and errors
# ---------------------------------------------------------------------------------------------
REFUSALS = {
    "np.asarray": lambda x: np.asarray(x),
    "np.array": lambda x: np.array(x),
    "np.asarray-dtype": lambda x: np.asarray(x, dtype=float),
    "float": lambda x: float(x[0]),
    "int": lambda x: int(x[0]),
    "float-0d": lambda x: float(np.sum(x)),
    "item": lambda x: x.item(),
    "item-0d": lambda x: np.sum(x).item(),
    "tolist": lambda x: x.tolist(),
    "assign-into-ndarray-slice": lambda x: np.zeros(3).__setitem__(slice(0, 3), x),
    "assign-into-ndarray-ellipsis": lambda x: np.zeros(3).__setitem__(Ellipsis, x),
    "out=ndarray": lambda x: np.add(x, 1.0, out=np.zeros(3)),
    "astype-int": lambda x: x.astype(int),
}


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_escaping_to_plain_arrays_is_refused(name):
    x = seeded([1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match=r"\.value"):
        REFUSALS[name](x)


def test_assigning_hyperdual_into_ndarray_element_is_refused():
    # For one element NumPy itself turns the refusal into ValueError("setting an array element
    # with a sequence"); hyperdual's TypeError pointing to `.value` is its __cause__.  Slices and
    # masks raise the TypeError directly (test_escaping_to_plain_arrays_is_refused).
    x = seeded([1.0, 2.0, 3.0])
    arr = np.zeros(3)
    with pytest.raises(ValueError, match="sequence") as info:
        arr[0] = x[0]
    assert isinstance(info.value.__cause__, TypeError)
    assert ".value" in str(info.value.__cause__)
    np.testing.assert_array_equal(arr, np.zeros(3))


def test_astype_float64_is_allowed():
    x = seeded([1.0, 2.0])
    y = x.astype(np.float64)
    np.testing.assert_array_equal(y.e1, x.e1)


@pytest.mark.parametrize("fn,name", [
    (lambda x: np.fmod(x, 2.0), "fmod"),
    (lambda x: np.cumprod(x), "cumprod"),
    (lambda x: np.median(x), "median"),
    (lambda x: np.percentile(x, 50), "percentile"),
    (lambda x: np.linalg.eigvals(x.reshape(2, 2)), "eigvals"),
    (lambda x: np.linalg.norm(x.reshape(2, 2), ord="nuc"), "nuc"),
    (lambda x: np.remainder(x, 2.0), "remainder"),
], ids=["fmod", "cumprod", "median", "percentile", "eigvals", "norm-nuc", "remainder"])
def test_unsupported_functions_raise_type_error_naming_them(fn, name):
    x = seeded([1.0, 2.0, 3.0, 4.0])
    with pytest.raises(TypeError, match=name):
        fn(x)


def _ctx_variants():
    base = HyperDual([1.0, 2.0], e1=np.ones((2, 2)), e2=np.ones((3, 2)))  # K1=2, K2=3, P=6
    other_k = HyperDual([1.0, 2.0], e1=np.ones((3, 2)), e2=np.ones((3, 2)))
    other_pairs = HyperDual([1.0, 2.0], e1=np.ones((2, 2)), e2=np.ones((3, 2)),
                            pairs=([0, 1], [2, 0]))
    reordered = HyperDual([1.0, 2.0], e1=np.ones((2, 2)), e2=np.ones((3, 2)),
                          pairs=(np.tile(np.arange(2), 3), np.repeat(np.arange(3), 2)))
    return base, {"different K": other_k, "subset pairs": other_pairs, "reordered pairs": reordered}


@pytest.mark.parametrize("variant", ["different K", "subset pairs", "reordered pairs"])
@pytest.mark.parametrize("op", ["add", "multiply", "maximum", "matmul", "concatenate", "where", "setitem",
                                "arctan2"])
def test_pass_mismatch_error(variant, op):
    base, others = _ctx_variants()
    other = others[variant]
    fn = {
        "add": lambda a, b: a + b,
        "multiply": lambda a, b: a * b,
        "maximum": lambda a, b: np.maximum(a, b),
        "matmul": lambda a, b: a @ b,
        "concatenate": lambda a, b: np.concatenate([a, b]),
        "where": lambda a, b: np.where([True, False], a, b),
        "setitem": lambda a, b: a.__setitem__(slice(None), b),
        "arctan2": lambda a, b: np.arctan2(a, b),
    }[op]
    with pytest.raises(PassMismatchError) as info:
        fn(base, other)
    assert isinstance(info.value, ValueError)


def test_equal_pair_maps_from_different_constructors_mix():
    """f(x, y) = x^2 y with x, y built separately (equal pair maps) and custom pairs."""
    pairs = ([0, 1, 1], [1, 0, 1])
    x = HyperDual(3.0, e1=[1.0, 0.0], e2=[1.0, 0.0], pairs=pairs)
    y = HyperDual(2.0, e1=[0.0, 1.0], e2=np.array([0.0, 1.0]), pairs=(np.array([0, 1, 1]), np.array([1, 0, 1])))
    f = x ** 2 * y
    assert_close(f.value, 18.0)
    assert_close(f.e1, [12.0, 9.0])
    assert_close(f.e2, [12.0, 9.0])
    # pairs (0,1): d2/dxdy = 2x = 6 ; (1,0): 6 ; (1,1): d2/dy2 = 0
    assert_close(f.e12, [6.0, 6.0, 0.0])
    np.testing.assert_array_equal(f.pairs[0], pairs[0])
    np.testing.assert_array_equal(f.pairs[1], pairs[1])


def test_constructor_validation():
    with pytest.raises(ValueError):
        HyperDual(np.zeros(3), e1=np.zeros((2, 4)))
    with pytest.raises(ValueError):
        HyperDual(np.zeros(3), e1=np.zeros((2, 3)), e2=np.zeros((2, 3)), e12=np.zeros((3, 3)))
    with pytest.raises(ValueError):
        HyperDual(np.zeros(3), e1=np.zeros((2, 3)), e2=np.zeros((2, 3)), pairs=([0, 2], [0, 1]))
    x = HyperDual(np.zeros((2, 2)), e1=np.ones((2, 2)))       # lane of shape S means K1 = 1
    assert x.e1.shape == (1, 2, 2) and x.e2.shape == (1, 2, 2) and x.e12.shape == (1, 2, 2)
    assert np.all(x.e2 == 0.0) and np.all(x.e12 == 0.0)        # absent lanes read as zeros
    with pytest.raises(ValueError):
        x.e1[0, 0, 0] = 5.0                                      # lanes are read-only views


# ---------------------------------------------------------------------------------------------
# extension points
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def restore_registries():
    unary = dict(hyperdual.ops.rules.UNARY)
    binary = dict(hyperdual.ops.rules.BINARY)
    functions = dict(hyperdual.execute.array.FUNCTIONS)
    yield
    for reg, saved in ((hyperdual.ops.rules.UNARY, unary), (hyperdual.ops.rules.BINARY, binary),
                       (hyperdual.execute.array.FUNCTIONS, functions)):
        reg.clear()
        reg.update(saved)


@numba.vectorize(["float64(float64)"])
def nb_erf(a):
    return math.erf(a)


C_ERF = 2.0 / math.sqrt(math.pi)


def _erf_rule(a, y):
    return C_ERF * np.exp(-a * a), -2.0 * a * C_ERF * np.exp(-a * a)


def _check_erf(y, x0):
    v, g, h = derivs(y, x0.size)
    assert_close(v, [math.erf(a) for a in x0])
    d1 = C_ERF * np.exp(-x0 ** 2)                      # hand-written, independent of the rule above
    d2 = -4.0 * x0 / math.sqrt(math.pi) * np.exp(-x0 ** 2)
    assert_close(g, np.diag(d1))
    H = np.zeros((x0.size,) * 3)
    H[np.arange(x0.size), np.arange(x0.size), np.arange(x0.size)] = d2
    assert_close(h, H)


def test_register_ufunc_numba_vectorize(restore_registries):
    x0 = np.array([0.5, -1.0, 0.0, 2.0])
    with pytest.raises(TypeError, match="erf"):
        nb_erf(seeded(x0))                               # unknown before registration
    hyperdual.register_ufunc(nb_erf, _erf_rule)
    _check_erf(nb_erf(seeded(x0)), x0)
    # composed with other rules: d2/dx2 erf(x^2) = 2 c e^{-x^4} (1 - 4 x^4)
    y = nb_erf(seeded(x0) ** 2)
    assert_close(y.e12.reshape(4, 4, 4)[np.arange(4), np.arange(4), np.arange(4)],
                 2 * C_ERF * np.exp(-x0 ** 4) * (1 - 4 * x0 ** 4))


def test_register_ufunc_plain_numpy_ufunc(restore_registries):
    uf = nb_erf.ufunc if isinstance(getattr(nb_erf, "ufunc", None), np.ufunc) else nb_erf
    assert isinstance(uf, np.ufunc)
    hyperdual.register_ufunc(uf, _erf_rule)
    x0 = np.array([0.5, -1.0, 0.0, 2.0])
    _check_erf(uf(seeded(x0)), x0)


def test_register_binary_ufunc_and_validation(restore_registries):
    # copysign(a, b) = |a| sign(b) away from kinks: partials sign(a) sign(b), 0
    rule = hyperdual.BinaryRule(dx=lambda a, b, y: (np.sign(a) * np.sign(b), None),
                                dy=lambda a, b, y: (0.0, None),
                                dxy=lambda a, b, y: None)
    hyperdual.register_ufunc(np.copysign, rule)
    z = seeded([-2.0, 3.0])
    y = np.copysign(z[0] ** 2 + z[0], z[1])          # (a^2 + a) with the sign of b
    v, g, h = derivs(y, 2)
    assert_close(v, 2.0)
    assert_close(g, [-3.0, 0.0])          # sign(a^2+a = 2) * sign(b) * (2a + 1) = -3
    assert_close(h, [[2.0, 0.0], [0.0, 0.0]])
    with pytest.raises(TypeError):
        hyperdual.register_ufunc(np.sum, lambda a, y: (1.0, None))
    with pytest.raises(TypeError):
        hyperdual.register_ufunc(np.copysign, lambda a, y: (1.0, None))
    with pytest.raises(ValueError):
        hyperdual.register_ufunc(np.modf, lambda a, y: (1.0, None))


def test_register_function(restore_registries):
    x0 = np.array([1.0, 2.0, -0.5])
    with pytest.raises(TypeError, match="nansum"):
        np.nansum(seeded(x0))
    hyperdual.register_function(np.nansum, lambda a, **kw: np.sum(a, **kw))
    v, g, h = derivs(np.nansum(seeded(x0) ** 3), 3)
    assert_close(v, np.sum(x0 ** 3))
    assert_close(g, 3 * x0 ** 2)
    assert_close(h, np.diag(6 * x0))
    y = np.nansum(seeded(x0.reshape(3, 1)) * np.ones(2), axis=1)
    assert_close(y.value, 2 * x0)
    with pytest.raises(TypeError):
        hyperdual.register_function(np.nanmean, 42)


# ---------------------------------------------------------------------------------------------
# pickle
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["identity-shared", "dense-custom-pairs", "derived", "constant-lanes"])
def test_pickle_round_trip(kind):
    rng = np.random.default_rng(17)
    if kind == "identity-shared":
        x = seeded([1.0, -2.0, 0.5], shared=True)
    elif kind == "dense-custom-pairs":
        x = HyperDual(rng.normal(size=(2, 3)), e1=rng.normal(size=(2, 2, 3)), e2=rng.normal(size=(3, 2, 3)),
                      e12=rng.normal(size=(4, 2, 3)), pairs=([0, 1, 1, 0], [2, 0, 1, 1]))
    elif kind == "derived":
        x = np.sin(seeded([1.0, -2.0, 0.5])) * seeded([1.0, -2.0, 0.5])[::-1]
    else:
        x = HyperDual(np.arange(3.0), e1=np.ones(3))          # e2, e12 absent
    y = pickle.loads(pickle.dumps(x))
    assert isinstance(y, HyperDual)
    assert y.shape == x.shape
    np.testing.assert_array_equal(y.value, x.value)
    for lane in LANES:
        np.testing.assert_array_equal(getattr(y, lane), getattr(x, lane))
    np.testing.assert_array_equal(y.pairs[0], x.pairs[0])
    np.testing.assert_array_equal(y.pairs[1], x.pairs[1])
    # the restored array still works, and mixes with the original (equal pair maps)
    s = y * 2.0 + x
    assert_close(s.value, 3 * x.value)
    for lane in LANES:
        assert_close(getattr(s, lane), 3 * getattr(x, lane))
    z = y * y
    assert_close(z.e12, (x * x).e12)
