"""The public objects: ``hessian``, ``jacobian``, ``gradient``, ``hvp`` and the lazy
:class:`Hessian` and :class:`Jacobian`, with the index parsing and the value call.

``hessian(f_or_ys, xs, batch_axis=None)`` returns :class:`Hessian` objects
that know their shape and nothing else.  Indexing one

1. applies the index to zero-cost broadcast views of the batch, row and
   column numbers, so NumPy itself decides which entries are touched, the
   result's shape, and raises its own errors (memory ∝ the result, not N²);
2. maps entry ``(i, j)`` to the unordered pair ``(min, max)`` of flat input
   indices (the Hessian is symmetric, and a tuple of inputs is one flat index
   space, so ``H[0][1]`` and ``H[1][0]`` share one cache) and drops pairs
   already cached;
3. runs the passes planned by :mod:`hyperdual.plan.seeding` for the rest (through the
   :class:`hyperdual.lazy.problem.Problem` behind every block), storing
   values and the "computed" mask together (a pass that raises stores
   nothing);
4. returns a plain ``numpy.ndarray`` cut from the cache.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np

from ..execute.array import HyperDual, as_float_array
from ..trace.batch import Unknown, coupling
from ..trace.record import Node, Program, record_session, topological
from ..execute.columns import settle
from .problem import (Problem, Stats, _check_samples, _distinct, _hvp_pass, _output_value,
                      _tally)
from ..plan.seeding import plan_passes, seed_inputs, settings

__all__ = ["Hessian", "Jacobian", "hessian", "jacobian", "hvp", "gradient", "Stats"]


# ---- argument checks --------------------------------------------------------------------
def _check_batch_axis(batch_axis):
    if batch_axis is None:
        return None
    if isinstance(batch_axis, (bool, np.bool_)):
        raise ValueError(f"batch_axis must be None or 0, got {batch_axis!r} (a bool is not an axis)")
    if not isinstance(batch_axis, (int, np.integer)):
        raise ValueError(f"batch_axis must be None or 0, got {batch_axis!r} of type {type(batch_axis).__name__}")
    if batch_axis != 0:
        raise ValueError(f"batch_axis must be None or 0 (only the leading axis can be a batch), got {batch_axis}")
    return 0


def _as_tuple(xs):
    if isinstance(xs, (tuple, list)):
        if len(xs) == 0:
            raise ValueError("xs is an empty tuple: give at least one input")
        return list(xs), True
    return [xs], False


def _check_shapes(points, batch, what="xs"):
    for k, p in enumerate(points):
        if (p.ndim <= 1) if batch is None else (p.ndim in (1, 2)):
            continue
        name = f"{what}[{k}]" if len(points) > 1 else what
        if batch is None and p.ndim > 1:
            raise ValueError(f"{name}.ndim should be 0 or 1 when batch_axis is None but got {p.ndim} "
                             f"(shape {p.shape}); flatten the input or use batch_axis=0 for [B, N] samples")
        if batch is not None and p.ndim not in (1, 2):
            raise ValueError(f"{name}.ndim should be 1 or 2 when batch_axis=0 but got {p.ndim} (shape {p.shape})")
    if batch is not None:
        sizes = {p.shape[0] for p in points}
        if len(sizes) > 1:
            raise ValueError(f"inputs have different batch sizes {[p.shape[0] for p in points]}; "
                             "with batch_axis=0 every input needs the same leading dimension")
        return points[0].shape[0]
    return None


def _point(x, k, multi):
    name = f"xs[{k}]" if multi else "xs"
    if isinstance(x, HyperDual):
        raise TypeError(f"{name} is a HyperDual: hessian()/jacobian() inside a function being "
                        "differentiated (nested differentiation) is not supported; compute the inner "
                        "derivative analytically or differentiate the outer function directly")
    if type(x) is np.ndarray and x.dtype == np.float64:
        return x.copy()  # (the common case, without the conversions below)
    return np.array(as_float_array(x, name), dtype=np.float64, copy=True)


# ---- the public objects ---------------------------------------------------------------------
def _axis_numbers(base: np.ndarray, shape: tuple, axis: int | None) -> np.ndarray:
    """A read-only view of ``shape`` whose entries are their index along ``axis``.

    Zero strides everywhere else, so it costs no memory whatever the shape.
    """
    strides = tuple(8 if t == axis else 0 for t in range(len(shape)))
    view = np.ndarray(shape, dtype=np.int64, buffer=base, strides=strides)
    view.flags.writeable = False
    return view


_COORDINATES: dict = {}


def _coordinates(dims: list[tuple[str, int]]):
    """``(shape, {"b", "i", "j": read-only coordinate views})`` of a block; shared by
    every block of the same dimensions (the views are read-only and cost no memory)."""
    key = tuple(dims)
    found = _COORDINATES.get(key)
    if found is None:
        found = _make_coordinates(dims)
        if len(_COORDINATES) >= 256:
            _COORDINATES.clear()
        _COORDINATES[key] = found
    return found


def _make_coordinates(dims):
    shape = tuple(d for _, d in dims)
    base = np.arange(max([d for _, d in dims] + [1]), dtype=np.int64)
    axis = {name: k for k, (name, _) in enumerate(dims)}
    return shape, {name: _axis_numbers(base, shape, axis.get(name)) for name in ("b", "i", "j")}


def _whole(index, ndim: int = 2) -> bool:
    """Whether ``index`` selects a whole ``ndim``-D array as a copy-equivalent:
    ``:``, ``...``, ``()``, ``(:, :)``, ``(..., :)`` and the like."""
    if type(index) is slice:
        return index == _ALL
    items = index if type(index) is tuple else (index,)
    if len(items) > ndim or sum(1 for it in items if it is Ellipsis) > 1:
        return False
    for it in items:
        if it is not Ellipsis and (type(it) is not slice or it != _ALL):
            return False
    return True


_ALL = slice(None)


def _batch_only(rb, ri, rj):
    """The sample numbers (1-D) when a batched request is one block repeated per sample:
    ``rb`` varies along result axis 0 only and ``ri``, ``rj`` do not vary along it
    (zero strides of the coordinate views tell).  None otherwise."""
    if not isinstance(rb, np.ndarray) or rb.ndim == 0 or rb.size == 0:
        return None
    if any(st != 0 and d != 1 for st, d in zip(rb.strides[1:], rb.shape[1:])):
        return None
    if rb.shape[0] != 1 and (ri.strides[0] != 0 or rj.strides[0] != 0):
        return None
    return np.asarray(rb[(slice(None),) + (0,) * (rb.ndim - 1)], dtype=np.int64)


def _no_batch(problem, what):
    if problem.batch is not None:
        raise ValueError(f"{what} needs batch_axis=None (a sparse matrix per sample is not "
                         "supported); index the samples' blocks (H[b]) instead")


def _scipy_sparse(what):
    try:
        import scipy.sparse as sparse
    except ImportError as exc:
        raise ImportError(f"{what} needs scipy, an optional dependency: install it, or hyperdual with "
                          "its sparse extra (pip install 'hyperdual-hessian[sparse]')") from exc
    return sparse


class Hessian:
    """A lazy Hessian block: computes nothing until indexed, then only what was asked.

    Index it exactly like the full ``numpy.ndarray`` it stands for
    (``H[:]``, ``H[0:2, 1]``, ``H[..., ::-1]``, integer arrays, masks); the
    result is a plain ``numpy.ndarray`` (a NumPy scalar for a full integer
    index).  Entries are cached; ``H[j, i]`` after ``H[i, j]`` runs nothing.

    Attributes
    ----------
    shape, ndim, dtype
        Of the full block.
    value
        The function value at the point (``[B]`` with a batch).
    gradient
        The gradient with respect to this block's row input (computed, or
        taken from the passes already run).
    stats
        A :class:`Stats` of the work done so far (shared by all blocks).

    Examples
    --------
    >>> import numpy as np, hyperdual
    >>> H = hyperdual.hessian(lambda x: np.sum(x ** 3) + x[1] * x[2], np.array([1.0, 2.0, 3.0]))
    >>> H.shape, H.stats.passes
    ((3, 3), 0)
    >>> H[1:, 1:]
    array([[12.,  1.],
           [ 1., 18.]])
    >>> H.stats.pairs_evaluated
    3
    """

    def __init__(self, problem: Problem, a: int, b: int):
        self._problem = problem
        self._a, self._b = a, b
        sp = problem.space
        dims = []
        if problem.batch is not None:
            dims.append(("b", problem.batch))
        if sp.has_axis[a]:
            dims.append(("i", sp.sizes[a]))
        if sp.has_axis[b]:
            dims.append(("j", sp.sizes[b]))
        self._shape, self._coords = _coordinates(dims)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def ndim(self) -> int:
        return len(self._shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float64)

    @property
    def size(self) -> int:
        return int(np.prod(self._shape))

    def __len__(self) -> int:
        if not self._shape:
            raise TypeError("len() of unsized object")
        return self._shape[0]

    @property
    def stats(self) -> Stats:
        return self._problem.stats

    @property
    def value(self) -> np.ndarray:
        return np.array(self._problem.value)

    @property
    def gradient(self) -> np.ndarray:
        p = self._problem
        off = int(p.space.offsets[self._a])
        dims = []
        if p.batch is not None:
            dims.append(("b", p.batch))
        if p.space.has_axis[self._a]:
            dims.append(("i", p.space.sizes[self._a]))
        _, c = _coordinates(dims)
        b = None if p.batch is None else np.array(c["b"])
        return np.asarray(p.gradient_entries(b, off + np.array(c["i"])))

    def hvp(self, v) -> np.ndarray:
        """The product ``H @ v`` in one pass, without forming ``H``.

        For the Hessian of one input without a batch.  A recorded Hessian
        replays its record (the function is not called again).

        Examples
        --------
        >>> import numpy as np, hyperdual
        >>> H = hyperdual.hessian(lambda x: np.sum(x ** 3), np.array([1.0, 2.0]))
        >>> H.hvp(np.array([1.0, 1.0]))
        array([ 6., 12.])
        """
        p = self._problem
        if p.batch is not None or len(p.space.points) != 1:
            raise ValueError("Hessian.hvp needs the Hessian of one input without a batch; "
                             "index the blocks (H[:]) and multiply instead")
        return p.hvp(v)

    # -- sparse output --------------------------------------------------------------------
    def _block_of(self, codes, what):
        """The ``(rows, cols, positions)`` of the whole Hessian's ``codes`` that fall in this
        block, in block coordinates (row-major order)."""
        p = self._problem
        _no_batch(p, what)
        sp = p.space
        n = sp.n
        oa, na, ob, nb = sp.offsets[self._a], sp.sizes[self._a], sp.offsets[self._b], sp.sizes[self._b]
        lo, hi = np.searchsorted(codes, [oa * n, (oa + na) * n])
        rows, cols = np.divmod(codes[lo:hi], n)
        sel = np.nonzero((cols >= ob) & (cols < ob + nb))[0]
        return rows[sel] - oa, cols[sel] - ob, sel + lo, (na, nb)

    def sparse(self) -> "scipy.sparse.csr_array":
        """The block as a ``scipy.sparse.csr_array``, computing only its structural nonzeros.

        Without a batch.  A function whose record the structure analysis follows
        (:mod:`hyperdual.plan.frontier`) takes one pass seeded with colour indicators
        (:mod:`hyperdual.lazy.coloured`), whatever its size; otherwise the sparsity
        pattern's pairs (or, within the memory budget, every pair) are seeded.  Entries
        that are structurally nonzero but zero at this point are kept as explicit zeros,
        so the structure is the same at every point of the same program.  The result is
        cached like every entry: ``H[i, j]`` afterwards runs nothing.

        Returns
        -------
        scipy.sparse.csr_array
            Of shape ``(N_a, N_b)`` (a scalar input counts as one row or column).

        Raises
        ------
        ImportError
            Without scipy (install the ``sparse`` extra).
        ValueError
            With a batch, or when neither a structure nor every pair fits the budget.

        Examples
        --------
        >>> import numpy as np, hyperdual
        >>> f = lambda x: np.sum((x[1:] - x[:-1] ** 2) ** 2)
        >>> S = hyperdual.hessian(f, np.array([1.0, 2.0, 3.0])).sparse()
        >>> S.nnz, S.toarray()
        (7, array([[ 4., -4.,  0.],
               [-4., 38., -8.],
               [ 0., -8.,  2.]]))
        """
        sparse = _scipy_sparse("Hessian.sparse()")
        p = self._problem
        _no_batch(p, "Hessian.sparse()")
        codes, values = p.sparse_whole()
        if p.space.sizes[self._a] == p.space.sizes[self._b] == p.space.n:  # the whole Hessian
            return sparse.csr_array(p.cache.csr(), shape=(p.space.n, p.space.n))
        rows, cols, pos, shape = self._block_of(codes, "Hessian.sparse()")
        return sparse.csr_array((values[pos], (rows, cols)), shape=shape)

    def sparsity(self) -> "scipy.sparse.csr_array":
        """The block's structural nonzeros as a boolean ``scipy.sparse.csr_array``,
        without computing their values when the analysis can tell them (a coloured
        plan, or a sparsity pattern pass).  See :meth:`sparse`.

        Examples
        --------
        >>> import numpy as np, hyperdual
        >>> f = lambda x: np.sum(np.cos(x[1:] * x[:-1]))
        >>> H = hyperdual.hessian(f, np.ones(4))
        >>> H.sparsity().toarray().astype(int)
        array([[1, 1, 0, 0],
               [1, 1, 1, 0],
               [0, 1, 1, 1],
               [0, 0, 1, 1]])
        >>> H.stats.passes
        0
        """
        sparse = _scipy_sparse("Hessian.sparsity()")
        _no_batch(self._problem, "Hessian.sparsity()")
        codes = self._problem.structure_whole()
        rows, cols, _, shape = self._block_of(codes, "Hessian.sparsity()")
        return sparse.csr_array((np.ones(rows.size, dtype=bool), (rows, cols)), shape=shape)

    def lower_triangle(self, values: bool = True) -> tuple[np.ndarray, ...]:
        """The structural nonzeros of a diagonal block on and below its diagonal, in
        row-major order: ``(rows, cols, values)`` (or ``(rows, cols)`` with
        ``values=False``, computing no values when the analysis can tell them) — the
        layout of cyipopt's ``hessianstructure()`` and ``hessian()`` callbacks.

        Examples
        --------
        >>> import numpy as np, hyperdual
        >>> f = lambda x: np.sum((x[1:] - x[:-1] ** 2) ** 2)
        >>> r, c, v = hyperdual.hessian(f, np.array([1.0, 2.0, 3.0])).lower_triangle()
        >>> r.tolist(), c.tolist(), v.tolist()
        ([0, 1, 1, 2, 2], [0, 0, 1, 1, 2], [4.0, -4.0, 38.0, -8.0, 2.0])
        """
        if self._a != self._b:
            raise ValueError("lower_triangle() is defined for a diagonal block H[a][a] (or the "
                             "Hessian of one input); for an off-diagonal block use sparse()")
        p = self._problem
        _no_batch(p, "Hessian.lower_triangle()")
        if values:
            codes, vals = p.sparse_whole()
        else:
            codes, vals = p.structure_whole(), None
        rows, cols, pos, _ = self._block_of(codes, "Hessian.lower_triangle()")
        keep = rows >= cols
        if vals is None:
            return rows[keep], cols[keep]
        return rows[keep], cols[keep], vals[pos[keep]]

    def __getitem__(self, index) -> Any:
        p = self._problem
        if p.batch is None and len(self._shape) == 2 and _whole(index):
            return p.hessian_block(self._a, self._b)
        if p.batch is not None and len(self._shape) == 3 and _whole(index, 3):
            full = p.hessian_all_samples()
            if full is not None:
                return full
        c = self._coords
        ri = c["i"][index]
        rj = c["j"][index]
        scalar = not isinstance(ri, np.ndarray)
        bsel = None
        if p.batch is not None:
            rb = c["b"][index]
            bsel = _batch_only(rb, ri, rj)
            if bsel is not None:  # the same block for every sample touched: work per pair
                ri, rj = ri[0], rj[0]
        i, j = np.asarray(ri, dtype=np.int64), np.asarray(rj, dtype=np.int64)
        off_a, off_b = p.space.offsets[self._a], p.space.offsets[self._b]
        if off_a:
            i = i + off_a
        if off_b:
            j = j + off_b
        if p.batch is None:
            out = p.hessian_entries(None, i, j)
        elif bsel is not None:
            out = p.hessian_samples(bsel, i, j)
        else:
            out = p.hessian_entries(np.asarray(rb, dtype=np.int64), i, j)
        return out[()] if scalar else np.asarray(out)

    def __array__(self, dtype=None, copy=None):
        full = np.asarray(self[...])
        return full if dtype is None else full.astype(dtype)

    def __repr__(self) -> str:
        st = self._problem.stats
        return f"Hessian(shape={self._shape}, entries_cached={st.entries_cached}, passes={st.passes})"


class _CallFunction:
    """Calls the user's function with one pass's inputs (picklable when ``func`` is)."""

    def __init__(self, func, multi):
        self.func, self.multi = func, multi

    def __call__(self, inputs, samples=None):
        return self.func(*inputs) if self.multi else self.func(inputs[0])


def _callable_points(xs, batch_axis):
    if type(xs) is np.ndarray and xs.dtype == np.float64 and batch_axis is None and xs.ndim <= 1:
        point = xs.copy()  # the common case: one float vector, nothing to convert or check
        point.flags.writeable = False
        return [point], None, False
    items, multi = _as_tuple(xs)
    points = [_point(x, k, multi) for k, x in enumerate(items)]
    batch = _check_shapes(points, batch_axis)
    for p in points:  # the Hessian's own point: nothing may move it
        p.flags.writeable = False
    return points, batch, multi


def _subset_output(evaluate, points, pick):
    """The outputs of ``pick``'s samples alone (``[len(pick)]``), or None when that
    evaluation fails or its output does not follow the batch; and whether its record
    shows the samples kept apart (ValueError when it shows a step that mixes them)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        replay_, y, _ = _record(evaluate, [p[pick] for p in points], pick.size, replay=False)
    if y is None:  # (the full evaluation then raises its error, or not)
        return None, False
    value = _output_value(y)
    if value.shape not in ((pick.size,), (pick.size, 1)):
        return None, False
    return value.reshape(-1), replay_ is not None


