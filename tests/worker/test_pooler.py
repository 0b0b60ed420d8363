"""Behind PgBouncer in transaction mode: polling instead of LISTEN, no prepared statements."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import psycopg.conninfo
import pytest

from pgflow import Flow
from pgflow.worker import Worker

from .conftest import start_run, wait_for_run


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def pgbouncer_url(pgflow_database_url: str) -> Iterator[str]:
    binary = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )
    if binary is None:
        pytest.skip("pgbouncer is not installed (apt-get install pgbouncer); CI installs it")
    params = psycopg.conninfo.conninfo_to_dict(pgflow_database_url)
    host = str(params.get("host") or "127.0.0.1")
    server_port = str(params.get("port") or 5432)
    dbname, user = str(params["dbname"]), str(params.get("user") or "postgres")
    workdir = Path(tempfile.mkdtemp(prefix="pgflow-pgbouncer-"))
    workdir.chmod(0o777)  # PgBouncer runs as another user and writes its log here
    # PgBouncer refuses to run as root; run it as whoever may reach the server's socket.
    run_as = "nobody"
    if host.startswith("/"):
        run_as = pwd.getpwuid(Path(host).stat().st_uid).pw_name
    port = _free_port()
    (workdir / "users.txt").write_text(f'"{user}" ""\n')
    (workdir / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"{dbname} = host={host} port={server_port} dbname={dbname} user={user}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {workdir / 'users.txt'}\n"
        "pool_mode = transaction\ndefault_pool_size = 4\nmax_client_conn = 200\n"
        f"logfile = {workdir / 'pgbouncer.log'}\npidfile = {workdir / 'pgbouncer.pid'}\n"
    )
    for path in workdir.iterdir():
        path.chmod(0o666)
    command = [binary, str(workdir / "pgbouncer.ini")]
    if os.geteuid() == 0:
        command[1:1] = ["-u", run_as]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"postgresql://{user}@127.0.0.1:{port}/{dbname}"
    deadline = time.monotonic() + 10
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            break
        except psycopg.OperationalError:
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read() if proc.stdout else ""
                raise AssertionError(f"pgbouncer did not start: {out}") from None
            time.sleep(0.1)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


async def test_worker_through_a_transaction_pooler(
    pgbouncer_url: str, pgflow_database_url: str
) -> None:
    flow = Flow("pooled", timeout=5)

    @flow.step
    def first(run: Any) -> int:
        return int(run["n"])

    @flow.step(first)
    async def second(run: Any, n: int) -> int:
        return n * 10

    # Enough tasks that every statement runs far more often than psycopg's prepare threshold.
    async with Worker(
        [flow], database_url=pgbouncer_url, pooler=True, poll_interval=0.05, summary_interval=3600
    ) as worker:
        assert not worker.listening
        # The test watches the server directly: its own polling helper uses prepared
        # statements, which a transaction pooler cannot route (that is what pooler mode avoids).
        run_ids = [await start_run(pgflow_database_url, "pooled", {"n": n}) for n in range(15)]
        runs = [await wait_for_run(pgflow_database_url, run_id, timeout=60) for run_id in run_ids]
    assert [r["output"] for r in runs] == [{"second": n * 10} for n in range(15)]
