"""Which hosts serve a region.

Anaplan has no discovery endpoint: each region's Integration, auth and OAuth hosts are
a fixed table (Anaplan Support "URL, IP, and allowlist requirements"). Legacy regions
share the global hosts; newer ones have their own; AU1 is irregular.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Hosts:
    """Base URLs of one Anaplan region, without trailing slashes, and where each came from."""

    api_base_url: str  # Integration API root, including /2/0
    auth_base_url: str  # serves /token/*
    oauth_base_url: str  # serves /oauth/*
    # Base URL -> the setting that chose it ("api_base_url", "region eu1"), for messages.
    origins: Mapping[str, str] = field(default_factory=dict, compare=False)

    def origin(self, url: str) -> str:
        """The setting that chose the host of ``url``."""
        matches = [base for base in self.origins if url.startswith(base)]
        return self.origins[max(matches, key=len)] if matches else "region"


def _hosts(api: str, auth: str, oauth: str) -> Hosts:
    return Hosts(f"https://{api}/2/0", f"https://{auth}", f"https://{oauth}")


def _own_hosts(prefix: str) -> Hosts:
    """A newer region with its own {prefix}.api / .auth / .app hosts."""
    return _hosts(
        f"{prefix}.api.anaplan.com", f"{prefix}.auth.anaplan.com", f"{prefix}.app.anaplan.com"
    )


_GLOBAL = _hosts("api.anaplan.com", "auth.anaplan.com", "us1a.app.anaplan.com")

REGIONS: Mapping[str, Hosts] = MappingProxyType(
    {
        "us1": _GLOBAL,
        "us2": _GLOBAL,
        "us5": _GLOBAL,
        "us7": _GLOBAL,
        "us9": _own_hosts("us9"),
        "eu1": _GLOBAL,
        "eu2": _GLOBAL,
        "eu3": _own_hosts("eu3"),
        "eu4": _GLOBAL,
        "eu5": _own_hosts("eu5"),
        "gb1": _own_hosts("gb1"),
        "ap1": _GLOBAL,
        # AU1: the Support page and a live client agree; the OpenAPI specs differ.
        "au1": _hosts(
            "api.au1a.app2.anaplan.com", "au1a.app2.anaplan.com", "au1a.app2.anaplan.com"
        ),
        "ca1": _own_hosts("ca1a"),
        "sg1": _own_hosts("sg1"),
        "ae1": _own_hosts("ae1"),
        "in1": _own_hosts("in1"),
        "id1": _own_hosts("id1"),
        "me1": _own_hosts("me1"),
    }
)


def resolve_hosts(
    region: str = "us1",
    *,
    api_base_url: str | None = None,
    auth_base_url: str | None = None,
    oauth_base_url: str | None = None,
) -> Hosts:
    """The region's hosts, with any explicit URL overriding its part.

    Raises ``ValueError`` for an unknown region or an unsafe URL (plain http to a
    non-loopback host would send credentials in clear text).
    """
    code = (region or "us1").strip().lower()
    if code not in REGIONS:
        raise ValueError(f"Unknown Anaplan region {region!r}. Valid regions: {', '.join(REGIONS)}.")
    default = REGIONS[code]
    given = {
        "api_base_url": api_base_url,
        "auth_base_url": auth_base_url,
        "oauth_base_url": oauth_base_url,
    }
    urls = {
        setting: check_url(setting, url or getattr(default, setting))
        for setting, url in given.items()
    }
    origins = {url: s if given[s] else f"region {code}" for s, url in urls.items()}
    return Hosts(**urls, origins=origins)


def check_url(setting: str, url: str) -> str:
    """``url`` without trailing slash, if it is safe to send credentials to; else ValueError.

    The one rule for every base URL: https, or plain http to a loopback host only (the
    simulator, a local proxy), since plain http elsewhere would expose the credentials.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"Setting `{setting}` is not a URL: {url!r} is not an http(s) URL. Use "
            "https://host[/path], e.g. https://api.anaplan.com/2/0."
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError(
            f"Setting `{setting}` uses plain http for a non-loopback host: {url!r}; use "
            "https:// (http:// is accepted only for 127.0.0.1, ::1 and localhost)."
        )
    return url.strip().rstrip("/")


def _is_loopback(hostname: str) -> bool:
    if hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False
