"""The load plan: lists before the modules that use them, parents before children, state
after each commit, run-level actions, several models."""

from __future__ import annotations

import copy
import json
import logging

import pytest

from target_anaplan.anaplan.errors import ActionFailedError
from target_anaplan.errors import ConfigError
from target_anaplan.plan import StreamShape, order_streams
from target_anaplan.simulator import Simulator
from tests.kit.singer import lines, record, schema, state
from tests.kit.targetkit import (
    CORE,
    CORE_MODEL,
    PRODUCT,
    PRODUCTS,
    REGION,
    REGIONS,
    SALES,
    USER,
    core_config,
    failing_run_in_process,
    list_items,
    module_rows,
    run_in_process,
    run_subprocess,
    sim_config,
    task_starts,
    uploads,
)

PRODUCTS_IMPORT, SALES_IMPORT, REGIONS_IMPORT = "112000000000", "112000000001", "112000000002"
REGIONS_FILE = "113000000002"
CITIES_IMPORT, REGIONS_PROCESS = "112000000006", "118000000000"
SALE = {
    "Product": {"type": "string"},
    "Region": {"type": "string"},
    "Units": {"type": "integer"},
    "Revenue": {"type": "number"},
    "Note": {"type": ["string", "null"]},
}
CITY = {
    "Code": {"type": "string"},
    "Name": {"type": "string"},
    "Region": {"type": "string"},
    "Population": {"type": "integer"},
}
CITIES = {"file": "cities.csv", "imports": ["Cities from cities.csv"]}


def product(code: str) -> dict:
    return record(
        "products",
        {
            "Code": code,
            "Name": f"Product {code}",
            "Category": None,
            "Price": None,
            "Launched": None,
            "Active": True,
        },
    )


def sale(code: str, units: int) -> dict:
    return record(
        "sales",
        {"Product": code, "Region": "EMEA", "Units": units, "Revenue": units * 2, "Note": None},
    )


def region(code: str) -> dict:
    return record("regions", {"Code": code, "Name": f"Region {code}"})


def one_product_and_one_region() -> str:
    """P1 in products, EMEA in regions, then a STATE."""
    return lines(
        schema("products", PRODUCT),
        product("P1"),
        schema("regions", REGION),
        region("EMEA"),
        state({"n": 1}),
    )


def starts_in_order(sim: Simulator, *action_ids: str) -> list[str]:
    """The action ids of task starts, in the order the simulator saw them."""
    wanted = {f"/{a}/tasks" for a in action_ids}
    return [
        r["path"].rsplit("/", 2)[-2]
        for r in sim.requests()
        if r["method"] == "POST" and any(r["path"].endswith(w) for w in wanted)
    ]


def test_a_module_stream_sent_first_commits_after_its_list(sim):
    # Module first in `streams` and in the input: the plan still loads the list first.
    config = core_config(sim, {"sales": SALES, "products": PRODUCTS, "regions": REGIONS})
    run = run_in_process(
        config,
        lines(
            schema("sales", SALE),
            sale("P1", 1),
            sale("P2", 2),
            schema("products", PRODUCT, ["Code"]),
            product("P1"),
            product("P2"),
            schema("regions", REGION, ["Code"]),
            region("EMEA"),
            state({"done": 1}),
        ),
    )
    assert sorted(list_items(sim, "Products")) == ["P1", "P2"]
    assert sorted(row["dimensions"]["Products"] for row in module_rows(sim, "Sales")) == [
        "P1",
        "P2",
    ]
    assert starts_in_order(sim, SALES_IMPORT, PRODUCTS_IMPORT, REGIONS_IMPORT)[-1] == SALES_IMPORT
    assert run.states == [{"done": 1}]


