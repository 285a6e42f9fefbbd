"""The command line's errors: wrong course directory, missing configuration, unknown names.

These run no notebook: every check happens before nbgrader would start a kernel.
"""

import shutil
from pathlib import Path

import pytest

from coursekit.cli.main import main

FIXTURE = Path(__file__).parent / "fixtures" / "course"


@pytest.fixture
def course(tmp_path):
    root = tmp_path / "course"
    shutil.copytree(FIXTURE, root)
    return root


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_course_directory_that_does_not_exist(tmp_path, capsys):
    code, _, err = run(capsys, "--course", tmp_path / "nowhere", "grade", "f1")
    assert code == 2
    assert "does not exist" in err and "nowhere" in err


def test_directory_without_config_names_the_file_and_the_course_above(course, capsys):
    inner = course / "solutions"
    code, _, err = run(capsys, "--course", inner, "release")
    assert code == 2
    assert "nbgrader_config.py" in err
    assert f"--course {course}" in err  # the hint points at the course root


def test_missing_config(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "report", "f1")
    assert code == 2
    assert "no nbgrader_config.py" in err


def test_broken_config_is_reported_with_its_error(course, capsys):
    (course / "nbgrader_config.py").write_text("c = get_config()\nc.Foo.bar = undefined_name\n")
    code, _, err = run(capsys, "--course", course, "release")
    assert code == 2
    assert "cannot read" in err and "undefined_name" in err


@pytest.mark.parametrize("command", ["grade", "feedback", "report", "release", "validate"])
def test_unknown_assignment_lists_the_known_ones(course, capsys, command):
    code, _, err = run(capsys, "--course", course, command, "f9")
    assert code == 2
    assert "unknown assignment 'f9'" in err and "f1" in err


def test_course_option_after_the_command(course, capsys):
    code, _, err = run(capsys, "grade", "f9", "--course", course)
    assert code == 2 and "unknown assignment 'f9'" in err


def test_unknown_student(course, capsys):
    (course / "submitted" / "alice" / "f1").mkdir(parents=True)
    code, _, err = run(capsys, "--course", course, "grade", "f1", "--student", "mallory")
    assert code == 2
    assert "'mallory'" in err and "alice" in err


def test_no_submissions(course, capsys):
    code, _, err = run(capsys, "--course", course, "grade", "f1")
    assert code == 2 and "no submissions of 'f1'" in err


def test_grading_before_release_says_to_release(course, capsys):
    (course / "submitted" / "alice" / "f1").mkdir(parents=True)
    code, _, err = run(capsys, "--course", course, "grade", "f1")
    assert code == 2 and "coursekit release f1" in err


def test_nothing_graded_yet(course, capsys):
    for command in ("feedback", "report"):
        code, _, err = run(capsys, "--course", course, command, "f1")
        assert code == 2 and "coursekit grade f1" in err


def test_workers_must_be_positive(course, capsys):
    with pytest.raises(SystemExit) as info:
        main(["--course", str(course), "grade", "f1", "--workers", "0"])
    assert info.value.code == 2
    assert "--workers must be a positive integer" in capsys.readouterr().err
