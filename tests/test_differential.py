"""Randomized differential tests: random NumPy programs, hyperdual against independent references.

A *program* is an expression tree (depth 2-6) over the operations hyperdual supports:

* elementwise ufuncs, each placed inside its domain by a smooth wrapper valid for every real
  argument (``log(1.5 + a**2)``, ``arcsin(0.5 * tanh(a))``, ``tan(0.5 * tanh(a))``,
  ``exp(clip(a, -2, 2))``, …), ``abs``/``fabs``;
* binary ``+ - * /`` (denominators ``2 + b**2``), powers with a constant exponent, with a
  constant base and with a HyperDual exponent on a positive base, ``arctan2``, ``hypot``,
  ``logaddexp(2)``, ``maximum``/``minimum``, with HyperDual or constant operands on either
  side and per-sample scalars broadcast against vectors;
* reductions ``sum prod mean var std average max min`` and ``norm`` (ord 2, 1, 3, ±inf);
* indexing: integers (negative too), slices of any step, integer arrays (repeats too), and
  item assignment into a HyperDual; ``concatenate``, ``stack``, ``reshape`` + ``swapaxes``,
  ``cumsum``, ``diff``, ``flip``, ``roll``, ``sort``, ``where`` with a constant mask;
* ``@`` / ``einsum`` / ``tensordot`` with constant matrices, ``einsum`` of two HyperDuals;
* ``det``, ``slogdet``, ``inv`` (applied, traced, summed) and ``solve`` on small matrices
  ``A = 3 I + K + 0.1 u uᵀ`` built from program vectors ``u`` (``K`` a constant antisymmetric
  matrix, so ``xᵀ A x >= 3 |x|²``: never singular), and ``solve`` with a constant matrix.

Every node evaluates through a *backend* object, so one tree runs unchanged on

(a) plain float arrays (:class:`NumpyBackend`, the finite-difference reference),
(b) HyperDual arrays (the same :class:`NumpyBackend`: hyperdual works through NumPy's
    own protocols), in both call forms ``hessian(func, x)`` and ``hessian(ys, variable)``,
(c) NumPy object arrays of sympy symbols (:class:`SympyBackend`, the exact reference,
    for programs made of elementwise ops, sums, products, indexing, concatenation, where).

Programs are written for a trailing feature axis (reductions over ``axis=-1``, indexing
``v[..., idx]``), so the same tree also runs on ``[B, N]`` samples (``batch_axis=0``) and
on a stack of finite-difference points in one vectorized call.

hyperdual runs its lane arithmetic on NumPy "twins" of its Numba kernels until enough work
has been done in the process, then switches for good; every randomized test draws the
engine per example (:func:`engine`), so both are covered at any example count.

References never use hyperdual: sympy's exact Hessian evaluated with mpmath at 30 digits,
or Richardson-extrapolated central differences of ``f`` itself (see :func:`fd_reference`).

``HYPERDUAL_EXAMPLES`` sets the number of examples per test (default 40).

Mismatches found by these tests are reduced to the regression tests at the end of the file.
"""
from __future__ import annotations

import contextlib
import os

import mpmath
import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, assume, given, note, settings, strategies as st

import hyperdual

EXAMPLES = int(os.environ.get("HYPERDUAL_EXAMPLES", "40"))
SETTINGS = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                    print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large])

MAX_N = 12        # largest input size
MAX_LINALG = 4    # largest matrix built from a program vector
BATCH = 3
VALUE_LIMIT = 1e3  # programs whose intermediate values exceed this are discarded (assume)
GAP_LIMIT = 0.05   # distance to a kink (max/min/clip/sort/abs/norm) below which FD is discarded


# ---- backends ---------------------------------------------------------------------------------
class NumpyBackend:
    """Plain NumPy calls: runs on float arrays and on HyperDual arrays alike.

    With ``record=True`` (float arrays only) it notes the smallest distance of any selection
    to a tie/kink and the largest intermediate magnitude: the finite-difference reference is
    only trusted where the program is smooth in a neighbourhood of the point.
    """

    def __init__(self, record=False):
        self.record = record
        self.gap = np.inf
        self.big = 0.0

    def _see(self, r):
        if self.record:
            self.big = max(self.big, float(np.max(np.abs(r), initial=0.0)))
            if not np.all(np.isfinite(r)):
                self.big = np.inf
        return r

    def _gap(self, g):
        if self.record:
            self.gap = min(self.gap, float(np.min(g, initial=np.inf)))

    def u(self, name, a):
        return self._see(getattr(np, name)(a))

    def add(self, a, b):
        return self._see(a + b)

    def sub(self, a, b):
        return self._see(a - b)

    def mul(self, a, b):
        return self._see(a * b)

    def div(self, a, b):
        return self._see(a / b)

    def pow(self, a, b):
        return self._see(a ** b)

    def b2(self, name, a, b):
        if name in ("maximum", "minimum"):
            self._gap(np.abs(a - b) if self.record else 0)
        return self._see(getattr(np, name)(a, b))

    def clip(self, a, lo, hi):
        if self.record:
            self._gap(np.minimum(np.abs(a - lo), np.abs(a - hi)))
        return self._see(np.clip(a, lo, hi))

    def absval(self, name, a):
        self._gap(np.abs(a) if self.record else 0)
        return self._see(getattr(np, name)(a))

    def reduce(self, kind, a, w=None):
        if kind in ("max", "min") and self.record and a.shape[-1] > 1:
            s = np.sort(a, axis=-1)
            self._gap(s[..., -1] - s[..., -2] if kind == "max" else s[..., 1] - s[..., 0])
        if kind == "average":
            return self._see(np.average(a, axis=-1, weights=w))
        r = getattr(np, kind)(a, axis=-1)
        if kind == "std" and self.record:
            self._gap(r)   # sqrt(var) has its kink where all entries are equal
        return self._see(r)

    def dot(self, a, b):
        return self._see(np.einsum("...i,...i->...", a, b))

    def fold(self, a, c):
        lead, k = a.shape[:-1], a.shape[-1] // 2
        return self._see(np.swapaxes(np.reshape(a, lead + (2, k)), -1, -2) @ c)

    def stack(self, a, b, c):
        return self._see(np.sum(np.stack([a, b], axis=-2) * c[:, None], axis=-2))

    def scatter(self, v, idx, w):
        t = np.copy(v)
        t[(Ellipsis, idx)] = w
        return t

    def take(self, a, idx):
        return a[(Ellipsis, idx)]

    def expand(self, a):
        return a[..., None]

    def concat(self, a, b):
        return np.concatenate([a, b], axis=-1)

    def matvec(self, a, c, how="matmul"):
        if how == "einsum":
            return self._see(np.einsum("...j,jk->...k", a, c))
        if how == "tensordot":
            return self._see(np.tensordot(a, c, axes=([-1], [0])))
        return self._see(a @ c)

    def where(self, mask, a, b):
        return np.where(mask, a, b)

    def linear(self, kind, a, k):
        if kind == "cumsum":
            return self._see(np.cumsum(a, axis=-1))
        if kind == "flip":
            return np.flip(a, axis=-1)
        if kind == "roll":
            return np.roll(a, k, axis=-1)
        if kind == "sort":
            if self.record and a.shape[-1] > 1:
                self._gap(np.diff(np.sort(a, axis=-1), axis=-1))
            return np.sort(a, axis=-1)
        if kind == "diff":
            return self._see(np.diff(a, axis=-1))
        raise AssertionError(kind)

    def norm(self, a, ord=None):
        r = np.linalg.norm(a, ord=ord, axis=-1)
        if self.record:
            self._gap(r)  # every norm has a kink at the zero vector
            if ord is not None:  # ... and 1, 3, ±inf where an entry is 0
                self._gap(np.abs(a))
            if ord in (np.inf, -np.inf) and a.shape[-1] > 1:  # ... and where |entries| tie
                s = np.sort(np.abs(a), axis=-1)
                self._gap(s[..., -1] - s[..., -2] if ord == np.inf else s[..., 1] - s[..., 0])
        return self._see(r)

    def spd(self, u, k):
        n = u.shape[-1]
        outer = u[..., :, None] * u[..., None, :]
        return self._see(0.1 * outer + (3.0 * np.eye(n) + k))

    def det(self, a):
        return self._see(np.linalg.det(a))

    def logdet(self, a):
        return self._see(np.linalg.slogdet(a)[1])

    def trace_inv(self, a):
        return self._see(np.trace(np.linalg.inv(a), axis1=-2, axis2=-1))

    def inv_sum(self, a, c):
        return self._see(np.sum(np.linalg.inv(a) * c, axis=(-2, -1)))

    def inv_apply(self, a, w):
        return self._see((np.linalg.inv(a) @ w[..., None])[..., 0])

    def solve(self, a, b):
        return self._see(np.linalg.solve(a, b[..., None])[..., 0])


