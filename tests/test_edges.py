"""Edge cases and error branches of the engine, the array functions and the lazy objects.

Every test asserts a behaviour: a value against NumPy or a closed form, an
exception type together with a substring of its message, or an identity
(``out is target``).  Lanes are checked row by row against the same NumPy
function applied to that row on its own (the map is linear in each row).

A few branches are only reachable by calling an implementation directly
(``hyperdual.execute.functions.matmul(..., axes=...)``: ``np.matmul`` is a ufunc and
never reaches ``__array_function__``); those tests say so.
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from numpy.lib.mixins import NDArrayOperatorsMixin

import hyperdual
import hyperdual.execute.chain
import hyperdual.execute.functions
import hyperdual.lazy.hessian
import hyperdual.ops.rules
import hyperdual.plan.seeding
from hyperdual import HyperDual, PassMismatchError, SeedContext

RTOL = 1e-12
ATOL = 1e-13


def close(actual, expected, rtol=RTOL, atol=ATOL):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def seeded(value, k1=2, k2=3, seed=0):
    """A HyperDual with distinct random e1, e2 and e12 lanes (all pairs)."""
    rng = np.random.default_rng(seed)
    v = np.asarray(value, dtype=np.float64)
    return HyperDual(v, e1=rng.standard_normal((k1,) + v.shape),
                     e2=rng.standard_normal((k2,) + v.shape),
                     e12=rng.standard_normal((k1 * k2,) + v.shape))


def lanes_of(x):
    return x.e1, x.e2, x.e12


def check_linear(result, x, f):
    """``result`` is ``f`` applied to the value and to every lane row of ``x``."""
    close(result.value, f(x.value))
    for got, src in zip(lanes_of(result), lanes_of(x)):
        assert got.shape[0] == src.shape[0]
        for r in range(src.shape[0]):
            close(got[r], f(src[r]))


class Foreign(NDArrayOperatorsMixin):
    """Another library's array type: it must get its own turn (NotImplemented from us)."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return "foreign"

    def __array_function__(self, func, types, args, kwargs):
        return "foreign"


# =============================================================================================
# array.py: HyperDual protocol edges
# =============================================================================================
class TestHyperDualEdges:
    def test_len_and_iter_of_0d_raise_type_error(self):
        x = HyperDual(2.0, e1=1.0, e2=1.0)
        with pytest.raises(TypeError, match="len\\(\\) of unsized object"):
            len(x)
        with pytest.raises(TypeError, match="iteration over a 0-d array"):
            iter(x).__next__()
        with pytest.raises(TypeError, match="iteration over a 0-d array"):
            list(x)

    def test_len_and_iter_of_1d(self):
        x = seeded([1.0, 2.0, 3.0])
        assert len(x) == 3
        rows = list(x)
        assert len(rows) == 3
        for k, r in enumerate(rows):
            close(r.value, x.value[k])
            close(r.e12, x.e12[:, k])

    def test_repr_recorded_seeded_and_constant(self):
        v = hyperdual.variable(np.array([1.0, 2.0]))
        assert repr(v) == "HyperDual(value=array([1., 2.]), recorded)"
        x = seeded([1.0, 2.0], k1=2, k2=3)
        assert repr(x) == "HyperDual(value=array([1., 2.]), K1=2, K2=3, P=6)"
        c = np.zeros_like(x)  # a constant: no context
        assert repr(c) == "HyperDual(value=array([0., 0.]), constant)"

    def test_pairs_and_lanes_of_a_constant(self):
        c = np.ones_like(seeded([1.0, 2.0]))
        ip, jp = c.pairs
        assert ip.dtype == np.int64 and jp.dtype == np.int64
        assert ip.shape == (0,) and jp.shape == (0,)
        assert c.e1.shape == (0, 2) and c.e2.shape == (0, 2) and c.e12.shape == (0, 2)

    def test_pairs_of_seeded_is_a_copy(self):
        x = HyperDual([1.0, 2.0], e1=np.ones((2, 2)), e2=np.ones((2, 2)), pairs=([0, 1], [1, 0]))
        ip, jp = x.pairs
        close(ip, [0, 1]), close(jp, [1, 0])
        ip[0] = 7
        close(x.pairs[0], [0, 1])

    @pytest.mark.parametrize("convert", [complex, lambda x: [0, 1, 2][x], lambda x: range(5)[x]],
                             ids=["complex", "list-index", "range-index"])
    def test_complex_and_index_refused(self, convert):
        x = HyperDual(1.0, e1=1.0, e2=1.0)
        with pytest.raises(TypeError, match="cannot become a plain number"):
            convert(x)

    def test_operator_index_refused(self):
        import operator
        with pytest.raises(TypeError, match="cannot become a plain number"):
            operator.index(HyperDual(1.0))

    def test_bool(self):
        assert bool(HyperDual([2.0], e1=[1.0], e2=[1.0])) is True
        assert bool(HyperDual([0.0], e1=[1.0], e2=[1.0])) is False
        assert bool(HyperDual(0.5)) is True
        with pytest.raises(ValueError, match="ambiguous"):
            bool(HyperDual([1.0, 2.0]))

    def test_hyperdual_of_a_hyperdual_refused(self):
        with pytest.raises(TypeError, match="cannot become a plain number"):
            HyperDual(HyperDual(1.0))

    def test_zero_derivative_ufunc_on_0d_keeps_an_ndarray_value(self):
        x = HyperDual(2.5, e1=1.0, e2=1.0)
        for ufunc, want in ((np.floor, 2.0), (np.ceil, 3.0), (np.sign, 1.0), (np.trunc, 2.0)):
            y = ufunc(x)
            assert type(y.value) is np.ndarray and y.value.shape == ()
            assert float(y.value) == want
            close(y.e1, np.zeros((1,))), close(y.e12, np.zeros((1,)))

    def test_ufunc_method_not_supported(self):
        x = seeded([1.0, 2.0])
        with pytest.raises(TypeError, match="numpy.add.outer"):
            np.add.outer(x, x)
        with pytest.raises(TypeError, match="numpy.multiply.accumulate"):
            np.multiply.accumulate(x)

    def test_ufunc_reduction_extra_kwargs_refused(self):
        x = seeded([1.0, 2.0])
        with pytest.raises(TypeError, match="\\['initial'\\].*ufunc reduction"):
            np.add.reduce(x, initial=1.0)
        with pytest.raises(TypeError, match="\\['where'\\]"):
            np.maximum.reduce(x, where=np.array([True, False]))

    def test_ufunc_reduction_with_out(self):
        x = seeded(np.arange(6.0).reshape(2, 3))
        target = np.zeros_like(x[0])
        got = np.add.reduce(x, axis=0, out=target)
        assert got is target
        check_linear(target, x, lambda a: np.add.reduce(a, axis=0))

    def test_ufunc_casting_and_float_dtype_accepted(self):
        x = seeded([0.5, 1.0])
        plain = np.sin(x)
        for kw in ({"casting": "same_kind"}, {"dtype": float}, {"dtype": np.float64},
                   {"casting": "unsafe", "dtype": None}):
            y = np.sin(x, **kw)
            close(y.value, plain.value)
            for a, b in zip(lanes_of(y), lanes_of(plain)):
                close(a, b)

    def test_ufunc_other_dtype_and_where_refused(self):
        x = seeded([0.5, 1.0])
        with pytest.raises(TypeError, match="numpy.sin"):
            np.sin(x, dtype=np.float32)
        with pytest.raises(TypeError, match="\\['where'\\] of numpy.multiply"):
            np.multiply(x, x, where=np.array([True, False]))

    def test_ufunc_out_hyperdual_target(self):
        x = seeded([0.5, 1.0])
        target = np.zeros_like(x)
        got = np.sin(x, out=target)
        assert got is target
        want = np.sin(x)
        close(target.value, want.value)
        for a, b in zip(lanes_of(target), lanes_of(want)):
            close(a, b)
        # the tuple form NumPy passes on (out=(t,)) works the same
        t2 = np.zeros_like(x)
        assert np.cos(x, out=(t2,)) is t2
        close(t2.value, np.cos(x.value))

    def test_ufunc_out_plain_ndarray_refused(self):
        x = seeded([0.5, 1.0])
        buf = np.full(2, 7.0)
        with pytest.raises(TypeError, match="out= argument must be a HyperDual"):
            np.sin(x, out=buf)
        close(buf, [7.0, 7.0])  # nothing was written

    def test_foreign_array_types_get_their_turn(self):
        x = seeded([1.0, 2.0])
        f = Foreign()
        assert x * f == "foreign"
        assert f * x == "foreign"
        assert x + f == "foreign"
        assert np.add(x, f) == "foreign"
        assert np.sin(f) == "foreign"
        assert np.add(x, f, casting="same_kind") == "foreign"
        # an unregistered NumPy function with a foreign operand: NotImplemented, the foreign type answers
        assert np.kron(x, f) == "foreign"

    def test_unregistered_function_without_foreign_operand_raises(self):
        x = seeded([[1.0, 2.0], [3.0, 4.0]])
        with pytest.raises(TypeError, match="does not support numpy.kron\\(\\)"):
            np.kron(x, np.eye(2))

    @pytest.mark.parametrize("axes", [((1, 0),), ([1, 0],), (1, 0), (None,), ()])
    def test_transpose_method_forms(self, axes):
        x = seeded(np.arange(6.0).reshape(2, 3))
        check_linear(x.transpose(*axes), x, lambda a: a.transpose(*axes))

    def test_transpose_3d_with_tuple(self):
        x = seeded(np.arange(24.0).reshape(2, 3, 4))
        check_linear(x.transpose((2, 0, 1)), x, lambda a: a.transpose((2, 0, 1)))


