"""The playground in a real headless Chromium (Debian's `chromium`, driven by Playwright for Python):
the numbers the page shows are `Embedder.embed`'s cosines, search ranks as the embedder does, the
server's refusals (413, 429, 400, 422, 401) appear in words, the page works with the keyboard alone
and on a phone-sized screen, and it never asks for anything outside 127.0.0.1.

Chromium is `/usr/bin/chromium` (`make test` installs it); no browser is downloaded. Locally a
missing Chromium or Playwright skips these tests; in CI (CI=true) it fails them.
`UPDATE_SCREENSHOT=1` also writes docs/playground.png (otherwise the screenshot stays in tmp).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

try:  # openai>=3 ships the httpx2 fork; older stacks have httpx (same API)
    import httpx2 as httpx
except ImportError:  # pragma: no cover
    import httpx  # type: ignore[no-redef]
import numpy as np
import pytest
from server_fakes import FakeEmbedder, start_server

from instructembed.server import ServerSettings, create_app
from instructembed.server.testing import ThreadedServer

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("INSTRUCTEMBED_TEST_CHROMIUM", "/usr/bin/chromium")
# Keep the browser off the network: no background requests, component or safe-browsing updates,
# sync, metrics or crash uploads, and every host name except 127.0.0.1 unresolvable.
CHROMIUM_FLAGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-default-apps",
    "--disable-extensions",
    "--metrics-recording-only",
    "--disable-breakpad",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--no-pings",
    "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,"
    "AutofillServerCommunication,CertificateTransparencyComponentUpdater,InterestFeedContentSuggestions",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
TOL = 1e-3
TEXTS = [
    "The cat sat on the warm windowsill all afternoon.",
    "A kitten napped in the sun by the window.",
    "Quarterly revenue grew by twelve percent.",
    "The company's profits rose sharply this quarter.",
    "I loved every minute of this film.",
]
INSTRUCTIONS = ["Represent the statement: ", "Represent the news comment for retrieval: "]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must run the browser tests (`make test` installs chromium)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One Chromium per module with a throwaway profile; every request it makes is recorded, and
    the module fails if one left 127.0.0.1 (the resolver rules make sure none could get out)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed (it is in the [dev] extra)")
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    outside: list[str] = []

    def record(request: Any) -> None:
        if not request.url.startswith(("http://127.0.0.1:", "data:")):
            outside.append(request.url)

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        context.on("request", record)
        context.set_default_timeout(60_000)
        try:
            yield context
        finally:
            context.close()
    assert not outside, f"the page asked for something outside 127.0.0.1: {outside}"


@pytest.fixture(scope="module")
def real(minilm: Any) -> Iterator[tuple[str, Any]]:
    server = ThreadedServer(create_app(minilm, ServerSettings(max_wait_ms=2)))
    server.start()
    yield server.base_url, minilm
    server.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh tab; any uncaught script error in it fails the test."""
    tab = browser.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    tab.close()
    assert not errors, f"script errors in the page: {errors}"


def open_playground(page: Any, base_url: str) -> None:
    page.goto(f"{base_url}/playground")  # the redirect to /playground/ included
    page.wait_for_function("document.getElementById('info-model').textContent !== 'loading…'")
    page.wait_for_selector('#example option[value="reviews"]', state="attached")
    page.wait_for_selector("#query-suggestions optgroup", state="attached")


def set_instructions(page: Any, instructions: list[str]) -> None:
    boxes = page.locator("fieldset.instruction textarea")
    while boxes.count() < len(instructions):
        page.click("#add-instruction")
    while boxes.count() > len(instructions):
        page.locator("fieldset.instruction button.remove").last.click()
    for i, instruction in enumerate(instructions):
        boxes.nth(i).fill(instruction)


def shown_matrices(page: Any, count: int, n: int) -> list[np.ndarray]:
    """The cosines the page shows on hover (each cell's title), one (n, n) matrix per heatmap."""
    matrices = []
    for j in range(1, count + 1):
        cells = page.eval_on_selector_all(
            f'figure[data-instruction="{j}"] td[data-row]',
            "cells => cells.map(c => [+c.dataset.row, +c.dataset.col, c.title, c.textContent])",
        )
        assert len(cells) == n * n
        matrix = np.full((n, n), np.nan)
        for row, col, title, text in cells:
            value = float(title.rsplit("cosine ", 1)[1])
            assert text == f"{value:.2f}" or abs(float(text) - value) <= 0.005  # the number in the cell
            matrix[row - 1, col - 1] = value
        matrices.append(matrix)
    return matrices


def expected_cosines(embedder: Any, instruction: str, texts: list[str]) -> np.ndarray:
    vectors = embedder.embed([(instruction, t) for t in texts]).astype(np.float64)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors @ vectors.T