def _o(x):
    """A result of the sympy backend as an object ndarray (0-d results included)."""
    return np.asarray(x, dtype=object)


_LN2, _LN10 = sympy.log(2), sympy.log(10)
SYMPY_UNARY = {
    "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan, "exp": sympy.exp, "log": sympy.log,
    "sqrt": sympy.sqrt, "arcsin": sympy.asin, "arccos": sympy.acos, "arctan": sympy.atan,
    "sinh": sympy.sinh, "cosh": sympy.cosh, "tanh": sympy.tanh, "arcsinh": sympy.asinh,
    "arccosh": sympy.acosh, "arctanh": sympy.atanh,
    "log1p": lambda a: sympy.log(1 + a), "expm1": lambda a: sympy.exp(a) - 1,
    "exp2": lambda a: 2 ** a, "log2": lambda a: sympy.log(a) / _LN2,
    "log10": lambda a: sympy.log(a) / _LN10, "cbrt": lambda a: a ** sympy.Rational(1, 3),
    "square": lambda a: a ** 2, "reciprocal": lambda a: 1 / a, "negative": lambda a: -a,
    "deg2rad": lambda a: a * sympy.pi / 180,
}
SYMPY_BINARY = {
    "arctan2": sympy.atan2, "hypot": lambda a, b: sympy.sqrt(a ** 2 + b ** 2),
    "logaddexp": lambda a, b: sympy.log(sympy.exp(a) + sympy.exp(b)),
    "logaddexp2": lambda a, b: sympy.log(2 ** a + 2 ** b) / _LN2,
}


class SympyBackend:
    """The same calls on object arrays of sympy expressions (exact reference)."""

    def u(self, name, a):
        return _o(np.frompyfunc(SYMPY_UNARY[name], 1, 1)(a))

    def add(self, a, b):
        return _o(a + b)

    def sub(self, a, b):
        return _o(a - b)

    def mul(self, a, b):
        return _o(a * b)

    def div(self, a, b):
        return _o(a / b)

    def pow(self, a, b):
        return _o(a ** b)

    def b2(self, name, a, b):
        return _o(np.frompyfunc(SYMPY_BINARY[name], 2, 1)(a, b))

    def reduce(self, kind, a):
        if kind == "sum":
            return _o(np.sum(a, axis=-1))
        if kind == "prod":
            return _o(np.prod(a, axis=-1))
        if kind == "mean":
            return _o(np.sum(a, axis=-1) / a.shape[-1])
        if kind == "var":
            c = a - _o(np.sum(a, axis=-1) / a.shape[-1])[..., None]
            return _o(np.sum(c * c, axis=-1) / a.shape[-1])
        raise AssertionError(f"no sympy reduction {kind}")

    def dot(self, a, b):
        return _o(np.sum(a * b, axis=-1))

    def scatter(self, v, idx, w):
        t = np.array(v, dtype=object)
        t[(Ellipsis, idx)] = w
        return t

    def take(self, a, idx):
        return _o(a[(Ellipsis, idx)])

    def expand(self, a):
        return _o(a)[..., None]

    def concat(self, a, b):
        return _o(np.concatenate([a, b], axis=-1))

    def where(self, mask, a, b):
        return _o(np.where(mask, a, b))

    def linear(self, kind, a, k):
        if kind == "cumsum":
            return _o(np.cumsum(a, axis=-1))
        if kind == "flip":
            return _o(np.flip(a, axis=-1))
        if kind == "roll":
            return _o(np.roll(a, k, axis=-1))
        if kind == "diff":
            return _o(np.diff(a, axis=-1))
        raise AssertionError(f"no sympy {kind}")


DUAL = NumpyBackend()


# ---- the operations ----------------------------------------------------------------------------
def _pos(B, a, c=1.5):
    return B.add(c, B.u("square", a))          # >= c > 0 for every real a


def _small(B, a):
    return B.mul(0.5, B.u("tanh", a))           # in (-0.5, 0.5)


#: unary op -> (implementation(B, a, p), sympy-capable); each valid for every real ``a``.
UNARY = {
    "sin": (lambda B, a, p: B.u("sin", a), True),
    "cos": (lambda B, a, p: B.u("cos", a), True),
    "tan": (lambda B, a, p: B.u("tan", _small(B, a)), True),
    "exp_sin": (lambda B, a, p: B.u("exp", B.u("sin", a)), True),
    "exp_clip": (lambda B, a, p: B.u("exp", B.clip(a, -2.0, 2.0)), False),
    "exp2": (lambda B, a, p: B.u("exp2", B.u("tanh", a)), True),
    "expm1": (lambda B, a, p: B.u("expm1", B.u("sin", a)), True),
    "log": (lambda B, a, p: B.u("log", _pos(B, a)), True),
    "log2": (lambda B, a, p: B.u("log2", _pos(B, a)), True),
    "log10": (lambda B, a, p: B.u("log10", _pos(B, a)), True),
    "log1p": (lambda B, a, p: B.u("log1p", B.u("square", a)), True),
    "sqrt": (lambda B, a, p: B.u("sqrt", _pos(B, a, 1.0)), True),
    "cbrt": (lambda B, a, p: B.u("cbrt", _pos(B, a, 1.0)), True),
    "arcsin": (lambda B, a, p: B.u("arcsin", _small(B, a)), True),
    "arccos": (lambda B, a, p: B.u("arccos", _small(B, a)), True),
    "arctan": (lambda B, a, p: B.u("arctan", a), True),
    "sinh": (lambda B, a, p: B.u("sinh", B.u("tanh", a)), True),
    "cosh": (lambda B, a, p: B.u("cosh", B.u("sin", a)), True),
    "tanh": (lambda B, a, p: B.u("tanh", a), True),
    "arcsinh": (lambda B, a, p: B.u("arcsinh", a), True),
    "arccosh": (lambda B, a, p: B.u("arccosh", _pos(B, a)), True),
    "arctanh": (lambda B, a, p: B.u("arctanh", _small(B, a)), True),
    "square": (lambda B, a, p: B.u("square", a), True),
    "reciprocal": (lambda B, a, p: B.u("reciprocal", _pos(B, a, 2.0)), True),
    "negative": (lambda B, a, p: B.u("negative", a), True),
    "deg2rad": (lambda B, a, p: B.u("deg2rad", a), True),
    "cube": (lambda B, a, p: B.pow(a, 3), True),                       # integer power, any sign
    "pow_const": (lambda B, a, p: B.pow(_pos(B, a), p), True),         # positive base ** constant
    "const_pow": (lambda B, a, p: B.pow(p, B.u("tanh", a)), True),     # constant base ** HyperDual
    "scale": (lambda B, a, p: B.mul(p, a), True),
    "abs": (lambda B, a, p: B.absval("abs", a), False),
    "fabs": (lambda B, a, p: B.absval("fabs", a), False),
}
POW_EXPONENTS = [-1.5, -1.0, -0.5, 0.5, 1.5, 2.5, 3.0]
POW_BASES = [0.5, 2.0, 3.0]