# =============================================================================================
# functions.py
# =============================================================================================
class TestReductionsRefusals:
    x = staticmethod(lambda: seeded(np.arange(1.0, 7.0).reshape(2, 3)))

    @pytest.mark.parametrize("fn", [np.sum, np.prod])
    @pytest.mark.parametrize("kw", [{"initial": 1.0}, {"where": np.array([True, False, True])}])
    def test_sum_prod_initial_where(self, fn, kw):
        with pytest.raises(TypeError, match=f"numpy.{fn.__name__} does not support initial= or where="):
            fn(self.x(), **kw)

    @pytest.mark.parametrize("fn,name", [(np.max, "max"), (np.min, "min"), (np.amax, "max")])
    @pytest.mark.parametrize("kw", [{"initial": 1.0}, {"where": np.array([True, False, True])}])
    def test_max_min_initial_where(self, fn, name, kw):
        with pytest.raises(TypeError, match=f"numpy.{name} does not support initial= or where="):
            fn(self.x(), **kw)

    def test_mean_where(self):
        with pytest.raises(TypeError, match="numpy.mean does not support where="):
            np.mean(self.x(), where=np.array([True, False, True]))

    @pytest.mark.parametrize("kw", [{"where": np.array([True, False, True])}, {"mean": np.zeros((2, 1))}])
    def test_var_where_mean(self, kw):
        with pytest.raises(TypeError, match="numpy.var does not support where= or mean="):
            np.var(self.x(), axis=1, keepdims=True, **kw)

    def test_std_passes_refusal_on(self):
        with pytest.raises(TypeError, match="numpy.var does not support"):
            np.std(self.x(), where=np.array([True, False, True]))


