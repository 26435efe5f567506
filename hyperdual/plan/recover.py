"""Hessian entries from one pass seeded with colour indicators (a planner step).

The pass (:func:`hyperdual.plan.seeding.seed_colours`) runs up to the frontier
(:mod:`hyperdual.plan.frontier`); frontier element ``t`` of weight ``w_t`` and support
``S_t`` then holds, in its cross row of the colour pair ``(a, b)``, the entry
``∂²t / ∂x_i ∂x_j`` of the one input ``i ∈ S_t`` of colour ``a`` and the one input
``j ∈ S_t`` of colour ``b`` (the colouring makes the colours of a support distinct).
So

.. math::

    H_{ij} = \\sum_{t:\\, i, j \\in S_t} w_t \\, e_{12}[\\mathrm{pair}(c_i, c_j), t],

gathered element by element for every ``(i, j)`` of each support, both orders: no
entry is ever solved for, only read and scaled.
"""
from __future__ import annotations

import functools

import numpy as np

__all__ = ["pair_rows", "entries", "combine", "dense", "collect"]


@functools.lru_cache(maxsize=64)
def pair_rows(count: int) -> np.ndarray:
    """``rows[a, b]``: the cross row of colours ``a`` and ``b`` in the pass's pair order
    (``np.triu_indices(count)``), symmetric (shared: read-only)."""
    ip, jp = np.triu_indices(count)
    rows = np.empty((count, count), dtype=np.int64)
    rows[ip, jp] = rows[jp, ip] = np.arange(ip.size)
    rows.flags.writeable = False
    return rows


def entries(support, weights: np.ndarray, e12, colours, rows):
    """``(i, j, values)`` of one frontier array's contributions to ``H`` (both orders;
    repeated ``(i, j)`` are to be added).  ``support`` is its
    :class:`hyperdual.plan.frontier.Support`, ``weights`` and ``e12`` (``(P, size)``)
    are flat over its elements; elements of weight zero are left out.  ``e12`` None:
    the structure alone (values of ones)."""
    w = weights.reshape(-1)
    sizes = np.diff(support.indptr)
    out_i, out_j, out_v = [], [], []
    for d in np.unique(sizes[(sizes > 0) & (w != 0)]).tolist():
        t = np.nonzero((sizes == d) & (w != 0))[0]
        S = support.indices[support.indptr[t][:, None] + np.arange(d)]     # (m, d) inputs
        I = np.broadcast_to(S[:, :, None], (t.size, d, d))
        J = np.broadcast_to(S[:, None, :], (t.size, d, d))
        if e12 is None:
            v = np.ones(I.size)
        else:
            C = colours[S]
            lanes = rows[C[:, :, None], C[:, None, :]]                       # (m, d, d) rows
            v = e12[lanes, t[:, None, None]] * w[t][:, None, None]
        out_i.append(I.reshape(-1))
        out_j.append(J.reshape(-1))
        out_v.append(v.reshape(-1))
    if not out_i:
        z = np.zeros(0, dtype=np.int64)
        return z, z, np.zeros(0)
    return np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_v)


def combine(n: int, parts):
    """``(codes, values)``: the sorted distinct ``i * n + j`` of the parts' entries and
    their sums (the Hessian's structural nonzeros, both triangles)."""
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    codes = np.concatenate([p[0] * n + p[1] for p in parts])
    v = np.concatenate([p[2] for p in parts])
    order = np.argsort(codes, kind="stable")
    codes, v = codes[order], v[order]
    first = np.ones(codes.size, dtype=bool)
    first[1:] = codes[1:] != codes[:-1]
    starts = np.nonzero(first)[0]
    values = np.add.reduceat(v, starts) if starts.size else v[:0]
    values += 0.0  # (-0.0 -> +0.0: an exact zero has one sign on every path)
    return codes[starts], values


def dense(n: int, codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The ``n x n`` Hessian of the nonzeros ``(codes, values)``."""
    out = np.zeros(n * n)
    out[codes] = values
    return out.reshape(n, n)


def collect(n: int, items, colours, rows, kernels: bool):
    """``(indptr, indices, data)``: the CSR of the Hessian summed from ``items``, each
    ``(support, weights, e12)`` of one frontier array (``e12`` None: the structure
    alone, data of ones).  ``kernels``: by the Numba twins
    (:mod:`hyperdual.execute.sparse_kernels`), else by :func:`entries` and :func:`combine`."""
    if not kernels:
        codes, values = combine(n, [entries(sup, w, e12, colours, rows) for sup, w, e12 in items])
        indptr = np.searchsorted(codes, np.arange(n + 1, dtype=np.int64) * n)
        return indptr, codes % n if n else codes, values
    from ..execute.sparse_kernels import csr_from_supports
    if not items:
        return np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)
    if len(items) == 1:
        sup, w, e12 = items[0]
        ptr, idx, ws = sup.indptr, sup.indices, w.reshape(-1)
        E = e12
    else:
        sizes = [sup.indices.size for sup, _, _ in items]
        offs = np.cumsum([0] + sizes[:-1])
        ptr = np.concatenate([[0]] + [sup.indptr[1:] + o for (sup, _, _), o in zip(items, offs)])
        idx = np.concatenate([sup.indices for sup, _, _ in items])
        ws = np.concatenate([w.reshape(-1) for _, w, _ in items])
        E = None if items[0][2] is None else np.concatenate([e12 for _, _, e12 in items], axis=1)
    return csr_from_supports(n, ptr.astype(np.int64, copy=False), idx.astype(np.int64, copy=False),
                             np.ascontiguousarray(ws, dtype=np.float64),
                             np.zeros((0, 1)) if E is None else np.ascontiguousarray(E),
                             np.zeros(n, dtype=np.int64) if colours is None else colours,
                             np.zeros((1, 1), dtype=np.int64) if rows is None else rows)
