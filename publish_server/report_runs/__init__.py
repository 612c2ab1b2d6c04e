"""Runs from the portal (issue 15), the worker-facing half.

The toolkit's worker talks to the portal over HTTP with a publisher token: it describes each
report (:mod:`profiles`: parameter schema, schedule, owners), reports its runs (run logs and a
failed run's notebook), and takes run requests with a lease (:mod:`claims`). A token acts only
for its project (:mod:`projects`). The requester hears once when a request ends
(:mod:`requester_mail`, sent by the mail worker). The views are :mod:`worker_api`.
"""
