"""Inputs: what a run is asked to do, checked before any kernel starts.

    spec      the report spec (``notebooks/<name>.yml``): notebook, template, grid, schedule ...
    params    the notebook's parameters cell, read with ``ast``; values parsed and checked
    grid      parameter grids: every combination, ``last N`` weeks against an as-of day
    sensitive what never reaches a reader as it is: secret-looking names, URL passwords, paths
    prepare   all of it checked together: ``Prepared`` (what a run or a batch member runs)

Nothing is imported here.
"""