class TestVarAverage:
    def test_var_correction_value_and_hessian(self):
        v = np.array([0.3, -1.2, 2.0, 0.7])
        n = v.size
        assert float(hyperdual.hessian(lambda x: np.var(x, correction=1), v).value) == pytest.approx(
            np.var(v, ddof=1), rel=1e-14)
        H = hyperdual.hessian(lambda x: np.var(x, correction=1), v)
        close(H[:], 2.0 / (n - 1) * (np.eye(n) - np.ones((n, n)) / n))
        g = hyperdual.gradient(lambda x: np.var(x, correction=1), v)
        close(g, 2.0 / (n - 1) * (v - v.mean()))
        # correction overrides ddof, as in NumPy
        H0 = hyperdual.hessian(lambda x: np.var(x, ddof=0, correction=2), v)
        close(H0[:], 2.0 / (n - 2) * (np.eye(n) - np.ones((n, n)) / n))

    def test_std_correction(self):
        v = np.array([0.3, -1.2, 2.0, 0.7])
        g = hyperdual.gradient(lambda x: np.std(x, correction=1), v)
        s = np.std(v, ddof=1)
        close(g, (v - v.mean()) / ((v.size - 1) * s))

    def test_average_without_weights(self):
        x = seeded(np.arange(6.0).reshape(2, 3))
        check_linear(np.average(x), x, np.average)
        check_linear(np.average(x, axis=1), x, lambda a: np.average(a, axis=1))
        avg, wsum = np.average(x, axis=0, returned=True)
        check_linear(avg, x, lambda a: np.average(a, axis=0))
        want = np.average(x.value, axis=0, returned=True)[1]
        close(wsum, want)
        avg_k, wsum_k = np.average(x, axis=1, returned=True, keepdims=True)
        close(avg_k.value, np.average(x.value, axis=1, keepdims=True))
        close(wsum_k, np.average(x.value, axis=1, returned=True, keepdims=True)[1])

    def test_average_full_shape_weights(self):
        x = seeded(np.arange(6.0).reshape(2, 3))
        w = np.array([[1.0, 2.0, 0.5], [3.0, 1.0, 1.0]])
        check_linear(np.average(x, weights=w), x, lambda a: np.average(a, weights=w))
        check_linear(np.average(x, axis=0, weights=w), x, lambda a: np.average(a, axis=0, weights=w))
        avg, wsum = np.average(x, axis=1, weights=w, returned=True)
        check_linear(avg, x, lambda a: np.average(a, axis=1, weights=w))
        close(wsum, w.sum(axis=1))

    def test_average_1d_weights_along_an_axis(self):
        x = seeded(np.arange(6.0).reshape(2, 3))
        w = np.array([1.0, 2.0, 3.0])
        check_linear(np.average(x, axis=1, weights=w), x, lambda a: np.average(a, axis=1, weights=w))
        wr = np.array([2.0, 5.0])
        check_linear(np.average(x, axis=0, weights=wr), x, lambda a: np.average(a, axis=0, weights=wr))
        check_linear(np.average(x, axis=-1, weights=w), x, lambda a: np.average(a, axis=-1, weights=w))

    def test_average_hessian_with_weights(self):
        w = np.array([1.0, 2.0, 3.0])
        v = np.array([0.5, -1.0, 2.0])
        g = hyperdual.gradient(lambda x: np.average(x ** 2, weights=w), v)
        close(g, 2 * w * v / w.sum())
        H = hyperdual.hessian(lambda x: np.average(x ** 2, weights=w), v)
        close(H[:], np.diag(2 * w / w.sum()))

    def test_average_1d_weights_returned_sum_has_the_average_shape(self):
        x = seeded(np.arange(6.0).reshape(2, 3))
        w = np.array([1.0, 2.0, 3.0])
        avg, wsum = np.average(x, axis=1, weights=w, returned=True)
        want_avg, want_sum = np.average(x.value, axis=1, weights=w, returned=True)
        close(avg.value, want_avg)
        close(wsum, want_sum)  # NumPy: [6., 6.]

    def test_average_1d_weights_values_when_returned(self):
        x = seeded(np.arange(6.0).reshape(2, 3))
        w = np.array([1.0, 2.0, 3.0])
        avg, wsum = np.average(x, axis=1, weights=w, returned=True)
        check_linear(avg, x, lambda a: np.average(a, axis=1, weights=w))
        assert np.all(np.asarray(wsum) == 6.0)

    @pytest.mark.parametrize("axis,w", [(None, np.ones(3)), ((0, 1), np.ones(3)), (1, np.ones((3, 1)))])
    def test_average_bad_weights(self, axis, w):
        x = seeded(np.arange(6.0).reshape(2, 3))
        with pytest.raises(TypeError, match="weights of the array's shape, or 1-D weights with one axis"):
            np.average(x, axis=axis, weights=w)


class TestProd:
    def test_prod_over_an_empty_axis_is_one(self):
        x = seeded(np.zeros((2, 0)))
        p = np.prod(x, axis=1)
        close(p.value, np.ones(2))
        assert not p.e1.any() and not p.e2.any() and not p.e12.any()  # a constant: no derivatives
        v = np.array([1.5, -2.0])
        H = hyperdual.hessian(lambda z: np.sum(z ** 2) * np.prod(z[:0]), v)
        close(H[:], 2 * np.eye(2))
        close(H.gradient, 2 * v)
        pk = np.prod(x, axis=1, keepdims=True)
        close(pk.value, np.prod(np.zeros((2, 0)), axis=1, keepdims=True))
        p0 = np.prod(seeded(np.zeros(0)))
        close(p0.value, 1.0)

    def test_prod_keepdims_hessian(self):
        v = np.array([2.0, 3.0, 5.0])
        H = hyperdual.hessian(lambda x: np.prod(x, keepdims=True)[0], v)
        want = np.array([[0, 5, 3], [5, 0, 2], [3, 2, 0]], dtype=float)
        close(H[:], want)


