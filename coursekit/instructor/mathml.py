"""Math on feedback pages without a network: TeX rendered to MathML before the page is written.

nbconvert's HTML exporter leaves ``$...$`` in the page and loads MathJax (and require.js)
from a CDN; a student reading the page offline sees raw ``$k$``. Here the TeX of every
Markdown cell is converted to MathML with ``latex2mathml`` (pure Python, MIT), which
browsers render natively (MathML Core), and the page's CDN script tags are removed, so a
page needs nothing but itself.

Recognised delimiters: ``$...$`` and ``\\(...\\)`` inline, ``$$...$$``, ``\\[...\\]`` and
``\\begin{equation}...\\end{equation}``-style environments as blocks. Code spans and fenced
code are left alone, ``\\$`` is a dollar sign. TeX that latex2mathml cannot convert is shown
as code, never dropped.
"""

from __future__ import annotations

import html
import re

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
_CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.S)
_BLOCK = re.compile(
    r"\$\$(?P<a>.+?)\$\$|\\\[(?P<b>.+?)\\\]"
    r"|(?P<c>\\begin\{(?P<env>equation\*?|align\*?|gather\*?|multline\*?)\}.+?\\end\{(?P=env)\})",
    re.S,
)
_INLINE = re.compile(
    r"(?<![\\$])\$(?!\s)(?P<a>[^$\n]+?)(?<![\s\\])\$(?!\d)|\\\((?P<b>.+?)\\\)", re.S
)


def tex_to_mathml(tex: str, display: bool = False) -> str:
    """MathML of ``tex`` (``<code>`` with the TeX when it cannot be converted)."""
    from latex2mathml.converter import convert

    try:
        return convert(tex.strip(), display="block" if display else "inline")
    except Exception:  # noqa: BLE001 - any TeX the converter cannot read is shown as is
        return f"<code>{html.escape(tex)}</code>"


def render_math(markdown: str) -> str:
    """``markdown`` with its math replaced by MathML (see the module docstring)."""
    protected: list[str] = []

    def protect(match):
        protected.append(match.group(0))
        return f"\x00{len(protected) - 1}\x00"

    text = _FENCE.sub(protect, markdown)
    text = _CODE_SPAN.sub(protect, text)

    def block(match):
        tex = match["a"] or match["b"] or match["c"]
        if match["c"]:
            tex = re.sub(r"\\(begin|end)\{[a-z]+\*?\}", "", tex).replace("&", "")
        return protect_html(tex_to_mathml(tex, display=True))

    def inline(match):
        return protect_html(tex_to_mathml(match["a"] or match["b"]))

    def protect_html(fragment: str) -> str:
        protected.append(fragment)
        return f"\x00{len(protected) - 1}\x00"

    text = _BLOCK.sub(block, text)
    text = _INLINE.sub(inline, text)
    text = text.replace("\\$", "$")
    while "\x00" in text:
        text = re.sub(r"\x00(\d+)\x00", lambda m: protected[int(m.group(1))], text)
    return text


def render_notebook_math(nb) -> None:
    """Convert the math of every Markdown cell of ``nb`` in place."""
    for cell in nb.cells:
        if cell.get("cell_type") == "markdown":
            cell.source = render_math(cell.get("source", ""))


_CDN_SCRIPT = re.compile(r"<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>\s*", re.I)
_MATHJAX_CONFIG = re.compile(r"<script type=\"text/x-mathjax-config\">.*?</script>\s*", re.S)


def strip_cdn_scripts(page: str) -> str:
    """``page`` without the script tags that load code from the network (MathJax, require.js)."""
    return _MATHJAX_CONFIG.sub("", _CDN_SCRIPT.sub("", page))
