"""Recording and replay: both call forms of ``hessian``.

``variable(array)`` makes a *recorded* input: a HyperDual that carries no
lanes but a :class:`Node` of a record.  Every operation on it (ufuncs and
operators, array functions, indexing, item assignment) is recorded instead of
differentiated: it computes the value and makes a node holding a :class:`Call`
``(implementation, templated operands, entry point)``.  The record is a DAG
reachable from the output; :func:`record_session` also lists the nodes in the
order they were made (``hessian(func, xs, record=True)`` records the value
call so).  A :class:`Program` is a record made ready to replay: its steps call
the entry point the user's code called (``a * b``, ``np.sin(x)``,
``np.sum(x, axis=1)``, ``x[1:]``) on the seeded inputs of a pass, so a replay
takes the same paths as a direct call.

Within one Hessian the point is fixed, so one record is exact for every pass,
whatever branches the code took: passes differ only in their seeds, which the
code never sees.  Constant operands (ndarrays) are copied when recorded, so
later changes to the caller's arrays do not change the replay.  Recorded
arrays refuse to become plain arrays (``np.asarray``, ``float``), like seeded
ones: the replay would silently lose the terms that flowed through them.
"""
from __future__ import annotations

import operator
import threading
from typing import Any

import numpy as np

from ..execute.array import _IMPL, HyperDual, as_float_array, dispatch, link_view, nested
from ..execute.context import PassMismatchError
from ..ops.rules import BINARY, UNARY

__all__ = ["variable", "record_call", "record_session", "Program", "Node", "trace_of",
           "RecordedNode"]

_new = HyperDual._new


class Call(tuple):
    """One recorded operation: ``impl(*args, **kwargs)`` with templated operands.

    ``front`` is the entry point the user's code called (``operator.mul``, ``np.sin``,
    ``np.sum``, ``operator.getitem``; it takes the same arguments as ``impl``, without
    the ufunc for ``apply_ufunc``), or None: a replay calls it, so seeded arrays take
    the same fast paths as in a direct call.  ``refs`` lists ``(position, node)`` of the
    recorded operands when they are all top-level positional arguments (None
    otherwise: the replay fills the templates).  (A tuple: cheap to make.)
    """

    __slots__ = ()
    impl = property(operator.itemgetter(0))
    args = property(operator.itemgetter(1))
    kwargs = property(operator.itemgetter(2))
    front = property(operator.itemgetter(3))
    refs = property(operator.itemgetter(4))


_NO_KWARGS: dict = {}  # (never written)


def _call(impl, args, kwargs, front=None, refs=None):
    return tuple.__new__(Call, (impl, args, kwargs, front, refs))


class Node:
    """One recorded value: output ``index`` of ``call`` (a leaf when ``call`` is None)."""

    __slots__ = ("call", "index", "value", "__weakref__")

    def __init__(self, call, index, value):
        self.call, self.index, self.value = call, index, value


class _Tape(threading.local):
    """The nodes made by the recording session running in this thread (None: none)."""

    nodes: list | None = None


_tape = _Tape()


def _made(call, index, value):
    """A new node, appended to the running session's tape."""
    node = Node(call, index, value)
    nodes = _tape.nodes
    if nodes is not None:
        nodes.append(node)
    return node


def record_session(func, leaves):
    """Call ``func()`` with a tape: ``(its output, the nodes recorded, in order)``.

    The nodes come in the order they were made, which is an order of execution, so
    no sort is needed to replay them (:class:`Program`)."""
    saved = _tape.nodes
    _tape.nodes = nodes = list(leaves)
    try:
        return func(), nodes
    finally:
        _tape.nodes = saved


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
            raise PassMismatchError("a recorded array (from hyperdual.variable) met a HyperDual with "
                                    "derivative lanes; recording and seeded evaluation cannot be "
                                    "mixed: " + _MISMATCH)
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


_SCALARS = (int, float, bool, str, type(None))


def _plain(kwargs):
    """Whether keyword arguments are numbers, strings, None or tuples of ints (``axis=``)."""
    for v in kwargs.values():
        t = type(v)
        if t not in _SCALARS and not (t is tuple and all(type(i) is int for i in v)):
            return False
    return True


