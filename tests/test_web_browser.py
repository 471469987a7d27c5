"""The browser pages in a real headless Chromium (Debian's chromium + chromium-driver, driven by Selenium) running
the vendored ONNX Runtime Web against the shipped DyConvSR x2 (engines/dyconvsr_x2.artifact), served by
runtime.web from this test: check.html says PASS, a picture that needs tiling upscaled in the page equals
runtime.infer's within 1 level, and bad files get their refusal in the page. Skipped, with the reason, where
Chromium, its driver, Selenium or npm (to vendor ORT Web once) is absent."""
from __future__ import annotations

import base64
import io
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from runtime.errors import UserError
from runtime.packaged import packaged_models
from runtime.upscaler import Upscaler
from runtime.web.app import open_server
from runtime.web.server import serve_in_thread, url
from runtime.web.vendor import vendor
from test_runtime_fixtures import SAMPLE

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
INSTALL = "apt-get install -y chromium chromium-driver"
PAGE_TIMEOUT = 120  # seconds for one page to reach its end state on 2 busy cores


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    """The base URL of runtime.web serving the shipped x2, ORT Web vendored first (make web-vendor) if need be."""
    try:
        vendor()
    except UserError as exc:
        pytest.skip(f"ONNX Runtime Web not vendored and cannot be: {exc}")
    server = open_server(packaged_models()["dyconvsr_x2"], port=0)
    serve_in_thread(server)
    yield url(server)
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not (CHROMIUM and DRIVER):
        pytest.skip(f"no Chromium and chromedriver on PATH (Debian: {INSTALL})")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (the dev extra)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--no-first-run"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)  # Debian's driver: nothing downloaded
    driver.set_script_timeout(PAGE_TIMEOUT)
    yield driver
    driver.quit()


def settle(driver, states: tuple[str, ...], polls: list[float] | None = None) -> str:
    """Wait until the page's body says one of ``states`` (data-state), and return it; each poll's round trip (a
    script on the page's main thread: slow when the tab is frozen) is appended to ``polls``."""
    deadline = time.monotonic() + PAGE_TIMEOUT
    while time.monotonic() < deadline:
        start = time.monotonic()
        state = driver.execute_script("return document.body ? document.body.dataset.state || '' : ''")
        if polls is not None:
            polls.append(time.monotonic() - start)
        if state in states:
            return state
        time.sleep(0.2)
    raise AssertionError(f"page never reached {states}: {driver.find_element('tag name', 'body').text[:2000]}")


def text(driver, element_id: str) -> str:
    return driver.execute_script(f"return document.getElementById('{element_id}').textContent")


def choose(driver, path: Path, polls: list[float] | None = None) -> str:
    """Pick ``path`` in the page's file input, as a user does; the end state (done or refused)."""
    driver.execute_script("document.body.dataset.state = 'waiting'")
    driver.find_element("id", "file").send_keys(str(path))
    return settle(driver, ("done", "refused"), polls)


def test_check_page_passes_the_shipped_x2(browser, served) -> None:
    browser.get(served + "check.html")
    settle(browser, ("done",))
    report = text(browser, "report")
    assert text(browser, "verdict") == "verdict: PASS", report
    assert report.rstrip().endswith("verdict: PASS")
    rows = {line.split()[0]: line for line in report.splitlines() if line.startswith(("model.", "tiled"))}
    assert " pass" in rows["model.onnx"] and " pass" in rows["model.int8.onnx"] and " pass" in rows["tiled"], report
    assert "skip: litert file" in rows["model.mobile.360x640.tflite"]
    assert "crossOriginIsolated true" in report


def test_page_upscale_equals_runtime_infer_when_tiled(browser, served, tmp_path) -> None:
    # 601x259: above the 512 px tile budget (two tile columns, whole-image statistics), odd sizes (align padding).
    picture = Image.open(SAMPLE).convert("RGB").resize((601, 259), Image.Resampling.BICUBIC)
    path = tmp_path / "wide.png"
    picture.save(path)
    browser.get(served)
    settle(browser, ("ready",))
    polls: list[float] = []
    assert choose(browser, path, polls) == "done", text(browser, "message")
    assert "2 tiles, whole-image statistics first" in text(browser, "status")
    # The tab answers while the picture runs: every engine call is awaited, in ORT Web's worker.
    assert len(polls) > 1 and max(polls) < 2.0, polls
    assert browser.find_element("id", "download").get_attribute("download") == "wide_x2.png"
    encoded = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(document.getElementById('download').href).then((r) => r.arrayBuffer()).then((b) => {"
        "  let s = ''; const u = new Uint8Array(b); for (let i = 0; i < u.length; i += 32768)"
        "    s += String.fromCharCode(...u.subarray(i, i + 32768)); done(btoa(s)); });")
    page = np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded))).convert("RGB"), dtype=np.int16)
    with Upscaler(packaged_models()["dyconvsr_x2"]) as upscaler:
        native = np.asarray(upscaler.upscale(Image.open(path)), dtype=np.int16)
    assert page.shape == native.shape == (518, 1202, 3)
    assert int(np.abs(page - native).max()) <= 1


def test_page_refuses_bad_files_with_a_message(browser, served, tmp_path) -> None:
    not_image = tmp_path / "notes.png"
    not_image.write_text("these are not pixels\n")
    huge = tmp_path / "huge.png"
    Image.new("L", (5000, 4000)).save(huge)  # 20 MP: above the page's 16.8 MP, a few KB on disk
    corrupt = tmp_path / "corrupt.png"
    good = io.BytesIO()
    Image.open(SAMPLE).save(good, format="PNG")
    data = bytearray(good.getvalue())
    data[60:-12] = bytes(len(data) - 72)  # signature and IHDR intact, the pixel data zeroed
    corrupt.write_bytes(bytes(data))
    browser.get(served)
    settle(browser, ("ready",))
    expected = {not_image: "is not an image", huge: "above this page's limit of 16.8 MP", corrupt: "corrupt"}
    for path, words in expected.items():
        assert choose(browser, path) == "refused", path
        assert words in text(browser, "message"), (path, text(browser, "message"))
    assert choose(browser, SAMPLE) == "done", text(browser, "message")  # the tab still works


def test_bench_page_prints_median_ms(browser, served) -> None:
    browser.get(served + "bench.html?rounds=3&warmup=1&threads=2")
    settle(browser, ("done",))
    report = text(browser, "report")
    assert "wasm, 2 threads, crossOriginIsolated true" in report, report
    assert float(report.rsplit("median ms: ", 1)[1]) > 0


def test_webgpu_is_used_where_present_else_wasm_with_a_message(browser, served) -> None:
    browser.get(served + "bench.html?rounds=1&warmup=0&ep=webgpu&variant=model.int8.onnx")
    settle(browser, ("done",))
    report = text(browser, "report")
    assert "model.int8.onnx, 640x360 -> 1280x720" in report and "median ms: " in report, report
    has_gpu = browser.execute_async_script(  # an adapter, not just the API: headless Chromium has navigator.gpu
        "const done = arguments[arguments.length - 1];"
        "if (!navigator.gpu) done(false);"
        "else navigator.gpu.requestAdapter().then((a) => done(Boolean(a)), () => done(false));")
    assert ("onnxruntime-web 1.30.0, webgpu" in report) if has_gpu else ("note: WebGPU is not available" in report)
