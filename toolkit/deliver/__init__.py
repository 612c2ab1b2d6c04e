"""Deliver: the PDF to its readers, the news to the report's owner.

    portal_client  publishing to the portal over its HTTP API (never by importing it)
    owner_notice   telling the owner about blocked or failed runs (``notification.eml``)
    owner_mail     the same notices over SMTP, configured like the portal's mail

Nothing is imported here.
"""
