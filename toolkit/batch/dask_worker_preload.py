"""Imported once by the template that ``--cluster local:N`` workers are forked from (see
:mod:`.dask_local`): start-up work each worker would otherwise repeat after its fork.

Every worker sends the scheduler its package versions when it registers; looking them up
(installed-package metadata) cost each worker ~0.1 s of CPU. Looked up here, the cache is
inherited by every worker.
"""

from distributed.versions import get_versions

get_versions()
