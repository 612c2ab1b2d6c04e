"""``nbpress preview``: a run's report served on loopback and rendered again as its templates,
CSS and spec change (and, with ``--execute``, run again when its notebook is saved).

``file_watch`` notices changes, ``rerender`` keeps the preview's renders in a temporary
folder (never in the kept run folder), ``preview_page`` serves them, ``serve`` ties them
together until Ctrl-C or SIGTERM.
"""
