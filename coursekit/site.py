"""The lectures as a static web site and as reveal.js slides, built from the executed notebooks.

::

    python -m coursekit.site OUTDIR                # every lecture in lectures/
    python -m coursekit.site OUTDIR --only L05 L08  # some of them

For every lecture the builder runs the notebook top to bottom in a fresh Jupyter kernel
(nbclient, ``store_widget_state=True``, so that ipywidgets render without a kernel), then
writes ``OUTDIR/LNN_name.html`` with nbconvert's HTML exporter and
``OUTDIR/LNN_name.slides.html`` with its reveal.js slides exporter, and an ``index.html``
that links them all. Slides follow the headings: a ``#`` or ``##`` heading starts a new slide,
a ``###`` heading a sub-slide below it; the notebooks themselves carry no slide metadata.

**Text alternatives.** Every figure gets an ``alt`` text: a figure that matplotlib's inline
backend shows gets one built from its titles, axis labels and legend entries (the builder
wraps the backend's figure metadata in the kernel before the lecture runs), an image a
lecture displays itself (``IPython.display.Image(..., alt=...)``) keeps its own, and any
image without one falls back to a description naming the section it belongs to. Images that
the widgets draw in the browser get theirs from the same saved metadata.

**Offline.** The built site loads nothing from the network: reveal.js, RequireJS, jQuery,
MathJax 3 and the ipywidgets HTML manager are copied into ``OUTDIR/_static/``. They come from
the npm registry, fetched once with ``npm pack`` (pinned versions, checked against their
published sha512) into a cache, ``$COURSEKIT_SITE_ASSETS`` or ``~/.cache/coursekit/site-assets``.
``--assets DIR`` points at a filled cache instead (e.g. on a machine without npm).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

LECTURES_DIR = Path(__file__).resolve().parents[1] / "lectures"


@dataclass(frozen=True)
class Asset:
    """An npm package whose files the site serves from ``_static/<name>/``."""

    package: str
    version: str
    integrity: str  # npm's dist.integrity of the tarball
    files: tuple[str, ...]  # paths (or directories) inside the package to copy
    name: str = ""

    @property
    def directory(self) -> str:
        return self.name or self.package.split("/")[-1]


ASSETS = (
    Asset(
        "reveal.js",
        "4.6.1",
        "sha512-1CW0auaXNPmwmvQ7TwpszwVxMi2Xr5cTS3J3EBC/HHgbPF32Dn7aiu/LKWDOGjMbaDwKQiGmfqcoGQ74HUHCMw==",
        (
            "LICENSE",
            "dist/reveal.js",
            "dist/reveal.css",
            "dist/theme/white.css",
            "dist/theme/fonts/source-sans-pro",
            "plugin/notes/notes.js",
        ),
    ),
    Asset(
        "requirejs",
        "2.3.7",
        "sha512-DouTG8T1WanGok6Qjg2SXuCMzszOo0eHeH9hDZ5Y4x8Je+9JB38HdTLT4/VA8OaUhBa0JPVHJ0pyBkM1z+pDsw==",
        ("require.js", "README.md"),
    ),
    Asset(
        "jquery",
        "3.7.1",
        "sha512-m4avr8yL8kmFN8psrbFFFmB/If14iN5o9nw/NgnnM+kybDJpRsAynV2BsfpTYrTRysYUdADVD7CkUUizgkpLfg==",
        ("LICENSE.txt", "dist/jquery.min.js"),
    ),
    Asset(
        "@jupyter-widgets/html-manager",
        "1.0.11",
        "sha512-MC0bD2uhaMjq+Wf64jXtydqCUNrNdElldMH19QAujAAiag0aGYA41s9PMPVEuVH1+RpqI7MQUqWkaAIbx4xMQQ==",
        ("dist",),
    ),
    Asset(
        "mathjax",
        "3.2.2",
        "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
        ("LICENSE", "es5/tex-chtml-full.js", "es5/output/chtml/fonts/woff-v2"),
    ),
)

# Files of the html-manager's dist/ that the page never loads (source maps, the non-AMD bundle).
_SKIP = re.compile(r"\.map$|^embed\.js|^libembed")

# Run in the lecture's kernel before its first cell, and removed from the page afterwards:
# every figure the inline backend shows carries an "alt" text built from its labels.
_ALT_TEXT_SETUP = r"""
import matplotlib_inline.backend_inline as _coursekit_inline