def _split(args):
    """Templates, stand-ins and ``(position, node)`` refs of flat positional operands
    (None when a list, tuple or dict holds a HyperDual: the general templates then serve)."""
    targs, live, refs = [], [], []
    for k, a in enumerate(args):
        t = type(a)
        if t is HyperDual:
            node = a._node
            if node is not None:
                targs.append(None)
                live.append(_new(node.value, None, None, None, None))
                refs.append((k, node))
                continue
            c = _template(a)
        elif t is np.ndarray:
            c = a.copy()
        elif t is list or t is tuple or t is dict:
            if any(x._node is not None or x._e1 is not None or x._e2 is not None
                   for x in nested(a, HyperDual)):
                return None  # (recorded operands inside: the general templates)
            c = _template(a)  # a shape, axes, an index of constants
        else:
            c = a
        targs.append(c)
        live.append(c)
    return tuple(targs), live, tuple(refs)


_NUMBERS = (float, int, np.float64)


def _recorded(value, impl, targs, front, refs):
    """The recorded HyperDual of ``value``, made by ``impl`` from ``targs``."""
    if type(value) is not np.ndarray:
        value = np.asarray(value, dtype=np.float64)
    node = _made(_call(impl, targs, _NO_KWARGS, front, refs), None, value)
    return _new(value, None, None, None, None, node)


def record_ufunc(ufunc, inputs, front):
    """``ufunc(*inputs)`` with a recorded operand: for a rule of the derivative table
    and operands that are recorded arrays, float64 arrays or numbers, the value is
    NumPy's (what the chain rule computes as the value, without its factors); other
    calls go through :func:`record_call`.  ``front`` as for ``dispatch``."""
    if len(inputs) == 1:
        x = inputs[0]
        if type(x) is HyperDual and ufunc in UNARY:
            return _recorded(ufunc(x._value), _IMPL.apply_ufunc, (ufunc, None), front, ((1, x._node),))
    elif len(inputs) == 2 and ufunc in BINARY:
        a, b = inputs
        ta, tb = type(a), type(b)
        if ta is HyperDual:
            if tb is HyperDual:
                if a._node is not None and b._node is not None:
                    return _recorded(ufunc(a._value, b._value), _IMPL.apply_ufunc, (ufunc, None, None),
                                     front, ((1, a._node), (2, b._node)))
            elif tb in _NUMBERS or (tb is np.ndarray and b.dtype == np.float64):
                if tb is np.ndarray:
                    b = b.copy()
                return _recorded(ufunc(a._value, b), _IMPL.apply_ufunc, (ufunc, None, b), front,
                                 ((1, a._node),))
        elif ta in _NUMBERS or (ta is np.ndarray and a.dtype == np.float64):
            if tb is HyperDual:
                if ta is np.ndarray:
                    a = a.copy()
                return _recorded(ufunc(a, b._value), _IMPL.apply_ufunc, (ufunc, a, None), front,
                                 ((2, b._node),))
    return record_call(_IMPL.apply_ufunc, (ufunc,) + tuple(inputs), {}, front)


def record_getitem(x, index):
    """``x[index]`` of a recorded ``x``."""
    if type(index) is int or type(index) is slice:  # a view of the value, linked like NumPy's
        return link_view(x, _recorded(x._value[index], _IMPL.getitem, (None, index),
                                      operator.getitem, ((0, x._node),)))
    return record_call(_IMPL.getitem, (x, index), {}, operator.getitem)


def record_call(impl, args, kwargs, front=None):
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
        result = record_call(impl, args, {k: v for k, v in kwargs.items() if k != "out"}, front)
        target[...] = result
        return target
    flat = _split(args) if not kwargs or _plain(kwargs) else None
    if flat is not None:
        targs, live, refs = flat
        result = impl(*live, **kwargs)
        call = _call(impl, targs, dict(kwargs) if kwargs else _NO_KWARGS, front, refs)
    else:
        targs, tkwargs = _template(args), _template(kwargs)
        result = impl(*_fill(targs, _value_view), **_fill(tkwargs, _value_view))
        call = _call(impl, targs, tkwargs, front)
    if type(result) is HyperDual:
        result._node = _made(call, None, result._value)
        if result._base is not None and args and type(args[0]) is HyperDual:
            link_view(args[0], result)  # a view of the recorded array itself, not of its stand-in
        return result
    if isinstance(result, tuple):
        items = list(result)
        for k, item in enumerate(items):
            if type(item) is HyperDual:
                item._node = _made(call, k, item._value)
        return result
    return result


def _parents(node):
    call = node.call
    if call is None:
        return []
    impl, args, kwargs, front, refs = call
    if refs is not None:
        return [n for _, n in refs]
    return [r.node for r in nested((args, kwargs), _Ref)]


