"""Numba kernels of sparse Hessians: the colouring (:mod:`hyperdual.plan.colour`) and the
recovery of entries into CSR (:mod:`hyperdual.plan.recover`).  Used when a problem is
large or the lane kernels are loaded (:func:`hyperdual.load_kernels` loads these too):
importing Numba costs about half a second.  Each has a NumPy or Python twin in those
modules, and the tests check that both give the same results."""
from __future__ import annotations

import numba as nb
import numpy as np

__all__ = ["greedy", "greedy_from_supports", "smallest_last", "csr_from_supports"]


@nb.njit(cache=True)
def _first_free(mark, v):  # pragma: no cover - compiled
    """The smallest colour ``c`` not marked taken near vertex ``v`` (``mark[c] != v``)."""
    c = 0
    while mark[c] == v:
        c += 1
    return c


@nb.njit(cache=True)
def _owners(n, sup_ptr, sup_idx, w):  # pragma: no cover - compiled
    """``(deg, owner)``: the elements of nonzero weight holding each input, as CSR."""
    m = sup_ptr.size - 1
    deg = np.zeros(n + 1, dtype=np.int64)
    for t in range(m):
        if w[t] != 0.0:
            for k in range(sup_ptr[t], sup_ptr[t + 1]):
                deg[sup_idx[k] + 1] += 1
    for v in range(n):
        deg[v + 1] += deg[v]
    owner = np.empty(deg[n], dtype=np.int64)
    fill = deg[:n].copy()
    for t in range(m):
        if w[t] != 0.0:
            for k in range(sup_ptr[t], sup_ptr[t + 1]):
                v = sup_idx[k]
                owner[fill[v]] = t
                fill[v] += 1
    return deg, owner


@nb.njit(cache=True)
def greedy(indptr, indices, order, colours):  # pragma: no cover - compiled
    """Greedy distance-1 colouring of the CSR graph ``(indptr, indices)`` in ``order``:
    each vertex takes the smallest colour none of its coloured neighbours has.  Writes
    ``colours`` (filled with -1 by the caller) and returns the count."""
    n = order.size
    mark = np.full(n + 1, -1, dtype=np.int64)
    count = 0
    for v in order:
        for k in range(indptr[v], indptr[v + 1]):
            c = colours[indices[k]]
            if c >= 0:
                mark[c] = v
        c = _first_free(mark, v)
        colours[v] = c
        if c + 1 > count:
            count = c + 1
    return count


@nb.njit(cache=True)
def greedy_from_supports(sup_ptr, sup_idx, n, colours):  # pragma: no cover - compiled
    """:func:`greedy` in the natural order on the conflict graph of the supports
    ``(sup_ptr, sup_idx)`` without forming it: a vertex's neighbours are the other
    members of the supports holding it.  Writes ``colours``; returns the count."""
    deg, owner = _owners(n, sup_ptr, sup_idx, np.ones(sup_ptr.size - 1))  # supports holding each vertex
    mark = np.full(n + 1, -1, dtype=np.int64)
    count = 0
    for v in range(n):
        for a in range(deg[v], deg[v + 1]):
            t = owner[a]
            for k in range(sup_ptr[t], sup_ptr[t + 1]):
                c = colours[sup_idx[k]]
                if c >= 0:
                    mark[c] = v
        c = _first_free(mark, v)
        colours[v] = c
        if c + 1 > count:
            count = c + 1
    return count


@nb.njit(cache=True)
def smallest_last(indptr, indices, degree, out):  # pragma: no cover - compiled
    """Matula & Beck's smallest-last order of the CSR graph: repeatedly remove a vertex of
    least remaining degree (the most recently filed of its bucket), filling ``out`` from
    the back.  Buckets are doubly linked lists."""
    n = degree.size
    top = 0
    for v in range(n):
        if degree[v] > top:
            top = degree[v]
    head = np.full(top + 1, -1, dtype=np.int64)
    nxt = np.full(n, -1, dtype=np.int64)
    prv = np.full(n, -1, dtype=np.int64)
    deg = degree.copy()
    for v in range(n):
        d = deg[v]
        nxt[v] = head[d]
        if head[d] >= 0:
            prv[head[d]] = v
        head[d] = v
    removed = np.zeros(n, dtype=np.bool_)
    low = 0
    for pos in range(n - 1, -1, -1):
        if low > 0:
            low -= 1
        while head[low] < 0:
            low += 1
        v = head[low]
        head[low] = nxt[v]
        if nxt[v] >= 0:
            prv[nxt[v]] = -1
        removed[v] = True
        out[pos] = v
        for k in range(indptr[v], indptr[v + 1]):
            u = indices[k]
            if removed[u]:
                continue
            d = deg[u]
            if prv[u] >= 0:  # unlink u from bucket d
                nxt[prv[u]] = nxt[u]
            else:
                head[d] = nxt[u]
            if nxt[u] >= 0:
                prv[nxt[u]] = prv[u]
            d -= 1
            deg[u] = d
            prv[u] = -1
            nxt[u] = head[d]
            if head[d] >= 0:
                prv[head[d]] = u
            head[d] = u


