"""`check`: every problem a run would meet, listed at once, before anything is loaded; exit
0 only when a run would start."""

from __future__ import annotations

import copy
import json
import time

import pytest

from target_anaplan.admin.check import preflight
from target_anaplan.anaplan.token_store import StoredToken, TokenStore
from target_anaplan.simulator import Simulator
from tests.kit.adminkit import SALE_FIELDS, admin, catalog_file, tap_stream, write_json
from tests.kit.oauthkit import (
    ROTATING,
    ROTATING_LIFESPAN_S,
    oauth_auth,
    oauth_scenario,
    target_config,
)
from tests.kit.targetkit import CORE, CORE_MODEL, PRODUCTS, SALES, core_config

COLUMNS = ("Code", "Name", "Category", "Price", "Launched", "Active")
PRODUCT_COLUMNS = {name: {"type": ["null", "string"]} for name in COLUMNS}


def check(config, tmp_path, *args: str):
    return admin("check", "--config", write_json(tmp_path / "c.json", config), *args)


def problems(result) -> dict[str, str]:
    """check name -> detail of each problem in a `--json` report."""
    return {f["check"]: f["detail"] for f in result.json if f["status"] == "problem"}


def test_a_good_config_passes_and_shows_the_load_plan(sim, tmp_path):
    config = core_config(sim, {"sales": SALES, "products": {**PRODUCTS, "mode": "upsert"}},
                         after_load=["Reload regions"])  # fmt: skip
    shown = check(config, tmp_path)
    as_json = check(config, tmp_path, "--json")

    assert (shown.code, as_json.code) == (0, 0), shown.out
    assert shown.err == "No problems: a run would start.\n"
    assert shown.out.splitlines()[0].split() == ["status", "check", "detail"]
    assert {f["status"] for f in as_json.json} == {"ok"}
    details = {(f["check"], f["detail"]) for f in as_json.json}
    assert ("credentials", "Anaplan accepted user loader@example.com.") in details
    assert ("model Core Model", f"Model 'Core Model' ({CORE_MODEL}) in workspace 'Target Tests' "
            "(8a81b09d5f3b4c7e9a1f2b3c4d5e6f71): UNLOCKED.") in details  # fmt: skip
    plan = [f["detail"] for f in as_json.json if f["check"] == "load plan"]
    assert plan == [
        "1. products: file 'products.csv', then import 'Products from products.csv' "
        "(112000000000); loads list Products",
        "2. sales: file 'sales.csv', then import 'Sales from sales.csv' (112000000001)",
        "then process 'Reload regions' (118000000000)",
    ]
    store = next(f["detail"] for f in as_json.json if f["check"] == "change store")
    assert store.endswith(f"{CORE_MODEL}.sqlite: does not exist yet; the first run creates it")


def test_check_changes_nothing_in_anaplan(sim, tmp_path):
    check(core_config(sim, {"products": PRODUCTS, "sales": SALES}), tmp_path)
    assert [r for r in sim.requests() if r["method"] != "GET" and "/token" not in r["path"]] == []


def test_wrong_password(sim, tmp_path):
    result = check(
        core_config(sim, {"products": PRODUCTS}, password="wrong-pw"), tmp_path, "--json"
    )
    assert result.code == 1
    assert list(problems(result)) == ["credentials"]
    assert problems(result)["credentials"].startswith("Anaplan refused the user name or password")
    assert "wrong-pw" not in result.out + result.err
    assert result.err == "1 problem(s): a run would not start as configured.\n"


def test_a_certificate_that_cannot_be_loaded(sim, tmp_path):
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nsecret key text\n-----END PRIVATE KEY-----\n")
    config = {**core_config(sim, {"products": PRODUCTS}), "username": None, "password": None}
    config |= {"certificate": "-----BEGIN CERTIFICATE-----\nnot base64\n", "private_key": str(key)}
    result = check(config, tmp_path, "--json")
    assert result.code == 1
    assert problems(result) == {
        "credentials": "The certificate setting holds no readable X.509 certificate; give the "
        "PEM text or the path of a PEM or DER certificate file."
    }
    assert "secret key text" not in result.out + result.err


def test_unknown_model_name(sim, tmp_path):
    config = {**core_config(sim, {"products": PRODUCTS}), "model": "Core Modle"}
    result = check(config, tmp_path, "--json")
    assert result.code == 1
    assert problems(result) == {
        "model Core Modle": "Model 'Core Modle' not found in workspace 'Target Tests'. "
        f"Available models: 'Core Model' ({CORE_MODEL})."
    }
    notes = {f["check"]: f["detail"] for f in result.json if f["status"] == "note"}
    assert notes["stream products"] == "Not checked: its model cannot be used (see above)."
    assert notes["load plan"] == "Not built: fix the problems above first."