def reaching(nodes, output):
    """The nodes of ``nodes`` (an order of execution) that ``output`` depends on, in
    that order, ``output`` last among them."""
    need = {output}  # (nodes hash by identity)
    for n in reversed(nodes):
        c = n.call
        if c is not None and n in need:
            refs = c[4]
            if refs is None:
                need.update(_parents(n))
            else:  # (the common case, without building a list)
                for _, p in refs:
                    need.add(p)
    return [n for n in nodes if n in need]


def reached_calls(nodes, output):
    """``(node, call, first)`` for each recorded (not input) node of :func:`reaching`;
    ``first`` is True at the first node of its call (a call with a tuple result
    makes one node per item)."""
    seen = set()
    for n in reaching(nodes, output):
        c = n.call
        if c is not None:
            first = id(c) not in seen
            if first:
                seen.add(id(c))
            yield n, c, first


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


class _Slot:
    """An operand of a :class:`Program` step: the value in slot ``k``."""

    __slots__ = ("k",)

    def __init__(self, k):
        self.k = k


def _to_slots(tmpl, slot):
    t = type(tmpl)
    if t is _Ref:
        return _Slot(slot[tmpl.node])
    if t is list or t is tuple:
        return t(_to_slots(o, slot) for o in tmpl)
    if t is dict:
        return {k: _to_slots(v, slot) for k, v in tmpl.items()}
    return tmpl


def _from_slots(tmpl, vals):
    t = type(tmpl)
    if t is _Slot:
        return vals[tmpl.k]
    if t is list or t is tuple:
        return t(_from_slots(o, vals) for o in tmpl)
    if t is dict:
        return {k: _from_slots(v, vals) for k, v in tmpl.items()}
    return tmpl


_MISMATCH = ("the function combined its input with an array recorded elsewhere (kept from another "
             "call of it, or made with hyperdual.variable): lanes of two different seeding passes "
             "met. Do not carry HyperDual values from one call of the function to the next")


class Program:
    """A record made ready to replay: the steps that reach ``output``, operands by slot.

    Slots ``0 .. len(leaves) - 1`` hold the inputs; each step fills one more, and
    empties the slots it was the last to read, so a pass holds its intermediates
    no longer than a direct call would.  The steps hold the constants and the entry
    points, not the recorded values (a record of a long input would otherwise keep
    every intermediate array alive).

    Parameters
    ----------
    nodes : list of Node
        The record in an order of execution (:func:`record_session`'s tape, or
        :func:`topological`); nodes that do not reach ``output`` are dropped.
    leaves : list of Node
        The inputs, in the order :meth:`run` takes them.
    output : Node

    Raises
    ------
    PassMismatchError
        When the record reads a recorded array that is neither one of ``leaves`` nor
        made in it (kept from another recording, or made with :func:`variable`).
    """

    __slots__ = ("steps", "nslots", "out", "leaves", "calls", "shapes")

    # ``calls[j]``: ``(call, reads)`` of step ``j`` (``reads``: its ``(position, slot)``
    # operands, None when they sit in nested arguments), None for an item of a tuple
    # result; ``shapes[slot]``: the shape of each slot's value (None for a tuple).  The
    # planner reads them (:mod:`hyperdual.plan.frontier`); a replay does not.

    def __init__(self, nodes, leaves, output):
        slot = {leaf: k for k, leaf in enumerate(leaves)}
        calls, steps = {}, []
        made = []                                   # per step: (call, operand slots) or None
        shapes = [leaf.value.shape for leaf in leaves]  # per slot
        k = len(leaves)
        try:
            for n, c, first in reached_calls(nodes, output):
                if first:
                    cs = calls[id(c)] = k
                    k += 1
                    steps.append(_step(cs, c, slot))
                    refs = c[4]
                    made.append((c, None if refs is None else tuple((i, slot[p]) for i, p in refs)))
                    shapes.append(n.value.shape if n.index is None else None)
                else:
                    cs = calls[id(c)]
                if n.index is None:
                    slot[n] = cs
                else:
                    slot[n] = k
                    steps.append((_ITEM, k, None, cs, n.index))
                    made.append(None)
                    shapes.append(n.value.shape)
                    k += 1
            self.out = slot[output]
        except KeyError:
            raise PassMismatchError(_MISMATCH) from None
        self.calls, self.shapes = made, shapes
        last = {}  # slot -> the last step that reads it
        for j, step in enumerate(steps):
            kind = step[0]
            if kind is _SS:
                last[step[3]] = last[step[4]] = j
            elif kind is _CS:
                last[step[4]] = j
            elif kind is _ANY:
                for r in _reads(step):
                    last[r] = j
            else:
                last[step[3]] = j
        free: dict = {}
        for r, j in last.items():
            if r != self.out:
                free.setdefault(j, []).append(r)
        self.steps = [step + (tuple(free[j]) if j in free else (),) for j, step in enumerate(steps)]
        self.nslots, self.leaves = k, list(leaves)

    def run(self, inputs, skip=None, keep=None):
        """Replay with ``inputs`` (one per leaf; missing or None: the leaf's recorded value).

        ``skip`` (a set of step numbers) leaves steps out and ``keep`` (a set of slots)
        keeps those values: the result is then ``vals``, every slot's value (None where
        freed or skipped), the use of a planner that stops at a frontier
        (:mod:`hyperdual.plan.frontier`)."""
        vals = [None] * self.nslots
        for k, leaf in enumerate(self.leaves):
            x = inputs[k] if k < len(inputs) else None
            vals[k] = _value_view(leaf) if x is None else x
        steps = self.steps
        if skip is not None or keep is not None:  # (the steps kept, and what they may free)
            skip, keep = skip or set(), keep or set()
            steps = [st[:5] + (tuple(r for r in st[5] if r not in keep),)
                     for j, st in enumerate(steps) if j not in skip]
        for kind, out, fn, a, b, free in steps:
            if kind is _SS:
                vals[out] = fn(vals[a], vals[b])
            elif kind is _S:
                vals[out] = fn(vals[a])
            elif kind is _SC:
                vals[out] = fn(vals[a], b)
            elif kind is _CS:
                vals[out] = fn(a, vals[b])
            elif kind is _ITEM:  # item ``b`` of the tuple result in slot ``a``
                vals[out] = vals[a][b]
            else:
                vals[out] = _general(fn, a, b, vals)
            if free:  # (a result no later step reads: its lanes go back to the pool)
                for r in free:
                    vals[r] = None
        return vals[self.out] if steps is self.steps else vals

    def operands(self, j):
        """The slots step ``j`` reads."""
        step = self.steps[j]
        kind = step[0]
        if kind is _SS:
            return (step[3], step[4])
        if kind is _CS:
            return (step[4],)
        if kind is _ANY:
            return _reads(step[:5])
        return (step[3],)


