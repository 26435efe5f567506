"""Test configuration.

The engine runs small problems on NumPy twins of its Numba kernels until the
kernels are loaded (see hyperdual.execute.lanes.choose).  The suite loads the Numba
kernels up front, so every test exercises them; tests/test_kernels.py checks
that the NumPy twins agree with them.  HYPERDUAL_TEST_KERNELS=numpy runs the
suite on the twins instead.

Windowed lanes (hyperdual.execute.window) are used for long 1-D inputs only;
HYPERDUAL_TEST_WINDOWS=always seeds every 1-D input of every pass with
windowed lanes (the narrowest window covering its seeded columns), so the
whole suite checks that windows change no result.  HYPERDUAL_TEST_PATTERN=always
finds the sparsity pattern (hyperdual.plan.pattern) for every request without a batch,
so the whole suite checks that structural zeros are exact.  Tests that count
passes and evaluated pairs of small requests pin the default threshold with the
``default_pattern`` fixture (the doctests count pairs of functions whose pattern
is full).
Batched passes over one 2-D input use column lanes (hyperdual.execute.columns) by
default; HYPERDUAL_TEST_COLUMNS=off runs the suite with full lanes only.
Small 1-D pass arrays take the packed paths (hyperdual.execute.packed); HYPERDUAL_TEST_PACKED=off
runs the suite on the general paths only.  HYPERDUAL_TEST_THREADS=small splits
every kernel call of a few hundred elements over threads (hyperdual.execute.threads;
by default only calls of millions of lane entries split), so the whole suite
checks that threads change no result.  HYPERDUAL_TEST_TRACE=on records every
callable of ``hessian(func, xs)`` once and replays the record in each pass
(=off calls it per pass); tests of what a function sees in each pass pin the
per-pass mode with the ``per_pass`` fixture.  HYPERDUAL_TEST_COLOURING=always
tries the coloured pass (hyperdual.lazy.coloured) for every whole Hessian of a
function or record, whatever its size, so the whole suite checks it against the
seeded pairs' numbers (tests of the pair paths pin them with ``no_colouring``).

``.ci/run`` runs the suite in the default mode (the README's command), then once
in each of these modes (see there).
"""
import os

import pytest

import hyperdual
from hyperdual.execute import lanes
from hyperdual.plan.seeding import settings

if os.environ.get("HYPERDUAL_TEST_KERNELS", "numba") == "numba":
    hyperdual.load_kernels()
else:
    lanes.LOAD_AFTER_OP = lanes.LOAD_AFTER_TOTAL = float("inf")

if os.environ.get("HYPERDUAL_TEST_WINDOWS") == "always":
    settings.window_min_size, settings.window_max_fraction, settings.window_min_lanes = 0, 1.0, 0

if os.environ.get("HYPERDUAL_TEST_PATTERN") == "always":
    settings.pattern_min_pairs = 0

if os.environ.get("HYPERDUAL_TEST_COLOURING") == "always":
    settings.colour_min_inputs = 0  # every whole request of a record tries colouring first

if os.environ.get("HYPERDUAL_TEST_COLUMNS") == "off":
    settings.column_lanes = False

if os.environ.get("HYPERDUAL_TEST_THREADS") == "small":
    from hyperdual.execute import threads
    threads.MIN_ENTRIES, threads.MIN_CHUNK = 64, 97
    hyperdual.set_num_threads(max(2, hyperdual.get_num_threads()))

if os.environ.get("HYPERDUAL_TEST_TRACE") in ("on", "off"):
    settings.trace = os.environ["HYPERDUAL_TEST_TRACE"] == "on"

if os.environ.get("HYPERDUAL_TEST_PACKED") == "off":
    from hyperdual.execute import packed
    packed.switch.on = False


@pytest.fixture
def set_settings():
    """Set fields of ``hyperdual.settings.settings`` for one test; restored afterwards."""
    saved = dict(vars(settings))

    def apply(**fields):
        for name, value in fields.items():
            if name not in saved:
                raise AttributeError(f"hyperdual.settings.settings has no field {name!r}")
            setattr(settings, name, value)
    yield apply
    for name, value in saved.items():
        setattr(settings, name, value)


@pytest.fixture
def default_pattern(set_settings):
    """The default pattern threshold, whatever HYPERDUAL_TEST_PATTERN says, and pairs
    (no colouring: the tests of the pattern path)."""
    set_settings(pattern_min_pairs=1024, colouring=False)


@pytest.fixture
def no_pattern(set_settings):
    set_settings(pattern_min_pairs=2 ** 62, colouring=False)


@pytest.fixture
def no_colouring(set_settings):
    """Whole Hessians from seeded pairs, whatever HYPERDUAL_TEST_COLOURING says."""
    set_settings(colouring=False)


@pytest.fixture
def default_windows(set_settings):
    """The default window thresholds, whatever HYPERDUAL_TEST_WINDOWS says."""
    set_settings(window_min_size=256, window_max_fraction=0.5, window_min_lanes=12_000)


@pytest.fixture
def per_pass(set_settings):
    """``hessian(func, xs)`` calls ``func`` for every pass (no record), whatever
    HYPERDUAL_TEST_TRACE says: for tests of what a function sees in each pass."""
    set_settings(trace=False)


@pytest.fixture
def recorded(set_settings):
    """``hessian(func, xs)`` records ``func`` once and replays it, whatever HYPERDUAL_TEST_TRACE says."""
    set_settings(trace=True)


@pytest.fixture
def no_windows(set_settings):
    set_settings(window_min_size=10 ** 9)