def test_unknown_workspace_name(sim, tmp_path):
    config = {**core_config(sim, {"products": PRODUCTS}), "workspace": "Target Test"}
    shown = check(config, tmp_path)
    result = check(config, tmp_path, "--json")

    assert (shown.code, result.code) == (1, 1)
    missing = ("Workspace 'Target Test' not found in this Anaplan tenant. Available workspaces: "
               "'Target Tests' (8a81b09d5f3b4c7e9a1f2b3c4d5e6f71).")  # fmt: skip
    assert problems(result) == {"model Core Model": missing}
    assert f"problem  model Core Model  {missing}" in shown.out.splitlines()
    assert shown.err == "1 problem(s): a run would not start as configured.\n"


def test_a_streams_unknown_workspace_is_told_apart_from_the_good_one(sim, tmp_path):
    streams = {"products": PRODUCTS, "sales": {**SALES, "workspace": "Target Test"}}
    result = check(core_config(sim, streams), tmp_path, "--json")

    assert result.code == 1
    assert list(problems(result)) == ["model Core Model in Target Test"]
    assert problems(result)["model Core Model in Target Test"].startswith(
        "Workspace 'Target Test' not found"
    )
    statuses = {f["check"]: f["status"] for f in result.json}
    assert statuses["model Core Model in Target Tests"] == "ok"
    assert (statuses["stream products"], statuses["stream sales"]) == ("ok", "note")


def test_ambiguous_name_and_every_other_problem_listed_at_once(tmp_path):
    scenario = json.loads(CORE.read_text(encoding="utf-8"))
    imports = scenario["workspaces"][0]["models"][0]["imports"]
    imports.append(
        copy.deepcopy(imports[1]) | {"id": "112000000098"}
    )  # a second "Sales from sales.csv"
    with Simulator(scenario) as sim:
        config = core_config(
            sim,
            {
                "sales": SALES,
                "products": PRODUCTS,
                "regions": {"imports": ["Regions from regions"]},
            },
            after_load=["Recalculate everything"],
        )
        result = check(config, tmp_path, "--json")
    found = problems(result)
    assert list(found) == ["stream sales", "stream regions", "after_load Recalculate everything"]
    assert found["stream sales"].startswith("Import name 'Sales from sales.csv' is ambiguous")
    assert found["stream regions"].startswith("Import 'Regions from regions' not found")
    assert (
        "No process or import 'Recalculate everything'"
        in found["after_load Recalculate everything"]
    )
    assert {f["check"]: f["status"] for f in result.json}["stream products"] == "ok"
    assert result.err == "3 problem(s): a run would not start as configured.\n"


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ("ARCHIVED", "Model 'Core Model' is archived; unarchive it in Anaplan, then try again."),
        ("LOCKED", f"Model 'Core Model' ({CORE_MODEL}) is locked: Anaplan refuses imports into "
                   "it (HTTP 423). Unlock it in Anaplan."),
        ("MAINTENANCE", f"Model 'Core Model' ({CORE_MODEL}) is offline (maintenance mode)"),
    ],
)  # fmt: skip
def test_a_model_that_refuses_work(sim, tmp_path, state, message):
    sim.set_model_state(CORE_MODEL, state)
    result = check(core_config(sim, {"products": PRODUCTS}), tmp_path, "--json")
    assert result.code == 1
    assert problems(result)["model Core Model"].startswith(message)


def test_a_header_column_the_catalog_cannot_feed(sim, tmp_path):
    fields = {k: v for k, v in SALE_FIELDS.items() if k != "Revenue"} | {"revenue_eur": {}}
    catalog = catalog_file(tmp_path / "catalog.json", tap_stream("sales", fields),
                           tap_stream("products", PRODUCT_COLUMNS))  # fmt: skip
    config = core_config(
        sim,
        {
            "sales": SALES,
            "products": PRODUCTS,
            "regions": {"imports": ["Regions from regions.txt"]},
        },
    )
    result = check(config, tmp_path, "--json", "--catalog", catalog)

    assert result.code == 1
    assert problems(result) == {
        "stream sales header": "Stream 'sales': the Anaplan data source needs columns that no "
        "field of the stream's schema feeds: 'Revenue' (read from field 'Revenue'), similar "
        "fields: 'revenue_eur'. Map each column"
        ' to a field with `streams.sales.columns`, for example {"Revenue": '
        '"revenue_eur"}, or add the fields to the stream.'
    }
    by_check = {f["check"]: f for f in result.json}
    assert by_check["stream products header"]["status"] == "ok"
    assert by_check["stream products header"]["detail"].startswith(
        "Every column is fed: Code <- Code"
    )
    assert by_check["stream regions header"]["status"] == "note"
    # The plan does not depend on the tap: it is still built.
    assert [f["status"] for f in result.json if f["check"] == "load plan"] == ["ok"] * 3


