"""The instructor's dashboard: item statistics, Markdown tables and the offline HTML report.

``coursekit report A`` writes, in ``reports/<A>/``, ``report.md`` (real Markdown: tables,
lists) and the folder ``report/`` with ``index.html``: one self-contained folder (figures
as files beside it, no script, no web font, no network) that can be zipped, mailed or
opened from a USB stick. It shows

* the summary: submissions, graded, ungradable; mean and median **over the graded
  submissions** (an ungradable submission is not a score of 0 the class earned), the
  autograded points and the points graded by hand;
* the score histogram (``histogram.png``) and a map of the tests (``items.png``:
  difficulty against discrimination);
* per autograded test: the **difficulty** (pass rate ``p``), the **discrimination** as the
  corrected point-biserial correlation ``r_pb = (M_1 - M_0) / s * sqrt(p (1 - p))`` between
  passing the test and the score on the *other* tests (``M_1``/``M_0``: mean other-score of
  those who passed/failed, ``s``: its standard deviation over everybody), and the
  upper-lower index ``D = p_upper - p_lower`` over the top and bottom 27 % by other-score;
  a test that good students fail as often as weak ones (``r_pb`` near 0 or negative) is
  worth reading again;
* **public vs hidden disagreement**: submissions whose test cell passed the public tests in
  the notebook (no ``public test failed:`` note) but failed the hidden tests (a
  ``GradingError`` output): what the visible tests do not catch;
* the most frequent failure messages, the ungradable submissions with their reasons, the
  late submissions (:mod:`coursekit.instructor.deadlines`);
* every student with a link to their feedback page (copied into ``report/feedback/`` so the
  folder stands alone; run ``coursekit feedback A`` first);
* the code-similarity section when :mod:`coursekit.instructor.similarity` provides one
  (hook: :data:`SECTION_HOOKS` and :func:`similarity_section`).
"""

from __future__ import annotations

import html
import json
import math
import shutil
import statistics
from collections.abc import Callable
from pathlib import Path

from coursekit.instructor.course import Course
from coursekit.instructor.progress import progress_bar

FOLDER = "report"
PUBLIC_FAILED = "public test failed"
UPPER_LOWER = 0.27


# -- statistics -----------------------------------------------------------------------------
def point_biserial(passed: list[bool], other: list[float]) -> float | None:
    """Point-biserial correlation of 0/1 ``passed`` with ``other`` (``None`` if undefined)."""
    n = len(passed)
    ones = [o for p, o in zip(passed, other) if p]
    zeros = [o for p, o in zip(passed, other) if not p]
    if n < 2 or not ones or not zeros:
        return None
    s = statistics.pstdev(other)
    if s == 0:
        return None
    p = len(ones) / n
    return (statistics.fmean(ones) - statistics.fmean(zeros)) / s * math.sqrt(p * (1 - p))


def upper_lower(passed: list[bool], other: list[float], fraction: float = UPPER_LOWER):
    """``p_upper - p_lower`` over the top and bottom ``fraction`` by ``other``."""
    n = len(passed)
    k = max(1, round(fraction * n))
    if n < 2 or 2 * k > n:
        return None
    order = sorted(range(n), key=lambda i: other[i])
    lower, upper = order[:k], order[-k:]
    return sum(passed[i] for i in upper) / k - sum(passed[i] for i in lower) / k


def item_statistics(graded: list) -> dict[tuple[str, str], dict]:
    """``{(notebook, cell): {"difficulty", "point_biserial", "upper_lower", "n"}}`` over the
    graded results (``GradingResult``-like: ``student``, ``tests``)."""
    cells: dict = {}
    for r in graded:
        for t in r.tests:
            if t.get("autograded"):
                cells.setdefault((t["notebook"], t["cell"]), None)
    totals = {r.student: sum(t["points"] for t in r.tests if t.get("autograded")) for r in graded}
    out = {}
    for key in cells:
        passed, other = [], []
        for r in graded:
            t = next((t for t in r.tests if (t["notebook"], t["cell"]) == key), None)
            if t is None:
                continue
            passed.append(bool(t.get("passed")))
            other.append(totals[r.student] - t["points"])
        out[key] = {
            "n": len(passed),
            "difficulty": sum(passed) / len(passed) if passed else None,
            "point_biserial": point_biserial(passed, other),
            "upper_lower": upper_lower(passed, other),
        }
    return out