class _Replay:
    """Replays the record of one call of the user's function with a pass's inputs.

    Within one Hessian the point is fixed, so the record made by the value call is
    exact for every pass whatever branches the function took: the passes differ only
    in their seeds, which the function never sees.  Pickled, it becomes the function
    itself (the record holds the implementations it ran, not the user's code)."""

    replays = True  # (hyperdual.lazy.problem.Problem pickles the function in its place)

    def __init__(self, program, output, func):
        self.program, self.output, self.func = program, output, func

    def __call__(self, inputs, samples=None):
        if self.program is None:  # an output that does not depend on the inputs
            return self.output
        return self.program.run(inputs)


def _samples_apart(nodes, leaves, output, batch):
    """The batch rules' verdict on a record (:mod:`hyperdual.trace.batch`): "" when it keeps
    the samples apart, else why it has no verdict (a step without a rule, or one the
    rules cannot read: the samples are then compared).  ValueError when a step mixes
    the samples."""
    try:
        mixed = coupling(nodes, leaves, output, batch)
    except Unknown as exc:
        return f"with batch_axis=0, {exc} has no rule for the batch axis (hyperdual.trace.batch)"
    except Exception as exc:  # noqa: BLE001 - a rule that cannot read this call: no verdict
        return (f"with batch_axis=0, the batch rules could not read the record "
                f"({type(exc).__name__}: {exc})")
    if mixed:
        raise ValueError(f"with batch_axis=0 the samples must be independent, but {mixed}, which "
                         "mixes them: a per-sample Hessian is not defined. Use batch_axis=None on "
                         "the flattened input instead")
    return ""


