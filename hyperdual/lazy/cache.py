"""The Hessian cache: values and a "computed" mask of unordered index pairs.

The flat Hessian of all inputs is symmetric, so entry ``(i, j)`` is stored once
under ``(min, max)``.  Storage is a dict of square tiles allocated on first
use, so a block of a 10 000-input Hessian costs one small tile, not N² memory,
while a full Hessian fills a handful of dense tiles.  With a batch every tile
carries the batch axis first.
"""
from __future__ import annotations

import numpy as np

__all__ = ["PairCache", "SparseCache"]

#: Side of a tile; inputs up to ``2 * TILE`` use one dense tile.
TILE = 64


class PairCache:
    """Values of ``H[b, lo, hi]`` (``lo <= hi``) and whether they are computed."""

    def __init__(self, n: int, batch: int | None):
        self.n, self.batch = n, batch
        self.tile = n if n <= 2 * TILE else TILE
        self.ntiles = -(-n // self.tile) if n else 1
        self.tiles: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    @property
    def empty(self) -> bool:
        """Whether nothing is stored yet."""
        return not self.tiles

    def _groups(self, lo, hi):
        """``((ti, tj), index)`` for the entries of each tile touched."""
        if self.ntiles == 1:
            yield (0, 0), slice(None)
            return
        T, nt = self.tile, self.ntiles
        if lo.size == 0:
            return
        one = self._one_tile(lo, hi)
        if one is not None:  # one tile (a block request): no sorting
            yield one, slice(None)
            return
        key = (lo // T) * nt + hi // T
        first, last = int(key.min()), int(key.max())
        if first == last:  # one tile (a block request): no sorting
            yield (first // nt, first % nt), slice(None)
            return
        if last < 2 ** 15:  # NumPy sorts 16-bit keys by radix sort: linear time
            key = key.astype(np.int16)
        order = np.argsort(key, kind="stable")
        ordered = key[order]
        cuts = np.concatenate(([0], np.flatnonzero(ordered[1:] != ordered[:-1]) + 1, [key.size]))
        for s, e in zip(cuts[:-1], cuts[1:]):
            k = int(ordered[s])
            yield (k // nt, k % nt), order[s:e]

    def _one_tile(self, lo, hi):
        """``(ti, tj)`` when a small request lies in one tile, else None."""
        if lo.size > 64 or lo.size == 0:
            return None
        T = self.tile
        ll, hl = lo.tolist(), hi.tolist()
        ti, tj = min(ll) // T, min(hl) // T
        if max(ll) // T == ti and max(hl) // T == tj:
            return ti, tj
        return None

    def _make(self, ti, tj):
        T, n = self.tile, self.n
        shape = (min(T, n - ti * T), min(T, n - tj * T))
        if self.batch is not None:
            shape = (self.batch,) + shape
        tile = (np.empty(shape), np.zeros(shape, dtype=bool))  # a value counts once its mask is set
        self.tiles[ti, tj] = tile
        return tile

    def lookup(self, b, lo, hi):
        """``(values, known)`` shaped like ``lo`` (``b``: sample numbers, or None)."""
        if not self.tiles:
            return np.zeros(lo.shape), np.zeros(lo.shape, dtype=bool)
        if self.ntiles == 1:  # one dense tile: plain fancy indexing
            tile = self.tiles[0, 0]
            key = (lo, hi) if b is None else (b, lo, hi)
            return tile[0][key], tile[1][key]
        shape = lo.shape
        lo, hi = lo.reshape(-1), hi.reshape(-1)
        b = None if b is None else b.reshape(-1)
        one = self._one_tile(lo, hi)
        if one is not None:
            tile = self.tiles.get(one)
            if tile is None:
                return np.zeros(shape), np.zeros(shape, dtype=bool)
            T = self.tile
            r, c = lo - one[0] * T, hi - one[1] * T
            key = (r, c) if b is None else (b, r, c)
            return tile[0][key].reshape(shape), tile[1][key].reshape(shape)
        values = np.zeros(lo.size)
        known = np.zeros(lo.size, dtype=bool)
        T = self.tile
        for (ti, tj), idx in self._groups(lo, hi):
            tile = self.tiles.get((ti, tj))
            if tile is None:
                continue
            r, c = lo[idx] - ti * T, hi[idx] - tj * T
            key = (r, c) if b is None else (b[idx], r, c)
            values[idx] = tile[0][key]
            known[idx] = tile[1][key]
        return values.reshape(shape), known.reshape(shape)

    def block(self, oa, na, ob, nb):
        """``(values, known)`` of the dense block ``H[oa:oa+na, ob:ob+nb]`` (no batch).

        Every tile is pasted twice, as stored (rows ``lo``, columns ``hi``) and
        mirrored (rows ``hi``, columns ``lo``), where it overlaps the block; only
        entries whose mask is set are copied.
        """
        if self.ntiles == 1 and oa == ob == 0 and na == nb == self.n and self.tiles:
            tv, tk = self.tiles[0, 0]  # the whole space in one tile: mirror its upper triangle
            upper = np.where(tk, tv, 0.0)
            return upper + np.triu(upper, 1).T, tk | tk.T
        values = np.zeros((na, nb))
        known = np.zeros((na, nb), dtype=bool)
        T = self.tile
        for (ti, tj), (tv, tk) in self.tiles.items():
            _paste(values, known, tv, tk, ti * T - oa, tj * T - ob)
            _paste(values, known, tv.T, tk.T, tj * T - oa, ti * T - ob)
        return values, known

    def fill_zeros(self, la, na, lb, nb):
        """Mark every unknown entry ``(lo, hi)``, ``lo`` in ``[la, la + na)``, ``hi`` in
        ``[lb, lb + nb)``, ``lo <= hi``, as a known zero (no batch); returns how many.
        Values are written before the mask, tile by tile."""
        T = self.tile
        filled = 0
        for ti in range(la // T, (la + na - 1) // T + 1):
            for tj in range(max(ti, lb // T), (lb + nb - 1) // T + 1):
                tv, tk = self.tiles.get((ti, tj)) or self._make(ti, tj)
                r0, r1 = max(la, ti * T) - ti * T, min(la + na, ti * T + tv.shape[0]) - ti * T
                c0, c1 = max(lb, tj * T) - tj * T, min(lb + nb, tj * T + tv.shape[1]) - tj * T
                if r0 >= r1 or c0 >= c1:
                    continue
                mask = ~tk[r0:r1, c0:c1]
                if ti == tj:  # lo <= hi within a diagonal tile
                    mask &= np.arange(r0, r1)[:, None] <= np.arange(c0, c1)[None, :]
                np.copyto(tv[r0:r1, c0:c1], 0.0, where=mask)
                tk[r0:r1, c0:c1] |= mask
                filled += int(np.count_nonzero(mask))
        return filled

    # A request of a few entries (no batch): Python lists, one tile entry at a time, cost
    # less than the array machinery above.
    def get_few(self, lo: list, hi: list):
        """``(values, missing)`` of pairs ``(lo[k], hi[k])`` (Python lists, no batch):
        the values as a list (0.0 where unknown) and the pairs not known yet."""
        T, tiles = self.tile, self.tiles
        values, missing = [], []
        for a, b in zip(lo, hi):
            tile = tiles.get((a // T, b // T))
            if tile is not None and tile[1][a % T, b % T]:
                values.append(float(tile[0][a % T, b % T]))
            else:
                values.append(0.0)
                missing.append((a, b))
        return values, missing

    def store_few(self, lo: list, hi: list, h):
        """:meth:`store` (no batch) of a few pairs given as Python lists; ``h`` is ``(P, 1)``.
        Values before masks, pair by pair."""
        T, tiles = self.tile, self.tiles
        for k, (a, b) in enumerate(zip(lo, hi)):
            key = (a // T, b // T)
            tile = tiles.get(key) or self._make(*key)
            tile[0][a % T, b % T] = h[k, 0]
            tile[1][a % T, b % T] = True

    def lookup_samples(self, samples, lo, hi):
        """``(values, known)`` of ``H[samples[s], lo, hi]``, shaped ``(len(samples), *lo.shape)``."""
        shape = (len(samples),) + lo.shape
        values = np.zeros(shape)
        known = np.zeros(shape, dtype=bool)
        if not self.tiles:
            return values, known
        lo, hi = lo.reshape(-1), hi.reshape(-1)
        flat_v, flat_k = values.reshape(len(samples), -1), known.reshape(len(samples), -1)
        whole = len(samples) == self.batch and (samples == np.arange(self.batch)).all()
        rows = slice(None) if whole else samples[:, None]
        T = self.tile
        for (ti, tj), idx in self._groups(lo, hi):
            tile = self.tiles.get((ti, tj))
            if tile is None:
                continue
            key = (rows, lo[idx] - ti * T, hi[idx] - tj * T)
            flat_v[:, idx] = tile[0][key]
            flat_k[:, idx] = tile[1][key]
        return values, known

    def store_all(self, full, copy=True):
        """Store every entry of an empty one-tile cache from the dense symmetric ``full``
        (``[B, n, n]`` with a batch): the tile is ``full``, known on and above the diagonal.
        ``copy=False``: the cache keeps ``full`` itself (the caller's own new array).
        Returns the pairs stored (per sample)."""
        if self.ntiles != 1 or self.tiles:
            raise ValueError("store_all fills an empty cache of one tile")
        # Every entry is known from now on, so nothing will write the mask: a read-only
        # broadcast of the shared upper-triangle mask serves (any write would raise).
        known = _upper_mask(self.n)
        if full.ndim == 3:
            known = np.broadcast_to(known, full.shape)
        self.tiles[0, 0] = (full.copy() if copy else full, known)
        return self.n * (self.n + 1) // 2

    def store(self, samples, lo, hi, h):
        """Store pass results ``h`` (``(P, rows)``) for pairs ``(lo[p], hi[p])``.

        Values are written before the mask, tile by tile: an interruption leaves
        entries unknown, never wrong.
        """
        T = self.tile
        for (ti, tj), idx in self._groups(lo, hi):
            tile = self.tiles.get((ti, tj)) or self._make(ti, tj)
            r, c = lo[idx] - ti * T, hi[idx] - tj * T
            if self.batch is None:
                tile[0][r, c] = h[idx, 0]
                tile[1][r, c] = True
            else:
                s = slice(None) if samples is None else samples[:, None]
                tile[0][s, r, c] = h[idx].T
                tile[1][s, r, c] = True


_UPPER_MASKS: dict = {}


def _upper_mask(n):
    """``i <= j`` for an ``n x n`` tile (shared, read-only)."""
    mask = _UPPER_MASKS.get(n)
    if mask is None:
        mask = _UPPER_MASKS[n] = np.arange(n)[:, None] <= np.arange(n)
        mask.flags.writeable = False
    return mask


def _paste(values, known, tv, tk, dr, dc):
    """Copy the known entries of a tile placed at row ``dr``, column ``dc`` of a block."""
    r0, r1 = max(0, dr), min(values.shape[0], dr + tv.shape[0])
    c0, c1 = max(0, dc), min(values.shape[1], dc + tv.shape[1])
    if r0 >= r1 or c0 >= c1:
        return
    sk = tk[r0 - dr:r1 - dr, c0 - dc:c1 - dc]
    np.copyto(values[r0:r1, c0:c1], tv[r0 - dr:r1 - dr, c0 - dc:c1 - dc], where=sk)
    known[r0:r1, c0:c1] |= sk


class SparseCache:
    """Every entry of a Hessian (no batch) known from its structural nonzeros: ``codes``
    (sorted, distinct ``i * n + j`` over both triangles) and their ``values``; every
    other entry is an exact zero.  It answers the requests :class:`PairCache` answers
    (nothing is stored into it: every entry is known), in memory of the nonzeros."""

    batch = None
    empty = False

    def __init__(self, n: int, codes: np.ndarray, values: np.ndarray, indptr=None):
        self.n, self.codes, self.values = n, codes, values
        self.indptr = np.searchsorted(codes, np.arange(n + 1, dtype=np.int64) * n) \
            if indptr is None else indptr  # row starts

    def _at(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        c = i * self.n + j
        if not self.codes.size:
            return np.zeros(c.shape)
        pos = np.minimum(np.searchsorted(self.codes, c), self.codes.size - 1)
        return np.where(self.codes[pos] == c, self.values[pos], 0.0)

    def lookup(self, b, lo, hi):
        """``(values, known)`` shaped like ``lo`` (every entry known)."""
        return self._at(lo, hi), np.ones(lo.shape, dtype=bool)

    def get_few(self, lo: list, hi: list):
        """``(values, missing)`` of a few pairs (Python lists): none missing."""
        return self._at(np.array(lo, dtype=np.int64), np.array(hi, dtype=np.int64)).tolist(), []

    def block(self, oa, na, ob, nb):
        """``(values, known)`` of the dense block ``H[oa:oa+na, ob:ob+nb]``."""
        n = self.n
        out = np.zeros(na * nb)
        lo, hi = self.indptr[oa], self.indptr[oa + na]
        rows, cols = np.divmod(self.codes[lo:hi], n)
        sel = (cols >= ob) & (cols < ob + nb)
        out[(rows[sel] - oa) * nb + cols[sel] - ob] = self.values[lo:hi][sel]
        return out.reshape(na, nb), np.ones((na, nb), dtype=bool)

    def csr(self):
        """``(data, indices, indptr)`` of the whole Hessian in CSR form (new arrays)."""
        return self.values.copy(), self.codes % self.n if self.n else self.codes.copy(), self.indptr.copy()
