"""Make the dashboard screenshots shown in the README, from real runs of a real worker.

    python docs/screenshots.py postgresql://localhost/scratch

Use a scratch database: the schema is installed in it and a demo flow is created and run.
Needs the system Chromium (``apt install chromium``); writes docs/dashboard-run.png and
docs/dashboard-runs.png.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from pgflow import Client, Flow, install
from pgflow.testing._worker import running_worker
from pgflow.web import create_app
from pgflow.web._server import serving

DOCS = Path(__file__).resolve().parent

orders = Flow("process_order", max_attempts=2, base_delay=1, timeout=30)


@orders.step
async def validate(run: dict[str, Any]) -> list[str]:
    await asyncio.sleep(run.get("pause", 0.2))
    return [item.strip() for item in run["items"]]


@orders.map(validate)
async def price(item: str) -> float:
    await asyncio.sleep(random.uniform(0.1, 0.5))
    return float(len(item))


@orders.step(validate)
async def check_stock(run: dict[str, Any], items: list[str]) -> dict[str, bool]:
    await asyncio.sleep(0.3)
    return dict.fromkeys(items, True)


@orders.step(price, check_stock)
async def charge(run: dict[str, Any], prices: list[float], stock: dict[str, bool]) -> float:
    await asyncio.sleep(0.4)
    if run.get("card") == "declined":
        raise RuntimeError("payment declined by the card issuer (code 51)")
    return sum(prices)


@orders.step(charge)
async def notify(run: dict[str, Any], total: float) -> str:
    await asyncio.sleep(0.2)
    return f"order {run['order_id']} charged {total:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("database_url", help="a scratch database (its schema gets installed)")
    url = parser.parse_args().database_url
    browser_path = shutil.which("chromium") or "/usr/bin/chromium"
    install(url)
    with Client(url) as client:
        client.ensure_flow(orders)
        with running_worker([orders], url):
            inputs = [
                {"order_id": n, "items": ["tea", "scones", "jam", "cream"][: 2 + n % 3]}
                for n in range(1, 7)
            ]
            inputs.insert(3, {"order_id": 99, "items": ["lamp"], "card": "declined"})
            finished = [client.start_flow_sync(orders, i, timeout=60) for i in inputs]
            shown = finished[-1]
            # Still running when the list is taken.
            client.start_flow(orders, {"order_id": 7, "items": ["coffee", "cake"], "pause": 8})
            with serving(create_app(url)) as base, sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=browser_path)
                page = browser.new_page(viewport={"width": 1280, "height": 560})
                page.goto(f"{base}/")
                page.wait_for_selector("#live-state.on")
                page.screenshot(path=str(DOCS / "dashboard-runs.png"))
                page.goto(f"{base}/runs/{shown.run_id}")
                page.wait_for_selector("#live-state.on")
                page.set_viewport_size({"width": 1280, "height": 1100})
                page.screenshot(path=str(DOCS / "dashboard-run.png"))
                browser.close()
    print(f"wrote {DOCS / 'dashboard-runs.png'} and {DOCS / 'dashboard-run.png'}")


if __name__ == "__main__":
    main()
