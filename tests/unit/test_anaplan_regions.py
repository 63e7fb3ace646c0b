"""Region table and URL overrides."""

from __future__ import annotations

import pytest

from target_anaplan.anaplan.regions import REGIONS, Hosts, resolve_hosts

ALL_CODES = (
    *("us1", "us2", "us5", "us7", "us9", "eu1", "eu2", "eu3", "eu4", "eu5"),
    *("gb1", "ap1", "au1", "ca1", "sg1", "ae1", "in1", "id1", "me1"),
)


def test_every_documented_region_has_three_https_hosts():
    assert sorted(REGIONS) == sorted(ALL_CODES)
    for code in ALL_CODES:
        hosts = resolve_hosts(code)
        assert hosts.api_base_url.startswith("https://")
        assert hosts.api_base_url.endswith("/2/0")
        assert hosts.auth_base_url.startswith("https://")
        assert hosts.oauth_base_url.startswith("https://")


@pytest.mark.parametrize(
    ("code", "api", "auth", "oauth"),
    [
        ("us1", "api.anaplan.com", "auth.anaplan.com", "us1a.app.anaplan.com"),
        ("eu2", "api.anaplan.com", "auth.anaplan.com", "us1a.app.anaplan.com"),
        ("eu3", "eu3.api.anaplan.com", "eu3.auth.anaplan.com", "eu3.app.anaplan.com"),
        ("ca1", "ca1a.api.anaplan.com", "ca1a.auth.anaplan.com", "ca1a.app.anaplan.com"),
        ("me1", "me1.api.anaplan.com", "me1.auth.anaplan.com", "me1.app.anaplan.com"),
        ("au1", "api.au1a.app2.anaplan.com", "au1a.app2.anaplan.com", "au1a.app2.anaplan.com"),
    ],
)
def test_region_hosts(code, api, auth, oauth):
    assert resolve_hosts(code) == Hosts(f"https://{api}/2/0", f"https://{auth}", f"https://{oauth}")


def test_region_code_is_case_insensitive_and_defaults_to_us1():
    assert resolve_hosts("EU3") == REGIONS["eu3"]
    assert resolve_hosts() == REGIONS["us1"]


def test_unknown_region_lists_valid_codes():
    with pytest.raises(ValueError, match="Unknown Anaplan region 'xx9'") as error:
        resolve_hosts("xx9")
    assert "us1" in str(error.value)
    assert "me1" in str(error.value)


def test_overrides_win_and_lose_trailing_slashes():
    hosts = resolve_hosts(
        "eu3",
        api_base_url="http://127.0.0.1:8080/2/0/",
        auth_base_url="http://localhost:8080/",
        oauth_base_url="http://[::1]:8080",
    )
    assert hosts == Hosts("http://127.0.0.1:8080/2/0", "http://localhost:8080", "http://[::1]:8080")
    partial = resolve_hosts("eu3", auth_base_url="https://auth.example.test")
    assert partial.auth_base_url == "https://auth.example.test"
    assert partial.api_base_url == REGIONS["eu3"].api_base_url


@pytest.mark.parametrize("url", ["http://api.anaplan.com/2/0", "http://10.0.0.5/2/0"])
def test_plain_http_is_refused_for_non_loopback_hosts(url):
    with pytest.raises(ValueError, match="use https"):
        resolve_hosts(api_base_url=url)


def test_non_http_url_is_refused():
    with pytest.raises(ValueError, match="not an http"):
        resolve_hosts(auth_base_url="ftp://auth.anaplan.com")
