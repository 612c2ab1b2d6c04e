"""Imported once by the template that ``--cluster local:N`` workers are forked from (see
:mod:`.dask_local`): start-up work each worker would otherwise repeat after its fork, and a
quick exit for the template itself.

- Every worker sends the scheduler its package versions when it registers; looking them up
  (installed-package metadata) cost each worker ~0.1 s of CPU. Looked up here, the cache is
  inherited by every worker.
- The template only forks; when the batch ends it has nothing to flush or clean up, yet
  tearing down distributed, pandas and WeasyPrint took ~0.4 s that the batch waited for. Its
  workers never run this hook: multiprocessing ends them with ``os._exit``.
"""

import atexit
import os

from distributed.versions import get_versions

get_versions()
atexit.register(os._exit, 0)  # registered last, so it runs first: no teardown
