"""The lazy objects: the public ``hessian``/``jacobian`` and their :class:`Hessian` and
:class:`Jacobian` (:mod:`.hessian`), the engine behind them (:mod:`.problem`) and the pair
cache (:mod:`.cache`)."""