#: binary op -> (implementation(B, a, b), sympy-capable); smooth for all real a, b.
BINARY = {
    "add": (lambda B, a, b: B.add(a, b), True),
    "sub": (lambda B, a, b: B.sub(a, b), True),
    "mul": (lambda B, a, b: B.mul(a, b), True),
    "div": (lambda B, a, b: B.div(a, _pos(B, b, 2.0)), True),
    "pow_dual": (lambda B, a, b: B.pow(_pos(B, a), B.u("sin", b)), True),
    "arctan2": (lambda B, a, b: B.b2("arctan2", a, _pos(B, b)), True),
    "arctan2_r": (lambda B, a, b: B.b2("arctan2", _pos(B, a), b), True),
    "hypot": (lambda B, a, b: B.b2("hypot", a, _pos(B, b, 0.5)), True),
    "logaddexp": (lambda B, a, b: B.b2("logaddexp", a, b), True),
    "logaddexp2": (lambda B, a, b: B.b2("logaddexp2", a, b), True),
    "maximum": (lambda B, a, b: B.b2("maximum", a, b), False),
    "minimum": (lambda B, a, b: B.b2("minimum", a, b), False),
}
REDUCTIONS = {"sum": True, "prod": True, "mean": True, "var": True, "max": False, "min": False,
              "std": False, "average": False}
LINEAR = {"cumsum": True, "flip": True, "roll": True, "diff": True, "sort": False}
NORM_ORDS = [None, 1, 3, np.inf, -np.inf]
MATRIX_SCALARS = ["det", "logdet", "trace_inv", "inv_sum"]
MATVEC = ["matmul", "einsum", "tensordot"]


# ---- the tree ------------------------------------------------------------------------------------
def _idx_code(idx):
    if isinstance(idx, slice):
        f = lambda v: "" if v is None else str(v)  # noqa: E731
        return f"{f(idx.start)}:{f(idx.stop)}" + ("" if idx.step is None else f":{idx.step}")
    if isinstance(idx, np.ndarray):
        return repr(idx.tolist())
    return repr(idx)


def _arr(c):
    return "np.array(" + repr(np.round(c, 17).tolist()) + ")"


class Node:
    n = None  # vector length, None for a per-sample scalar

    def size(self):
        return 1 + sum(c.size() for c in self.kids)


class Input(Node):
    kids = ()

    def __init__(self, n):
        self.n = n

    def ev(self, B, x):
        return x

    def code(self):
        return "x"


class Const(Node):
    """A constant operand: a vector of length ``n``, or a Python float (``n`` None)."""

    kids = ()

    def __init__(self, c):
        self.c = c
        self.n = None if isinstance(c, float) else c.size

    def ev(self, B, x):
        return self.c

    def code(self):
        return repr(self.c) if self.n is None else _arr(self.c)


class Take(Node):
    def __init__(self, child, idx):
        self.kids, self.idx = (child,), idx
        m = child.n
        self.n = None if isinstance(idx, int) else int(np.arange(m)[idx].size)

    def ev(self, B, x):
        return B.take(self.kids[0].ev(B, x), self.idx)

    def code(self):
        return f"{self.kids[0].code()}[..., {_idx_code(self.idx)}]"


class Unary(Node):
    def __init__(self, name, child, p=None):
        self.kids, self.name, self.p, self.n = (child,), name, p, child.n

    def ev(self, B, x):
        return UNARY[self.name][0](B, self.kids[0].ev(B, x), self.p)

    def code(self):
        return f"{self.name}{'' if self.p is None else f'[{self.p}]'}({self.kids[0].code()})"


def _feature(B, kid, x, n):
    """``kid``'s value, a per-sample scalar given the feature axis when it meets a vector."""
    v = kid.ev(B, x)
    if n is not None and kid.n is None and not isinstance(kid, Const):
        return B.expand(v)
    return v


class Binary(Node):
    def __init__(self, name, a, b):
        self.kids, self.name = (a, b), name
        self.n = a.n if a.n is not None else b.n

    def ev(self, B, x):
        a, b = (_feature(B, k, x, self.n) for k in self.kids)
        return BINARY[self.name][0](B, a, b)

    def code(self):
        return f"{self.name}({self.kids[0].code()}, {self.kids[1].code()})"


class Reduce(Node):
    def __init__(self, kind, child, w=None):
        self.kids, self.kind, self.w = (child,), kind, w

    def ev(self, B, x):
        a = self.kids[0].ev(B, x)
        return B.reduce(self.kind, a) if self.w is None else B.reduce(self.kind, a, self.w)

    def code(self):
        w = "" if self.w is None else f", weights={_arr(self.w)}"
        return f"np.{self.kind}({self.kids[0].code()}, axis=-1{w})"


class Dot(Node):
    """``einsum('...i,...i->...', a, b)``: a product of two HyperDuals (multilinear rule)."""

    def __init__(self, a, b):
        self.kids = (a, b)

    def ev(self, B, x):
        return B.dot(*(k.ev(B, x) for k in self.kids))

    def code(self):
        return f"np.einsum('...i,...i->...', {self.kids[0].code()}, {self.kids[1].code()})"


class Fold(Node):
    """``swapaxes(reshape(v, (..., 2, k)), -1, -2) @ c``: reshape, swapaxes, matmul with a 1-D c."""

    def __init__(self, child, c):
        self.kids, self.c, self.n = (child,), c, child.n // 2

    def ev(self, B, x):
        return B.fold(self.kids[0].ev(B, x), self.c)

    def code(self):
        return f"fold({self.kids[0].code()}, {_arr(self.c)})"


class Stack(Node):
    """``sum(stack([a, b], axis=-2) * c[:, None], axis=-2)``."""

    def __init__(self, a, b, c):
        self.kids, self.c, self.n = (a, b), c, a.n

    def ev(self, B, x):
        return B.stack(self.kids[0].ev(B, x), self.kids[1].ev(B, x), self.c)

    def code(self):
        return f"stack2({self.kids[0].code()}, {self.kids[1].code()}, {_arr(self.c)})"


class Scatter(Node):
    """``t = np.copy(v); t[..., idx] = w``: item assignment into a HyperDual."""

    def __init__(self, v, idx, w):
        self.kids, self.idx, self.n = (v, w), idx, v.n

    def ev(self, B, x):
        return B.scatter(self.kids[0].ev(B, x), self.idx, self.kids[1].ev(B, x))

    def code(self):
        return f"scatter({self.kids[0].code()}, {_idx_code(self.idx)}, {self.kids[1].code()})"


class Concat(Node):
    def __init__(self, a, b):
        self.kids, self.n = (a, b), a.n + b.n

    def ev(self, B, x):
        return B.concat(*(k.ev(B, x) for k in self.kids))

    def code(self):
        return f"np.concatenate([{self.kids[0].code()}, {self.kids[1].code()}], axis=-1)"


class MatVec(Node):
    def __init__(self, child, c):
        self.kids, self.c, self.n = (child,), c, c.shape[1]

    how = "matmul"

    def ev(self, B, x):
        return B.matvec(self.kids[0].ev(B, x), self.c, self.how)

    def code(self):
        return f"{self.how}({self.kids[0].code()}, {_arr(self.c)})"


class Where(Node):
    def __init__(self, mask, a, b):
        self.kids, self.mask, self.n = (a, b), mask, mask.size

    def ev(self, B, x):
        return B.where(self.mask, *(_feature(B, k, x, self.n) for k in self.kids))

    def code(self):
        return f"np.where({self.mask.tolist()}, {self.kids[0].code()}, {self.kids[1].code()})"


