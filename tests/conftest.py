"""Test configuration.

The engine runs small problems on NumPy twins of its Numba kernels until the
kernels are loaded (see hyperdual.lanes.choose).  The suite loads the Numba
kernels up front, so every test exercises them; tests/test_kernels.py checks
that the NumPy twins agree with them.  HYPERDUAL_TEST_KERNELS=numpy runs the
suite on the twins instead.
"""
import os

import hyperdual
from hyperdual import lanes

if os.environ.get("HYPERDUAL_TEST_KERNELS", "numba") == "numba":
    hyperdual.load_kernels()
else:
    lanes.LOAD_AFTER_OP = lanes.LOAD_AFTER_TOTAL = float("inf")