def test_insert_batches_of_a_module_commit_their_list_rows_first(sim):
    # Small batches interleave products and sales. Each products batch fills (and commits)
    # just before the sales batch naming its products, so the cascade at work is the
    # all-mode regions stream's: its EMEA would wait for the end of input, but every sale
    # names EMEA, so the first sales commit commits regions before itself.
    streams = {
        "sales": SALES | {"mode": "insert"},
        "products": PRODUCTS | {"mode": "insert"},
        "regions": REGIONS,
    }
    messages = [
        schema("regions", REGION, ["Code"]),
        region("EMEA"),
        schema("sales", SALE),
        schema("products", PRODUCT, ["Code"]),
    ]
    for n in range(1, 7):
        messages += [product(f"P{n}"), sale(f"P{n}", n)]
    run = run_in_process(
        core_config(sim, streams, batch_size_rows=2), lines(*messages, state({"n": 6}))
    )
    assert sorted(list_items(sim, "Products")) == [f"P{n}" for n in range(1, 7)]
    assert len(module_rows(sim, "Sales")) == 6
    assert run.states == [{"n": 6}]
    # Regions once, cascaded ahead of the first sales batch. After it, a products batch and
    # the sales batch before it (whose products are committed already) may run in either
    # order, as a batch's commit runs while the next batch is read; every sale landing
    # above shows no sales batch ran before its products.
    order = starts_in_order(sim, PRODUCTS_IMPORT, REGIONS_IMPORT, SALES_IMPORT)
    assert order[:2] == [PRODUCTS_IMPORT, REGIONS_IMPORT]
    assert sorted(order[2:]) == sorted([PRODUCTS_IMPORT] * 2 + [SALES_IMPORT] * 3)


def test_a_child_list_commits_after_its_parent_list(sim):
    # Cities' items need their parent Region item; the list metadata says Regions is the
    # parent of Cities, so regions commits first although it comes second everywhere.
    config = core_config(sim, {"cities": CITIES, "regions": REGIONS})
    run_in_process(
        config,
        lines(
            schema("cities", CITY, ["Code"]),
            record("cities", {"Code": "OSL", "Name": "Oslo", "Region": "NORD", "Population": 700}),
            schema("regions", REGION, ["Code"]),
            region("NORD"),
        ),
    )
    assert list_items(sim, "Cities")["OSL"]["parent"] == "NORD"
    assert starts_in_order(sim, CITIES_IMPORT, REGIONS_IMPORT) == [REGIONS_IMPORT, CITIES_IMPORT]


def test_load_order_overrides_the_default(sim):
    streams = {"products": PRODUCTS, "regions": REGIONS}
    text = lines(
        schema("products", PRODUCT, ["Code"]),
        product("P1"),
        schema("regions", REGION, ["Code"]),
        region("EMEA"),
    )
    run_in_process(core_config(sim, streams), text)
    run_in_process(core_config(sim, streams, load_order=["regions"]), text)
    assert starts_in_order(sim, PRODUCTS_IMPORT, REGIONS_IMPORT) == [
        PRODUCTS_IMPORT,
        REGIONS_IMPORT,  # config order
        REGIONS_IMPORT,
        PRODUCTS_IMPORT,  # load_order
    ]


def test_the_load_plan_is_logged_once_at_start(sim, caplog):
    """One line per stream (position, file, actions) and the after_load, before any upload,
    and not again however many commits follow."""
    config = core_config(
        sim,
        {"sales": SALES, "products": PRODUCTS | {"mode": "insert"}, "regions": REGIONS},
        batch_size_rows=1,
        after_load=["Reload regions"],
    )
    text = lines(
        schema("sales", SALE),
        sale("P1", 1),
        schema("products", PRODUCT, ["Code"]),
        product("P1"),
        product("P2"),
        schema("regions", REGION, ["Code"]),
        region("EMEA"),
    )
    with caplog.at_level(logging.INFO):
        run_in_process(config, text)

    messages = [r.getMessage() for r in caplog.records]
    plan = [(n, m) for n, m in enumerate(messages) if m.startswith("Load plan: ")]
    assert [m for _, m in plan] == [
        "Load plan: 1. products: file 'products.csv', then import 'Products from products.csv' "
        f"({PRODUCTS_IMPORT}); loads list Products",
        "Load plan: 2. regions: file 'regions.txt', then import 'Regions from regions.txt' "
        f"({REGIONS_IMPORT}); loads list Regions",
        "Load plan: 3. sales: file 'sales.csv', then import 'Sales from sales.csv' "
        f"({SALES_IMPORT})",
        f"Load plan: then process 'Reload regions' ({REGIONS_PROCESS})",
    ]
    first_upload = next(n for n, m in enumerate(messages) if m.startswith("Uploading file"))
    assert plan[-1][0] < first_upload
    assert len(task_starts(sim, PRODUCTS_IMPORT)) == 2  # several commits, one plan