class Linear(Node):
    def __init__(self, kind, child, k=0):
        self.kids, self.kind, self.k = (child,), kind, k
        self.n = child.n - 1 if kind == "diff" else child.n

    def ev(self, B, x):
        return B.linear(self.kind, self.kids[0].ev(B, x), self.k)

    def code(self):
        extra = f", {self.k}" if self.kind == "roll" else ""
        return f"np.{self.kind}({self.kids[0].code()}{extra}, axis=-1)"


class Bcast(Node):
    """A vector from a per-sample scalar: ``s[..., None] * c``."""

    def __init__(self, child, c):
        self.kids, self.c, self.n = (child,), c, c.size

    def ev(self, B, x):
        return B.mul(B.expand(self.kids[0].ev(B, x)), self.c)

    def code(self):
        return f"({self.kids[0].code()}[..., None] * {_arr(self.c)})"


class Norm(Node):
    def __init__(self, child, ord=None):
        self.kids, self.ord = (child,), ord

    def ev(self, B, x):
        return B.norm(self.kids[0].ev(B, x), self.ord)

    def code(self):
        return f"np.linalg.norm({self.kids[0].code()}, ord={self.ord}, axis=-1)"


class Matrix(Node):
    """``det(A)`` (scalar), ``inv(A) @ w`` or ``solve(A, w)`` (vectors), ``A = 3I + K + 0.1 u uᵀ``."""

    def __init__(self, kind, u, k, w=None, c=None):
        self.kind, self.k, self.c = kind, k, c
        self.kids = (u,) if w is None else (u, w)
        self.n = None if kind in MATRIX_SCALARS else u.n

    def ev(self, B, x):
        a = B.spd(self.kids[0].ev(B, x), self.k)
        if self.kind == "inv_sum":
            return B.inv_sum(a, self.c)
        if self.kind in MATRIX_SCALARS:
            return getattr(B, self.kind)(a)
        w = self.kids[1].ev(B, x)
        return B.inv_apply(a, w) if self.kind == "inv" else B.solve(a, w)

    def code(self):
        u = self.kids[0].code()
        a = f"spd({u}, {_arr(self.k)})"
        if self.kind == "inv_sum":
            return f"np.sum(np.linalg.inv({a}) * {_arr(self.c)}, axis=(-2, -1))"
        if self.kind == "trace_inv":
            return f"np.trace(np.linalg.inv({a}), axis1=-2, axis2=-1)"
        if self.kind == "logdet":
            return f"np.linalg.slogdet({a})[1]"
        if self.kind == "det":
            return f"np.linalg.det({a})"
        w = self.kids[1].code()
        if self.kind == "inv":
            return f"(np.linalg.inv({a}) @ {w}[..., None])[..., 0]"
        return f"np.linalg.solve({a}, {w}[..., None])[..., 0]"


class SolveConst(Node):
    """``solve(C, w)`` with a constant well-conditioned ``C``."""

    def __init__(self, c, w):
        self.kids, self.c, self.n = (w,), c, w.n

    def ev(self, B, x):
        return B.solve(self.c, self.kids[0].ev(B, x))

    def code(self):
        return f"np.linalg.solve({_arr(self.c)}, {self.kids[0].code()}[..., None])[..., 0]"


class Program:
    """A scalar-per-sample program of one or more inputs (concatenated inside)."""

    def __init__(self, tree, shapes):
        self.tree, self.shapes = tree, shapes   # per-sample input shapes: () or (n,)

    def __call__(self, *xs, backend=DUAL):
        B = backend
        parts = [B.expand(x) if s == () else x for x, s in zip(xs, self.shapes)]
        z = parts[0]
        for p in parts[1:]:
            z = B.concat(z, p)
        return self.tree.ev(B, z)

    def flat(self, z, backend):
        """The program of the flat per-sample vector ``z`` ([..., n]) (the FD reference)."""
        xs, off = [], 0
        for s in self.shapes:
            m = 1 if s == () else s[0]
            xs.append(z[..., off] if s == () else z[..., off:off + m])
            off += m
        return self(*xs, backend=backend)

    def __repr__(self):
        return f"Program(shapes={self.shapes}, code={self.tree.code()})"


# ---- the strategy ------------------------------------------------------------------------------
def _slice_of(rng, m, n):
    """A slice of a length-``m`` axis with exactly ``n`` elements (random step and signs)."""
    steps = [s for s in (1, 2, 3, -1, -2) if (n - 1) * abs(s) < m]
    s = int(rng.choice(steps))
    span = (n - 1) * abs(s)
    coin = lambda: bool(rng.integers(2))  # noqa: E731
    if s > 0:
        start = int(rng.integers(0, m - span))
        stop = start + span + 1 + int(rng.integers(0, s))
        stop = None if stop >= m and coin() else min(stop, m)
    else:
        start = int(rng.integers(span, m))
        stop = start - span - 1 - int(rng.integers(0, abs(s)))
        stop = None if stop < 0 else stop
    if coin():
        start -= m                                  # the same position, counted from the end
    if stop is not None and stop < m and coin():
        stop -= m
    if s == 1 and coin():
        s = None
    if s is not None and s > 0 and start == 0 and coin():
        start = None
    sl = slice(start, stop, s)
    assert np.arange(m)[sl].size == n, (m, n, sl)
    return sl


