"""``coursekit publish``: the student edition, and nothing hidden in it or in its wheel.

The leak scan here is written independently of ``coursekit.instructor.publish.leaks``: it
reads the course's source notebooks, grading tasks and catalogues itself and looks for
their secret lines, markers and seeds in every published file and in the wheel built
from the edition.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import nbformat
import pytest

from coursekit.cli.main import main
from coursekit.instructor.course import Course
from coursekit.instructor.publish import PublishError, publish

REPO = Path(__file__).resolve().parents[1]
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
CATALOGUES = ("tests/mistakes", "tests/attacks", "tests/alternatives", "coursekit/grading/tasks")
MIN_LINE = 12
RUN = 4  # consecutive solution lines a lecture may not show


def source_lines(path: Path) -> set[str]:
    """Stripped lines of a file (of the cell sources, for a notebook)."""
    if path.suffix == ".ipynb":
        text = "\n".join(c.source for c in nbformat.read(str(path), as_version=4).cells)
    else:
        text = path.read_text(errors="replace")
    return {line.strip() for line in text.splitlines()}


def hidden_material(course: Path) -> dict:
    """Secret lines, seeds and catalogue lines of the instructor's course at ``course``."""
    solution, hidden, seeds, blocks = set(), set(), set(), []
    for path in sorted((course / "solutions").glob("*/*.ipynb")):
        for cell in nbformat.read(str(path), as_version=4).cells:
            region = None
            for line in cell.source.splitlines():
                text = line.strip()
                if text.startswith("### BEGIN SOLUTION"):
                    region = "solution"
                    blocks.append([])
                elif text.startswith("### BEGIN HIDDEN TESTS"):
                    region = "hidden"
                elif text.startswith("### END"):
                    region = None
                elif region == "solution" and text:
                    blocks[-1].append(text)
                    if len(text) >= MIN_LINE:
                        solution.add(text)
                elif region == "hidden":
                    if len(text) >= MIN_LINE:
                        hidden.add(text)
                    seeds.update(re.findall(r"seed\s*=\s*(\d+)", text))
    released = set()
    for path in (course / "assignments").glob("*/*.ipynb"):
        released |= source_lines(path)
    catalogue = set()
    for folder in CATALOGUES:
        for path in (REPO / folder).rglob("*.py"):
            catalogue |= {s for s in source_lines(path) if len(s) >= MIN_LINE}
    secret = solution - released
    runs = set()
    for block in blocks:  # RUN consecutive lines of one solution, two of them secret
        for i in range(len(block) - RUN + 1):
            if sum(line in secret for line in block[i : i + RUN]) >= 2:
                runs.add(tuple(block[i : i + RUN]))
    return {
        "released": released,
        "runs": runs,
        "solution": secret,
        "hidden": hidden - released,
        "seeds": seeds,
        "catalogue": catalogue,
    }


def original_of(path: str, course: Path) -> Path | None:
    """The course file a published library or lecture file was copied from."""
    if path.startswith("coursekit/") and not path.startswith("coursekit/student/edition/"):
        return REPO / path
    if path.startswith("lectures/"):
        return course / path
    return None


