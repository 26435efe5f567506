"""The derivative table: one line per elementwise function.

Unary entries give ``(g', g'')`` from the input ``a`` and the value
``y = g(a)`` (NumPy computes ``y`` itself).  ``None`` means identically zero,
which lets the chain rule skip work.  Binary entries give the partials of
``y = g(a, b)`` in three pieces, so that an operation with one constant
operand computes only what it needs:

* ``dx(a, b, y) -> (g_a, g_aa)``
* ``dy(a, b, y) -> (g_b, g_bb)``
* ``dxy(a, b, y) -> g_ab``

A reviewer checks a rule by reading its line.  The one chain rule that lifts
every entry onto hyper-dual lanes lives in :mod:`hyperdual.execute.chain`.

Conventions at kinks (documented in the README): ``absolute`` has derivative
``sign(a)`` (so 0 at 0) and second derivative 0; ``maximum``/``minimum``
select by value and take the *first* operand's derivatives at ties;
``sign``, ``floor``, ``ceil``, ``rint`` and ``trunc`` have zero derivatives.
Where the value is NaN (outside a domain: ``log(-1)``, ``arcsin(2)``), the
chain rule makes every derivative NaN too.

Register rules for functions we do not ship with :func:`register_ufunc`.
"""
from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["UNARY", "BINARY", "ZERO_DERIVATIVE", "VALUE_ONLY", "SELECT",
           "BinaryRule", "register_ufunc", "PROVIDERS", "provide", "ufunc_name", "constant_power"]

LN2 = np.log(2.0)
LN10 = np.log(10.0)


def _pow(coef, a, e):
    """``coef * a**e``, exactly 0 where ``coef == 0`` (so 0 * inf never leaks)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(coef == 0, 0.0, coef * np.power(a, e))


def _log_factor(a, y):
    """``log(a)`` where ``y != 0``, else 0: ``d/db a**b`` is 0 where ``a**b == 0``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(y == 0, 0.0, np.log(a))