def test_a_key_the_catalog_cannot_give_to_upsert_and_deletes(sim, tmp_path):
    catalog = catalog_file(tmp_path / "catalog.json",
                           tap_stream("products", PRODUCT_COLUMNS, key=["Code"]),
                           tap_stream("sales", SALE_FIELDS))  # fmt: skip
    streams = {
        "products": {**PRODUCTS, "mode": "upsert", "deletes": "delete"},
        "sales": {**SALES, "mode": "upsert"},
    }
    result = check(core_config(sim, streams), tmp_path, "--json", "--catalog", catalog)

    assert result.code == 1
    assert problems(result) == {
        "stream sales key": "Stream 'sales' has mode upsert, which needs a key, but the tap "
        "sends no key_properties. Set `streams.sales.key` to the fields that identify a row."
    }
    by_check = {f["check"]: f["detail"] for f in result.json}
    assert by_check["stream products key"] == "Code (mode upsert)."


def test_an_unreachable_change_store(sim, tmp_path):
    config = core_config(sim, {"products": {**PRODUCTS, "mode": "insert"}},
                         change_store="sqlite:////dev/null/changes.sqlite")  # fmt: skip
    result = check(config, tmp_path, "--json")
    assert result.code == 1
    assert problems(result) == {
        "change store": "The change store sqlite:////dev/null/changes.sqlite cannot be created: "
        "/dev/null is not a writable directory. Check the setting `change_store` (default: "
        "under $XDG_DATA_HOME)."
    }


def test_the_change_store_is_only_read(sim, tmp_path):
    store = tmp_path / "store" / "changes.sqlite"
    config = core_config(sim, {"products": PRODUCTS}, change_store=f"sqlite:///{store}")
    assert check(config, tmp_path).code == 0
    assert not store.parent.exists()  # a run would create it; the check does not


def test_the_load_plan_fails_where_only_the_run_finds_out(sim, tmp_path):
    """A module stream asked to delete list items: the names resolve, the deleter does not."""
    config = core_config(sim, {"sales": {**SALES, "deletes": "delete", "key": ["Product"]}})
    result = check(config, tmp_path, "--json")
    assert result.code == 1
    assert list(problems(result)) == ["load plan"]
    assert "has deletes: delete, but its imports load no list" in problems(result)["load plan"]


def test_a_config_the_target_refuses(sim, tmp_path):
    result = check(core_config(sim, {"products": {**PRODUCTS, "colums": {}}}), tmp_path, "--json")
    assert result.code == 1
    assert result.json == [
        {"status": "problem", "check": "config",
         "detail": "Setting `streams.products.colums` is unknown. Did you mean `columns`? Known "
                   "keys: " + result.json[0]["detail"].split("Known keys: ")[1]}
    ]  # fmt: skip


class TestOAuthTokenLife:
    @pytest.fixture
    def oauth_sim(self):
        with Simulator(oauth_scenario()) as sim:
            yield sim

    def config(self, sim, store) -> dict:
        return target_config(
            sim,
            oauth_client_id=ROTATING["client_id"],
            oauth_client_secret=ROTATING["client_secret"],
            oauth_token_store=str(store),
            oauth_refresh_token_lifespan_s=ROTATING_LIFESPAN_S,
        )

    def stored_token(self, sim, store, age_s: float) -> None:
        """A token the simulator accepts, recorded as issued ``age_s`` ago."""
        oauth_auth(sim, ROTATING, store).header()
        token = TokenStore(store).read()
        aged = StoredToken(token.refresh_token, time.time() - age_s, token.seed_sha256, True)
        TokenStore(store).write(aged, client_id=ROTATING["client_id"])

    def test_a_token_near_the_end_of_its_lifespan(self, oauth_sim, tmp_path):
        store = tmp_path / "token.json"
        self.stored_token(oauth_sim, store, age_s=ROTATING_LIFESPAN_S - 1800)
        result = check(self.config(oauth_sim, store), tmp_path, "--json")

        assert result.code == 1
        assert problems(result) == {
            "OAuth token": f"The refresh token in {store} expires in 30 minutes "
            f"(oauth_refresh_token_lifespan_s={ROTATING_LIFESPAN_S}). Run the target more often "
            "than its lifespan, or re-authorize with `target-anaplan-admin login --client-id "
            f"rot-client --token-store {store}`."
        }
        assert ROTATING["client_secret"] not in result.out + result.err
        # Like a run, the check logged in and so renewed the token.
        assert time.time() - TokenStore(store).read().issued_at < 60

    def test_a_fresh_token(self, oauth_sim, tmp_path):
        store = tmp_path / "token.json"
        self.stored_token(oauth_sim, store, age_s=3600)
        result = check(self.config(oauth_sim, store), tmp_path, "--json")
        assert result.code == 0, result.out
        token = next(f for f in result.json if f["check"] == "OAuth token")
        assert token["detail"] == (
            f"The refresh token in {store} has about 11 hours left of its 12 hours lifespan; "
            "each run renews it."
        )


def test_preflight_reports_in_check_order(sim):
    report = preflight(core_config(sim, {"products": PRODUCTS, "sales": SALES}))
    assert [f.check for f in report.findings] == [
        "config", "credentials", "model Core Model", "stream products", "stream sales",
        "load plan", "load plan",
    ]  # fmt: skip
