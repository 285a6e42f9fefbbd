"""``coursekit report``: item analysis of a graded assignment for the instructor.

Written to ``reports/<assignment>/`` of the course: ``report.md`` (also printed),
``histogram.png`` (distribution of the autograded score) and ``report.json``. It gives

* per autograded test cell: points, how many gradable submissions passed it, the pass rate;
* the most frequent failure messages per test cell (each line of a message counted once
  per submission; decimals in numbers are folded so that "max relative error 3.1e-01"
  and "... 2.7e-01" count as the same failure);
* how many submissions got each status per test cell (:mod:`coursekit.instructor.statuses`:
  passed, failed, their own error, not run, time limit, integrity problem);
* the submissions that could not be graded, or were graded with a problem, and why, and
  the integrity problems with their evidence.

The data are the grading journal's results, i.e. what ``coursekit grade`` imported.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from coursekit.instructor import statuses
from coursekit.instructor.batch import journal_for
from coursekit.instructor.course import Course, CourseError
from coursekit.instructor.dashboard import (
    extra_analysis,
    markdown_sections,
    markdown_table,
    md_cell,
)
from coursekit.instructor.dashboard import write_html as write_dashboard
from coursekit.instructor.grade import UNGRADABLE, GradingResult

_DECIMAL = re.compile(r"\d+\.\d+(?:e[+-]?\d+)?")


def message_lines(message: str) -> list[str]:
    """The distinct, normalised lines of a failure message that identify the failure.

    The first line, and the per-case and hint lines of a hidden-test message (``- case
    '...': ...``, ``hint: ...``); other continuation lines (printed arrays) are dropped.
    """
    lines = []
    for i, line in enumerate(message.splitlines()):
        line = line.strip().removeprefix("- ").strip()
        if i and not line.startswith(("case ", "hint:")):
            continue
        line = _DECIMAL.sub("…", line)
        if line and line not in lines:
            lines.append(line)
    return lines


@dataclass
class Report:
    directory: Path
    text: str
    data: dict


def analyse(results: list[GradingResult], top: int = 5) -> dict:
    """Pass rates, score distribution, frequent failures and ungradable submissions."""
    graded = [r for r in results if r.status != UNGRADABLE]
    cells: dict = {}
    for r in results:
        for t in r.tests:
            if t["autograded"]:
                cells.setdefault((t["notebook"], t["cell"]), t["max_points"])
    items = []
    for (nb, cell), max_points in sorted(cells.items()):
        outcomes = [t for r in graded for t in r.tests if (t["notebook"], t["cell"]) == (nb, cell)]
        passed = sum(bool(t["passed"]) for t in outcomes)
        counter: Counter = Counter()
        by_status: Counter = Counter()
        for t in outcomes:
            status, message = statuses.test_status(t)
            by_status[status] += 1
            if not t["passed"] and message:
                counter.update(message_lines(message))
        items.append(
            {
                "notebook": nb,
                "cell": cell,
                "max_points": max_points,
                "submissions": len(outcomes),
                "passed": passed,
                "pass_rate": passed / len(outcomes) if outcomes else None,
                "failures": counter.most_common(top),
                "statuses": dict(sorted(by_status.items())),
            }
        )
    auto_max = sum(cells.values())
    scores = {r.student: sum(t["points"] for t in r.tests if t["autograded"]) for r in results}
    return {
        "submissions": len(results),
        "graded": len(graded),
        "ungradable": {
            r.student: statuses.sanitize(r.reason) for r in results if r.status == UNGRADABLE
        },
        "graded_with_problems": {
            r.student: statuses.sanitize(r.reason) for r in graded if r.reason
        },
        "integrity": {
            f"{r.student}: {t['notebook']}/{t['cell']}": statuses.test_status(t)[1]
            for r in graded
            for t in r.tests
            if t["autograded"] and statuses.test_status(t)[0] == statuses.INTEGRITY
        },
        "autograded_max": auto_max,
        "scores": scores,
        "items": items,
    }


def _histogram(scores: list[float], maximum: float, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    bins = max(1, min(20, int(maximum) if maximum >= 1 else 1))
    ax.hist(scores, bins=bins, range=(0, maximum or 1), color="#4070a0", edgecolor="white")
    ax.set_xlabel("autograded score")
    ax.set_ylabel("submissions")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def render(assignment: str, data: dict) -> str:
    """``report.md``: Markdown (tables, lists); means over the graded submissions."""
    scores = [v for s, v in data["scores"].items() if s not in data["ungradable"]]
    mean = sum(scores) / len(scores) if scores else 0.0
    manual = data.get("manual_max") or 0
    lines = [
        f"# {assignment}: item analysis",
        "",
        f"{data['submissions']} submissions, {data['graded']} graded, "
        f"{len(data['ungradable'])} could not be graded; mean autograded score over the "
        f"{data['graded']} graded: {mean:.2f} / {data['autograded_max']:g}"
        + (f" (plus {manual:g} points graded by hand)" if manual else ""),
        "",
        "## Pass rate per test (gradable submissions)",
        "",
    ]
    rows = [
        [
            f"{i['notebook']}/{i['cell']}",
            f"{i['max_points']:g}",
            f"{i['passed']}/{i['submissions']}",
            "-" if i["pass_rate"] is None else f"{100 * i['pass_rate']:.0f}%",
        ]
        for i in data["items"]
    ]
    lines += [markdown_table(["test", "points", "passed", "rate"], rows), ""]
    lines += ["## Status per test (gradable submissions)", ""]
    shown = [st for st in statuses.STATUSES if any(st in i["statuses"] for i in data["items"])]
    rows = [
        [f"{i['notebook']}/{i['cell']}", *(str(i["statuses"].get(st, 0)) for st in shown)]
        for i in data["items"]
    ]
    lines += [markdown_table(["test", *shown], rows), ""]
    lines += ["## Most frequent failure messages", ""]
    for item in data["items"]:
        if item["failures"]:
            lines.append(f"**{item['notebook']}/{item['cell']}**")
            lines.append("")
            lines += [f"- {count} × {md_cell(msg[:160])}" for msg, count in item["failures"]]
            lines.append("")
    lines += ["", "## Submissions that could not be graded", ""]
    lines += [f"- {s}: {md_cell(why)}" for s, why in sorted(data["ungradable"].items())] or ["none"]
    if data["integrity"]:
        lines += ["", "## Integrity problems (evidence)", ""]
        lines += [
            f"- {k}: {md_cell((v or '').splitlines()[0][:200])}"
            for k, v in data["integrity"].items()
        ]
    if data["graded_with_problems"]:
        lines += ["", "## Graded, with a problem", ""]
        lines += [
            f"- {s}: {md_cell(why)}" for s, why in sorted(data["graded_with_problems"].items())
        ]
    if "item_statistics" in data:
        lines += ["", *markdown_sections(data)]
    return "\n".join(lines)


def write_report(course: Course, assignment: str, progress: bool = False) -> Report:
    """Analyse the graded submissions of ``assignment`` and write the report files
    (``report.md``, ``report.json``, ``histogram.png`` and the HTML folder ``report/``,
    :mod:`coursekit.instructor.dashboard`)."""
    course.require_assignments([assignment])
    present = set(course.students(assignment))
    results = [r for r in journal_for(course, assignment).results() if r.student in present]
    if not results:
        raise CourseError(
            f"nothing graded for {assignment!r} yet; run `coursekit grade {assignment}`"
        )
    data = analyse(results)
    data.update(extra_analysis(course, assignment, results, progress=progress))
    directory = course.root / "reports" / assignment
    directory.mkdir(parents=True, exist_ok=True)
    text = render(assignment, data)
    _histogram(
        [v for s, v in data["scores"].items() if s not in data["ungradable"]],
        data["autograded_max"],
        directory / "histogram.png",
        f"{assignment}: {data['graded']} graded submissions",
    )
    (directory / "report.md").write_text(text + "\n\n![score histogram](histogram.png)\n", "utf-8")
    (directory / "report.json").write_text(json.dumps(data, indent=1), "utf-8")
    write_dashboard(course, assignment, data, directory, progress=progress)
    return Report(directory, text, data)
