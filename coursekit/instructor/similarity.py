"""``coursekit similarity``: leads for the instructor's review of copied code.

What is compared
    Only what a student wrote: the code cells of ``submitted/<student>/<A>/*.ipynb``. An
    answer cell is matched to the release by its nbgrader ``grade_id`` and loses every line
    the release already had there (the signature, the docstring, ``# YOUR CODE HERE``,
    ``raise NotImplementedError()``, scaffolding such as ``return out, cache``); a code cell
    the student added loses the lines found anywhere in the released notebooks. Test cells
    are left out (nbgrader restores them), and so are docstrings and written answers.

How code is normalized
    Python's :mod:`tokenize` splits the code into tokens; comments, whitespace and line
    breaks inside brackets go, every string literal becomes one token, and every name the
    student's code binds (variables, parameters, loop targets, own functions) becomes one
    token ``V``. Attribute names, modules and builtins stay (``np.sum`` is not
    ``np.max``). Answer cells are taken in the release's order; within a cell, and among
    added cells, top-level definitions are sorted by their normalized text, so the order of
    functions does not matter.

Fingerprints
    copydetect's winnowing (:class:`copydetect.CodeFingerprint`, Schleimer, Wilkerson and
    Aiken, SIGMOD 2003) over the normalized tokens, one character per token, so a k-gram is
    ``k`` tokens. Fingerprints of the release, and fingerprints that a large part of the
    class shares (the idioms everybody writes: more than ``common`` of the students, and more
    than five), are boilerplate: they count for nobody.

Scores
    For a pair of students, the fraction of each one's fingerprinted tokens that lie in a
    k-gram the other's code also has (what :func:`copydetect.compare_files` computes for one
    pair; :func:`overlap_matrix` computes it for the whole class at once, and the page's
    highlighted regions come from ``compare_files`` itself); the pair's score is the mean
    of the two. Against coursekit's own implementation (the grading tasks' ``reference``
    and ``library_functions``, read with :func:`inspect.getsource`) and against an archive
    of earlier terms, the score is the student's fraction alone. A pair at or above the
    threshold is *flagged*: a lead for the instructor to read the two codes side by side,
    not a verdict.

Configuration
    In the course's ``nbgrader_config.py`` (all optional)::

        c.CoursekitSimilarity.threshold = 0.5  # flag pairs with score >= threshold
        c.CoursekitSimilarity.noise = 12  # k: tokens per fingerprinted k-gram
        c.CoursekitSimilarity.window = 1  # winnowing window, in k-grams (1: all k-grams)
        # (window 1 gives the same scores in every run: Python salts its string hashes per
        # process, and a wider window would pick other k-grams each time)
        c.CoursekitSimilarity.common = 0.2  # fingerprints in more of the class are ignored
        c.CoursekitSimilarity.archive = "archive"  # earlier terms (relative to the course)
"""

from __future__ import annotations

import ast
import functools
import html
import inspect
import io
import json
import keyword
import multiprocessing
import os
import re
import tokenize
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from coursekit.instructor.course import Course, CourseError

COURSEKIT = "coursekit"
ARCHIVE_PREFIX = "archive:"
DISCLAIMER = (
    "A similarity score is a lead for review, not a verdict. It says how much of two "
    "students' normalized code (names, comments, whitespace, string contents and the order "
    "of functions ignored) is the same, after removing the code the release gave them and "
    "the idioms much of the class wrote alike. Short exercises have few ways to be written, "
    "so independent students can score high; read the highlighted code side by side, and "
    "talk to the students, before drawing any conclusion."
)

#: Settings and their defaults; ``c.CoursekitSimilarity.<name>`` in nbgrader_config.py.
DEFAULTS = {"threshold": 0.5, "noise": 12, "window": 1, "common": 0.2, "archive": None}


