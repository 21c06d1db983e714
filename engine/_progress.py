"""Progress generators: long engine computations are written as generators that yield the
fraction done between chunks and return their result, so that a caller can show progress
or stop between two chunks. This module has no dependencies, so any engine module can use
it without loading the expression machinery."""

from __future__ import annotations


def drain(steps):
    """Run a progress generator (a job that yields fractions) to its end; return its value."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value
