"""Every assignment in ``solutions/`` with the real nbgrader.

For each ``solutions/aN``: the committed release is what ``nbgrader generate_assignment``
produces, it leaks no solution code or hidden tests, the reference solution gets full marks,
the unmodified release gets zero, every catalogued mistake (``tests/mistakes/aN.py``) loses
points where it says, some of them pass the public tests, and every alternative solution
(``tests/alternatives/aN.py``) gets full marks. All submissions of one assignment are graded
by one ``nbgrader autograde`` call (see :func:`nbgrader_harness.grade_class`); the result is
shared by all pytest-xdist workers through a file lock, so each assignment is graded once.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import traceback
from pathlib import Path

import nbformat
import nbgrader_harness as harness
import pytest

from coursekit.grading import submissions

ASSIGNMENTS = harness.assignment_ids()
MISTAKE_PARAMS = [(aid, m.name) for aid in ASSIGNMENTS for m in harness.mistakes(aid)]
ALTERNATIVE_PARAMS = [(aid, name) for aid in ASSIGNMENTS for name in harness.alternatives(aid)]
CHECK_CALL = re.compile(r"check\(\s*[\"']a\d+\.[\w.]+[\"'].*seed\s*=\s*\d+")


def _shared_dir(tmp_path_factory) -> Path:
    """A directory all xdist workers of this run share (the run's own basetemp otherwise)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


_GRADED: dict[str, dict] = {}


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    """``graded(aid)`` -> the results of :func:`nbgrader_harness.grade_class`, computed once."""

    def get(aid: str) -> dict:
        if aid not in _GRADED:
            shared = _shared_dir(tmp_path_factory)
            result_file = shared / f"graded-{aid}.json"
            with open(shared / f"graded-{aid}.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if not result_file.exists():
                    try:
                        result = harness.grade_class(aid, shared / f"course-{aid}")
                    except Exception:  # noqa: BLE001 - every waiting test reports it
                        result = {"error": traceback.format_exc()}
                    result_file.write_text(json.dumps(result, indent=1))
            _GRADED[aid] = json.loads(result_file.read_text())
        result = _GRADED[aid]
        if "error" in result:
            pytest.fail(f"grading {aid} failed:\n{result['error']}")
        return result

    return get


def _lost_points(cell: list) -> bool:
    score, max_score = cell
    return score is None or score < max_score


# -- static checks (fast) ----------------------------------------------------------------------
def test_assignments_are_found():
    assert ASSIGNMENTS, "no solutions/aN/*.ipynb found"


@pytest.mark.parametrize("aid", ASSIGNMENTS)
def test_catalogue_applies_to_the_reference(aid):
    """Each mistake edits one answer cell exactly once and names existing test cells."""
    source = {
        p.name: submissions.read(p) for p in (harness.REPO_ROOT / "solutions" / aid).glob("*.ipynb")
    }
    answers = {}
    tests = set()
    for nb in source.values():
        answers.update(submissions.reference_answers(nb))
        tests.update(harness.autograded_test_ids(nb))
    catalogue = harness.mistakes(aid)
    assert len(catalogue) >= 8, f"{aid}: the mistake catalogue needs at least 8 entries"
    assert len({m.name for m in catalogue}) == len(catalogue), "mistake names must be unique"
    for mutation in catalogue:
        changed = mutation.apply(answers)
        assert changed[mutation.cell] != answers[mutation.cell]
        assert mutation.tests, f"{mutation.name}: name the test cells it must lose points on"
        assert set(mutation.tests) <= tests, f"{mutation.name}: unknown test cells {mutation.tests}"
    alternatives = harness.alternatives(aid)
    assert len(alternatives) >= 2, f"{aid}: at least two alternative solutions are required"
    for name, alt in alternatives.items():
        if isinstance(alt, submissions.Mutation):
            alt.apply(answers)
        else:
            assert set(alt) <= set(answers), f"alternative {name}: unknown answer cells"


@pytest.mark.parametrize("aid", ASSIGNMENTS)
def test_release_leaks_no_solution_or_hidden_test(aid):
    source_dir = harness.REPO_ROOT / "solutions" / aid
    release_dir = harness.REPO_ROOT / "assignments" / aid
    for source_path in sorted(source_dir.glob("*.ipynb")):
        released_path = release_dir / source_path.name
        assert released_path.exists(), (
            f"{released_path} is missing: run nbgrader generate_assignment"
        )
        text = released_path.read_text()
        released = nbformat.reads(text, as_version=4)
        joined = "\n".join(cell.source for cell in released.cells)
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN", "END HIDDEN"):
            assert marker not in text, f"{released_path.name} contains {marker!r}"
        assert not CHECK_CALL.search(joined), f"{released_path.name} calls the hidden check()"
        assert "coursekit.grading" not in joined, f"{released_path.name} imports the grader"
        source = submissions.read(source_path)
        secret = set(harness.hidden_test_lines(source))
        for cell in source.cells:
            if harness.nbgrader_meta(cell).get("solution"):
                secret.update(_solution_region_lines(cell.source))
        for line in sorted(secret):
            if len(line) >= 6 and not line.startswith("#"):
                assert line not in joined, f"{released_path.name} leaks {line!r}"
        for cell in released.cells:
            assert not cell.get("outputs"), f"{released_path.name}: outputs must be cleared"


def _solution_region_lines(source: str) -> list[str]:
    lines, inside = [], False
    for line in source.splitlines():
        if line.strip() == "### BEGIN SOLUTION":
            inside = True
        elif line.strip() == "### END SOLUTION":
            inside = False
        elif inside and line.strip():
            lines.append(line.strip())
    return lines


# -- the real nbgrader -------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("aid", ASSIGNMENTS)
def test_release_is_reproduced_by_nbgrader(aid, graded):
    """The grading course released solutions/aN afresh: it must equal the committed release."""
    committed = harness.REPO_ROOT / "assignments" / aid
    fresh = Path(graded(aid)["course"]) / "assignments" / aid
    names = sorted(p.relative_to(fresh).as_posix() for p in fresh.rglob("*") if p.is_file())
    committed_names = sorted(
        p.relative_to(committed).as_posix() for p in committed.rglob("*") if p.is_file()
    )
    assert names == committed_names, "regenerate assignments/ with nbgrader generate_assignment"
    for name in names:
        assert (fresh / name).read_bytes() == (committed / name).read_bytes(), (
            f"assignments/{aid}/{name} drifted from solutions/: regenerate it"
        )


@pytest.mark.slow
@pytest.mark.parametrize("aid", ASSIGNMENTS)
def test_reference_solution_gets_full_marks(aid, graded):
    result = graded(aid)
    cells = result["scores"][harness.SOLUTION_STUDENT]
    lost = {t: cells[t] for t in result["tests"] if _lost_points(cells[t])}
    assert not lost, f"the reference solution lost points: {lost}"
    # A value displayed by a test cell is read by nbgrader as a partial-credit score.
    graded_dir = Path(result["course"]) / "autograded" / harness.SOLUTION_STUDENT / aid
    for path in sorted(graded_dir.glob("*.ipynb")):
        for cell in nbformat.read(str(path), as_version=4).cells:
            if harness.is_autograded_test(cell):
                kinds = {out.output_type for out in cell.outputs}
                assert "execute_result" not in kinds, (
                    f"{harness.nbgrader_meta(cell)['grade_id']} displays a value"
                )
    print(f"{aid}: grading times {result['seconds']}")


@pytest.mark.slow
@pytest.mark.parametrize("aid", ASSIGNMENTS)
def test_unmodified_release_gets_zero(aid, graded):
    result = graded(aid)
    cells = result["scores"][harness.BLANK_STUDENT]
    assert set(result["tests"]) <= set(cells), "every autograded cell gets a grade"
    scored = {t: cells[t] for t in result["tests"] if cells[t][0] != 0}
    assert not scored, f"the blank release scored points: {scored}"


@pytest.mark.slow
@pytest.mark.parametrize(("aid", "name"), MISTAKE_PARAMS)
def test_mistake_loses_points(aid, name, graded):
    result = graded(aid)
    info = result["mistakes"][name]
    cells = result["scores"][info["student"]]
    kept = [t for t in info["tests"] if not _lost_points(cells[t])]
    assert not kept, f"mistake {name!r} kept full marks on {kept}"


@pytest.mark.slow
@pytest.mark.parametrize("aid", ASSIGNMENTS)
def test_kill_rate_and_public_tests(aid, graded):
    """Report the kill rate; some mistakes must pass the public tests (hidden tests add something)."""
    result = graded(aid)
    killed, public_pass = [], []
    for name, info in result["mistakes"].items():
        cells = result["scores"][info["student"]]
        if all(_lost_points(cells[t]) for t in info["tests"]):
            killed.append(name)
        if all(info.get("public", {}).get(t, False) for t in info["tests"]):
            public_pass.append(name)
    total = len(result["mistakes"])
    print(
        f"\n{aid}: kill rate {len(killed)}/{total} = {len(killed) / max(total, 1):.0%}; "
        f"{len(public_pass)} mistakes pass the public tests: {public_pass}; "
        f"times {result['seconds']}"
    )
    assert len(killed) == total
    assert public_pass, f"{aid}: every mistake already fails a public test"


@pytest.mark.slow
@pytest.mark.parametrize(("aid", "name"), ALTERNATIVE_PARAMS)
def test_alternative_solution_gets_full_marks(aid, name, graded):
    result = graded(aid)
    cells = result["scores"][result["alternatives"][name]]
    lost = {t: cells[t] for t in result["tests"] if _lost_points(cells[t])}
    assert not lost, f"alternative {name!r} lost points: {lost}"


# -- harmless stderr -----------------------------------------------------------------------------
def _warning_notebook() -> nbformat.NotebookNode:
    def cell(source, grade_id=None, **meta):
        c = nbformat.v4.new_code_cell(source)
        if grade_id:
            c.metadata["nbgrader"] = {"grade_id": grade_id, "schema_version": 3, **meta}
        return c

    test = {"grade": True, "solution": False, "locked": True, "points": 1}
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        cell(
            "import sys, warnings\nimport numpy as np\n\ndef halve(x):\n"
            "    ### BEGIN SOLUTION\n    return x / 2\n    ### END SOLUTION",
            "answer",
            grade=False,
            solution=True,
            locked=False,
        ),
        cell(
            "warnings.warn('a harmless notice', UserWarning)\n"
            "np.log(np.zeros(1))  # RuntimeWarning: divide by zero\n"
            "sys.stderr.write('library chatter on stderr\\n')\n"
            "assert halve(4.0) == 2.0",
            "test_warns_but_passes",
            **test,
        ),
        cell(
            "sys.stderr.write('about to fail\\n')\nassert halve(4.0) == 3.0, 'wrong on purpose'",
            "test_fails",
            **test,
        ),
    ]
    return nb


@pytest.mark.slow
def test_harmless_stderr_keeps_full_marks(tmp_path):
    """A correct cell that writes warnings to stderr keeps its points; a failing cell gets 0."""
    root = tmp_path / "course"
    (root / "solutions" / "warn").mkdir(parents=True)
    nbformat.write(_warning_notebook(), str(root / "solutions" / "warn" / "warn.ipynb"))
    source_root = harness.REPO_ROOT
    (root / "nbgrader_config.py").write_text((source_root / "nbgrader_config.py").read_text())
    course = harness.Course(root)
    course.nbgrader("generate_assignment", "warn", "--force")
    source = course.notebooks("solutions", "warn")
    released = course.notebooks("assignments", "warn")
    course.submit("warn", "student", harness.build_submission(source, released))
    course.autograde("warn")
    cells = course.scores("warn")["student"]
    assert cells["test_warns_but_passes"] == [1.0, 1.0]
    assert cells["test_fails"] == [0.0, 1.0]
    graded_nb = nbformat.read(str(root / "autograded" / "student" / "warn" / "warn.ipynb"), 4)
    warned = next(
        c
        for c in graded_nb.cells
        if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "test_warns_but_passes"
    )
    text = "".join(o.get("text", "") for o in warned.outputs)
    assert "a harmless notice" in text and "library chatter" in text, "the warnings stay visible"


def test_nbgrader_zeroes_stderr_without_the_plugin():
    """Why the plugin exists: nbgrader's own rule gives 0 to any cell with stderr output."""
    from nbgrader.utils import determine_grade

    from coursekit.grading.nbgrader_plugins import HarmlessStderrToStdout

    cell = nbformat.v4.new_code_cell("pass")
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "points": 2, "grade_id": "t"}
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text="UserWarning: hi\n")]
    assert determine_grade(cell) == (0, 2.0)
    cell, _ = HarmlessStderrToStdout().preprocess_cell(cell, {}, 0)
    assert determine_grade(cell) == (2.0, 2.0)
    failing = nbformat.v4.new_code_cell("pass")
    failing.metadata["nbgrader"] = dict(cell.metadata["nbgrader"])
    failing.outputs = [
        nbformat.v4.new_output("stream", name="stderr", text="x\n"),
        nbformat.v4.new_output("error", ename="AssertionError", evalue="", traceback=[]),
    ]
    failing, _ = HarmlessStderrToStdout().preprocess_cell(failing, {}, 0)
    assert failing.outputs[0]["name"] == "stderr"
    assert determine_grade(failing) == (0, 2.0)