@dataclass(frozen=True)
class Settings:
    """How similarity is measured and what is flagged (see the module docstring)."""

    threshold: float = DEFAULTS["threshold"]
    noise: int = DEFAULTS["noise"]
    window: int = DEFAULTS["window"]
    common: float = DEFAULTS["common"]
    archive: str | None = DEFAULTS["archive"]

    def __post_init__(self):
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold!r}")
        if not 0.0 < self.common <= 1.0:
            raise ValueError(f"common must be in (0, 1], got {self.common!r}")
        for name in ("noise", "window"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")


def course_settings(course: Course, **overrides) -> Settings:
    """The settings of ``c.CoursekitSimilarity`` in the course configuration, then ``overrides``
    (those that are not None)."""
    section = course.config.get("CoursekitSimilarity", {})
    unknown = sorted(set(section) - set(DEFAULTS))
    if unknown:
        raise CourseError(
            f"unknown setting c.CoursekitSimilarity.{unknown[0]} in {course.config_file}; "
            f"known: {', '.join(DEFAULTS)}"
        )
    values = {name: section.get(name, default) for name, default in DEFAULTS.items()}
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**values)
    except (TypeError, ValueError) as exc:
        raise CourseError(f"similarity settings: {exc} (c.CoursekitSimilarity)") from exc


# -- normalization ------------------------------------------------------------------------
_VOCAB: dict[str, str] = {}
_FIRST_CHAR = 0x4E00  # one character per distinct token, below the surrogates
_FALLBACK_TOKEN = re.compile(r"[A-Za-z_]\w*|\d[\w.]*|\"[^\"]*\"?|'[^']*'?|#.*|\S")
_SKIPPED = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENCODING,
    tokenize.ENDMARKER,
}


def _char(token: str) -> str:
    char = _VOCAB.get(token)
    if char is None:
        char = _VOCAB[token] = chr(_FIRST_CHAR + len(_VOCAB) % (0xD800 - _FIRST_CHAR))
    return char


@functools.lru_cache(maxsize=8192)
def _parse(source: str) -> ast.Module | None:
    """The syntax tree (shared: callers must not change it), None for broken code."""
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):
        return None


@functools.lru_cache(maxsize=8192)
def bound_names(source: str) -> frozenset[str]:
    """Names a piece of code binds: assignment and loop targets, parameters, own functions
    and classes, ``except ... as`` names. Imports are not included (``np`` stays ``np``)."""
    tree = _parse(source)
    if tree is None:
        return frozenset(re.findall(r"^\s*([A-Za-z_]\w*)\s*=[^=]", source, flags=re.M))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return frozenset(names)


def _raw_tokens(source: str) -> list[tuple[int, str, int, int, int]]:
    """``(type, text, row, col_start, col_end)`` with 1-based rows; a regex split when
    :mod:`tokenize` gives up (broken code is still code to compare)."""
    out = []
    try:
        fstring_depth = 0
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            kind = tok.type
            name = tokenize.tok_name.get(kind, "")
            if name == "FSTRING_START":
                if fstring_depth == 0:
                    out.append((tokenize.STRING, "S", tok.start[0], tok.start[1], tok.end[1]))
                fstring_depth += 1
                continue
            if name == "FSTRING_END":
                fstring_depth -= 1
                continue
            if fstring_depth or kind in _SKIPPED:
                continue
            end_col = tok.end[1] if tok.end[0] == tok.start[0] else tok.start[1] + len(tok.line)
            out.append((kind, tok.string, tok.start[0], tok.start[1], end_col))
        return out
    except (tokenize.TokenError, IndentationError, SyntaxError):
        out = []
    for row, line in enumerate(source.split("\n"), start=1):
        for m in _FALLBACK_TOKEN.finditer(line):
            text = m.group()
            if text.startswith("#"):
                break
            if text[0].isalpha() or text[0] == "_":
                kind = tokenize.NAME
            elif text[0].isdigit():
                kind = tokenize.NUMBER
            elif text[0] in "'\"":
                kind = tokenize.STRING
            else:
                kind = tokenize.OP
            out.append((kind, text, row, m.start(), m.end()))
        out.append((tokenize.NEWLINE, "\n", row, len(line), len(line)))
    return out


def _normalize(kind: int, text: str, previous: str, bound: set[str]) -> str | None:
    if kind == tokenize.NAME:
        if previous == "." or keyword.iskeyword(text) or text not in bound:
            return text
        return "V"
    if kind == tokenize.STRING:
        return "S"
    if kind == tokenize.NUMBER:
        try:
            return repr(ast.literal_eval(text))
        except (ValueError, SyntaxError):
            return text
    if kind == tokenize.NEWLINE or text == ";":
        return "\n"
    return text


