"""Misuse of the hyperdual API: every row must raise a clear exception, never return a number.

One table, one row per misuse: ``(id, misuse, exception type, regex)``.  ``misuse()`` performs
the whole user action, ``H = hyperdual.hessian(...)`` *and* the indexing ``H[...]``, so the
error may come at either documented moment (argument checks at the call, the function's
own errors at the first pass).  The row passes when ``misuse()`` raises exactly the expected
type with a message matching the regex, and no frame of the traceback is inside Numba (a
misuse must be refused in Python, before any kernel sees it).

Index errors are whatever NumPy raises for the same index on an ndarray of the Hessian's
shape: the type and message are taken from NumPy itself at collection time.

Rows whose id is in ``KNOWN_BUGS`` do not behave as documented; they are strict xfails
(they start failing loudly once the library is fixed).
"""
from __future__ import annotations

import math
import os
import re
import traceback

import numpy as np
import pytest

import hyperdual
from hyperdual import HyperDual, PassMismatchError, hessian, variable
from hyperdual.plan.seeding import settings

X5 = np.array([0.5, -1.0, 2.0, 0.25, 1.5])   # N = 5
XB = np.arange(12.0).reshape(3, 4) / 4.0      # B = 3, N = 4
PER_PAIR = 8 * hyperdual.plan.seeding.LIVE_FACTOR  # bytes of lanes per input element per pair
ESCAPE = r"`x\.value`"                         # every refused conversion points to .value


def cube(x):
    return np.sum(x ** 3)


def cube_rows(x):
    return np.sum(x ** 3, axis=-1)


def full(h):
    """Index every block of a hessian() result in full (the second documented moment)."""
    if isinstance(h, tuple):
        return [[block[...] for block in row] for row in h]
    return h[...]


def run(func, xs, *args, **kwargs):
    return full(hessian(func, xs, *args, **kwargs))


def run_ys(func, x, *args, **kwargs):
    v = variable(x)
    return full(hessian(func(v), v, *args, **kwargs))


def numpy_error(index, shape=(5, 5)):
    """The exception type and (escaped) message NumPy gives for ``ndarray[index]``."""
    try:
        np.zeros(shape)[index]
    except Exception as exc:  # noqa: BLE001 - we want whatever NumPy raises
        return type(exc), "^" + re.escape(str(exc)) + "$"
    raise AssertionError(f"NumPy accepts the index {index!r}")


def index_row(name, index, shape=(5, 5), make=lambda: hessian(cube, X5)):
    def misuse():
        return make()[index]
    return (name, misuse, *numpy_error(index, shape))


def unsupported(name, body, pattern):
    """A function using an unsupported NumPy function/ufunc on its (HyperDual) argument."""
    return (f"unsupported-{name}", lambda: run(body, X5), TypeError, pattern)


def escape_in_function(body):
    def misuse():
        return run(body, X5)
    return misuse


def _assign_slice(x):
    buf = np.zeros(5)
    buf[:] = x
    return np.sum(buf)


def _assign_element(x):
    buf = np.zeros(5)
    buf[0] = x[0]
    return np.sum(buf)


def _out_plain(x):
    out = np.zeros(5)
    np.sin(x, out=out)
    return np.sum(out)


# ---- a HyperDual from one pass carried into the next -------------------------------------------------
_STASH: list = []


def _stashing(x):
    """Keeps its first HyperDual argument in a global and uses it in every later pass."""
    if isinstance(x, HyperDual):
        _STASH.append(x)
        return np.sum(x * _STASH[0])
    return np.sum(x * x)


def _two_passes():
    _STASH.clear()
    trace, settings.trace = settings.trace, False  # (a record would be called once: nothing kept)
    try:
        h = hessian(_stashing, X5, memory_budget=X5.size * PER_PAIR)   # one pair per pass: 15 passes
        return h[...]
    finally:
        settings.trace = trace


def _two_hessians():
    _STASH.clear()
    hessian(_stashing, X5)[0, 0]          # first Hessian: keeps its pass' HyperDual
    return hessian(_stashing, X5)[0, 0]   # second Hessian: meets it


def _modified_in_place():
    v = variable(X5)
    y = np.sum(v ** 3)
    v[0] = 7.0
    return full(hessian(y, v))


def _modified_iadd():
    v = variable(X5)
    y = np.sum(v ** 3)
    v += 1.0
    return full(hessian(y, v))


def _ys_not_from_xs():
    a, b = variable(X5), variable(X5)
    return full(hessian(np.sum(a ** 2), b))


def _ys_escape_asarray():
    v = variable(X5)
    return full(hessian(np.sum(np.asarray(v) ** 2), v))


