"""Whether a record keeps the samples of a batch apart (``batch_axis=0``).

With ``batch_axis=0`` the inputs are ``[B, ...]`` and the output ``[B]``: a
per-sample Hessian exists only when output ``b`` depends on sample ``b``'s
inputs alone.  :func:`coupling` reads a record (:mod:`hyperdual.trace.record`) once,
in the order it ran, and follows which arrays keep the samples on their first
axis ("aligned"): the recorded inputs do, and each operation keeps them there
or not:

* elementwise ufuncs and operators, ``where``, ``clip``: when every recorded
  operand has the output's number of dimensions (a lower one would be
  broadcast along the batch axis); constants of any shape, batch-shaped ones
  too, since the record is replayed on every sample together;
* reductions, sorts, cumulative sums, differences, flips and rolls: along
  other axes (``axis=None`` or an axis that is 0 mixes);
* indexing ``x[:, ...]``, ``x[..., i]``: a full slice first (an integer, a
  partial slice, an index array or a mask on the batch axis mixes);
* reshapes that keep each sample's row; transposes that keep axis 0 first;
  joins along another axis; ``matmul``/``dot`` of a recorded ``[B, ..., n]``
  by a constant on the right; ``einsum`` whose recorded operands and output
  all start with one batch letter; ``det``/``slogdet``/``inv`` of stacked
  matrices.

An operation it has no rule for makes the verdict unknown (nothing that uses
its result is judged): the caller then compares the outputs of samples, as
without a record.
"""
from __future__ import annotations

import operator

import numpy as np

from ..execute.array import _IMPL, OPERATORS
from ..execute.chain import UFUNC_METHODS
from .record import Node, _fill, reached_calls
from ..ops.registry import ALONG, ELEMENT, JOIN, MOVE, RESHAPE, SAME, STACKED, reads_of
from ..ops.rules import ufunc_name

__all__ = ["coupling", "Unknown"]


class Unknown(Exception):
    """The record holds an operation whose effect on the batch axis has no rule here."""


_SYMBOLS = {operator.add: "operator +", operator.sub: "operator -", operator.mul: "operator *",
            operator.truediv: "operator /",
            operator.pow: "operator **", operator.neg: "unary -", operator.getitem: "indexing"}


def _name(c):
    """How the operation of call ``c`` is named in messages (``c`` may be the name)."""
    if isinstance(c, str):
        return c
    f = c.front if c.front is not None else c.impl
    if f in _SYMBOLS:
        return _SYMBOLS[f]
    if isinstance(f, np.ufunc):
        return ufunc_name(f)
    for (ufunc, method), impl in UFUNC_METHODS.items():
        if f is impl:
            return f"numpy.{ufunc.__name__}.{method}"
    mod = getattr(f, "__module__", "") or ""
    name = getattr(f, "__name__", repr(f))
    return ("numpy.linalg." if "linalg" in mod else "numpy.") + name if mod.startswith("numpy") \
        else name


def _operands(c):
    """The call's arguments with recorded operands as their nodes (a ufunc's inputs
    alone), its keyword arguments, and its recorded operands."""
    impl, args, kwargs, front, refs = c
    if refs is not None:
        args = list(args)
        for i, p in refs:
            args[i] = p
        parents = [p for _, p in refs]
    else:
        args, kwargs = list(_fill(args, _same)), _fill(kwargs, _same)
        parents = _nodes(args) + _nodes(kwargs)
    if impl is _IMPL.apply_ufunc:
        args = args[1:]
    return args, kwargs, parents


def _same(node):
    return node


def _axes(axis, ndim):
    """Normalized axes of ``axis`` (None: every axis)."""
    if axis is None:
        return set(range(ndim))
    if isinstance(axis, (tuple, list)):
        return {int(a) % ndim for a in axis}
    return {int(axis) % max(ndim, 1)}


def _nodes(obj):
    if isinstance(obj, Node):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [n for o in obj for n in _nodes(o)]
    if isinstance(obj, dict):
        return [n for o in obj.values() for n in _nodes(o)]
    return []


def _shape(a):
    return a.value.shape if isinstance(a, Node) else np.shape(getattr(a, "value", a))


def _ndim(a):
    return len(_shape(a))


def _verdict(c, out, B, args, kwargs, nodes):
    """None when the call keeps the samples apart on axis 0, else a phrase saying how it
    mixes them; :class:`Unknown` when it has no rule (or moves the batch axis elsewhere)."""
    f = c[3]
    if f is None and c[0] is _IMPL.apply_ufunc:
        f = c[1][0]  # (a ufunc called with keyword arguments)
    ndim = out.ndim
    if f is operator.getitem:
        return _index_verdict(args[1], _ndim(args[0]), c)
    reads = reads_of(f)  # (the registry's: hyperdual.ops.registry)
    how = None if reads is None else reads.how
    if how == ALONG:
        axis = reads.argument("axis", args, kwargs)
        return f"{_name(c)} over the batch axis" if 0 in _axes(axis, _ndim(args[0])) else None
    if how == RESHAPE:  # each sample's entries stay in its row: C order, rows kept
        x = args[0]
        if _shape(x)[:1] == (B,) and out.shape[:1] == (B,) and reads.argument("order", args, kwargs) == "C":
            return None
        raise Unknown(_name(c))  # (samples elsewhere than on axis 0: not followed)
    if how == MOVE:
        probe = np.broadcast_to(np.empty(()), (B,) + (1,) * (_ndim(args[0]) - 1))
        moved = f(probe, *args[1:], **kwargs)
        if moved.ndim and moved.shape[0] == B:
            return None
        raise Unknown(_name(c))
    if how == JOIN:
        return _join_verdict(f, reads, args, kwargs, ndim, c)
    if ndim == 0 or out.shape[0] != B:
        raise Unknown(_name(c))
    if f in OPERATORS.values() or f is operator.neg or how == SAME or how == ELEMENT or \
            (isinstance(f, np.ufunc) and f is not np.matmul):
        for n in nodes:
            if n.value.ndim != ndim:
                return f"{_name(c)} broadcasts an array of shape {n.value.shape} along the batch axis"
        return None
    if f is np.matmul or f is np.dot:
        a, b = args[0], args[1]
        if isinstance(a, Node) and not isinstance(b, Node) and a.value.ndim >= 2:
            return None
        if f is np.matmul and isinstance(a, Node) and isinstance(b, Node) \
                and a.value.ndim == b.value.ndim >= 3:
            return None
        return f"{_name(c)} contracts over the batch axis"
    if f is np.einsum:
        return _einsum_verdict(args, c)
    if how == STACKED:
        return None if _ndim(args[0]) >= 3 else f"{_name(c)} of a matrix whose rows are samples"
    raise Unknown(_name(c))


