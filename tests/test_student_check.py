"""``coursekit check``: the student's pre-submit check agrees with ``coursekit grade``.

The check ships without nbgrader and without the instructor package, so it carries its
own copy of the grader's rules (nbgrader's checksum, the cell roles of
``coursekit.instructor.cell_roles``, nbgrader's restoring of locked cells). These tests
hold the copy to the originals: the checksum equals nbgrader's on every released cell,
the roles come back as ``restore_cell_roles`` puts them for every structural case of the
attack catalogue, and (slow) for each such case graded by ``coursekit grade`` the check's
verdict on every test cell is the grader's.
"""

from __future__ import annotations

import copy
import json
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

from coursekit.grading import submissions
from coursekit.instructor.cell_roles import CellRole, restore_cell_roles
from coursekit.student.check import (
    Settings,
    check_assignment,
    check_notebook,
    compute_checksum,
    out_of_order,
    restore_roles,
    unfinished,
)

sys.path.insert(0, str(Path(__file__).parent))
from attacks import (  # noqa: E402
    A1,
    A3,
    ACCIDENTS,
    NOTEBOOK_ATTACKS,
    catalogue,
    source_notebook,
    wrong_answer,
)

TARGETS = {"a1": A1, "a3": A3}
REPO = Path(__file__).resolve().parents[1]
RELEASES = sorted((REPO / "assignments").glob("*/*.ipynb"))


def read(path):
    return nbformat.read(str(path), as_version=4)


def roles_of(release) -> dict[str, CellRole]:
    """The gradebook's view of a release, as ``cell_roles.release_roles`` builds it."""
    roles = {}
    for cell in release.cells:
        meta = cell.metadata.get("nbgrader")
        if not meta:
            continue
        points = float(meta["points"]) if meta.get("grade") or meta.get("task") else None
        roles[meta["grade_id"]] = CellRole(
            grade=bool(meta.get("grade")),
            solution=bool(meta.get("solution")),
            locked=bool(meta.get("locked")),
            task=bool(meta.get("task")),
            points=points,
            code=cell.cell_type == "code",
        )
    return roles


def flags(nb) -> list:
    """Each cell's grade id, flags and points (None for an ordinary cell)."""
    out = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader")
        if meta is None:
            out.append(None)
            continue
        role = tuple(bool(meta.get(f)) for f in ("grade", "solution", "locked", "task"))
        points = float(meta["points"]) if meta.get("points") is not None else None
        out.append((meta.get("grade_id"), role, points))
    return out


def test_checksum_is_nbgrader_s_on_every_released_cell():
    from nbgrader.utils import compute_checksum as nbgrader_checksum

    count = 0
    for path in RELEASES:
        for cell in read(path).cells:
            if "nbgrader" in cell.metadata:
                assert compute_checksum(cell) == nbgrader_checksum(cell), (path, cell.metadata)
                assert compute_checksum(cell) == cell.metadata.nbgrader["checksum"]
                count += 1
    assert count > 60
    cell = next(c for c in read(RELEASES[0]).cells if "nbgrader" in c.metadata)
    changed = copy.deepcopy(cell)
    changed.source += "\n# changed"
    assert compute_checksum(changed) == nbgrader_checksum(changed) != compute_checksum(cell)


def catalogue_case(name: str, target=A1):
    """The attack catalogue's submission for ``name`` (a notebook attack), and its release."""
    source = source_notebook(target)
    released = released_of(source, target)
    answers = {target.answer: wrong_answer(target, source)}
    nb = submissions.submission(source, released, answers=answers)
    NOTEBOOK_ATTACKS[name](nb, target)
    return nb, released


def released_of(source, target):
    """The release nbgrader makes of the catalogue's cut (taken from the real release)."""
    full = read(REPO / "assignments" / target.assignment / target.notebook)
    keep = {c.metadata.get("nbgrader", {}).get("grade_id") for c in source.cells}
    cells = [c for c in full.cells if c.metadata.get("nbgrader", {}).get("grade_id") in keep]
    imports = nbformat.v4.new_code_cell("import numpy as np\nfrom coursekit.grading import check")
    return nbformat.v4.new_notebook(cells=[imports, *cells], metadata=full.metadata)


@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("attack", sorted(NOTEBOOK_ATTACKS))
def test_cells_get_the_roles_the_grader_gives_them(attack, target):
    nb, released = catalogue_case(attack, TARGETS[target])
    ours, theirs = copy.deepcopy(nb), copy.deepcopy(nb)
    notes = restore_roles(ours, released)
    changes = restore_cell_roles(theirs, roles_of(released))
    assert flags(ours) == flags(theirs), attack
    assert notes or not changes, (attack, changes)
    # nbgrader then gives a retyped cell its type back, as the check already did
    if attack == "retyped-test-cell":
        assert all(c.cell_type == r.cell_type for c, r in zip(ours.cells, released.cells))


