"""Deliver: the PDF to its readers, the news to the report's owner.

    portal_client  publishing to the portal over its HTTP API (never by importing it)
    owner_notice   telling the owner about blocked or failed runs (``notification.eml``)
    owner_mail     the same notices over SMTP, configured like the portal's mail
    run_reports    the portal's run endpoints: profiles, run logs, notebooks, run requests
    run_profile    a report's parameter form, schedule in words and owners, for the portal
    run_log        a finished run's log line (and a failed run's notebook as HTML) for the portal

Nothing is imported here.
"""
