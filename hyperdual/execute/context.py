"""Seed contexts: the pair map and the identity of one evaluation pass.

Every :class:`~hyperdual.HyperDual` with derivative lanes belongs to a
:class:`SeedContext`.  The context records how many first-order seed
directions each side has (``k1`` rows in ``e1``, ``k2`` rows in ``e2``) and,
for each row ``p`` of the cross lane ``e12``, which pair of directions it
carries: ``(ip[p], jp[p])``.  All arrays of one pass share one context, so
every kernel can read ``e1[ip[p]]`` and ``e2[jp[p]]`` for row ``p``.

A context made by :func:`hyperdual.hessian` has a *token*: arrays of two
different passes never meet silently (:class:`PassMismatchError`).  Contexts
made by hand (``token=None``) are interchangeable when their pair maps are
equal, so textbook scalar hyper-duals built separately can be combined.
"""
from __future__ import annotations

import numpy as np

__all__ = ["SeedContext", "PassMismatchError", "LayoutCounts", "join_contexts"]


class PassMismatchError(ValueError):
    """Two hyper-dual arrays seeded by different passes (or pair maps) met."""


class LayoutCounts:
    """How a pass stored its lanes: inputs seeded with windowed lanes
    (:mod:`hyperdual.execute.window`) or column lanes (:mod:`hyperdual.execute.columns`), and how many
    times such lanes were expanded to full lanes because an operation could not keep
    them (summed into :class:`hyperdual.Stats`)."""

    __slots__ = ("windowed", "columns", "expanded")

    def __init__(self):
        self.windowed = self.columns = self.expanded = 0


class SeedContext:
    """Pair map shared by all arrays of one pass.

    Parameters
    ----------
    ip, jp : array_like of int, shape (P,)
        Row ``p`` of a cross lane holds the mixed derivative along first-order
        direction ``ip[p]`` (an ``e1`` row) and ``jp[p]`` (an ``e2`` row).
    k1, k2 : int
        Number of ``e1`` and ``e2`` seed directions.
    token : object, optional
        Pass identity; contexts with different non-None tokens never mix.
    """

    __slots__ = ("ip", "jp", "k1", "k2", "token", "pattern", "columns", "layouts")

    def __init__(self, ip, jp, k1: int, k2: int, token=None):
        ip = np.ascontiguousarray(ip, dtype=np.int64).reshape(-1)
        jp = np.ascontiguousarray(jp, dtype=np.int64).reshape(-1)
        if ip.shape != jp.shape:
            raise ValueError(f"pair maps differ in length: {ip.size} and {jp.size}")
        k1, k2 = int(k1), int(k2)
        if ip.size and (ip.min() < 0 or ip.max() >= k1 or jp.min() < 0 or jp.max() >= k2):
            raise ValueError(f"pair map refers to seed directions outside e1[0:{k1}] / e2[0:{k2}]")
        self.ip, self.jp, self.k1, self.k2, self.token = ip, jp, k1, k2, token
        self.pattern = None  # a hyperdual.plan.pattern.Recorder during a pattern pass
        self.columns = None  # a hyperdual.execute.columns.ColumnSeeds for column lanes
        self.layouts = None  # a LayoutCounts of the pass (hyperdual.plan.seeding.seed_inputs)

    @classmethod
    def trusted(cls, ip, jp, k1: int, k2: int) -> "SeedContext":
        """A pass context from pair maps already known to be valid int64 arrays."""
        self = object.__new__(cls)
        self.ip, self.jp, self.k1, self.k2, self.token = ip, jp, k1, k2, object()
        self.pattern = self.columns = self.layouts = None
        return self

    @property
    def npairs(self) -> int:
        """Number of cross-lane rows ``P``."""
        return self.ip.size

    @classmethod
    def all_pairs(cls, k1: int, k2: int, token=None) -> "SeedContext":
        """Every combination ``(i, j)``, row ``p = i * k2 + j``.

        Without a token the context is shared by every call with the same
        ``(k1, k2)`` (contexts are immutable), so hand-made hyper-duals meet
        without comparing pair maps.
        """
        if token is None:
            found = _ALL_PAIRS.get((k1, k2))
            if found is not None:
                return found
        ip = np.repeat(np.arange(k1), k2)
        jp = np.tile(np.arange(k2), k1)
        ctx = cls(ip, jp, k1, k2, token)
        if token is None and len(_ALL_PAIRS) < 64:
            _ALL_PAIRS[int(k1), int(k2)] = ctx
        return ctx

    @classmethod
    def shared(cls, ip, jp, k1: int, k2: int) -> "SeedContext":
        """A context without a token for a given pair map, shared by every call with the
        same map (contexts are immutable): hand-made hyper-duals with equal pair maps
        then meet without comparing them."""
        ctx = cls(ip, jp, k1, k2)
        key = (ctx.k1, ctx.k2, ctx.ip.tobytes(), ctx.jp.tobytes())
        found = _SHARED.get(key)
        if found is not None:
            return found
        if len(_SHARED) >= 64:
            _SHARED.clear()
        _SHARED[key] = ctx
        return ctx

    def compatible(self, other: "SeedContext") -> bool:
        if self is other:
            return True
        return (self.token is None and other.token is None and self.k1 == other.k1
                and self.k2 == other.k2 and self.ip.size == other.ip.size
                and self.ip.tobytes() == other.ip.tobytes() and self.jp.tobytes() == other.jp.tobytes())

    def __repr__(self) -> str:
        return f"SeedContext(k1={self.k1}, k2={self.k2}, npairs={self.npairs})"

    def __reduce__(self):
        # A pass token is only meaningful inside one process: an unpickled
        # context gets a fresh identity, so it never mixes with a live pass.
        token = None if self.token is None else object()
        return (SeedContext, (self.ip, self.jp, self.k1, self.k2, token))


_ALL_PAIRS: dict[tuple[int, int], SeedContext] = {}
_SHARED: dict[tuple, SeedContext] = {}


def join_contexts(a: SeedContext | None, b: SeedContext | None) -> SeedContext | None:
    """The context of a result with operands from ``a`` and ``b``."""
    if a is b or b is None:
        return a
    if a is None:
        return b
    if a.compatible(b):
        return a
    raise PassMismatchError(
        "hyper-dual arrays from two different seeding passes (or with different pair maps) "
        "were combined; their derivative lanes do not refer to the same seeds. Do not carry "
        "HyperDual values from one hessian()/jacobian() evaluation into another.")