def error_text(page: Any, which: str) -> str:
    page.wait_for_selector(f"#{which}-error:not([hidden])")
    text: str = page.inner_text(f"#{which}-error")
    assert page.is_enabled(f"#{which}"), "the button must work again after an error"
    return text


# ---- the real model --------------------------------------------------------------------------


def test_model_facts_come_from_info(page: Any, real: tuple[str, Any]) -> None:
    base_url, embedder = real
    open_playground(page, base_url)
    info = httpx.get(f"{base_url}/info").json()
    assert page.inner_text("#info-model") == "all-MiniLM-L6-v2" == info["model"]
    assert page.inner_text("#info-dimension") == str(embedder.dimension) == "384"
    assert page.inner_text("#info-max-length") == f"{embedder.max_seq_length} tokens"
    assert page.inner_text("#info-precision") == info["precision"] == "fp32"
    # the first example set is loaded, and the index choice says why it is off
    assert page.input_value("#texts").count("\n") >= 2
    assert page.is_disabled("#source-index") and "has none" in page.inner_text("#index-choice")


def test_heatmaps_show_the_embedders_cosines(page: Any, real: tuple[str, Any]) -> None:
    base_url, embedder = real
    open_playground(page, base_url)
    page.fill("#texts", "\n".join(TEXTS[:2]) + "\n\n   \n" + "\n".join(TEXTS[2:]))  # blank lines skipped
    set_instructions(page, INSTRUCTIONS)
    page.click("#compare")
    page.wait_for_selector(f'figure[data-instruction="{len(INSTRUCTIONS)}"]')
    shown = shown_matrices(page, len(INSTRUCTIONS), len(TEXTS))
    for instruction, matrix in zip(INSTRUCTIONS, shown, strict=True):
        np.testing.assert_allclose(matrix, expected_cosines(embedder, instruction, TEXTS), atol=TOL)
    # the point of the page: another instruction, another picture
    assert np.abs(shown[0] - shown[1]).max() > 0.02
    # the numbers are in a table with row and column headers (screen readers read them with the cell)
    assert page.locator('figure[data-instruction="1"] th[scope="col"]').count() == len(TEXTS)
    assert page.locator('figure[data-instruction="1"] th[scope="row"]').count() == len(TEXTS)
    assert "Embedded 10 inputs" in page.inner_text("#compare-status")


def test_the_first_example_end_to_end_and_its_screenshot(
    page: Any, real: tuple[str, Any], tmp_path: Path
) -> None:
    """What a visitor sees after pressing Compare and Search on the example the page opens with
    (the picture in docs/playground.png; written there only with UPDATE_SCREENSHOT=1)."""
    base_url, _ = real
    open_playground(page, base_url)
    page.click("#compare")
    page.wait_for_selector('figure[data-instruction="2"]')
    page.click("#search")
    page.wait_for_selector("#results li")
    assert page.locator("#results li").count() == 6
    assert page.locator("table.neighbours tbody tr").count() == 6
    assert page.locator("ul.changes li").count() == 5
    assert page.is_hidden("#compare-error") and page.is_hidden("#search-error")
    shot = tmp_path / "playground.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "playground.png")


def test_search_ranks_the_texts_like_the_embedder(page: Any, real: tuple[str, Any]) -> None:
    base_url, embedder = real
    open_playground(page, base_url)
    query, q_instruction = (
        "my cat sleeps by the window",
        "Represent the question for retrieving supporting documents: ",
    )
    d_instruction = "Represent the document for retrieval: "
    page.fill("#texts", "\n".join(TEXTS))
    page.fill("#query", query)
    page.fill("#query-instruction", q_instruction)
    page.fill("#doc-instruction", d_instruction)
    page.fill("#top-k", "4")
    page.click("#search")
    page.wait_for_selector("#results li")
    rows = page.eval_on_selector_all(
        "#results li",
        "items => items.map(li => [li.querySelector('.doc-text').textContent, +li.dataset.score])",
    )
    vectors = embedder.embed([(q_instruction, query), *[(d_instruction, t) for t in TEXTS]]).astype(
        np.float64
    )
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = vectors[1:] @ vectors[0]
    order = np.argsort(-scores)[:4]
    assert [text for text, _ in rows] == [TEXTS[i] for i in order]
    np.testing.assert_allclose([s for _, s in rows], scores[order], atol=TOL)
    assert rows[0][0] in TEXTS[:2]  # the cat texts first


