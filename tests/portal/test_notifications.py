"""Notifications in-process: queueing at publish, re-checks, retries, digests, the mail itself,
preferences and one-click unsubscribe. Mail goes to a real aiosmtpd server on loopback."""

from __future__ import annotations

import datetime as dt
import logging
import time

import pytest
import sqlalchemy as sa

from publish_server.extensions import db
from publish_server.models import AuditEvent, Grant, MailJob, NotificationPreference, Report, User
from publish_server.notifications import worker
from publish_server.notifications.queue import next_digest_at
from tests.portal.notify_helpers import counts, publish, publisher, seed_readers
from tests.portal.smtp_server import SmtpServer, text_of


def use_smtp(app, port: int) -> None:
    app.config["NBPRESS"] = {**app.config["NBPRESS"], "MAIL_URL": f"smtp://127.0.0.1:{port}", "NOTIFY_MAX_PER_MINUTE": 0}
    app.extensions.pop("nbpress.mailer", None)


def drain(app, **options):
    return worker.run(app, once=True, retry_seconds=0.2, **options)


def jobs(**where) -> list[MailJob]:
    return list(db.session.scalars(sa.select(MailJob).filter_by(**where)))


SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # heavy; PostgreSQL: test_notification_workers.py


@SQLITE_ONLY
def test_a_thousand_readers_each_get_exactly_one_mail(app, client, passwords):
    emails = seed_readers(passwords, 1000)
    token = publisher(app)
    started = time.perf_counter()
    publish(client, token, summary="Orders up 4 % on last week")
    assert time.perf_counter() - started < 5
    assert len(jobs(status="queued")) == 1000
    publish(client, token)  # the same run again: nothing more is queued
    assert len(jobs()) == 1000
    with SmtpServer() as server:
        use_smtp(app, server.port)
        totals = drain(app)
    assert totals.sent == 1000
    assert counts(server.inbox) == {e: 1 for e in emails}
    assert len(jobs(status="sent")) == 1000


def test_the_mail_links_to_the_report_page_with_summary_and_one_click_unsubscribe(app, client, passwords):
    [address] = seed_readers(passwords, 1)
    publish(client, publisher(app), summary="Orders up 4 %", notify={"attach_pdf": False})
    with SmtpServer() as server:
        use_smtp(app, server.port)
        drain(app)
    [mail] = server.inbox.messages
    text = text_of(mail)
    assert "Weekly" in text and "2026-W48" in text and "Orders up 4 %" in text
    assert "http://localhost/reports/weekly" in text  # the publish request's host (no PUBLIC_URL)
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail["List-Unsubscribe"].startswith("<http://localhost/unsubscribe/")
    [job] = jobs()
    assert mail["Message-ID"] == job.message_id and f".{job.id}." in job.message_id
    assert not list(mail.iter_attachments())


def test_public_url_and_an_attached_pdf_when_the_report_asks(app, client, passwords):
    seed_readers(passwords, 1)
    app.config["NBPRESS"] = {**app.config["NBPRESS"], "PUBLIC_URL": "https://reports.example.org"}
    publish(client, publisher(app), notify={"attach_pdf": True})
    with SmtpServer() as server:
        use_smtp(app, server.port)
        drain(app)
    [mail] = server.inbox.messages
    assert "https://reports.example.org/reports/weekly" in text_of(mail)
    [pdf] = list(mail.iter_attachments())
    assert pdf.get_content_type() == "application/pdf" and pdf.get_content().startswith(b"%PDF")


def test_disabled_users_revoked_grants_opt_outs_and_withdrawals_get_nothing(app, client, passwords):
    emails = seed_readers(passwords, 4)
    token = publisher(app)
    publish(client, token)
    users = {u.email: u for u in db.session.scalars(sa.select(User))}
    users[emails[0]].active = False  # disabled after it was queued
    report = db.session.scalars(sa.select(Report)).one()
    db.session.add(NotificationPreference(user_id=users[emails[1]].id, report_id=report.id, mode="none"))
    db.session.commit()
    db.session.execute(sa.delete(Grant))  # the grant is revoked ...
    db.session.add(Grant(report_id=report.id, user_id=users[emails[2]].id))  # ... except for one reader
    db.session.add(Grant(report_id=report.id, user_id=users[emails[1]].id))
    db.session.commit()
    with SmtpServer() as server:
        use_smtp(app, server.port)
        totals = drain(app)
    assert counts(server.inbox) == {emails[2]: 1}
    assert totals.cancelled == 3
    publish(client, token, run_id="run-2")
    db.session.execute(sa.update(db.metadata.tables["publications"]).values(withdrawn_at=dt.datetime(2026, 12, 1)))
    db.session.commit()
    with SmtpServer() as server:
        use_smtp(app, server.port)
        drain(app)
    assert not server.inbox.messages


