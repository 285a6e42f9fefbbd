"""``coursekit feedback``: an HTML page per student, with the hidden tests redacted.

Plain ``nbgrader generate_feedback`` renders the autograded notebook, whose test cells
nbgrader restored from the source version, so students would read the hidden tests. Here
every page is built from the autograded notebook after :func:`redact_notebook`:

* the text between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS`` in any cell is
  replaced by one line saying that hidden tests ran there;
* error outputs keep their exception name and message but lose the traceback (IPython
  prints the failing source lines, which may be hidden-test lines);
* any remaining text of an output that repeats a line of a hidden test is masked.

The page starts with the student's scores per graded cell (from the gradebook, so manual
grades show), each cell's status in words (:mod:`coursekit.instructor.statuses`: passed,
failed and what differs, the student's own error with the line of their code, not run and
why, could not be graded and why, awaiting manual grading only for cells graded by hand,
integrity problem with its evidence), and the comments a TA entered in the gradebook
(formgrader). No path of the grader's scratch space appears. Pages are written where
nbgrader puts feedback, ``feedback/<student>/<assignment>/<notebook>.html``.
"""

from __future__ import annotations

import copy
import functools
import html
import re
from pathlib import Path

import nbformat

from coursekit.instructor import statuses
from coursekit.instructor.batch import journal_for
from coursekit.instructor.course import Course, CourseError
from coursekit.instructor.deadlines import lateness_table
from coursekit.instructor.mathml import render_notebook_math, strip_cdn_scripts
from coursekit.instructor.progress import progress_bar

BEGIN_HIDDEN = "BEGIN HIDDEN TESTS"
END_HIDDEN = "END HIDDEN TESTS"
REDACTED = "# hidden tests ran here (redacted)"
MASK = "[hidden test line redacted]"
# Lines this short or common carry no information about the hidden tests.
_MIN_HIDDEN_LINE = 12


def hidden_lines(source: str) -> list[str]:
    """The stripped lines of ``source`` between the hidden-test markers."""
    lines, inside = [], False
    for line in source.splitlines():
        if BEGIN_HIDDEN in line:
            inside = True
        elif END_HIDDEN in line:
            inside = False
        elif inside and line.strip():
            lines.append(line.strip())
    return lines