def _docstring_rows(tree: ast.AST) -> set[int]:
    rows = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        body = node.body
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            rows.update(range(body[0].lineno, body[0].end_lineno + 1))
        for child in body:
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                stack.append(child)
    return rows


@dataclass
class Unit:
    """One top-level definition (or a run of other statements) of a cell, starter removed."""

    text: str  # the lines shown to the instructor
    tokens: str  # normalized, one character per token
    spans: list[tuple[int, int]]  # for each token: its (start, end) offsets in ``text``
    key: tuple[str, ...] = ()  # the normalized tokens as text: the unit's place in its cell


def cell_units(source: str, starter: set[str], bound: set[str]) -> list[Unit]:
    """The units of one code cell, without docstrings and without the ``starter`` lines
    (stripped lines the release already had); units with no token left are dropped."""
    lines = source.split("\n")
    tree = _parse(source)
    hidden = _docstring_rows(tree) if tree is not None else set()
    starter_rows = {
        i for i, line in enumerate(lines, start=1) if line.strip() and line.strip() in starter
    }
    # Groups of rows: each def/class alone, runs of other statements together.
    groups: list[tuple[int, int]] = []
    if tree is not None and tree.body:
        run_start = None
        for node in tree.body:
            first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if run_start is not None:
                    groups.append((run_start, first - 1))
                    run_start = None
                groups.append((first, node.end_lineno))
            elif run_start is None:
                run_start = first
        if run_start is not None:
            groups.append((run_start, len(lines)))
    else:
        groups.append((1, len(lines)))
    tokens_by_row: dict[int, list] = {}
    raw = _raw_tokens(source)
    previous, signature, brackets = "", False, []
    for i, (kind, text, row, c0, c1) in enumerate(raw):
        following = raw[i + 1][1] if i + 1 < len(raw) else ""
        if kind == tokenize.NAME and text in ("def", "lambda"):
            signature = True
        elif (text == ":" and not brackets) or kind == tokenize.NEWLINE:
            signature = False
        if kind == tokenize.OP and text in "([{":
            brackets.append(text)
        elif kind == tokenize.OP and text in ")]}" and brackets:
            brackets.pop()
        if (
            kind == tokenize.NAME
            and following == "="
            and previous in ("(", ",")
            and brackets[-1:] == ["("]
            and not signature
        ):
            norm = text  # a keyword argument's name belongs to the function called
        else:
            norm = _normalize(kind, text, previous, bound)
        previous = text
        if norm is not None:
            tokens_by_row.setdefault(row, []).append((norm, c0, c1))
    units = []
    for first, last in groups:
        shown: list[str] = []
        chars: list[str] = []
        key: list[str] = []
        spans: list[tuple[int, int]] = []
        offset = 0
        for row in range(first, min(last, len(lines)) + 1):
            if row in hidden:
                continue
            line = lines[row - 1]
            header = line.lstrip().startswith(("def ", "class ", "async def ", "@"))
            if (row in starter_rows and not header) or (not shown and not line.strip()):
                continue
            if row not in starter_rows:
                for norm, c0, c1 in tokens_by_row.get(row, []):
                    chars.append(_char(norm))
                    key.append(norm)
                    spans.append((offset + min(c0, len(line)), offset + min(c1, len(line))))
            shown.append(line)
            offset += len(line) + 1
        while chars and chars[0] == _char("\n"):
            chars.pop(0)
            spans.pop(0)
            key.pop(0)
        if any(c != _char("\n") for c in chars):
            text = "\n".join(shown).rstrip("\n")
            units.append(Unit(text, "".join(chars), spans, tuple(key)))
    return units


# -- documents ----------------------------------------------------------------------------
@dataclass
class Document:
    """Everything of one author that is compared: the kept code and its normalized tokens."""

    owner: str
    text: str = ""
    tokens: str = ""
    spans: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_sections(cls, owner: str, sections: list[tuple[str, list[Unit]]], notes=()):
        text_parts, tokens, spans = [], [], []
        offset = 0
        for title, units in sections:
            if not units:
                continue
            header = f"# -- {title}\n"
            text_parts.append(header)
            offset += len(header)
            for unit in sorted(units, key=lambda u: u.key):
                tokens.append(unit.tokens + _char("\n"))
                spans.extend((offset + a, offset + b) for a, b in unit.spans)
                spans.append((offset + len(unit.text), offset + len(unit.text)))
                text_parts.append(unit.text + "\n\n")
                offset += len(unit.text) + 2
        array = np.array(spans, dtype=np.int64).reshape(-1, 2)
        return cls(
            owner, "".join(text_parts).rstrip("\n") + "\n", "".join(tokens), array, list(notes)
        )


