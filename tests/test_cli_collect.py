"""``coursekit collect``: the documented file-name rules, zips, and no silent overwrite."""

import shutil
import zipfile
from pathlib import Path

import pytest

from coursekit.cli.main import main
from coursekit.instructor.collect import RULES

FIXTURE = Path(__file__).parent / "fixtures" / "course"


@pytest.fixture
def course(tmp_path):
    root = tmp_path / "course"
    shutil.copytree(FIXTURE, root)
    return root


@pytest.fixture
def export_dir(tmp_path):
    """A folder as a learning management system exports it."""
    d = tmp_path / "export"
    d.mkdir()
    (d / "alice_12345_f1.ipynb").write_text('{"alice": 1}')
    (d / "alice_12345_notes.txt").write_text("alice's notes")
    (d / "bob.ipynb").write_text('{"bob": 1}')
    (d / "carol").mkdir()
    (d / "carol" / "f1.ipynb").write_text('{"carol": 1}')
    (d / "dave" / "f1").mkdir(parents=True)
    (d / "dave" / "f1" / "f1.ipynb").write_text('{"dave": 1}')
    (d / "dave" / "f1" / "timestamp.txt").write_text("2026-01-01 10:00:00")
    (d / "readme.txt").write_text("no student here")
    (d / "_anonymous.ipynb").write_text("{}")
    (d / "__MACOSX").mkdir()
    (d / "__MACOSX" / "._alice").write_text("resource fork")
    return d


def collect(capsys, course, path, *extra):
    code = main(["--course", str(course), "collect", "f1", str(path), *extra])
    return code, capsys.readouterr().out


def test_rules_are_documented_in_help(capsys):
    with pytest.raises(SystemExit):
        main(["collect", "--help"])
    out = capsys.readouterr().out
    assert "<student>_<anything>.ipynb" in out and "--force" in out
    assert "<student>_<anything>.ipynb" in RULES


def check_layout(course):
    sub = course / "submitted"
    # One source notebook: every notebook is stored under the released name.
    assert (sub / "alice" / "f1" / "f1.ipynb").read_text() == '{"alice": 1}'
    assert (sub / "alice" / "f1" / "12345_notes.txt").read_text() == "alice's notes"
    assert (sub / "bob" / "f1" / "f1.ipynb").read_text() == '{"bob": 1}'
    assert (sub / "carol" / "f1" / "f1.ipynb").read_text() == '{"carol": 1}'
    assert (sub / "dave" / "f1" / "f1.ipynb").read_text() == '{"dave": 1}'
    assert (sub / "dave" / "f1" / "timestamp.txt").exists()
    assert sorted(p.name for p in sub.iterdir()) == ["alice", "bob", "carol", "dave"]


def test_folder_is_collected_by_the_rules_and_unmatched_files_listed(course, export_dir, capsys):
    code, out = collect(capsys, course, export_dir)
    check_layout(course)
    assert code == 1  # unmatched files make the exit status non-zero
    assert "readme.txt" in out and "_anonymous.ipynb" in out
    assert "__MACOSX" not in out  # archive debris is ignored, not reported


def test_zip_is_collected_like_the_folder(course, export_dir, tmp_path, capsys):
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in export_dir.rglob("*"):
            if path.is_file():
                zf.write(path, path.relative_to(export_dir).as_posix())
    collect(capsys, course, archive)
    check_layout(course)


def test_never_overwrites_silently(course, export_dir, capsys):
    collect(capsys, course, export_dir)
    _, out = collect(capsys, course, export_dir)
    assert "unchanged" in out and "alice" in out
    (export_dir / "bob.ipynb").write_text('{"bob": 2}')
    code, out = collect(capsys, course, export_dir)
    assert code == 1 and "NOT collected" in out and "bob" in out
    target = course / "submitted" / "bob" / "f1" / "f1.ipynb"
    assert target.read_text() == '{"bob": 1}'
    collect(capsys, course, export_dir, "--force")
    assert target.read_text() == '{"bob": 2}'
    backups = list((course / ".coursekit" / "replaced").rglob("f1.ipynb"))
    assert [b.read_text() for b in backups] == ['{"bob": 1}']


def test_path_that_is_neither_folder_nor_zip(course, tmp_path, capsys):
    bogus = tmp_path / "class.tar"
    bogus.write_text("not a zip")
    assert main(["--course", str(course), "collect", "f1", str(bogus)]) == 2
    assert "neither a folder nor a zip" in capsys.readouterr().err
    assert main(["--course", str(course), "collect", "f1", str(tmp_path / "missing")]) == 2