class TestShapeFunctions:
    @pytest.mark.parametrize("shape", [(3, 2), (6,), (1, 6, 1), 6, (2, -1)])
    def test_reshape_order_f_matches_numpy(self, shape):
        x = seeded(np.arange(6.0).reshape(2, 3) ** 2)
        check_linear(np.reshape(x, shape, order="F"), x, lambda a: np.reshape(a, shape, order="F"))

    def test_reshape_order_f_3d_and_method(self):
        x = seeded(np.arange(24.0).reshape(2, 3, 4))
        check_linear(x.reshape(4, 6, order="F"), x, lambda a: a.reshape(4, 6, order="F"))
        check_linear(x.reshape((3, 8), order="F"), x, lambda a: a.reshape((3, 8), order="F"))
        check_linear(np.ravel(x, order="F"), x, lambda a: np.ravel(a, order="F"))
        check_linear(x.flatten(order="F"), x, lambda a: a.flatten(order="F"))

    def test_reshape_order_f_hessian(self):
        v = np.array([1.0, 2.0, 3.0, 4.0])
        # F-order reshape to (2, 2) puts v[1] at [1, 0]: f = M[1, 0] ** 3 = v[1] ** 3
        H = hyperdual.hessian(lambda x: np.reshape(x, (2, 2), order="F")[1, 0] ** 3, v)
        want = np.zeros((4, 4))
        want[1, 1] = 6 * v[1]
        close(H[:], want)

    @pytest.mark.parametrize("order", ["A", "K"])
    def test_reshape_other_orders_refused(self, order):
        x = seeded(np.arange(6.0))
        with pytest.raises(TypeError, match=f"supports order='C' and 'F', not '{order}'"):
            np.reshape(x, (2, 3), order=order)

    def test_concatenate_and_stack_of_nothing(self):
        # with an empty list only out= makes NumPy dispatch to hyperdual
        target = np.zeros_like(seeded([1.0]))
        with pytest.raises(ValueError, match="need at least one array to concatenate"):
            np.concatenate([], out=target)
        with pytest.raises(ValueError, match="need at least one array to stack"):
            np.stack([], out=target)

    def test_concatenate_stack_out(self):
        x = seeded([1.0, 2.0])
        target = np.zeros_like(seeded(np.zeros(4)))
        assert np.concatenate([x, x], out=target) is target
        check_linear(target, x, lambda a: np.concatenate([a, a]))
        t2 = np.zeros_like(seeded(np.zeros((2, 2))))
        assert np.stack([x, x], axis=1, out=t2) is t2
        check_linear(t2, x, lambda a: np.stack([a, a], axis=1))

    def test_sort_axis_none(self):
        x = seeded(np.array([[3.0, -1.0], [0.5, 2.0]]))
        got = np.sort(x, axis=None)
        order = np.argsort(x.value, axis=None)
        check_linear(got, x, lambda a: a.reshape(-1)[order])
        close(got.value, np.sort(x.value, axis=None))

    def test_repeat_axis_none(self):
        x = seeded(np.arange(4.0).reshape(2, 2))
        check_linear(np.repeat(x, 2), x, lambda a: np.repeat(a, 2))
        check_linear(np.repeat(x, [1, 0, 2, 1]), x, lambda a: np.repeat(a, [1, 0, 2, 1]))

    @pytest.mark.parametrize("mode", ["clip", "wrap"])
    def test_take_mode_refused(self, mode):
        x = seeded(np.arange(4.0))
        with pytest.raises(TypeError, match="numpy.take supports mode='raise' only"):
            np.take(x, [0, 5], mode=mode)

    def test_take_mode_raise(self):
        x = seeded(np.arange(4.0))
        check_linear(np.take(x, [3, 0], mode="raise"), x, lambda a: np.take(a, [3, 0]))

    def test_where_with_one_argument(self):
        x = seeded(np.array([[0.0, 2.0], [-1.0, 0.0]]))
        got = np.where(x)
        want = np.where(x.value)
        assert isinstance(got, tuple) and len(got) == 2
        for a, b in zip(got, want):
            assert type(a) is np.ndarray
            np.testing.assert_array_equal(a, b)

    @pytest.mark.parametrize("fn", [np.round, np.around])
    def test_round_has_zero_derivatives(self, fn):
        x = seeded(np.array([1.26, -2.5, 0.49]))
        for decimals in (0, 1):
            r = fn(x, decimals)
            close(r.value, np.round(x.value, decimals))
            assert r.e1.shape == x.e1.shape and r.e12.shape == x.e12.shape
            assert not r.e1.any() and not r.e2.any() and not r.e12.any()
        g = hyperdual.gradient(lambda v: np.sum(np.round(v) * v), np.array([1.26, -2.4]))
        close(g, np.round([1.26, -2.4]))

    def test_axis_out_of_range_is_numpy_axis_error(self):
        x = seeded(np.arange(6.0).reshape(2, 3))
        for call in (lambda: np.sum(x, axis=2), lambda: np.sum(x, axis=-3), lambda: np.cumsum(x, axis=5),
                     lambda: np.sum(HyperDual(1.0), axis=1), lambda: np.transpose(x, (0, 2))):
            with pytest.raises(np.exceptions.AxisError, match="out of bounds"):
                call()
        with pytest.raises(ValueError):  # AxisError is both a ValueError and an IndexError
            np.mean(x, axis=(0, 4))
        with pytest.raises(IndexError):
            np.sum(x, axis=(1, 2))

    @pytest.mark.parametrize("fn", [np.sum, np.mean])
    @pytest.mark.parametrize("axis", [0, -1])
    def test_axis_0_of_a_0d_array(self, fn, axis):
        # NumPy itself: np.sum accepts axis 0 / -1 of a 0-d array, np.mean raises AxisError
        x = HyperDual(2.0, e1=1.0, e2=1.0)
        if fn is np.mean:
            with pytest.raises(np.exceptions.AxisError):
                fn(np.array(2.0), axis=axis)
            with pytest.raises(np.exceptions.AxisError):
                fn(x, axis=axis)
            return
        y = fn(x, axis=axis)
        close(y.value, fn(np.array(2.0), axis=axis))
        close(y.e1, [1.0])

    def test_implements_out_plain_ndarray_refused(self):
        x = seeded(np.arange(6.0).reshape(2, 3))
        buf = np.zeros(3)
        with pytest.raises(TypeError, match="out= argument must be a HyperDual"):
            np.sum(x, axis=0, out=buf)
        with pytest.raises(TypeError, match="out= argument must be a HyperDual"):
            np.mean(x, axis=0, out=(buf,))
        close(buf, np.zeros(3))

    def test_implements_out_hyperdual(self):
        x = seeded(np.arange(6.0).reshape(2, 3))
        target = np.zeros_like(x[0])
        assert np.sum(x, axis=0, out=target) is target
        check_linear(target, x, lambda a: np.sum(a, axis=0))
        t2 = np.zeros_like(x[:, 0])
        assert x.max(axis=1, out=(t2,)) is t2
        close(t2.value, x.value.max(axis=1))


class TestMultilinear:
    def test_matmul_of_0d_operand(self):
        x = seeded(np.arange(3.0))
        with pytest.raises(ValueError, match="matmul: Input operand does not have enough dimensions"):
            np.matmul(x, 2.0)
        with pytest.raises(ValueError, match="not have enough dimensions"):
            np.matmul(np.float64(2.0), x)
        with pytest.raises(ValueError, match="not have enough dimensions"):
            np.matmul(seeded(2.0), np.ones(3))

    def test_matmul_axes_refused(self):
        x = seeded(np.ones((2, 2)))
        # np.matmul is a ufunc: extra kwargs are refused in __array_ufunc__ ...
        with pytest.raises(TypeError, match="\\['axes'\\] of numpy.matmul"):
            np.matmul(x, x, axes=[(0, 1), (0, 1), (0, 1)])

    def test_einsum_refusals(self):
        x = seeded(np.arange(3.0))
        with pytest.raises(TypeError, match="subscripts-string form only"):
            np.einsum(x, [0], [0])
        with pytest.raises(TypeError, match="numpy.einsum does not support \\['casting'\\]"):
            np.einsum("i,i->", x, x, casting="no")
        with pytest.raises(TypeError, match="\\['dtype'\\]"):
            np.einsum("i->", x, dtype=float)

    def test_einsum_out(self):
        x = seeded(np.arange(1.0, 4.0))
        a = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
        # through NumPy (the out= wrapper of the registry)
        target = np.zeros_like(seeded(np.zeros(2)))
        assert np.einsum("ij,j->i", a, x, out=target) is target
        check_linear(target, x, lambda v: a @ v)

    def test_einsum_out_hessian(self):
        v = np.array([1.0, 2.0])

        def f(x):
            t = np.zeros_like(x[0])
            np.einsum("i,i->", x, x, out=t)
            return t * x[0]
        H = hyperdual.hessian(f, v)
        # f = (x0² + x1²) x0
        close(H[:], np.array([[6 * v[0], 2 * v[1]], [2 * v[1], 2 * v[0]]]))

    @pytest.mark.parametrize("fn", [np.dot, np.inner])
    def test_dot_inner_with_0d_operand(self, fn):
        x = seeded(np.arange(1.0, 4.0))
        check_linear(fn(x, 2.5), x, lambda a: fn(a, 2.5))
        check_linear(fn(np.float64(-2.0), x), x, lambda a: fn(-2.0, a))
        s = HyperDual(3.0, e1=[1.0, 0.0], e2=[1.0, 0.0, 0.0], e12=np.zeros(6))
        y = fn(s, np.array([1.0, 2.0]))
        close(y.value, [3.0, 6.0])
        close(y.e1, [[1.0, 2.0], [0.0, 0.0]])
        v = np.array([1.5, -0.5])
        H = hyperdual.hessian(lambda z: np.sum(fn(z[0], z) ** 2), v)
        # f = z0² (z0² + z1²) = z0⁴ + z0² z1²
        close(H[:], np.array([[12 * v[0] ** 2 + 2 * v[1] ** 2, 4 * v[0] * v[1]],
                              [4 * v[0] * v[1], 2 * v[0] ** 2]]))

    def test_tensordot_axes_length_mismatch(self):
        x = seeded(np.ones((2, 3)))
        with pytest.raises(ValueError, match="shape-mismatch for sum"):
            np.tensordot(x, x, axes=([0], [0, 1]))
        with pytest.raises(ValueError, match="shape-mismatch for sum"):
            np.tensordot(x, np.ones((2, 3)), axes=(0, [0, 1]))

    def test_tensordot_int_axes_pair(self):
        x = seeded(np.arange(6.0).reshape(2, 3))
        b = np.arange(12.0).reshape(3, 4)
        check_linear(np.tensordot(x, b, axes=(1, 0)), x, lambda a: np.tensordot(a, b, axes=(1, 0)))

    def test_diag_of_3d(self):
        with pytest.raises(ValueError, match="Input must be 1- or 2-d."):
            np.diag(seeded(np.ones((2, 2, 2))))
        with pytest.raises(ValueError, match="Input must be 1- or 2-d."):
            np.diag(seeded(1.0))


