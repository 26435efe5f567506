"""Colouring inputs so that one pass recovers many Hessian entries (a planner step).

A function that is a sum of *elements* ``t_k(x)``, each depending on a few
inputs ``S_k`` (its support), has the Hessian ``H = Σ_k w_k H_k`` with ``H_k``
nonzero on ``S_k × S_k`` only.  Give every input a colour such that the inputs
of one support all differ (a distance-1 colouring of the *conflict graph*, in
which two inputs are adjacent when some support holds both), and seed
``e1 = e2 = `` the colour indicators ``s_c`` (``s_c[i] = 1`` where input ``i``
has colour ``c``).  The cross lane of element ``k`` for the colour pair
``(a, b)`` is then ``s_aᵀ H_k s_b = H_k[i, j]`` for the one input ``i`` of
colour ``a`` and the one input ``j`` of colour ``b`` in ``S_k``: every entry of
every element, from ``c (c + 1) / 2`` cross rows whatever the number of inputs.

:func:`colour_inputs` colours greedily (each input, in some order, takes the
smallest colour none of its neighbours has), trying a small portfolio of
orders (and Brélaz's DSATUR, which picks the next input as it goes) and keeping
the fewest colours, as SparseMatrixColorings.jl and asdex do.  Chains (Rosenbrock) take 2 colours, an arrowhead 2, the edges of a 2-D
grid 2, a 5-point stencil 5.
"""
from __future__ import annotations

import numpy as np

__all__ = ["Colouring", "colour_inputs", "conflicts", "ORDERS", "distinct"]


def distinct(a: np.ndarray) -> np.ndarray:
    """The sorted distinct values of an int array (``np.unique`` by a sort: NumPy's hash
    path is many times slower on long int64 arrays)."""
    a = np.sort(a, kind="stable" if a.size < 64 else "quicksort")
    if a.size < 2:
        return a
    keep = np.empty(a.size, dtype=bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]

#: The vertex orders tried, in this order (ties keep the first); ``"dsatur"`` picks the
#: next input as it goes (the most distinct colours among its neighbours, then degree).
ORDERS = ("natural", "largest_first", "smallest_last", "dsatur")


class Colouring:
    """Colours of ``n`` inputs: ``colours[i]`` in ``0 .. count - 1``, found with ``order``."""

    __slots__ = ("colours", "count", "order")

    def __init__(self, colours: np.ndarray, count: int, order: str):
        self.colours, self.count, self.order = colours, count, order

    def indicators(self) -> np.ndarray:
        """The seeds ``(count, n)``: row ``c`` is 1 at the inputs of colour ``c``."""
        seeds = np.zeros((self.count, self.colours.size))
        seeds[self.colours, np.arange(self.colours.size)] = 1.0
        return seeds

    def __repr__(self) -> str:
        return f"Colouring(n={self.colours.size}, count={self.count}, order={self.order!r})"


def _csr(supports, n: int):
    """``(indptr, indices)`` of the supports (a sequence of index sequences, or a pair
    ``(indptr, indices)`` already), checked to lie in ``0 .. n - 1``."""
    if isinstance(supports, tuple) and len(supports) == 2 and isinstance(supports[0], np.ndarray):
        indptr, indices = (np.asarray(a, dtype=np.int64) for a in supports)
    else:
        lists = [np.unique(np.asarray(s, dtype=np.int64).reshape(-1)) for s in supports]
        indptr = np.zeros(len(lists) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(s) for s in lists])
        indices = np.concatenate(lists) if lists else np.zeros(0, np.int64)
    if indices.size and (indices.min() < 0 or indices.max() >= n):
        raise ValueError(f"a support names an input outside 0 .. {n - 1}")
    if indptr[0] != 0 or indptr[-1] != indices.size or np.any(np.diff(indptr) < 0):
        raise ValueError("indptr must start at 0, never decrease and end at len(indices)")
    return indptr, indices


