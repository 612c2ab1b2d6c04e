"""Runs from the portal (issue 15): asking for a report's run, following it, and its history.

The toolkit's worker describes each report (a :class:`~publish_server.models.ReportProfile`),
takes queued :class:`~publish_server.models.RunRequest` rows and reports its runs
(:class:`~publish_server.models.RunLog`). The user half lives in ``parameters``, ``form_fields``,
``permissions``, ``run_requests``, ``activity``, ``views`` and ``user_api``.
"""