def test_a_changed_test_cell_gets_the_release_source_back():
    nb, released = catalogue_case("blanked-test-cell", A1)
    notes = restore_roles(nb, released)
    cell = next(
        c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_softmax"
    )
    original = next(
        c
        for c in released.cells
        if c.metadata.get("nbgrader", {}).get("grade_id") == "test_softmax"
    )
    assert cell.source == original.source
    assert notes == [
        "test cell test_softmax: source changed; the grader puts the release's version back"
    ]


def test_unfinished_names_stubs_missing_functions_and_unanswered_questions():
    released = read(REPO / "assignments" / "a1" / "vectorization.ipynb")
    blank = unfinished(released, released)
    assert "softmax is not written yet: it still raises NotImplementedError" in blank
    assert any(p.startswith("written answer q_clamp") for p in blank)
    source = read(REPO / "solutions" / "a1" / "vectorization.ipynb")
    filled = submissions.submission(source, released)
    for cell in filled.cells:
        if cell.cell_type == "markdown" and cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = "Because the round-off can make the squared distance negative."
    assert unfinished(filled, released) == []
    renamed = copy.deepcopy(filled)
    for cell in renamed.cells:
        cell.source = cell.source.replace("def softmax(", "def soft_max(")
    assert unfinished(renamed, released) == ["softmax is missing (answer cell softmax)"]


def test_out_of_order_execution_counts_are_reported():
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("x = 1", execution_count=3),
            nbformat.v4.new_code_cell("y = x", execution_count=1),
            nbformat.v4.new_code_cell("z = y", execution_count=None),
            nbformat.v4.new_code_cell("w = z", execution_count=4),
        ]
    )
    assert out_of_order(nb) == [
        "cell 2 ran before cell 1 in your session (execution counts 3 then 1): the grader "
        "runs the cells from top to bottom"
    ]
    for count, cell in enumerate(nb.cells, 1):
        cell.execution_count = count
    assert out_of_order(nb) == []


def check_cells(tmp_path, sources: list[str], cell_timeout: int):
    """``check_notebook`` on a release made of code cells ``sources``, submitted as it is."""
    release = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    path = tmp_path / "hw.ipynb"
    nbformat.write(release, str(path))
    settings = Settings(
        cell_timeout=cell_timeout, notebook_seconds=60, notebook_output_bytes=20_000
    )
    return check_notebook(path, release, settings, "hw.ipynb")


@pytest.mark.slow
def test_a_notebook_that_only_worked_out_of_order_and_an_output_flood(tmp_path):
    sources = [
        "print(helper(2))",
        "def helper(x):\n    return 2 * x",
        "for _ in range(50):\n    print('y' * 1000)",
        "import time\ntime.sleep(30)",
    ]
    report = check_cells(tmp_path, sources, cell_timeout=3)
    assert report.order == [
        "cell 1 uses helper before cell 2 defines it: it only worked when the cells ran out "
        "of order"
    ]
    assert any(
        "cell 3: the notebook printed more than the grader keeps" in m for m in report.limits
    )
    assert any("cell 4 ran longer than the grader's 3 s" in m for m in report.limits)
    assert not report.ok
    assert "NOT READY" in report.render()


@pytest.mark.slow
def test_a_kernel_that_dies_is_reported_and_its_log_stays_off_the_terminal(tmp_path, capfd):
    sources = [
        "import sys\nprint('to the kernel log', file=sys.__stderr__)",
        "import os\nos._exit(3)",
        "x = 1",
    ]
    report = check_cells(tmp_path, sources, cell_timeout=20)
    assert any("cell 2: the kernel stopped" in m for m in report.limits), report.limits
    assert report.tests == [] and len(report.limits) == 1, report.limits
    assert not report.errors, report.errors  # the stop is a limit, not an error of the code
    assert not report.ok
    terminal = capfd.readouterr()
    assert "to the kernel log" not in terminal.out + terminal.err
    assert "Kernel is running over TCP" not in terminal.err