def _coupled(x):
    """Couples the samples: every output depends on the whole batch."""
    return np.sum(x) ** 2 + x[:, 0]


def _coupled_1_2(x):
    """Couples samples 1 and 2 only (output 2 depends on sample 1); sample 0 is independent."""
    return x[:, 0] ** 2 + (x[:, 0] * np.roll(x[:, 0], 1)) * (np.arange(len(x)) == 2)


# ---- the table ----------------------------------------------------------------------------------------
MISUSES = [
    # -- shapes and ndims per batch_axis
    ("xs-2d-batch-none", lambda: run(cube, np.ones((2, 3))), ValueError,
     r"xs\.ndim should be 0 or 1 when batch_axis is None but got 2"),
    ("xs-3d-batch-0", lambda: run(cube_rows, np.ones((2, 3, 4)), 0), ValueError,
     r"xs\.ndim should be 1 or 2 when batch_axis=0 but got 3"),
    ("xs-0d-batch-0", lambda: run(cube, np.array(1.0), 0), ValueError,
     r"xs\.ndim should be 1 or 2 when batch_axis=0 but got 0"),
    ("tuple-member-2d-batch-none", lambda: run(lambda a, b: cube(a) + np.sum(b), (X5, np.ones((2, 2)))),
     ValueError, r"xs\[1\]\.ndim should be 0 or 1 when batch_axis is None but got 2"),
    ("ys-form-variable-2d-batch-none", lambda: run_ys(cube, np.ones((2, 3))), ValueError,
     r"xs\.ndim should be 0 or 1 when batch_axis is None but got 2"),
    # -- batch_axis values
    ("batch-axis-1", lambda: run(cube, X5, 1), ValueError, r"batch_axis must be None or 0 .*got 1$"),
    ("batch-axis-minus-1", lambda: run(cube, X5, -1), ValueError, r"batch_axis must be None or 0 .*got -1$"),
    ("batch-axis-2", lambda: run(cube_rows, XB, 2), ValueError, r"batch_axis must be None or 0 .*got 2$"),
    ("batch-axis-True", lambda: run(cube_rows, XB, True), ValueError, r"got True \(a bool is not an axis\)"),
    ("batch-axis-False", lambda: run(cube, X5, False), ValueError, r"got False \(a bool is not an axis\)"),
    ("batch-axis-np-bool", lambda: run(cube_rows, XB, np.bool_(False)), ValueError, r"a bool is not an axis"),
    ("batch-axis-str", lambda: run(cube_rows, XB, "0"), ValueError, r"got '0' of type str"),
    ("batch-axis-float", lambda: run(cube_rows, XB, 0.0), ValueError, r"got 0\.0 of type float"),
    ("batch-axis-np-int-1", lambda: run(cube_rows, XB, np.int64(1)), ValueError, r"must be None or 0 .*got 1$"),
    ("batch-axis-ys-form", lambda: run_ys(cube_rows, XB, 1), ValueError, r"must be None or 0 .*got 1$"),
    # -- outputs that are not one scalar (per sample)
    ("output-[3]-batch-none", lambda: run(lambda x: x[:3] ** 2, X5), ValueError,
     r"Only support ys\.numel\(\)\(3\)==1 when batch_axis is None: the output has shape \(3,\)"),
    ("output-[1,3]-batch-none", lambda: run(lambda x: x[None, :3] ** 2, X5), ValueError,
     r"ys\.numel\(\)\(3\)==1 .*shape \(1, 3\)"),
    ("output-constant-[3]-batch-none", lambda: run(lambda x: np.ones(3), X5), ValueError,
     r"ys\.numel\(\)\(3\)==1"),
    ("output-[B,2]-batch-0", lambda: run(lambda x: x[:, :2] ** 2, XB, 0), ValueError,
     r"Only support ys\[0\]\.numel\(\)==1 when batch_axis=0: the output has shape \(3, 2\)"),
    ("output-[B,N]-batch-0-ys-form", lambda: run_ys(lambda x: x * x, XB, 0), ValueError,
     r"ys\[0\]\.numel\(\)==1 .*shape \(3, 4\)"),
    ("output-[B-1]-batch-0", lambda: run(lambda x: x[1:, 0] ** 2, XB, 0), ValueError,
     r"ys\[0\]\.numel\(\)==1 .*shape \(2,\); expected \[3\]"),
    # -- tuples
    ("tuple-batch-sizes-differ", lambda: run(lambda a, b: cube_rows(a) + cube_rows(b),
                                             (np.ones((3, 2)), np.ones((4, 2))), 0),
     ValueError, r"inputs have different batch sizes \[3, 4\]"),
    ("tuple-empty", lambda: run(cube, ()), ValueError, r"xs is an empty tuple"),
    ("list-empty", lambda: run(cube, []), ValueError, r"xs is an empty tuple"),
    # -- dtypes
    ("xs-complex", lambda: run(cube, X5 + 1j), TypeError, r"xs has dtype complex128: .*real numbers only"),
    ("xs-object", lambda: run(cube, np.array([1.0, None])), TypeError, r"xs has dtype object"),
    ("xs-string-array", lambda: run(cube, np.array(["1", "2"])), TypeError, r"xs has dtype <U1"),
    ("xs-str", lambda: run(cube, "12"), TypeError, r"xs has dtype <U2"),
    ("tuple-member-complex", lambda: run(lambda a, b: cube(a) + cube(b), (X5, np.ones(2, complex))),
     TypeError, r"xs\[1\] has dtype complex128"),
    ("variable-complex", lambda: variable(np.ones(3, complex)), TypeError, r"variable has dtype complex128"),
    ("variable-of-hyperdual", lambda: variable(HyperDual(X5)), TypeError, r"variable\(\) takes a plain array"),
    # -- unsupported NumPy functions and ufuncs (the message names them)
    unsupported("fmod", lambda x: np.sum(np.fmod(x, 0.7)), r"ufunc numpy\.fmod on HyperDual"),
    unsupported("copysign", lambda x: np.sum(np.copysign(x, -1.0)), r"ufunc numpy\.copysign"),
    unsupported("spacing", lambda x: np.sum(np.spacing(x)), r"ufunc numpy\.spacing"),
    unsupported("modf", lambda x: np.sum(np.modf(x)[0]), r"ufunc numpy\.modf"),
    unsupported("add.outer", lambda x: np.sum(np.add.outer(x, x)), r"numpy\.add\.outer"),
    unsupported("multiply.accumulate", lambda x: np.sum(np.multiply.accumulate(x)),
                r"numpy\.multiply\.accumulate"),
    unsupported("cumprod", lambda x: np.sum(np.cumprod(x)), r"numpy\.cumprod\(\) on HyperDual"),
    unsupported("median", lambda x: np.median(x), r"numpy\.median\(\)"),
    unsupported("linalg.eig", lambda x: np.sum(np.linalg.eig(np.diag(x))[0]), r"numpy\.linalg\.eig\(\)"),
    unsupported("linalg.svd", lambda x: np.sum(np.linalg.svd(np.diag(x))[1]), r"numpy\.linalg\.svd\(\)"),
    unsupported("fft.fft", lambda x: np.sum(np.fft.fft(x).real), r"numpy\.fft\.fft\(\)"),
    unsupported("percentile", lambda x: np.percentile(x, 50.0), r"numpy\.percentile\(\)"),
    unsupported("interp", lambda x: np.interp(0.3, np.arange(5.0), x), r"numpy\.interp\(\)"),
    # -- indices on a Hessian: NumPy's own error type and message
    index_row("index-float", 1.0),
    index_row("index-str", "a"),
    index_row("index-float-in-tuple", (1, 2.5)),
    index_row("index-float-array", np.array([1.5])),
    index_row("index-5-of-5", 5),
    index_row("index-minus-6-of-5", -6),
    index_row("index-(0,5)", (0, 5)),
    index_row("index-list-out-of-range", [0, 5]),
    index_row("index-too-many", (0, 0, 0)),
    index_row("index-two-ellipses", (Ellipsis, Ellipsis)),
    index_row("index-bool-mask-wrong-length", np.array([True, False])),
    index_row("index-arrays-do-not-broadcast", ([0, 1], [0, 1, 2])),
    index_row("index-batch-3-of-3", 3, (3, 4, 4), lambda: hessian(cube_rows, XB, 0)),
    index_row("index-block-(0,2)-of-(5,2)", (0, 2), (5, 2),
              lambda: hessian(lambda a, b: cube(a) * cube(b), (X5, np.ones(2)))[0][1]),
    index_row("index-0d-block-with-int", 0, (),
              lambda: hessian(lambda a, b: a * b ** 2, (np.array(1.0), np.array(2.0)))[0][0]),
    # -- the hessian(ys, xs) form
    ("ys-not-computed-from-xs", _ys_not_from_xs, ValueError,
     r"ys was not computed from xs: none of the given inputs appears in its record"),
    ("ys-plain-ndarray", lambda: full(hessian(np.ones(()), variable(X5))), TypeError,
     r"ys is a ndarray, not an array computed from hyperdual\.variable"),
    ("ys-plain-float", lambda: full(hessian(2.0, variable(X5))), TypeError,
     r"ys is a float, not an array computed from hyperdual\.variable"),
    ("ys-form-xs-not-variable", lambda: full(hessian(np.sum(variable(X5) ** 2), X5)), TypeError,
     r"xs must be an input made with hyperdual\.variable\(\)"),
    ("ys-form-input-assigned-after-ys", _modified_in_place, ValueError,
     r"xs was modified in place after hyperdual\.variable\(\) created it"),
    ("ys-form-input-iadd-after-ys", _modified_iadd, ValueError, r"xs was modified in place"),
    ("ys-form-escape-asarray", _ys_escape_asarray, TypeError, ESCAPE),
    # -- derivatives escaping from the function
    ("escape-asarray", escape_in_function(lambda x: np.sum(np.asarray(x) ** 2)), TypeError, ESCAPE),
    ("escape-np-array", escape_in_function(lambda x: np.sum(np.array(x) ** 2)), TypeError, ESCAPE),
    ("escape-float", escape_in_function(lambda x: float(x[0]) ** 2), TypeError, ESCAPE),
    ("escape-item", escape_in_function(lambda x: x[0].item()), TypeError, ESCAPE),
    ("escape-tolist", escape_in_function(lambda x: sum(x.tolist())), TypeError, ESCAPE),
    ("escape-math-sin", escape_in_function(lambda x: math.sin(x[0])), TypeError, ESCAPE),
    ("escape-assign-slice-into-ndarray", escape_in_function(_assign_slice), TypeError, ESCAPE),
    # README: NumPy itself refuses a HyperDual element assigned into an ndarray, with its own message
    ("escape-assign-element-into-ndarray", escape_in_function(_assign_element), ValueError,
     r"^setting an array element with a sequence"),
    ("escape-ufunc-out-ndarray", escape_in_function(_out_plain), TypeError, ESCAPE),
    ("nested-hessian", lambda: run(lambda x: hessian(cube, x)[0, 0], X5), TypeError,
     r"nested differentiation\) is not supported"),
    # -- HyperDuals of two different passes meeting
    ("pass-mismatch-two-passes", _two_passes, PassMismatchError,
     r"two different seeding passes .*Do not carry HyperDual values"),
    ("pass-mismatch-two-hessians", _two_hessians, PassMismatchError, r"two different seeding passes"),
    # -- what the function returns
    ("returns-str", lambda: run(lambda x: "1.0", X5), TypeError, r"the function returned str; expected a scalar"),
    ("returns-None", lambda: run(lambda x: None, X5), TypeError, r"the function returned NoneType"),
    ("returns-list", lambda: run(lambda x: [np.sum(x)], X5), TypeError, r"the function returned list"),
    ("returns-tuple", lambda: run(lambda x: (np.sum(x),), X5), TypeError, r"the function returned tuple"),
    ("returns-dict", lambda: run(lambda x: {"y": np.sum(x)}, X5), TypeError, r"the function returned dict"),
    ("returns-complex", lambda: run(lambda x: 1j, X5), TypeError, r"the output has dtype complex128"),
    ("returns-wrong-shape-hyperdual", lambda: run(lambda x: x[:2] * x[0], X5), ValueError,
     r"ys\.numel\(\)\(2\)==1"),
    # -- memory budgets
    ("budget-below-one-pair", lambda: run(cube, X5, memory_budget=X5.size * PER_PAIR - 1), ValueError,
     rf"the memory budget of {X5.size * PER_PAIR - 1} bytes is too small for even one index pair"),
    ("budget-below-one-pair-batch", lambda: run(cube_rows, XB, 0, memory_budget=XB.size * PER_PAIR - 1),
     ValueError, r"too small for even one index pair"),
    ("budget-zero", lambda: run(cube, X5, memory_budget=0), ValueError,
     r"memory_budget must be a positive number of bytes, got 0"),
    ("budget-negative", lambda: run(cube, X5, memory_budget=-1024), ValueError,
     r"memory_budget must be a positive number of bytes, got -1024"),
    ("set-memory-budget-zero", lambda: hyperdual.set_memory_budget(0), ValueError,
     r"the memory budget must be positive, got 0"),
    # -- HyperDual constructed by hand
    ("hyperdual-e1-wrong-shape", lambda: HyperDual(np.ones(3), e1=np.ones(4)), ValueError,
     r"lane e1 has shape \(4,\); expected \(3,\)"),
    ("hyperdual-e1-wrong-trailing-shape", lambda: HyperDual(np.ones(3), e1=np.ones((2, 4))), ValueError,
     r"lane e1 has shape \(2, 4\)"),
    ("hyperdual-e2-wrong-shape", lambda: HyperDual(np.ones(3), e1=np.ones(3), e2=np.ones(2)), ValueError,
     r"lane e2 has shape \(2,\)"),
    ("hyperdual-e12-wrong-rows", lambda: HyperDual(np.ones(3), e1=np.ones((2, 3)), e2=np.ones((2, 3)),
                                                   e12=np.ones((3, 3))),
     ValueError, r"lane e12 has 3 rows but the pair map has 4 pairs"),
    ("hyperdual-complex-lane", lambda: HyperDual(np.ones(3), e1=np.ones(3, complex)), TypeError,
     r"e1 has dtype complex128"),
    # -- batch_axis=0 with samples that are not independent (README: refused with a ValueError)
    ("coupled-samples-first-index-one-sample", lambda: hessian(_coupled, XB, 0)[0], ValueError,
     r"the samples must be independent"),
    ("coupled-samples-all-at-once", lambda: hessian(_coupled, XB, 0)[...], ValueError,
     r"the samples must be independent"),
    ("coupled-samples-ys-form", lambda: run_ys(_coupled, XB, 0), ValueError,
     r"the samples must be independent"),
    ("coupled-samples-1-2-one-sample", lambda: hessian(_coupled_1_2, XB, 0)[2], ValueError,
     r"the samples must be independent"),
    ("coupled-samples-1-2-all-at-once", lambda: hessian(_coupled_1_2, XB, 0)[...], ValueError,
     r"the samples must be independent"),
    ("batch-0-scalar-output-one-sample", lambda: hessian(cube, XB, 0)[0], ValueError,
     r"ys\[0\]\.numel\(\)==1|samples must be independent"),
    ("batch-0-scalar-output-all", lambda: hessian(cube, XB, 0)[...], ValueError,
     r"ys\[0\]\.numel\(\)==1|samples must be independent"),
]