def scan(files: dict[str, bytes], course: Path) -> tuple[list[str], int]:
    """(leaks, library/lecture lines that are also solution lines, by design)."""
    material = hidden_material(course)
    seed_re = re.compile(r"\bseed\s*=\s*(" + "|".join(sorted(material["seeds"])) + r")\b")
    public = set(material["released"])  # the release shows the stubs' signatures
    for path in files:
        original = original_of(path, course)
        if original is not None and original.is_file():
            public |= source_lines(original)
    secret_file = course / ".coursekit" / "secret"
    secret = secret_file.read_text().strip().lower() if secret_file.is_file() else ""
    leaks, shared = [], 0
    for path, content in sorted(files.items()):
        if secret and secret in content.decode("utf-8", errors="ignore").lower():
            leaks.append(f"{path}: the course secret")
        parts = Path(path).parts
        if parts[:2] in (
            ("coursekit", "grading"),
            ("coursekit", "instructor"),
            ("coursekit", "cli"),
        ):
            leaks.append(f"{path}: instructor package")
        if parts[0] in ("solutions", "tests", ".coursekit", "submitted", "autograded"):
            leaks.append(f"{path}: instructor folder")
        if "secret" in path.lower() or path.endswith(("gradebook.db", "nbgrader_config.py")):
            leaks.append(f"{path}: instructor file")
        text = content.decode("utf-8", errors="ignore")
        leaks += [f"{path}: marker {m}" for m in MARKERS if m in text]
        if material["seeds"] and (hit := seed_re.search(text)):
            leaks.append(f"{path}: hidden seed {hit.group(0)}")
        if path.endswith(".ipynb"):
            try:
                text = "\n".join(c.source for c in nbformat.reads(text, as_version=4).cells)
            except Exception:  # noqa: BLE001 - scanned as plain text then
                pass
        lines = {line.strip() for line in text.splitlines()}
        leaks += [f"{path}: hidden-test line {s!r}" for s in lines & material["hidden"]]
        original = original_of(path, course)
        if original is not None and path.startswith("coursekit/"):
            # a verbatim copy of the course's library: the reference implementations are
            # public by design, so lines it shares with a solution are no secret
            assert original.is_file(), path
            expected = original.read_bytes()
            if path == "coursekit/__init__.py":
                expected = expected.replace(b'    "grading",\n', b"")
            if content != expected:
                leaks.append(f"{path}: differs from the course's {original}")
            shared += len(lines & material["solution"])
            continue
        if path.startswith("lectures/"):
            # teaching material may share a line with a solution, never a run of them
            seq = [ln.strip() for ln in text.splitlines() if ln.strip()]
            seen = {tuple(seq[i : i + RUN]) for i in range(len(seq) - RUN + 1)}
            leaks += [f"{path}: solution run {r[0]!r}" for r in seen & material["runs"]]
            shared += len(lines & material["solution"])
            continue
        leaks += [f"{path}: solution line {s!r}" for s in lines & material["solution"]]
        leaks += [f"{path}: catalogue line {s!r}" for s in (lines & material["catalogue"]) - public]
    return leaks, shared


def tree(directory: Path) -> dict[str, bytes]:
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and ".git" not in p.parts
    }


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    target = tmp_path_factory.mktemp("edition") / "student-edition"
    assert main(["--course", str(REPO), "publish", str(target)]) == 0
    return target


def test_the_edition_holds_what_students_need(edition):
    files = tree(edition)
    course = Course.locate(REPO)
    for name in course.assignments():
        released = sorted(p.name for p in (REPO / "assignments" / name).glob("*.ipynb"))
        assert released
        for nb in released:
            assert (
                files[f"assignments/{name}/{nb}"] == (REPO / "assignments" / name / nb).read_bytes()
            )
            assert (
                files[f"coursekit/student/edition/release/{name}/{nb}"]
                == files[f"assignments/{name}/{nb}"]
            )
    lectures = sorted(p.name for p in (REPO / "lectures").glob("*.ipynb"))
    assert len(lectures) == 10
    assert all(f"lectures/{n}" in files for n in lectures)
    for path in ("README.md", "LICENSE", "pyproject.toml", "constraints.txt", ".gitignore"):
        assert path in files, path
    assert "coursekit/data/digits.npz" in files and "coursekit/data/DIGITS.md" in files
    assert "coursekit/optim/adam.py" in files and "coursekit/student/check.py" in files
    settings = json.loads(files["coursekit/student/edition/grader.json"])
    assert settings["cell_timeout"] == 120  # nbgrader_config.py's Execute.timeout
    assert settings["notebook_seconds"] == 900
    assert settings["notebook_output_bytes"] == 4 * 1024**2
    assert sorted(settings["assignments"]) == course.assignments()
    assert "test_softmax" in settings["hidden_graded"]["a1"]  # graded by hidden tests
    readme = files["README.md"].decode()
    assert "<!-- setup-command -->" in readme and "<!-- check-command -->" in readme
    assert "coursekit check a1" in readme
    assert "https://download.pytorch.org/whl/cpu" in readme
    assert "{" not in readme.replace("{}", "")  # every template field filled