class TestNorm:
    A = np.array([[1.0, -2.0, 3.5], [-4.0, 0.5, 1.5]])  # distinct row/column abs sums, no zeros

    def test_norm_3d_refused(self):
        x = seeded(np.ones((2, 2, 2)))
        with pytest.raises(ValueError, match="Improper number of dimensions to norm."):
            np.linalg.norm(x, ord=1)
        with pytest.raises(ValueError, match="Improper number of dimensions to norm."):
            np.linalg.norm(x, axis=(0, 1, 2))

    def test_norm_3d_default_is_2_norm_of_ravel(self):
        v = np.arange(1.0, 9.0).reshape(2, 2, 2)
        close(np.linalg.norm(seeded(v)).value, np.linalg.norm(v))

    @pytest.mark.parametrize("ord_,exc,msg", [(0, TypeError, "does not support vector ord=0"),
                                              ("fro", ValueError, "Invalid norm order 'fro' for vectors"),
                                              ("nuc", ValueError, "Invalid norm order 'nuc' for vectors")])
    def test_norm_vector_ord_refused(self, ord_, exc, msg):
        # the same exception types as NumPy (ord=0 is a count, not differentiable: TypeError)
        x = seeded(np.array([3.0, -4.0]))
        with pytest.raises(exc, match=msg):
            np.linalg.norm(x, ord=ord_, axis=0)
        with pytest.raises(exc, match=msg):
            np.linalg.norm(seeded(self.A), ord=ord_, axis=1)

    def test_norm_vector_fro_without_axis_refused(self):
        with pytest.raises(ValueError, match="Invalid norm order 'fro' for vectors"):
            np.linalg.norm(seeded(np.array([3.0, -4.0])), "fro")

    @pytest.mark.parametrize("ord_", [1, -1, np.inf, -np.inf, "fro", None])
    def test_matrix_norm_values_and_lanes(self, ord_):
        a = self.A
        want = np.linalg.norm(a, ord_)
        r = np.linalg.norm(seeded(a), ord_)
        close(r.value, want)
        # first derivatives: d|a_ij| = sign(a_ij) da_ij on the selected column (ord ±1) or row (±inf)
        g = hyperdual.gradient(lambda v: np.linalg.norm(v.reshape(2, 3), ord_), a.ravel())
        s = np.sign(a)
        if ord_ in (1, -1):
            col = (np.argmax if ord_ == 1 else np.argmin)(np.abs(a).sum(axis=0))
            gw = np.zeros_like(a)
            gw[:, col] = s[:, col]
        elif ord_ in (np.inf, -np.inf):
            row = (np.argmax if ord_ == np.inf else np.argmin)(np.abs(a).sum(axis=1))
            gw = np.zeros_like(a)
            gw[row] = s[row]
        else:
            gw = a / want
        close(g, gw.ravel())
        if ord_ not in ("fro", None):  # piecewise linear away from kinks: zero Hessian
            H = hyperdual.hessian(lambda v: np.linalg.norm(v.reshape(2, 3), ord_), a.ravel())
            close(H[:], np.zeros((6, 6)))

    @pytest.mark.parametrize("ord_", [1, -1, np.inf, -np.inf, "fro", None])
    def test_matrix_norm_keepdims(self, ord_):
        a = self.A
        for axis in (None, (0, 1), (1, 0)):
            if axis is None and ord_ is None:
                continue
            want = np.linalg.norm(a, ord_, axis=axis, keepdims=True)
            r = np.linalg.norm(seeded(a), ord_, axis=axis, keepdims=True)
            close(r.value, want)

    def test_matrix_norm_batched_axes(self):
        a = np.stack([self.A, -2.0 * self.A[:, ::-1]])
        for ord_ in (1, -1, np.inf, -np.inf):
            r = np.linalg.norm(seeded(a), ord_, axis=(1, 2))
            close(r.value, np.linalg.norm(a, ord_, axis=(1, 2)))

    @pytest.mark.parametrize("ord_", [2, -2, "nuc"])
    def test_matrix_singular_value_norms_refused(self, ord_):
        with pytest.raises(TypeError, match="does not support matrix ord="):
            np.linalg.norm(seeded(self.A), ord_)

    @pytest.mark.parametrize("ord_", [None, 2, 1, np.inf, -np.inf, 3])
    def test_vector_norm_keepdims(self, ord_):
        v = np.array([3.0, -4.0, 1.0])
        want = np.linalg.norm(v, ord_, keepdims=True)
        r = np.linalg.norm(seeded(v), ord_, keepdims=True)
        close(r.value, want)
        rm = np.linalg.norm(seeded(self.A), ord_, axis=1, keepdims=True)
        close(rm.value, np.linalg.norm(self.A, ord_, axis=1, keepdims=True))

    def test_frobenius_keepdims_no_axis(self):
        r = np.linalg.norm(seeded(self.A), keepdims=True)
        close(r.value, np.linalg.norm(self.A, keepdims=True))
        H = hyperdual.hessian(lambda v: np.linalg.norm(v, keepdims=True)[0], np.array([3.0, 4.0]))
        n = 5.0
        x = np.array([3.0, 4.0])
        close(H[:], (np.eye(2) - np.outer(x, x) / n ** 2) / n)


class TestSolve:
    def test_solve_2d_rhs_constant_matrix(self):
        A = np.array([[3.0, 1.0, 0.0], [1.0, 4.0, 1.0], [0.0, 1.0, 2.0]])
        B = seeded(np.arange(6.0).reshape(3, 2))
        check_linear(np.linalg.solve(A, B), B, lambda b: np.linalg.solve(A, b))
        # a constant HyperDual matrix (no context) takes the same path
        Ah = np.ones_like(seeded(A)) * A
        assert repr(Ah).endswith("constant)")
        check_linear(np.linalg.solve(Ah, B), B, lambda b: np.linalg.solve(A, b))

    def test_solve_2d_rhs_hessian(self):
        A = np.array([[2.0, 1.0], [1.0, 3.0]])
        Ai = np.linalg.inv(A)
        v = np.array([1.0, -1.0, 0.5, 2.0])

        def f(x):
            X = np.linalg.solve(A, x.reshape(2, 2))
            return np.sum(X * X)
        # f = |Ai X|_F², X columns independent: H = 2 kron(Ai^T Ai, I) arranged for row-major x
        M = Ai.T @ Ai
        want = 2 * np.kron(M, np.eye(2))
        close(hyperdual.hessian(f, v)[:], want, rtol=1e-12, atol=1e-12)


