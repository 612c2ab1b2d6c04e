"""A real, private PostgreSQL server for the tests (Debian's ``postgresql`` package).

``make test`` installs the package; this module creates a cluster in a temporary folder and
serves it on a Unix socket only (no TCP). PostgreSQL refuses to run as root, so under root
(as in CI) the server runs as the ``postgres`` system user the package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tests.helpers import free_port


def find_bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


@contextmanager
def postgres_server(*, listen: str = "", allow: str = "") -> Iterator[str]:
    """Start a throwaway cluster; yield a SQLAlchemy URL for its database ``nbpress``.

    With ``listen`` (an address) it also serves TCP there, trusting clients from the ``allow``
    network (CIDR): for hosts in other network namespaces; the URL then names that address.
    """
    # Under /tmp, not pytest's tmp_path: the postgres user must be able to reach the folder.
    base = Path(tempfile.mkdtemp(prefix="nbpress-pg-"))
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL server binaries not found (Debian package 'postgresql'); run `make test`")
    prefix: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
        os.chown(base, user.pw_uid, user.pw_gid)
    data, port = base / "data", free_port()  # only the socket file's number: no TCP
    run = lambda *args: subprocess.run([*prefix, *map(str, args)], check=True, capture_output=True, text=True)  # noqa: E731
    run(bin_dir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
    if listen:
        with (data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {allow} trust\n")
    options = f"-k {base} -p {port} -c listen_addresses='{listen}' -c fsync=off -c full_page_writes=off"
    run(bin_dir / "pg_ctl", "-D", data, "-o", options, "-w", "-t", "60", "-l", base / "server.log", "start")
    try:
        run(bin_dir / "createdb", "-h", base, "-p", port, "-U", "postgres", "nbpress")
        yield (f"postgresql+psycopg://postgres@{listen}:{port}/nbpress" if listen
               else f"postgresql+psycopg://postgres@/nbpress?host={base}&port={port}")
    finally:
        subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
