"""Real servers for the distributed tests, started and stopped on 127.0.0.1 by the tests:
PostgreSQL (Debian's server binaries; .ci/run installs them), an `mlflow server` on it serving
artifacts, and a Ray local cluster (`ray start --head`). No mocks.

Each server runs in its own process group, which teardown signals by its id (never by name:
`ray stop` would stop every Ray cluster on the machine).
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin() -> Path:
    """The folder of initdb/pg_ctl: on PATH, else Debian's /usr/lib/postgresql/<v>/bin."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found: install them "
                           "(apt-get install postgresql; .ci/run does)")
    return Path(found[-1]).parent


@dataclass
class Postgres:
    port: int
    user: str
    password: str

    def url(self, database: str, password: bool = True) -> str:
        secret = f":{self.password}" if password else ""
        return f"postgresql://{self.user}{secret}@127.0.0.1:{self.port}/{database}"


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its commands as the `postgres` user then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextmanager
def postgres_server(password: str, databases: tuple[str, ...] = ("mlflow", "optuna"),
                    user: str = "bench") -> Iterator[Postgres]:
    """A throw-away PostgreSQL cluster on a free 127.0.0.1 port; `user` (password auth over
    TCP) owns the given databases. Stopped and deleted on exit."""
    bindir = postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="pg"))  # short: the unix socket path has a limit
    pwfile = root / "pw"
    pwfile.write_text(password + "\n")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(pwfile, "postgres")
    data, port = root / "data", free_port()
    run = dict(check=True, capture_output=True, text=True, timeout=120)
    subprocess.run(_as_postgres([str(bindir / "initdb"), "-D", str(data), "-U", user,
                                 f"--pwfile={pwfile}", "--auth-host=scram-sha-256",
                                 "--auth-local=trust", "-E", "UTF8", "--no-sync"]), **run)
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"
    subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-o", options,
                                 "-l", str(root / "log"), "-w", "start"]), **run)
    try:
        env = {**os.environ, "PGPASSWORD": password}
        for database in databases:
            subprocess.run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port),
                            "-U", user, database], env=env, **run)
        yield Postgres(port, user, password)
    finally:
        subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                                     "stop"]), capture_output=True, timeout=60, check=False)
        shutil.rmtree(root, ignore_errors=True)


def wait_http(url: str, process: subprocess.Popen, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} not up after {timeout_s} s:\n{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, SIGKILL to whatever is left after 5 s."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


@contextmanager
def mlflow_server(backend_uri: str, folder: Path, env: dict[str, str] | None = None
                  ) -> Iterator[str]:
    """`mlflow server` on a free 127.0.0.1 port, backed by `backend_uri`, serving artifacts
    from `folder` (clients upload through it: workers need no shared disk). Yields its URL."""
    port = free_port()
    log = folder / "mlflow-server.log"
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [str(BIN / "mlflow"), "server", "--backend-store-uri", backend_uri,
           "--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1",
           "--port", str(port), "--workers", "1"]
    with log.open("w") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})}, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health", process, log, timeout_s=120)
        yield url
    finally:
        _stop(process)


@contextmanager
def ray_cluster(num_cpus: int = 2) -> Iterator[tuple[str, dict[str, str]]]:
    """A Ray head node (`ray start --head --block`) with `num_cpus` worker CPUs; yields its
    address (127.0.0.1:port, for `hydra.launcher.init.address`) and the environment a client
    needs: Ray 2.60 authenticates clients with a token, here a fresh one in RAY_AUTH_TOKEN.
    (Ray binds the node's own IP even when asked for 127.0.0.1; it answers on both.)"""
    port = free_port()
    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    temp = Path(tempfile.mkdtemp(prefix="ray"))  # short: Ray's socket paths have a limit
    cmd = [str(BIN / "ray"), "start", "--head", "--block", "--port", str(port),
           "--node-ip-address", "127.0.0.1", "--num-cpus", str(num_cpus), "--num-gpus", "0",
           "--include-dashboard", "false", "--disable-usage-stats", "--temp-dir", str(temp)]
    log = temp / "ray-start.log"
    with log.open("w") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, **env}, start_new_session=True)
    try:
        address = f"127.0.0.1:{port}"
        _wait_ray(address, process, log, env)
        yield address, env
    finally:
        _stop(process)
        shutil.rmtree(temp, ignore_errors=True)


def _wait_ray(address: str, process: subprocess.Popen, log: Path, env: dict[str, str],
              timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ray start exited:\n{log.read_text()[-3000:]}")
        status = subprocess.run([str(BIN / "ray"), "status", "--address", address],
                                capture_output=True, text=True, timeout=60, check=False,
                                env={**os.environ, **env})
        if status.returncode == 0:
            return
        time.sleep(1)
    raise RuntimeError(f"Ray cluster {address} not up after {timeout_s} s")