@dataclass
class Release:
    """The released notebooks of an assignment, as what students were given."""

    answer_cells: dict[str, set[str]]  # grade_id -> stripped lines of the released cell
    order: dict[str, int]  # grade_id -> position in the release
    test_cells: set[str]  # grade_ids of cells nbgrader restores (tests, locked cells)
    all_lines: set[str]  # stripped lines of every released code cell
    code: str  # all released code, for the boilerplate fingerprints

    @classmethod
    def read(cls, directory: Path) -> Release:
        answer_cells, order, tests, all_lines, code = {}, {}, set(), set(), []
        for path in sorted(directory.glob("*.ipynb")):
            for cell in _code_cells(path):
                source = cell["source"]
                lines = {line.strip() for line in source.split("\n") if line.strip()}
                all_lines |= lines
                code.append(source)
                meta = cell.get("metadata", {}).get("nbgrader", {})
                gid = meta.get("grade_id") if isinstance(meta, dict) else None
                if not isinstance(gid, str):
                    continue
                if meta.get("solution"):
                    answer_cells[gid] = lines
                    order[gid] = len(order)
                else:
                    tests.add(gid)
        return cls(answer_cells, order, tests, all_lines, "\n\n".join(code))


def _code_cells(path: Path) -> list[dict]:
    """The code cells of a notebook file, each with its ``source`` as one string (read as
    plain JSON: nbformat's schema validation costs more than the whole comparison)."""
    nb = json.loads(Path(path).read_text("utf-8"))
    cells = []
    for cell in nb.get("cells", []) if isinstance(nb, dict) else []:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(s for s in source if isinstance(s, str))
        if isinstance(source, str):
            cells.append({**cell, "source": source})
    return cells


def notebook_document(owner: str, paths: list[Path], release: Release) -> Document:
    """The document of one submission (one or more notebooks)."""
    cells, notes = [], []
    for path in sorted(paths):
        try:
            code_cells = _code_cells(path)
        except (OSError, ValueError) as exc:  # a broken file is a note, not a crash
            notes.append(f"{path.name} not read: {type(exc).__name__}")
            continue
        for cell in code_cells:
            meta = cell.get("metadata", {})
            meta = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
            gid = meta.get("grade_id") if isinstance(meta, dict) else None
            gid = gid if isinstance(gid, str) else None
            if gid in release.test_cells:
                continue
            gid = gid if gid in release.answer_cells else None
            starter = release.answer_cells[gid] if gid is not None else release.all_lines
            if all(
                not line.strip() or line.strip() in starter for line in cell["source"].split("\n")
            ):
                continue  # nothing of the student's own
            cells.append((gid, cell["source"]))
    bound = set()
    for _, source in cells:
        bound |= bound_names(source)
    answers: dict[str, list[Unit]] = {}
    added: list[Unit] = []
    for gid, source in cells:
        if gid is not None:
            answers.setdefault(gid, []).extend(cell_units(source, release.answer_cells[gid], bound))
        else:
            added.extend(cell_units(source, release.all_lines, bound))
    sections = [(gid, answers[gid]) for gid in sorted(answers, key=release.order.get)]
    sections.append(("cells the student added", added))
    return Document.from_sections(owner, sections, notes)


def resolve(dotted: str):
    """The object a dotted name (``"coursekit.ops.softmax"``) names, or None."""
    import importlib

    module, _, name = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None


