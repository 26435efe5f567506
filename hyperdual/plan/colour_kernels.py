"""Numba kernels of :mod:`hyperdual.plan.colour` (imported when a colouring is large, or
the lane kernels are loaded: importing Numba costs about half a second)."""
from __future__ import annotations

import numba as nb
import numpy as np

__all__ = ["greedy"]


@nb.njit(cache=True)
def greedy(indptr, indices, order, colours):
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
        c = 0
        while mark[c] == v:
            c += 1
        colours[v] = c
        if c + 1 > count:
            count = c + 1
    return count