def _record(evaluate, points, batch=None, replay=True, vector=False):
    """Call the user's function once on recorded inputs: ``(replay, output, "")``, or
    ``(None, None, reason)`` when it cannot be recorded (it is then called per pass),
    or ``(None, output, reason)`` when the batch rules cannot judge it.  ``replay=False``:
    only the verdict on the samples is wanted: True in place of the replay.  ``vector``:
    the output may be ``[B, M]`` (a Jacobian's), not only ``[B]``.

    With a batch, the record must keep the samples apart (:mod:`hyperdual.trace.batch`):
    ValueError naming the first step that mixes them; a step without a batch rule
    makes the function be called per pass, as without a record."""
    leaves = [Node(None, None, p) for p in points]
    inputs = [HyperDual._new(p, None, None, None, None, leaf) for p, leaf in zip(points, leaves)]
    try:
        y, nodes = record_session(lambda: evaluate(inputs), leaves)
    except Exception as exc:  # noqa: BLE001 - the plain value call raises it again, or not
        return None, None, f"the function could not be recorded ({type(exc).__name__}: {exc})"
    if type(y) is HyperDual and y._node is not None:
        shape = y._value.shape
        if batch is not None and batch > 1 and (shape in ((batch,), (batch, 1)) or
                                                (vector and shape[:1] == (batch,))):
            # (an output of another shape is refused by the caller, with its own message)
            why = _samples_apart(nodes, leaves, y._node, batch)
            if why:  # (the output's value serves the calls per pass)
                return None, y, why + ": the function is called per pass"
        return (_Replay(Program(nodes, leaves, y._node), None, evaluate) if replay else True), y, ""
    if isinstance(y, HyperDual) or (isinstance(y, np.ndarray) and y.dtype.kind not in "biuf"):
        return None, None, "the function's output is not an array computed from its inputs"
    try:
        value = _output_value(y)
    except TypeError as exc:
        return None, None, str(exc)
    return _Replay(None, value.copy(), evaluate), value, ""


