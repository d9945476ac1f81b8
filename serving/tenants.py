"""The tenants the API knows: the registry files, re-read at most every `ttl` seconds. A token for a tenant that
is not registered gets 403, so a valid token alone never conjures a tenant."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from blocks_pipelines.tenants.config import TenantConfig, TenantConfigError, load_tenant_file, tenant_files

log = logging.getLogger("blocks.serving")


class TenantDirectory:
    def __init__(self, tenants_dir: Path, ttl: float = 30.0):
        self.tenants_dir = tenants_dir
        self.ttl = ttl
        self._tenants: dict[str, TenantConfig] = {}
        self._loaded_at: float | None = None
        self._lock = threading.Lock()

    def get(self, tenant_id: str) -> TenantConfig | None:
        now = time.monotonic()
        if self._loaded_at is None or now - self._loaded_at > self.ttl:
            self._reload(now)
        return self._tenants.get(tenant_id)

    def ids(self) -> list[str]:
        self.get("")
        return sorted(self._tenants)

    def _reload(self, now: float) -> None:
        with self._lock:
            tenants = {}
            for path in tenant_files(self.tenants_dir):
                try:
                    t = load_tenant_file(path)
                except TenantConfigError as exc:  # one bad file must not lock every other tenant out
                    log.error("%s", exc)
                    continue
                tenants[t.id] = t
            self._tenants = tenants
            self._loaded_at = now
