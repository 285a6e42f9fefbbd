"""The lectures as a static site and as reveal.js slides (``python -m coursekit.site``).

The fast tests check the pieces (slide marks from headings, lecture selection, the text
alternative of an image without one, the integrity check of a downloaded asset). The slow
test builds the site of one lecture with widgets and figures (L03) from a real kernel run and
opens the page and the slides in headless Chromium with every request that would leave the
disk refused: the widgets must render from their saved state, MathJax must typeset, every
image must load and carry a text alternative, reveal.js must start, and nothing may reach
for the network.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from coursekit import site


def _notebook(*sources: str):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(s)
        if s.lstrip().startswith("#") or s.startswith("text")
        else nbformat.v4.new_code_cell(s)
        for s in sources
    ]
    return nb


def test_slides_follow_the_headings():
    nb = _notebook(
        "# L99 · Title", "text", "x = 1", "## 1. Section", "### 1.1 Part", "text", "#### small"
    )
    site.mark_slides(nb)
    kinds = [c.metadata["slideshow"]["slide_type"] for c in nb.cells]
    assert kinds == ["slide", "-", "-", "slide", "subslide", "-", "-"]


def test_lecture_selection(tmp_path):
    for name in ("L01_a.ipynb", "L02_b.ipynb", "notes.ipynb"):
        nbformat.write(_notebook("# t"), tmp_path / name)
    assert [p.name for p in site.lecture_paths(tmp_path)] == ["L01_a.ipynb", "L02_b.ipynb"]
    assert [p.name for p in site.lecture_paths(tmp_path, ["l02"])] == ["L02_b.ipynb"]
    with pytest.raises(ValueError, match="L07"):
        site.lecture_paths(tmp_path, ["L07"])
    with pytest.raises(ValueError, match="no lecture notebooks"):
        site.lecture_paths(tmp_path / "missing")


def test_images_without_text_get_one():
    body = '<p><img src="a.png"><img alt="" src="b.png"><img src="c.png" alt="kept"></p>'
    fixed = site._label_images(body, None)
    assert fixed.count('alt="Figure of the lecture"') == 2
    assert 'alt="kept"' in fixed and 'alt=""' not in fixed


def test_a_tampered_asset_is_refused(tmp_path, monkeypatch):
    """An npm tarball whose sha512 is not the pinned one is not unpacked."""
    npm = tmp_path / "npm"
    npm.write_text(
        "#!/bin/sh\n"
        "# usage: npm pack NAME@VERSION --pack-destination DIR\n"
        'mkdir -p "$4/package" && echo tampered > "$4/package/x" && '
        'tar czf "$4/fake.tgz" -C "$4" package && rm -r "$4/package"\n'
    )
    npm.chmod(0o755)
    cache = tmp_path / "cache"
    with pytest.raises(RuntimeError, match="sha512 is not the pinned one"):
        site.fetch_assets(cache, npm=str(npm))
    assert not any(p.name.endswith("-" + a.version) for a in site.ASSETS for p in cache.iterdir())


# -- the built site in a browser -----------------------------------------------------------------
LECTURE = "L03"


@pytest.fixture(scope="module")
def built_site(tmp_path_factory):
    if shutil.which("npm") is None and not site.default_cache().is_dir():
        pytest.skip("npm is not installed and no asset cache exists")
    out = tmp_path_factory.mktemp("site")
    pages = site.build_site(out, only=[LECTURE], log=lambda *_: None)
    return out, pages


@pytest.fixture(scope="module")
def chromium():
    from browser_support import CHROMIUM_ARGS, find_chromium

    path = find_chromium()
    if path is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=path, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


_PAGE_STATE_JS = """() => ({
  images: Array.from(document.images).map((i) => ({
    alt: i.getAttribute('alt') || '', loaded: i.complete && i.naturalWidth > 0,
    src: (i.getAttribute('src') || '').slice(0, 40)})),
  sliders: document.querySelectorAll('.widget-slider').length,
  widgetErrors: document.body.innerText.includes('Error displaying widget'),
  loadingWidgets: document.body.innerText.includes('Loading widget'),
  math: document.querySelectorAll('mjx-container').length,
  rawMath: document.body.innerText.includes('$$'),
})"""


def _open(browser, url: str):
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    outside: list[str] = []
    errors: list[str] = []

    def route(r):
        if r.request.url.startswith(("file://", "data:")):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.goto(url)
    return page, outside, errors


def _check_figures_and_widgets(page, name):
    page.wait_for_function(
        "() => document.querySelectorAll('.widget-slider').length > 0 && "
        "document.querySelectorAll('mjx-container').length > 0",
        timeout=60_000,
    )
    page.wait_for_function(
        "() => Array.from(document.images).every((i) => i.complete)", timeout=30_000
    )
    state = page.evaluate(_PAGE_STATE_JS)
    assert not state["widgetErrors"] and not state["loadingWidgets"], name
    assert state["math"] > 10 and not state["rawMath"], f"{name}: MathJax did not typeset"
    assert len(state["images"]) >= 5, state["images"]
    for image in state["images"]:
        assert image["loaded"], f"{name}: an image did not load: {image}"
        assert len(image["alt"]) > 10, f"{name}: an image has no text alternative: {image}"
    # every figure of L03 has a title: its text alternative is built from the labels, not the
    # section-name fallback
    described = [i for i in state["images"] if i["alt"].startswith(("Figure:", "Figure with"))]
    assert len(described) == len(state["images"]), state["images"]
    # the figure drawn by the widget carries the description saved with its state
    assert any("leaky_relu" in i["alt"] for i in state["images"]), state["images"]
    return state


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.timeout(600)
def test_the_site_works_offline_in_a_browser(built_site, chromium):
    out, pages = built_site
    (page_info,) = pages
    assert page_info.figures >= 5 and page_info.widgets >= 1
    index = (out / "index.html").read_text()
    assert page_info.html in index and page_info.slides in index
    assert (out / "_static" / "reveal.js" / "dist" / "reveal.js").is_file()

    page, outside, errors = _open(chromium, (out / page_info.html).as_uri())
    try:
        _check_figures_and_widgets(page, page_info.html)
        page.get_by_role("link", name="Slides of this lecture").click()
        page.wait_for_url("**/*.slides.html")
    finally:
        page.close()
    assert not outside, f"the page reached for the network: {outside[:5]}"
    assert not errors, errors

    slides, outside, errors = _open(chromium, (out / page_info.slides).as_uri())
    try:
        slides.wait_for_function(
            "() => window.coursekitReveal && window.coursekitReveal.isReady()", timeout=60_000
        )
        total = slides.evaluate("() => window.coursekitReveal.getTotalSlides()")
        headings = sum(
            1
            for c in nbformat.read(Path(site.LECTURES_DIR) / f"{page_info.stem}.ipynb", 4).cells
            if c.cell_type == "markdown"
            and site._heading(c.source)
            and site._heading(c.source)[0] <= 3  # slides and sub-slides
        )
        assert total == headings, (total, headings)
        slides.keyboard.press("ArrowRight")
        slides.wait_for_function("() => window.coursekitReveal.getIndices().h === 1")
        _check_figures_and_widgets(slides, page_info.slides)
    finally:
        slides.close()
    assert not outside, f"the slides reached for the network: {outside[:5]}"
    assert not errors, errors


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_lecture_that_raises_stops_the_build(tmp_path):
    if shutil.which("npm") is None and not site.default_cache().is_dir():
        pytest.skip("npm is not installed and no asset cache exists")
    lectures = tmp_path / "lectures"
    lectures.mkdir()
    nb = _notebook("# L99 · Broken", "raise ValueError('a lecture bug')")
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, lectures / "L99_broken.ipynb")
    with pytest.raises(Exception, match="a lecture bug"):
        site.build_site(tmp_path / "out", lectures_dir=lectures, log=lambda *_: None)
    assert not (tmp_path / "out" / "L99_broken.html").exists()