_RECORD_OFF = "recording is off (record=False, or hyperdual.settings.settings.trace)"


class _RecordOnDemand:
    """The record of a function called per pass, made when a planner first asks for it
    (one more call of the function, counted)."""

    def __init__(self, evaluate, points, stats):
        self.evaluate, self.points, self.stats = evaluate, points, stats

    def __call__(self):
        replay_, _, _ = _record(self.evaluate, self.points)
        self.stats.function_calls += 1
        return None if replay_ is None else replay_.program


class _Counted:
    """The user's function, counting its calls while a Hessian is made."""

    def __init__(self, evaluate):
        self.evaluate, self.calls = evaluate, 0

    def __call__(self, inputs, samples=None):
        self.calls += 1
        return self.evaluate(inputs, samples)


def _callable_problem(func, xs, batch_axis, memory_budget, record=None):
    points, batch, multi = _callable_points(xs, batch_axis)
    evaluate = _CallFunction(func, multi)
    counted = _Counted(evaluate)
    reason, y, proven = _RECORD_OFF, None, False
    if settings.trace if record is None else record:
        replay_, y, reason = _record(counted, points, batch)
        if replay_ is not None:  # (a batch: every pass replays every sample, kept apart)
            replay_.func = evaluate
            value = _output_value(y)
            problem = Problem(replay_, points, batch, value, "callable", memory_budget,
                               replay_all=batch is not None)
            problem.stats.mode = "recorded"
            problem.coloured.program = lambda: replay_.program
            problem.coloured.remember(func, points)
            problem.samples.check_output(value, batch, None, constant=replay_.program is None)
            problem.samples.known = value.reshape(()) if batch is None else \
                (value.reshape(batch) if value.ndim else value)
            problem.samples.independent = True
            return problem, multi
    elif batch is not None and batch > 4:
        # A batch: the value call runs on the independence check's samples alone, which
        # shows the output's shape; the full batch's values come with the first pass
        # (or one plain evaluation when asked first) and are compared with these.  It is
        # recorded: a step of the record that mixes samples is refused here.
        pick = _check_samples(batch)
        got, proven = _subset_output(counted, points, pick)
        if got is not None:
            problem = Problem(evaluate, points, batch, None, "callable", memory_budget, replay_all=False)
            problem.samples.subset = (pick, got)
            problem.stats.reason = reason
            problem.stats.function_calls = counted.calls
            if proven:
                problem.samples.independent = True
            return problem, multi
    if y is None and batch is not None and batch > 1 and counted.calls == 0:
        replay_, y, _ = _record(counted, points, batch, replay=False)  # (ValueError: mixed)
        proven = replay_ is not None
    if y is None:
        y = counted([p.copy() for p in points])
    value = _output_value(y)
    problem = Problem(evaluate, points, batch, value, "callable", memory_budget, replay_all=False)
    problem.stats.function_calls = counted.calls
    if batch is None:
        problem.coloured.program = _RecordOnDemand(evaluate, points, problem.stats)
        problem.coloured.remember(func, points)
    problem.samples.check_output(value, batch, None, constant=not isinstance(y, HyperDual))
    problem.samples.known = value.reshape(()) if batch is None else (value.reshape(batch) if value.ndim else value)
    problem.stats.reason = reason
    if proven:
        problem.samples.independent = True
    return problem, multi


