"""The engine's global settings (:data:`settings`): memory budget, pass sizes, layout
thresholds, recording.

Every module that reads a setting imports it from here, the lowest layer of the
package (``hyperdual.plan.seeding.settings`` is the same object).
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Settings", "settings"]


@dataclass
class Settings:
    """Global defaults; every ``hessian()`` call may override them."""

    memory_budget: int = 512 * 2 ** 20
    chunk_elements: int = 2 ** 17
    #: Windowed lanes (:mod:`hyperdual.execute.window`) for 1-D inputs of at least this many
    #: elements, when the seeded columns span at most this fraction of them.
    window_min_size: int = 256
    window_max_fraction: float = 0.5
    #: ... and when a full lane set would hold at least this many elements (lane rows
    #: ``K + P`` times the input's length): below it, full lanes cost less than the
    #: windows' bookkeeping (measured: Rosenbrock ``H[0:2, 0:2]``, 5 rows, breaks even
    #: near 3000 inputs; a 3 x 3 block, 9 rows, near 1000).
    window_min_lanes: int = 12_000
    #: A request for at least this many pairs (and 4 per input) first finds the
    #: Hessian's sparsity pattern (:mod:`hyperdual.plan.pattern`) and seeds only the pairs
    #: that can be nonzero.
    pattern_min_pairs: int = 1024
    #: A whole Hessian (``H[:]``) of at least this many inputs is first tried by colouring
    #: (:mod:`hyperdual.lazy.coloured`): one pass seeded with colour indicators, recovered at
    #: the record's frontier; ``colouring=False`` always seeds pairs.
    colouring: bool = True
    colour_min_inputs: int = 64
    #: Batched passes over one 2-D input start with column lanes (:mod:`hyperdual.execute.columns`).
    column_lanes: bool = True
    #: ``hessian(func, xs)`` records ``func`` once on its value call and replays the record
    #: for every pass (:mod:`hyperdual.trace.record`); False calls ``func`` for every pass.
    trace: bool = False


settings = Settings()