def _coursekit_describe(fig):
    parts = []
    title = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) else ""
    for ax in fig.axes:
        bits = [ax.get_title(), ax.get_title("left"), ax.get_title("right")]
        what = "; ".join(b for b in bits if b)
        axes_labels = [label for label in (ax.get_xlabel(), ax.get_ylabel()) if label]
        if axes_labels:
            what += (" " if what else "") + "(" + " against ".join(reversed(axes_labels)) + ")"
        legend = ax.get_legend()
        if legend is not None:
            entries = [t.get_text() for t in legend.get_texts() if t.get_text()]
            if entries:
                what += "; curves: " + ", ".join(entries[:8])
        if what:
            parts.append(what)
    if title and parts:
        description = f"Figure: {title}. Panels: " + " | ".join(parts[:8])
    elif title or len(parts) == 1:
        description = "Figure: " + (title or parts[0])
    elif parts:
        description = f"Figure with {len(parts)} panels: " + " | ".join(parts[:8])
    else:
        description = ""  # no labels: the builder falls back to the section's name
    return " ".join(description.split())


def _coursekit_fetch(fig, _original=_coursekit_inline._fetch_figure_metadata):
    metadata = dict(_original(fig) or {})
    description = _coursekit_describe(fig)
    if description:
        metadata["alt"] = description
    return metadata


def _coursekit_mimebundle(self, include=None, exclude=None):
    # A figure displayed as a cell's value (not through plt.show) gets its alt text here.
    description = _coursekit_describe(self)
    return ({}, {"image/png": {"alt": description}}) if description else ({}, {})


_coursekit_inline._fetch_figure_metadata = _coursekit_fetch
__import__("matplotlib.figure").figure.Figure._repr_mimebundle_ = _coursekit_mimebundle
del _coursekit_fetch, _coursekit_mimebundle
"""

_MATHJAX3 = """
<script>
window.MathJax = {
  tex: {
    inlineMath: [['$', '$'], ['\\\\(', '\\\\)']],
    displayMath: [['$$', '$$'], ['\\\\[', '\\\\]']],
    processEscapes: true,
    processEnvironments: true,
    tags: 'ams'
  },
  options: {ignoreHtmlClass: 'tex2jax_ignore', processHtmlClass: 'tex2jax_process'},
  chtml: {fontURL: '{{ resources.coursekit_static }}/mathjax/es5/output/chtml/fonts/woff-v2'}
};
</script>
<script id="MathJax-script" src="{{ resources.coursekit_static }}/mathjax/es5/tex-chtml-full.js"></script>
"""

# Images drawn by a widget (its Output shows a figure) get the alt text saved in the widget
# state; images added later without one get the caption of their cell.
_WIDGET_ALT_JS = """
<script>
(function () {
  var alts = {};
  function collect() {
    var state = document.querySelector('script[type="application/vnd.jupyter.widget-state+json"]');
    if (!state) return;
    var models = JSON.parse(state.textContent).state || {};
    Object.keys(models).forEach(function (id) {
      var outputs = (models[id].state || {}).outputs || [];
      outputs.forEach(function (out) {
        var data = (out.data || {})['image/png'];
        if (!data) return;
        var md = out.metadata || {};
        var alt = md.alt || (md['image/png'] || {}).alt;
        if (alt) alts['data:image/png;base64,' + data.replace(/\\n/g, '')] = alt;
      });
    });
  }
  function label() {
    document.querySelectorAll('img:not([alt]), img[alt=""]').forEach(function (img) {
      var cell = img.closest('[data-coursekit-caption]');
      img.alt = alts[img.getAttribute('src')] ||
        (cell ? cell.getAttribute('data-coursekit-caption') : 'Figure from the lecture');
    });
  }
  document.addEventListener('DOMContentLoaded', function () {
    collect();
    label();
    new MutationObserver(label).observe(document.body, {childList: true, subtree: true});
  });
}());
</script>
"""

_PNG_BLOCK = """
{% block data_png scoped %}
<div class="jp-RenderedImage jp-OutputArea-output {{ extra_class }}">
{%- set alt = (output | get_metadata('alt', 'image/png')) or resources.coursekit_caption -%}
<img src="data:image/png;base64,{{ output.data['image/png'] | escape_html }}" alt="{{ alt | escape_html }}"
{%- set width=output | get_metadata('width', 'image/png') -%}
{%- if width is not none %} width={{ width | escape_html }}{%- endif %}
{%- set height=output | get_metadata('height', 'image/png') -%}
{%- if height is not none %} height={{ height | escape_html }}{%- endif %}
>
</div>
{%- endblock data_png %}

