"""The proof suite: API fuzzing, the bad-input table, load and faults.

Every case records what it proves (:mod:`tests.proof.recorder`); ``python -m tests.proof.report``
turns the records of a run into ``docs/reliability.md``. ``NBPRESS_PROOF=full`` (``make proof``)
runs the full profiles, anything else the quick ones (``make test``).
"""