def hidden_only_failures(files: dict) -> list[tuple[str, str]]:
    """``[(notebook, cell)]`` of the test cells of an autograded submission (``{relative
    path: bytes}``) that passed in the notebook but failed the hidden tests."""
    out = []
    for rel, data in files.items():
        if not rel.endswith(".ipynb") or "/" in rel:
            continue
        try:
            nb = json.loads(data.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            continue
        for cell in nb.get("cells", []):
            meta = (cell.get("metadata") or {}).get("nbgrader") or {}
            if cell.get("cell_type") != "code" or not meta.get("grade"):
                continue
            outputs = cell.get("outputs", [])
            errors = [o for o in outputs if o.get("output_type") == "error"]
            hidden = any(e.get("ename") == "GradingError" for e in errors)
            own = any(e.get("ename") != "GradingError" for e in errors)
            public = any(
                o.get("output_type") == "stream"
                and "".join(o.get("text", "")).lstrip().startswith(PUBLIC_FAILED)
                for o in outputs
            )
            if hidden and not public and not own:
                out.append((rel[: -len(".ipynb")], meta.get("grade_id")))
    return out


def autograded_files(course: Course, assignment: str, student: str) -> dict:
    directory = course.directory("autograded") / student / assignment
    if not directory.is_dir():
        return {}
    return {p.name: p.read_bytes() for p in directory.glob("*.ipynb")}


def extra_analysis(course: Course, assignment: str, results: list, progress=False) -> dict:
    """What the dashboard adds to :func:`coursekit.instructor.report.analyse`'s data."""
    from coursekit.instructor.deadlines import lateness_table
    from coursekit.instructor.grade import UNGRADABLE
    from coursekit.instructor.roster import course_roster

    graded = [r for r in results if r.status != UNGRADABLE]
    stats = item_statistics(graded)
    disagreement: dict[str, list[str]] = {}
    for r in progress_bar(graded, f"report {assignment}: notebooks", progress):
        for nb, cell in hidden_only_failures(autograded_files(course, assignment, r.student)):
            disagreement.setdefault(f"{nb}/{cell}", []).append(r.student)
    scores = [sum(t["points"] for t in r.tests if t.get("autograded")) for r in graded]
    late = {
        s: {"days": lt.days, "note": lt.note}
        for s, lt in lateness_table(course, assignment, [r.student for r in results]).items()
        if lt.late
    }
    roster = course_roster(course)
    names = {s.id: s.name for s in roster.students} if roster else {}
    manual_max = sum(
        t["max_points"] for t in (results[0].tests if results else []) if not t.get("autograded")
    )
    return {
        "graded_mean": statistics.fmean(scores) if scores else None,
        "graded_median": statistics.median(scores) if scores else None,
        "manual_max": manual_max,
        "item_statistics": {f"{nb}/{cell}": v for (nb, cell), v in stats.items()},
        "public_hidden_disagreement": {k: sorted(v) for k, v in sorted(disagreement.items())},
        "late": late,
        "names": names,
    }


# -- Markdown ---------------------------------------------------------------------------------
def md_cell(text) -> str:
    """``text`` safe inside a Markdown table cell (pipes escaped, one line)."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip()


def markdown_table(headers: list[str], rows: list[list]) -> str:
    """A GitHub-flavoured Markdown table; numeric-looking columns are right-aligned."""

    def numeric(col: int) -> bool:
        values = [str(r[col]).rstrip("%") for r in rows if str(r[col]) not in ("", "-")]
        return bool(values) and all(_is_number(v.split("/")[0]) for v in values)

    align = ["---:" if numeric(i) else "---" for i in range(len(headers))]
    lines = ["| " + " | ".join(md_cell(h) for h in headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _fmt(x, digits=2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def markdown_sections(data: dict) -> list[str]:
    """The dashboard's sections of ``report.md``: discrimination, disagreement, late work."""
    lines = ["## Difficulty and discrimination per test", ""]
    rows = [
        [
            key,
            _fmt(v["difficulty"]),
            _fmt(v["point_biserial"]),
            _fmt(v["upper_lower"]),
            len(data["public_hidden_disagreement"].get(key, [])),
        ]
        for key, v in data["item_statistics"].items()
    ]
    headers = ["test", "difficulty (pass rate)", "point-biserial", "upper-lower D", "hidden only"]
    lines += [markdown_table(headers, rows), ""]
    lines += [
        "Difficulty is the pass rate; point-biserial and D compare passing the test with the "
        "score on the other tests (near 0 or negative: the test does not separate strong "
        "from weak submissions). *Hidden only*: passed the public tests in the notebook, "
        "failed the hidden ones.",
        "",
    ]
    if data["public_hidden_disagreement"]:
        lines += ["## Passed in the notebook, failed hidden", ""]
        lines += [
            f"- **{md_cell(key)}** ({len(who)}): {', '.join(who)}"
            for key, who in data["public_hidden_disagreement"].items()
        ]
        lines.append("")
    if data["late"]:
        lines += ["## Late submissions", ""]
        lines += [
            markdown_table(
                ["student", "days", "penalty"],
                [[s, v["days"], v["note"]] for s, v in sorted(data["late"].items())],
            ),
            "",
        ]
    return lines


# -- HTML -------------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:72em;margin:1.5em auto;
 padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0;font-size:.95em}