def coursekit_document(assignment: str) -> Document:
    """coursekit's own implementation of the assignment's graded functions: the source of
    each task's ``reference`` and ``library_functions`` (tasks named ``<assignment>.*``)."""
    from coursekit.grading.core import get_task, task_names

    objects, seen = [], set()
    for name in task_names():
        if not name.startswith(assignment + "."):
            continue
        task = get_task(name)
        refs = task.reference if isinstance(task.reference, tuple) else (task.reference,)
        for obj in (*refs, *(resolve(d) for d in task.library_functions)):
            if obj is not None and id(obj) not in seen:
                seen.add(id(obj))
                objects.append(obj)
    sections = []
    for obj in objects:
        try:
            source = inspect.cleandoc("\n" + inspect.getsource(obj))
        except (OSError, TypeError):
            continue
        title = f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', '?')}"
        sections.append((title, cell_units(source, set(), bound_names(source))))
    return Document.from_sections(COURSEKIT, sections)


def archive_documents(directory: Path, assignment: str, release: Release) -> list[Document]:
    """Earlier terms' submissions: every ``<...>/<student>/<assignment>/*.ipynb`` below
    ``directory`` (for example ``archive/2025-fall/submitted/alice/a1/``), named
    ``archive:<path of the student's folder>``."""
    documents = []
    folders = sorted({p.parent for p in directory.rglob(f"{assignment}/*.ipynb")})
    for folder in folders:
        if folder.name != assignment:
            continue
        owner = ARCHIVE_PREFIX + folder.parent.relative_to(directory).as_posix()
        documents.append(notebook_document(owner, sorted(folder.glob("*.ipynb")), release))
    return documents


# -- comparison ---------------------------------------------------------------------------
@dataclass
class Pair:
    """``a`` and ``b`` compared: ``sim_a`` is the fraction of ``a``'s fingerprinted code
    found in ``b``'s, ``score`` what is ranked and flagged."""

    a: str
    b: str
    score: float
    flagged: bool
    sim_a: float
    sim_b: float

    def as_json(self) -> dict:
        return {
            "a": self.a,
            "b": self.b,
            "score": round(self.score, 4),
            "flagged": self.flagged,
            "a_in_b": round(self.sim_a, 4),
            "b_in_a": round(self.sim_b, 4),
        }


def _fingerprint(document: Document, settings: Settings, boilerplate):
    from copydetect import CodeFingerprint

    return CodeFingerprint(
        document.owner,
        settings.noise,
        settings.window,
        boilerplate=boilerplate,
        filter=False,
        fp=io.StringIO(document.tokens),
    )


def overlap_matrix(fingerprints: list, k: int) -> np.ndarray:
    """``sims[a, b]``: the fraction of document ``a``'s fingerprinted tokens that lie in a
    k-gram ``b`` also has, for every pair at once.

    The same quantity as the similarities of :func:`copydetect.compare_files` (tokens of the
    union of the shared k-grams over the tokens any fingerprint covers), computed for a
    whole class with one membership matrix instead of one call per pair.
    """
    columns: dict[int, int] = {}
    entries = []
    for fp in fingerprints:
        pos, col = [], []
        for h, places in fp.hash_idx.items():
            c = columns.setdefault(int(h), len(columns))
            pos += [int(p) for p in places]
            col += [c] * len(places)
        entries.append((np.array(pos, dtype=np.int64), np.array(col, dtype=np.int64)))
    n = len(fingerprints)
    member = np.zeros((n, max(len(columns), 1)), dtype=np.int8)
    for i, (_, col) in enumerate(entries):
        member[i, col] = 1
    sims = np.zeros((n, n))
    for a, ((pos, col), fp) in enumerate(zip(entries, fingerprints)):
        if len(pos) == 0 or not fp.token_coverage:
            continue
        order = np.argsort(pos, kind="stable")
        pos, col = pos[order], col[order]
        length = int(pos.max()) + k + 1
        present = member[:, col].astype(np.int32)  # (n, positions): k-gram found in b
        edges = np.zeros((n, length + 1), dtype=np.int32)
        edges[:, pos] += present  # positions are distinct: one k-gram starts at each
        edges[:, pos + k] -= present
        covered = (np.cumsum(edges, axis=1) > 0).sum(axis=1)
        sims[a] = covered / fp.token_coverage
    return np.minimum(sims, 1.0)


def matching_slices(a: Document, b: Document, settings: Settings, boilerplate=()):
    """The matching regions as ``(2, n)`` arrays of (start, end) offsets in ``a.text`` and
    ``b.text``."""
    from copydetect import compare_files

    fa = _fingerprint(a, settings, np.asarray(boilerplate, dtype=np.int64))
    fb = _fingerprint(b, settings, np.asarray(boilerplate, dtype=np.int64))
    _, _, (sa, sb) = compare_files(fa, fb)
    return _to_text(sa, a), _to_text(sb, b)