def test_load_order_names_only_configured_streams(sim):
    with pytest.raises(ConfigError, match=r"`load_order` names streams .* 'sale'"):
        run_in_process(core_config(sim, {"sales": SALES}, load_order=["sale"]), "")


def test_a_failing_list_commit_stops_the_module_commit_and_holds_the_state(sim):
    sim.add_fault({"kind": "fail", "action_id": PRODUCTS_IMPORT, "message": "Products broke"})
    config = core_config(sim, {"sales": SALES, "products": PRODUCTS})
    run = failing_run_in_process(
        config,
        lines(
            state({"n": 0}),  # nothing received yet: it goes out at once
            schema("sales", SALE),
            sale("P1", 1),
            schema("products", PRODUCT),
            product("P1"),
            state({"n": 1}),
        ),
        ActionFailedError,
        "Products broke",
    )
    assert task_starts(sim, SALES_IMPORT) == []
    assert module_rows(sim, "Sales") == []
    assert run.states == [{"n": 0}]  # nothing past the rows that never committed


def test_insert_mode_acknowledges_each_committed_batch(sim, tmp_path):
    """The 3rd batch fails; the state after batch 2 went out, so the rerun starts there."""
    config = core_config(sim, {"regions": REGIONS | {"mode": "insert"}}, batch_size_rows=2)

    def sync(after: int) -> str:
        """A tap's incremental run: rows after the bookmark, a STATE after each row."""
        messages = [schema("regions", REGION, ["Code"])]
        for n in range(after + 1, 7):
            messages += [region(f"R{n}"), state({"bookmark": n})]
        return lines(*messages)

    sim.add_fault(
        {
            "kind": "http",
            "status": 423,
            "method": "POST",
            "path": f"/imports/{REGIONS_IMPORT}/tasks$",
            "nth": 3,
        },
    )
    failed = run_subprocess(config, sync(0), tmp_path)
    assert failed.returncode == 1
    # Each commit lets out the newest STATE whose rows it committed (a batch's commit runs
    # while the next rows are read, so a STATE may be superseded before it goes out):
    # bookmark 4 covers batches 1 and 2, nothing of batch 3; 2 went out before it.
    bookmarks = [state["bookmark"] for state in failed.states]
    assert bookmarks == sorted(bookmarks)
    assert bookmarks[-1] == 4
    assert set(bookmarks) <= {1, 2, 3, 4}
    assert {2, 4} <= set(bookmarks)
    assert sorted(list_items(sim, "Regions")) == ["R1", "R2", "R3", "R4"]

    rerun = run_subprocess(config, sync(failed.states[-1]["bookmark"]), tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.states[-1] == {"bookmark": 6}
    assert len(task_starts(sim, REGIONS_IMPORT)) == 4  # 2 batches, the failed one, 1 more
    assert sorted(list_items(sim, "Regions")) == [f"R{n}" for n in range(1, 7)]


def test_a_failed_batch_stops_the_batches_after_it(sim, tmp_path):
    """Batch 2's import is refused while batch 3 is read: batch 3 is never uploaded (its
    commit would start once batch 2 let go of the file), and the state stays at batch 1."""
    config = core_config(sim, {"regions": REGIONS | {"mode": "insert"}}, batch_size_rows=2)
    messages = [schema("regions", REGION, ["Code"])]
    for n in range(1, 11):
        messages += [region(f"R{n}"), state({"bookmark": n})]
    sim.add_fault(
        {
            "kind": "http",
            "status": 423,
            "method": "POST",
            "path": f"/imports/{REGIONS_IMPORT}/tasks$",
            "nth": 2,
        },
    )
    failed = run_subprocess(config, lines(*messages), tmp_path)
    assert failed.returncode == 1
    assert [state["bookmark"] for state in failed.states][-1:] == [2]
    assert uploads(sim, REGIONS_FILE) == 2
    assert sorted(list_items(sim, "Regions")) == ["R1", "R2"]


def test_after_load_runs_once_after_every_commit(sim):
    config = core_config(
        sim, {"products": PRODUCTS, "regions": REGIONS}, after_load=["Reload regions"]
    )
    run = run_in_process(config, one_product_and_one_region())
    order = starts_in_order(sim, PRODUCTS_IMPORT, REGIONS_IMPORT, REGIONS_PROCESS)
    assert order[-1] == REGIONS_PROCESS
    assert order.count(REGIONS_PROCESS) == 1
    assert run.states == [{"n": 1}]


def test_after_load_does_not_run_when_nothing_was_received(sim):
    config = core_config(sim, {"products": PRODUCTS}, after_load=["Reload regions"])
    run = run_in_process(config, lines(schema("products", PRODUCT), state({"n": 0})))
    assert task_starts(sim, REGIONS_PROCESS) == []
    assert run.states == [{"n": 0}]


def test_a_failing_after_load_fails_the_run_without_state(sim):
    # The process reloads regions.txt, which this user never uploaded: it fails.
    config = core_config(sim, {"products": PRODUCTS}, after_load=["Reload regions"])
    run = failing_run_in_process(
        config,
        lines(state({"n": 0}), schema("products", PRODUCT), product("P1"), state({"n": 1})),
        ActionFailedError,
        r"after_load process 'Reload regions'.*No content",
    )
    assert sorted(list_items(sim, "Products")) == ["P1"]
    # P1 is in the list, but the state that covers it waits for after_load, which failed.
    assert run.states == [{"n": 0}]


def two_models() -> dict:
    """The core scenario with a copy of its model under another id and name."""
    scenario = json.loads(CORE.read_text(encoding="utf-8"))
    second = copy.deepcopy(scenario["workspaces"][0]["models"][0])
    second.update(id="75A40874E6B64FA3AE0EB2C4D5E6F7B2", name="Second Model")
    scenario["workspaces"][0]["models"].append(second)
    return scenario


def test_streams_load_into_different_models():
    with Simulator(two_models()) as sim:
        config = sim_config(
            sim,
            **USER,
            workspace="Target Tests",
            model="Core Model",
            streams={"products": PRODUCTS, "regions": REGIONS | {"model": "Second Model"}},
        )
        run = run_in_process(config, one_product_and_one_region())
        assert sorted(list_items(sim, "Products")) == ["P1"]
        assert list_items(sim, "Regions") == {}
        assert sorted(list_items(sim, "Regions", "75A40874E6B64FA3AE0EB2C4D5E6F7B2")) == ["EMEA"]
        assert list_items(sim, "Products", "75A40874E6B64FA3AE0EB2C4D5E6F7B2") == {}
        assert run.states == [{"n": 1}]
        assert CORE_MODEL != "75A40874E6B64FA3AE0EB2C4D5E6F7B2"


@pytest.mark.parametrize(
    ("streams", "shapes", "parents", "load_order", "expected"),
    [
        (["m", "l"], {"m": StreamShape(False), "l": StreamShape(True)}, {}, [], ["l", "m"]),
        (
            ["child", "grand", "top"],
            {
                "child": StreamShape(True, (("M", "Child"),)),
                "grand": StreamShape(True, (("M", "Grandchild"),)),
                "top": StreamShape(True, (("M", "Top"),)),
            },
            {("M", "Grandchild"): "Child", ("M", "Child"): "Top"},
            [],
            ["top", "child", "grand"],
        ),
        (["a", "b"], {"a": StreamShape(True), "b": StreamShape(True)}, {}, ["b"], ["b", "a"]),
        (
            ["x", "y"],
            {"x": StreamShape(True, (("M", "X"),)), "y": StreamShape(True, (("M", "Y"),))},
            {("M", "X"): "Y", ("M", "Y"): "X"},  # a cycle keeps the config order
            [],
            ["x", "y"],
        ),
    ],
)
def test_the_order_of_commits(streams, shapes, parents, load_order, expected):
    assert order_streams(streams, shapes, parents, load_order) == expected
