"""File upload behaviour: privacy per user, chunk order and replacement, counts, creation."""

from __future__ import annotations

from tests.kit.simkit import (
    MODEL_ID,
    OTHER_USER,
    PRODUCTS_FILE,
    PRODUCTS_HEADER,
    PRODUCTS_IMPORT,
    USER,
    Client,
    gz,
)


def test_uploaded_content_is_private_to_the_uploader(api: Client, other_api: Client) -> None:
    api.upload(PRODUCTS_FILE, PRODUCTS_HEADER + "P1,Mine,T,1,2024-01-01,true\n")
    assert other_api.get(f"@/files/{PRODUCTS_FILE}").status_code == 404
    task = other_api.run(PRODUCTS_IMPORT)
    assert task["result"]["successful"] is False
    other_api.upload(PRODUCTS_FILE, PRODUCTS_HEADER + "P2,Theirs,T,1,2024-01-01,true\n")
    api.run(PRODUCTS_IMPORT)
    assert [i["name"] for i in api.sim.list_items(MODEL_ID, "Products")] == ["Mine"]
    [file] = [f for f in api.sim.files() if f["id"] == PRODUCTS_FILE]
    assert set(file["content"]) == {USER, OTHER_USER}
    assert file["uploads_by_user"] == {USER: 1, OTHER_USER: 1}


def test_chunks_join_in_index_order_and_resend_replaces(api: Client) -> None:
    api.call("POST", f"@/files/{PRODUCTS_FILE}", json={"chunkCount": -1})
    for index, data in ((2, b"C"), (0, b"A"), (1, b"x"), (1, b"B")):
        assert (
            api.call("PUT", f"@/files/{PRODUCTS_FILE}/chunks/{index}", data=data).status_code == 204
        )
    listed = api.get(f"@/files/{PRODUCTS_FILE}/chunks").json()["chunks"]
    assert [c["id"] for c in listed] == ["0", "1", "2"]
    api.call("POST", f"@/files/{PRODUCTS_FILE}/complete", json={"id": PRODUCTS_FILE})
    assert api.get(f"@/files/{PRODUCTS_FILE}").content == b"ABC"


def test_known_chunk_count_completes_without_complete_call(api: Client) -> None:
    api.call("POST", f"@/files/{PRODUCTS_FILE}", json={"chunkCount": 2})
    api.call("PUT", f"@/files/{PRODUCTS_FILE}/chunks/1", data=gz("two"),
             headers={"Content-Type": "application/x-gzip"})  # fmt: skip
    assert api.get(f"@/files/{PRODUCTS_FILE}").status_code == 404
    api.call("PUT", f"@/files/{PRODUCTS_FILE}/chunks/0", data=b"one ")
    assert api.get(f"@/files/{PRODUCTS_FILE}").content == b"one two"
    assert api.get("@/files").json()["files"][0]["chunkCount"] == 2


def test_upload_counts_per_completed_upload(api: Client) -> None:
    api.upload(PRODUCTS_FILE, "a", chunks=1)
    api.upload(PRODUCTS_FILE, "b", chunks=1)
    api.call("PUT", f"@/files/{PRODUCTS_FILE}", data=b"c")
    api.call("POST", f"@/files/{PRODUCTS_FILE}", json={"chunkCount": -1})  # started, never done
    [file] = [f for f in api.sim.files() if f["id"] == PRODUCTS_FILE]
    assert file["uploads"] == 3
    assert file["content"] == {USER: "c"}
    assert file["content_b64"] == {USER: "Yw=="}
    assert file["model"] == MODEL_ID


def test_bad_gzip_is_400(api: Client) -> None:
    response = api.call("PUT", f"@/files/{PRODUCTS_FILE}/chunks/0", data=b"not gzip",
                        headers={"Content-Type": "application/x-gzip"})  # fmt: skip
    assert response.status_code == 400


def test_created_file_can_be_uploaded_to_by_its_new_id(api: Client) -> None:
    created = api.call("POST", "@/files/extra.csv", json={"chunkCount": -1}).json()["file"]
    again = api.call("POST", "@/files/extra.csv", json={"chunkCount": -1}).json()["file"]
    assert again["id"] == created["id"]
    api.upload(created["id"], "hello", chunks=1)
    assert api.get(f"@/files/{created['id']}").content == b"hello"


def test_default_file_content_from_the_scenario(sim_with) -> None:
    sim = sim_with(files=[{"id": PRODUCTS_FILE, "name": "products.csv", "content": "a,b\n"},
                          {"id": "113000000001", "name": "sales.csv"}])  # fmt: skip
    api = Client(sim)
    assert api.get(f"@/files/{PRODUCTS_FILE}").content == b"a,b\n"
    api.upload(PRODUCTS_FILE, "mine", chunks=1)
    assert api.get(f"@/files/{PRODUCTS_FILE}").content == b"mine"
    api.call("DELETE", f"@/files/{PRODUCTS_FILE}")
    assert api.get(f"@/files/{PRODUCTS_FILE}").content == b"a,b\n"


def test_private_content_and_dumps_vanish_after_48_hours(api: Client) -> None:
    api.upload(PRODUCTS_FILE, PRODUCTS_HEADER + "P1,W,T,bad,2024-01-01,true\n")
    task = api.run(PRODUCTS_IMPORT)
    dump_path = f"@/imports/{PRODUCTS_IMPORT}/tasks/{task['taskId']}/dump"
    api.sim.advance_clock(47 * 3600)
    api.login()
    assert api.get(dump_path).status_code == 200
    api.sim.advance_clock(49 * 3600)  # 49 h after the dump was read, 96 h after the upload
    api.login()
    assert api.get(f"@/files/{PRODUCTS_FILE}").status_code == 404
    assert api.get(dump_path).status_code == 404
    assert api.sim.tasks()[0]["result"]["failureDumpAvailable"] is True