# =============================================================================================
# chain.py
# =============================================================================================
def test_lane_to_none_and_broadcast():
    assert hyperdual.execute.chain.lane_to(None, (2, 3)) is None
    lane = np.arange(2.0).reshape(2, 1)
    out = hyperdual.execute.chain.lane_to(lane, (4, 3))
    assert out.shape == (2, 4, 3)
    close(out[1], np.ones((4, 3)))


# =============================================================================================
# hessian.py
# =============================================================================================
class TestHessianEdges:
    @pytest.mark.parametrize("budget", [0, -1])
    def test_memory_budget_not_positive(self, budget):
        with pytest.raises(ValueError, match="memory_budget must be a positive number of bytes"):
            hyperdual.hessian(lambda x: np.sum(x), np.ones(2), memory_budget=budget)

    def test_constant_plain_float_output_with_batch(self):
        H = hyperdual.hessian(lambda x: 1.0, np.ones((3, 2)), batch_axis=0)
        assert H.shape == (3, 2, 2)
        close(H[:], np.zeros((3, 2, 2)))
        close(H.gradient, np.zeros((3, 2)))
        close(H.value, 1.0)

    def test_size_and_repr(self):
        H = hyperdual.hessian(lambda x: np.sum(x ** 3), np.array([1.0, 2.0, 3.0]))
        assert H.size == 9
        assert repr(H) == "Hessian(shape=(3, 3), entries_cached=0, passes=0)"
        H[0, 1]
        assert repr(H) == "Hessian(shape=(3, 3), entries_cached=1, passes=1)"
        H0 = hyperdual.hessian(lambda x: x ** 3, 2.0)
        assert H0.size == 1 and H0.shape == ()
        Hb = hyperdual.hessian(lambda x: np.sum(x ** 2, axis=1), np.ones((4, 3)), batch_axis=0)
        assert Hb.size == 36

    def test_len_of_0d_hessian(self):
        H = hyperdual.hessian(lambda x: x ** 3, 2.0)
        with pytest.raises(TypeError, match="len\\(\\) of unsized object"):
            len(H)
        close(H[()], 12.0)

    def test_gradient_of_batched_hessian(self):
        X = np.array([[1.0, 2.0], [-0.5, 3.0], [2.0, 0.0]])
        H = hyperdual.hessian(lambda x: np.sum(x ** 3, axis=1) + x[:, 0] * x[:, 1], X, batch_axis=0)
        g = H.gradient
        close(g, np.stack([3 * X[:, 0] ** 2 + X[:, 1], 3 * X[:, 1] ** 2 + X[:, 0]], axis=1))
        close(H[1], np.array([[6 * X[1, 0], 1.0], [1.0, 6 * X[1, 1]]]))
        # batched gradient of a 0-d-per-sample input
        g1 = hyperdual.hessian(lambda x: x ** 3, np.array([1.0, 2.0]), batch_axis=0).gradient
        close(g1, 3 * np.array([1.0, 2.0]) ** 2)

    def test_stale_hyperdual_output_is_a_pass_mismatch(self):
        stale = HyperDual(1.0, e1=1.0, e2=1.0)
        H = hyperdual.hessian(lambda x: stale, np.array([1.0, 2.0]))
        with pytest.raises(PassMismatchError, match="two different seeding passes"):
            H[0, 0]

    def test_independence_check_outside_the_domain_gives_no_verdict(self, per_pass):
        calls = []

        def f(x):
            v = x.value if isinstance(x, HyperDual) else x
            calls.append(v.copy())
            if v[0, 0] > 1.2:  # the moved first sample leaves the domain
                raise ValueError("outside the domain")
            return np.sum((x ** 3).T, axis=0)  # (a transpose: no batch rule, the check runs)
        X = np.array([[1.0, 2.0], [0.5, 1.0]])
        H = hyperdual.hessian(f, X, batch_axis=0)
        got = H[:]
        close(got, np.stack([np.diag(6 * X[0]), np.diag(6 * X[1])]))
        assert any(c[0, 0] > 1.2 for c in calls)  # the check ran (and raised inside)
        assert H.stats.function_calls == len(calls)

    def test_coupled_samples_still_detected(self, per_pass):
        with pytest.raises(ValueError, match="samples must be independent, but numpy.sum over the batch"):
            hyperdual.hessian(lambda x: np.sum(x ** 2, axis=1) * np.sum(x[:, 0]), np.ones((3, 2)) * 0.5,
                              batch_axis=0)
        H = hyperdual.hessian(lambda x: np.sum(x ** 2, axis=1) * np.sum(x.T[0]), np.ones((3, 2)) * 0.5,
                              batch_axis=0)
        with pytest.raises(ValueError, match="samples must be independent"):
            H[:]


class TestHvp:
    def test_2d_x_refused(self):
        with pytest.raises(ValueError, match="x.ndim should be 0 or 1 but got 2"):
            hyperdual.hvp(lambda x: np.sum(x), np.ones((2, 2)), np.ones((2, 2)))

    def test_v_of_wrong_shape(self):
        with pytest.raises(ValueError, match="v has shape \\(3,\\); expected the shape of x, \\(2,\\)"):
            hyperdual.hvp(lambda x: np.sum(x ** 3), np.ones(2), np.ones(3))

    def test_non_scalar_output(self):
        with pytest.raises(ValueError, match="hvp needs a scalar output, got shape \\(2,\\)"):
            hyperdual.hvp(lambda x: x ** 2, np.ones(2), np.ones(2))

    @pytest.mark.parametrize("f", [lambda x: 3.0, lambda x: np.float64(2.0), lambda x: np.sum(2 * x)],
                             ids=["float", "numpy-scalar", "linear"])
    def test_zero_hessian_outputs(self, f):
        got = hyperdual.hvp(f, np.array([1.0, 2.0]), np.array([0.5, -1.0]))
        assert got.shape == (2,)
        close(got, np.zeros(2))

    def test_0d(self):
        close(hyperdual.hvp(lambda x: x ** 3, 2.0, 0.5), 0.5 * 12.0)