def _to_text(slices, document: Document) -> np.ndarray:
    """Token slices as (start, end) offsets in ``document.text``: the matched tokens, joined
    where only whitespace lies between them (a comment or a given line breaks a region)."""
    slices = np.asarray(slices, dtype=np.int64).reshape(2, -1)
    n = len(document.spans)
    matched = np.zeros(n, dtype=bool)
    for s, e in slices.T.tolist():
        matched[max(s, 0) : min(e, n)] = True
    merged: list[list[int]] = []
    for i in np.flatnonzero(matched).tolist():
        s, e = (int(v) for v in document.spans[i])
        if s == e:
            continue  # the end of a unit
        if merged and not document.text[merged[-1][1] : s].strip():
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return np.array(merged, dtype=np.int64).T.reshape(2, -1)


@dataclass
class Result:
    """Everything :func:`compare` found, ranked."""

    assignment: str
    settings: Settings
    documents: dict[str, Document]
    pairs: list[Pair]  # ranked, highest score first
    boilerplate: np.ndarray
    notes: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> list[Pair]:
        return [p for p in self.pairs if p.flagged]

    def to_json(self) -> list[dict]:
        return [p.as_json() for p in self.pairs]


def compare(
    students: list[Document],
    settings: Settings,
    *,
    reference: Document | None = None,
    archive: list[Document] = (),
    release_code: str = "",
    assignment: str = "",
) -> Result:
    """Every pair of ``students``, each student against ``reference`` (coursekit's own code)
    and against every ``archive`` document; ranked by score."""
    documents = [*students, *([reference] if reference is not None else []), *archive]
    owners = [d.owner for d in documents]
    if len(set(owners)) != len(owners):
        raise ValueError("document owners must be unique")
    # Boilerplate: what the release gave, and what a large part of the class wrote alike.
    given = []
    if release_code:
        release_doc = Document.from_sections(
            "release", [("release", cell_units(release_code, set(), bound_names(release_code)))]
        )
        given = list(_fingerprint(release_doc, settings, None).hashes)
    plain = [_fingerprint(d, settings, None) for d in students]
    counts = Counter(h for fp in plain for h in fp.hashes)
    # never fewer than 5 students: in a small class a group who copied is not an idiom
    limit = max(5, settings.common * len(students))
    common = [h for h, n in counts.items() if n > limit]
    boilerplate = np.unique(np.array(given + common, dtype=np.int64))
    fingerprints = [_fingerprint(d, settings, boilerplate) for d in documents]
    sims = overlap_matrix(fingerprints, settings.noise)
    n = len(students)
    pairs = []
    for i in range(n):
        for j in range(i + 1, len(documents)):
            sa, sb = float(sims[i, j]), float(sims[j, i])
            score = (sa + sb) / 2 if j < n else sa
            pairs.append(
                Pair(owners[i], owners[j], score, bool(score >= settings.threshold), sa, sb)
            )
    pairs.sort(key=lambda p: (-p.score, p.a, p.b))
    notes = [f"{d.owner}: {note}" for d in documents for note in d.notes]
    empty = [d.owner for d, fp in zip(students, fingerprints) if not fp.hashes]
    if empty:
        notes.append(
            f"{len(empty)} submission(s) with no code of their own beyond what the class "
            f"shares, not comparable: {', '.join(empty[:20])}" + (" ..." if len(empty) > 20 else "")
        )
    return Result(assignment, settings, {d.owner: d for d in documents}, pairs, boilerplate, notes)