{% block data_widget_view scoped %}
<div class="coursekit-widget" data-coursekit-caption="{{ output.metadata.get('coursekit_caption', resources.coursekit_caption) | escape_html }}">
{{ super() }}
</div>
{%- endblock data_widget_view %}
"""

_NAV = """
<nav class="coursekit-nav" aria-label="site">
<a href="index.html">All lectures</a> ·
<a href="{{ resources.coursekit_other }}">{{ resources.coursekit_other_label }}</a>
</nav>
"""

TEMPLATES = {
    "coursekit_page.html.j2": "{%- extends 'lab/index.html.j2' -%}\n"
    + "{%- block html_head_js_mathjax -%}"
    + _MATHJAX3
    + "{%- endblock html_head_js_mathjax -%}\n"
    + "{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}\n"
    + "{%- block body_header -%}{{ super() }}"
    + _NAV
    + "{%- endblock body_header -%}\n"
    + "{% block footer_js %}"
    + _WIDGET_ALT_JS
    + "{% endblock footer_js %}\n"
    + _PNG_BLOCK,
    "coursekit_slides.html.j2": "{%- extends 'reveal/index.html.j2' -%}\n"
    + "{%- block html_head_js_mathjax -%}"
    + _MATHJAX3
    + "{%- endblock html_head_js_mathjax -%}\n"
    + "{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}\n"
    + _PNG_BLOCK
    + """
{% block footer_js %}
"""
    + _WIDGET_ALT_JS
    + """
<script>
require({waitSeconds: 30},
  ["{{ resources.reveal.url_prefix }}/dist/reveal.js", "{{ resources.reveal.url_prefix }}/plugin/notes/notes.js"],
  function (Reveal, RevealNotes) {
    Reveal.initialize({
      controls: true, progress: true, history: true, hash: true,
      transition: "{{ resources.reveal.transition | default('slide', true) }}",
      slideNumber: "c/t", plugins: [RevealNotes],
      width: 1100, height: 760, margin: 0.04
    });
    window.coursekitReveal = Reveal;
    Reveal.on('slidechanged', function () {
      if (window.MathJax && MathJax.typesetPromise) MathJax.typesetPromise();
    });
  });
