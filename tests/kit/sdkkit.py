"""Helpers for the anaplan-sdk tier: the transport that points the SDK at the simulator, and
the scenario it runs on."""

from __future__ import annotations

from typing import Any

import httpx2

from target_anaplan.simulator import Simulator
from tests.kit.oauthkit import ROTATING, oauth_scenario
from tests.kit.simkit import with_archive_workspace

ROTATING_ACCESS_LIFETIME_S = 300
# A token the simulator never issued, as one left over from an earlier, long expired session.
# Given with credentials, the SDK uses it until its first 401 and then logs in through the
# Client's own transport (its login at construction would use a private client of its own).
STALE_TOKEN = "stale-token-from-an-earlier-session"


class SimulatorTransport(httpx2.HTTPTransport):
    """Sends each request for an Anaplan host to the simulator; anything else is an error."""

    def __init__(self, sim: Simulator) -> None:
        super().__init__()
        self.port = sim.port
        self.seen: list[str] = []  # "METHOD host/path" as the SDK addressed each request

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        """Forward a copy: the SDK sends the same request again after a login."""
        host = request.url.host
        if host != "anaplan.com" and not host.endswith(".anaplan.com"):
            raise AssertionError(f"the SDK addressed {host}, which is not an Anaplan host")
        self.seen.append(f"{request.method} {host}{request.url.path}")
        url = request.url.copy_with(scheme="http", host="127.0.0.1", port=self.port)
        headers = request.headers.copy()
        headers["Host"] = f"127.0.0.1:{self.port}"
        forwarded = httpx2.Request(request.method, url, headers=headers, stream=request.stream,
                                   extensions=request.extensions)  # fmt: skip
        return super().handle_request(forwarded)


def sdk_scenario() -> dict[str, Any]:
    """The example model, a second (archived) workspace to sort, and one OAuth client of each
    kind; the rotating client's access tokens live 5 minutes."""
    scenario = with_archive_workspace(oauth_scenario())
    for client in scenario["oauth_clients"]:
        if client["client_id"] == ROTATING["client_id"]:
            client["access_token_lifetime_s"] = ROTATING_ACCESS_LIFETIME_S
    return scenario
