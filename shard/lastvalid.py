"""The last valid version of each config, kept in the store for shards that start later.

A shard that saw a config valid keeps serving that version when an edit makes it
invalid (`shard.configs`). A shard that starts after the bad edit only ever sees the
invalid version; without this record it would serve nothing for the config while the
others serve the last valid one, and the exposition would hold the config's series of
some buckets only. So every shard that compiles a new valid generation records it
(`save`), and a shard that finds a config invalid with nothing to fall back on looks
for it (`restore`). The record is the config object itself, minus its status.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from panopticon.errors import StoreError
from panopticon.store.contract import Store
from shard.configs import ConfigSet, ConfigState

log = logging.getLogger("panopticon.shard")


class LastValid:
    """Saves and restores the configs' last valid versions through `store`."""

    def __init__(self, store: Store, configs: ConfigSet) -> None:
        self.store = store
        self.configs = configs
        self._saved: dict[str, tuple[str, int]] = {}
        """Per config, the (uid, generation) this shard saved last: saved once each."""

    async def save(self, state: ConfigState) -> None:
        """Record `state`'s generation if it is valid and not recorded by this shard yet."""
        key = (state.uid, state.generation)
        if not state.valid or self._saved.get(state.name) == key:
            return
        body = {k: v for k, v in state.body.items() if k != "status"}
        record = orjson.dumps({"generation": state.generation, "body": body})
        try:
            await self.store.save_valid_config(state.name, record)
        except StoreError as e:
            log.warning("config %s: its valid version was not recorded: %s", state.name, e)
            return
        self._saved[state.name] = key

    async def restore(self, state: ConfigState) -> bool:
        """Serve the recorded last valid version of `state`'s config, if there is one
        for this object and `state` has nothing to serve. True when one is served now."""
        if state.served is not None:
            return False
        try:
            record = await self.store.valid_config(state.name)
        except StoreError as e:
            log.warning("config %s: its last valid version could not be read: %s", state.name, e)
            return False
        decoded = _decode(record)
        if decoded is None:
            return False
        body, generation = decoded
        return self.configs.restore(state.name, body, generation)

    async def forget(self, name: str) -> None:
        """The config was deleted."""
        self._saved.pop(name, None)
        try:
            await self.store.forget_valid_config(name)
        except StoreError as e:
            log.warning("config %s: its last valid version was not removed: %s", name, e)


def _decode(record: bytes | None) -> tuple[dict[str, Any], int] | None:
    """(body, generation) of a record; None if there is none or it is malformed (the
    store is shared: another version may have written it)."""
    if record is None:
        return None
    try:
        data = orjson.loads(record)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    body, generation = data.get("body"), data.get("generation")
    if not isinstance(body, dict) or type(generation) is not int:
        return None
    return body, generation