</script>
{% endblock footer_js %}
""",
}

_CSS = """
.coursekit-nav { font: 14px sans-serif; padding: 8px 16px; border-bottom: 1px solid #ddd; }
.reveal .jp-Cell { font-size: 0.55em; }
.reveal img { max-height: 60vh; }
"""


# -- assets --------------------------------------------------------------------------------------
def default_cache() -> Path:
    env = os.environ.get("COURSEKIT_SITE_ASSETS")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "coursekit" / "site-assets"


def _sri(path: Path) -> str:
    digest = hashlib.sha512(path.read_bytes()).digest()
    return "sha512-" + base64.b64encode(digest).decode()


def fetch_assets(cache: Path | None = None, *, npm: str | None = None) -> Path:
    """Make sure every pinned npm package is unpacked under ``cache``; return ``cache``.

    A package already there is used as it is; a missing one is fetched with ``npm pack`` and
    its tarball checked against the pinned sha512 before it is unpacked.
    """
    import tarfile

    cache = Path(cache) if cache is not None else default_cache()
    cache.mkdir(parents=True, exist_ok=True)
    for asset in ASSETS:
        target = cache / f"{asset.directory}-{asset.version}"
        if (target / "package").is_dir():
            continue
        npm = npm or shutil.which("npm")
        if npm is None:
            raise RuntimeError(
                f"{asset.package}@{asset.version} is not in {cache} and npm is not installed: "
                "install npm (Debian: apt-get install npm) or pass --assets DIR with a filled cache"
            )
        with tempfile.TemporaryDirectory() as tmp:
            result = subprocess.run(
                [npm, "pack", f"{asset.package}@{asset.version}", "--pack-destination", tmp],
                capture_output=True,
                text=True,
                timeout=300,
            )
            tarballs = list(Path(tmp).glob("*.tgz"))
            if result.returncode != 0 or len(tarballs) != 1:
                raise RuntimeError(
                    f"npm pack {asset.package}@{asset.version} failed:\n{result.stderr[-2000:]}"
                )
            if _sri(tarballs[0]) != asset.integrity:
                raise RuntimeError(
                    f"{asset.package}@{asset.version}: the tarball's sha512 is not the pinned one"
                )
            unpacked = Path(tmp) / "unpacked"
            with tarfile.open(tarballs[0]) as tar:
                tar.extractall(unpacked, filter="data")
            partial = target.with_name(target.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            shutil.copytree(unpacked, partial)
            partial.rename(target)
    return cache


def copy_assets(cache: Path, static: Path) -> None:
    """Copy the files the pages use from the unpacked packages into ``static``."""
    for asset in ASSETS:
        package = cache / f"{asset.directory}-{asset.version}" / "package"
        for relative in asset.files:
            source = package / relative
            destination = static / asset.directory / relative
            if source.is_dir():
                shutil.copytree(
                    source,
                    destination,
                    dirs_exist_ok=True,
                    ignore=lambda _dir, names: [n for n in names if _SKIP.search(n)],
                )
            elif source.is_file():
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, destination)
            else:
                raise FileNotFoundError(f"{asset.package}@{asset.version} has no {relative}")


# -- notebooks -----------------------------------------------------------------------------------
@dataclass
class Page:
    """One lecture of the site."""

    source: Path
    title: str = ""
    html: str = ""
    slides: str = ""
    seconds: float = 0.0
    figures: int = 0
    widgets: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def stem(self) -> str:
        return self.source.stem


def lecture_paths(lectures_dir: Path = LECTURES_DIR, only: Iterable[str] = ()) -> list[Path]:
    paths = sorted(Path(lectures_dir).glob("L[0-9][0-9]_*.ipynb"))
    wanted = [w.upper() for w in only]
    if wanted:
        paths = [p for p in paths if any(p.stem.upper().startswith(w) for w in wanted)]
        found = {w for w in wanted if any(p.stem.upper().startswith(w) for p in paths)}
        missing = sorted(set(wanted) - found)
        if missing:
            raise ValueError(f"no lecture in {lectures_dir} matches {', '.join(missing)}")
    if not paths:
        raise ValueError(f"no lecture notebooks (LNN_*.ipynb) in {lectures_dir}")
    return paths


def execute(path: Path, *, timeout: int = 300):
    """Run the notebook in a fresh kernel with the alt-text setup; return it with outputs and
    saved widget state, and the wall time."""
    import nbformat
    from nbclient import NotebookClient

    from coursekit.notebooks import poll_shell_in_slices

    nb = nbformat.read(str(path), as_version=4)
    setup = nbformat.v4.new_code_cell(_ALT_TEXT_SETUP)
    nb.cells.insert(0, setup)
    env = dict(os.environ)
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    # The lectures multiply small matrices, where extra BLAS threads only compete for the cores.
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory(prefix="coursekit-site-") as cwd:
        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            store_widget_state=True,
            resources={"metadata": {"path": cwd}},
        )
        started = time.perf_counter()
        with client.setup_kernel(env=env):
            poll_shell_in_slices(client)
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
            client.set_widgets_metadata()
        seconds = time.perf_counter() - started
    nb.cells.pop(0)
    for cell in nb.cells:  # number the lecture's cells from 1, as a student's run does
        if cell.cell_type == "code" and cell.get("execution_count"):
            cell.execution_count -= 1
            for output in cell.outputs:
                if output.get("execution_count"):
                    output["execution_count"] -= 1
    return nb, seconds


def _heading(source: str) -> tuple[int, str] | None:
    match = re.match(r"\s*(#{1,6})\s+(.+)", source)
    return (len(match.group(1)), match.group(2).strip()) if match else None


def mark_slides(nb) -> None:
    """Slide metadata from the headings: # or ## starts a slide, ### a sub-slide."""
    for index, cell in enumerate(nb.cells):
        heading = _heading(cell.source) if cell.cell_type == "markdown" else None
        if index == 0 or (heading and heading[0] <= 2):
            kind = "slide"
        elif heading and heading[0] == 3:
            kind = "subslide"
        else:
            kind = "-"
        cell.metadata.setdefault("slideshow", {})["slide_type"] = kind


def _plain(markdown: str) -> str:
    text = re.sub(r"[`*_$\\]", "", markdown)
    return re.sub(r"\s+", " ", text).strip()


def export(nb, page: Page, out: Path, static: str = "_static") -> None:
    """Write the page and the slides of an executed notebook."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter, SlidesExporter

    mark_slides(nb)
    caption = "Figure of the lecture"
    resources_by_cell = []
    for cell in nb.cells:
        heading = _heading(cell.source) if cell.cell_type == "markdown" else None
        if heading:
            caption = f"Figure of the section “{_plain(heading[1])}”"
        resources_by_cell.append(caption)
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                page.figures += 1
                metadata = output.setdefault("metadata", {})
                if not (metadata.get("alt") or metadata.get("image/png", {}).get("alt")):
                    metadata["alt"] = caption
            if "application/vnd.jupyter.widget-view+json" in data:
                page.widgets += 1
                output.setdefault("metadata", {})["coursekit_caption"] = caption
            if output.get("output_type") == "error":
                page.errors.append(f"{output.get('ename')}: {output.get('evalue')}")
    first = nb.cells[0].source if nb.cells else page.stem
    page.title = _plain((_heading(first) or (1, page.stem))[1])
    nb.metadata["title"] = page.title

    common = dict(
        extra_loaders=[DictLoader(TEMPLATES)],
        require_js_url=f"{static}/requirejs/require.js",
        jquery_url=f"{static}/jquery/dist/jquery.min.js",
        widget_renderer_url=f"{static}/html-manager/dist/embed-amd.js",
        mathjax_url=f"{static}/mathjax/es5/tex-chtml-full.js",
        exclude_input_prompt=False,
    )
    for kind, exporter, name, other, label in (
        (
            "page",
            HTMLExporter(template_name="lab", template_file="coursekit_page.html.j2", **common),
            f"{page.stem}.html",
            f"{page.stem}.slides.html",
            "Slides of this lecture",
        ),
        (
            "slides",
            SlidesExporter(
                template_name="reveal",
                template_file="coursekit_slides.html.j2",
                reveal_url_prefix=f"{static}/reveal.js",
                reveal_theme="white",
                reveal_scroll=True,
                **common,
            ),
            f"{page.stem}.slides.html",
            f"{page.stem}.html",
            "This lecture as a page",
        ),
    ):
        resources = {
            "coursekit_static": static,
            "coursekit_caption": "Figure of the lecture",
            "coursekit_other": other,
            "coursekit_other_label": label,
            "metadata": {"name": page.title},
        }
        body, _ = exporter.from_notebook_node(nb, resources=resources)
        body = _label_images(body, nb)
        body = body.replace("</head>", f"<style>{_CSS}</style>\n</head>", 1)
        (out / name).write_text(body, encoding="utf-8")
        if kind == "page":
            page.html = name
        else:
            page.slides = name


def _label_images(body: str, nb) -> str:
    """Give every <img> without a text alternative the caption of its section (nbconvert's
    widget and markdown renderers have no alt of their own)."""

    def fix(match: re.Match) -> str:
        tag = match.group(0)
        if re.search(r'\balt="[^"]+"', tag):
            return tag
        tag = re.sub(r'\salt="[^"]*"', "", tag)
        return tag[:4] + ' alt="Figure of the lecture"' + tag[4:]

    return re.sub(r"<img\b[^>]*>", fix, body)


def write_index(pages: Sequence[Page], out: Path) -> Path:
    rows = "\n".join(
        f'<li><a href="{html.escape(p.html)}">{html.escape(p.title)}</a>'
        f' · <a href="{html.escape(p.slides)}">slides</a></li>'
        for p in pages
    )
    index = out / "index.html"
    index.write_text(
        f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Training deep networks: lectures</title>
<style>body {{ font: 16px/1.5 sans-serif; max-width: 48em; margin: 2em auto; }}</style></head>
<body><main><h1>Training deep networks: lectures</h1>
<p>The executed lectures as pages (figures and widgets as they were after a full run; the
widgets show their saved state and do not recompute) and as slides.</p>
<ol>
{rows}
</ol></main></body></html>
""",
        encoding="utf-8",
    )
    return index