class TestJacobianEdges:
    def test_0d_output_and_0d_input(self):
        J = hyperdual.jacobian(lambda x: 3.0 * x ** 2, 2.0)
        assert J.shape == () and J.ndim == 0
        close(J[()], 12.0)
        with pytest.raises(TypeError, match="len\\(\\) of unsized object"):
            len(J)

    def test_0d_input_vector_output(self):
        J = hyperdual.jacobian(lambda x: np.stack([x, x ** 2, np.sin(x)]), 2.0)
        assert J.shape == (3,) and len(J) == 3
        close(J[:], [1.0, 4.0, np.cos(2.0)])

    def test_0d_output_vector_input(self):
        v = np.array([1.0, 2.0])
        J = hyperdual.jacobian(lambda x: np.sum(x ** 2), v)
        assert J.shape == (2,)
        close(J[:], 2 * v)

    def test_batch_output_lacks_batch_dimension(self):
        with pytest.raises(ValueError, match="needs the batch size 3 as its leading dimension"):
            hyperdual.jacobian(lambda x: np.sum(x), np.ones((3, 2)), batch_axis=0)
        with pytest.raises(ValueError, match="needs the batch size 3 as its leading dimension"):
            hyperdual.jacobian(lambda x: x[0], np.ones((3, 2)), batch_axis=0)

    def test_output_with_too_many_dimensions(self):
        with pytest.raises(ValueError, match="ys.ndim should be 0 or 1 for a Jacobian \\(without batch_axis\\)"):
            hyperdual.jacobian(lambda x: np.outer(x, x), np.ones(2))
        with pytest.raises(ValueError, match="ys.ndim should be 1 or 2 for a Jacobian \\(with batch_axis\\)"):
            hyperdual.jacobian(lambda x: x[:, :, None] * x[:, None, :], np.ones((3, 2)), batch_axis=0)

    def test_output_changes_shape_between_calls(self, per_pass):
        J = hyperdual.jacobian(lambda x: x if isinstance(x, np.ndarray) else x[:1], np.ones(2))
        assert J.shape == (2, 2)
        with pytest.raises(ValueError, match="the output changed shape between calls: \\(1,\\) vs \\(2,\\)"):
            J[:]

    def test_constant_output_has_zero_jacobian(self):
        J = hyperdual.jacobian(lambda x: np.array([1.0, 2.0]), np.ones(3))
        assert J.shape == (2, 3)
        close(J[:], np.zeros((2, 3)))
        Jb = hyperdual.jacobian(lambda x: np.ones((4, 2)), np.ones((4, 3)), batch_axis=0)
        close(Jb[:], np.zeros((4, 2, 3)))


# =============================================================================================
# record.py
# =============================================================================================
class TestRecordEdges:
    def test_variable_of_a_hyperdual(self):
        with pytest.raises(TypeError, match="variable\\(\\) takes a plain array; it was given a HyperDual"):
            hyperdual.variable(HyperDual(1.0))
        with pytest.raises(TypeError, match="variable\\(\\) takes a plain array"):
            hyperdual.variable(hyperdual.variable(np.ones(2)))

    def test_recorded_dict_kwargs_replay(self):
        x = hyperdual.variable(np.array([1.0, 2.0, 3.0]))
        y = np.sum(x ** 3, axis=0, keepdims=True)
        assert y.shape == (1,)
        assert [r[0] for r in hyperdual.trace_of(y)] == ["variable", "power", "sum"]
        H = hyperdual.hessian(y, x)
        close(H[:], np.diag(6 * np.array([1.0, 2.0, 3.0])))
        X = hyperdual.variable(np.array([[1.0, 2.0], [3.0, 4.0]]))
        z = np.sum(np.sum(X ** 2, axis=1, keepdims=True) * np.array([[1.0], [2.0]]), axis=(0, 1))
        with pytest.raises(ValueError, match="ndim should be 0 or 1"):
            hyperdual.hessian(z, X)
        Xv = hyperdual.variable(np.array([1.0, 2.0, 3.0, 4.0]))
        z = np.sum(np.sum(np.reshape(Xv, (2, 2)) ** 2, axis=1, keepdims=True) * np.array([[1.0], [2.0]]))
        close(hyperdual.hessian(z, Xv)[:], np.diag([2.0, 2.0, 4.0, 4.0]))

    def test_trace_of_non_recorded(self):
        for obj in (HyperDual(1.0), np.ones(2), 3.0):
            with pytest.raises(TypeError, match="trace_of\\(\\) needs an array computed from hyperdual.variable"):
                hyperdual.trace_of(obj)

    def test_mixing_recorded_and_seeded(self):
        x = hyperdual.variable(np.array([1.0, 2.0]))
        s = HyperDual([1.0, 1.0], e1=[1.0, 0.0], e2=[0.0, 1.0])
        with pytest.raises(ValueError, match="recording and seeded evaluation cannot be mixed"):
            x * s
        with pytest.raises(ValueError, match="cannot be mixed"):
            np.concatenate([x, s])

    def test_constant_hyperdual_operand_is_copied_into_the_record(self):
        x = hyperdual.variable(np.array([1.0, 2.0]))
        c = np.ones_like(HyperDual([0.0, 0.0])) * 3.0  # a HyperDual constant (no context, no record)
        assert repr(c).endswith("constant)")
        y = np.sum(x * c * x)
        c[0] = 100.0  # changing the constant after recording does not change the replay
        close(hyperdual.hessian(y, x)[:], np.diag([6.0, 6.0]))

    def test_value_only_results_while_recording(self):
        x = hyperdual.variable(np.array([1.0, 3.0, 2.0]))
        assert np.argmax(x) == 1
        mask = x > 1.5
        assert type(mask) is np.ndarray
        np.testing.assert_array_equal(mask, [False, True, True])
        # a value-only result does not end up in the record of a later output
        y = np.sum(np.where(mask, x, 0.0) ** 2)
        close(hyperdual.hessian(y, x)[:], np.diag([0.0, 2.0, 2.0]))


