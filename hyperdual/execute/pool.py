"""Recycled kernel outputs: a pool of large float64 buffers.

A fresh large allocation is mapped in by the OS page by page (each page zeroed
on first touch), which costs more than the kernel that fills it.  ``empty``
hands out a pooled buffer instead when nothing but the pool references it any
more, so reuse never changes a live array (lanes are never written in place
otherwise).

Memory held: at most :func:`pool_limit` bytes in total (by default half of
``hyperdual.settings.settings.memory_budget``, i.e. 256 MiB, and never less than
``POOL_MAX_BYTES``) and 4 buffers per shape.  When a new buffer would pass the
limit, the buffers of the least recently requested shapes are dropped from the
pool first (a dropped buffer that is still in use stays alive with its array and
is freed with it), so the pool follows the current working set and its idle
memory never exceeds the limit.
"""
from __future__ import annotations

import os
import sys
import threading

import numpy as np

from ..settings import settings

__all__ = ["empty", "pool_limit", "POOL_MIN_ENTRIES", "POOL_MAX_BYTES"]

#: Kernel outputs of at least this many float64 entries come from a pool of recycled
#: buffers: a fresh large allocation is mapped in by the OS page by page (the pages
#: zeroed on first touch), which costs more than the kernel that fills it.
POOL_MIN_ENTRIES = 2 ** 14
#: The smallest limit of the pool in bytes (see :func:`pool_limit`).
POOL_MAX_BYTES = 64 * 2 ** 20
#: Buffers kept per shape.
POOL_PER_SHAPE = 4


def pool_limit() -> int:
    """Bytes the pool may hold: half the memory budget (``hyperdual.set_memory_budget``,
    default 512 MiB, so 256 MiB), at least ``POOL_MAX_BYTES``.

    A pass is planned to keep about the budget in live lanes, so a pool of half
    of it holds the outputs of the largest operations of a pass (e.g. all lanes of
    one ``x * y`` with 4 x 4 seeds and every pair at 10**6 elements, 192 MB).
    """
    return max(POOL_MAX_BYTES, int(settings.memory_budget) // 2)


class _Pool:
    heap_ready = False  # see _heap_for_lanes
    lock = threading.Lock()
    #: shape -> list of buffers; ordered from the least to the most recently requested shape.
    buffers: dict = {}
    nbytes = 0

    @classmethod
    def reset(cls):
        """A new lock and an empty pool (a forked child must not inherit a held lock)."""
        cls.lock, cls.buffers, cls.nbytes = threading.Lock(), {}, 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_Pool.reset)


def _references(buffers, k):
    """References to ``buffers[k]``: the list slot and the call's argument when free.
    The pool's check and the calibration below use this one function, so they count
    alike whatever the interpreter's reference-counting details."""
    return sys.getrefcount(buffers[k])


_FREE = _references([np.empty(1)], 0)  # a buffer only the pool holds


def _make_room(nbytes, limit, keep):
    """Drop buffers of the least recently requested shapes (never of ``keep``) until
    ``nbytes`` more fit under ``limit``; False if they cannot."""
    pool = _Pool.buffers
    if nbytes + sum(b.nbytes for b in pool.get(keep, ())) > limit:
        return False  # would not fit even alone with its own shape: drop nothing
    for shape in list(pool):
        if _Pool.nbytes + nbytes <= limit:
            break
        if shape == keep:
            continue
        _Pool.nbytes -= sum(b.nbytes for b in pool.pop(shape))
    return _Pool.nbytes + nbytes <= limit


#: Bytes of the one block that :func:`_heap_for_lanes` maps and frees: just under
#: glibc's largest dynamic mmap threshold (32 MiB on 64-bit systems).
HEAP_BLOCK_BYTES = 31 * 2 ** 20


def _heap_for_lanes() -> None:
    """Let lane-sized temporaries come from the heap, once per process.

    glibc serves allocations above its mmap threshold (128 KiB at start) with
    fresh mappings, whose pages fault in and are zeroed on first touch, and
    returns heap memory above twice that threshold to the OS; freeing a mapped
    block raises the threshold to the block's size.  A pass's temporaries (values,
    derivative factors: NumPy's allocations, which the pool cannot serve) are
    hundreds of KiB, so without this each one is mapped afresh, which measured at
    about half the time of a batched Hessian.  Mapping and freeing one untouched
    block of ``HEAP_BLOCK_BYTES`` raises the threshold as any program that once
    freed a large array has it (a few microseconds, no memory kept; elsewhere than
    glibc, a harmless allocation).
    """
    block = np.empty(HEAP_BLOCK_BYTES // 8)
    del block
    _Pool.heap_ready = True


def empty(shape, entries):
    """``np.empty(shape)``, recycling a pooled buffer that nothing references any more.

    A pooled buffer is handed out again only when its reference count says that the
    pool alone holds it: no HyperDual, view or caller can still see it, so reuse
    never changes a live array (lanes are never written in place otherwise).
    """
    if entries < POOL_MIN_ENTRIES:
        return np.empty(shape)
    if not _Pool.heap_ready:
        _heap_for_lanes()
    limit = pool_limit()
    with _Pool.lock:
        pool = _Pool.buffers
        buffers = pool.pop(shape, None)
        if buffers is None:
            buffers = []
        pool[shape] = buffers  # now the most recently requested shape
        for k in range(len(buffers)):
            if _references(buffers, k) == _FREE:
                return buffers[k]
        buf = np.empty(shape)
        if len(buffers) < POOL_PER_SHAPE and _make_room(buf.nbytes, limit, shape):
            buffers.append(buf)
            _Pool.nbytes += buf.nbytes
        return buf
