"""The ``coursekit`` command of the student edition: only ``coursekit check``.

Exit status: 0 when every checked notebook is ready to submit, 1 when something would cost
points, 2 for a usage error (unknown assignment, no such notebook), 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

CHECK_HELP = "run an assignment's notebook the way the grader will, before you submit it"
CHECK_DESCRIPTION = (
    "Run the notebook of an assignment in a fresh kernel from top to bottom, with the "
    "grader's time and output limits, compare its cells with the release, and report the "
    "visible tests and everything that would cost points. The notebook is not changed; a "
    "receipt with its SHA-256 and the time goes to receipts/."
)


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("assignment", metavar="ASSIGNMENT", help="for example a1")
    parser.add_argument(
        "notebooks",
        nargs="*",
        metavar="NOTEBOOK",
        type=Path,
        help="the notebook files to check (default: every notebook in assignments/ASSIGNMENT/)",
    )


def run_check(assignment: str, notebooks: list[Path], root: Path | None = None) -> int:
    from coursekit.student.check import CheckError, check_assignment

    try:
        reports = check_assignment(assignment, notebooks or None, root=root)
    except CheckError as exc:
        print(f"coursekit check: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("coursekit check: interrupted", file=sys.stderr)
        return 130
    for report in reports:
        print(report.render())
        print(f"  receipt: SHA-256 {report.sha256}, checked {report.checked_at}")
    return 0 if all(r.ok for r in reports) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coursekit", description="The course's command for students: check an assignment."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = sub.add_parser("check", help=CHECK_HELP, description=CHECK_DESCRIPTION)
    add_check_arguments(check)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_check(args.assignment, args.notebooks)


if __name__ == "__main__":
    sys.exit(main())
