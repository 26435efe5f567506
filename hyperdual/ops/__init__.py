"""The ops: the derivative table (:mod:`.rules`, one line per elementwise function) and
the registry (:mod:`.registry`) declaring every supported ufunc and array function once,
with its kind and what its output elements read.  Nothing here imports the rest of the
package."""
