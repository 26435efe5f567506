"""Test configuration.

The engine runs small problems on NumPy twins of its Numba kernels until the
kernels are loaded (see hyperdual.lanes.choose).  The suite loads the Numba
kernels up front, so every test exercises them; tests/test_kernels.py checks
that the NumPy twins agree with them.  HYPERDUAL_TEST_KERNELS=numpy runs the
suite on the twins instead.

Windowed lanes (hyperdual.window) are used for long 1-D inputs only;
HYPERDUAL_TEST_WINDOWS=always seeds every 1-D input of every pass with
windowed lanes (the narrowest window covering its seeded columns), so the
whole suite checks that windows change no result.  HYPERDUAL_TEST_PATTERN=always
finds the sparsity pattern (hyperdual.pattern) for every request without a batch,
so the whole suite checks that structural zeros are exact (the few tests that
count passes and evaluated pairs of small requests then see one pass more, the
pattern pass, and fewer pairs: those counts differ by design).
"""
import os

import hyperdual
from hyperdual import lanes
from hyperdual.seeding import settings

if os.environ.get("HYPERDUAL_TEST_KERNELS", "numba") == "numba":
    hyperdual.load_kernels()
else:
    lanes.LOAD_AFTER_OP = lanes.LOAD_AFTER_TOTAL = float("inf")

if os.environ.get("HYPERDUAL_TEST_WINDOWS") == "always":
    settings.window_min_size, settings.window_max_fraction = 0, 1.0

if os.environ.get("HYPERDUAL_TEST_PATTERN") == "always":
    settings.pattern_min_pairs = 0