def test_five_thousand_texts_get_the_servers_limit_in_words(page: Any, real: tuple[str, Any]) -> None:
    base_url, _ = real
    open_playground(page, base_url)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
    page.evaluate(
        "text => navigator.clipboard.writeText(text)", "\n".join(f"pasted text {i}" for i in range(5000))
    )
    page.focus("#texts")
    page.keyboard.press("Control+A")
    page.keyboard.press("Control+V")  # a real paste
    assert page.inner_text("#text-count").startswith("5000 texts")
    page.click("#search")
    message = error_text(page, "search")
    assert "HTTP 422" in message and "5001 items; the limit is 2048 per request" in message
    assert page.locator("#results li").count() == 0
    page.click("#compare")  # the heatmaps' own limit, said before sending anything
    assert "at most 100 texts and there are 5000" in error_text(page, "compare")
    page.fill("#texts", "\n".join(TEXTS))  # and the page still works
    page.click("#search")
    page.wait_for_selector("#results li")
    assert page.is_hidden("#search-error")


def test_keyboard_alone(page: Any, real: tuple[str, Any]) -> None:
    base_url, _ = real
    open_playground(page, base_url)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    seen: list[str] = []
    for _ in range(40):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "(() => { const e = document.activeElement; const s = getComputedStyle(e);"
            " return [e.tagName, e.id || e.className, s.outlineStyle, e.labels ? e.labels.length : -1,"
            " e.getAttribute('aria-label')]; })()"
        )
        tag, name, outline, labels, aria = focused
        assert tag in ("A", "BUTTON", "INPUT", "SELECT", "TEXTAREA", "SUMMARY") or aria, focused
        assert outline != "none", f"no visible focus on {focused}"
        if tag in ("INPUT", "SELECT", "TEXTAREA"):
            assert labels > 0 or aria, f"{name} has no label"
        seen.append(name)
        if name == "search":
            break
    expected = [
        "example",
        "load-example",
        "texts",
        "instruction-",
        "add-instruction",
        "compare",
        "query",
        "search",
    ]
    positions = [next(i for i, s in enumerate(seen) if s.startswith(e)) for e in expected]
    assert positions == sorted(positions), seen

    # load the second example and compare, keys only
    page.focus("#example")
    page.keyboard.press("ArrowDown")
    assert page.input_value("#example") == "science"
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    assert "Coral reefs" in page.input_value("#texts")
    page.focus("#compare")
    page.keyboard.press("Enter")
    page.wait_for_selector('figure[data-instruction="2"]')
    # a suggestion picked with the arrow keys fills the instruction box
    page.focus("fieldset.instruction select >> nth=0")
    page.keyboard.press("ArrowDown")
    chosen = page.input_value("fieldset.instruction select >> nth=0")
    assert chosen and page.input_value("fieldset.instruction textarea >> nth=0") == chosen
    # remove and add instruction boxes from the keyboard; focus lands somewhere useful
    page.focus("fieldset.instruction button.remove >> nth=1")
    page.keyboard.press("Enter")
    assert page.locator("fieldset.instruction").count() == 1
    assert page.evaluate("document.activeElement.tagName") == "TEXTAREA"
    page.focus("#add-instruction")
    page.keyboard.press("Enter")
    assert page.locator("fieldset.instruction").count() == 2
    assert page.evaluate(
        "document.activeElement.closest('fieldset').querySelector('legend').textContent"
    ) == ("Instruction 2")


def test_a_phone_screen(browser: Any, real: tuple[str, Any], tmp_path: Path) -> None:
    base_url, _ = real
    phone = browser.new_page()
    phone.set_viewport_size({"width": 360, "height": 740})
    try:
        open_playground(phone, base_url)
        phone.click("#compare")
        phone.wait_for_selector('figure[data-instruction="2"]')
        phone.click("#search")
        phone.wait_for_selector("#results li")
        width = phone.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], f"the page scrolls sideways on a phone: {width}"
        for selector in ("#compare", "#search", "#texts", "figure.heatmap-figure"):
            box = phone.locator(selector).first.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= width[1] + 0.5, selector
        phone.screenshot(path=str(tmp_path / "playground-phone.png"), full_page=True)
    finally:
        phone.close()


# ---- the server's refusals, with a fake model and small limits --------------------------------


@pytest.fixture(scope="module")
def strict() -> Iterator[str]:
    fake = FakeEmbedder(delay=1.5)
    settings = ServerSettings(max_body_bytes=2048, max_items_per_request=4, max_queue_items=4, max_wait_ms=0)
    server = start_server(fake, settings)
    yield server.base_url
    server.stop()


