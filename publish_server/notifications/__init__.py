"""Telling recipients that a report arrived: a durable mail queue and its sender.

- :mod:`queue`: when a publication is created, one INSERT ... SELECT queues a job per reader
  (the grant rule of :mod:`access`) in the publish transaction; digest readers' jobs wait for
  the next ``DIGEST_HOUR_UTC``.
- :mod:`claims`: senders take due jobs with a lease (an atomic conditional UPDATE; on
  PostgreSQL ``FOR UPDATE SKIP LOCKED``) and record the outcome of each.
- :mod:`sender`: re-checks each job, sends a batch over one SMTP connection, marks each job sent
  right after its 250, retries with backoff, respects the per-minute cap.
- :mod:`compose`: the mails (deterministic Message-ID, RFC 8058 one-click unsubscribe headers).
- :mod:`preferences` and :mod:`unsubscribe`: each / daily digest / none per report, and the
  signed one-click link; :mod:`views`: the account form and the unsubscribe pages.
- :mod:`worker`: ``nbpress portal mail-worker`` and the thread of ``serve --dev``.
"""
