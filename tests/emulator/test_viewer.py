"""The run viewer in headless Chromium against a real run on the dev stack.

It loads the page, finds the run's Gantt bars and statuses in the DOM,
completes the run's approval token through the page, watches the run finish,
and saves a screenshot. Skipped, saying so, where Chromium or its driver is
absent (``make viewer-test`` installs Debian's ``chromium`` and
``chromium-driver``).
"""

from __future__ import annotations

import json
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from durable_lambda.local.dev_server import DevServer

pytestmark = [pytest.mark.emulator, pytest.mark.slow, pytest.mark.moto]

#: Only stops a broken test from hanging; no assertion depends on it.
PATIENCE = 120.0

TASKS = """
from durable_lambda import step, task, wait


@step
def prepare(order: str) -> str:
    return "prepared " + order


@step
def ship(order: str, approval: dict) -> str:
    return f"shipped {order} by {approval['by']}"


@task(id="viewer-approval")
async def approval(payload: dict) -> str:
    prepared = await prepare(payload["order"])
    token = await wait.create_token(name="approve")
    decision = await wait.for_token(token)
    return await ship(prepared, decision)
"""


def _browser() -> Any:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.skip("no chromium/chromedriver: `make viewer-test` installs Debian's packages")
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(
        service=webdriver.ChromeService(executable_path=driver), options=options
    )


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevServer]:
    (tmp_path / "viewer_tasks.py").write_text(TASKS)
    server = DevServer(
        ["viewer_tasks"], port=0, timeout=10.0, pythonpath=[str(tmp_path)], log_dir=tmp_path
    )
    with server:
        yield server


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 - our own localhost server
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=PATIENCE) as response:  # noqa: S310
        return json.loads(response.read())  # type: ignore[no-any-return]


def test_the_viewer_shows_a_run_and_completes_its_token(dev: DevServer, tmp_path: Path):
    from selenium.webdriver.common.by import By  # noqa: PLC0415 - after the skip
    from selenium.webdriver.support import expected_conditions as seen  # noqa: PLC0415
    from selenium.webdriver.support.ui import WebDriverWait  # noqa: PLC0415

    run_id = _post(f"{dev.url}/tasks/viewer-approval/runs", {"payload": {"order": "o-1"}})["run_id"]
    browser = _browser()
    try:
        wait = WebDriverWait(browser, PATIENCE)
        browser.get(f"{dev.url}/viewer")  # the run list
        wait.until(seen.presence_of_element_located((By.CSS_SELECTOR, f'tr[data-run="{run_id}"]')))

        browser.get(f"{dev.url}/viewer#/runs/{run_id}")
        pending = '.bar[data-kind="token"][data-status="PENDING"]'
        wait.until(seen.presence_of_element_located((By.CSS_SELECTOR, pending)))
        bars = browser.find_elements(By.CSS_SELECTOR, ".bar")
        kinds = [(b.get_attribute("data-kind"), b.get_attribute("data-name")) for b in bars]
        assert ("step", "prepare") in kinds
        assert any(kind == "token" for kind, _ in kinds)
        assert browser.find_element(By.CSS_SELECTOR, "h2 .status").get_attribute("data-status") in {
            "SUSPENDED",
            "RUNNING",
        }
        browser.save_screenshot(str(tmp_path / "viewer-waiting.png"))

        # Fill the data and press the button in one script: the page redraws
        # itself every second while the run goes, and a redraw between two
        # WebDriver calls would swap the elements under them.
        browser.execute_script(
            """
            const box = document.querySelector(".token textarea");
            box.value = '{"by": "ada"}';
            document.querySelector(".token button.complete").click();
            """
        )

        done = 'h2 .status[data-status="COMPLETED"]'
        wait.until(seen.presence_of_element_located((By.CSS_SELECTOR, done)))
        output = browser.find_element(By.ID, "output").text
        assert json.loads(output) == "shipped prepared o-1 by ada"
        names = [
            b.get_attribute("data-name") for b in browser.find_elements(By.CSS_SELECTOR, ".bar")
        ]
        assert "ship" in names
        token_states = [
            b.get_attribute("data-status")
            for b in browser.find_elements(By.CSS_SELECTOR, '.bar[data-kind="token"]')
        ]
        assert token_states == ["COMPLETED"]
        assert not browser.find_elements(By.CSS_SELECTOR, ".token button.complete")
        invocations = browser.find_elements(By.CSS_SELECTOR, '.bar[data-kind="invocation"]')
        assert len(invocations) == 2  # the token wait split the run in two (a deadline hop shows)
        text = browser.find_element(By.TAG_NAME, "main").text
        assert "[object" not in text  # every fact rendered as text, not as a stringified node
        assert "viewer-approval" in text
        browser.save_screenshot(str(tmp_path / "viewer-completed.png"))
        assert (tmp_path / "viewer-completed.png").stat().st_size > 10_000
    finally:
        browser.quit()


def test_the_viewer_page_is_served_beside_the_api(dev: DevServer):
    with urllib.request.urlopen(f"{dev.url}/viewer", timeout=PATIENCE) as response:  # noqa: S310
        html = response.read().decode()
        assert response.headers["content-type"].startswith("text/html")
    assert "<title>durable-lambda runs</title>" in html
    with urllib.request.urlopen(f"{dev.url}/tasks", timeout=PATIENCE) as response:  # noqa: S310
        assert "viewer-approval" in {t["task_id"] for t in json.loads(response.read())["tasks"]}
