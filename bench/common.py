"""What every benchmark script needs: a fresh database, manage.py, a server environment, gunicorn's start and stop."""

import os
import re
import signal
import socket
import subprocess
import sys
import urllib.parse
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def interrupt(signum, frame):
    """SIGTERM handler: unwind like Ctrl-C, so that the scripts' `finally` stops their servers."""
    raise KeyboardInterrupt


def recreate_database(database_url: str) -> None:
    """Drop and create the benchmark's own database (never a system one)."""
    parts = urllib.parse.urlsplit(database_url)
    name = parts.path.lstrip("/")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise SystemExit(f"Refusing odd database name {name!r}.")
    if name in {"postgres", "template0", "template1"}:
        raise SystemExit(f"Refusing to drop {name!r}.")
    admin_url = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def server_env(database_url: str, workdir: Path, *, settings_module: str = "config.settings",
               broker_db: int = 14) -> dict[str, str]:
    """The environment of a production-like process (DEBUG off) on the benchmark's database."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE=settings_module, DATABASE_URL=database_url, DEBUG="false",
        SECRET_KEY="bench-only-not-secret-" + os.urandom(8).hex(), ALLOWED_HOSTS="127.0.0.1",
        CELERY_BROKER_URL=f"redis://127.0.0.1:6379/{broker_db}", LOG_LEVEL="WARNING",
        VAR_DIR=str(workdir / "var"), PYTHONUNBUFFERED="1",
        # Plain http on loopback: no TLS proxy in front, so no redirect to https.
        SECURE_PROXY="false",
    )
    return env


def manage(env: dict[str, str], *command: str) -> str:
    """Run a manage.py command; its stdout, or exit with its output."""
    done = subprocess.run([PYTHON, "manage.py", *command], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(command[:1])} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn_gunicorn(env: dict[str, str], workers: int, port: int, workdir: Path) -> subprocess.Popen:
    """`gunicorn config.wsgi` with sync workers on 127.0.0.1:port, leading its own process group (for `stop`).

    Its output goes to workdir/gunicorn.log; the caller waits until it answers.
    """
    return subprocess.Popen(
        [str(Path(PYTHON).parent / "gunicorn"), "config.wsgi", "--workers", str(workers),
         "--bind", f"127.0.0.1:{port}", "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True,
        stdout=open(workdir / "gunicorn.log", "wb"), stderr=subprocess.STDOUT,
    )


def stop(server: subprocess.Popen) -> None:
    """Stop gunicorn (the master and its workers: the process group it leads)."""
    if server.poll() is not None:
        return
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    except ProcessLookupError:
        pass


def redacted(url: str) -> str:
    """The URL without its password, for printing."""
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        parts = parts._replace(netloc=parts.netloc.replace(":" + parts.password + "@", ":***@"))
    return urllib.parse.urlunsplit(parts)
