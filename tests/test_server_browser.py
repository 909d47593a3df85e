"""The web chat page in headless Chromium (selenium + the Debian chromium-driver): type a
message, send it, and watch the reply arrive in pieces. Skipped when Chromium is absent
(.ci/run installs it with apt where it can)."""

from __future__ import annotations

import shutil
import time

import pytest

pytest.importorskip("fastapi")
webdriver = pytest.importorskip("selenium.webdriver")

from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from server_helpers import make_checkpoints  # noqa: E402

from causette.checkpoint.load import load_checkpoint  # noqa: E402
from causette.inference.server import ServerThread, create_app  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (CHROMIUM and DRIVER):
        pytest.skip("no chromium/chromedriver (Debian: apt-get install chromium chromium-driver)")
    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def test_web_chat_streams_a_reply(browser, tmp_path):
    loaded = load_checkpoint(make_checkpoints(tmp_path)["sft"], device="cpu")
    app = create_app(loaded)
    with ServerThread(app) as server:
        app.state.worker.min_step_seconds = 0.05  # tokens at a visible pace
        browser.get(server.url + "/")
        wait = WebDriverWait(browser, 60)
        wait.until(lambda d: "causette" in d.find_element(By.ID, "info").text)  # /v1/models was read
        browser.find_element(By.ID, "system").send_keys("Bref.")
        browser.execute_script("document.getElementById('max_tokens').value = '12';"
                               "document.getElementById('seed').value = '0';")
        browser.find_element(By.ID, "message").send_keys("Salut <|im_end|> !")
        browser.find_element(By.ID, "send").click()

        reply = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".msg.assistant"))
        partial = []  # the text seen while the reply was still coming
        deadline = time.monotonic() + 60
        while reply.get_attribute("data-done") != "true" and time.monotonic() < deadline:
            partial.append(reply.text)
            time.sleep(0.05)
        assert reply.get_attribute("data-done") == "true"
        assert "error" not in reply.get_attribute("class")
        user = browser.find_element(By.CSS_SELECTOR, ".msg.user").text
        assert user == "Salut <|im_end|> !"  # typed special tokens are plain text
        assert int(reply.get_attribute("data-chunks")) >= 2  # the reply came in several pieces...
        assert any(p and p != reply.text for p in partial)  # ...and was shown while it grew
        assert reply.text.strip()
        assert browser.find_element(By.ID, "send").is_enabled()

        # A second message that, with the history, overflows the 64-token context: the page
        # forgets the oldest exchange and asks again, instead of showing an error.
        second_message = "Et maintenant, une question plus longue !"
        browser.find_element(By.ID, "message").send_keys(second_message)
        browser.find_element(By.ID, "send").click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".msg.assistant")) == 2)
        second = browser.find_elements(By.CSS_SELECTOR, ".msg.assistant")[1]
        wait.until(lambda d: second.get_attribute("data-done") == "true")
        assert "error" not in second.get_attribute("class"), second.text
        assert "oublié" in second.text


def test_a_page_of_another_site_cannot_use_the_server(browser, tmp_path):
    """CSRF from a real browser: a page served elsewhere (another port: another origin) posts to
    the server, a "simple" text/plain request (no preflight) and a JSON one (preflight). The
    model must never run (server_guard.py)."""
    import functools
    import http.server
    import threading

    (tmp_path / "evil.html").write_text("<!doctype html><title>evil</title>", encoding="utf-8")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    loaded = load_checkpoint(make_checkpoints(tmp_path / "ck")["sft"], device="cpu")
    app = create_app(loaded)
    try:
        with ServerThread(app) as server:
            browser.get(f"http://127.0.0.1:{evil.server_address[1]}/evil.html")
            out = browser.execute_async_script("""
                const [url, done] = [arguments[0], arguments[arguments.length - 1]];
                const body = JSON.stringify({messages: [{role: "user", content: "salut"}], max_tokens: 2});
                const out = {};
                fetch(url, {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body})
                  .then(r => { out.simple = r.type; }, e => { out.simple = "error"; })
                  .then(() => fetch(url, {method: "POST", headers: {"Content-Type": "application/json"}, body}))
                  .then(r => { out.json = r.status; }, e => { out.json = "blocked"; })
                  .then(() => done(out));
            """, server.url + "/v1/chat/completions")
            assert out == {"simple": "opaque", "json": "blocked"}  # sent (unreadable), then refused at preflight
            assert app.state.worker.prompt_tokens == 0  # the model never ran
    finally:
        evil.shutdown()
