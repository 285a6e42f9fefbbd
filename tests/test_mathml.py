"""Feedback math without a network: TeX to MathML, code and prices left alone."""

import nbformat

from coursekit.instructor.feedback import render_page
from coursekit.instructor.mathml import render_math, strip_cdn_scripts


def test_inline_and_display_math_become_mathml():
    out = render_math(r"Softmax $p_k = e^{s_k}$ and $$L = -\log p_y$$ and \(a\) \[b^2\]")
    assert out.count('display="inline"') == 2 and out.count('display="block"') == 2
    assert "$" not in out and "\\(" not in out and "\\[" not in out
    assert "<msub><mi>p</mi><mi>k</mi></msub>" in out


def test_code_prices_and_escaped_dollars_are_left_alone():
    text = "Costs $5 and $6. Use `$x$` in code, \\$ sign.\n\n```\ny = $z$\n```\n"
    out = render_math(text)
    assert "Costs $5 and $6." in out and "`$x$`" in out and "y = $z$" in out
    assert "\\$" not in out and "$ sign" in out and "<math" not in out


def test_tex_that_cannot_be_converted_is_shown_as_code():
    out = render_math(r"broken $\frac{1}{$ here")
    assert out == r"broken <code>\frac{1}{</code> here"


def test_feedback_page_needs_no_network():
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("with $k$ classes"), nbformat.v4.new_code_cell("1")]
    )
    page = render_page(nb, "<p>summary</p>")
    assert "<math" in page and "with $k$" not in page
    assert 'src="https://' not in page
    assert strip_cdn_scripts('<script src="https://x/y.js"></script>ok') == "ok"