def _recorded_problem(ys, xs, batch_axis, memory_budget, check=True):
    items, multi = _as_tuple(xs)
    leaves = []
    for k, x in enumerate(items):
        name = f"xs[{k}]" if multi else "xs"
        if not isinstance(x, HyperDual) or x._node is None:
            raise TypeError(f"{name} must be an input made with hyperdual.variable() when ys is an "
                            "array (the hessian(ys, xs) form); or pass a function: hessian(func, xs)")
        if x._node.call is not None:
            raise ValueError(f"{name} was modified in place after hyperdual.variable() created it; "
                             "the record no longer refers to it as an input. Create a new variable "
                             "instead of assigning into it")
        if any(x._node is leaf for leaf in leaves):
            raise ValueError(f"{name} is the same variable as an earlier member of xs; give each "
                             "variable once (its blocks are the same)")
        leaves.append(x._node)
    if not isinstance(ys, HyperDual) or ys._node is None:
        raise TypeError(f"ys is a {type(ys).__name__}, not an array computed from hyperdual.variable "
                        "inputs; for a function, call hessian(func, xs)")
    points = [leaf.value for leaf in leaves]
    batch = _check_shapes(points, batch_axis)
    order = topological(ys._node)
    present = {id(n) for n in order}
    if not any(id(leaf) in present for leaf in leaves):
        raise ValueError("ys was not computed from xs: none of the given inputs appears in its record")
    ours = {id(leaf) for leaf in leaves}  # other variables are constants here
    program = Program(order, leaves + [n for n in order if n.call is None and id(n) not in ours],
                      ys._node)

    def evaluate(inputs, samples=None):
        return program.run(inputs)

    problem = Problem(evaluate, points, batch, ys.value, "recorded", memory_budget, replay_all=True)
    problem.stats.mode = "recorded"
    problem.coloured.program = lambda: program
    if check:
        problem.samples.check_output(ys.value, batch, None)
    if batch is not None and batch > 1 and ys.value.shape in ((batch,), (batch, 1)):
        problem.stats.reason = _samples_apart(order, leaves, ys._node, batch)
        if not problem.stats.reason:  # (otherwise the samples are compared)
            problem.samples.independent = True
    return problem, multi