# =============================================================================================
# context.py
# =============================================================================================
class TestContextEdges:
    def test_mismatched_pair_map_lengths(self):
        with pytest.raises(ValueError, match="pair maps differ in length: 2 and 1"):
            SeedContext([0, 1], [0], 2, 2)
        with pytest.raises(ValueError, match="pair maps differ in length"):
            HyperDual([1.0, 2.0], e1=np.eye(2), e2=np.eye(2), pairs=([0, 1], [0]))

    @pytest.mark.parametrize("ip,jp", [([0, 2], [0, 0]), ([0, 0], [0, 1]), ([-1], [0]), ([0], [-1])])
    def test_out_of_range_pairs(self, ip, jp):
        with pytest.raises(ValueError, match="pair map refers to seed directions outside e1\\[0:2\\] / e2\\[0:1\\]"):
            SeedContext(ip, jp, 2, 1)

    def test_out_of_range_pairs_in_a_hyperdual(self):
        with pytest.raises(ValueError, match="outside e1\\[0:1\\] / e2\\[0:1\\]"):
            HyperDual(1.0, e1=1.0, e2=1.0, pairs=([0], [1]))

    def test_repr(self):
        assert repr(SeedContext.all_pairs(2, 3)) == "SeedContext(k1=2, k2=3, npairs=6)"
        assert repr(SeedContext([], [], 0, 0)) == "SeedContext(k1=0, k2=0, npairs=0)"

    def test_compatible(self):
        tok = SeedContext.all_pairs(1, 1, token=object())
        assert tok.compatible(tok)
        assert not tok.compatible(SeedContext.all_pairs(1, 1, token=object()))
        a, b = SeedContext.all_pairs(2, 2), SeedContext.all_pairs(2, 2)
        assert a.compatible(b) and not a.compatible(SeedContext.all_pairs(2, 1))
        assert not a.compatible(SeedContext([0, 1, 1, 0], [0, 1, 0, 1], 2, 2))

    def test_pickling_a_context_with_a_token_gives_a_fresh_token(self):
        ctx = SeedContext([0, 1], [1, 0], 2, 2, token=object())
        back = pickle.loads(pickle.dumps(ctx))
        assert back.token is not None and back.token is not ctx.token
        np.testing.assert_array_equal(back.ip, [0, 1])
        np.testing.assert_array_equal(back.jp, [1, 0])
        assert (back.k1, back.k2) == (2, 2)
        assert not back.compatible(ctx) and not ctx.compatible(back)
        plain = pickle.loads(pickle.dumps(SeedContext([0], [0], 1, 1)))
        assert plain.token is None and plain.compatible(SeedContext([0], [0], 1, 1))

    def test_pickled_pass_array_never_mixes_with_its_pass(self, per_pass):
        got = []

        def f(x):
            got.append(x)
            return np.sum(x ** 2)
        H = hyperdual.hessian(f, np.array([1.0, 2.0]))
        H[0, 0]
        live = got[-1]
        back = pickle.loads(pickle.dumps(live))
        close(back.value, live.value)
        close(back.e1, live.e1)
        with pytest.raises(PassMismatchError):
            live + back


# =============================================================================================
# rules.py
# =============================================================================================
@pytest.fixture
def registry():
    saved = (dict(hyperdual.ops.rules.UNARY), dict(hyperdual.ops.rules.BINARY))
    yield
    for table, old in zip((hyperdual.ops.rules.UNARY, hyperdual.ops.rules.BINARY), saved):
        table.clear()
        table.update(old)


class TestRegisterUfuncEdges:
    def test_non_ufunc(self, registry):
        with pytest.raises(TypeError, match="register_ufunc needs a numpy.ufunc, got "):
            hyperdual.register_ufunc(np.sum, lambda a, y: (1.0, None))
        with pytest.raises(TypeError, match="hyperdual.register_function"):
            hyperdual.register_ufunc(lambda a: a, lambda a, y: (1.0, None))

    def test_two_outputs(self, registry):
        before = (dict(hyperdual.ops.rules.UNARY), dict(hyperdual.ops.rules.BINARY))
        with pytest.raises(ValueError, match="modf: only ufuncs with 1 or 2 inputs and 1 output"):
            hyperdual.register_ufunc(np.modf, lambda a, y: (1.0, None))
        with pytest.raises(ValueError, match="divmod: only ufuncs"):
            hyperdual.register_ufunc(np.divmod, hyperdual.BinaryRule(lambda a, b, y: (1.0, None),
                                                                     lambda a, b, y: (1.0, None),
                                                                     lambda a, b, y: None))
        assert (hyperdual.ops.rules.UNARY, hyperdual.ops.rules.BINARY) == before

    def test_unary_rule_not_callable(self, registry):
        with pytest.raises(TypeError, match="a unary rule is a callable \\(a, y\\) -> \\(g', g''\\)"):
            hyperdual.register_ufunc(np.spacing, (1.0, None))
        assert np.spacing not in hyperdual.ops.rules.UNARY

    def test_binary_rule_not_a_binary_rule(self, registry):
        with pytest.raises(TypeError, match="a binary rule is a hyperdual.BinaryRule"):
            hyperdual.register_ufunc(np.copysign, lambda a, b, y: (1.0, None))
        assert np.copysign not in hyperdual.ops.rules.BINARY

    def test_registered_rule_is_used_and_restored(self, registry):
        with pytest.raises(TypeError, match="numpy.spacing"):
            np.spacing(HyperDual(1.0, e1=1.0, e2=1.0))
        hyperdual.register_ufunc(np.spacing, lambda a, y: (0.0, None))
        r = np.spacing(HyperDual(1.0, e1=1.0, e2=1.0))
        close(r.value, np.spacing(1.0))


def test_registry_fixture_restored():
    assert np.spacing not in hyperdual.ops.rules.UNARY


# =============================================================================================
# seeding.py
# =============================================================================================
@pytest.fixture
def budget():
    saved = hyperdual.settings.settings.memory_budget
    yield
    hyperdual.settings.settings.memory_budget = saved


class TestSeedingEdges:
    @pytest.mark.parametrize("nbytes", [0, -5, 0.5])
    def test_set_memory_budget_not_positive(self, budget, nbytes):
        before = hyperdual.settings.settings.memory_budget
        with pytest.raises(ValueError, match="the memory budget must be positive"):
            hyperdual.set_memory_budget(nbytes)
        assert hyperdual.settings.settings.memory_budget == before

    def test_set_memory_budget_is_used(self, budget, no_colouring):
        hyperdual.set_memory_budget(8 * 16 * 3)  # one pair of a 3-element input fits, two do not
        H = hyperdual.hessian(lambda x: np.sum(x ** 3), np.array([1.0, 2.0, 3.0]))
        close(H[:], np.diag([6.0, 12.0, 18.0]))
        assert H.stats.passes == 6
        hyperdual.set_memory_budget(8 * 16 * 2)
        with pytest.raises(ValueError, match="too small for even one index pair"):
            hyperdual.hessian(lambda x: np.sum(x ** 3), np.array([1.0, 2.0, 3.0]))[0, 0]

    def test_nan_input_seeds_nan_lanes(self):
        seen = []

        def f(x):
            seen.append(x)
            return np.sum(x ** 2)
        x = np.array([np.nan, 2.0])
        H = hyperdual.hessian(f, x)
        assert np.isnan(H[0, 0]) and np.isnan(H[0, 1])
        lane = seen[-1].e1
        assert np.isnan(lane[:, 0]).all()  # every seed direction is NaN at the NaN input
        assert not np.isnan(lane[:, 1]).any()
        assert np.isnan(hyperdual.gradient(f, x)[0])

    def test_nan_input_of_one_member_of_a_tuple(self):
        seen = []

        def f(a, b):
            seen.append((a, b))
            return np.sum(b ** 3) + np.sum(a)
        H = hyperdual.hessian(f, (np.array([np.nan]), np.array([2.0])))
        assert np.isnan(H[0][0][0, 0])
        a, b = seen[-1]
        assert np.isnan(a.e1).all()  # every seed direction is NaN at the NaN member
        assert not np.isnan(b.e1).any()
