"""Demo: ``nbpress demo`` and ``nbpress demo-data``.

    demo_data  the deterministic demo event log (SQLite)
    demo       demo runs of the Weekly Statistics report, published to a local portal

Nothing is imported here.
"""