class Gen:
    """Builds a random tree from a NumPy generator (uniform over the operations).

    The structure comes from a seed drawn by hypothesis rather than from one draw per
    choice: with a few dozen derandomized examples, per-choice draws concentrate on a few
    operations, while a seeded generator covers all of them evenly.
    """

    def __init__(self, rng, n_in, sympy_only):
        self.rng, self.n_in, self.sym = rng, n_in, sympy_only

    def _choice(self, items):
        return items[int(self.rng.integers(len(items)))]

    def _int(self, lo, hi):          # inclusive
        return int(self.rng.integers(lo, hi + 1))

    def _coin(self):
        return bool(self.rng.integers(2))

    def _pick(self, table):
        return self._choice(sorted(k for k, v in table.items() if v or not self.sym))

    def _depth(self, d):
        return self._int(max(0, d - 2), d - 1)

    def _unary(self, child):
        name = self._pick({k: v[1] for k, v in UNARY.items()})
        p = {"pow_const": POW_EXPONENTS, "const_pow": POW_BASES,
             "scale": [-2.0, -0.5, 0.25, 1.5]}.get(name)
        return Unary(name, child, None if p is None else self._choice(p))

    def _binary(self, a, b):
        # Products (and sums) dominate real code: weight them up.
        name = self._choice(["mul", "mul", "mul", "add"] + [self._pick({k: v[1] for k, v in BINARY.items()})] * 4)
        return Binary(name, *((a, b) if self._coin() else (b, a)))

    def _indices(self, m, k):
        return self.rng.integers(-m, m, size=k).astype(np.int64)

    def leaf_vec(self, n):
        x = Input(self.n_in)
        if n == self.n_in and self._coin() or n is None and self._int(0, 2) == 0:
            return x
        n = self._int(1, MAX_N) if n is None else n
        if n <= self.n_in and self._coin():
            return Take(x, _slice_of(self.rng, self.n_in, n))
        return Take(x, self._indices(self.n_in, n))

    def vec(self, d, n=None):
        """A vector node of depth ``d`` (and length ``n`` if given)."""
        if d == 0:
            return self.leaf_vec(n)
        ops = ["unary", "unary", "unary", "binary_vv", "binary_vv", "binary_vs", "binary_vs", "binary_vc",
               "slice", "take", "linear", "bcast", "where", "scatter"]
        if n is None or n >= 2:
            ops.append("concat")
        if not self.sym:
            ops += ["matvec", "fold", "stack"]
            if n is None or n <= MAX_LINALG:
                ops += ["matrix", "solve_const"]
        op = self._choice(ops)
        if op == "unary":
            return self._unary(self.vec(d - 1, n))
        if op == "binary_vv":
            a = self.vec(d - 1, n)
            return self._binary(a, self.vec(self._depth(d), a.n))
        if op == "binary_vs":
            return self._binary(self.vec(d - 1, n), self.scalar(self._depth(d)))
        if op == "binary_vc":
            a = self.vec(d - 1, n)
            c = self.rng.uniform(-1.5, 1.5, a.n) if self._coin() else float(self.rng.uniform(-1.5, 1.5))
            return self._binary(a, Const(c))
        if op == "scatter":
            v = self.vec(d - 1, n)
            if self._coin():
                return Scatter(v, self._int(-v.n, v.n - 1), self.scalar(self._depth(d)))
            k = self._int(1, v.n)
            if self._coin():
                idx = _slice_of(self.rng, v.n, k)
            else:
                idx = self.rng.permutation(v.n)[:k] - v.n * self.rng.integers(0, 2, k)
            return Scatter(v, idx, self.vec(self._depth(d), k))
        if op == "fold":
            k = self._int(1, MAX_N // 2) if n is None else n
            return Fold(self.vec(d - 1, 2 * k), self.rng.uniform(-1.0, 1.0, 2))
        if op == "stack":
            a = self.vec(d - 1, n)
            return Stack(a, self.vec(self._depth(d), a.n), self.rng.uniform(-1.0, 1.0, 2))
        if op == "slice":
            m = self._int(1 if n is None else n, MAX_N if n is None else max(n, MAX_N))
            k = self._int(1, m) if n is None else n
            return Take(self.vec(d - 1, m), _slice_of(self.rng, m, k))
        if op == "take":
            child = self.vec(d - 1, self._choice([None, self._int(1, MAX_N)]))
            k = self._int(1, MAX_N) if n is None else n
            return Take(child, self._indices(child.n, k))
        if op == "linear":
            kind = self._pick(LINEAR)
            if kind == "diff":
                return Linear(kind, self.vec(d - 1, self._int(2, MAX_N) if n is None else n + 1))
            return Linear(kind, self.vec(d - 1, n), self._int(-3, 3))
        if op == "bcast":
            k = self._int(1, MAX_N) if n is None else n
            return Bcast(self.scalar(d - 1), self.rng.uniform(-1.0, 1.0, k))
        if op == "where":
            a = self.vec(d - 1, n)
            kind = self._choice(["vec", "vec", "scalar", "const"])
            if kind == "vec":
                b = self.vec(self._depth(d), a.n)
            elif kind == "scalar":
                b = self.scalar(self._depth(d))
            else:
                b = Const(self.rng.uniform(-1.5, 1.5, a.n) if self._coin() else 0.5)
            return Where(self.rng.random(a.n) < 0.5, *((a, b) if self._coin() else (b, a)))
        if op == "concat":
            total = self._int(2, MAX_N) if n is None else n
            k = self._int(1, total - 1)
            a, b = self.vec(d - 1, k), self.vec(self._depth(d), total - k)
            return Concat(*((a, b) if self._coin() else (b, a)))
        if op == "matvec":
            child = self.vec(d - 1, self._choice([None, self._int(1, MAX_N)]))
            k = self._int(1, MAX_N) if n is None else n
            node = MatVec(child, self.rng.uniform(-1.0, 1.0, (child.n, k)) / np.sqrt(child.n))
            node.how = self._choice(MATVEC)
            return node
        k = self._int(1, MAX_LINALG) if n is None else n
        if op == "matrix":
            kind = self._choice(["inv", "solve"])
            u = self.vec(d - 1, k)
            return Matrix(kind, u, self._antisym(k), self.vec(self._depth(d), k))
        c = 2.0 * np.eye(k) + self.rng.uniform(-0.5, 0.5, (k, k))  # op == "solve_const"
        return SolveConst(c, self.vec(d - 1, k))

    def _antisym(self, k):
        a = self.rng.uniform(-1.0, 1.0, (k, k))
        return 0.5 * (a - a.T)

    def scalar(self, d):
        """A per-sample scalar node of depth ``d``."""
        if d == 0:
            return Take(Input(self.n_in), self._int(-self.n_in, self.n_in - 1))
        ops = ["reduce", "reduce", "index", "unary", "unary", "binary", "binary_c", "dot"]
        if not self.sym:
            ops += ["norm", "matrix"]
        op = self._choice(ops)
        if op == "reduce":
            kind = self._pick(REDUCTIONS)
            child = self.vec(d - 1, self._int(1, 6) if kind == "prod" else None)
            w = self.rng.uniform(0.2, 1.0, child.n) if kind == "average" else None
            return Reduce(kind, child, w)
        if op == "dot":
            a = self.vec(d - 1)
            return Dot(a, self.vec(self._depth(d), a.n))
        if op == "binary_c":
            return self._binary(self.scalar(d - 1), Const(float(self.rng.uniform(-1.5, 1.5))))
        if op == "index":
            child = self.vec(d - 1)
            return Take(child, self._int(-child.n, child.n - 1))
        if op == "unary":
            return self._unary(self.scalar(d - 1))
        if op == "binary":
            return self._binary(self.scalar(d - 1), self.scalar(self._depth(d)))
        if op == "norm":
            return Norm(self.vec(d - 1), self._choice(NORM_ORDS))
        k = self._int(1, MAX_LINALG)   # op == "matrix"
        kind = self._choice(MATRIX_SCALARS)
        c = self.rng.uniform(-1.0, 1.0, (k, k)) if kind == "inv_sum" else None
        return Matrix(kind, self.vec(d - 1, k), self._antisym(k), c=c)


@st.composite
def programs(draw, n_inputs=1, sympy_only=False, depth=(2, 6), max_n=MAX_N, max_nodes=80):
    """A random program (tree depth in ``depth``) and its per-sample input shapes."""
    shapes = []
    for _ in range(n_inputs):
        n = draw(st.integers(0, max_n if n_inputs == 1 else max_n // 2), label="input size")
        shapes.append(() if n == 0 else (n,))
    n_in = sum(1 if s == () else s[0] for s in shapes)
    d = draw(st.integers(*depth), label="depth")
    seed = draw(st.integers(0, 2 ** 32 - 1), label="structure seed")
    rng = np.random.default_rng(seed)
    for _ in range(20):  # redraw (same seed stream) until the tree is small enough
        tree = Gen(rng, n_in, sympy_only).scalar(d)
        if tree.size() <= max_nodes:
            return Program(tree, shapes)
    assume(False)


def points(shape, batch=None):
    full = shape if batch is None else (batch,) + shape
    size = int(np.prod(full))
    return st.lists(st.floats(-1.5, 1.5, allow_nan=False, allow_infinity=False, width=64),
                    min_size=size, max_size=size).map(lambda v: np.array(v, dtype=np.float64).reshape(full))


@st.composite
def index_for(draw, shape):
    """A NumPy index for an array of ``shape``: ints, slices of any step, int lists and arrays,
    boolean masks, ``None`` and ``...`` (sometimes invalid: then NumPy's error is expected)."""
    if shape and draw(st.integers(0, 9)) == 0:  # one boolean mask over the whole array
        size = int(np.prod(shape))
        bits = draw(st.lists(st.booleans(), min_size=size, max_size=size))
        return np.array(bits, dtype=bool).reshape(shape)
    items = []
    k = draw(st.integers(0, len(shape)))
    ellipsis = draw(st.booleans()) and k < len(shape)
    axes = list(range(len(shape) - k, len(shape))) if ellipsis else list(range(k))
    for ax in axes:
        dim = shape[ax]
        kind = draw(st.sampled_from(["int", "slice", "slice", "list", "array", "mask"]))
        if kind == "int":
            items.append(draw(st.integers(-dim, dim - 1)))
        elif kind == "slice":
            bound = st.one_of(st.none(), st.integers(-dim - 2, dim + 2))
            items.append(slice(draw(bound), draw(bound), draw(st.sampled_from([None, 1, 2, 3, -1, -2]))))
        elif kind == "mask":
            size = dim if draw(st.integers(0, 9)) else dim + 1   # sometimes the wrong length
            items.append(np.array(draw(st.lists(st.booleans(), min_size=size, max_size=size)), dtype=bool))
        else:
            vals = draw(st.lists(st.integers(-dim, dim - 1), min_size=0, max_size=4))
            items.append(vals if kind == "list" else np.array(vals, dtype=np.int64))
    if draw(st.integers(0, 4)) == 0:                  # a new axis somewhere
        items.insert(draw(st.integers(0, len(items))), None)
    if ellipsis:
        items.insert(0, Ellipsis)
    if len(items) == 1 and draw(st.booleans()):
        return items[0]
    return tuple(items)


# ---- references -------------------------------------------------------------------------------------
H_STEP = 1e-2


def fd_reference(f, z0):
    """Hessian and gradient of ``f`` at the flat point ``z0`` ([n]) by central differences.

    ``f`` maps a stack of points ``[P, n]`` to ``[P]`` (one vectorized call).  For step ``h``

        D_ij(h) = [f(z+h e_i+h e_j) - f(z+h e_i-h e_j) - f(z-h e_i+h e_j) + f(z-h e_i-h e_j)] / (4h²)

    has error ``c2 h² + c4 h⁴ + …`` (even powers only: the stencil is symmetric), so the
    Richardson combination ``R(h) = (4 D(h/2) - D(h)) / 3`` cancels the ``h²`` term and leaves
    ``O(h⁴ · f⁽⁶⁾)``: with ``h = 1e-2`` (inputs are O(1)), about 1e-8 times a sixth derivative.
    Rounding adds ``≈ (16 + 1)/3 · eps |f| / h² ≈ 1.3e-11 |f|`` (|f| <= 1e3 here: <= 1.3e-8).

    The same is done one level finer (``h/2, h/4``); the difference of the two extrapolations
    estimates the truncation error of the reference itself, returned as ``err`` so that the
    caller can discard points where the program is not smooth enough for differences (a kink
    within reach of the stencil, or huge high derivatives).  The gradient uses the
    corresponding first-difference extrapolation.
    """
    n = z0.size
    iu, ju = np.triu_indices(n)
    eye = np.eye(n)
    steps = H_STEP / np.array([1.0, 2.0, 4.0])
    stencil = [(1, 1), (1, -1), (-1, 1), (-1, -1)]
    pts = [z0 + h * (s * eye[iu] + t * eye[ju]) for h in steps for s, t in stencil]
    pts += [z0 + s * h * eye for h in steps for s in (1, -1)]
    vals = np.asarray(f(np.concatenate(pts)), dtype=np.float64)
    npair = iu.size
    second = vals[:12 * npair].reshape(3, 4, npair)
    first = vals[12 * npair:].reshape(3, 2, n)
    d2 = (second[:, 0] - second[:, 1] - second[:, 2] + second[:, 3]) / (4 * steps[:, None] ** 2)
    d1 = (first[:, 0] - first[:, 1]) / (2 * steps[:, None])
    r2 = (4 * d2[1:] - d2[:-1]) / 3
    r1 = (4 * d1[1:] - d1[:-1]) / 3

    def sym(v):
        h = np.zeros((n, n))
        h[iu, ju] = v
        h[ju, iu] = v
        return h
    hess, finer = sym(r2[0]), sym(r2[1])
    err = max(float(np.max(np.abs(hess - finer))), float(np.max(np.abs(r1[0] - r1[1]))))
    return hess, r1[0], err


def fd_checked(prog, z0):
    """FD reference of ``prog`` at the flat per-sample point ``z0``; discards unreliable points."""
    rec = NumpyBackend(record=True)
    value = prog.flat(z0[None], rec)
    note(f"value={value}, kink gap={rec.gap:.3g}, max |intermediate|={rec.big:.3g}")
    assume(np.all(np.isfinite(value)) and rec.big < VALUE_LIMIT)
    assume(rec.gap > GAP_LIMIT)
    ref, grad, err = fd_reference(lambda z: prog.flat(z, NumpyBackend()), z0)
    scale = 1.0 + float(np.max(np.abs(ref), initial=0.0))
    note(f"FD reference error estimate {err:.3g} (scale {scale:.3g})")
    # Trust the reference only where its own error estimate is 10x below the tolerance.
    assume(np.all(np.isfinite(ref)) and err < 1e-6 * scale)
    return ref, grad


def fd_tol(ref):
    # atol = 1e-5 (1 + max|H|): >= 10x the verified truncation error of the reference (see
    # fd_checked) and >= 1e3x its rounding error; a wrong rule gives O(|H|) errors.
    return 1e-5 * (1.0 + float(np.max(np.abs(ref), initial=0.0)))


def sympy_reference(prog, z0):
    """Exact Hessian and gradient of ``prog`` (one input) at ``z0``, evaluated with 30 digits."""
    n = z0.size
    syms = sympy.symbols(f"x0:{n}", real=True)
    shape = prog.shapes[0]
    x = np.asarray(syms[0], dtype=object) if shape == () else np.array(syms, dtype=object)
    expr = sympy.sympify(prog(x, backend=SympyBackend())[()])  # a constant output is a float
    hess = sympy.hessian(expr, syms)
    grad = sympy.Matrix([expr]).jacobian(syms)
    with mpmath.workdps(30):
        fn = sympy.lambdify(syms, [hess, grad], modules="mpmath")
        h, g = fn(*[mpmath.mpf(float(v)) for v in z0])
        return (np.array(h.tolist(), dtype=np.float64),
                np.array(g.tolist(), dtype=np.float64).reshape(n))


# ---- helpers shared by the tests ---------------------------------------------------------------------
ENGINES = st.sampled_from(["numpy", "numba"])

_TWINS = ("chain_lanes_numpy", "binary_lanes_numpy", "product_lanes_numpy", "square_lanes_numpy")


@contextlib.contextmanager
def engine(kind):
    """Run the lane arithmetic on the NumPy twins or on the Numba kernels.

    hyperdual chooses by the work done so far in the process (a global switch), so a short
    test run would only ever see the twins.  This pins the choice for one example and
    restores the library's own state afterwards.  It uses the engine switch of
    ``hyperdual.execute.lanes``; if that changes shape, the example runs with whatever is active.
    """
    lanes = getattr(hyperdual, "lanes", None)
    choice = getattr(lanes, "_Choice", None)
    if choice is None or not all(hasattr(lanes, t) for t in _TWINS):
        yield
        return
    saved = (choice.ready, choice.kernels, choice.work)
    try:
        if kind == "numba":
            choice.ready = False
            hyperdual.load_kernels()
        else:
            choice.kernels = lanes.Kernels(*(getattr(lanes, t) for t in _TWINS))
            choice.ready = True  # no switch in the middle of the example
        yield
    finally:
        choice.ready, choice.kernels, choice.work = saved


@pytest.fixture(scope="module", params=["recorded", "per-pass"], autouse=True)
def trace_mode(request):
    """Every test of this module in both modes of ``hessian(func, xs)``: the function recorded
    once and replayed in every pass, and the function called per pass (the fallback)."""
    from hyperdual.plan.seeding import settings as hd_settings
    saved = hd_settings.trace
    hd_settings.trace = request.param == "recorded"
    yield request.param
    hd_settings.trace = saved


def make_hessian(form, prog, xs, batch_axis, budget):
    """``hessian`` of ``prog`` at ``xs`` (array or tuple) in one of the two call forms."""
    multi = isinstance(xs, tuple)
    if form == "callable":
        return hyperdual.hessian(prog, xs, batch_axis, memory_budget=budget)
    vs = tuple(hyperdual.variable(x) for x in xs) if multi else hyperdual.variable(xs)
    ys = prog(*vs) if multi else prog(vs)
    return hyperdual.hessian(ys, vs, batch_axis, memory_budget=budget)


def budget_for(elements, pairs_per_pass):
    """A memory budget that allows ``pairs_per_pass`` pairs per pass (None: the default)."""
    if pairs_per_pass is None:
        return None
    return elements * 8 * hyperdual.plan.seeding.LIVE_FACTOR * pairs_per_pass


def check_index(h, ref, index, atol):
    """``h[index]`` behaves like ``ref[index]``: same values and shape, or the same error type."""
    note(f"index {index!r}")
    try:
        want = ref[index]
    except Exception as exc:  # NumPy refuses the index: the Hessian must refuse it the same way
        with pytest.raises(type(exc)):
            h[index]
        return
    got = h[index]
    assert isinstance(got, (np.ndarray, np.floating)), type(got)
    assert np.shape(got) == np.shape(want), (np.shape(got), np.shape(want))
    np.testing.assert_allclose(got, want, rtol=0, atol=atol)


def flat_point(xs, shapes):
    return np.concatenate([np.reshape(x, -1) for x in xs]) if shapes else None


FORMS = st.sampled_from(["callable", "ys"])
PAIRS_PER_PASS = st.sampled_from([None, None, 1, 3, 8])


# ---- the tests -----------------------------------------------------------------------------------------
@SETTINGS
@given(data=st.data(), prog=programs(sympy_only=True, depth=(2, 4), max_n=4, max_nodes=30),
       form=FORMS, kind=ENGINES)
def test_elementwise_programs_match_sympy(data, prog, form, kind):
    """Small programs of elementwise ops, sums, products and indexing: exact sympy Hessians."""
    note(repr(prog))
    x0 = data.draw(points(prog.shapes[0]), label="x0")
    z0 = np.reshape(x0, -1)
    rec = NumpyBackend(record=True)
    prog.flat(z0[None], rec)
    assume(rec.big < VALUE_LIMIT)
    ref, grad = sympy_reference(prog, z0)
    assume(np.all(np.isfinite(ref)))
    ref = ref.reshape(prog.shapes[0] * 2)
    atol = 1e-9 * (1.0 + float(np.max(np.abs(ref), initial=0.0)))

    with engine(kind):
        h = make_hessian(form, prog, x0, None, None)
        assert h.shape == ref.shape
        check_index(h, ref, data.draw(index_for(ref.shape), label="index"), atol)
        got = h[...]
        gradient = h.gradient
    assert isinstance(got, np.ndarray) and got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=0, atol=atol)
    np.testing.assert_allclose(np.reshape(gradient, -1), grad, rtol=0,
                               atol=1e-9 * (1.0 + float(np.max(np.abs(grad)))))
    np.testing.assert_allclose(h.value, prog(x0, backend=NumpyBackend()), rtol=1e-12, atol=1e-12)


@SETTINGS
@given(data=st.data(), prog=programs(), form=FORMS, per_pass=PAIRS_PER_PASS, kind=ENGINES)
def test_programs_match_finite_differences(data, prog, form, per_pass, kind):
    """The full grammar, inputs 0-d to [12], lazily indexed, then in full."""
    note(repr(prog))
    x0 = data.draw(points(prog.shapes[0]), label="x0")
    z0 = np.reshape(x0, -1)
    ref, grad = fd_checked(prog, z0)
    ref = ref.reshape(prog.shapes[0] * 2)
    atol = fd_tol(ref)

    with engine(kind):
        h = make_hessian(form, prog, x0, None, budget_for(z0.size, per_pass))
        assert h.shape == ref.shape
        check_index(h, ref, data.draw(index_for(ref.shape), label="index"), atol)
        got = h[...]
        gradient = h.gradient
    assert isinstance(got, np.ndarray) and got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=0, atol=atol)
    np.testing.assert_allclose(np.reshape(gradient, -1), grad, rtol=0, atol=fd_tol(grad))
    np.testing.assert_allclose(h.value, prog(x0, backend=NumpyBackend()), rtol=1e-12, atol=1e-12)


@SETTINGS
@given(data=st.data(), prog=programs(depth=(2, 5), max_n=8), form=FORMS, per_pass=PAIRS_PER_PASS,
       kind=ENGINES)
def test_batched_programs_match_per_sample_references(data, prog, form, per_pass, kind):
    """``batch_axis=0`` with B=3: ``H[b]`` is the Hessian of the program at sample ``b`` alone."""
    note(repr(prog))
    xb = data.draw(points(prog.shapes[0], BATCH), label="xb")
    refs = []
    for b in range(BATCH):
        r, _ = fd_checked(prog, np.reshape(xb[b], -1))
        refs.append(r.reshape(prog.shapes[0] * 2))
    ref = np.stack(refs)
    atol = fd_tol(ref)

    with engine(kind):
        h = make_hessian(form, prog, xb, 0, budget_for(xb.size, per_pass))
        assert h.shape == ref.shape
        check_index(h, ref, data.draw(index_for(ref.shape), label="index"), atol)
        if data.draw(st.booleans(), label="one sample first"):
            b = data.draw(st.integers(-BATCH, BATCH - 1), label="sample")
            np.testing.assert_allclose(h[b], ref[b], rtol=0, atol=atol)
        got = h[:]
    assert isinstance(got, np.ndarray) and got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=0, atol=atol)
    np.testing.assert_allclose(h.value, prog(xb, backend=NumpyBackend()), rtol=1e-12, atol=1e-12)


