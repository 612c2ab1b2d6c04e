"""The portal's settings: one declared table, read from the instance file and the environment.

Sources, later wins: defaults here -> ``<instance>/portal.toml`` -> environment variables
``NBPRESS_<NAME>`` -> the ``config`` mapping given to ``create_app`` (tests). Secrets have no
default; ``nbpress portal serve --dev`` generates them once into ``<instance>/dev-secrets.toml``.
Every problem stops start-up with one line naming the setting (:class:`ConfigError`).
"""

from __future__ import annotations

import os
import re
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError
from .hosts import parse_trusted_hosts
from .mail import parse_mail_url
from .storage import parse_files_url
from .rate_limits import LIMIT_SETTINGS, check_limit_setting, check_storage_url

__all__ = ["SETTINGS", "Setting", "instance_folder", "load_settings", "write_dev_secrets"]

_REQUIRED = object()
# A URL path prefix the front server maps to FILES_DIR: plain segments, none of them "." or "..".
_ENDPOINT = re.compile(r"https?://[^\s/@?#]+(/[^\s@?#]*)?")  # credentials go in their own settings, never a URL
_ACCEL_PREFIX = re.compile(r"(/(?!\.{1,2}(?:/|$))[A-Za-z0-9._~-]+)+")


@dataclass(frozen=True)
class Setting:
    name: str
    type: type
    default: Any
    doc: str
    secret: bool = False
    minimum: int | None = None
    maximum: int | None = None

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED


