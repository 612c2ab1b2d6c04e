"""Runs: one run from start to finish, and the folder it leaves behind.

    pipeline    ``run_report`` (execute -> checks -> render) and ``render_run``
    run_folder  the run folder and its ``run.json``
    history     ``nbpress runs``: the history read back from the run folders

Nothing is imported here.
"""
