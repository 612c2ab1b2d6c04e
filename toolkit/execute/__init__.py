"""Execute: the notebook runs with papermill in a fresh kernel.

    papermill_run   ``execute()``: the papermill engine and translator, failures -> the error tree
    forked_kernels  kernels forked from a warm template process (batches), as jupyter_client sees them
    forkserver      that template process (``python -m toolkit.execute.forkserver``)

Nothing is imported here: the fork server runs this package's module and must stay light.
"""