def build_site(
    out: str | os.PathLike,
    *,
    lectures_dir: str | os.PathLike = LECTURES_DIR,
    only: Iterable[str] = (),
    assets: str | os.PathLike | None = None,
    timeout: int = 300,
    log=print,
) -> list[Page]:
    """Execute the lectures and write the site into ``out``; return one :class:`Page` each.

    A lecture whose cell raises stops the build with that error (a page with a traceback in
    it is no page to publish).
    """
    out = Path(out)
    paths = lecture_paths(Path(lectures_dir), only)
    out.mkdir(parents=True, exist_ok=True)
    cache = fetch_assets(Path(assets) if assets is not None else None)
    copy_assets(cache, out / "_static")
    pages = []
    for path in paths:
        page = Page(path)
        nb, page.seconds = execute(path, timeout=timeout)
        export(nb, page, out)
        if page.errors:
            raise RuntimeError(f"{path.name}: {page.errors}")
        log(
            f"{path.stem}: executed in {page.seconds:.1f} s, {page.figures} figures, "
            f"{page.widgets} widgets -> {page.html}, {page.slides}"
        )
        pages.append(page)
    write_index(pages, out)
    (out / "site.json").write_text(
        json.dumps(
            [
                {
                    "lecture": p.stem,
                    "title": p.title,
                    "page": p.html,
                    "slides": p.slides,
                    "seconds": round(p.seconds, 1),
                    "figures": p.figures,
                    "widgets": p.widgets,
                }
                for p in pages
            ],
            indent=1,
        )
    )
    return pages


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m coursekit.site",
        description="Build the lectures as a static HTML site and as reveal.js slides.",
    )
    parser.add_argument("out", help="output directory (created; files in it are overwritten)")
    parser.add_argument("--lectures", default=str(LECTURES_DIR), help="lecture notebooks folder")
    parser.add_argument("--only", nargs="+", default=(), metavar="LNN", help="e.g. L05 L08")
    parser.add_argument("--assets", help="folder of unpacked npm packages (default: a cache)")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per cell")
    args = parser.parse_args(argv)
    try:
        pages = build_site(
            args.out,
            lectures_dir=args.lectures,
            only=args.only,
            assets=args.assets,
            timeout=args.timeout,
        )
    except (ValueError, RuntimeError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{len(pages)} lectures -> {Path(args.out) / 'index.html'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