def _join_verdict(f, reads, args, kwargs, ndim, c):
    seq = args[0]
    if f is np.column_stack and all(_ndim(a) <= 2 for a in seq):
        return None
    if len({_ndim(a) for a in seq}) > 1:
        raise Unknown(_name(c))
    if f is np.hstack and ndim > 1:
        return None
    if reads.position is not None:  # (concatenate, stack: an axis argument)
        axis = reads.argument("axis", args, kwargs)
        if axis is not None and int(axis) % ndim != 0:
            return None
    return f"{_name(c)} joins along the batch axis"


def _index_verdict(index, ndim, c):
    items = index if type(index) is tuple else (index,)
    if not items:
        return None
    first = items[0]
    if first is Ellipsis:
        rest = sum(1 for i in items[1:] if i is not None)
        if rest < ndim:
            return None
    elif type(first) is slice and first == slice(None):
        adv = [k for k, i in enumerate(items) if isinstance(i, (np.ndarray, list))]
        if adv and adv != list(range(adv[0], adv[0] + len(adv))):
            raise Unknown(_name(c))  # (separated index arrays move their axis first)
        return None
    elif first is None:
        raise Unknown(_name(c))
    return f"{_name(c)} [{_show(index)}] selects along the batch axis"


def _show(index):
    items = index if type(index) is tuple else (index,)
    out = []
    for i in items:
        if type(i) is slice:
            out.append(":".join("" if v is None else str(v) for v in (i.start, i.stop)) +
                       ("" if i.step is None else f":{i.step}"))
        elif i is Ellipsis:
            out.append("...")
        elif isinstance(i, np.ndarray):
            out.append(f"<{i.dtype} array>")
        else:
            out.append(repr(i))
    return ", ".join(out)


def _einsum_verdict(args, c):
    spec = args[0]
    if not isinstance(spec, str) or "->" not in spec or "." in spec:
        raise Unknown(_name(c))
    ins, out = spec.replace(" ", "").split("->")
    terms = ins.split(",")
    recorded = [t for t, a in zip(terms, args[1:]) if isinstance(a, Node)]
    letters = {t[:1] for t in recorded}
    if len(letters) == 1 and out[:1] in letters and out[:1]:
        return None
    return f"{_name(c)} '{spec}' contracts over or moves the batch axis"


def _impl_verdict(c, B, args, kwargs):
    """Item assignment, and ufunc methods (``np.add.reduce``)."""
    if c.impl is _IMPL.setitem:  # (constants into some samples' rows mix nothing)
        x, index, val = args
        if not _nodes([val]):
            return None
        v = _index_verdict(index, _ndim(x), "assignment")
        if v:
            return v
        region = np.broadcast_to(np.empty(()), _shape(x))[index]
        for n in _nodes([val]):
            if n.value.ndim != region.ndim:
                return f"assignment broadcasts an array of shape {n.value.shape} along the batch axis"
        return None
    # (NumPy hands a ufunc method its array alone, the rest by keyword; axis=0 by default)
    return f"{_name(c)} over the batch axis" if 0 in _axes(kwargs.get("axis", 0), _ndim(args[0])) else None


def coupling(nodes, leaves, output, B):
    """The first step of the record that mixes the samples of a batch of ``B``.

    Returns None when every step keeps them apart, else a phrase naming the
    operation.  Raises :class:`Unknown` when no step mixes them but one has no
    rule (the steps that use its result are not judged).  Nodes that do not
    reach ``output`` are not judged.
    """
    judged, tainted, unknown = {}, set(), None
    if not _METHODS:
        _METHODS.update(map(id, UFUNC_METHODS.values()))
    methods = _METHODS
    setitem = _IMPL.setitem
    for n, c, first in reached_calls(nodes, output):
        if first:
            args, kwargs, parents = _operands(c)
            if tainted and any(p in tainted for p in parents):
                ok = False  # (downstream of a step without a rule: not judged)
            else:
                try:
                    if c[0] is setitem or id(c[0]) in methods:
                        v = _impl_verdict(c, B, args, kwargs)
                    else:
                        v = _verdict(c, n.value, B, args, kwargs, parents)
                except Unknown as exc:
                    unknown = unknown or exc
                    ok = False
                else:
                    if v:
                        return v
                    ok = True
            judged[id(c)] = ok
        if not judged[id(c)]:
            tainted.add(n)
    if unknown is not None:
        raise unknown
    return None


_METHODS: set = set()  # ids of the ufunc methods' implementations (filled on first use)
