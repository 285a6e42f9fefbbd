"""What happened to each graded cell, in words a student and an instructor can trust.

One place decides the status of a graded cell; the grade table, the feedback pages, the
export and the report all call :func:`test_status`, so they never disagree. A status is
one of

========================  =====================================================================
``passed``                the hidden tests passed (full points)
``failed``                graded, wrong values; the message says what differs
``error``                 the student's own code raised; the message quotes the error and
                          the line of their code
``not_run``               not run: an earlier cell failed, or the graded function is not
                          defined (or the test cell is missing from the notebook)
``timeout``               the cell (or the notebook) ran past its time limit
``integrity``             no credit because of evidence named in the message (a call into
                          coursekit's own implementation, tampering with the grading)
``ungradable``            the submission could not be graded at all; the reason says why
``manual``                awaiting manual grading (only cells graded by hand)
``graded``                a cell graded by hand (or an unanswered written answer, 0)
========================  =====================================================================

``awaiting manual grading`` is never shown for an autograded test: a student must not wait
for a TA who will never come. :func:`sanitize` removes the grader's internal paths
(``.coursekit/runs/...``, scratch directories, socket directories) from any text a student
or an instructor reads.
"""

from __future__ import annotations

import re

PASSED = "passed"
FAILED = "failed"
ERROR = "error"
NOT_RUN = "not_run"
TIMEOUT = "timeout"
INTEGRITY = "integrity"
UNGRADABLE = "ungradable"
MANUAL = "manual"
GRADED = "graded"

STATUSES = (PASSED, FAILED, ERROR, NOT_RUN, TIMEOUT, INTEGRITY, UNGRADABLE, MANUAL, GRADED)

#: How each status reads on a feedback page and in the report.
LABELS = {
    PASSED: "passed",
    FAILED: "failed",
    ERROR: "failed: your code raised an error",
    NOT_RUN: "not run",
    TIMEOUT: "stopped: time limit",
    INTEGRITY: "no credit: integrity problem",
    UNGRADABLE: "could not be graded",
    MANUAL: "awaiting manual grading",
    GRADED: "graded",
}

#: The hidden verdict's statuses (``verdicts.json``) as cell statuses.
VERDICTS = {
    "passed": PASSED,
    "failed": FAILED,
    "error": ERROR,
    "missing": NOT_RUN,
    "not_run": NOT_RUN,
    "integrity": INTEGRITY,
    "timeout": TIMEOUT,
}


def test_status(
    test: dict | None,
    *,
    result_status: str | None = None,
    reason: str | None = None,
    autograded: bool | None = None,
    needs_manual_grade: bool = False,
    manual_score: float | None = None,
    score: float | None = None,
    max_score: float | None = None,
) -> tuple[str, str | None]:
    """``(status, message)`` of one graded cell.

    Parameters
    ----------
    test : dict or None
        The cell's entry of ``GradingResult.tests`` (``status``, ``message``, ``passed``,
        ``autograded``); ``None`` when coursekit has no record of it.
    result_status : str, optional
        The submission's status (``"graded"``, ``"ungradable"``).
    reason : str, optional
        Why the submission could not be graded.
    autograded : bool, optional
        Whether the cell is an autograded test (default: from ``test``).
    needs_manual_grade, manual_score, score, max_score
        The gradebook's view of the cell (a TA's score wins over everything).
    """
    test = test or {}
    if autograded is None:
        autograded = bool(test.get("autograded", True))
    if manual_score is not None and not needs_manual_grade:
        return GRADED, None
    if result_status == UNGRADABLE:
        return UNGRADABLE, sanitize(reason) if reason else "the submission could not be graded"
    if not autograded:
        if needs_manual_grade:
            return MANUAL, None
        return GRADED, None
    status = test.get("status")
    message = sanitize(test.get("message")) if test.get("message") else None
    if status in STATUSES:
        return status, None if status == PASSED else message
    # Results recorded before statuses existed: what the message says.
    if test.get("passed") or (
        score is not None and max_score is not None and score >= max_score and not message
    ):
        return PASSED, None
    return classify_message(message), message


def classify_message(message: str | None) -> str:
    """The status a failure message of an autograded cell stands for (older results)."""
    text = message or ""
    if "integrity" in text:
        return INTEGRITY
    if "CellTimeoutError" in text or "NotebookTimeout" in text or "time limit" in text:
        return TIMEOUT
    if "not found in the submission" in text or text.startswith("NameError"):
        return NOT_RUN
    if text.startswith(("AssertionError", "GradingError")) or not text:
        return FAILED
    return ERROR


def label(status: str) -> str:
    return LABELS.get(status, status)


# -- paths a student must not see ---------------------------------------------------------
# A path is a run of "/component"s; a component holds no blank, quote, bracket or backslash
# (so a path inside JSON text, after an escaped newline, is found without the escape).
_PART = r"[^/\s'\"()<>\\]+"
_COMPONENTS = rf"(?:/{_PART})*?"
# A file inside a grading scratch course: .../.coursekit/runs/<a>/scratch/<student>-xyz/...
_SCRATCH_FILE = re.compile(
    rf"{_COMPONENTS}/\.coursekit/runs{_COMPONENTS}/scratch/{_PART}/"
    rf"(?:(?:submitted|autograded)/{_PART}/{_PART}/)?"
)
_STATE_DIR = re.compile(rf"{_COMPONENTS}/\.coursekit(?:/{_PART})*")
_SOCKET_DIR = re.compile(rf"/tmp/ck-[A-Za-z0-9_]+(?:/{_PART})*")


def sanitize(text: str | None, roots: tuple[str, ...] = ()) -> str | None:
    """``text`` without the grader's internal paths.

    A path into a submission's scratch copy becomes the path relative to the student's
    notebook directory (``helpers.py``); any other path under the course's ``.coursekit``
    state directory, a kernel socket directory, or one of ``roots`` (the scratch course of
    the submission being graded) becomes ``<grader>``.
    """
    if not text:
        return text
    for root in sorted((r for r in roots if r), key=len, reverse=True):
        text = text.replace(root.rstrip("/") + "/", "").replace(root, "<grader>")
    if ".coursekit" in text:  # the patterns backtrack: not on every notebook's whole text
        text = _SCRATCH_FILE.sub("", text)
        text = _STATE_DIR.sub("<grader>", text)
    if "/tmp/ck-" in text:
        text = _SOCKET_DIR.sub("<grader>", text)
    return text