def test_nothing_hidden_in_the_published_tree(edition):
    files = tree(edition)
    leaks, shared = scan(files, REPO)
    assert not leaks, leaks[:20]
    assert not any(p.startswith(("solutions/", "tests/", "coursekit/grading")) for p in files)
    # the library is the reference implementation: some lines are the same as a solution's
    assert shared < 60, shared


def test_the_scan_finds_planted_leaks(edition):
    files = tree(edition)
    source = nbformat.read(str(REPO / "solutions" / "a1" / "vectorization.ipynb"), as_version=4)
    answer = next(c.source for c in source.cells if "### BEGIN SOLUTION" in c.source)
    secret = hidden_material(REPO)["solution"]
    line = next(ln.strip() for ln in answer.splitlines() if ln.strip() in secret)
    everything = "\n".join(c.source for c in source.cells)
    seed = re.search(r"check\([^)]*(seed=\d+)\)", everything).group(1)
    block = answer.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
    planted = {
        "README.md": files["README.md"] + f"\n{line}\n".encode(),
        "coursekit/student/edition/grader.json": b'{"x": "check(a, f, ' + seed.encode() + b')"}',
        "coursekit/grading/tasks/a1.py": b"",
        "tests/mistakes/a1.py": b"",
        "lectures/L03_activation_functions.ipynb": files["lectures/L03_activation_functions.ipynb"]
        + block.encode(),
        "assignments/a1/vectorization.ipynb": files["assignments/a1/vectorization.ipynb"]
        + b"\n### BEGIN HIDDEN TESTS\n",
    }
    leaks, _ = scan({**files, **planted}, REPO)
    for path in planted:
        assert any(leak.startswith(path) for leak in leaks), (path, leaks)