@SQLITE_ONLY
def test_smtp_down_for_part_of_the_batch_then_back_each_gets_exactly_one(app, client, passwords, caplog):
    emails = seed_readers(passwords, 300)
    publish(client, publisher(app))
    server = SmtpServer()
    use_smtp(app, server.port)
    server.inbox.refuse = ""
    with server:
        original = server.inbox.handle_DATA
        seen = []

        async def flaky(srv, session, envelope):  # 250 for 120 mails, then the server goes away
            seen.append(1)
            if len(seen) > 120:
                return "421 shutting down"
            return await original(srv, session, envelope)

        server.inbox.handle_DATA = flaky
        with caplog.at_level(logging.WARNING, logger="publish_server.notifications.sender"):
            first = drain(app)
    assert first.sent == 120 and first.retried == 80  # the rest of that batch of 100; the others were not taken yet
    assert "SMTP unavailable" in caplog.text and "80 notification mails back in the queue" in caplog.text
    assert drain(app).sent == 0  # SMTP is down (stopped): nothing sent, jobs wait for their retry
    with SmtpServer() as again:
        use_smtp(app, again.port)
        time.sleep(0.5)  # the backoff (0.2 s, then 0.4 s) has passed
        second = drain(app)
        if second.sent < 180:  # a retry still waiting: one more pass after its backoff
            time.sleep(1)
            second.add(drain(app))
    assert second.sent == 180
    total = counts(server.inbox) + counts(again.inbox)
    assert total == {e: 1 for e in emails}
    assert max(j.attempts for j in jobs()) >= 1


def test_gives_up_after_max_attempts(app, client, passwords, caplog):
    seed_readers(passwords, 2)
    app.config["NBPRESS"] = {**app.config["NBPRESS"], "NOTIFY_MAX_ATTEMPTS": 2}
    publish(client, publisher(app))
    use_smtp(app, 1)  # nothing listens on port 1: connection refused
    with caplog.at_level(logging.WARNING):
        drain(app)
        time.sleep(0.3)
        drain(app)
    assert [j.status for j in jobs()] == ["failed", "failed"]
    assert all(j.last_error and "Connection refused" in j.last_error for j in jobs())


def test_digest_users_get_one_digest_listing_the_publications(app, client, passwords):
    emails = seed_readers(passwords, 2)
    token = publisher(app)
    digest_user = db.session.scalars(sa.select(User).where(User.email == emails[0])).one()
    report = db.session.scalars(sa.select(Report)).one()
    db.session.add(NotificationPreference(user_id=digest_user.id, report_id=report.id, mode="digest"))
    db.session.commit()
    publish(client, token, run_id="run-1", period_label="2026-W47")
    publish(client, token, run_id="run-2", period_label="2026-W48")
    digests = jobs(kind="digest")
    assert len(digests) == 2 and all(j.next_attempt_at.minute == 0 for j in digests)
    db.session.execute(sa.update(MailJob).where(MailJob.kind == "digest").values(next_attempt_at=dt.datetime(2000, 1, 1)))
    db.session.commit()
    with SmtpServer() as server:
        use_smtp(app, server.port)
        drain(app)
    got = counts(server.inbox)
    assert got == {emails[0]: 1, emails[1]: 2}
    [digest] = server.inbox.to(emails[0])
    assert "2026-W47" in text_of(digest) and "2026-W48" in text_of(digest)


def test_next_digest_time():
    assert next_digest_at(dt.datetime(2026, 12, 2, 6, 59), 7) == dt.datetime(2026, 12, 2, 7, 0)
    assert next_digest_at(dt.datetime(2026, 12, 2, 7, 0, 1), 7) == dt.datetime(2026, 12, 3, 7, 0)


def _unsubscribe_link(app, client, passwords) -> tuple[str, list[str]]:
    emails = seed_readers(passwords, 2)
    seed_readers(passwords, 0, report="other")  # the same group also reads another report
    token = publisher(app)
    publish(client, token)
    publish(client, token, report="other", run_id="o-1")
    app.extensions["nbpress.mailer"] = None
    app.extensions.pop("nbpress.mailer")
    drain(app)  # MAIL_URL memory: the recording mailer
    mail = next(m for m in app.extensions["nbpress.mailer"].sent if emails[0] in str(m["To"]) and "Weekly" in str(m["Subject"]))
    return mail["List-Unsubscribe"].strip("<>").removeprefix("http://localhost"), emails


