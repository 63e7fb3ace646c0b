"""The page for people at /__sim__/: what landed, as a person sees it in a real browser."""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from html.parser import HTMLParser

import pytest
import requests

from demo.stack import headless_chromium
from tests.kit.png import Image, read_png
from tests.kit.simkit import (
    MODEL_ID,
    PROCESS,
    PRODUCTS_FILE,
    PRODUCTS_HEADER,
    PRODUCTS_IMPORT,
    SALES_FILE,
    SALES_HEADER,
    Client,
)

PRODUCTS = PRODUCTS_HEADER + (
    "P001,Widget,Hardware,19.99,2024-01-15,true\n"
    'P002,"Gadget, large",Hardware,249.00,2024-02-01,true\n'
    'P003,"The ""Pro"" kit",Bundles,1099.50,2023-11-30,false\n'
    "P004,Café crème,Food,3.20,2024-03-10,true\n"
    "P005,Plain,Services,,2022-12-31,false\n"
    "P006,Ünïcödé ☃,Gifts,12.34,2024-06-01,true\n"
)
SALES = SALES_HEADER + (
    "P001,EMEA,120,2398.80,Spring promotion\n"
    "P002,AMER,8,1992.00,\n"
    "P004,APAC,1500,4800.00,Bulk order\n"
    "P999,EMEA,1,1.00,Product missing\n"
)
WHITE = b"\xff\xff\xff"


@pytest.fixture
def loaded(api: Client) -> Client:
    """A demo-like load: products through their import, then the process with a bad sales row."""
    api.upload(PRODUCTS_FILE, PRODUCTS)
    assert api.run(PRODUCTS_IMPORT)["result"]["successful"] is True
    api.upload(SALES_FILE, SALES)
    result = api.run(PROCESS, "processes")["result"]
    assert result["failureDumpAvailable"] is True
    return api


def page_text(html: str) -> str:
    """What a reader sees: the text of the body, whitespace collapsed."""
    parser = _TextOf()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def test_the_page_shows_what_landed(loaded: Client) -> None:
    response = requests.get(f"{loaded.sim.url}/__sim__/", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert re.search(r'<meta http-equiv="refresh" content="\d+">', response.text)
    assert "<script" not in response.text
    text = page_text(response.text)
    assert "List Products 6 items" in text
    assert 'P003 The "Pro" kit Bundles 1099.5 2023-11-30 False' in text
    assert "P006 Ünïcödé ☃ Gifts 12.34 2024-06-01 True" in text
    assert "Module Sales 3 rows" in text
    assert "P004 APAC 1500 4800 Bulk order" in text
    assert f"{len(PRODUCTS.encode()):,} bytes in 2 chunk(s) by integration@example.com" in text
    assert "Code,Name,Category,Price,Launched,Active P001,Widget,Hardware" in text
    assert "Products from products.csv: 6 ok (6 created, 0 updated), 0 failed, 0 ignored" in text
    assert "Sales from sales.csv: 3 ok (3 created, 0 updated), 1 failed, 0 ignored" in text
    assert '"E","P999","EMEA","1","1.00","Product missing","5"' in text  # the process's dump
    assert f"POST /2/0/workspaces/8a81b09d5f3b4c7e9a1f2b3c4d5e6f70/models/{MODEL_ID}" in text


def test_the_page_escapes_what_it_shows(sim_with) -> None:
    sim = sim_with(lists=[{"name": "<b>Lists</b>", "items": [{"code": "<script>x</script>"}]}],
                   modules=[], imports=[], processes=[])  # fmt: skip
    html = requests.get(f"{sim.url}/__sim__/", timeout=10).text
    assert "<script>" not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html
    assert "List <b>Lists</b> 1 item" in page_text(html)


def test_big_lists_show_their_first_rows_and_say_how_many_more(sim_with) -> None:
    items = [{"code": f"C{n:03d}"} for n in range(40)]
    sim = sim_with(lists=[{"name": "Many", "items": items}], modules=[], imports=[], processes=[])
    text = page_text(requests.get(f"{sim.url}/__sim__/", timeout=10).text)
    assert "C024" in text
    assert "C025" not in text
    assert "… and 15 more" in text


def test_the_page_in_a_real_browser(loaded: Client, artifact) -> None:
    browser = shutil.which("chromium")
    if browser is None:
        missing = "no chromium on PATH: scripts/test installs it (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(missing)  # CI can install it, so a missing browser is a broken step
        pytest.skip(missing)
    url = f"{loaded.sim.url}/__sim__/"
    dom = chromium(browser, "--dump-dom", url)
    text = page_text(dom)
    assert "Anaplan simulator" in text
    assert "Demo Model 75A40874E6B64FA3AE0EB2C4D5E6F7A8 · Demo Workspace · UNLOCKED" in text
    assert "Café crème" in text
    assert "Sales from sales.csv: 3 ok (3 created, 0 updated), 1 failed, 0 ignored" in text
    screenshot = artifact("simulator-page.png")
    chromium(browser, "--window-size=1280,2000", f"--screenshot={screenshot}", url)
    print(f"screenshot of the page: {screenshot}")
    assert_rendered(read_png(screenshot.read_bytes()))


def assert_rendered(image: Image) -> None:
    """The screenshot shows the page, not a blank or nearly empty window: a blank page is one
    colour, and a page with only its heading is 99.9% white (both seen with this Chromium)."""
    assert (image.width, image.height) == (1280, 2000)
    bands = image.bands(4)
    colours = sum(bands, Counter[bytes]())
    assert colours.most_common(1)[0][0] == WHITE  # the page's background
    assert colours[WHITE] < 0.95 * image.width * image.height
    assert len(colours) > 100  # anti-aliased text, borders, state colours: not a flat fill
    # Text (dark pixels) all the way down: models, files, tasks, requests.
    dark = [sum(n for rgb, n in band.items() if sum(rgb) < 300) for band in bands]
    assert min(dark) > 1000, dark


def chromium(browser: str, *args: str) -> str:
    """Run headless Chromium once; its stdout (the DOM for --dump-dom)."""
    done = headless_chromium(browser, *args)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class _TextOf(HTMLParser):
    """Collects the text a browser shows (not the head's style or title)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in ("style", "title", "script"):
            self._hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "title", "script"):
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)
