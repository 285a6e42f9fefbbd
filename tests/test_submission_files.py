"""Submissions are copied without following links, opening special files or reading
without bounds (coursekit.instructor.submission_files)."""

from __future__ import annotations

import json
import os
import threading

import nbformat

from coursekit.instructor import submission_files
from coursekit.instructor.submission_files import copy_submission, escape_undecodable


def test_links_special_files_and_limits(tmp_path, monkeypatch):
    secret = tmp_path / "course" / "solutions" / "a1" / "answers.ipynb"
    secret.parent.mkdir(parents=True)
    secret.write_text("the reference answers")
    other = tmp_path / "course" / "submitted" / "bob" / "a1"
    other.mkdir(parents=True)
    (other / "bob.ipynb").write_text("bob's work")
    mine = tmp_path / "course" / "submitted" / "eve" / "a1"
    mine.mkdir(parents=True)
    (mine / "work.ipynb").write_text("{}")
    (mine / "answers.ipynb").symlink_to(secret)
    (mine / "gradebook.db").symlink_to(tmp_path / "course" / "gradebook.db")
    (mine / "bob").symlink_to(other, target_is_directory=True)
    (mine / "loop").symlink_to(mine / "loop")
    os.mkfifo(mine / "records.json")
    deep = mine
    for i in range(12):
        deep = deep / f"d{i}"
    deep.mkdir(parents=True)
    monkeypatch.setattr(submission_files, "MAX_FILE_BYTES", 1000)
    (mine / "big.bin").write_bytes(b"x" * 2000)

    target = tmp_path / "scratch" / "eve"
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(notes=copy_submission(mine, target)))
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), "the copy blocked (a FIFO was opened?)"
    notes = "\n".join(result["notes"])
    copied = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert copied == ["work.ipynb"]
    assert not any(p.is_symlink() for p in target.rglob("*"))
    for name in ("answers.ipynb", "gradebook.db", "bob", "loop"):
        assert f"{name}: a symbolic link, left out" in notes
    assert "records.json: a named pipe, left out" in notes
    assert "big.bin: larger than" in notes
    assert "nested more than" in notes


def test_a_notebook_with_lone_surrogates_is_escaped_not_rejected(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("ok")])
    text = json.dumps(nb).replace('"ok"', '"bad \\ud800 char"')
    data = text.encode("utf-8") + b""
    fixed, changed = escape_undecodable(data)
    assert changed
    back = nbformat.reads(fixed.decode("utf-8"), as_version=4)
    assert back.cells[0].source == "bad \\ud800 char"
    raw = json.dumps(nb).replace('"ok"', '"caf\\u00e9"').encode().replace(b"caf\\u00e9", b"caf\xe9")
    fixed, changed = escape_undecodable(raw)
    assert changed and nbformat.reads(fixed.decode(), as_version=4).cells[0].source == "caf\\udce9"
    assert escape_undecodable(json.dumps(nb).encode()) == (json.dumps(nb).encode(), False)
    assert escape_undecodable(b"not json") == (b"not json", False)
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "a.ipynb").write_bytes(data)
    notes = copy_submission(sub, tmp_path / "out")
    assert notes == ["a.ipynb: characters that cannot be encoded were escaped"]
    nbformat.read(str(tmp_path / "out" / "a.ipynb"), as_version=4)


def test_the_fingerprint_never_follows_links_or_opens_special_files(tmp_path):
    import hashlib

    from coursekit.instructor.submission_files import digest_submission

    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "a.ipynb").write_text("{}")
    os.mkfifo(tmp_path / "pipe")
    (sub / "pipe.ipynb").symlink_to(tmp_path / "pipe")
    (sub / "loop.ipynb").symlink_to("loop.ipynb")
    os.mkfifo(sub / "fifo")
    box = {}

    def run():
        h = hashlib.sha256()
        digest_submission(sub, h)
        box["first"] = h.hexdigest()

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), "the fingerprint blocked on a FIFO"
    h = hashlib.sha256()
    digest_submission(sub, h)
    assert h.hexdigest() == box["first"]
    (sub / "a.ipynb").write_text('{"changed": 1}')
    changed = hashlib.sha256()
    digest_submission(sub, changed)
    assert changed.hexdigest() != box["first"]