def strip_hidden(source: str) -> str:
    """``source`` with every hidden-test block replaced by :data:`REDACTED`."""
    out, inside = [], False
    for line in source.splitlines():
        if BEGIN_HIDDEN in line:
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(indent + REDACTED)
        elif END_HIDDEN in line:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def _mask(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def redact_notebook(nb, secrets: list[str] = ()):
    """A copy of ``nb`` safe to show a student (see the module docstring).

    ``secrets`` are extra hidden-test lines (from the source notebooks) to mask anywhere.
    """
    nb = copy.deepcopy(nb)
    secrets = sorted(
        {s for s in secrets if len(s) >= _MIN_HIDDEN_LINE}
        | {
            s
            for c in nb.cells
            for s in hidden_lines(c.get("source", ""))
            if len(s) >= _MIN_HIDDEN_LINE
        },
        key=len,
        reverse=True,
    )
    for cell in nb.cells:
        cell.source = _mask(strip_hidden(cell.get("source", "")), secrets)
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                out["evalue"] = statuses.sanitize(_mask(str(out.get("evalue", "")), secrets))
                out["traceback"] = [f"{out.get('ename', 'Error')}: {out['evalue']}"]
            elif out.get("output_type") == "stream":
                out["text"] = statuses.sanitize(_mask(str(out.get("text", "")), secrets))
            else:
                data = out.get("data", {})
                for mime in list(data):
                    if mime.startswith("text/") or mime == "application/json":
                        value = data[mime]
                        text = "".join(value) if isinstance(value, list) else str(value)
                        data[mime] = statuses.sanitize(_mask(text, secrets))
    return nb


def source_secrets(course: Course, assignment: str) -> list[str]:
    """Every hidden-test line of the assignment's source notebooks."""
    secrets = []
    for path in sorted((course.directory("source") / assignment).glob("*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        for cell in nb.cells:
            secrets += hidden_lines(cell.get("source", ""))
    return secrets


def gradebook_cells(course: Course, assignment: str, student: str) -> dict:
    """``{notebook: [cell dict]}`` of a submission, from the gradebook.

    One dict per graded cell (``cell``, ``score``, ``max_score``, ``needs_manual_grade``,
    ``manual_score``, ``is_test``, ``comment``: the TA's comment) and per other cell a TA
    commented on (``score`` ``None``).
    """
    from nbgrader.api import Gradebook, MissingEntry

    out = {}
    with Gradebook(course.db_url) as gb:
        try:
            submission = gb.find_submission(assignment, student)
        except MissingEntry:
            return {}
        for nb in submission.notebooks:
            comments = {c.name: c.manual_comment for c in nb.comments if c.manual_comment}
            rows = [
                {
                    "cell": g.name,
                    "score": float(g.score),
                    "max_score": float(g.max_score),
                    "needs_manual_grade": bool(g.needs_manual_grade),
                    "manual_score": None if g.manual_score is None else float(g.manual_score),
                    "is_test": g.cell.cell_type == "code" and not _is_solution(g),
                    "comment": comments.pop(g.name, None),
                }
                for g in sorted(nb.grades, key=lambda g: g.name)
            ]
            rows += [
                {"cell": name, "score": None, "max_score": None, "comment": text}
                for name, text in sorted(comments.items())
            ]
            out[nb.name] = rows
    return out


def _is_solution(grade) -> bool:
    """Whether a grade belongs to an answer cell graded by hand (a written answer)."""
    names = {c.name for c in grade.notebook.notebook.solution_cells}
    return grade.name in names


_CSS = """
<style>
.ck-summary{font-family:system-ui,sans-serif;max-width:60em;margin:1.5em auto;padding:1em 1.5em;
 border:1px solid #ccc;border-radius:6px;background:#fafafa}
.ck-summary table{border-collapse:collapse;width:100%}
.ck-summary td,.ck-summary th{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left;
 vertical-align:top}
.ck-summary pre{white-space:pre-wrap;margin:0}
.ck-fail{color:#a00}.ck-pass{color:#070}.ck-wait{color:#850}.ck-reason{color:#a00;font-weight:bold}
.ck-comment{margin:.3em 0 0 0}
</style>
"""


def summary_html(student, assignment, notebook, cells, tests, result_status, reason) -> str:
    """The header of a feedback page: score, reason, one row per graded cell.

    ``cells`` come from :func:`gradebook_cells`, ``tests`` are the recorded results of the
    submission (``{(notebook, cell): test}``).
    """
    graded = [c for c in cells if c.get("score") is not None]
    total = sum(c["score"] for c in graded)
    maximum = sum(c["max_score"] for c in graded)
    rows = []
    for c in cells:
        comment = c.get("comment")
        comment_html = (
            f"<p class='ck-comment'><b>Comment:</b> {html.escape(comment)}</p>" if comment else ""
        )
        if c.get("score") is None:
            rows.append(
                f"<tr><td>{html.escape(c['cell'])}</td><td></td><td>comment</td>"
                f"<td>{comment_html}</td></tr>"
            )
            continue
        test = tests.get((notebook, c["cell"]))
        status, message = statuses.test_status(
            test,
            result_status=result_status,
            reason=reason,
            autograded=c["is_test"] if test is None else None,
            needs_manual_grade=c["needs_manual_grade"],
            manual_score=c["manual_score"],
            score=c["score"],
            max_score=c["max_score"],
        )
        if status == statuses.UNGRADABLE:
            message = None  # the reason is shown once, above the table
        css = {statuses.PASSED: "ck-pass", statuses.MANUAL: "ck-wait"}.get(status, "ck-fail")
        if status == statuses.GRADED:
            css = ""
        detail = f"<pre>{html.escape(message)}</pre>" if message else ""
        rows.append(
            f"<tr><td>{html.escape(c['cell'])}</td><td>{c['score']:g} / {c['max_score']:g}</td>"
            f"<td class='{css}' data-status='{status}'>{html.escape(statuses.label(status))}</td>"
            f"<td>{detail}{comment_html}</td></tr>"
        )
    reason = statuses.sanitize(reason)
    if reason and result_status == statuses.UNGRADABLE:
        reason = f"Your notebook could not be graded: {reason}"
    reason_html = f"<p class='ck-reason'>{html.escape(reason)}</p>" if reason else ""
    return (
        f"{_CSS}<div class='ck-summary'><h2>{html.escape(assignment)} / {html.escape(notebook)}: "
        f"{html.escape(student)}</h2><p>Score: <b>{total:g} / {maximum:g}</b></p>{reason_html}"
        "<table><tr><th>cell</th><th>points</th><th>result</th><th>message</th></tr>"
        + "".join(rows)
        + "</table><p>Hidden tests are not shown.</p></div>"
    )


@functools.lru_cache(maxsize=1)
def _exporter():
    # Building an exporter loads its templates; one per process serves every page.
    from nbconvert import HTMLExporter

    return HTMLExporter(template_name="lab")


def render_page(nb, header: str) -> str:
    """The page of ``nb`` with ``header`` on top; math is MathML, nothing loads from the
    network (:mod:`coursekit.instructor.mathml`)."""
    render_notebook_math(nb)
    body, _ = _exporter().from_notebook_node(nb)
    body = strip_cdn_scripts(body)
    match = re.search(r"<body[^>]*>", body)
    at = match.end() if match else 0
    return body[:at] + header + body[at:]


def late_note_html(lateness, cells: dict) -> str:
    """A line under the summary: when the work was due, how late it came, what it costs
    (:mod:`coursekit.instructor.deadlines`); empty when there is no deadline."""
    if lateness is None or lateness.deadline is None:
        return ""
    rows = [c for nb in cells.values() for c in nb if c.get("score") is not None]
    total = sum(c["score"] for c in rows)
    maximum = sum(c["max_score"] for c in rows)
    due = lateness.deadline.strftime("%Y-%m-%d %H:%M %Z").strip()
    if not lateness.late:
        text = f"Due {due}: submitted on time."
    else:
        penalty = lateness.penalty(maximum, total)
        text = f"Due {due}: {lateness.note}."
        if penalty:
            text += f" Score after the late penalty: {total - penalty:g} / {maximum:g}."
    return f"<div class='ck-summary ck-late'><p>{html.escape(text)}</p></div>"


def write_feedback(
    course: Course, assignment: str, students: list[str] | None = None, progress: bool = False
) -> list[Path]:
    """Write the feedback pages of ``assignment``; return their paths (``progress``: a
    progress bar on stderr)."""
    course.require_assignments([assignment])
    autograded = course.directory("autograded")
    graded = []
    if autograded.is_dir():
        graded = sorted(p.parent.name for p in autograded.glob(f"*/{assignment}") if p.is_dir())
    journal = journal_for(course, assignment)
    results = {r.student: r for r in journal.results()}
    selected = list(dict.fromkeys(graded + sorted(results)))
    if students:
        unknown = [s for s in students if s not in selected]
        if unknown:
            raise CourseError(
                f"no graded submission of {assignment!r} for {', '.join(map(repr, unknown))}; "
                "run `coursekit grade` first"
            )
        selected = list(students)
    if not selected:
        raise CourseError(
            f"nothing graded for {assignment!r} yet; run `coursekit grade {assignment}`"
        )
    secrets = source_secrets(course, assignment)
    pages = []
    late = lateness_table(course, assignment, selected)
    for student in progress_bar(selected, f"feedback {assignment}", progress):
        cells = gradebook_cells(course, assignment, student)
        result = results.get(student)
        reason = result.reason if result else None
        result_status = result.status if result else None
        tests = {(t["notebook"], t["cell"]): t for t in result.tests} if result else {}
        out_dir = course.directory("feedback") / student / assignment
        out_dir.mkdir(parents=True, exist_ok=True)
        files = {}
        src_dir = autograded / student / assignment
        if src_dir.is_dir():
            files = {p.name: p.read_bytes() for p in src_dir.glob("*.ipynb")}
        for name in sorted(cells) or ["(no notebook)"]:
            header = summary_html(
                student, assignment, name, cells.get(name, []), tests, result_status, reason
            )
            header += late_note_html(late.get(student), cells)
            data = files.get(f"{name}.ipynb")
            if data is not None:
                nb = redact_notebook(nbformat.reads(data.decode("utf-8"), as_version=4), secrets)
                page = render_page(nb, header)
            else:
                page = f"<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>{header}</body></html>"
            path = out_dir / f"{name}.html"
            path.write_text(page, encoding="utf-8")
            pages.append(path)
    return pages
