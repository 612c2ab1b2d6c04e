"""Imported last by the fork server that batch workers are forked from (the local executor's
and ``--cluster local:N``'s): what the template does once, for every worker, after its imports.

- ``gc.freeze()``: the objects of every module imported so far (pandas, WeasyPrint, the
  pipeline ...) stay out of the workers' garbage collections. Each worker's full collections
  walked them all (and wrote to their pages, copying memory shared with the template): ~0.5 s
  of CPU per worker over a 16-member batch, ~0.17 s frozen.
- A quick exit: the template only forks; when the batch ends it has nothing to flush or clean
  up, yet tearing down those modules took ~0.4 s that the batch waited for. Its workers never
  run this hook: the fork server ends its children with ``os._exit``.
"""

import atexit
import gc
import os
import sys
from multiprocessing import forkserver

__all__ = []


def _preloaded_by_fork_server() -> bool:
    """Is multiprocessing's fork server importing this (its ``main`` on the stack)? Anywhere else
    (a test importing every module), the quick exit would turn the process's exit status into 0."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code is forkserver.main.__code__:
            return True
        frame = frame.f_back
    return False


gc.freeze()
if _preloaded_by_fork_server():
    atexit.register(os._exit, 0)  # registered last, so it runs first: no teardown