# -- the course ---------------------------------------------------------------------------
def similarity(
    course: Course,
    assignment: str,
    *,
    threshold: float | None = None,
    archive: str | os.PathLike | None = None,
    workers: int | None = None,
) -> Result:
    """Compare the submissions of ``assignment`` (see the module docstring)."""
    course.require_assignments([assignment])
    settings = course_settings(course, threshold=threshold, archive=archive)
    release_dir = course.directory("release") / assignment
    if not list(release_dir.glob("*.ipynb")):
        raise CourseError(
            f"no released notebooks in {release_dir}; run `coursekit release {assignment}` first"
        )
    release = Release.read(release_dir)
    students = course.students(assignment)
    if not students:
        raise CourseError(
            f"no submissions of {assignment!r} in {course.directory('submitted')} "
            f"(see `coursekit collect`)"
        )
    jobs = [
        (s, sorted(course.submission_directory(assignment, s).glob("*.ipynb"))) for s in students
    ]
    documents = read_documents(jobs, release, workers)
    archived = []
    if settings.archive:
        folder = Path(settings.archive).expanduser()
        folder = folder if folder.is_absolute() else course.root / folder
        if not folder.is_dir():
            raise CourseError(f"archive directory {folder} does not exist")
        archived = archive_documents(folder, assignment, release)
    return compare(
        documents,
        settings,
        reference=coursekit_document(assignment),
        archive=archived,
        release_code=release.code,
        assignment=assignment,
    )


def _read_chunk(jobs, release):
    documents = [notebook_document(owner, paths, release) for owner, paths in jobs]
    return documents, dict(_VOCAB)


