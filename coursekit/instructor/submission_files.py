"""Copying a student's submission into the grader's scratch space, safely.

A submission is whatever the student uploaded, so the copy trusts nothing in it:

* symbolic links are never followed (a link to ``../../../solutions`` or to the gradebook
  would otherwise bring those files into the student's own readable area); they are left
  out and named in the notes;
* only regular files are copied: a FIFO, a socket or a device is never opened (reading a
  FIFO blocks forever), and is named in the notes;
* every read is bounded: at most :data:`MAX_FILES` files, :data:`MAX_FILE_BYTES` per file,
  :data:`MAX_TOTAL_BYTES` in all, :data:`MAX_DEPTH` levels of folders;
* a notebook whose text cannot be encoded (lone surrogates such as ``"\\ud800"``, bytes
  that are not UTF-8) is rewritten with those characters escaped instead of being rejected.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

MAX_FILES = 500
MAX_FILE_BYTES = 50 * 1024**2
MAX_TOTAL_BYTES = 200 * 1024**2
MAX_DEPTH = 8


def copy_submission(source: str | os.PathLike, target: str | os.PathLike) -> list[str]:
    """Copy ``source`` into the new directory ``target``; the notes say what was left out
    or changed (empty when the copy is exact)."""
    source, target = Path(source), Path(target)
    notes: list[str] = []
    info = os.lstat(source)
    if not stat.S_ISDIR(info.st_mode):
        target.mkdir(parents=True, exist_ok=True)
        return [f"the submission is not a folder ({_kind(info.st_mode)}); nothing was copied"]
    target.mkdir(parents=True, exist_ok=True)
    counts = {"files": 0, "bytes": 0}
    _copy_dir(source, target, source, notes, counts, depth=0)
    return notes


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _entries(directory: Path, root: Path):
    """``(entry, path relative to root, mode or None)`` of a folder, by name, links not
    followed (``OSError`` if the folder cannot be listed)."""
    out = []
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        try:
            mode = entry.stat(follow_symlinks=False).st_mode
        except OSError:
            mode = None
        out.append((entry, Path(entry.path).relative_to(root).as_posix(), mode))
    return out


def _open_regular(path: str | os.PathLike):
    """A regular file opened for reading without following a link or blocking on a FIFO,
    or ``None``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    fh = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):  # swapped after it was listed
        fh.close()
        return None
    return fh


def _copy_dir(src: Path, dst: Path, root: Path, notes: list[str], counts: dict, depth: int):
    try:
        entries = _entries(src, root)
    except OSError as exc:
        notes.append(f"{src.relative_to(root).as_posix() or '.'}: unreadable ({exc.strerror})")
        return
    for entry, rel, mode in entries:
        if mode is None:
            notes.append(f"{rel}: unreadable, left out")
            continue
        if stat.S_ISDIR(mode):
            if depth + 1 >= MAX_DEPTH:
                notes.append(f"{rel}: folders nested more than {MAX_DEPTH} deep, left out")
                continue
            (dst / entry.name).mkdir()
            _copy_dir(Path(entry.path), dst / entry.name, root, notes, counts, depth + 1)
        elif not stat.S_ISREG(mode):
            notes.append(f"{rel}: {_kind(mode)}, left out")
        elif counts["files"] >= MAX_FILES:
            notes.append(f"{rel}: more than {MAX_FILES} files in the submission, left out")
        else:
            _copy_file(Path(entry.path), dst / entry.name, rel, notes, counts)


def _copy_file(src: Path, dst: Path, rel: str, notes: list[str], counts: dict) -> None:
    fh = _open_regular(src)
    if fh is None:
        notes.append(f"{rel}: could not be opened as a regular file, left out")
        return
    with fh:
        data = fh.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        notes.append(f"{rel}: larger than {MAX_FILE_BYTES // 1024**2} MiB, left out")
        return
    if counts["bytes"] + len(data) > MAX_TOTAL_BYTES:
        notes.append(f"{rel}: the submission exceeds {MAX_TOTAL_BYTES // 1024**2} MiB, left out")
        return
    counts["files"] += 1
    counts["bytes"] += len(data)
    if rel.endswith(".ipynb"):
        data, escaped = escape_undecodable(data)
        if escaped:
            notes.append(f"{rel}: characters that cannot be encoded were escaped")
    dst.write_bytes(data)


def _escape(value):
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list):
        return [_escape(v) for v in value]
    if isinstance(value, dict):
        return {_escape(k): _escape(v) for k, v in value.items()}
    return value


def escape_undecodable(data: bytes) -> tuple[bytes, bool]:
    """A notebook's bytes with lone surrogates and invalid UTF-8 escaped (``\\udc80``),
    and whether anything changed. Text that is not JSON is returned as it is (nbgrader
    then reports the notebook as unreadable)."""
    try:
        text = data.decode("utf-8")
        changed = False
    except UnicodeDecodeError:
        text = data.decode("utf-8", "surrogateescape")
        changed = True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        changed = True
    try:
        parsed = json.loads(text)
    except ValueError:
        return data, False
    try:
        json.dumps(parsed, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        changed = True
    if not changed:
        return data, False
    return json.dumps(_escape(parsed), indent=1, ensure_ascii=False).encode("utf-8"), True


def digest_submission(directory: str | os.PathLike, digest) -> None:
    """Feed a submission's regular files (names and contents) into ``digest``: links are
    hashed as their target text, special files by their kind, never opened; every read is
    bounded like :func:`copy_submission`'s."""
    root = Path(directory)
    budget = {"files": 0}

    def walk(path: Path, depth: int) -> None:
        try:
            entries = _entries(path, root)
        except OSError:
            return
        for entry, rel, mode in entries:
            if mode is None:
                continue
            digest.update(rel.encode() + b"\0")
            if stat.S_ISDIR(mode) and depth + 1 < MAX_DEPTH:
                walk(Path(entry.path), depth + 1)
            elif stat.S_ISLNK(mode):
                digest.update(b"link:" + os.readlink(entry.path).encode(errors="replace"))
            elif stat.S_ISREG(mode) and budget["files"] < MAX_FILES:
                budget["files"] += 1
                fh = _open_regular(entry.path)
                if fh is not None:
                    with fh:
                        digest.update(fh.read(MAX_FILE_BYTES + 1))
            else:
                digest.update(f"kind:{stat.S_IFMT(mode)}".encode())

    if root.is_dir() and not root.is_symlink():
        walk(root, 0)
