"""Imported once, last, by the template that ``--cluster local:N`` workers are forked from (see
:mod:`.dask_local`): the start-up work each worker would otherwise repeat after its fork, then
what every batch worker template does (:mod:`.fork_template`: ``gc.freeze()``, a quick exit).

Every worker sends the scheduler its package versions when it registers; looking them up
(installed-package metadata) cost each worker ~0.1 s of CPU. Looked up here, the cache is
inherited by every worker.
"""

from distributed.versions import get_versions

get_versions()

from . import fork_template  # noqa: E402,F401  (last: it freezes what is imported by now)