def _adjacency(supports, n: int):
    """The conflict graph in CSR form ``(indptr, indices)`` (sorted neighbours, no
    loops), and the largest support (a clique: a lower bound on the colours).  Every
    ordered pair of members of each support is made in one array pass, then sorted."""
    indptr, indices = _csr(supports, n)
    sizes = np.diff(indptr)
    owner = np.repeat(np.arange(sizes.size), sizes)  # the support of each entry
    reps = sizes[owner]                               # each entry meets its support's members
    first = np.repeat(indices, reps)
    offset = np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps)
    second = indices[np.repeat(indptr[:-1][owner], reps) + offset]
    keep = first != second
    codes = distinct(first[keep] * n + second[keep])
    rows, cols = np.divmod(codes, n) if n else (codes, codes)
    adj = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=adj[1:])
    return adj, cols, int(sizes.max()) if sizes.size else 0


def conflicts(supports, n: int):
    """The conflict graph as an adjacency list: ``neighbours[i]``, the sorted inputs that
    share a support with input ``i`` (itself excluded)."""
    adj, cols, _ = _adjacency(supports, n)
    return [cols[adj[i]:adj[i + 1]] for i in range(n)]


def _order(kind: str, degree: np.ndarray, adj, cols) -> np.ndarray:
    n = degree.size
    if kind == "natural":
        return np.arange(n)
    if kind == "largest_first":
        return np.argsort(-degree, kind="stable")
    if kind == "smallest_last":  # (Matula & Beck) repeatedly remove a vertex of least degree
        out = np.empty(n, dtype=np.int64)
        if n >= KERNEL_MIN or kernels_loaded():
            from ..execute.sparse_kernels import smallest_last
            smallest_last(adj, cols, degree.astype(np.int64), out)
            return out
        return _smallest_last(degree, adj, cols, out)
    raise ValueError(f"order must be one of {', '.join(ORDERS)}; got {kind!r}")  # (dsatur: _dsatur)


def _smallest_last(degree, adj, cols, out):
    """The Python twin of :func:`hyperdual.execute.sparse_kernels.smallest_last` (the same
    buckets, as stacks: the same order)."""
    n = degree.size
    deg = degree.tolist()
    buckets: list = [[] for _ in range(max(deg, default=0) + 1)]
    where = [0] * n                # position of each vertex in its bucket's list
    for v in range(n):             # (filed so that the last filed is on top, as the kernel)
        where[v] = len(buckets[deg[v]])
        buckets[deg[v]].append(v)
    alive = [True] * n
    low = 0

    def unlink(u, d):
        b = buckets[d]
        k = where[u]
        b[k] = None                # (a hole; the stack's top skips holes)

    def top(d):
        b = buckets[d]
        while b and b[-1] is None:
            b.pop()
        return b[-1] if b else -1

    for pos in range(n - 1, -1, -1):
        if low > 0:
            low -= 1
        while top(low) < 0:
            low += 1
        v = buckets[low].pop()
        alive[v] = False
        out[pos] = v
        for u in cols[adj[v]:adj[v + 1]].tolist():
            if alive[u]:
                d = deg[u]
                unlink(u, d)
                deg[u] = d - 1
                where[u] = len(buckets[d - 1])
                buckets[d - 1].append(u)
    return out


def _dsatur(degree: np.ndarray, adj, cols) -> np.ndarray:
    """Brélaz's DSATUR: colour next the uncoloured input whose neighbours show the most
    distinct colours (ties: the larger degree, then the smaller index)."""
    import heapq
    n = degree.size
    colours = np.full(n, -1, dtype=np.int64)
    seen: list = [set() for _ in range(n)]
    heap = [(0, -int(degree[v]), v) for v in range(n)]
    heapq.heapify(heap)
    while heap:
        sat, _, v = heapq.heappop(heap)
        if colours[v] >= 0 or -sat != len(seen[v]):
            continue  # (coloured already, or a stale entry)
        c = 0
        while c in seen[v]:
            c += 1
        colours[v] = c
        for u in cols[adj[v]:adj[v + 1]].tolist():
            if colours[u] < 0 and c not in seen[u]:
                seen[u].add(c)
                heapq.heappush(heap, (-len(seen[u]), -int(degree[u]), u))
    return colours