td,th{border-bottom:1px solid #e3e3e3;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.low{color:#a00;font-weight:bold}.muted{color:#777}pre{white-space:pre-wrap;margin:0}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}
nav a{margin-right:1em}
"""


def _e(x) -> str:
    return html.escape(str(x))


def _table(headers, rows, numeric=()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, c in enumerate(row):
            cls = " class='num'" if i in numeric else ""
            cells.append(f"<td{cls}>{c}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _items_figure(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    for key, v in data["item_statistics"].items():
        if v["difficulty"] is None:
            continue
        r = v["point_biserial"] if v["point_biserial"] is not None else 0.0
        ax.scatter(v["difficulty"], r, color="#4070a0")
        ax.annotate(
            key.split("/")[-1],
            (v["difficulty"], r),
            fontsize=8,
            xytext=(3, 3),
            textcoords="offset points",
        )
    ax.axhline(0, color="#999", linewidth=0.8)
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("difficulty (pass rate)")
    ax.set_ylabel("discrimination (point-biserial)")
    ax.set_title("tests")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


#: Extra sections of the HTML report: callables ``(course, assignment, folder) -> html or
#: None``; a module may append its own (the similarity helper's goes through
#: :func:`similarity_section`).
SECTION_HOOKS: list[Callable] = []


def similarity_section(course: Course, assignment: str, folder: Path) -> str | None:
    """The code-similarity section, when :mod:`coursekit.instructor.similarity` has one.

    The module's ``report_section(course, assignment) -> str`` gives an HTML fragment
    (self-contained: it links to nothing outside the folder), styled by its ``STYLE``.
    Without it, a page it wrote before (``reports/<A>/similarity.html``) is copied into the
    folder and linked.
    """
    try:
        from coursekit.instructor import similarity
    except ImportError:
        return None
    hook = getattr(similarity, "report_section", None)
    if callable(hook):
        style = getattr(similarity, "STYLE", "")
        return (f"<style>{style}</style>" if style else "") + hook(course, assignment)
    page = course.root / "reports" / assignment / "similarity.html"
    if page.is_file():
        shutil.copy2(page, folder / "similarity.html")
        return (
            "<p>Pairs of submissions ranked by code similarity (a lead for review, not a "
            "verdict): <a href='similarity.html'>similarity.html</a>.</p>"
        )
    return (
        f"<p class='muted'>No similarity analysis yet: run <code>coursekit similarity "
        f"{_e(assignment)}</code>, then the report again.</p>"
    )


def _copy_feedback(course: Course, assignment: str, student: str, folder: Path) -> list[str]:
    """Copy the student's feedback pages into the folder; their relative links."""
    source = course.directory("feedback") / student / assignment
    links = []
    for page in sorted(source.glob("*.html")) if source.is_dir() else []:
        target = folder / "feedback" / student / page.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(page, target)
        links.append(f"feedback/{student}/{page.name}")
    return links


def write_html(
    course: Course, assignment: str, data: dict, directory: Path, progress: bool = False
) -> Path:
    """Write ``directory/report/`` (``index.html`` and what it shows); return the index."""
    folder = directory / FOLDER
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    if (directory / "histogram.png").is_file():
        shutil.copy2(directory / "histogram.png", folder / "histogram.png")
    _items_figure(data, folder / "items.png")
    graded = data["graded"]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{_e(assignment)}: report</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(assignment)}: item analysis</h1>",
        "<nav><a href='#items'>tests</a><a href='#hidden'>hidden only</a>"
        "<a href='#failures'>failures</a><a href='#ungradable'>ungradable</a>"
        "<a href='#late'>late</a><a href='#students'>students</a>"
        "<a href='#similarity'>similarity</a></nav>",
    ]
    mean, median = data.get("graded_mean"), data.get("graded_median")
    auto_max = data["autograded_max"]
    parts.append(
        f"<p>{data['submissions']} submissions, <b>{graded} graded</b>, "
        f"{len(data['ungradable'])} could not be graded. Over the {graded} graded: mean "
        f"<b>{_fmt(mean)}</b>, median {_fmt(median)} of {auto_max:g} autograded points"
        + (
            f" (plus {data['manual_max']:g} points graded by hand, not included here)"
            if data.get("manual_max")
            else ""
        )
        + ".</p>"
    )
    parts.append(
        "<figure><img src='histogram.png' alt='histogram of the autograded scores'>"
        "<figcaption>Autograded scores of the submissions.</figcaption></figure>"
    )
    # tests
    parts.append("<h2 id='items'>Tests: difficulty and discrimination</h2>")
    rows = []
    for item in data["items"]:
        key = f"{item['notebook']}/{item['cell']}"
        st = data["item_statistics"].get(key, {})
        r = st.get("point_biserial")
        low = " class='low'" if r is not None and r < 0.1 else ""
        rows.append(
            [
                _e(key),
                f"{item['max_points']:g}",
                f"{item['passed']}/{item['submissions']}",
                _fmt(st.get("difficulty")),
                f"<span{low}>{_fmt(r)}</span>",
                _fmt(st.get("upper_lower")),
                str(len(data["public_hidden_disagreement"].get(key, []))),
            ]
        )
    parts.append(
        _table(
            [
                "test",
                "points",
                "passed",
                "difficulty",
                "point-biserial",
                "upper-lower D",
                "hidden only",
            ],
            rows,
            numeric=(1, 2, 3, 4, 5, 6),
        )
    )
    parts.append(
        "<p class='muted'>Difficulty: pass rate. Point-biserial: correlation of passing with "
        "the score on the other tests; upper-lower D: pass rate of the top 27 % minus the "
        "bottom 27 %. Red: below 0.1, a test that does not separate strong from weak work."
        "</p><figure><img src='items.png' alt='difficulty against discrimination per test'>"
        "</figure>"
    )
    parts.append("<h2 id='hidden'>Passed in the notebook, failed hidden</h2>")
    if data["public_hidden_disagreement"]:
        parts.append(
            _table(
                ["test", "submissions", "students"],
                [
                    [_e(k), str(len(v)), ", ".join(_e(s) for s in v)]
                    for k, v in data["public_hidden_disagreement"].items()
                ],
                numeric=(1,),
            )
        )
    else:
        parts.append("<p>None: every failure was visible in the notebook.</p>")
    parts.append("<h2 id='failures'>Most frequent failure messages</h2>")
    failures = [i for i in data["items"] if i["failures"]]
    for item in failures:
        parts.append(f"<h3>{_e(item['notebook'])}/{_e(item['cell'])}</h3>")
        parts.append(
            _table(
                ["submissions", "message"],
                [[str(c), f"<pre>{_e(m)}</pre>"] for m, c in item["failures"]],
                numeric=(0,),
            )
        )
    if not failures:
        parts.append("<p>No failures.</p>")
    parts.append("<h2 id='ungradable'>Submissions that could not be graded</h2>")
    problems = dict(data["ungradable"])
    if problems:
        parts.append(
            _table(
                ["student", "reason"],
                [[_e(s), f"<pre>{_e(w)}</pre>"] for s, w in sorted(problems.items())],
            )
        )
    else:
        parts.append("<p>None.</p>")
    if data.get("graded_with_problems"):
        parts.append("<h3>Graded, with a problem</h3>")
        parts.append(
            _table(
                ["student", "what happened"],
                [
                    [_e(s), f"<pre>{_e(w)}</pre>"]
                    for s, w in sorted(data["graded_with_problems"].items())
                ],
            )
        )
    parts.append("<h2 id='late'>Late submissions</h2>")
    if data.get("late"):
        parts.append(
            _table(
                ["student", "days late", "penalty"],
                [[_e(s), str(v["days"]), _e(v["note"])] for s, v in sorted(data["late"].items())],
                numeric=(1,),
            )
        )
    else:
        parts.append("<p>None (or no deadline configured).</p>")
    parts.append("<h2 id='students'>Students</h2>")
    rows = []
    names = data.get("names", {})
    for student in progress_bar(sorted(data["scores"]), f"report {assignment}: pages", progress):
        links = _copy_feedback(course, assignment, student, folder)
        link_html = (
            " ".join(f"<a href='{_e(href)}'>{_e(Path(href).stem)}</a>" for href in links)
            or "<span class='muted'>no feedback page yet (coursekit feedback)</span>"
        )
        state = "could not be graded" if student in data["ungradable"] else "graded"
        if student in data.get("late", {}):
            state += f", {data['late'][student]['days']} day(s) late"
        rows.append(
            [
                _e(student),
                _e(names.get(student, "")),
                f"{data['scores'][student]:g} / {auto_max:g}",
                _e(state),
                link_html,
            ]
        )
    parts.append(_table(["student", "name", "autograded", "status", "feedback"], rows, (2,)))
    parts.append("<h2 id='similarity'>Similarity</h2>")
    parts.append(similarity_section(course, assignment, folder) or "")
    for hook in SECTION_HOOKS:
        fragment = hook(course, assignment, folder)
        if fragment:
            parts.append(fragment)
    parts.append(
        "<p class='muted'>Written by <code>coursekit report</code>; the data are in "
        "<code>report.json</code> beside this folder.</p></body></html>"
    )
    index = folder / "index.html"
    index.write_text("\n".join(parts), "utf-8")
    return index