KNOWN_BUGS: dict[str, str] = {}


def _params():
    ids = [row[0] for row in MISUSES]
    assert len(ids) == len(set(ids)), "duplicate ids"
    assert set(KNOWN_BUGS) <= set(ids)
    out = []
    for name, misuse, exc, pattern in MISUSES:
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[name])] if name in KNOWN_BUGS else []
        out.append(pytest.param(misuse, exc, pattern, id=name, marks=marks))
    return out


def test_table_is_large_enough():
    assert len(MISUSES) >= 40


@pytest.mark.parametrize("misuse, exc, pattern", _params())
def test_misuse_is_refused(misuse, exc, pattern, no_colouring):
    with pytest.raises(Exception) as info:
        misuse()
    err = info.value
    assert type(err) is exc, f"raised {type(err).__module__}.{type(err).__name__}: {err}"
    assert re.search(pattern, str(err)), f"message {str(err)!r} does not match {pattern!r}"
    frames = traceback.extract_tb(info.tb)
    inside_numba = [f for f in frames if f"{os.sep}numba{os.sep}" in f.filename]
    assert not inside_numba, f"the misuse reached Numba: {inside_numba[-1]}"


# ---- not misuses: a function that returns a constant has a zero Hessian -------------------------------
@pytest.mark.parametrize("value", [3.0, 2, np.float64(-1.5), np.array(4.0), True],
                         ids=["float", "int", "np.float64", "0-d ndarray", "bool"])
def test_constant_output_has_zero_hessian(value):
    h = hessian(lambda x: value, X5)
    got = h[...]
    assert isinstance(got, np.ndarray) and got.shape == (5, 5) and got.dtype == np.float64
    assert np.array_equal(got, np.zeros((5, 5)))
    assert np.array_equal(h.gradient, np.zeros(5))
    assert float(h.value) == float(value)


def test_constant_output_with_batch_has_zero_hessian():
    h = hessian(lambda x: np.full(3, 2.5), XB, 0)
    got = h[...]
    assert got.shape == (3, 4, 4) and np.array_equal(got, np.zeros((3, 4, 4)))
    assert np.array_equal(h[1, 2], np.zeros(4))


def test_two_passes_without_stash_are_fine():
    """Control for the pass-mismatch row: its budget does split the work into several passes,
    and a function that keeps nothing between passes is fine with it."""
    h = hessian(lambda x: np.sum(x * x * x), X5, memory_budget=X5.size * PER_PAIR)
    np.testing.assert_allclose(h[...], np.diag(6 * X5), rtol=1e-14)
    assert h.stats.passes > 1