def _greedy(order: np.ndarray, adj, cols) -> np.ndarray:
    n = order.size
    colours = np.full(n, -1, dtype=np.int64)
    if n >= KERNEL_MIN or kernels_loaded():
        from ..execute.sparse_kernels import greedy
        greedy(adj, cols, order.astype(np.int64), colours)
        return colours
    mark = np.full(n + 1, -1, dtype=np.int64)  # mark[c] == v: colour c is taken near v
    for v in order.tolist():
        taken = colours[cols[adj[v]:adj[v + 1]]]
        mark[taken[taken >= 0]] = v
        c = 0
        while mark[c] == v:
            c += 1
        colours[v] = c
    return colours


#: Colourings of at least this many inputs use the Numba greedy kernel (smaller ones
#: too once the lane kernels are loaded); the Python orders (smallest-last, DSATUR) are
#: only tried below ``PYTHON_ORDERS_MAX`` inputs, when the greedy ones left colours above
#: the largest support.
KERNEL_MIN = 1_000
PYTHON_ORDERS_MAX = 20_000


def kernels_loaded() -> bool:
    """Whether the lane kernels are loaded (Numba is imported: the planner's kernels cost
    no import either)."""
    from ..execute.lanes import _Choice
    return bool(_Choice.ready)


def colour_inputs(supports, n: int, orders=ORDERS) -> Colouring:
    """A distance-1 colouring of the inputs' conflict graph (see the module).

    Parameters
    ----------
    supports : sequence of sequences of int, or (indptr, indices)
        The inputs each element depends on (repeats are ignored).
    n : int
        The number of inputs.
    orders : sequence of str
        The greedy orders to try (:data:`ORDERS`); the colouring with the fewest
        colours is kept (the first on a tie).  The search stops as soon as a
        colouring reaches the largest support (no colouring has fewer colours), and
        skips the Python orders (smallest-last, DSATUR) from
        :data:`PYTHON_ORDERS_MAX` inputs on.

    Returns
    -------
    Colouring
        ``colours`` (``n`` ints), ``count`` and the ``order`` that found it.  An input in
        no support takes colour 0.

    Examples
    --------
    >>> from hyperdual.plan.colour import colour_inputs
    >>> c = colour_inputs([(k, k + 1) for k in range(5)], 6)   # a chain
    >>> c.count, c.colours.tolist()
    (2, [0, 1, 0, 1, 0, 1])
    """
    for kind in orders:
        if kind not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}; got {kind!r}")
    best = None
    if orders and orders[0] == "natural" and (n >= KERNEL_MIN or kernels_loaded()):
        from ..execute.sparse_kernels import greedy_from_supports
        indptr, indices = _csr(supports, n)
        colours = np.full(n, -1, dtype=np.int64)
        count = int(greedy_from_supports(indptr, indices, n, colours)) if n else 0
        best = Colouring(colours, count, "natural")
        sizes = np.diff(indptr)
        if count <= max(int(sizes.max()) if sizes.size else 0, 1):
            return best  # (the largest support's size: no colouring has fewer)
    adj, cols, clique = _adjacency(supports, n)
    degree = np.diff(adj)
    for kind in orders:
        if best is not None and (best.count <= max(clique, 1) or (
                kind in ("smallest_last", "dsatur") and n >= PYTHON_ORDERS_MAX)):
            continue  # (no colouring has fewer colours than the largest support)
        if kind == "dsatur":
            colours = _dsatur(degree, adj, cols)
        else:
            colours = _greedy(_order(kind, degree, adj, cols), adj, cols)
        count = int(colours.max()) + 1 if n else 0
        if best is None or count < best.count:
            best = Colouring(colours, count, kind)
    if best is None:
        raise ValueError("orders is empty: give at least one of " + ", ".join(ORDERS))
    return best