SETTINGS: tuple[Setting, ...] = (
    Setting("SECRET_KEY", str, _REQUIRED, "Flask signing key: at least 32 random characters.", secret=True),
    Setting("JWT_SECRET", str, _REQUIRED, "HS256 key for JWTs: at least 32 random characters, not SECRET_KEY.", secret=True),
    Setting("PASSWORD_PEPPER", str, "", "Optional HMAC key mixed into password hashes; kept outside the database.", secret=True),
    Setting("DATABASE_URL", str, "", "SQLAlchemy URL; default: SQLite (WAL) file portal.sqlite3 in the instance folder."),
    Setting("FILES_DIR", str, "", "Where published PDFs are stored; default: files/ in the instance folder."),
    Setting("ACCEL_REDIRECT_PREFIX", str, "", "Let the front server send file bytes: after every check and the audit row, a download answers with `X-Accel-Redirect: <prefix>/<ab>/<sha256>.pdf` (the stored, content-addressed path) for an nginx `internal` location over FILES_DIR (README, production). A path such as /_nbpress_files; empty: the portal sends files itself."),
    Setting("FILES_URL", str, "", "Store published PDFs in S3-compatible object storage instead of FILES_DIR: `s3://bucket/prefix` (needs `pip install 'nbpress[scale]'`; docs/scale-out.md). Uploads are still spooled through FILES_DIR. Empty: the folder store. Copy an existing folder store first with `nbpress portal files migrate --to s3://...`."),
    Setting("S3_ENDPOINT_URL", str, "", "The S3 API's URL for an S3-compatible server (MinIO, Ceph, ...), e.g. https://s3.internal:9000; empty: AWS's endpoint for S3_REGION."),
    Setting("S3_REGION", str, "", "The bucket's region (empty: boto3's default, e.g. AWS_DEFAULT_REGION)."),
    Setting("S3_ACCESS_KEY_ID", str, "", "Access key for FILES_URL; empty: boto3's own chain (AWS_* variables, instance role)."),
    Setting("S3_SECRET_ACCESS_KEY", str, "", "Secret key of S3_ACCESS_KEY_ID; never logged.", secret=True),
    Setting("S3_TIMEOUT_SECONDS", int, 30, "Read timeout of each object-store request (connecting: at most 10 s); a request that fails twice answers 503.", minimum=1, maximum=600),
    Setting("S3_PRESIGNED_DOWNLOADS", bool, False, "With FILES_URL: after every check and the audit row, a download answers 303 to a presigned S3 URL (file name and type set) instead of streaming the bytes through the portal. Clients must reach S3_ENDPOINT_URL."),
    Setting("S3_PRESIGN_SECONDS", int, 60, "How long a presigned download URL stays valid.", minimum=5, maximum=3600),
    Setting("MAX_UPLOAD_MB", int, 50, "Largest PDF accepted from a publisher, in MiB.", minimum=1, maximum=2048),
    Setting("SWEEP_AGE_SECONDS", int, 3600, "Start-up and `publications prune` remove upload leftovers (`.upload-*.part`) and stored files no publication references once they are this old; younger ones may be an upload in progress.", minimum=0, maximum=30 * 86400),
    Setting("AUTO_CREATE_REPORTS", bool, True, "Create a report on its first publication instead of refusing it."),
    Setting("ACCESS_TOKEN_MINUTES", int, 15, "Lifetime of an access token.", minimum=1, maximum=15),
    Setting("SESSION_HOURS", int, 12, "Absolute lifetime of a sign-in session (refresh tokens).", minimum=1, maximum=24),
    Setting("SESSION_IDLE_MINUTES", int, 30, "A session unused for this long ends.", minimum=5, maximum=720),
    Setting("PASSWORD_MIN_LENGTH", int, 12, "Shortest password accepted.", minimum=8, maximum=64),
    Setting("PASSWORD_MAX_LENGTH", int, 128, "Longest password accepted (checked before hashing).", minimum=64, maximum=1024),
    Setting("COOKIE_SECURE", bool, True, "Mark cookies Secure with a __Host- name (HTTPS only); off only for plain local development."),
    Setting("TRUSTED_PROXIES", int, 0, "Number of proxies in front whose X-Forwarded-For (client address), -Proto and -Host are believed.", minimum=0, maximum=5),
    Setting("TRUSTED_HOSTS", str, "localhost,127.0.0.1,[::1]", "Host names the portal answers for, comma-separated, without ports (any port is accepted); a request for another host (its Host header, or X-Forwarded-Host with TRUSTED_PROXIES) gets 400. The default serves local development only: production must set the public host name, e.g. reports.example.org."),
    Setting("RATELIMIT_STORAGE_URL", str, "memory://", "Where per-IP limits count: memory:// (in each process) or redis://[:PASSWORD@]HOST:PORT/DB (rediss:// for TLS), shared by every process and host; needs `pip install 'nbpress[scale]'`. The portal starts while Redis is away and its limited endpoints answer 503 until it is back (docs/scale-out.md)."),
    Setting("RATELIMIT_PER_PROCESS", bool, False, "Allow memory:// rate limits under several gunicorn workers, each counting on its own (N workers allow N times the per-IP limits). Without it the portal refuses to start that way (and answers 503 if a server reports several processes only at request time). For test benches on one machine."),
    Setting("RATELIMIT_SIGNIN_PER_IP", str, "10 per minute", "Failed password sign-ins per client IP, per form (browser sign-in, API sign-in, API password change): a rate limit such as `10 per minute` or `10/minute;100/hour`."),
    Setting("RATELIMIT_CODE_PER_IP", str, "30 per minute", "Failed emailed-code checks and resends per client IP, per form (browser and API; each challenge has its own caps too)."),
    Setting("RATELIMIT_RESET_ASK_PER_IP", str, "5 per 15 minutes", "Password-reset links asked for per client IP (every request counts)."),
    Setting("RATELIMIT_RESET_ASK_PER_ADDRESS", str, "3 per hour", "Password-reset links asked for per submitted address (hashed in the limiter's storage)."),
    Setting("RATELIMIT_RESET_SET_PER_IP", str, "10 per minute", "Failed new-password submissions from reset links per client IP."),
    Setting("RATELIMIT_WITHDRAW_PER_IP", str, "30 per minute", "Failed publication withdrawals (bad publisher token, unknown id) per client IP."),
    Setting("ARGON2_MEMORY_KIB", int, 19456, "Argon2id memory cost in KiB (tests lower it; never below 19 MiB in production).", minimum=8, maximum=4_194_304),
    Setting("ARGON2_TIME_COST", int, 2, "Argon2id iterations.", minimum=1, maximum=20),
    Setting("JWT_ISSUER", str, "nbpress-portal", "The iss claim of issued tokens."),
    Setting("JWT_AUDIENCE", str, "nbpress", "The aud claim of issued tokens."),
    Setting("PUBLIC_URL", str, "", "The portal's address as recipients reach it, e.g. https://reports.example.org: the links in notification, sign-in code and password-reset mails. Empty: the scheme and host of the request (for notifications, of the publish request)."),
    Setting("DIGEST_HOUR_UTC", int, 7, "Hour (UTC) at which daily digest mails go out to those who chose a digest.", minimum=0, maximum=23),
    Setting("NOTIFY_MAX_PER_MINUTE", int, 6000, "Notification mails one sender (`nbpress portal mail-worker`, or `serve --dev`) hands to SMTP per minute at most; 0: no cap.", minimum=0, maximum=1_000_000),
    Setting("NOTIFY_MAX_ATTEMPTS", int, 8, "Tries of one notification mail while SMTP is down or answers 4xx (waits 30 s, 60 s, 120 s ... up to an hour between them) before it is marked failed.", minimum=1, maximum=50),
    Setting("NOTIFY_ATTACH_MAX_MB", int, 5, "A report whose spec sets `notify.attach_pdf` gets its PDF attached to notifications only when it is at most this size (MiB); larger ones are linked only.", minimum=1, maximum=50),
    Setting("RUN_LEASE_SECONDS", int, 60, "Runs from the portal: how long a worker holds a run request it took without reporting progress; a lease that lapses (the worker died) queues the request again or fails it (RUN_MAX_ATTEMPTS).", minimum=10, maximum=3600),
    Setting("RUN_MAX_ATTEMPTS", int, 2, "Runs from the portal: tries of one run request; a worker that stops answering, or a failure the worker calls transient, queues it again until this many tries were made, then it fails.", minimum=1, maximum=10),
    Setting("RUN_QUEUE_MINUTES", int, 30, "Runs from the portal: a run request no worker took within this many minutes expires (the requester is told).", minimum=1, maximum=7 * 24 * 60),
    Setting("RUN_NOTEBOOK_MAX_MB", int, 20, "Runs from the portal: largest executed notebook (HTML) a worker may upload for a failed run, in MiB (413 above); stored gzipped.", minimum=1, maximum=200),
    Setting("MAIL_URL", str, "file:outbox", "Mail transport: smtp+starttls://host:587, smtps://host:465, smtp://host:25 (local relay, no login), or file:FOLDER (development outbox of .eml files, relative to the instance folder)."),
    Setting("MAIL_FROM", str, "Notebook Press <nbpress@localhost>", "Sender of sign-in codes and notices: `Name <address>` or an address."),
    Setting("MAIL_USERNAME", str, "", "SMTP login, sent only after TLS (empty: no login)."),
    Setting("MAIL_PASSWORD", str, "", "SMTP password.", secret=True),
    Setting("MAIL_EHLO", str, "", "Name given in EHLO; default: this host's fully qualified name."),
    Setting("MAIL_TIMEOUT_SECONDS", int, 10, "Timeout of each SMTP connection and command.", minimum=1, maximum=120),
    Setting("MAIL_CA_FILE", str, "", "PEM file of CAs to trust for the SMTP server, instead of the system's."),
    Setting("MAIL_CERT_FILE", str, "", "Client certificate (PEM) for SMTP servers that ask for one."),
    Setting("MAIL_KEY_FILE", str, "", "Private key of MAIL_CERT_FILE, when not in the same file."),
    Setting("CODE_HMAC_KEY", str, "", "HMAC key for stored sign-in codes; default: derived from SECRET_KEY with HKDF-SHA256.", secret=True),
    Setting("CODE_DIGITS", int, 8, "Digits in an emailed sign-in code.", minimum=6, maximum=10),
    Setting("CODE_MINUTES", int, 10, "Lifetime of an emailed sign-in code.", minimum=1, maximum=10),
    Setting("CODE_MAX_ATTEMPTS", int, 5, "Wrong codes accepted per challenge before it ends.", minimum=1, maximum=5),
    Setting("CODES_PER_HOUR", int, 5, "Codes emailed per account per hour (new and resent).", minimum=1, maximum=5),
    Setting("DEVICE_DAYS", int, 30, "How long a verified device stays trusted (device cookie Max-Age).", minimum=1, maximum=30),
    Setting("DEVICE_IP_POLICY", str, "prefix", "When a trusted device's IP needs a new code: exact (any new address), prefix (a new network, see the prefix lengths) or off."),
    Setting("DEVICE_IPV4_PREFIX", int, 24, "Network prefix length for DEVICE_IP_POLICY=prefix (IPv4).", minimum=8, maximum=32),
    Setting("DEVICE_IPV6_PREFIX", int, 64, "Network prefix length for DEVICE_IP_POLICY=prefix (IPv6).", minimum=16, maximum=128),
    Setting("LOGIN_FAILURES_PER_HOUR", int, 100, "Failed passwords per submitted email (an account or not) per hour before it takes no more (after 10, each try waits 2, 4, 8 ... up to 300 s); a device exempt only where its checks pass.", minimum=10, maximum=1000),
    Setting("DEVICE_MAC_CHECK", bool, True, "Compare the MAC address from the kernel's neighbour table (clients on a directly connected network only)."),
)


