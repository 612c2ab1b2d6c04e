"""The scheduler daemon behind ``nbpress schedule`` (APScheduler 3, jobs persisted in a database).

    jobs       the job store and the specs: sync at start, next fire times (``--list``)
    tick       one scheduled job: execute -> checks -> render -> publish, retries, owner e-mail
    transient  which failures are retried (kernel died, database or network unreachable)
    control    stopping: grace period, then cancelling running kernels cleanly
    lease      the leader lease row in the job store's database (compare-and-swap)
    leadership which of several daemons fires, renewing or watching the lease, and when to stop
    daemon     the process: signals, the scheduler, the orderly stop

Nothing is imported here: ``nbpress schedule --list`` needs only the specs and the triggers,
not papermill. Import from the modules (``toolkit.scheduler.tick`` ...).
"""