def _check_record(record, f_or_ys):
    if record is not None and type(record) is not bool:
        raise TypeError(f"record must be True, False or None, got {record!r}")
    if record is False and not callable(f_or_ys):
        raise ValueError("record=False asks to call the function per pass, but ys is already a "
                         "record (the hessian(ys, xs) form); pass the function instead")
    return record


def _problem(f_or_ys, xs, batch_axis, memory_budget, record=None):
    batch_axis = _check_batch_axis(batch_axis)
    record = _check_record(record, f_or_ys)
    if memory_budget is not None and int(memory_budget) <= 0:
        raise ValueError(f"memory_budget must be a positive number of bytes, got {memory_budget}")
    if callable(f_or_ys):
        return _callable_problem(f_or_ys, xs, batch_axis, memory_budget, record)
    return _recorded_problem(f_or_ys, xs, batch_axis, memory_budget)


def hessian(f_or_ys: Callable | HyperDual, xs, batch_axis: int | None = None, *,
            memory_budget: int | None = None, record: bool | None = None):
    """Lazy Hessian of a scalar function (or a recorded output) at a point.

    Parameters
    ----------
    f_or_ys : callable or HyperDual
        A function ``f(x)`` (``f(*xs)`` for a tuple/list ``xs``) written with
        NumPy, returning a scalar (``[B]`` with ``batch_axis=0``); or ``ys``,
        an output computed from inputs made with :func:`hyperdual.variable`.
    xs : array_like or tuple/list of array_like
        The point: ``[N]`` or 0-d (``[B, N]`` or ``[B]`` with a batch); the
        Hessian keeps its own float64 copy.  With ``ys``, the variables.
    batch_axis : None or 0
        ``0``: the leading axis holds independent samples; ``H`` is ``[B, N, N]``.
    memory_budget : int, optional
        Bytes of lanes per pass (default :func:`hyperdual.set_memory_budget`, 512 MiB).
    record : bool, optional
        For a function: ``True`` records it once, on the value call, and replays
        the record in every pass, so it is called once per Hessian (exact for a
        function that caches something derived from its input on its first call);
        ``False`` calls it in every pass.  ``None`` (default): the setting
        ``hyperdual.settings.settings.trace`` (False for now: recording costs about
        40-85 µs per Hessian).  A function that cannot be recorded is called per
        pass, and ``H.stats.mode`` / ``H.stats.reason`` say which mode ran and why.
        With ``batch_axis=0`` the function is called per pass.

    Returns
    -------
    Hessian or tuple of tuples of Hessian
        ``H[i][j]`` is the block of inputs ``i`` and ``j`` for a tuple ``xs``.
        Nothing is differentiated until a block is indexed.

    Examples
    --------
    >>> import numpy as np, hyperdual
    >>> def rosen(x):
    ...     return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
    >>> H = hyperdual.hessian(rosen, np.array([1.0, 1.0, 1.0]))
    >>> H[:]
    array([[ 802., -400.,    0.],
           [-400., 1002., -400.],
           [   0., -400.,  200.]])
    """
    problem, multi = _problem(f_or_ys, xs, batch_axis, memory_budget, record)
    m = len(problem.space.points)
    if not multi:
        return Hessian(problem, 0, 0)
    return tuple(tuple(Hessian(problem, a, b) for b in range(m)) for a in range(m))


