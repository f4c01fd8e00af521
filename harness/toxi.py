"""A thin wrapper over toxiproxy-python.

Why wrap: the client has no request timeouts (a hung Toxiproxy would hang the run),
keeps its server address in class attributes (one server per process: set here before
each call), and has no toxic update. Proxies are created through the library; toxics
and enable/disable go through its ``APIConsumer`` with a timeout, which its own methods
cannot pass.
"""

from __future__ import annotations

from typing import Any

from toxiproxy.api import APIConsumer
from toxiproxy.server import Toxiproxy

API_TIMEOUT_S = 5.0


class Toxi:
    """One Toxiproxy server on loopback."""

    def __init__(self, host: str, port: int) -> None:
        self.server = Toxiproxy()
        self.host = host
        self.port = port

    def _api(self) -> Any:
        # The library keeps one server address per process, in class attributes; point
        # them at this server before every call, so two Toxi objects never cross wires.
        self.server.update_api_consumer(self.host, self.port)
        return APIConsumer

    def version(self) -> str:
        return str(self._api().get("/version", timeout=API_TIMEOUT_S).text)

    def proxy(self, name: str, upstream: str) -> int:
        """Create (or replace) proxy ``name`` -> ``upstream``; returns its listen port."""
        self._api()
        existing = self.server.get_proxy(name)
        if existing is not None:
            existing.destroy()
        proxy = self.server.create(upstream=upstream, name=name, listen=f"{self.host}:0")
        return int(str(proxy.listen).rsplit(":", 1)[1])

    def add_toxic(
        self,
        proxy: str,
        name: str,
        kind: str,
        attributes: dict[str, Any],
        stream: str = "downstream",
        toxicity: float = 1.0,
    ) -> None:
        body = {
            "name": name,
            "type": kind,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": attributes,
        }
        self._api().post(f"/proxies/{proxy}/toxics", json=body, timeout=API_TIMEOUT_S)

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._api().delete(f"/proxies/{proxy}/toxics/{name}", timeout=API_TIMEOUT_S)

    def set_enabled(self, proxy: str, enabled: bool) -> None:
        self._api().post(f"/proxies/{proxy}", json={"enabled": enabled}, timeout=API_TIMEOUT_S)

    def reset(self) -> None:
        """Re-enable every proxy and remove every toxic."""
        self._api().post("/reset", timeout=API_TIMEOUT_S)

    def proxy_names(self) -> list[str]:
        return sorted(self._api().get("/proxies", timeout=API_TIMEOUT_S).json())

    def destroy_all(self) -> None:
        for name in self.proxy_names():
            self._api().delete(f"/proxies/{name}", timeout=API_TIMEOUT_S)
