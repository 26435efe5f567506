"""Recycled kernel outputs: a pool of large float64 buffers.

A fresh large allocation is mapped in by the OS page by page (each page zeroed
on first touch), which costs more than the kernel that fills it.  ``empty``
hands out a pooled buffer instead when nothing but the pool references it any
more, so reuse never changes a live array (lanes are never written in place
otherwise).
"""
from __future__ import annotations

import os
import sys
import threading

import numpy as np

__all__ = ["empty", "POOL_MIN_ENTRIES", "POOL_MAX_BYTES"]

#: Kernel outputs of at least this many float64 entries come from a pool of recycled
#: buffers: a fresh large allocation is mapped in by the OS page by page (the pages
#: zeroed on first touch), which costs more than the kernel that fills it.
POOL_MIN_ENTRIES = 2 ** 14
#: The pool keeps at most this many bytes, and 4 buffers per shape.
POOL_MAX_BYTES = 64 * 2 ** 20


class _Pool:
    lock = threading.Lock()
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


def empty(shape, entries):
    """``np.empty(shape)``, recycling a pooled buffer that nothing references any more.

    A pooled buffer is handed out again only when its reference count says that the
    pool alone holds it: no HyperDual, view or caller can still see it, so reuse
    never changes a live array (lanes are never written in place otherwise).
    """
    if entries < POOL_MIN_ENTRIES:
        return np.empty(shape)
    with _Pool.lock:
        buffers = _Pool.buffers.setdefault(shape, [])
        for k in range(len(buffers)):
            if _references(buffers, k) == _FREE:
                return buffers[k]
        buf = np.empty(shape)
        if len(buffers) < 4 and _Pool.nbytes + buf.nbytes <= POOL_MAX_BYTES:
            buffers.append(buf)
            _Pool.nbytes += buf.nbytes
        return buf


