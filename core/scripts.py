"""Lua scripts, kept in `.lua` files beside the module that owns them, run by their SHA.

A script that writes on behalf of an API caller may carry a `Guard`: the caller was let in
under the worker's copy of the operator configuration, and the guard makes the script write
nothing, and answer the published version, when that copy turns out to be stale. The worker
then checks the caller again under the new configuration (api.access). This spares the hot
path a round trip per request for the version, yet a revoked token is refused from the very
next request. Which key holds the version is the guard's business (system.config), so the
script itself never names a key outside the slot of the keys it is given.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.exceptions import NoScriptError

from core import redis_client

# Put before a guarded script: KEYS[1] holds the published version, ARGV[1] is the worker's.
# Both are removed, so the script proper sees only its own keys and arguments.
_GUARD = """
local published = tonumber(redis.call('GET', KEYS[1]) or '0')
if published > tonumber(ARGV[1]) then return {-2, published} end
table.remove(KEYS, 1)
table.remove(ARGV, 1)
"""


class ConfigMoved(Exception):
    """The operator configuration is newer than the worker's copy; the script wrote nothing."""

    def __init__(self, published: int) -> None:
        super().__init__(f"configuration version {published} is published")
        self.published = published


@dataclass(frozen=True)
class Guard:
    """Run a script only if the published version is no newer than `version`.

    `key_near(key)` names the key that holds the published version in the same Redis Cluster
    slot as `key` (the script's first key): a script may touch keys of one slot only."""

    key_near: Callable[[str], str]
    version: int


class LuaScript:
    """One Lua script from a file, run by its SHA; loaded into Redis when Redis does not know
    it (first use, a Redis restarted empty, another Redis)."""

    def __init__(self, path: Path) -> None:
        source = path.read_text()
        self._sources = {False: source, True: _GUARD + source}  # by whether it is guarded
        self._shas = {guarded: _sha(text) for guarded, text in self._sources.items()}

    def __call__(self, keys: list[str], args: list[Any], guard: Guard | None = None) -> list[Any]:
        if guard is not None:
            keys = [guard.key_near(keys[0]), *keys]
            args = [guard.version, *args]
        client = redis_client.for_this_thread()
        sha = self._shas[guard is not None]
        # EVALSHA as a plain command: redis-py's Script and evalsha wrappers cost a tenth of
        # a decision's Redis time. The cluster client finds the slot from the keys.
        try:
            result = client.execute_command("EVALSHA", sha, len(keys), *keys, *args)
        except NoScriptError:
            client.script_load(self._sources[guard is not None])  # on every master of a cluster
            result = client.execute_command("EVALSHA", sha, len(keys), *keys, *args)
        if guard is not None and len(result) == 2 and result[0] == -2:
            raise ConfigMoved(int(result[1]))
        return result


def _sha(source: str) -> str:
    return hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 - Redis names scripts so


def beside(module_file: str, name: str) -> LuaScript:
    """The script `name` in the folder of the module `module_file` (pass `__file__`)."""
    return LuaScript(Path(module_file).with_name(name))
