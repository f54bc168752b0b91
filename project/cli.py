"""The `scout` command. `scout serve` is the one way to start Scout.

It prepares the data directory, starts the embedded Redis when no REDIS_URL is given, applies
migrations, and runs gunicorn with several workers. Ctrl-C or SIGTERM stops the web server
(SIGTERM lets in-flight requests finish) and then the embedded Redis, which saves its data.

Django and Scout's apps are imported inside the functions that need them, not for want of a
better order: they may load only once the environment is prepared (the data directory, the
Prometheus multiprocess directory, which must be set before the client is imported) and, for
what each worker runs, only after gunicorn forked it.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger


class _Gunicorn(BaseApplication):
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):  # noqa: ANN201 - a WSGI callable
        from project.wsgi import application

        return application


class _RedactingLogger(Logger):
    """gunicorn's error log, with credentials in request lines and URIs redacted (as in
    Scout's own log records)."""

    def setup(self, cfg: Any) -> None:
        from core.observability.logs import RedactFilter

        super().setup(cfg)
        self.error_log.addFilter(RedactFilter())


M_ARENA_MAX = -8  # glibc's mallopt() parameter number


def _one_malloc_arena() -> None:
    """Let the workers' threads share one glibc malloc arena, unless MALLOC_ARENA_MAX says
    otherwise.

    By default each thread that allocates gets an arena of its own, and memory freed in one is
    not reused by another. The gain is small where few threads allocate at once: a worker with
    1,000 Tests loaded by one client held 132-139 MB with one arena, 139-141 MB with eight (two
    measurements each). Threads that share the GIL rarely allocate at once, so the one arena
    costs no measurable throughput. Workers inherit the setting when gunicorn forks them.
    """
    if "MALLOC_ARENA_MAX" in os.environ or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(M_ARENA_MAX, 1)
    except (OSError, AttributeError):  # not glibc (musl, for instance): nothing to tune
        pass


def _post_worker_init(worker: Any) -> None:
    """Start each worker's background duties once it is forked and has loaded Django, and let
    open log streams end at once on a graceful stop, so it never waits for a viewer."""
    from bandit import announcements, checkpoints, decision_log, schedules, windows
    from core.observability import metrics
    from core.observability.stream import SHUTTING_DOWN
    from system import config
    from webhooks import sender

    # Everything loaded so far lives as long as the worker: leave it out of the garbage
    # collector's full passes, which otherwise walk it all and pause every thread for 100-200
    # ms at a time under load (the decisions' p99).
    gc.collect()
    gc.freeze()
    metrics.start_writing()
    checkpoints.start_background()
    windows.start_background()
    decision_log.start_background()
    announcements.start_background()
    schedules.start_background()
    sender.start_background()
    config.prepare()
    previous = signal.getsignal(signal.SIGTERM)

    def stop(signum: int, frame: Any) -> None:
        SHUTTING_DOWN.set()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, stop)


def _bind(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _address() -> tuple[str, int]:
    """Where to listen: the environment wins, then what an operator stored over the API."""
    from django.conf import settings

    from system.models import SystemConfig

    stored = SystemConfig.load()
    host = settings.SCOUT_HOST if "SCOUT_HOST" in os.environ else stored.host or settings.SCOUT_HOST
    port = settings.SCOUT_PORT if "SCOUT_PORT" in os.environ else stored.port or settings.SCOUT_PORT
    return host, port


def _fresh_metrics_dir(data_dir: Path, port: int) -> None:
    """Give this server's workers an empty Prometheus multiprocess directory.

    The variable must be set before anything imports the Prometheus client (django.setup()
    does), and values left by an earlier run would be added to this run's counts. One
    directory per port keeps two servers sharing a data directory apart.
    """
    path = data_dir / "prometheus" / str(port)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)


def _child_exit(server: Any, worker: Any) -> None:
    """A worker ended: drop its live gauges (its counters stay, the host's totals with them)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def serve() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    import django
    from django.core.exceptions import ImproperlyConfigured

    try:
        from django.conf import settings

        _fresh_metrics_dir(settings.DATA_DIR, settings.SCOUT_PORT)
        django.setup()
    except ImproperlyConfigured as exc:
        print(f"scout: configuration error: {exc}", file=sys.stderr)
        return 2
    from django.core.management import call_command
    from django.db import connections

    from project.embedded_redis import EmbeddedRedis, EmbeddedRedisError

    # Workers (and any helper process) must agree on the data directory whatever their cwd.
    os.environ["SCOUT_DATA_DIR"] = str(settings.DATA_DIR)
    embedded = None
    if settings.SCOUT_EMBEDDED_REDIS:
        embedded = EmbeddedRedis(
            settings.DATA_DIR, settings.SCOUT_EMBEDDED_REDIS_SOCKET, settings.SCOUT_REDIS_FSYNC
        )
        try:
            # Its own supervisor restarts it at once whenever it ends (project.embedded_redis).
            embedded.start()
        except EmbeddedRedisError as exc:
            print(f"scout: {exc}", file=sys.stderr)
            return 1
    try:
        call_command("migrate", interactive=False, verbosity=0)
        call_command("scout_bootstrap")
        call_command("collectstatic", interactive=False, verbosity=0)
        host, port = _address()
        connections.close_all()  # never share a database connection with forked workers
        _one_malloc_arena()
        print(
            f"scout: serving on http://{_bind(host, port)} with "
            f"{settings.SCOUT_WORKERS} workers; data in {settings.DATA_DIR}",
            file=sys.stderr,
            flush=True,
        )
        _Gunicorn(
            {
                "bind": _bind(host, port),
                "workers": settings.SCOUT_WORKERS,
                "worker_class": "project.worker.ScoutThreadWorker",
                "threads": settings.SCOUT_THREADS,
                "graceful_timeout": 30,
                "timeout": 60,
                "keepalive": 5,
                "proc_name": "scout",
                "control_socket_disable": True,
                "accesslog": None,
                "errorlog": "-",
                "logger_class": _RedactingLogger,
                "loglevel": "info",
                "child_exit": _child_exit,
                "post_worker_init": _post_worker_init,
            }
        ).run()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="scout", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="start Scout (configured from the environment)")
    manage = commands.add_parser("manage", help="run a Django management command")
    manage.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)
    if options.command == "serve":
        sys.exit(serve())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["scout manage", *options.args])
