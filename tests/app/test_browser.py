"""The real app in a real browser: start it as `notesqa app` does, ask in headless Chromium, save a
screenshot.

Needs Chromium and chromedriver (Debian: `apt install chromium chromium-driver`) and selenium;
marked `browser`, so it runs with `make test-browser`, not in the default suite. The driver is the
installed chromedriver, named to Selenium, so Selenium Manager never goes to the network for one.
The screenshot goes to $NOTESQA_SCREENSHOT (default build/app-screenshot.png).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser
webdriver = pytest.importorskip("selenium.webdriver")
CHROMEDRIVER = shutil.which("chromedriver")
if not (shutil.which("chromium") and CHROMEDRIVER):
    pytest.skip(
        "chromium and chromedriver are not installed (Debian: apt install chromium "
        "chromium-driver); Selenium would otherwise download a driver",
        allow_module_level=True,
    )

from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

REPO = Path(__file__).resolve().parents[2]

from app.serve import python_module_command, streamlit_arguments  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def page_text(driver) -> str:
    """What the page shows, for a failure message."""
    return driver.find_element(By.TAG_NAME, "body").text[:3000]


def _models(request) -> dict[str, str]:
    """The shipped models when present (a realistic page), else the session's tiny ones."""
    if (REPO / "models" / "reader" / "config.json").exists():
        return {}
    return {
        "NOTESQA_EMBEDDER": str(request.getfixturevalue("tiny_embedder_dir")),
        "NOTESQA_READER": str(request.getfixturevalue("tiny_reader_dir")),
    }


@pytest.fixture
def server(tmp_path, request):
    notes = tmp_path / "notes"
    shutil.copytree(REPO / "examples" / "notes", notes, ignore=shutil.ignore_patterns(".notesqa"))
    env = {**os.environ, "NOTESQA_NOTES": str(notes), **_models(request)}
    from rag.pipeline import NotesQA

    NotesQA.open(
        notes, embedder=env.get("NOTESQA_EMBEDDER"), reader=env.get("NOTESQA_READER")
    ).index(progress=False)
    port = _free_port()
    streamlit = [*streamlit_arguments("127.0.0.1", port), "--server.headless", "true"]
    proc = subprocess.Popen(
        python_module_command("streamlit", streamlit),  # as `notesqa app` starts it
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("streamlit did not start within 60 s")
    yield url
    proc.terminate()
    proc.wait(timeout=20)


def test_ask_in_a_real_browser_and_save_a_screenshot(server):
    options = webdriver.ChromeOptions()
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        driver.get(server)
        wait = WebDriverWait(driver, 120)
        try:
            box = wait.until(
                EC.presence_of_element_located((By.CSS_SELECTOR, "input[aria-label='Question']"))
            )
        except TimeoutException:
            pytest.fail(f"no question box; the page shows:\n{page_text(driver)}")
        assert box.get_attribute("placeholder").startswith("e.g. a question about")
        box.send_keys("What does Adam keep for every parameter?")
        box.send_keys(Keys.ENTER)
        wait.until(lambda d: "No answer in your notes" in d.page_source or "<mark" in d.page_source)
        time.sleep(1.0)  # let the page settle before the picture
        out = Path(os.environ.get("NOTESQA_SCREENSHOT", REPO / "build" / "app-screenshot.png"))
        out.parent.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(out))
        assert out.stat().st_size > 10_000
        assert (
            "optimisers.md" in driver.page_source or "No answer in your notes" in driver.page_source
        )
        assert "Deploy" not in driver.page_source  # toolbarMode minimal: a reader's page
    finally:
        driver.quit()
