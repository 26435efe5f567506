"""Exact derivatives for ``scipy.optimize``: one lazy Hessian per point.

:func:`derivatives` turns a scalar function ``f(x, *args)`` written with
NumPy into the callables ``fun``, ``jac``, ``hess`` and ``hessp`` that
``scipy.optimize.minimize`` (and cyipopt) take.  They share one lazy
:class:`~hyperdual.Hessian` per point: the value, the gradient and the
Hessian at a point come from one record of ``f`` (``record=True``), so ``f``
itself runs once per point however many of the four an optimiser asks for:

* ``fun(x)`` is the value call (``f`` recorded on plain inputs);
* ``jac(x)`` one pass of first-order lanes, ``hess(x)`` the passes of the
  Hessian (few for a sparse one: the sparsity pattern is found first);
* ``hessp(x, p)`` one pass with ``e1`` the unit vectors and ``e2 = p``
  (``H @ p`` from the cached Hessian once ``hess`` ran at that point).

:func:`minimize` wraps ``scipy.optimize.minimize`` for the methods that use
second derivatives.  scipy is an optional dependency (the ``scipy`` extra);
this module imports it only inside :func:`minimize`.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .lazy.hessian import Hessian, hessian

__all__ = ["Derivatives", "derivatives", "minimize", "SECOND_ORDER_METHODS"]

#: The ``scipy.optimize.minimize`` methods :func:`minimize` serves (lower case), and
#: those of them that also take a Hessian-vector product.
SECOND_ORDER_METHODS = ("trust-exact", "trust-ncg", "trust-krylov", "newton-cg", "dogleg", "trust-constr")
_HESSP_METHODS = ("trust-ncg", "trust-krylov", "newton-cg", "trust-constr")
_RECENT = 4  # points whose lazy Hessians a Derivatives keeps


class Derivatives:
    """``fun``, ``jac``, ``hess`` and ``hessp`` of ``f`` sharing one lazy Hessian per point.

    Made by :func:`derivatives`; see there.  Each callable takes ``(x, *args)``
    (``hessp``: ``(x, p, *args)``) as ``scipy.optimize`` calls it; ``args`` given
    here come first, before those of the call.

    Attributes
    ----------
    function_calls : int
        Calls of ``f`` so far (one per point when ``f`` can be recorded).
    points : int
        Distinct points (with their arguments) seen so far.
    """

    def __init__(self, func: Callable, args: tuple = (), *, record: bool = True,
                 memory_budget: int | None = None):
        if not callable(func):
            raise TypeError(f"func must be callable, got {type(func).__name__}")
        if not isinstance(args, tuple):
            args = (args,)
        self.func, self.args = func, args
        self.record, self.memory_budget = record, memory_budget
        self.function_calls = 0
        self.points = 0
        #: The lazy Hessians of the last few points, newest last: [key, args, Hessian,
        #: full Hessian or None].  An optimiser that tries a step and returns to its
        #: iterate finds the iterate here.
        self._recent: list[list] = []

    def _call(self, x, *args):
        self.function_calls += 1
        return self.func(x, *args)

    def _entry(self, x, args) -> list:
        point = np.asarray(x, dtype=np.float64)
        if point.ndim > 1:
            raise ValueError(f"x must be 0-d or 1-d (scipy.optimize passes a 1-d array), got shape "
                             f"{point.shape}; reshape it inside the function")
        args = self.args + args
        key = (point.shape, point.tobytes())
        for k, entry in enumerate(self._recent):
            if entry[0] == key and len(args) == len(entry[1]) and all(a is b for a, b in zip(args, entry[1])):
                if k != len(self._recent) - 1:
                    self._recent.append(self._recent.pop(k))
                return entry
        func = self._call if not args else (lambda z: self._call(z, *args))
        H = hessian(func, point, memory_budget=self.memory_budget, record=self.record)
        self.points += 1
        self._recent.append([key, args, H, None])
        del self._recent[:-_RECENT]
        return self._recent[-1]

    def at(self, x, *args) -> Hessian:
        """The lazy Hessian at ``x`` (the same object while ``x`` and ``args`` are among the
        last few asked; arguments are compared by identity)."""
        return self._entry(x, args)[2]

    def fun(self, x, *args) -> float:
        """The value ``f(x, *args)``."""
        return float(self.at(x, *args).value)

    def jac(self, x, *args) -> np.ndarray:
        """The exact gradient at ``x``."""
        return self.at(x, *args).gradient

    def hess(self, x, *args) -> np.ndarray:
        """The exact Hessian at ``x`` (a new dense array)."""
        entry = self._entry(x, args)
        if entry[3] is None:
            entry[3] = np.asarray(entry[2][...])
        return entry[3].copy()

    def hessp(self, x, p, *args) -> np.ndarray:
        """The exact product ``H(x) @ p``: one pass, or the cached Hessian's product."""
        entry = self._entry(x, args)
        full = entry[3]
        if full is None:
            return entry[2].hvp(p)
        vec = np.asarray(p, dtype=np.float64)
        shape = full.shape[:full.ndim // 2]
        if vec.shape != shape:
            raise ValueError(f"p has shape {vec.shape}; expected the shape of x, {shape}")
        return (full.reshape(vec.size, vec.size) @ vec.reshape(-1)).reshape(shape)

    def __repr__(self) -> str:
        name = getattr(self.func, "__name__", type(self.func).__name__)
        return f"Derivatives({name}, points={self.points}, function_calls={self.function_calls})"


def derivatives(func: Callable, args: tuple = (), *, record: bool = True,
                memory_budget: int | None = None) -> Derivatives:
    """Exact ``fun``, ``jac``, ``hess`` and ``hessp`` of a scalar function, for scipy.

    Parameters
    ----------
    func : callable
        ``func(x, *args)`` written with NumPy, returning a scalar; ``x`` is a
        1-d array (0-d works too).
    args : tuple, optional
        Extra arguments of ``func``, before those each call passes.
    record : bool, optional
        ``True`` (default): ``func`` is recorded once per point and every pass
        replays the record, so ``func`` runs once per point.  A function that
        cannot be recorded is called per pass (see :attr:`Hessian.stats`).
    memory_budget : int, optional
        Bytes of lanes per pass, as for :func:`hyperdual.hessian`.

    Returns
    -------
    Derivatives
        With methods ``fun(x, *args)``, ``jac(x, *args)``, ``hess(x, *args)``,
        ``hessp(x, p, *args)`` and ``at(x, *args)`` (the lazy Hessian).  They
        share the lazy Hessian of the last point asked.

    Examples
    --------
    >>> import numpy as np, hyperdual
    >>> def rosen(x):
    ...     return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
    >>> d = hyperdual.derivatives(rosen)
    >>> x = np.array([1.0, 1.0, 1.0])
    >>> d.fun(x), d.jac(x)
    (0.0, array([0., 0., 0.]))
    >>> d.hess(x)
    array([[ 802., -400.,    0.],
           [-400., 1002., -400.],
           [   0., -400.,  200.]])
    >>> d.function_calls
    1

    With scipy: ``scipy.optimize.minimize(d.fun, x0, jac=d.jac, hess=d.hess,
    method="trust-exact")``, or :func:`hyperdual.minimize`.
    """
    return Derivatives(func, args, record=record, memory_budget=memory_budget)


def minimize(fun: Callable, x0, args: tuple = (), method: str = "trust-exact", *,
             hessp: bool = False, record: bool = True, memory_budget: int | None = None,
             **kwargs):
    """``scipy.optimize.minimize`` with exact gradients and Hessians from hyperdual.

    Parameters
    ----------
    fun : callable
        The objective ``fun(x, *args)``, written with NumPy, returning a scalar.
    x0 : array_like
        The starting point (1-d).
    args : tuple, optional
        Extra arguments of ``fun``.
    method : str, optional
        One of the methods that use second derivatives: ``"trust-exact"``
        (default), ``"trust-ncg"``, ``"trust-krylov"``, ``"Newton-CG"``,
        ``"dogleg"``, ``"trust-constr"``.
    hessp : bool, optional
        ``True``: give the method Hessian-vector products (one pass each) in
        place of the Hessian; for ``trust-ncg``, ``trust-krylov``,
        ``Newton-CG`` and ``trust-constr``.  Worth it for a large dense Hessian
        and few products per iterate.
    record, memory_budget
        As for :func:`derivatives`.
    **kwargs
        Passed to ``scipy.optimize.minimize`` unchanged (``tol``, ``options``,
        ``callback``, ``constraints``, ``bounds`` ...), except ``jac``, ``hess``
        and ``hessp``, which this function supplies.

    Returns
    -------
    scipy.optimize.OptimizeResult
        scipy's result, with one more field: ``function_calls``, the calls of
        ``fun`` made (one per distinct point when ``fun`` can be recorded).

    Raises
    ------
    ImportError
        Without scipy (install the ``scipy`` extra).

    Examples
    --------
    >>> import numpy as np, hyperdual
    >>> def rosen(x):
    ...     return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
    >>> res = hyperdual.minimize(rosen, np.full(10, -1.0), method="trust-exact")
    >>> bool(res.success), np.allclose(res.x, 1.0)
    (True, True)
    >>> res.function_calls == res.nfev
    True
    """
    try:
        from scipy import optimize
    except ImportError as exc:
        raise ImportError("hyperdual.minimize needs scipy, an optional dependency: install it, or "
                          "hyperdual with its scipy extra (pip install 'hyperdual-hessian[scipy]')") from exc
    if not isinstance(method, str) or method.lower() not in SECOND_ORDER_METHODS:
        raise ValueError(f"hyperdual.minimize serves the methods that use second derivatives, "
                         f"{', '.join(SECOND_ORDER_METHODS)}; got method={method!r}. For another "
                         f"method, pass the callables of hyperdual.derivatives(fun) to "
                         f"scipy.optimize.minimize")
    given = sorted(k for k in ("jac", "hess", "hessp") if k in kwargs)
    if given:
        raise TypeError(f"hyperdual.minimize computes jac, hess and hessp itself; got {given}. "
                        "To pass your own, call scipy.optimize.minimize directly")
    if hessp and method.lower() not in _HESSP_METHODS:
        raise ValueError(f"method={method!r} takes a Hessian, not Hessian-vector products; "
                         f"hessp=True serves {', '.join(_HESSP_METHODS)}")
    d = Derivatives(fun, args, record=record, memory_budget=memory_budget)
    second = {"hessp": d.hessp} if hessp else {"hess": d.hess}
    res = optimize.minimize(d.fun, x0, method=method, jac=d.jac, **second, **kwargs)
    res.function_calls = d.function_calls
    return res
