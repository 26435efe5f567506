"""Executing a pass: the :class:`~hyperdual.execute.array.HyperDual` array and its NumPy
protocols (:mod:`.array`), the chain rule on lanes (:mod:`.chain`), the array functions
(:mod:`.functions`), the lane layouts (:mod:`.packed`, :mod:`.window`, :mod:`.columns`),
and the kernels beneath them (:mod:`.lanes`, :mod:`.kernels`, :mod:`.threads`,
:mod:`.pool`, with the pass context of :mod:`.context`)."""
