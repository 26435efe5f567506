"""hyperdual: exact, lazy Hessians of plain NumPy functions.

Forward-mode hyper-dual numbers (Fike & Alonso) carried through NumPy code by
its own protocols, with Numba kernels for the lane arithmetic.

>>> import numpy as np, hyperdual
>>> H = hyperdual.hessian(lambda x: np.sum(np.sin(x) * x), np.array([0.0, 1.0]))
>>> H[0, 0]
np.float64(2.0)
"""
from .execute.array import HyperDual
# The implementations register themselves with the array type (hyperdual.execute.array._IMPL,
# FUNCTIONS) when imported: the chain rule, the array functions, the packed, window and
# column layouts and the pattern pass.
from .execute import chain, functions, packed, window, columns  # noqa: F401
from .plan import pattern  # noqa: F401
from .execute.context import PassMismatchError, SeedContext
from .ops.rules import BinaryRule, register_ufunc
from .execute.functions import register_function
from .trace.record import trace_of, variable
from .plan.seeding import set_memory_budget
from .execute.lanes import load_kernels
from .execute.threads import get_num_threads, set_num_threads
from .lazy.hessian import Hessian, Jacobian, Stats, gradient, hessian, hvp, jacobian
from .optimize import Derivatives, derivatives, minimize

__all__ = ["HyperDual", "Hessian", "Jacobian", "Stats", "hessian", "jacobian", "hvp", "gradient",
           "derivatives", "Derivatives", "minimize",
           "variable", "trace_of", "register_ufunc", "register_function", "BinaryRule",
           "set_memory_budget", "load_kernels", "get_num_threads", "set_num_threads", "PassMismatchError", "SeedContext"]
__version__ = "0.1.0"