def gradient(func: Callable, x, batch_axis: int | None = None, *,
             record: bool | None = None) -> np.ndarray:
    """The exact gradient of a scalar function (one pass of first-order lanes).

    ``record`` as for :func:`hessian`.

    Examples
    --------
    >>> import numpy as np, hyperdual
    >>> hyperdual.gradient(lambda x: np.sum(x ** 2), np.array([1.0, -2.0]))
    array([ 2., -4.])
    """
    return hessian(func, x, batch_axis, record=record).gradient


def hvp(func: Callable, x, v) -> np.ndarray:
    """The Hessian-vector product ``H(x) @ v`` of a scalar function.

    One pass with ``e1`` the unit vectors and ``e2 = v``: row ``i`` of the
    cross lane is ``e_iᵀ H v``.  (:meth:`Hessian.hvp` does the same on a lazy
    Hessian, reusing its record.)

    Examples
    --------
    >>> import numpy as np, hyperdual
    >>> hyperdual.hvp(lambda x: np.sum(x ** 3), np.array([1.0, 2.0]), np.array([1.0, 1.0]))
    array([ 6., 12.])
    """
    point = _point(x, 0, False)
    return _hvp_pass(func, point, v)


# ---- Jacobian --------------------------------------------------------------------------------
class Jacobian:
    """A lazy Jacobian block ``∂ys/∂xs[k]``: columns are computed when indexed.

    ``ys`` ``[M]`` (or 0-d) and ``x`` ``[N]`` (or 0-d) give ``[M, N]``;
    with ``batch_axis=0``, ``[B, M]`` and ``[B, N]`` give ``[B, M, N]``.

    Examples
    --------
    >>> import numpy as np, hyperdual
    >>> J = hyperdual.jacobian(lambda x: np.array([1.0, 2.0]) * x ** 2, np.array([1.0, 3.0]))
    >>> J[:]
    array([[ 2.,  0.],
           [ 0., 12.]])
    """

    def __init__(self, problem, k):
        self._p, self._k = problem, k
        p = problem
        dims = []
        if p.batch is not None:
            dims.append(("b", p.batch))
        if p.out_axis:
            dims.append(("i", p.out_size))
        if p.space.has_axis[k]:
            dims.append(("j", p.space.sizes[k]))
        self._shape, self._coords = _coordinates(dims)

    shape = property(lambda self: self._shape)
    ndim = property(lambda self: len(self._shape))
    dtype = property(lambda self: np.dtype(np.float64))
    stats = property(lambda self: self._p.stats)

    def __len__(self):
        if not self._shape:
            raise TypeError("len() of unsized object")
        return self._shape[0]

    def __getitem__(self, index):
        c = self._coords
        ri, rj = c["i"][index], c["j"][index]
        scalar = not isinstance(ri, np.ndarray)
        j = self._p.space.offsets[self._k] + np.asarray(rj, dtype=np.int64)
        b = None if self._p.batch is None else np.asarray(c["b"][index], dtype=np.int64)
        out = self._p.entries(b, np.asarray(ri, dtype=np.int64), j)
        return out[()] if scalar else np.asarray(out)

    def __array__(self, dtype=None, copy=None):
        full = np.asarray(self[...])
        return full if dtype is None else full.astype(dtype)


