"""The ``coursekit`` instructor command line.

Every subcommand works on an nbgrader course directory (``--course DIR``, default: the
current directory) and drives nbgrader's own machinery, so plain ``nbgrader`` commands keep
working on the same course. Run ``coursekit <command> --help`` for the details of each.

Exit status: 0 on success, 1 when the command ran but found problems (a failed validation,
submissions that could not be collected, an incomplete grading run), 2 for a usage or
course error (the message says what to fix), 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from coursekit.instructor.course import Course, CourseError

DESCRIPTION = (
    "The instructor command line of an nbgrader course: release, validate, collect, grade in "
    "parallel, feedback, export, report. Try `coursekit demo`."
)
EPILOG = (
    "Exit status: 0 success, 1 problems found, 2 usage or course error, 130 interrupted. "
    "Details: coursekit COMMAND --help."
)


def _course(args) -> Course:
    return Course.locate(args.course)


def cmd_release(args) -> int:
    from coursekit.instructor.release import release

    course = _course(args)
    for name in release(course, args.assignments):
        print(f"released {name} -> {course.directory('release') / name}")
    return 0


def cmd_validate(args) -> int:
    from coursekit.instructor.validate import validate

    course = _course(args)
    reports = validate(course, args.assignments, workers=args.workers)
    for report in reports:
        print(report.render())
    return 0 if all(r.ok for r in reports) else 1


def cmd_collect(args) -> int:
    from coursekit.instructor.collect import collect, lateness_preview

    course = _course(args)
    outcome = collect(
        course,
        args.assignment,
        args.path,
        force=args.force,
        roster=args.roster,
        progress=not args.quiet,
    )
    print(outcome.render())
    late = lateness_preview(course, args.assignment, sorted(outcome.collected))
    if late:
        print("late (penalty applied by `coursekit export`, shown in feedback):")
        for student, note in sorted(late.items()):
            print(f"  {student}: {note}")
    return 0 if outcome.ok else 1


def cmd_grade(args) -> int:
    from coursekit.instructor.batch import (
        SUMMARY_HEADERS,
        format_table,
        grade_assignment,
        manual_points,
        summary_rows,
    )

    course = _course(args)
    summary = grade_assignment(
        course,
        args.assignment,
        students=args.student,
        workers=args.workers,
        force=args.force,
        scheduler=args.scheduler,
        progress=not args.quiet,
    )
    print(format_table(SUMMARY_HEADERS, summary_rows(summary.results)))
    print(
        f"\n{args.assignment}: graded {len(summary.graded)}, already graded {len(summary.reused)}, "
        f"errors {len(summary.errors)} in {summary.seconds:.1f} s"
    )
    if manual_points(summary.results):
        print(
            f"written answers ({manual_points(summary.results):g} points per submission) "
            "are left for grading by hand (nbgrader formgrader)"
        )
    if summary.preflight:
        print(f"preflight (reference solution and blank release): {summary.preflight}")
    for student, why in summary.regraded.items():
        print(f"  graded again: {student}: {why}")
    for student, error in summary.errors.items():
        print(f"  not graded: {student}: {error} (rerun `coursekit grade` to retry)")
    if summary.interrupted:
        print(summary.resume_hint(), file=sys.stderr)
        return 130
    return 0 if summary.ok else 1


def cmd_feedback(args) -> int:
    from coursekit.instructor.feedback import write_feedback

    course = _course(args)
    pages = write_feedback(course, args.assignment, students=args.student, progress=not args.quiet)
    print(f"{len(pages)} feedback pages written in {course.directory('feedback')}")
    return 0


def cmd_export(args) -> int:
    from coursekit.instructor.export import export
    from coursekit.instructor.gradesheets import export_sheets

    course = _course(args)
    csv_path, json_path = export(course, args.assignment, to=args.to)
    print(f"grades (nbgrader export's columns, before late penalties): {csv_path}")
    print(f"per-test results: {json_path}")
    sheets, problems = export_sheets(
        course, args.assignment, csv_path, args.roster, progress=not args.quiet
    )
    for sheet in sheets:
        kind = "Canvas gradebook import" if sheet.name.endswith("-canvas.csv") else "roster"
        print(f"{kind} CSV (manual points and late penalties included): {sheet}")
    for problem in problems:
        print(f"  note: {problem}")
    return 0


def cmd_report(args) -> int:
    from coursekit.instructor.report import write_report

    course = _course(args)
    report = write_report(course, args.assignment, progress=not args.quiet)
    print(report.text)
    print(f"\nreport: {report.directory} (open {report.directory / 'report' / 'index.html'})")
    return 0


def cmd_similarity(args) -> int:
    from coursekit.instructor.similarity import similarity, write_outputs

    course = _course(args)
    result = similarity(
        course,
        args.assignment,
        threshold=args.threshold,
        # a directory named on the command line is relative to where the command runs
        archive=str(Path(args.archive).resolve()) if args.archive else None,
        workers=args.workers,
    )
    page = write_outputs(course, result, json_path=args.json)
    flagged = result.flagged
    print(
        f"{args.assignment}: {len(result.pairs)} comparisons, {len(flagged)} flagged at score "
        f">= {result.settings.threshold:g} (a lead for review, not a verdict)"
    )
    for p in flagged[:20]:
        print(f"  {p.score:.2f}  {p.a}  {p.b}")
    if len(flagged) > 20:
        print(f"  ... {len(flagged) - 20} more in the page")
    for note in result.notes:
        print(f"note: {note}")
    print(f"page: {page}" + (f"\nranked pairs: {args.json}" if args.json else ""))
    return 0


def cmd_demo(args) -> int:
    from coursekit.instructor.demo import run_demo

    return run_demo(
        directory=args.directory,
        assignment=args.assignment,
        students=args.students,
        workers=args.workers,
    )


def cmd_publish(args) -> int:
    from coursekit.instructor.publish import publish

    course = _course(args)
    print(publish(course, args.directory).render())
    return 0


def cmd_check(args) -> int:
    from coursekit.student.cli import run_check

    return run_check(args.assignment, args.notebooks, root=_course(args).root)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coursekit", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument(
        "--course", metavar="DIR", default=None, help="the nbgrader course directory (default: .)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, func, help_text, description=None):
        p = sub.add_parser(name, help=help_text, description=description or help_text)
        p.set_defaults(func=func)
        p.add_argument("--course", metavar="DIR", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        return p

    p = add("release", cmd_release, "generate the student versions in the release directory")
    p.add_argument("assignments", nargs="*", metavar="ASSIGNMENT", help="default: all")

    p = add(
        "validate",
        cmd_validate,
        "check assignments: solutions pass, releases fail, no leaks, no drift",
        "Source notebooks get full marks, released notebooks fail every autograded cell, the "
        "release holds no solution code or hidden tests, and regenerating it reproduces the "
        "release directory exactly. Non-zero exit on any failure.",
    )
    p.add_argument("assignments", nargs="*", metavar="ASSIGNMENT", help="default: all")
    p.add_argument("--workers", type=int, default=None, help="parallel gradings (default: cores)")

    from coursekit.instructor.collect import RULES

    p = add("collect", cmd_collect, "import submissions from a folder or a zip", RULES)
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("assignment", metavar="ASSIGNMENT")
    p.add_argument("path", metavar="PATH", help="a folder or a .zip file")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace existing submissions that differ (kept as backup)",
    )
    p.add_argument(
        "--roster",
        metavar="FILE",
        default=None,
        help="roster CSV (id, name, email, LMS ids; default: roster.csv in the course)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = add(
        "grade",
        cmd_grade,
        "autograde submissions in parallel (resumable)",
        "Autograde with nbgrader in parallel. An interrupted run is resumed by running the same "
        "command again: only missing or changed submissions are graded.",
    )
    p.add_argument("assignment", metavar="ASSIGNMENT")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: cores)")
    p.add_argument("--student", nargs="+", default=None, metavar="S", help="only these students")
    p.add_argument("--force", action="store_true", help="grade again even if already graded")
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help="grade on this Dask cluster (tcp://host:8786); its workers must see the course "
        "at the same path and should run one thread each (dask worker --nthreads 1)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = add("feedback", cmd_feedback, "an HTML page per student (hidden-test source redacted)")
    p.add_argument("assignment", metavar="ASSIGNMENT")
    p.add_argument("--student", nargs="+", default=None, metavar="S", help="only these students")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = add("export", cmd_export, "grades CSV (nbgrader export columns) + per-test JSON")
    p.add_argument("assignment", nargs="?", default=None, metavar="ASSIGNMENT", help="default: all")
    p.add_argument("--to", default=None, metavar="FILE", help="CSV path (default: grades.csv)")
    p.add_argument(
        "--roster",
        metavar="FILE",
        default=None,
        help="roster CSV for names, e-mails, Canvas ids (default: roster.csv in the course)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = add(
        "report",
        cmd_report,
        "item analysis: report.md and an offline HTML dashboard (reports/A/report/index.html)",
    )
    p.add_argument("assignment", metavar="ASSIGNMENT")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = add(
        "similarity",
        cmd_similarity,
        "rank pairs of submissions by code similarity (a lead for review)",
        "Compare what students wrote in their answer cells (the release's starter code removed; "
        "names, comments, whitespace, string contents and the order of functions ignored): "
        "every pair of students, each student against coursekit's own implementation, and "
        "optionally an archive of earlier terms. Writes reports/ASSIGNMENT/similarity.html "
        "with the matching code side by side. Settings: c.CoursekitSimilarity in "
        "nbgrader_config.py. A score is a lead for review, not a verdict.",
    )
    p.add_argument("assignment", metavar="ASSIGNMENT")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the ranked pairs")
    p.add_argument(
        "--archive",
        default=None,
        metavar="DIR",
        help="earlier terms' submissions (any DIR/.../STUDENT/ASSIGNMENT/*.ipynb)",
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        metavar="X",
        help="flag pairs scoring at least X, in (0, 1] (default: the course's, else 0.5)",
    )
    p.add_argument("--workers", type=int, default=None, help="processes (default: cores)")

    p = add(
        "demo",
        cmd_demo,
        "grade a synthesized class end to end in a temporary course",
        "Build a temporary course from this repository, synthesize a class (correct, blank, "
        "each catalogued mistake, broken files), release, grade in parallel, write feedback "
        "and the report, and print the grade table.",
    )
    p.add_argument(
        "--directory", default=None, help="where to build the course (default: a temp dir)"
    )
    p.add_argument("--assignment", default=None, help="default: the first assignment")
    p.add_argument("--students", type=int, default=30, help="class size (default: 30)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: cores)")

    p = add(
        "publish",
        cmd_publish,
        "write the student edition (lectures, releases, library without grading) to DIR",
        "Build the student edition as a git-ready folder: lectures, released assignments, the "
        "library without coursekit.grading, coursekit.instructor and this command line, a "
        "student README, pyproject.toml, LICENSE and constraints.txt. Refuses when hidden "
        "material would go in. Running it again updates DIR in place and lists the changes.",
    )
    p.add_argument("directory", metavar="DIR", help="the edition folder (created if missing)")

    from coursekit.student.cli import CHECK_DESCRIPTION, CHECK_HELP, add_check_arguments

    p = add("check", cmd_check, CHECK_HELP, CHECK_DESCRIPTION)
    add_check_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "workers", None) is not None and args.workers < 1:
        parser.error(f"--workers must be a positive integer, got {args.workers}")
    try:
        return args.func(args)
    except CourseError as exc:
        print(f"coursekit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"coursekit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
