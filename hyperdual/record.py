"""Recording and replay: the ``hessian(ys, xs)`` call form.

``variable(array)`` makes a *recorded* input: a HyperDual that carries no
lanes but a node of a record.  Every operation on it (ufuncs, array
functions, indexing, item assignment) goes through
:func:`hyperdual.array.dispatch`, which computes the value and appends a node
``(operation, inputs, constant operands)``.  The record is a DAG reachable
from the output, so no global tape is needed.  When a Hessian is indexed,
:func:`replay` re-runs the nodes in order with seeded inputs.

Constant operands (ndarrays) are copied when recorded, so later changes to
the caller's arrays do not change the replay.  Recorded arrays refuse to
become plain arrays (``np.asarray``, ``float``), like seeded ones: the replay
would silently lose the terms that flowed through them.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .array import HyperDual, as_float_array, dispatch, link_view, nested

__all__ = ["variable", "record_call", "replay", "Node", "trace_of", "RecordedNode"]

_new = HyperDual._new


class Call:
    """One recorded operation: ``impl(*args, **kwargs)`` with templated operands."""

    __slots__ = ("impl", "args", "kwargs")

    def __init__(self, impl, args, kwargs):
        self.impl, self.args, self.kwargs = impl, args, kwargs


class Node:
    """One recorded value: output ``index`` of ``call`` (a leaf when ``call`` is None)."""

    __slots__ = ("call", "index", "value", "__weakref__")

    def __init__(self, call, index, value):
        self.call, self.index, self.value = call, index, value


class _Ref:
    __slots__ = ("node",)

    def __init__(self, node):
        self.node = node


def variable(x: Any) -> HyperDual:
    """A recorded input for the ``hessian(ys, xs)`` call form.

    Parameters
    ----------
    x : array_like
        The point (copied, converted to float64).

    Returns
    -------
    HyperDual
        An array without derivative lanes whose operations are recorded.
        Compute ``ys`` from it with ordinary NumPy code, then call
        ``hyperdual.hessian(ys, x)``.

    Examples
    --------
    >>> import numpy as np, hyperdual
    >>> x = hyperdual.variable(np.array([1.0, 2.0]))
    >>> y = (x ** 3).sum() + x[0] * x[1]
    >>> hyperdual.hessian(y, x)[:]
    array([[ 6.,  1.],
           [ 1., 12.]])
    """
    if isinstance(x, HyperDual):
        raise TypeError("variable() takes a plain array; it was given a HyperDual")
    value = np.array(as_float_array(x, "variable"), dtype=np.float64, copy=True)
    value.flags.writeable = False  # the record's input: nothing may move it
    return _new(value, None, None, None, None, Node(None, None, value))


def _template(obj):
    t = type(obj)
    if t is HyperDual:
        if obj._node is not None:
            return _Ref(obj._node)
        if obj._e1 is not None or obj._e2 is not None or obj._e12 is not None:
            raise ValueError("a recorded array (from hyperdual.variable) met a HyperDual with derivative "
                             "lanes; recording and seeded evaluation cannot be mixed")
        return _new(obj._value.copy(), None, None, None, None)
    if t is list or t is tuple:
        return t(_template(o) for o in obj)
    if t is dict:
        return {k: _template(v) for k, v in obj.items()}
    if t is np.ndarray:
        return obj.copy()
    return obj


def _fill(tmpl, env):
    t = type(tmpl)
    if t is _Ref:
        return env(tmpl.node)
    if t is list or t is tuple:
        return t(_fill(o, env) for o in tmpl)
    if t is dict:
        return {k: _fill(v, env) for k, v in tmpl.items()}
    return tmpl


def _value_view(node):
    return _new(node.value, None, None, None, None)


def record_call(impl, args, kwargs):
    """Run ``impl`` on the values and record it (called by ``dispatch``).

    An ``out=`` array is not an operand: the call is recorded without it, and the
    result is then assigned into the real target (recorded as an item assignment),
    not into the stand-in the implementation would see.
    """
    out = kwargs.get("out") if kwargs else None
    if out is not None:
        target = out[0] if type(out) is tuple and len(out) == 1 else out
        if type(target) is not HyperDual:
            raise TypeError("an out= argument must be a HyperDual: a plain ndarray cannot hold "
                            "derivatives (or, while recording, the dependence on the inputs)")
        result = record_call(impl, args, {k: v for k, v in kwargs.items() if k != "out"})
        target[...] = result
        return target
    targs, tkwargs = _template(args), _template(kwargs)
    result = impl(*_fill(targs, _value_view), **_fill(tkwargs, _value_view))
    call = Call(impl, targs, tkwargs)
    if type(result) is HyperDual:
        result._node = Node(call, None, result._value)
        if result._base is not None and args and type(args[0]) is HyperDual:
            link_view(args[0], result)  # a view of the recorded array itself, not of its stand-in
        return result
    if isinstance(result, tuple):
        items = list(result)
        for k, item in enumerate(items):
            if type(item) is HyperDual:
                item._node = Node(call, k, item._value)
        return result
    return result


def _parents(node):
    if node.call is None:
        return []
    return [r.node for r in nested((node.call.args, node.call.kwargs), _Ref)]


def topological(node: Node) -> list[Node]:
    """Nodes that ``node`` depends on, each after its inputs (iterative DFS)."""
    order, seen = [], set()
    stack = [(node, False)]
    while stack:
        n, done = stack.pop()
        if done:
            order.append(n)
            continue
        if id(n) in seen:
            continue
        seen.add(id(n))
        stack.append((n, True))
        for p in _parents(n):
            if id(p) not in seen:
                stack.append((p, False))
    return order


def replay(order: list[Node], inputs: dict[int, HyperDual]) -> HyperDual:
    """Re-run a record with ``inputs`` (``id(leaf) -> HyperDual``) and return the last node."""
    env: dict[int, Any] = {}
    calls: dict[int, Any] = {}
    lookup = lambda n: env[id(n)]  # noqa: E731
    for n in order:
        if n.call is None:
            seeded = inputs.get(id(n))
            env[id(n)] = _value_view(n) if seeded is None else seeded
            continue
        key = id(n.call)
        if key not in calls:
            c = n.call
            calls[key] = dispatch(c.impl, _fill(c.args, lookup), _fill(c.kwargs, lookup))
        r = calls[key]
        env[id(n)] = r if n.index is None else r[n.index]
    return env[id(order[-1])]


class RecordedNode(tuple):
    """``(operation, inputs, output_shape)``: one readable line of a record."""

    __slots__ = ()

    def __repr__(self):
        return f"{self[0]}({', '.join(self[1])}) -> {self[2]}"


def trace_of(ys: HyperDual) -> list[RecordedNode]:
    """The record behind ``ys`` as a list of ``(operation, inputs, output_shape)``.

    Examples
    --------
    >>> import numpy as np, hyperdual
    >>> x = hyperdual.variable(np.ones(3))
    >>> [r[0] for r in hyperdual.trace_of(np.sin(x).sum())]
    ['variable', 'sin', 'sum']
    """
    if not isinstance(ys, HyperDual) or ys._node is None:
        raise TypeError("trace_of() needs an array computed from hyperdual.variable inputs")
    order = topological(ys._node)
    names = {id(n): f"v{k}" for k, n in enumerate(order)}
    lines = []
    for n in order:
        if n.call is None:
            lines.append(RecordedNode(("variable", (), n.value.shape)))
            continue
        name = n.call.impl.__name__.strip("_")
        if name == "apply_ufunc":
            name = n.call.args[0].__name__
        ins = tuple(names[id(p)] for p in _parents(n))
        lines.append(RecordedNode((name, ins, n.value.shape)))
    return lines