def test_nothing_hidden_in_the_wheel_built_from_the_edition(edition, tmp_path):
    out = tmp_path / "dist"
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    subprocess.run([*cmd, "-q", "-w", str(out), str(edition)], check=True, timeout=600)
    (wheel,) = out.glob("coursekit-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        files = {n: zf.read(n) for n in zf.namelist() if not n.endswith("/")}
    library = {n: c for n, c in files.items() if n.startswith("coursekit/")}
    assert "coursekit/student/edition/grader.json" in library
    assert "coursekit/student/edition/release/a1/vectorization.ipynb" in library
    assert "coursekit/data/digits.npz" in library
    leaks, _ = scan(library, REPO)
    metadata = {n: c for n, c in files.items() if not n.startswith("coursekit/")}
    leaks += [
        f"{n}: {m}" for n, c in metadata.items() for m in MARKERS if m in c.decode(errors="ignore")
    ]
    assert not leaks, leaks[:20]
    entry_points = next(c for n, c in metadata.items() if n.endswith("entry_points.txt"))
    assert b"coursekit = coursekit.student.cli:main" in entry_points


def test_the_student_command_offers_only_check_and_the_library_imports(edition):
    probe = (
        # -S: no .pth files, so the instructor's editable coursekit cannot answer imports
        "import sys, importlib; sys.path[:0] = [sys.argv[1]]; sys.path.append(sys.argv[2])\n"
        "import coursekit\n"
        "assert coursekit.__file__.startswith(sys.argv[1]), coursekit.__file__\n"
        "for name in coursekit.__all__:\n"
        "    if name != '__version__': getattr(coursekit, name)\n"
        "assert 'grading' not in coursekit.__all__\n"
        "for gone in ('coursekit.grading', 'coursekit.instructor', 'coursekit.cli'):\n"
        "    try:\n"
        "        importlib.import_module(gone)\n"
        "    except ModuleNotFoundError:\n"
        "        continue\n"
        "    raise SystemExit(gone + ' is importable')\n"
        "from coursekit.student.cli import build_parser\n"
        "sub = next(a for a in build_parser()._actions if a.dest == 'command')\n"
        "print(sorted(sub.choices))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-S", "-c", probe, str(edition), sysconfig.get_paths()["purelib"]],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['check']"


def course_copy(tmp_path: Path) -> Path:
    root = tmp_path / "course"
    root.mkdir()
    for name in ("solutions", "assignments", "lectures"):
        shutil.copytree(REPO / name, root / name)
    shutil.copy(REPO / "nbgrader_config.py", root)
    return root


def test_republishing_updates_in_place_and_lists_the_changes(tmp_path, capsys):
    root = course_copy(tmp_path)
    target = tmp_path / "edition"
    first = publish(Course.locate(root), target)
    assert not first.changed and not first.removed and len(first.added) > 50
    (target / ".git").mkdir()
    (target / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (target / "CNAME").write_text("course.example.org\n")  # the instructor's own file
    again = publish(Course.locate(root), target)
    assert (again.added, again.changed, again.removed) == ([], [], [])
    assert again.unchanged == len(first.added)
    lecture = root / "lectures" / "L01_vectorization.ipynb"
    lecture.write_text(lecture.read_text().replace("Broadcasting", "Broadcasting!", 1))
    (root / "lectures" / "README.md").unlink()
    assert main(["--course", str(root), "publish", str(target)]) == 0
    out = capsys.readouterr().out
    assert "changed  lectures/L01_vectorization.ipynb" in out
    assert "removed  lectures/README.md" in out
    assert "0 added, 1 changed, 1 removed" in out
    assert not (target / "lectures" / "README.md").exists()
    assert (target / "CNAME").is_file() and (target / ".git" / "HEAD").is_file()


@pytest.mark.parametrize("what", ["solution", "hidden test", "course secret"])
def test_publish_refuses_hidden_material_and_writes_nothing(tmp_path, what):
    root = course_copy(tmp_path)
    if what == "course secret":
        (root / ".coursekit").mkdir()
        (root / ".coursekit" / "secret").write_text("5e" * 32 + "\n")
        path = root / "lectures" / "L03_activation_functions.ipynb"
        lecture = nbformat.read(str(path), as_version=4)
        lecture.cells.append(nbformat.v4.new_code_cell(f"SEED = 0x{'5e' * 32}"))
        nbformat.write(lecture, str(path))
        files = {"lectures/x.ipynb": path.read_bytes()}
        assert scan(files, root)[0] == ["lectures/x.ipynb: the course secret"]
        with pytest.raises(PublishError, match="the course secret"):
            publish(Course.locate(root), tmp_path / "edition")
        assert not (tmp_path / "edition").exists()
        return
    source = nbformat.read(str(root / "solutions" / "a1" / "vectorization.ipynb"), as_version=4)
    marker = "### BEGIN SOLUTION" if what == "solution" else "### BEGIN HIDDEN TESTS"
    cell = next(c.source for c in source.cells if marker in c.source)
    pasted = cell.split(marker)[1].split("### END")[0]  # pasted without the markers
    path = root / "lectures" / "L03_activation_functions.ipynb"
    lecture = nbformat.read(str(path), as_version=4)
    lecture.cells.append(nbformat.v4.new_code_cell(pasted))
    nbformat.write(lecture, str(path))
    target = tmp_path / "edition"
    with pytest.raises(PublishError, match="solution lines" if what == "solution" else "hidden"):
        publish(Course.locate(root), target)
    assert not target.exists()
    assert main(["--course", str(root), "publish", str(tmp_path / "other")]) == 2
    assert not (tmp_path / "other").exists()


def test_an_unreleased_assignment_stops_publish(tmp_path):
    root = course_copy(tmp_path)
    shutil.rmtree(root / "assignments" / "a3")
    with pytest.raises(PublishError, match="coursekit release a3"):
        publish(Course.locate(root), tmp_path / "edition")


# -- the whole student path, in a fresh virtual environment --------------------------------


def readme_command(readme: str, marker: str) -> str:
    block = readme.split(marker, 1)[1]
    return block.split("```", 2)[1].strip()


def fill(released, source):
    """The release filled with the reference answers, and a sentence for each written answer."""
    from coursekit.grading import submissions

    nb = submissions.submission(source, released)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "markdown" and meta.get("solution"):
            cell.source = "My answer, in my own words."
    return nb


@pytest.mark.slow
def test_student_edition_end_to_end(tmp_path):
    """Publish, install with the edition's README command, run the lectures, check, grade.

    The install is the README's own command, run as a student would on this machine (its
    pip configuration included: here the package index is a local mirror and torch comes
    as the CPU build from the machine's wheel folder).
    """
    from coursekit.instructor.batch import journal_for
    from coursekit.instructor.demo import write_class

    edition = tmp_path / "edition"
    assert main(["--course", str(REPO), "publish", str(edition)]) == 0
    readme = (edition / "README.md").read_text()
    setup = readme_command(readme, "<!-- setup-command -->")
    assert setup.endswith("&& .venv/bin/jupyter lab")
    install = setup.removesuffix("&& .venv/bin/jupyter lab").strip()
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = os.pathsep.join(
        p for p in env["PATH"].split(os.pathsep) if not p.startswith(str(REPO / ".venv"))
    )
    proc = subprocess.run(
        install, shell=True, cwd=edition, env=env, capture_output=True, text=True, timeout=3000
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    python = edition / ".venv" / "bin" / "python"
    where = subprocess.run(
        [str(python), "-c", "import coursekit, nbgrader"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert "No module named 'nbgrader'" in where.stderr  # a student install: no instructor tools
    probe = subprocess.run(
        [str(python), "-c", "import coursekit, torch; print(coursekit.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip().startswith(str(edition))

    lectures = sorted((edition / "lectures").glob("*.ipynb"))
    assert len(lectures) == 10
    run = (
        "import sys, time\n"
        "from coursekit.notebooks import run_notebook\n"
        "for path in sys.argv[1:]:\n"
        "    _, seconds = run_notebook(path, cwd=path.rsplit('/', 1)[0], timeout=600)\n"
        "    print(f'{path} {seconds:.1f}', flush=True)\n"
    )
    lecture_env = {**env, "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [str(python), "-c", run, *map(str, lectures)],
        cwd=edition,
        env=lecture_env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(proc.stdout.splitlines()) == 10, proc.stdout

    command = readme_command(readme, "<!-- check-command -->")
    assert command == ".venv/bin/coursekit check a1"
    course = Course.locate(REPO)
    klass = {}
    for name in course.assignments():
        check = [str(edition / ".venv" / "bin" / "coursekit"), "check", name]
        blank = subprocess.run(check, cwd=edition, env=env, capture_output=True, text=True)
        assert blank.returncode == 1, (name, blank.stdout, blank.stderr[-2000:])
        assert "Traceback" not in blank.stderr, blank.stderr[-2000:]
        assert "is not written yet" in blank.stdout and "NOT READY" in blank.stdout
        files = {}
        for path in sorted((edition / "assignments" / name).glob("*.ipynb")):
            source = nbformat.read(str(REPO / "solutions" / name / path.name), as_version=4)
            nbformat.write(fill(nbformat.read(str(path), as_version=4), source), str(path))
            files[path.name] = path.read_bytes()
        filled = subprocess.run(check, cwd=edition, env=env, capture_output=True, text=True)
        assert filled.returncode == 0, (name, filled.stdout[-3000:], filled.stderr[-2000:])
        assert "READY TO SUBMIT" in filled.stdout
        klass[name] = files
    assert len(list((edition / "receipts").glob("*.json"))) == 2 * len(klass)

    # the instructor grades the submissions made from the edition: full marks
    root = course_copy(tmp_path)
    assert main(["--course", str(root), "release"]) == 0
    instructor = Course.locate(root)
    for name, files in klass.items():
        write_class(instructor, name, {"edition-student": files})
        assert main(["--course", str(root), "grade", name, "--quiet", "--workers", "1"]) == 0
        (result,) = journal_for(instructor, name).results()
        auto = [t for t in result.tests if t["autograded"]]
        assert auto and all(t["passed"] for t in auto), (name, result.reason, result.tests)
        assert result.reason is None, (name, result.reason)