def constant_power(a, c):
    """``(g', g'')`` of ``a ** c`` for a real scalar ``c`` other than 0 and 1: the entry
    ``BINARY[np.power].dx`` for a constant exponent, without its zero-coefficient guard
    (``c (c-1) != 0``), which the fast paths of ``x ** c`` call (tested bit for bit
    against the entry in ``tests/test_rules.py``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return c * np.power(a, c - 1.0), (c * (c - 1.0)) * np.power(a, c - 2.0)


# ---- unary: g -> (a, y) -> (g', g'') ---------------------------------------
UNARY: dict[np.ufunc, Callable] = {
    np.positive:    lambda a, y: (1.0, None),
    np.negative:    lambda a, y: (-1.0, None),
    np.square:      lambda a, y: (2.0 * a, 2.0),
    np.sqrt:        lambda a, y: (0.5 / y, -0.25 / (y * a)),
    np.cbrt:        lambda a, y: (1.0 / (3.0 * y * y), -2.0 / (9.0 * y ** 5)),
    np.reciprocal:  lambda a, y: (-y * y, 2.0 * y ** 3),
    np.exp:         lambda a, y: (y, y),
    np.exp2:        lambda a, y: (LN2 * y, LN2 * LN2 * y),
    np.expm1:       lambda a, y: (y + 1.0, y + 1.0),
    np.log:         lambda a, y: (1.0 / a, -1.0 / (a * a)),
    np.log2:        lambda a, y: (1.0 / (LN2 * a), -1.0 / (LN2 * a * a)),
    np.log10:       lambda a, y: (1.0 / (LN10 * a), -1.0 / (LN10 * a * a)),
    np.log1p:       lambda a, y: (1.0 / (1.0 + a), -1.0 / ((1.0 + a) * (1.0 + a))),
    np.sin:         lambda a, y: (np.cos(a), -y),
    np.cos:         lambda a, y: (-np.sin(a), -y),
    np.tan:         lambda a, y: ((d := 1.0 + y * y), 2.0 * y * d),
    np.arcsin:      lambda a, y: ((d := 1.0 / np.sqrt(1.0 - a * a)), a * d ** 3),
    np.arccos:      lambda a, y: ((d := -1.0 / np.sqrt(1.0 - a * a)), a * d ** 3),
    np.arctan:      lambda a, y: ((d := 1.0 / (1.0 + a * a)), -2.0 * a * d * d),
    np.sinh:        lambda a, y: (np.cosh(a), y),
    np.cosh:        lambda a, y: (np.sinh(a), y),
    np.tanh:        lambda a, y: ((d := 1.0 - y * y), -2.0 * y * d),
    np.arcsinh:     lambda a, y: ((d := 1.0 / np.sqrt(a * a + 1.0)), -a * d ** 3),
    np.arccosh:     lambda a, y: ((d := 1.0 / np.sqrt(a * a - 1.0)), -a * d ** 3),
    np.arctanh:     lambda a, y: ((d := 1.0 / (1.0 - a * a)), 2.0 * a * d * d),
    np.deg2rad:     lambda a, y: (np.pi / 180.0, None),
    np.rad2deg:     lambda a, y: (180.0 / np.pi, None),
    np.absolute:    lambda a, y: (np.sign(a), None),
    np.fabs:        lambda a, y: (np.sign(a), None),
    np.conjugate:   lambda a, y: (1.0, None),
}
UNARY[np.radians] = UNARY[np.deg2rad]
UNARY[np.degrees] = UNARY[np.rad2deg]


@dataclass(frozen=True)
class BinaryRule:
    """Partials of ``y = g(a, b)``; see the module docstring."""

    dx: Callable
    dy: Callable
    dxy: Callable


# ---- binary: g -> partials in a, b, y ---------------------------------------
BINARY: dict[np.ufunc, BinaryRule] = {
    np.add:         BinaryRule(dx=lambda a, b, y: (1.0, None),
                               dy=lambda a, b, y: (1.0, None),
                               dxy=lambda a, b, y: None),
    np.subtract:    BinaryRule(dx=lambda a, b, y: (1.0, None),
                               dy=lambda a, b, y: (-1.0, None),
                               dxy=lambda a, b, y: None),
    np.multiply:    BinaryRule(dx=lambda a, b, y: (b, None),
                               dy=lambda a, b, y: (a, None),
                               dxy=lambda a, b, y: 1.0),
    np.true_divide: BinaryRule(dx=lambda a, b, y: (1.0 / b, None),
                               dy=lambda a, b, y: (-y / b, 2.0 * y / (b * b)),
                               dxy=lambda a, b, y: -1.0 / (b * b)),
    np.power:       BinaryRule(dx=lambda a, b, y: (_pow(b, a, b - 1.0), _pow(b * (b - 1.0), a, b - 2.0)),
                               dy=lambda a, b, y: ((L := _log_factor(a, y)) * y, y * L * L),
                               dxy=lambda a, b, y: _pow(1.0, a, b - 1.0) * (1.0 + b * _log_factor(a, y))),
    np.arctan2:     BinaryRule(dx=lambda a, b, y: (b / (r := a * a + b * b), -2.0 * a * b / (r * r)),
                               dy=lambda a, b, y: (-a / (r := a * a + b * b), 2.0 * a * b / (r * r)),
                               dxy=lambda a, b, y: (a * a - b * b) / (a * a + b * b) ** 2),
    np.hypot:       BinaryRule(dx=lambda a, b, y: (a / y, b * b / y ** 3),
                               dy=lambda a, b, y: (b / y, a * a / y ** 3),
                               dxy=lambda a, b, y: -a * b / y ** 3),
    np.logaddexp:   BinaryRule(dx=lambda a, b, y: ((s := np.exp(a - y)), s * np.exp(b - y)),
                               dy=lambda a, b, y: ((s := np.exp(b - y)), s * np.exp(a - y)),
                               dxy=lambda a, b, y: -np.exp(a - y) * np.exp(b - y)),
    np.logaddexp2:  BinaryRule(dx=lambda a, b, y: ((s := np.exp2(a - y)), LN2 * s * np.exp2(b - y)),
                               dy=lambda a, b, y: ((s := np.exp2(b - y)), LN2 * s * np.exp2(a - y)),
                               dxy=lambda a, b, y: -LN2 * np.exp2(a - y) * np.exp2(b - y)),
}
BINARY[np.float_power] = BINARY[np.power]

#: Piecewise-constant functions: the value is computed, every derivative is 0.
ZERO_DERIVATIVE = {np.sign, np.floor, np.ceil, np.rint, np.trunc}

#: Functions of the value alone; they return plain NumPy arrays.
VALUE_ONLY = {np.greater, np.greater_equal, np.less, np.less_equal, np.equal,
              np.not_equal, np.isfinite, np.isnan, np.isinf, np.signbit,
              np.logical_and, np.logical_or, np.logical_xor, np.logical_not}

#: Selections by value: (ufunc) -> (take-first-operand mask from values a, b).
#: Ties take the first operand; NaN propagates for maximum/minimum and is
#: skipped by fmax/fmin, as NumPy does with the values.
SELECT = {
    np.maximum: lambda a, b: (a >= b) | np.isnan(a),
    np.minimum: lambda a, b: (a <= b) | np.isnan(a),
    np.fmax:    lambda a, b: (a >= b) | np.isnan(b),
    np.fmin:    lambda a, b: (a <= b) | np.isnan(b),
}


def register_ufunc(ufunc: np.ufunc, derivatives: Callable | BinaryRule) -> None:
    """Teach hyperdual the derivatives of a ufunc it does not ship.

    Parameters
    ----------
    ufunc : numpy.ufunc
        A real, elementwise ufunc with one or two inputs and one output
        (e.g. ``scipy.special.erf``).
    derivatives : callable or BinaryRule
        For a unary ufunc, ``derivatives(a, y) -> (g', g'')`` where ``a`` is
        the input, ``y = ufunc(a)``; either item may be ``None`` for an
        identically zero derivative.  For a binary ufunc, a
        :class:`BinaryRule` of partials.

    Examples
    --------
    A ufunc made with Numba (``scipy.special.erf`` registers the same way):

    >>> import math, numba, numpy as np, hyperdual
    >>> @numba.vectorize(["float64(float64)"])
    ... def erf(a):
    ...     return math.erf(a)
    >>> c = 2.0 / np.sqrt(np.pi)
    >>> hyperdual.register_ufunc(erf, lambda a, y: (c * np.exp(-a * a), -2.0 * a * c * np.exp(-a * a)))
    >>> H = hyperdual.hessian(lambda x: erf(x).sum(), np.array([0.5]))
    >>> bool(np.isclose(H[0, 0], -2 * 0.5 * c * np.exp(-0.25)))
    True
    """
    # Numba's @vectorize makes a DUFunc, which wraps a ufunc and dispatches as itself.
    keys = [ufunc] + ([ufunc.ufunc] if isinstance(getattr(ufunc, "ufunc", None), np.ufunc) else [])
    if not isinstance(keys[-1], np.ufunc):
        raise TypeError(f"register_ufunc needs a numpy.ufunc, got {type(ufunc).__name__}; "
                        "for other NumPy functions use hyperdual.register_function")
    if ufunc.nout != 1 or ufunc.nin not in (1, 2):
        raise ValueError(f"{ufunc.__name__}: only ufuncs with 1 or 2 inputs and 1 output can be registered")
    if ufunc.nin == 1 and not callable(derivatives):
        raise TypeError("a unary rule is a callable (a, y) -> (g', g'')")
    if ufunc.nin == 2 and not isinstance(derivatives, BinaryRule):
        raise TypeError("a binary rule is a hyperdual.BinaryRule(dx=..., dy=..., dxy=...)")
    for key in keys:
        (UNARY if ufunc.nin == 1 else BINARY)[key] = derivatives


#: Modules whose ufuncs have rules in a module of ours, imported (and so registered) on
#: first use: ``{their module: our module}``.  Neither is imported before that.
PROVIDERS = {"scipy.special": "hyperdual.special"}


def _home(ufunc) -> str | None:
    """The module of :data:`PROVIDERS` (already imported) that exports ``ufunc``, if any."""
    name = getattr(ufunc, "__name__", None)
    for module in PROVIDERS:
        found = sys.modules.get(module)
        if found is not None and name is not None and getattr(found, name, None) is ufunc:
            return module
    return None


def provide(ufunc) -> bool:
    """Register the rules of ``ufunc``'s module on its first use; True if ``ufunc`` has
    a rule now (so the caller tries again), False if it has none."""
    module = _home(ufunc)
    if module is None or ufunc in UNARY or ufunc in BINARY:
        return False
    importlib.import_module(PROVIDERS[module])
    return ufunc in UNARY or ufunc in BINARY


def ufunc_name(ufunc) -> str:
    """``scipy.special.erf``, ``numpy.sin``: the name a user wrote."""
    return f"{_home(ufunc) or 'numpy'}.{getattr(ufunc, '__name__', repr(ufunc))}"