@nb.njit(cache=True)
def _row_sizes(n, sup_ptr, sup_idx, deg, owner, stamp):  # pragma: no cover - compiled
    """The row pointer of the distinct columns of each row (``stamp`` marks them)."""
    indptr = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        c = 0
        for a in range(deg[i], deg[i + 1]):
            t = owner[a]
            for k in range(sup_ptr[t], sup_ptr[t + 1]):
                j = sup_idx[k]
                if stamp[j] != i:
                    stamp[j] = i
                    c += 1
        indptr[i + 1] = indptr[i] + c
    return indptr


@nb.njit(cache=True)
def _fill_rows(n, sup_ptr, sup_idx, w, E, colours, rows, deg, owner, indptr, stamp, slot,
               indices, data):  # pragma: no cover - compiled
    values = E.shape[0] > 0
    for i in range(n):
        lo = indptr[i]
        c = lo
        for a in range(deg[i], deg[i + 1]):
            t = owner[a]
            wt = w[t]
            for k in range(sup_ptr[t], sup_ptr[t + 1]):
                j = sup_idx[k]
                if stamp[j] != n + i:
                    stamp[j] = n + i
                    slot[j] = c
                    indices[c] = j
                    c += 1
                if values:
                    data[slot[j]] += E[rows[colours[i], colours[j]], t] * wt
                else:
                    data[slot[j]] = 1.0
        hi = c
        for a in range(lo, hi):
            data[a] += 0.0  # (-0.0 -> +0.0)
        if hi - lo <= 32:  # a short row: sorted here by insertion (long ones: _sort_long)
            for a in range(lo + 1, hi):
                cj, v = indices[a], data[a]
                b = a - 1
                while b >= lo and indices[b] > cj:
                    indices[b + 1] = indices[b]
                    data[b + 1] = data[b]
                    b -= 1
                indices[b + 1] = cj
                data[b + 1] = v


@nb.njit(cache=True)
def _sort_long(indptr, indices, data):  # pragma: no cover - compiled
    """The rows of more than 32 columns sorted by column (an arrowhead's first row)."""
    for i in range(indptr.size - 1):
        lo, hi = indptr[i], indptr[i + 1]
        if hi - lo > 32:
            order = np.argsort(indices[lo:hi], kind="mergesort")
            indices[lo:hi] = indices[lo:hi][order]
            data[lo:hi] = data[lo:hi][order]


@nb.njit(cache=True)
def csr_from_supports(n, sup_ptr, sup_idx, w, E, colours, rows):  # pragma: no cover - compiled
    """The CSR ``(indptr, indices, data)`` of ``H = Σ_t w_t H_t`` built row by row: row
    ``i`` adds, over the elements ``t`` whose support holds ``i``, the entries
    ``(i, j, w_t E[rows[c_i, c_j], t])`` for every ``j`` of the support (``E`` of zero
    rows: the structure alone, data of ones).  A symbolic pass counts each row's distinct
    columns, a numeric pass fills them: no array of all entries is ever formed."""
    deg, owner = _owners(n, sup_ptr, sup_idx, w)
    stamp = np.full(n, -1, dtype=np.int64)
    indptr = _row_sizes(n, sup_ptr, sup_idx, deg, owner, stamp)
    indices = np.empty(indptr[n], dtype=np.int64)
    data = np.zeros(indptr[n])
    slot = np.empty(n, dtype=np.int64)
    _fill_rows(n, sup_ptr, sup_idx, w, E, colours, rows, deg, owner, indptr, stamp, slot, indices, data)
    _sort_long(indptr, indices, data)
    return indptr, indices, data
