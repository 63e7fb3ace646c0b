"""Shared helpers for the OAuth and certificate tests against the simulator: the
scenario with one OAuth client of each kind, direct token calls, and target runs."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives import serialization

from target_anaplan.anaplan.oauth import OAuthRefreshAuth
from target_anaplan.anaplan.token_store import TokenStore
from target_anaplan.simulator import EXAMPLE_SCENARIO, Simulator
from tests.kit.simkit import MODEL_ID, USER
from tests.kit.singer import lines, record, schema, state
from tests.kit.targetkit import example_config

PLAIN = {"client_id": "plain-client", "client_secret": "plain-secret", "refresh_token": "plain-rt"}
ROTATING = {"client_id": "rot-client", "client_secret": "rot-secret", "refresh_token": "rot-rt"}
ROTATING_LIFESPAN_S = 43_000
PRODUCTS = {"products": {"file": "products.csv", "imports": ["Products from products.csv"]}}
CALLBACK = "https://example.com/anaplan/callback"
SECRET_SETTINGS = ("password", "oauth_client_secret", "oauth_refresh_token")
COLUMNS = ("Code", "Name", "Category", "Price", "Launched", "Active")


def oauth_scenario(certificates: list[str] | None = None) -> dict[str, Any]:
    """The example scenario plus one OAuth client of each kind (and optional certificates)."""
    scenario = json.loads(EXAMPLE_SCENARIO.read_text(encoding="utf-8"))
    if certificates:
        scenario["users"][0]["certificates"] = certificates
    callback = [CALLBACK]
    scenario["oauth_clients"] = [
        {"client_id": PLAIN["client_id"], "client_secret": PLAIN["client_secret"],
         "grant": "authorization_code", "rotating": False, "user": USER,
         "refresh_tokens": [PLAIN["refresh_token"]], "redirect_uris": callback},
        {"client_id": ROTATING["client_id"], "client_secret": ROTATING["client_secret"],
         "grant": "authorization_code", "rotating": True, "user": USER,
         "refresh_tokens": [ROTATING["refresh_token"]], "redirect_uris": callback,
         "refresh_token_lifespan_s": ROTATING_LIFESPAN_S},
        {"client_id": "device-client", "grant": "device", "rotating": True, "user": USER,
         "refresh_tokens": []},
    ]  # fmt: skip
    return scenario


def oauth_auth(sim: Simulator, client: dict[str, str], store: Path, **kwargs: Any):
    return OAuthRefreshAuth(
        requests.Session(),
        sim.url,
        client_id=client["client_id"],
        client_secret=client.get("client_secret"),
        refresh_token=kwargs.pop("refresh_token", client.get("refresh_token")),
        store=TokenStore(store),
        **kwargs,
    )


def api_status(sim: Simulator, header: str) -> int:
    """What /2/0 says to a call carrying this Authorization header."""
    response = requests.get(
        f"{sim.url}/2/0/workspaces", headers={"Authorization": header}, timeout=10
    )
    return response.status_code


def spend(sim: Simulator, client: dict[str, str], refresh_token: str) -> requests.Response:
    """Use a refresh token directly, as another machine would."""
    body = {"grant_type": "refresh_token", "client_id": client["client_id"],
            "client_secret": client["client_secret"], "refresh_token": refresh_token}  # fmt: skip
    return requests.post(f"{sim.url}/oauth/token", json=body, timeout=10)


def singer_input(codes: list[str]) -> str:
    """A products stream of these codes, then a STATE counting them."""
    return lines(
        schema("products", {c: {"type": "string"} for c in COLUMNS}, ["Code"]),
        *(record("products", product(code)) for code in codes),
        state({"products": len(codes)}),
    )


def product(code: str) -> dict[str, str]:
    return {"Code": code, "Name": f"Product {code}", "Category": "Tools", "Price": "1.5",
            "Launched": "2024-01-31", "Active": "true"}  # fmt: skip


def target_config(sim: Simulator, **credentials: Any) -> dict[str, Any]:
    """The target on the example model's products stream, with these credentials."""
    return example_config(sim, streams=PRODUCTS, **credentials)


def product_codes(sim: Simulator) -> set[str]:
    return {item["code"] for item in sim.list_items(MODEL_ID, "Products")}


def token_requests(sim: Simulator, path: str) -> int:
    """Successful calls of one auth path (a login, a token refresh)."""
    return sum(1 for r in sim.requests() if r["path"] == path and r["status"] in (200, 201))


def oauth_settings(client: dict[str, str], store: Path) -> dict[str, Any]:
    return {
        "oauth_client_id": client["client_id"],
        "oauth_client_secret": client["client_secret"],
        "oauth_refresh_token": client["refresh_token"],
        "oauth_token_store": str(store),
    }


def encrypted(key_pem: str, passphrase: str) -> str:
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode()),
    ).decode()


# What the person at the terminal does during a login


class ApprovingSleep:
    """Stands in for time.sleep: moves the simulator clock instead of waiting, and approves
    the device login on the third wait (after one on-time and one too-early poll)."""

    def __init__(self, sim: Simulator, stderr: io.StringIO) -> None:
        self.sim, self.stderr = sim, stderr
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.sim.advance_clock(1 if len(self.waits) == 2 else seconds)  # 2nd poll comes early
        if len(self.waits) == 3:
            approve_device_login(self.sim, self.stderr.getvalue())


def approve_device_login(sim: Simulator, stderr: str) -> None:
    """Approve the device login whose code the command printed, as its user would."""
    user_code = re.search(r"confirm the code (\S+)\.", stderr).group(1)
    assert sim.approve_device(user_code), user_code


class PastingStdin(io.StringIO):
    """The person: opens the printed authorize URL, then pastes where the browser landed."""

    def __init__(self, stderr: io.StringIO, *, code_only: bool = False) -> None:
        super().__init__()
        self.stderr, self.code_only = stderr, code_only

    def readline(self, *_args: object) -> str:
        url = re.search(r"(http://\S+/auth/authorize\?\S+)", self.stderr.getvalue()).group(1)
        landed = requests.get(url, allow_redirects=False, timeout=10).headers["Location"]
        assert landed.startswith(CALLBACK)
        return (landed.split("code=")[1].split("&")[0] if self.code_only else landed) + "\n"
