"""Threads for long lanes: one kernel call split into column ranges run side by side.

An elementwise operation on long lanes is bound by memory bandwidth and, for
many lane rows (``x * y`` with ``P = 16`` pairs does some 140 flops per
element), by arithmetic as well; one core reaches neither limit of the
machine.  The blocked kernels (:func:`hyperdual.execute.kernels.chain_range`,
:func:`hyperdual.execute.kernels.product_range`) compute any range ``lo:hi`` of the
elements, release the GIL (``nogil=True``), and write only the columns of
their range, so ranges on different threads never touch the same output
byte.  The result is the same, bit for bit, whatever the number of threads:
every output element is computed by the same arithmetic from the same inputs.

A call is split only when it is long enough to pay for the hand-off (some
tens of microseconds): at least :data:`MIN_ENTRIES` output lane entries and
:data:`MIN_CHUNK` elements per thread.  Small problems (every pass of a small
Hessian) never reach this module.

The number of threads is :func:`get_num_threads` (default: the CPUs this
process may run on, at most 8, or the environment variable
``HYPERDUAL_NUM_THREADS``); ``set_num_threads(1)`` turns splitting off.
"""
from __future__ import annotations

import os
import threading

__all__ = ["get_num_threads", "set_num_threads", "split_call", "will_split"]

#: A call is split only when it writes at least this many lane entries (4 MiB) ...
MIN_ENTRIES = 2 ** 19
#: ... and each thread gets at least this many elements.
MIN_CHUNK = 2 ** 14


def _default_threads() -> int:
    env = os.environ.get("HYPERDUAL_NUM_THREADS")
    if env:
        try:
            count = int(env)
        except ValueError:
            raise ValueError(f"HYPERDUAL_NUM_THREADS must be a positive integer, got {env!r}") from None
        if count < 1:
            raise ValueError(f"HYPERDUAL_NUM_THREADS must be a positive integer, got {env!r}")
        return count
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


class _State:
    threads = _default_threads()
    executor = None  # a concurrent.futures.ThreadPoolExecutor, made when first needed
    lock = threading.Lock()


def get_num_threads() -> int:
    """The number of threads one long lane operation may use.

    Examples
    --------
    >>> import hyperdual
    >>> hyperdual.get_num_threads() >= 1
    True
    """
    return _State.threads


def set_num_threads(count: int) -> None:
    """Let one long lane operation use up to ``count`` threads (1: no threads).

    Operations on long lanes (millions of lane entries) split their elements
    into ranges computed side by side; results are the same bit for bit
    whatever the count.

    Parameters
    ----------
    count : int
        A positive number of threads.

    Examples
    --------
    >>> import hyperdual
    >>> before = hyperdual.get_num_threads()
    >>> hyperdual.set_num_threads(1)
    >>> hyperdual.get_num_threads()
    1
    >>> hyperdual.set_num_threads(before)
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"the number of threads must be a positive int, got {count!r}")
    with _State.lock:
        if count != _State.threads:
            _State.executor = None  # (an operation running now keeps the one it took)
        _State.threads = count


def _executor():
    with _State.lock:
        if _State.executor is None:
            from concurrent.futures import ThreadPoolExecutor  # (6 ms: not at import)

            _State.executor = ThreadPoolExecutor(_State.threads - 1, thread_name_prefix="hyperdual")
        return _State.executor


def _forget_executor() -> None:  # pragma: no cover - runs in a forked child
    """A forked child has none of its parent's threads: start a new executor when needed."""
    _State.executor = None
    _State.lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_executor)


def will_split(n: int, rows: int) -> bool:
    """Whether :func:`split_call` splits a call over ``n`` elements writing ``rows`` lane rows."""
    return _State.threads > 1 and rows * n >= MIN_ENTRIES and n >= 2 * MIN_CHUNK


def split_call(kernel, args: tuple, n: int, rows: int) -> list | None:
    """Run ``kernel(*args, lo, hi)`` over ``0:n`` in ranges on several threads.

    ``rows`` is the number of output lane rows (the call writes ``rows * n``
    entries).  Returns the ranges' results (a non-empty list), or None, having run
    nothing, when the call is too small to split or only one thread is allowed
    (:func:`will_split`); the caller then runs its one-thread kernel.  The calling
    thread computes the last range itself.
    """
    if not will_split(n, rows):
        return None
    parts = min(_State.threads, n // MIN_CHUNK)
    bounds = [n * k // parts for k in range(parts + 1)]
    pool = _executor()
    futures = [pool.submit(kernel, *args, bounds[k], bounds[k + 1]) for k in range(parts - 1)]
    try:
        last = kernel(*args, bounds[parts - 1], bounds[parts])
    finally:
        results = [future.result() for future in futures]
    return results + [last]