def test_413_400_and_422_in_words(page: Any, strict: str) -> None:
    open_playground(page, strict)
    set_instructions(page, ["Represent the statement: "])
    page.fill("#texts", "\n".join(["word " * 600, "short"]))
    page.click("#compare")
    message = error_text(page, "compare")
    assert "Too much text in one request (HTTP 413)" in message and "at most 2 KiB per request" in message

    page.fill("#texts", "one\ntwo\nthree")
    page.fill("#query", "   ")
    page.click("#search")
    message = error_text(page, "search")
    assert "HTTP 400" in message and "is empty" in message and "(That is the query.)" in message

    page.fill("#texts", "\n".join(["a", "b", "c", "d", "e"]))
    set_instructions(page, ["Represent the statement: ", ""])
    page.click("#compare")
    message = error_text(page, "compare")
    assert "HTTP 422" in message and "10 items; the limit is 4 per request" in message


def test_429_in_words(page: Any, strict: str) -> None:
    open_playground(page, strict)
    page.fill("#texts", "one")
    page.fill("#query", "a query")
    url = f"{strict}/v1/embeddings"
    with ThreadPoolExecutor(2) as pool:
        running = pool.submit(httpx.post, url, json={"input": ["r1", "r2", "r3", "r4"]}, timeout=30)
        time.sleep(0.3)  # in the model now; the queue is empty again
        queued = pool.submit(httpx.post, url, json={"input": ["q1", "q2", "q3", "q4"]}, timeout=30)
        time.sleep(0.3)  # queued: the queue is full
        page.click("#search")
        message = error_text(page, "search")
        assert not queued.done(), "the queue emptied before the page asked; the test did not test a 429"
        assert running.result().status_code == 200 and queued.result().status_code == 200
    assert "The server is busy (HTTP 429)" in message and "overloaded" in message
    assert "try again in 1 second(s)" in message


def test_401_asks_for_the_key(page: Any) -> None:
    server = start_server(FakeEmbedder(), ServerSettings(api_key="s3cret"))
    try:
        open_playground(page, server.base_url)
        assert page.is_visible("#api-key")
        page.click("#compare")
        assert "API key needed (HTTP 401)" in error_text(page, "compare")
        page.fill("#api-key", "s3cret")
        page.click("#compare")
        page.wait_for_selector('figure[data-instruction="2"]')
        assert page.is_hidden("#compare-error")
    finally:
        server.stop()


def test_a_server_that_went_away_is_said(page: Any) -> None:
    server = start_server(FakeEmbedder(), ServerSettings())
    open_playground(page, server.base_url)
    server.stop()
    page.click("#compare")
    assert "Could not reach the server" in error_text(page, "compare")


# ---- searching the server's index (POST /v1/search, issue 12) ---------------------------------

DOCS = {
    "river": "Rivers flow into the sea through wide valleys.",
    "train": "Trains leave the station every ten minutes.",
    "glacier": "Glaciers carve valleys over thousands of years.",
    "bread": "Bread needs flour, water, salt and time.",
}


def test_search_the_servers_index(page: Any, minilm: Any, tmp_path: Path) -> None:
    """When /info lists an index, the page offers it and shows what Index.search answers."""
    from instructembed.index import Index

    doc_instruction = "Represent the document for retrieval: "
    query_instruction = "Represent the question for retrieving supporting documents: "
    path = tmp_path / "ix"
    with Index.create(
        path,
        model="all-MiniLM-L6-v2",
        doc_instruction=doc_instruction,
        query_instruction=query_instruction,
        embedder=minilm,
    ) as index:
        index.add([{"id": k, "text": t, "metadata": {"n": len(t)}} for k, t in DOCS.items()])
    server = ThreadedServer(create_app(minilm, ServerSettings(), index=path))
    server.start()
    try:
        open_playground(page, server.base_url)
        assert page.is_enabled("#source-index") and "4 documents" in page.inner_text("#index-choice")
        page.check("#source-index")
        assert page.input_value("#doc-instruction") == doc_instruction
        assert page.get_attribute("#doc-instruction", "readonly") is not None
        assert page.input_value("#query-instruction") == query_instruction
        page.fill("#query", "where does the water of a river end up?")
        page.fill("#top-k", "3")
        page.click("#search")
        page.wait_for_selector("#results li")
        rows = page.eval_on_selector_all(
            "#results li",
            "items => items.map(li => [li.querySelector('.doc-label').textContent, +li.dataset.score,"
            " li.querySelector('.doc-text').textContent])",
        )
        with Index.open(path, embedder=minilm) as opened:
            (hits,) = opened.search(["where does the water of a river end up?"], k=3)
        assert [label.rstrip(":") for label, _, _ in rows] == [hit.id for hit in hits]
        np.testing.assert_allclose([score for _, score, _ in rows], [hit.score for hit in hits], atol=TOL)
        assert rows[0][2] == DOCS[hits[0].id]
        page.check('input[name="source"][value="texts"]')  # back to the page's texts
        assert page.get_attribute("#doc-instruction", "readonly") is None
    finally:
        server.stop()