def read_documents(jobs, release: Release, workers: int | None = None) -> list[Document]:
    """:func:`notebook_document` for every ``(owner, notebook paths)``, on ``workers``
    processes (default: the usable cores) when the class is large enough to gain."""
    if workers is None:
        cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        workers = len(cores) if cores else (os.cpu_count() or 1)
    workers = max(1, min(workers, len(jobs) // 20))
    if workers == 1 or "fork" not in multiprocessing.get_all_start_methods():
        return _read_chunk(jobs, release)[0]
    size = -(-len(jobs) // workers)
    chunks = [jobs[i : i + size] for i in range(0, len(jobs), size)]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = [pool.submit(_read_chunk, chunk, release) for chunk in chunks]
        documents = []
        for future in futures:
            chunk_docs, vocab = future.result()
            # each process numbered the tokens it met itself: renumber them as this one does
            table = {ord(char): _char(token) for token, char in vocab.items()}
            for document in chunk_docs:
                document.tokens = document.tokens.translate(table)
            documents += chunk_docs
    return documents


# -- HTML ---------------------------------------------------------------------------------
STYLE = """
.coursekit-similarity { font-family: system-ui, sans-serif; }
.coursekit-similarity .lead { border: 2px solid #b45309; background: #fffbeb; padding: .6em 1em;
  margin: .8em 0; }
.coursekit-similarity table { border-collapse: collapse; margin: .6em 0; }
.coursekit-similarity th, .coursekit-similarity td { border: 1px solid #ccc; padding: .2em .6em;
  text-align: left; }
.coursekit-similarity tr.flagged td { background: #fee2e2; }
.coursekit-similarity .pair { display: grid; grid-template-columns: 1fr 1fr; gap: 1em; }
.coursekit-similarity pre { background: #f8f8f8; border: 1px solid #ddd; padding: .5em;
  overflow-x: auto; font-size: 85%; white-space: pre; }
.coursekit-similarity mark { background: #fde68a; }
"""


def _highlight(text: str, slices: np.ndarray) -> str:
    out, last = [], 0
    for start, end in slices.T.tolist():
        out.append(html.escape(text[last:start]))
        out.append(f"<mark>{html.escape(text[start:end])}</mark>")
        last = end
    out.append(html.escape(text[last:]))
    return "".join(out)


def render_fragment(result: Result, *, table_rows: int = 30, details: int = 50) -> str:
    """The similarity section as an HTML fragment (a ``<section>``), for a larger report.
    Include :data:`STYLE` in the page's ``<style>``."""
    s = result.settings
    flagged = result.flagged
    n_students = sum(
        1
        for owner in result.documents
        if owner != COURSEKIT and not owner.startswith(ARCHIVE_PREFIX)
    )
    parts = [
        '<section class="coursekit-similarity">',
        f"<h2>Similarity of submissions{': ' + html.escape(result.assignment) if result.assignment else ''}</h2>",
        f'<p class="lead"><strong>{html.escape(DISCLAIMER)}</strong></p>',
        f"<p>{n_students} students, {len(result.pairs)} comparisons (every pair of students, "
        f"each student against coursekit's own implementation"
        f"{', and against the archive' if any(o.startswith(ARCHIVE_PREFIX) for o in result.documents) else ''}"
        f"); <strong>{len(flagged)} flagged</strong> at score &ge; {s.threshold:g}. "
        f"Fingerprints: {s.noise}-token k-grams, winnowing window {s.window}; code shared by "
        f"more than {s.common:.0%} of the class is ignored.</p>",
    ]
    parts += [f"<p>Note: {html.escape(n)}</p>" for n in result.notes]
    shown = (
        flagged + [p for p in result.pairs if not p.flagged][: max(0, table_rows - len(flagged))]
    )
    shown = shown[: max(table_rows, len(flagged))]
    parts.append(
        "<table><thead><tr><th>#</th><th>a</th><th>b</th><th>score</th>"
        "<th>of a found in b</th><th>of b found in a</th><th>flagged</th></tr></thead><tbody>"
    )
    for rank, p in enumerate(shown, start=1):
        link = f'<a href="#pair-{rank}">{rank}</a>' if p.flagged and rank <= details else rank
        parts.append(
            f'<tr class="{"flagged" if p.flagged else ""}"><td>{link}</td>'
            f"<td>{html.escape(p.a)}</td><td>{html.escape(p.b)}</td><td>{p.score:.2f}</td>"
            f"<td>{p.sim_a:.0%}</td><td>{p.sim_b:.0%}</td><td>{'yes' if p.flagged else ''}</td></tr>"
        )
    parts.append("</tbody></table>")
    if len(result.pairs) > len(shown):
        parts.append(f"<p>{len(result.pairs) - len(shown)} lower-ranked pairs not shown.</p>")
    if flagged:
        parts.append(
            "<p>Below, each flagged pair side by side: <mark>highlighted</mark> is code found in "
            "both (names, comments, layout and strings aside); code the release gave and the "
            "idioms much of the class wrote alike are never highlighted and do not count.</p>"
        )
    for rank, p in enumerate(flagged[:details], start=1):
        da, db = result.documents[p.a], result.documents[p.b]
        sa, sb = matching_slices(da, db, result.settings, result.boilerplate)
        parts.append(
            f'<h3 id="pair-{rank}">{rank}. {html.escape(p.a)} and {html.escape(p.b)}: '
            f"score {p.score:.2f}</h3>"
            '<div class="pair">'
            f"<div><h4>{html.escape(p.a)} ({p.sim_a:.0%} found in the other)</h4>"
            f"<pre>{_highlight(da.text, sa)}</pre></div>"
            f"<div><h4>{html.escape(p.b)} ({p.sim_b:.0%} found in the other)</h4>"
            f"<pre>{_highlight(db.text, sb)}</pre></div></div>"
        )
    if len(flagged) > details:
        parts.append(f"<p>{len(flagged) - details} more flagged pairs: see the JSON output.</p>")
    parts.append("</section>")
    return "\n".join(parts)


def report_section(course: Course, assignment: str, **kwargs) -> str:
    """The similarity section of a larger report (``coursekit report``'s page, which must
    include :data:`STYLE`): :func:`render_fragment` of a fresh comparison, or a short section
    saying why there is nothing to compare (no release, no submissions)."""
    try:
        result = similarity(course, assignment)
    except CourseError as exc:
        return (
            '<section class="coursekit-similarity"><h2>Similarity of submissions</h2>'
            f"<p>Not compared: {html.escape(str(exc))}</p></section>"
        )
    return render_fragment(result, **kwargs)


def render_page(result: Result, **kwargs) -> str:
    """A standalone HTML page holding :func:`render_fragment`."""
    title = f"Similarity: {result.assignment}" if result.assignment else "Similarity"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>\n"
        f"{render_fragment(result, **kwargs)}\n</body></html>\n"
    )


def write_outputs(course: Course, result: Result, json_path=None) -> Path:
    """``reports/<assignment>/similarity.html`` in the course, and the ranked pairs as JSON
    at ``json_path`` if given. Returns the page's path."""
    directory = course.root / "reports" / result.assignment
    directory.mkdir(parents=True, exist_ok=True)
    page = directory / "similarity.html"
    page.write_text(render_page(result), "utf-8")
    if json_path is not None:
        path = Path(json_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result.to_json(), indent=1) + "\n", "utf-8")
    return page
