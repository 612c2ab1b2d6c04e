"""Notebook: what runs inside the analyst's kernel.

    analyst_api  ``tk.table``, ``figure``, ``metric``, ``text``, ``preview`` (re-exported by ``toolkit``)
    records      the record types, how they travel in the notebook and are read back
    chart_fonts  fallback fonts for every script in charts; the glyphs matplotlib could not draw
    preview      ``tk.preview()``: the records so far rendered with the report's template
    run_env      ``NBPRESS_RUN_ID``: the marker the executor sets and the API reads

Nothing is imported here: ``import toolkit`` must stay cheap.
"""
