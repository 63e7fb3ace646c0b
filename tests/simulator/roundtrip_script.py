"""A standalone Anaplan round trip written from anaplan-api.md alone (not our client).

    python roundtrip_script.py BASE_URL EMAIL PASSWORD

Logs in with basic auth, finds the workspace/model/imports, reads each import's metadata,
writes a CSV matching it, uploads it in gzip chunks (chunkCount -1, then /complete), runs the
imports, polls them to the end and prints a JSON summary. Exit code 0 only if every import
succeeded without failed rows. Proves the simulator speaks the documented API.
"""

from __future__ import annotations

import base64
import csv
import gzip
import io
import json
import sys
import time

import requests

ROWS = {
    "Products": [
        {"Code": "RT1", "Name": "Round trip one", "Category": "Tools", "Price": "9.5",
         "Launched": "2024-05-01", "Active": "true"},
        {"Code": "RT2", "Name": "Round, trip \"two\"", "Category": "Toys", "Price": "1",
         "Launched": "2024-05-02", "Active": "false"},
    ],
    "Sales": [
        {"Product": "RT1", "Region": "EMEA", "Units": "2", "Revenue": "19", "Note": "a"},
        {"Product": "RT2", "Region": "APAC", "Units": "1", "Revenue": "1", "Note": "b"},
    ],
}  # fmt: skip
CHUNK_BYTES = 40


def login(base: str, email: str, password: str) -> str:
    basic = base64.b64encode(f"{email}:{password}".encode()).decode()
    response = requests.post(f"{base}/token/authenticate",
                             headers={"Authorization": f"Basic {basic}"}, timeout=10)  # fmt: skip
    response.raise_for_status()
    return response.json()["tokenInfo"]["tokenValue"]


def first_page(session: requests.Session, url: str, key: str) -> list[dict]:
    response = session.get(url, params={"limit": 5000, "offset": 0}, timeout=10)
    response.raise_for_status()
    return response.json().get(key, [])


def csv_bytes(source: dict, rows: list[dict]) -> bytes:
    out = io.StringIO()
    quote = source["textDelimiter"]
    writer = csv.writer(out, delimiter=source["columnSeparator"], quotechar=quote or '"',
                        quoting=csv.QUOTE_MINIMAL, lineterminator="\n")  # fmt: skip
    writer.writerow(source["headerNames"])
    for row in rows:
        writer.writerow([row[name] for name in source["headerNames"]])
    return out.getvalue().encode(source["textEncoding"])


def upload(session: requests.Session, model_url: str, file_id: str, data: bytes) -> None:
    file_url = f"{model_url}/files/{file_id}"
    session.post(file_url, json={"chunkCount": -1}, timeout=10).raise_for_status()
    for index, start in enumerate(range(0, len(data), CHUNK_BYTES)):
        response = session.put(
            f"{file_url}/chunks/{index}",
            data=gzip.compress(data[start : start + CHUNK_BYTES]),
            headers={"Content-Type": "application/x-gzip"},
            timeout=10,
        )
        response.raise_for_status()  # fmt: skip
    session.post(f"{file_url}/complete", json={"id": file_id}, timeout=10).raise_for_status()


def run_import(session: requests.Session, model_url: str, import_id: str) -> dict:
    tasks_url = f"{model_url}/imports/{import_id}/tasks"
    started = session.post(tasks_url, json={"localeName": "en_US"}, timeout=10)
    started.raise_for_status()
    task_id = started.json()["task"]["taskId"]
    for _ in range(200):
        task = session.get(f"{tasks_url}/{task_id}", timeout=10).json()["task"]
        if task["taskState"] in ("COMPLETE", "CANCELLED"):
            return task
        time.sleep(0.01)
    raise RuntimeError(f"task {task_id} did not finish")


def main(base: str, email: str, password: str) -> int:
    session = requests.Session()
    session.headers["Authorization"] = f"AnaplanAuthToken {login(base, email, password)}"
    api = f"{base}/2/0"
    [workspace] = first_page(session, f"{api}/workspaces", "workspaces")
    [model] = first_page(session, f"{api}/workspaces/{workspace['id']}/models", "models")
    model_url = f"{api}/workspaces/{workspace['id']}/models/{model['id']}"
    summary = {}
    for imp in first_page(session, f"{model_url}/imports/", "imports"):
        meta = session.get(f"{model_url}/imports/{imp['id']}", timeout=10).json()
        source = meta["importMetadata"]["source"]
        target = "Products" if imp["importType"] == "HIERARCHY_DATA" else "Sales"
        upload(session, model_url, imp["importDataSourceId"], csv_bytes(source, ROWS[target]))
        task = run_import(session, model_url, imp["id"])
        pairs = task["result"]["details"][0]["values"]
        counts = dict(zip(pairs[::2], pairs[1::2], strict=True))
        summary[imp["name"]] = {"state": task["taskState"], **task["result"], "counts": counts}
    print(json.dumps({"model": model["id"], "imports": summary}))
    good = all(s["successful"] and not s["failureDumpAvailable"] for s in summary.values())
    return 0 if summary and good else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