class _JacobianProblem(Problem):
    def __init__(self, evaluate, points, batch, out_value, kind, budget, replay_all):
        super().__init__(evaluate, points, batch, out_value, kind, budget, replay_all)
        nb = 0 if batch is None else 1
        if out_value.ndim > nb + 1:
            raise ValueError(f"ys.ndim should be {nb} or {nb + 1} for a Jacobian "
                             f"({'with' if batch is not None else 'without'} batch_axis) but got "
                             f"{out_value.ndim} (shape {out_value.shape})")
        if batch is not None and (out_value.ndim == 0 or out_value.shape[0] != batch):
            raise ValueError(f"ys has shape {out_value.shape}; with batch_axis=0 it needs the batch "
                             f"size {batch} as its leading dimension")
        self.out_axis = out_value.ndim > nb
        self.out_size = out_value.shape[nb] if self.out_axis else 1
        n = self.space.n
        shape = (self.out_size, n) if batch is None else (batch, self.out_size, n)
        self._jval = np.zeros(shape)
        self._jknown = np.zeros(n if batch is None else (batch, n), dtype=bool)
        self.cache = None

    def entries(self, b, i, j):
        with self.lock:
            known = self._jknown[j] if b is None else self._jknown[b, j]
            if not known.all():
                cols = _distinct(j[~known], self.space.n)
                nsamp = self.batch
                for cu, _ in plan_passes(cols, cols, self.space.elements(nsamp), self.budget):
                    inputs, ctx = seed_inputs(self.space, cu, np.zeros(0, np.int64),
                                              np.zeros(0, np.int64), None, False)
                    y = settle(self.evaluate(inputs, None))
                    _tally(self.stats, ctx)
                    self.stats.function_calls += 1
                    self.stats.passes += 1
                    value = _output_value(y)
                    if value.shape != self.value.shape:
                        raise ValueError(f"the output changed shape between calls: {value.shape} "
                                         f"vs {self.value.shape}")
                    lane = y._e1 if isinstance(y, HyperDual) else None
                    k = len(cu)
                    if lane is None:
                        lane = np.zeros((k,) + value.shape)
                    lane = np.broadcast_to(lane, (k,) + value.shape)
                    if self.batch is None:
                        self._jval[:, cu] = lane.reshape(k, self.out_size).T
                        self._jknown[cu] = True
                    else:
                        self._jval[:, :, cu] = np.moveaxis(lane.reshape(k, self.batch, self.out_size), 0, -1)
                        self._jknown[:, cu] = True
            return self._jval[(i, j)] if b is None else self._jval[(b, i, j)]


def jacobian(f_or_ys: Callable | HyperDual, xs, batch_axis: int | None = None, *,
             memory_budget: int | None = None, record: bool | None = None):
    """Lazy Jacobian of a function (or a recorded output) at a point.

    Parameters are as for :func:`hessian`; the output may be ``[M]`` (``[B, M]``
    with ``batch_axis=0``).  Returns a :class:`Jacobian`, or a tuple of them
    (one per input) for a tuple ``xs``.

    Examples
    --------
    >>> import numpy as np, hyperdual
    >>> J = hyperdual.jacobian(lambda x: np.sin(x) * x[0], np.array([0.0, 1.0]))
    >>> np.round(J[:], 6)
    array([[0.      , 0.      ],
           [0.841471, 0.      ]])
    """
    batch_axis = _check_batch_axis(batch_axis)
    record = _check_record(record, f_or_ys)
    if callable(f_or_ys):
        points, batch, multi = _callable_points(xs, batch_axis)
        evaluate = _CallFunction(f_or_ys, multi)
        reason, replay_, y = _RECORD_OFF, None, None
        if settings.trace if record is None else record:
            replay_, y, reason = _record(evaluate, points, batch, vector=True)
        elif batch is not None and batch > 1:  # (ValueError when a step mixes samples)
            _, y, _ = _record(evaluate, points, batch, replay=False, vector=True)
        if y is None:
            y = evaluate([p.copy() for p in points])
        problem = _JacobianProblem(evaluate if replay_ is None else replay_, points, batch,
                                   _output_value(y), "callable", memory_budget, False)
        problem.stats.mode = "callable" if replay_ is None else "recorded"
        problem.stats.reason = reason
    else:
        base, multi = _recorded_problem(f_or_ys, xs, batch_axis, memory_budget, check=False)
        problem = _JacobianProblem(base.evaluate, base.space.points, base.batch, np.asarray(base.value),
                                   "recorded", memory_budget, True)
    m = len(problem.space.points)
    js = tuple(Jacobian(problem, k) for k in range(m))
    return js if multi else js[0]