# Kinds of Program steps: fn(slot, slot), fn(slot), fn(slot, constant), fn(constant, slot),
# an item of a tuple result, and any other call.
_SS, _S, _SC, _CS, _ITEM, _ANY = "ss", "s", "sc", "cs", "item", "any"


def _step(out, c, slot):
    """The Program step of call ``c``, its result in slot ``out``."""
    impl, args, kwargs, front, refs = c
    first = 1 if front is not None and impl is _IMPL.apply_ufunc else 0  # (front: no ufunc)
    if refs and not kwargs and front is not None:
        n = len(args) - first  # (refs are in the order of the arguments)
        if n == 1:
            return (_S, out, front, slot[refs[0][1]], None)
        if n == 2:
            if len(refs) == 2:
                return (_SS, out, front, slot[refs[0][1]], slot[refs[1][1]])
            if refs[0][0] == first:
                return (_SC, out, front, slot[refs[0][1]], args[first + 1])
            return (_CS, out, front, args[first], slot[refs[0][1]])
    if refs is not None:
        refs = tuple((i - first, slot[p]) for i, p in refs)
        return (_ANY, out, (front, impl), (args[first:], refs), kwargs)
    return (_ANY, out, (front, impl), (_to_slots(args[first:], slot), None), _to_slots(kwargs, slot))


def _reads(step):
    """The slots a step of kind ``_ANY`` reads."""
    kind, out, fn, a, b = step
    args, refs = a
    if refs is not None:
        return tuple(r for _, r in refs)
    return tuple(t.k for t in nested((args, b), _Slot))


def _general(fn, a, kwargs, vals):
    (front, impl), (args, refs) = fn, a
    if refs is not None:
        args = list(args)
        for i, s in refs:
            args[i] = vals[s]
    else:
        args, kwargs = _from_slots(args, vals), _from_slots(kwargs, vals)
    return front(*args, **kwargs) if front is not None else dispatch(impl, tuple(args), kwargs)


_IMPL.record_call, _IMPL.record_ufunc, _IMPL.record_getitem = record_call, record_ufunc, record_getitem


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
