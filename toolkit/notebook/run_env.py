"""The marker of an nbpress run: the one name the executor and the notebook API share.

:mod:`toolkit.execute.papermill_run` sets ``NBPRESS_RUN_ID`` in the kernel's environment; inside
the kernel the notebook API reads it (a record name used twice is then an error, and
``tk.preview()`` does nothing). A leaf module, so neither side imports the other.
"""

__all__ = ["RUN_ENV"]

RUN_ENV = "NBPRESS_RUN_ID"
