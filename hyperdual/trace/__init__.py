"""Tracing: recording a function once and replaying it (:mod:`.record`), and reading a
record for whether it keeps the samples of a batch apart (:mod:`.batch`)."""