@SETTINGS
@given(data=st.data(), prog=programs(n_inputs=2, depth=(2, 5)), form=FORMS,
       batched=st.booleans(), per_pass=PAIRS_PER_PASS, kind=ENGINES)
def test_tuple_inputs_blocks_match_references(data, prog, form, batched, per_pass, kind):
    """Two inputs concatenated inside the program: ``H[a][b]`` are blocks of one Hessian."""
    note(repr(prog))
    nb = BATCH if batched else None
    xs = tuple(data.draw(points(s, nb), label=f"x{k}") for k, s in enumerate(prog.shapes))
    sizes = [1 if s == () else s[0] for s in prog.shapes]
    offs = np.concatenate([[0], np.cumsum(sizes)])
    if batched:
        z = np.concatenate([x.reshape(BATCH, -1) for x in xs], axis=1)
        ref = np.stack([fd_checked(prog, z[b])[0] for b in range(BATCH)])
    else:
        ref = fd_checked(prog, flat_point(xs, prog.shapes))[0]
    atol = fd_tol(ref)
    lead = (BATCH,) if batched else ()

    def block(a, b):
        r = ref[..., offs[a]:offs[a + 1], offs[b]:offs[b + 1]]
        return r.reshape(lead + prog.shapes[a] + prog.shapes[b])

    with engine(kind):
        h = make_hessian(form, prog, xs, 0 if batched else None,
                         budget_for(int(sum(x.size for x in xs)), per_pass))
        assert isinstance(h, tuple) and len(h) == 2 and all(len(row) == 2 for row in h)
        a, b = data.draw(st.integers(0, 1), label="a"), data.draw(st.integers(0, 1), label="b")
        check_index(h[a][b], block(a, b), data.draw(index_for(block(a, b).shape), label="index"), atol)
        for a in range(2):
            for b in range(2):
                want = block(a, b)
                assert h[a][b].shape == want.shape
                got = h[a][b][...]
                assert isinstance(got, np.ndarray) and got.shape == want.shape
                np.testing.assert_allclose(got, want, rtol=0, atol=atol)