@pytest.mark.slow
def test_blank_release_fails_cleanly_and_reference_answers_pass(tmp_path):
    source = read(REPO / "solutions" / "a1" / "vectorization.ipynb")
    released = read(REPO / "assignments" / "a1" / "vectorization.ipynb")
    blank = tmp_path / "blank" / "vectorization.ipynb"
    blank.parent.mkdir()
    shutil.copy(REPO / "assignments" / "a1" / "vectorization.ipynb", blank)
    (report,) = check_assignment("a1", [blank], root=REPO, receipts=tmp_path / "receipts")
    assert not report.ok
    assert {t.cell for t in report.tests if not t.passed} == {t.cell for t in report.tests} and len(
        report.tests
    ) == 8
    assert (
        "knn_predict is not written yet: it still raises NotImplementedError" in report.unfinished
    )
    filled = tmp_path / "filled" / "Vectorization (1).ipynb"
    filled.parent.mkdir()
    nb = submissions.submission(source, released)
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = "My own answer."
    nbformat.write(nb, str(filled))
    (report,) = check_assignment("a1", [filled], root=REPO, receipts=tmp_path / "receipts")
    assert all(t.passed for t in report.tests), report.render()
    assert report.points == report.max_points == 20
    assert report.wrong_name and "vectorization.ipynb" in report.wrong_name  # named like a download
    assert not report.ok
    receipts = sorted((tmp_path / "receipts").glob("a1-vectorization-*.json"))
    assert len(receipts) == 2
    receipt = json.loads(receipts[-1].read_text())
    import hashlib

    assert receipt["sha256"] == hashlib.sha256(filled.read_bytes()).hexdigest()
    assert receipt["checked_at"].endswith("+00:00")


# -- agreement with coursekit grade on the catalogue's structural cases -----------------------


@pytest.fixture(scope="module", params=sorted(TARGETS))
def graded_catalogue(request, tmp_path_factory):
    from coursekit.cli.main import main
    from coursekit.instructor.batch import journal_for
    from coursekit.instructor.course import Course
    from coursekit.instructor.demo import write_class
    from coursekit.instructor.sandbox import bwrap_usable

    if not bwrap_usable():
        pytest.skip("bubblewrap is unusable here: coursekit grade cannot run sandboxed")
    target = TARGETS[request.param]
    root = tmp_path_factory.mktemp("check-vs-grade") / "course"
    (root / "solutions" / target.assignment).mkdir(parents=True)
    shutil.copy(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    with open(root / "nbgrader_config.py", "a") as fh:
        fh.write("c.Execute.timeout = 15\n")
    source = source_notebook(target)
    # the cut keeps no setup cell; give it the assignment's (a3's public tests need run_rule),
    # so that the visible tests can pass in the grader and in the check alike
    full = read(REPO / "assignments" / target.assignment / target.notebook)
    setup = next(c.source for c in full.cells if c.cell_type == "code" and "import" in c.source)
    source.cells[0].source = setup + "\n" + source.cells[0].source
    nbformat.write(source, str(root / "solutions" / target.assignment / target.notebook))
    assert main(["--course", str(root), "release", target.assignment]) == 0
    course = Course.locate(root)
    released = submissions.read(root / "assignments" / target.assignment / target.notebook)
    structural = {*NOTEBOOK_ATTACKS, *ACCIDENTS, "surrogates"}
    klass = catalogue(target, source, released, course=root, port=9, only=structural)
    assert {f"attack-{n}" for n in NOTEBOOK_ATTACKS} <= set(klass)
    write_class(course, target.assignment, klass)
    assert main(["--course", str(root), "grade", target.assignment, "--quiet"]) in (0, 1)
    results = {r.student: r for r in journal_for(course, target.assignment).results()}
    assert set(results) == set(klass)
    return target, root, klass, results


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Non-unique cell id")
def test_check_agrees_with_grade_on_every_structural_case(graded_catalogue, tmp_path, monkeypatch):
    from coursekit.student.check import load_release

    target, root, klass, results = graded_catalogue
    monkeypatch.setenv("HOME", str(tmp_path))  # a notebook may write to its HOME
    settings, release = load_release(target.assignment, root)
    assert settings.cell_timeout == 15
    disagreements = []
    for student in sorted(klass):
        path = root / "submitted" / student / target.assignment / target.notebook
        hidden = settings.hidden_graded[target.assignment]
        assert target.test in hidden
        report = check_notebook(path, release[target.notebook], settings, target.notebook, hidden)
        assert report.tests and all(t.hidden for t in report.tests), report.tests
        graded = {t["cell"]: bool(t["passed"]) for t in results[student].tests if t["autograded"]}
        assert graded, (student, results[student].reason)
        for cell, passed in graded.items():
            verdict = report.verdict(cell)
            if (verdict == "passed") != passed:
                disagreements.append((student, cell, verdict, passed, report.render()))
        if student.startswith(("attack-deleted", "attack-stripped", "attack-renamed")):
            assert report.verdict(target.test) == "missing", report.render()
            assert not report.ok
    assert not disagreements, disagreements[:3]