def test_unsubscribe_get_changes_nothing_and_post_unsubscribes_only_that_report(app, client, passwords):
    link, emails = _unsubscribe_link(app, client, passwords)
    page = client.get(link)
    assert page.status_code == 200 and b"Unsubscribe" in page.data
    assert db.session.scalar(sa.select(sa.func.count()).select_from(NotificationPreference)) == 0
    done = client.post(link, data={"List-Unsubscribe": "One-Click"})  # RFC 8058, no sign-in, no cookie
    assert done.status_code == 200
    [pref] = db.session.scalars(sa.select(NotificationPreference)).all()
    user = db.session.scalars(sa.select(User).where(User.email == emails[0])).one()
    assert (pref.user_id, pref.report.slug if hasattr(pref, "report") else db.session.get(Report, pref.report_id).slug, pref.mode) == (user.id, "weekly", "none")
    assert db.session.scalars(sa.select(AuditEvent).where(AuditEvent.event == "notifications_unsubscribed")).one().user_id == user.id
    assert client.post(link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")).status_code == 404  # tampered
    assert client.get("/unsubscribe/nonsense").status_code == 404


def test_the_account_page_form_sets_each_digest_or_none(app, client, passwords, make_user, login):
    seed_readers(passwords, 1)
    make_user("ana@example.org", groups=("readers",))
    publish(client, publisher(app))
    login(client, "ana@example.org")
    page = client.get("/account")
    assert b'name="mode-' in page.data and b"Daily digest" in page.data
    report = db.session.scalars(sa.select(Report)).one()
    forged = client.post("/account/notifications", data={f"mode-{report.id}": "none"})  # no CSRF value
    assert forged.status_code == 403
    csrf = client.get_cookie("csrf_access_token").value
    saved = client.post("/account/notifications", data={f"mode-{report.id}": "digest", "mode-999": "none", "csrf_token": csrf})
    assert saved.status_code == 303
    assert [(p.report_id, p.mode) for p in db.session.scalars(sa.select(NotificationPreference))] == [(report.id, "digest")]
    assert client.post("/account/notifications", data={f"mode-{report.id}": "loud", "csrf_token": csrf}).status_code == 400


def test_the_sign_in_code_and_reset_mails_link_to_the_portal(app, client, make_user, login):
    make_user("ana@example.org")
    login(client, "ana@example.org")
    code_mail = next(m for m in app.extensions["nbpress.mailer"].sent if "code" in str(m["Subject"]))
    assert "Notebook Press: http://localhost/" in text_of(code_mail)
    app.config["NBPRESS"] = {**app.config["NBPRESS"], "PUBLIC_URL": "https://reports.example.org"}
    client.get("/password/forgot")
    csrf = client.get_cookie("reset_csrf")
    client.post("/password/forgot", data={"email": "ana@example.org", "reset_csrf": csrf.value}).close()  # closed: the mail goes out
    reset_mail = next(m for m in app.extensions["nbpress.mailer"].sent if "Reset" in str(m["Subject"]))
    assert "Notebook Press: https://reports.example.org/" in text_of(reset_mail)


def test_senders_claiming_at_the_same_moment_never_share_a_job(app, client, passwords):
    import threading

    from publish_server.notifications import claims

    seed_readers(passwords, 400)
    publish(client, publisher(app))
    db.session.remove()
    taken: dict[str, list[int]] = {}
    sizes: list[int] = []
    start = threading.Barrier(4)

    def sender(owner: str) -> None:
        with app.app_context():
            mine = taken.setdefault(owner, [])
            start.wait()
            while batch := claims.claim(owner, limit=20, lease=dt.timedelta(seconds=60), kind="publication"):
                sizes.append(len(batch))
                mine.extend(job.id for job in batch)
            db.session.remove()

    threads = [threading.Thread(target=sender, args=(f"s{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    every = [job for ids in taken.values() for job in ids]
    assert len(every) == len(set(every)) == 400
    assert max(sizes) <= 20  # a claim takes at most its limit (PostgreSQL once took every due row: see claims.claim)
    assert {o for j in jobs() for o in [j.lease_owner]} == set(taken) - {o for o, ids in taken.items() if not ids}