def _parse(setting: Setting, raw: Any, source: str) -> Any:
    def fail(problem: str) -> ConfigError:
        return ConfigError(f"setting {setting.name} (from {source}): {problem}")

    value = raw
    if setting.type is bool:
        if isinstance(raw, str):
            lowered = raw.strip().lower()
            if lowered not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                raise fail(f"expected true or false, got {raw!r}")
            value = lowered in {"1", "true", "yes", "on"}
        elif not isinstance(raw, bool):
            raise fail("expected true or false")
    elif setting.type is int:
        try:
            value = int(raw) if not isinstance(raw, bool) else None
        except (TypeError, ValueError):
            value = None
        if value is None:
            raise fail(f"expected an integer, got {raw!r}" if not setting.secret else "expected an integer")
        if setting.minimum is not None and value < setting.minimum:
            raise fail(f"must be at least {setting.minimum}")
        if setting.maximum is not None and value > setting.maximum:
            raise fail(f"must be at most {setting.maximum}")
    elif not isinstance(raw, str):
        raise fail("expected a string")
    return value


def instance_folder(explicit: str | os.PathLike | None = None) -> Path:
    """The instance folder: ``explicit``, else ``NBPRESS_INSTANCE``, else ``./instance`` (the one place it is read)."""
    return Path(explicit or os.environ.get("NBPRESS_INSTANCE") or Path.cwd() / "instance").resolve()