def _closed_form(c, a):
    """``f(x) = sum(c x**3) + (a . x)**2`` and its Hessian ``diag(6 c x) + 2 a aᵀ`` (per sample)."""
    def f(x):
        return np.sum(c * x ** 3, axis=-1) + np.sum(a * x, axis=-1) ** 2

    def hess(x):
        return 6 * c * x[..., :, None] * np.eye(c.size) + 2 * np.outer(a, a)
    return f, hess


@SETTINGS
@given(data=st.data(), n=st.integers(1, 8), batched=st.booleans(), form=FORMS,
       per_pass=PAIRS_PER_PASS, seed=st.integers(0, 2 ** 32 - 1), kind=ENGINES)
def test_random_indexing_sequences_match_numpy(data, n, batched, form, per_pass, seed, kind):
    """Several random indices in a row on one lazy Hessian (each answered partly from the cache)
    give exactly what the same indices give on the closed-form ndarray, or NumPy's error."""
    rng = np.random.default_rng(seed)
    c, a = rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)
    f, hess = _closed_form(c, a)
    x0 = data.draw(points((n,), BATCH if batched else None), label="x0")
    ref = hess(x0)
    atol = 1e-12 * (1 + np.max(np.abs(ref)))
    with engine(kind):
        h = make_hessian(form, f, x0, 0 if batched else None, budget_for(x0.size, per_pass))
        for _ in range(4):
            check_index(h, ref, data.draw(index_for(ref.shape), label="index"), atol)
        np.testing.assert_allclose(h[...], ref, rtol=0, atol=atol)


