"""report.html in a real browser: headless Chromium (Debian's `chromium`) driven by Playwright's Python package.

The page is opened from disk (file://), as a person on an offline machine would; every request the page makes
is recorded and must be file: or data:. Without a browser these tests are SKIPPED with a loud reason
(what to install); with MMREWARD_REQUIRE_BROWSER=1 (set by .ci/run once chromium is installed) they FAIL instead,
so a browser that is there but broken never passes as a skip. Screenshots go to the test's tmp folder, and also
to $MMREWARD_SCREENSHOTS when set (how docs/images/ is refreshed).
"""

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from report_runs import HOSTILE

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
                 "--disable-dev-shm-usage"]


def _missing(what: str):
    message = (f"BROWSER TEST NOT RUN: {what}. Install it (Debian: apt-get install -y chromium; "
               ".venv/bin/pip install playwright; never `playwright install`).")
    if os.environ.get("MMREWARD_REQUIRE_BROWSER") == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def chromium_path() -> str | None:
    """$MMREWARD_CHROMIUM, else chromium / chromium-browser on PATH, else /usr/bin/chromium."""
    for candidate in (os.environ.get("MMREWARD_CHROMIUM"), shutil.which("chromium"),
                      shutil.which("chromium-browser"), "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the Python package `playwright` is not installed")
    path = chromium_path()
    if path is None:
        _missing("no Chromium executable (chromium, chromium-browser, /usr/bin/chromium or $MMREWARD_CHROMIUM)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser):
    """open_page(path) -> (page, requests, dialogs): the report loaded from disk, every request recorded."""
    pages = []

    def open_(path: Path, width: int = 1400, height: int = 900):
        page = browser.new_page(viewport={"width": width, "height": height})
        requests, dialogs = [], []
        page.on("request", lambda r: requests.append(r.url))
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(path.resolve().as_uri())
        page.wait_for_selector("body[data-ready='1']", timeout=20000)
        pages.append(page)
        return page, requests, dialogs

    yield open_
    for page in pages:
        page.close()


def _shot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    assert path.read_bytes()[:4] == b"\x89PNG"
    if os.environ.get("MMREWARD_SCREENSHOTS"):
        target = Path(os.environ["MMREWARD_SCREENSHOTS"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target / path.name)
    return path


def _offline(requests: list[str]) -> None:
    assert requests and all(u.startswith(("file:", "data:")) for u in requests), requests


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]


def test_head_run_filters_sorts_searches_and_navigates(report_head_run, open_page, tmp_path):
    rows = _rows(report_head_run)
    page, requests, dialogs = open_page(report_head_run / "report.html")
    assert page.inner_text("#count") == f"{len(rows)} of {len(rows)} samples"
    assert "videogen.without_ties.Overall" in page.inner_text("#metrics")
    assert page.locator("#plots img").count() == 3
    # Wrong only: label A/B/tie against the preferred side, counted by hand from samples.jsonl.
    wrong = [r["id"] for r in rows if r["label"] in ("A", "B", "tie") and r["preferred"] != r["label"]]
    page.check("#f-wrong")
    assert page.inner_text("#count") == f"{len(wrong)} of {len(rows)} samples"
    assert page.locator(".row .pid").all_inner_texts() == wrong
    page.uncheck("#f-wrong")
    # Sort by |margin|, largest first.
    page.select_option("#sort", "margin-desc")
    by_margin = [r["id"] for r in sorted(rows, key=lambda r: (-abs(r["margin"]), r["index"]))]
    assert page.locator(".row .pid").all_inner_texts() == by_margin
    # Dimension VQ: rows keep only pairs with a VQ label; the margin becomes the VQ margin.
    page.select_option("#sort", "index")
    page.select_option("#f-dimension", "VQ")
    vq = [r for r in rows if (r.get("dimensions") or {}).get("VQ")]
    assert page.inner_text("#count") == f"{len(vq)} of {len(rows)} samples"
    first_vq = vq[0]["scores"]["VQ"][0] - vq[0]["scores"]["VQ"][1]
    assert f"margin (A − B) {first_vq:.4f}" in page.inner_text("#detail")
    page.select_option("#f-dimension", "")
    # Search, then keyboard: "/" focuses the search box, Escape leaves it, j moves the selection down.
    page.locator("#list").focus()
    page.keyboard.press("/")
    page.keyboard.type("take 3")
    assert page.locator(".row .pid").all_inner_texts() == ["3"]
    page.keyboard.press("Escape")  # clears the search box (Chromium), and the filter with it
    assert page.inner_text("#count") == f"{len(rows)} of {len(rows)} samples"
    page.locator("#list").focus()
    page.keyboard.press("j")
    page.keyboard.press("j")
    assert page.inner_text(".row.sel .pid") == rows[2]["id"]
    assert page.inner_text("#detail h2").startswith(rows[2]["id"])
    # The detail shows each video's sampled frames with their timestamps, from inlined thumbnails.
    detail = page.inner_text("#detail")
    assert "videos/v2.mp4" in detail and "sampled frames shown (2.0000 fps)" in detail and "t=0.00s" in detail
    srcs = page.eval_on_selector_all("#detail figure img", "els => els.map(e => e.src)")
    assert srcs and all(s.startswith("data:image/jpeg;base64,") for s in srcs)
    # data: images decode asynchronously: wait (bounded) until every one has decoded, rather than racing it.
    page.wait_for_function("[...document.querySelectorAll('#detail img')].every(i => i.complete && i.naturalWidth > 0)",
                           timeout=30_000)
    # A prompt that tries to inject markup is shown as text and runs nothing.
    page.fill("#search", "onerror")
    assert HOSTILE in page.inner_text("#detail .prompt")
    assert page.evaluate("window.__pwned") is None and not dialogs
    page.fill("#search", "")
    _offline(requests)
    _shot(page, tmp_path, "report_head")


def test_judge_run_shows_trajectories_failures_and_position_flips(report_judge_run, open_page, tmp_path):
    page, requests, dialogs = open_page(report_judge_run / "report.html")
    assert page.inner_text("#count") == "4 of 4 samples"
    page.check("#f-unparsed")
    assert page.locator(".row .pid").all_inner_texts() == ["p2"]
    detail = page.inner_text("#detail")
    assert "parse failure:" in detail and "Both are fine I guess." in detail
    page.uncheck("#f-unparsed")
    # Position-inconsistent: only the biased item flips when A and B swap.
    page.check("#f-inconsistent")
    assert page.locator(".row .pid").all_inner_texts() == ["p0"]
    page.uncheck("#f-inconsistent")
    page.select_option("#f-category", "motion")
    assert page.locator(".row .pid").all_inner_texts() == ["p1", "p3"]
    page.select_option("#f-category", "")
    page.locator(".row", has_text="p3").click()
    detail = page.inner_text("#detail")
    # Both orders' episodes: thinking, the tool calls with arguments, returned and evicted frames, the answer.
    assert detail.count("Trajectory · order") == 2
    assert '→ select_frames({"video": 1, "target_frames": [1, 10, 20]})' in detail
    assert "Video 2 lasts longer and keeps moving." in detail
    evicted = page.locator("#detail figure.evicted")
    assert evicted.count() == 6  # 3 frames of the first look, per order
    assert evicted.first.get_attribute("title").startswith("evicted by the memory window")
    assert page.locator("#detail figure.evicted img").count() == 6  # the pixels were kept for the report
    page.wait_for_function("[...document.querySelectorAll('#detail figure img')].every(i => i.complete && "
                           "i.naturalWidth > 0)", timeout=30_000)
    assert 'verdict: {"VQ":"B","MQ":"B","TA":"B","overall":"B"}' in detail
    assert not dialogs
    _offline(requests)
    page.click("#overview > summary")  # fold the overview: the screenshot shows the trajectory
    page.locator("#detail .trace .msg.assistant").first.evaluate("e => e.scrollIntoView({block: 'start'})")
    _shot(page, tmp_path, "report_judge")


def test_five_thousand_samples_render_incrementally(open_page, tmp_path):
    from mmreward.evaluation.html_report import write_html_report

    rows = [{"index": i, "id": f"s{i}", "label": "AB"[i % 2], "preferred": "AB"[(i // 3) % 2],
             "margin": ((i * 37) % 200 - 100) / 10, "consistent": None, "category": f"c{i % 7}",
             "failure": None, "scores": {"overall": [1.0, 0.0]}} for i in range(5000)]
    summary = {"benchmark": "synthetic", "model": "m", "items": len(rows), "metrics": {"n": len(rows)}}
    page_path = write_html_report(tmp_path, summary, rows, kind="pairs", plots=[])
    t0 = time.perf_counter()
    page, requests, _ = open_page(page_path)
    loaded = time.perf_counter() - t0
    assert page.inner_text("#count") == "5000 of 5000 samples"
    assert page.locator(".row").count() == 100  # one chunk; the rest as the list scrolls
    page.locator("#sentinel").scroll_into_view_if_needed()
    page.wait_for_selector(".row[data-pos='199']", state="attached")
    assert page.locator(".row").count() == 200
    page.fill("#search", "s4999")
    assert page.locator(".row .pid").all_inner_texts() == ["s4999"]
    _offline(requests)
    # Measured, not asserted (no timed assertions): the README quotes it.
    print(f"5000-sample report: {page_path.stat().st_size / 2**20:.1f} MB, ready in {loaded:.2f} s")