def load_settings(instance_path: Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Resolve every declared setting; raise :class:`ConfigError` on the first problem."""
    layers: list[tuple[str, dict[str, Any]]] = []
    for name in ("portal.toml", "dev-secrets.toml"):
        path = instance_path / name
        if path.exists():
            try:
                layers.append((str(path), tomllib.loads(path.read_text(encoding="utf-8"))))
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    env = {k.removeprefix("NBPRESS_"): v for k, v in os.environ.items() if k.startswith("NBPRESS_")}
    layers.append(("environment", env))
    layers.append(("create_app config", dict(overrides or {})))

    known = {s.name for s in SETTINGS}
    for source, layer in layers[:-2]:  # files must not carry typos; the environment may hold other tools' NBPRESS_*
        unknown = sorted(set(layer) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown setting {unknown[0]} (see publish_server/settings.py)")

    values: dict[str, Any] = {}
    for setting in SETTINGS:
        found = [(src, layer[setting.name]) for src, layer in layers if setting.name in layer]
        if found:
            source, raw = found[-1]
            values[setting.name] = _parse(setting, raw, source)
        elif setting.required:
            raise ConfigError(
                f"setting {setting.name} is required: set NBPRESS_{setting.name}, put it in "
                f"{instance_path / 'portal.toml'}, or run `nbpress portal serve --dev` for development"
            )
        else:
            values[setting.name] = setting.default
    for name in ("SECRET_KEY", "JWT_SECRET"):
        if len(values[name]) < 32:
            raise ConfigError(f"setting {name} is too short: use at least 32 random characters")
    if values["SECRET_KEY"] == values["JWT_SECRET"]:
        raise ConfigError("settings SECRET_KEY and JWT_SECRET must differ")
    if values["CODE_HMAC_KEY"] and len(values["CODE_HMAC_KEY"]) < 32:
        raise ConfigError("setting CODE_HMAC_KEY is too short: use at least 32 random characters (or leave it empty)")
    prefix = values["ACCEL_REDIRECT_PREFIX"].rstrip("/")
    if values["ACCEL_REDIRECT_PREFIX"] and not _ACCEL_PREFIX.fullmatch(prefix):
        raise ConfigError("setting ACCEL_REDIRECT_PREFIX: expected a path such as /_nbpress_files (letters, digits, . _ - ~ and /; no ..)")
    values["ACCEL_REDIRECT_PREFIX"] = prefix
    _check_object_storage(values)
    if values["DEVICE_IP_POLICY"] not in {"exact", "prefix", "off"}:
        raise ConfigError("setting DEVICE_IP_POLICY: expected exact, prefix or off")
    parse_trusted_hosts(values["TRUSTED_HOSTS"])  # raises ConfigError naming TRUSTED_HOSTS
    parse_mail_url(values["MAIL_URL"])  # raises ConfigError naming MAIL_URL
    check_storage_url(values["RATELIMIT_STORAGE_URL"])
    for name in LIMIT_SETTINGS:
        check_limit_setting(name, values[name])
    values["PUBLIC_URL"] = _public_url(values["PUBLIC_URL"])
    return values


def _check_object_storage(values: dict[str, Any]) -> None:
    if values["FILES_URL"]:
        try:
            parse_files_url(values["FILES_URL"])
        except ValueError as exc:
            raise ConfigError(f"setting FILES_URL: {exc}") from None
        if values["ACCEL_REDIRECT_PREFIX"]:
            raise ConfigError("settings ACCEL_REDIRECT_PREFIX and FILES_URL: the front server sends files from FILES_DIR only; "
                              "with object storage use S3_PRESIGNED_DOWNLOADS (or neither)")
    endpoint = values["S3_ENDPOINT_URL"]
    if endpoint and not _ENDPOINT.fullmatch(endpoint):
        raise ConfigError("setting S3_ENDPOINT_URL: expected http(s)://host[:port] with no user or password in it")


def _public_url(text: str) -> str:
    """``PUBLIC_URL`` without its trailing slash; :class:`ConfigError` unless http(s)://host[/path]."""
    text = text.strip().rstrip("/")
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment \
            or parts.username or parts.password or any(ord(ch) <= 32 or ord(ch) == 127 for ch in text):
        raise ConfigError("setting PUBLIC_URL: expected http(s)://host[:port][/path], e.g. https://reports.example.org")
    return text


def write_dev_secrets(instance_path: Path) -> Path:
    """Generate development secrets once (0600); later calls keep the existing file."""
    path = instance_path / "dev-secrets.toml"
    if not path.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("# Generated by `nbpress portal serve --dev`. Development only.\n")
            for name in ("SECRET_KEY", "JWT_SECRET", "PASSWORD_PEPPER", "CODE_HMAC_KEY"):
                handle.write(f'{name} = "{secrets.token_urlsafe(48)}"\n')
            handle.write("COOKIE_SECURE = false\n")
    return path


def settings_table_markdown() -> str:
    """The settings as a Markdown table (docs/portal-settings.md is checked against it)."""
    lines = ["| setting | default | what |", "|---|---|---|"]
    for s in SETTINGS:
        default = "(required)" if s.required else ("(empty)" if s.default == "" else str(s.default).lower() if isinstance(s.default, bool) else str(s.default))
        lines.append(f"| `NBPRESS_{s.name}` | {default} | {s.doc} |")
    return "\n".join(lines) + "\n"