# ---- the generator and the references themselves ---------------------------------------------------
def test_fd_reference_on_a_closed_form():
    """The FD reference reproduces a known Hessian to well inside the tolerance it is used with."""
    f = lambda z: np.sin(z[..., 0] * z[..., 1]) + np.exp(z[..., 1]) * z[..., 2] ** 2  # noqa: E731
    z = np.array([0.3, -0.7, 1.1])
    x, y, w = z
    want = np.array([[-y * y * np.sin(x * y), np.cos(x * y) - x * y * np.sin(x * y), 0.0],
                     [np.cos(x * y) - x * y * np.sin(x * y), -x * x * np.sin(x * y) + np.exp(y) * w * w,
                      2 * w * np.exp(y)],
                     [0.0, 2 * w * np.exp(y), 2 * np.exp(y)]])
    got, grad, err = fd_reference(f, z)
    assert np.max(np.abs(got - want)) < 1e-7 and err < 1e-7
    np.testing.assert_allclose(grad, [y * np.cos(x * y), x * np.cos(x * y) + np.exp(y) * w * w,
                                      2 * w * np.exp(y)], atol=1e-7)


def test_sympy_backend_runs_the_same_tree_as_numpy():
    """One tree, three backends: the sympy expression evaluates to the float value."""
    tree = Reduce("sum", Binary("pow_dual", Unary("log", Take(Input(3), np.array([2, -3]))),
                                Reduce("prod", Linear("roll", Take(Input(3), slice(None, None, -1)), 1))))
    prog = Program(tree, [(3,)])
    x0 = np.array([0.4, -1.2, 0.9])
    syms = sympy.symbols("x0:3", real=True)
    expr = prog(np.array(syms, dtype=object), backend=SympyBackend())[()]
    val = float(expr.subs(dict(zip(syms, x0))))
    np.testing.assert_allclose(val, prog(x0, backend=NumpyBackend()), rtol=1e-13)
    ref, _ = sympy_reference(prog, x0)
    np.testing.assert_allclose(hyperdual.hessian(prog, x0)[:], ref, rtol=1e-12, atol=1e-12)


# ---- regressions: mismatches found by the randomized tests above, reduced by hand -------------------
def _fancy_assign(x):
    """``sum(x**2 + x**4)`` over the last axis, written with an integer-array item assignment.

    ``t`` gathers ``x`` twice through ``[..., [0, 0]]``: its lanes come out of NumPy's
    advanced indexing in a layout whose value axes cannot be merged by ``reshape``.  Found by
    ``test_batched_programs_match_per_sample_references``: the assignment into such lanes was
    lost whenever a pass had a single seed direction (``setitem`` copied the lane keeping its
    layout, so ``base.reshape(rows, n)[:, pos] = src`` wrote into a temporary), giving
    H[1, 1] = 8 instead of 14 below while H[:] was right.  Fixed upstream in ef97aff.
    """
    t = x[..., None][..., [0, 0]]        # [..., n, 2], both columns equal x
    t[..., [1]] = x[..., None] ** 2      # column 1 := x**2
    return np.sum(t ** 2, axis=(-2, -1))


X_FANCY = np.array([0.5, -1.0, 0.25])
H_FANCY = np.diag(2.0 + 12.0 * X_FANCY ** 2)   # [5, 14, 2.75] on the diagonal


def test_regression_fancy_assignment_full_hessian():
    np.testing.assert_allclose(hyperdual.hessian(_fancy_assign, X_FANCY)[:], H_FANCY, rtol=1e-13)


@pytest.mark.parametrize("form", ["callable", "ys"])
def test_regression_fancy_assignment_single_entry(form):
    """One diagonal entry: one seed direction in its pass (was 8)."""
    h = make_hessian(form, _fancy_assign, X_FANCY, None, None)
    assert h[1, 1] == pytest.approx(14.0, rel=1e-12)


def test_regression_fancy_assignment_batched():
    """batch_axis=0 with per-sample inputs of size 1 (was [5, 8, 4.25])."""
    got = hyperdual.hessian(_fancy_assign, X_FANCY[:, None], 0)[:]
    np.testing.assert_allclose(got.reshape(-1), np.diag(H_FANCY), rtol=1e-12)


def test_regression_fancy_assignment_gradient_one_seed_per_pass():
    """The gradient with a budget of one pair per pass (was [1.5, 0, 0.625])."""
    h = hyperdual.hessian(_fancy_assign, X_FANCY, memory_budget=budget_for(X_FANCY.size, 1))
    np.testing.assert_allclose(h.gradient, 2 * X_FANCY + 4 * X_FANCY ** 3, rtol=1e-12)


def _scalar_times_vector(x):
    """``exp(x0) * sin(x[1:])``: a HyperDual of one element times a vector, both curved."""
    return np.sum(np.exp(x[0]) * np.sin(x[1:]))


X_PROD = np.array([0.3, -0.7, 1.1, 0.4])


def _scalar_times_vector_hessian(x):
    e, s, c = np.exp(x[0]), np.sin(x[1:]), np.cos(x[1:])
    h = np.diag(np.r_[e * s.sum(), -e * s])
    h[0, 1:] = h[1:, 0] = e * c
    return h


@pytest.mark.parametrize("kind", ["numpy", "numba"])
@pytest.mark.parametrize("form", ["callable", "ys"])
def test_regression_product_of_one_element_and_vector(form, kind):
    """Found by the randomized tests on the Numba engine: the branch-free path of the product
    kernel (every lane present) read ``xv[t]`` past a length-1 factor (an operand of one
    element broadcast against a vector), giving H[2, 2] = H[3, 3] = 0 here instead of
    -1.2030 and -0.5257 once the kernels were loaded.  Fixed upstream in 587908c."""
    with engine(kind):
        got = make_hessian(form, _scalar_times_vector, X_PROD, None, None)[...]
    np.testing.assert_allclose(got, _scalar_times_vector_hessian(X_PROD), rtol=1e-13, atol=1e-15)
