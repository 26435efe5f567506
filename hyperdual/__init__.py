"""hyperdual: exact, lazy Hessians of plain NumPy functions.

Forward-mode hyper-dual numbers (Fike & Alonso) carried through NumPy code by
its own protocols, with Numba kernels for the lane arithmetic.
"""
from .array import HyperDual
from .context import PassMismatchError, SeedContext
from .rules import BinaryRule, register_ufunc
from . import chain as _chain  # noqa: F401  (ufunc machinery)
from .functions import register_function

__all__ = ["HyperDual", "PassMismatchError", "SeedContext", "BinaryRule", "register_ufunc",
           "register_function"]
__version__ = "0.1.0"
