"""``coursekit collect``: import a class's submissions from a folder or a zip.

RULES is the documentation shown by ``coursekit collect --help``.

The learning-management systems name the files of a "download all submissions" zip as
follows (the patterns recognised here; sources in brackets):

* Canvas: ``<name>_[LATE_]<user id>_<attachment id>_<original file name>``, with ``<name>``
  the sortable name lower-cased without spaces or punctuation (``hoppergrace``); a file
  uploaded again under the same name gets ``-1``, ``-2``... before its extension.
  [README of mikewesthad/canvas-unzipper (``smithbob_340934_208490284_BobsWork.zip``);
  README and ``sub_name.awk`` of TimHanneman/Canvas_submission_sort (the extra late field,
  the resubmission number before the extension).]
* Moodle: ``<Full Name>_<participant id>_assignsubmission_file_<original file name>``, or
  with "download submissions in folders", a folder ``<Full Name>_<participant id>_
  assignsubmission_file_/`` holding the files as uploaded; the participant id is per
  assignment. [Moodle's ``mod/assign/lang/en/assign.php``, ``downloadasfolders_help``:
  "Each submission is then put in a separate folder ... and files are not renamed".] The
  zip has no times; Moodle's grading worksheet (CSV: ``Identifier`` = ``Participant <id>``,
  ``Email address``, ``Status`` saying "... late", ``Last modified (submission)``) placed
  beside the files adds them.
* Blackboard Learn ("Assignment File Download"):
  ``<assignment>_<user name>_attempt_<YYYY-MM-DD-HH-MM-SS>_<original file name>`` plus a
  ``<assignment>_<user name>_attempt_<date>.txt`` receipt with ``Name: Full Name (user)``
  and ``Date Submitted:`` lines. [The example in issue 16; BBGradebookOrganiser's
  instructions (one gradebook zip, per-submission text files with the student's comments);
  jeroendoggen/blackboard-analysis-tools (names and dates read from those .txt files).]
* Gradescope ("Export Submissions"): ``assignment_<id>_export/submission_<id>/<files>``
  with ``submission_metadata.yml`` mapping each ``submission_<id>`` to ``:submitters:``
  (``:name:``, ``:sid:``, ``:email:``) and ``:created_at:``. [Gradescope autograder docs,
  "Submission Metadata" (the same fields as JSON for one submission).]
"""

from __future__ import annotations

import filecmp
import json
import re
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from coursekit.instructor.course import Course, CourseError
from coursekit.instructor.deadlines import (
    METADATA_NAME,
    CoursekitDeadlines,
    Deadlines,
    parse_time,
    zone_named,
)
from coursekit.instructor.roster import STUDENT_ID, Roster, course_roster, fold, slug

RULES = """\
Import submissions of ASSIGNMENT from PATH (a folder, or a .zip as a learning management
system exports it) into submitted/<student>/<ASSIGNMENT>/.

Learning-management system exports are recognised by their file names:
  Canvas      <name>_[LATE_]<user id>_<file id>_<file>     (resubmitted files: <file>-1.ipynb)
  Moodle      <Full Name>_<participant id>_assignsubmission_file_<file>  (or such a folder;
              add Moodle's grading worksheet CSV beside them for times and late flags)
  Blackboard  <assignment>_<user>_attempt_<YYYY-MM-DD-HH-MM-SS>_<file> (+ its .txt receipt)
  Gradescope  submission_<id>/<files> with submission_metadata.yml (group members each get
              a copy)
Plain folders (student ids are letters, digits, '.', '-' and start with a letter or
digit; everything after the first '_' is free):
  <student>/...                  a folder per student: its files are taken as they are
                                 (a nested <student>/<ASSIGNMENT>/ folder is unwrapped)
  <student>.ipynb                a notebook of <student>
  <student>_<anything>.ipynb     a notebook of <student>; it is stored under the released
                                 notebook's name when the assignment has one notebook, or
                                 under the released name that <anything> ends with
  <student>_<anything>           any other file of <student>, stored as <anything>
Students: with a roster (--roster FILE, default roster.csv in the course; columns id, name,
email, canvas_id, moodle_id, blackboard_id, gradescope_id, ...) LMS submitters are matched
by their LMS id, then e-mail, then name; without one, ids are made from LMS user names and
names, and kept in .coursekit/lms_students.json so a student keeps the same id all term
(namesakes get '-<LMS id>' appended).
What is kept: the submission time (timestamp.txt, read by nbgrader) and the LMS's data
(submission.json: LMS, ids, name, late flag, attempt). Of several attempts of one student
the newest is collected and the others are listed. A notebook whose nbgrader cells belong
to another assignment is not collected and is listed.
Hidden files, __MACOSX/ and files matching none of the rules are listed as unmatched.
An existing submission is never overwritten silently: identical ones are left alone,
different ones are skipped and listed unless --force is given (the old one is then moved
to .coursekit/replaced/).
"""

_STUDENT = STUDENT_ID
_CANVAS = re.compile(
    r"^(?P<name>[^_]+)_(?:(?P<late>LATE)_)?(?P<uid>\d+)_(?P<aid>\d+)_(?P<file>.+)$"
)
_CANVAS_COPY = re.compile(r"^(?P<stem>.+)-(?P<n>\d+)(?P<ext>\.[^.]+)$")
_MOODLE = re.compile(
    r"^(?P<name>.+?)_(?P<pid>\d+)_assign(?:submission|feedback)_(?P<plugin>[a-z]+)_(?P<file>.*)$"
)
_BLACKBOARD = re.compile(
    r"^(?P<assignment>.+)_(?P<user>[^_]+)_attempt_"
    r"(?P<date>\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d)(?:_(?P<late>LATE))?"
    r"(?:_(?P<file>.+)|(?P<receipt>\.txt))?$"
)
_BB_NAME = re.compile(r"^\s*Name:\s*(?P<name>.*?)\s*\((?P<user>[^()]+)\)\s*$", re.M)
_BB_FILES = re.compile(
    r"^\s*Original filename:\s*(?P<original>.+?)\s*$\s*^\s*Filename:\s*(?P<stored>.+?)\s*$", re.M
)
GRADESCOPE_METADATA = "submission_metadata.yml"
_MOODLE_PARTICIPANT = re.compile(r"(\d+)\s*$")
LMS_MAP = "lms_students.json"


@dataclass
class Attempt:
    """One submission of one submitter as found in the export."""

    lms: str
    who: str  # the submitter's identity within the export ("canvas:12345")
    name: str = ""
    lms_id: str = ""
    email: str = ""
    submitted_at: datetime | None = None
    late: bool | None = None
    rank: tuple = ()  # newer attempts rank higher when there is no time
    label: str = ""
    files: list = field(default_factory=list)  # (original name, path, rank or None)

    def key(self):
        moment = self.submitted_at.timestamp() if self.submitted_at else float("-inf")
        return (moment, self.rank)


@dataclass
class CollectOutcome:
    assignment: str
    collected: dict[str, list[str]] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    older_attempts: dict[str, str] = field(default_factory=dict)
    wrong_assignment: list[str] = field(default_factory=list)
    not_in_roster: list[str] = field(default_factory=list)
    ambiguous: list[str] = field(default_factory=list)
    duplicate_files: list[str] = field(default_factory=list)
    no_files: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.unmatched
            or self.conflicts
            or self.wrong_assignment
            or self.not_in_roster
            or self.ambiguous
            or self.duplicate_files
            or self.no_files
        )

    def render(self) -> str:
        lines = [f"collected {len(self.collected)} submissions of {self.assignment}"]
        for student, files in sorted(self.collected.items()):
            note = " (replaced, old one backed up)" if student in self.replaced else ""
            detail = f" [{self.details[student]}]" if self.details.get(student) else ""
            lines.append(f"  {student}: {', '.join(files)}{detail}{note}")
        lines += [f"note: {n}" for n in self.notes]
        sections = [
            ("unchanged (already collected):", None, self.unchanged),
            (
                "several attempts, the newest collected:",
                None,
                [f"{s}: {why}" for s, why in sorted(self.older_attempts.items())],
            ),
            (
                "NOT collected, a different submission exists (use --force to replace):",
                None,
                sorted(self.conflicts),
            ),
            (
                "NOT collected, the notebook belongs to another assignment:",
                None,
                self.wrong_assignment,
            ),
            ("NOT collected, not in the roster:", None, self.not_in_roster),
            (
                "NOT collected, ambiguous (several students fit; add LMS ids to the roster):",
                None,
                self.ambiguous,
            ),
            ("NOT collected, two files for the same name:", None, self.duplicate_files),
            ("NOT collected, an LMS submission without any file:", None, self.no_files),
            ("unmatched files (no student id recognised, see --help):", None, self.unmatched),
        ]
        for title, _, items in sections:
            if not items:
                continue
            if title.startswith("unchanged"):
                lines.append(f"{title} {', '.join(sorted(items))}")
                continue
            lines.append(title)
            lines += [f"  {item}" for item in items]
        return "\n".join(lines)


# -- the released assignments --------------------------------------------------------------
def _released_notebooks(course: Course, assignment: str) -> list[str]:
    for step in ("release", "source"):
        names = sorted(p.name for p in (course.directory(step) / assignment).glob("*.ipynb"))
        if names:
            return names
    return []


def _cells_signature(nb: dict) -> tuple[set, dict]:
    """``(grade ids, {grade id: checksum})`` of a notebook's nbgrader cells."""
    ids, checksums = set(), {}
    for cell in nb.get("cells", []) if isinstance(nb, dict) else []:
        meta = cell.get("metadata", {}).get("nbgrader") if isinstance(cell, dict) else None
        if isinstance(meta, dict) and isinstance(meta.get("grade_id"), str):
            ids.add(meta["grade_id"])
            if isinstance(meta.get("checksum"), str):
                checksums[meta["grade_id"]] = meta["checksum"]
    return ids, checksums


def assignment_signatures(course: Course) -> dict[str, tuple[set, dict]]:
    """For every assignment, the grade ids and checksums of its released (or source) cells."""
    out = {}
    for name in course.assignments():
        ids, checksums = set(), {}
        for step in ("source", "release"):
            for path in (course.directory(step) / name).glob("*.ipynb"):
                try:
                    nb = json.loads(path.read_text("utf-8"))
                except (ValueError, OSError):
                    continue
                i, c = _cells_signature(nb)
                ids |= i
                checksums.update(c)
        out[name] = (ids, checksums)
    return out


def belongs_to(path: Path, assignment: str, signatures: dict) -> str | None:
    """The assignment the notebook at ``path`` was released for, when it is not
    ``assignment`` (``None`` when it fits, or when its cells say nothing)."""
    try:
        nb = json.loads(path.read_bytes().decode("utf-8"))
    except (ValueError, OSError, UnicodeDecodeError):
        return None
    ids, checksums = _cells_signature(nb)
    if not ids:
        return None

    def score(name):
        known_ids, known_sums = signatures.get(name, (set(), {}))
        same_sums = sum(1 for k, v in checksums.items() if known_sums.get(k) == v)
        return (len(ids & known_ids), same_sums)

    own = score(assignment)
    best = max(signatures, key=score, default=assignment)
    if best != assignment and score(best) > own and score(best)[0] > 0:
        return best
    return None


def _notebook_name(rest: str, released: list[str]) -> str:
    if len(released) == 1:
        return released[0]
    for name in sorted(released, key=len, reverse=True):
        if rest.endswith(name):
            return name
    return rest


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in rel.parts)


def _files_under(directory: Path) -> list[Path]:
    return sorted(
        p for p in directory.rglob("*") if p.is_file() and not _hidden(p.relative_to(directory))
    )


# -- reading an export ----------------------------------------------------------------------
@dataclass
class Scan:
    attempts: list[Attempt] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    students: dict = field(default_factory=dict)  # plain folders: {student: {name: path}}
    moodle_sheet: dict = field(default_factory=dict)  # {participant id: time, late, e-mail}


def _tolerant_loader():
    """A safe YAML loader that reads Ruby-tagged values (``!ruby/object:BigDecimal 10.0``,
    as Rails writes them) as plain values instead of refusing the file."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def plain(loader, suffix, node):
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        return loader.construct_scalar(node)

    Loader.add_multi_constructor("!", plain)
    return Loader


def _gradescope(root: Path, scan: Scan, zone, consumed: set) -> None:
    candidates = [root / GRADESCOPE_METADATA] + sorted(root.glob(f"*/{GRADESCOPE_METADATA}"))
    for meta_path in candidates:
        if not meta_path.is_file():
            continue
        import yaml

        base = meta_path.parent
        try:
            meta = yaml.load(meta_path.read_text("utf-8"), Loader=_tolerant_loader()) or {}
        except yaml.YAMLError as exc:
            scan.unmatched.append(f"{meta_path.relative_to(root)} (unreadable YAML: {exc})")
            meta = {}
        consumed.add(meta_path)
        for sub_name, entry in sorted(meta.items()):
            folder = base / str(sub_name)
            files = _files_under(folder) if folder.is_dir() else []
            consumed.update(files)
            if not isinstance(entry, dict):
                continue
            created = entry.get(":created_at") or entry.get("created_at")
            when = parse_time(created, zone) if created else None
            submitters = entry.get(":submitters") or entry.get("submitters") or []
            for person in submitters:
                if not isinstance(person, dict):
                    continue
                name = str(person.get(":name") or person.get("name") or "")
                sid = str(person.get(":sid") or person.get("sid") or "")
                email = str(person.get(":email") or person.get("email") or "")
                who = f"gradescope:{sid or email or fold(name)}"
                late = entry.get(":late") if ":late" in entry else None
                scan.attempts.append(
                    Attempt(
                        "gradescope",
                        who,
                        name,
                        sid,
                        email,
                        when,
                        late,
                        (str(sub_name),),
                        f"Gradescope {sub_name}",
                        [(p.relative_to(folder).as_posix(), p, None) for p in files],
                    )
                )
        # Every submission folder beside the metadata is accounted for.
        for p in _files_under(base):
            if p not in consumed:
                consumed.add(p)
                scan.unmatched.append(
                    f"{p.relative_to(root).as_posix()} (not in {GRADESCOPE_METADATA})"
                )


def _blackboard_time(date: str, zone) -> datetime:
    return datetime.strptime(date, "%Y-%m-%d-%H-%M-%S").replace(tzinfo=zone)


def _lms_name(name: str) -> bool:
    return any(p.match(name) for p in (_CANVAS, _MOODLE, _BLACKBOARD)) or name in (
        GRADESCOPE_METADATA,
    )


def _unwrap(root: Path) -> Path:
    """The folder that holds the export: an LMS zip unpacked and zipped again with its
    folder (``submissions/hoppergrace_111_...``) is read like the original."""
    while True:
        entries = [p for p in root.iterdir() if not _hidden(p.relative_to(root))]
        if len(entries) != 1 or not entries[0].is_dir() or _lms_name(entries[0].name):
            return root
        inner = [p.name for p in entries[0].iterdir()]
        if not any(_lms_name(n) or n.startswith("submission_") for n in inner):
            return root
        root = entries[0]


def scan_export(root: Path, assignment: str, zone) -> Scan:
    """Every attempt found under ``root`` (see the module docstring for the schemes)."""
    scan = Scan()
    consumed: set[Path] = set()
    root = _unwrap(root)
    _gradescope(root, scan, zone, consumed)
    blackboard: dict[tuple, Attempt] = {}
    bb_originals: dict[str, str] = {}  # Blackboard's file name -> the student's
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or _hidden(rel) or path in consumed:
            continue
        first = rel.parts[0]
        if len(rel.parts) > 1:
            moodle = _MOODLE.match(first)
            if moodle and not moodle["file"]:
                inner = Path(*rel.parts[1:]).as_posix()
                _moodle_attempt(scan, moodle, inner, path)
                continue
            if not _STUDENT.match(first):
                scan.unmatched.append(rel.as_posix())
                continue
            inner = Path(*rel.parts[1:])
            if inner.parts[0] == assignment and len(inner.parts) > 1:
                inner = Path(*inner.parts[1:])
            scan.students.setdefault(first, {})[inner.as_posix()] = path
            continue
        if m := _MOODLE.match(first):
            _moodle_attempt(scan, m, m["file"], path)
            continue
        if first.endswith(".csv") and _moodle_worksheet(path, scan, zone):
            continue
        if m := _BLACKBOARD.match(first):
            key = (m["user"], m["date"])
            att = blackboard.get(key)
            if att is None:
                att = blackboard[key] = Attempt(
                    "blackboard",
                    f"blackboard:{m['user']}",
                    "",
                    m["user"],
                    "",
                    _blackboard_time(m["date"], zone),
                    None,
                    (m["date"],),
                    f"attempt of {m['date'][:10]} {m['date'][11:].replace('-', ':')}",
                )
            if m["late"]:
                att.late = True
            if m["receipt"]:
                _blackboard_receipt(att, path, bb_originals)
            else:
                att.files.append((m["file"] or first, path, None))
            continue
        if m := _CANVAS.match(first):
            who = f"canvas:{m['uid']}"
            att = next((a for a in scan.attempts if a.who == who), None)
            if att is None:
                att = Attempt("canvas", who, m["name"], m["uid"], "", None, None, (), "")
                scan.attempts.append(att)
            if m["late"]:
                att.late = True
            elif att.late is None:
                att.late = False
            original = m["file"]
            copy = _CANVAS_COPY.match(original)
            if copy:
                original = copy["stem"] + copy["ext"]
            att.files.append((original, path, (int(m["aid"]),)))
            att.rank = max(att.rank, (int(m["aid"]),))
            continue
        _plain_file(scan, rel, first, path)
    for att in blackboard.values():
        att.files = [(bb_originals.get(p.name, name), p, r) for name, p, r in att.files]
    scan.attempts += list(blackboard.values())
    for att in scan.attempts:
        info = scan.moodle_sheet.get(att.lms_id) if att.lms == "moodle" else None
        if info:
            att.submitted_at = info["submitted_at"] or att.submitted_at
            att.late = info["late"]
            att.email = att.email or info["email"]
    return scan


def _moodle_worksheet(path: Path, scan: Scan, zone) -> bool:
    """Read Moodle's grading worksheet (``Identifier``, ``Email address``, ``Status``,
    ``Last modified (submission)``) when ``path`` is one: submission times and late flags
    that the zip of files does not carry. ``False`` for any other CSV."""
    import csv

    import dateutil.parser

    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    if not rows or "Identifier" not in rows[0] or "Last modified (submission)" not in rows[0]:
        return False
    for row in rows:
        found = _MOODLE_PARTICIPANT.search(row.get("Identifier") or "")
        if not found:
            continue
        when = None
        text = (row.get("Last modified (submission)") or "").strip()
        if text and text != "-":
            try:
                when = parse_time(dateutil.parser.parse(text, fuzzy=True), zone)
            except (ValueError, OverflowError):
                when = None
        scan.moodle_sheet[found.group(1)] = {
            "submitted_at": when,
            "late": "late" in (row.get("Status") or "").casefold(),
            "email": (row.get("Email address") or "").strip(),
        }
    return True


def _moodle_attempt(scan: Scan, m, inner: str, path: Path) -> None:
    who = f"moodle:{m['pid']}"
    att = next((a for a in scan.attempts if a.who == who), None)
    if att is None:
        att = Attempt("moodle", who, m["name"], m["pid"], "", None, None, (), "")
        scan.attempts.append(att)
    if m["plugin"] == "onlinetext" and not inner:
        inner = "onlinetext.html"
    att.files.append((inner or path.name, path, None))


def _blackboard_receipt(att: Attempt, path: Path, originals: dict) -> None:
    """Name, late flag and the files' original names (``Files:`` section: ``Original
    filename:`` / ``Filename:`` pairs) from a Blackboard receipt."""
    text = path.read_text("utf-8", errors="replace")
    if m := _BB_NAME.search(text):
        att.name = m["name"]
    if re.search(r"\bLATE\b", text):
        att.late = True
    for m in _BB_FILES.finditer(text):
        originals[m["stored"]] = m["original"]


def _plain_file(scan: Scan, rel: Path, first: str, path: Path) -> None:
    stem, _, rest = first.partition("_")
    if first.endswith(".ipynb") and not rest:
        stem = first[: -len(".ipynb")]
    if not _STUDENT.match(stem) or (not rest and not first.endswith(".ipynb")):
        scan.unmatched.append(rel.as_posix())
        return
    files = scan.students.setdefault(stem, {})
    name = ("\0nb:" + (rest or first)) if first.endswith(".ipynb") else rest
    if name in files:
        scan.unmatched.append(f"{rel.as_posix()} (a second file for {stem}/{rest or first})")
        return
    files[name] = path


# -- who is who ------------------------------------------------------------------------------
class Identities:
    """Maps LMS submitters to student ids: the roster when there is one, else ids derived
    from LMS data and remembered in ``.coursekit/lms_students.json``."""

    def __init__(self, course: Course, roster: Roster | None):
        self.roster = roster
        self.path = course.state_directory / LMS_MAP
        self.known: dict[str, str] = {}
        if self.path.is_file():
            try:
                self.known = json.loads(self.path.read_text("utf-8"))
            except ValueError:
                self.known = {}
        self.changed = False
        self.namesakes: set[str] = set()  # Moodle names of several participants

    def save(self) -> None:
        if self.changed:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.known, indent=1, sort_keys=True), "utf-8")

    def resolve(self, att: Attempt) -> tuple[str | None, str | None, str]:
        """``(student id, None, how)`` or ``(None, problem, kind)`` with kind
        ``"roster"`` or ``"ambiguous"``."""
        if self.roster is not None:
            return self._from_roster(att)
        key = self._key(att)
        if key in self.known:
            return self.known[key], None, "remembered"
        wanted = self._derive(att)
        taken = {v for k, v in self.known.items() if k != key}
        sid = wanted if wanted not in taken else f"{wanted}-{slug(att.lms_id) or 'x'}"
        self.known[key] = sid
        self.changed = True
        return sid, None, "derived"

    def _key(self, att: Attempt) -> str:
        if att.lms == "moodle":  # participant ids change from one assignment to the next
            if att.email:
                return f"moodle:{att.email.casefold()}"
            if fold(att.name) in self.namesakes:  # two participants, one name: keep both
                return f"moodle:{fold(att.name)}:{att.lms_id}"
            return f"moodle:{fold(att.name)}"
        return att.who

    def _derive(self, att: Attempt) -> str:
        # Blackboard user names and Gradescope SIDs are the institution's own ids.
        if att.lms in ("blackboard", "gradescope") and _STUDENT.match(att.lms_id or ""):
            return att.lms_id
        if att.email:
            local = slug(att.email.partition("@")[0])
            if local:
                return local
        return slug(att.name) or slug(att.lms_id) or "student"

    def _from_roster(self, att: Attempt):
        r = self.roster
        found = r.by_lms(att.lms, att.lms_id)
        if found is None and att.lms in ("blackboard", "gradescope"):
            found = r.get(att.lms_id)
        if found is None and att.lms == "gradescope":
            found = next((s for s in r.students if s.sis_user_id == att.lms_id), None)
        if found is None:
            found = r.by_email(att.email)
        if found is None and att.lms == "blackboard":
            found = next(
                (
                    s
                    for s in r.students
                    if s.email.partition("@")[0].casefold() == att.lms_id.casefold()
                ),
                None,
            )
        if found is not None:
            return found.id, None, "roster"
        named = r.by_name(att.name)
        if len(named) == 1:
            return named[0].id, None, "roster name"
        label = f"{att.name or '?'} ({att.lms} id {att.lms_id or '?'})"
        if named:
            ids = ", ".join(sorted(s.id for s in named))
            return (
                None,
                f"{label}: {len(named)} roster students have this name ({ids})",
                "ambiguous",
            )
        return None, label, "roster"


def _stored_name(original: str, released: list[str]) -> str:
    if original.endswith(".ipynb") and "/" not in original:
        return _notebook_name(original, released)
    return original


def _describe(att: Attempt) -> str:
    parts = [att.lms]
    if att.submitted_at is not None:
        parts.append("submitted " + att.submitted_at.strftime("%Y-%m-%d %H:%M %z"))
    if att.late:
        parts.append("LATE")
    return ", ".join(parts)


def _metadata(att: Attempt, files: dict, attempts: int) -> dict:
    return {
        "lms": att.lms,
        "lms_id": att.lms_id,
        "name": att.name,
        "email": att.email,
        "submitted_at": att.submitted_at.isoformat() if att.submitted_at else None,
        "late": att.late,
        "attempt": att.label,
        "attempts": attempts,
        "files": {stored: original for stored, (original, _) in sorted(files.items())},
    }


def _same(existing: Path, files: dict[str, Path], generated: dict[str, bytes]) -> bool:
    present = {p.relative_to(existing).as_posix() for p in existing.rglob("*") if p.is_file()}
    if present != set(files) | set(generated):
        return False
    if any((existing / name).read_bytes() != data for name, data in generated.items()):
        return False
    return all(filecmp.cmp(existing / name, src, shallow=False) for name, src in files.items())


def _extract(path: Path, tmp: Path, outcome: CollectOutcome) -> None:
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            target = (tmp / info.filename).resolve()
            if not str(target).startswith(str(tmp.resolve())):
                outcome.unmatched.append(f"{info.filename} (unsafe path)")
                continue
            zf.extract(info, tmp)


def collect(
    course: Course,
    assignment: str,
    path,
    *,
    force: bool = False,
    roster: str | Path | None = None,
    progress: bool = False,
) -> CollectOutcome:
    """Import the submissions at ``path`` (folder or zip); see :data:`RULES`."""
    course.require_assignments([assignment])
    path = Path(path)
    if not path.exists():
        raise CourseError(f"no such folder or zip file: {path}")
    outcome = CollectOutcome(assignment)
    released = _released_notebooks(course, assignment)
    the_roster = course_roster(course, roster)
    if the_roster is not None:
        outcome.notes.append(
            f"students matched with the roster {the_roster.path} ({len(the_roster)} students)"
        )
    zone = zone_named(CoursekitDeadlines(config=course.config).timezone)
    signatures = assignment_signatures(course)
    identities = Identities(course, the_roster)
    with tempfile.TemporaryDirectory(prefix="coursekit-collect-") as tmp:
        if path.is_file():
            if not zipfile.is_zipfile(path):
                raise CourseError(f"{path} is neither a folder nor a zip file")
            _extract(path, Path(tmp), outcome)
            root = Path(tmp)
        else:
            root = path
        scan = scan_export(root, assignment, zone)
        outcome.unmatched += scan.unmatched
        plans = _plan_students(scan, released, identities, outcome)
        identities.save()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        items = sorted(plans.items())
        bar = None
        if progress and len(items) > 20:
            from tqdm import tqdm

            bar = tqdm(total=len(items), desc=f"collecting {assignment}", unit="sub")
        for student, (files, generated, detail) in items:
            if bar is not None:
                bar.update(1)
            wrong = [
                (stored, src, other)
                for stored, src in files.items()
                if stored.endswith(".ipynb")
                and (other := belongs_to(src, assignment, signatures)) is not None
            ]
            if wrong:
                outcome.wrong_assignment += [
                    f"{student}: {stored} ({src.name}) has the cells of {other}, not {assignment}"
                    for stored, src, other in wrong
                ]
                continue
            _install(course, assignment, student, files, generated, force, stamp, outcome)
            if student in outcome.collected and detail:
                outcome.details[student] = detail
        if bar is not None:
            bar.close()
    return outcome


def _plan_students(scan: Scan, released, identities: Identities, outcome: CollectOutcome):
    """``{student: ({stored name: source}, {generated name: bytes}, detail)}``."""
    plans: dict = {}
    # Plain folders and files: the student id is in the name.
    for student, files in scan.students.items():
        stored = {}
        for name, src in files.items():
            if name.startswith("\0nb:"):
                name = _notebook_name(name[4:], released)
            if name in stored:
                outcome.duplicate_files.append(f"{student}/{name}: {stored[name].name}, {src.name}")
                continue
            stored[name] = src
        generated = {}
        if identities.roster is not None and identities.roster.get(student) is None:
            outcome.not_in_roster.append(f"{student} (a folder or file named after the student)")
            continue
        plans[student] = (stored, generated, "")
    # LMS attempts: who is who, then the newest attempt per student.
    by_student: dict[str, list[Attempt]] = {}
    participants: dict[str, set] = {}
    for att in scan.attempts:
        if att.lms == "moodle":
            participants.setdefault(fold(att.name), set()).add(att.lms_id)
    identities.namesakes = {name for name, ids in participants.items() if len(ids) > 1}
    for att in scan.attempts:
        sid, problem, kind = identities.resolve(att)
        if sid is None:
            (outcome.ambiguous if kind == "ambiguous" else outcome.not_in_roster).append(problem)
            continue
        by_student.setdefault(sid, []).append(att)
    for sid, attempts in sorted(by_student.items()):
        submitters = {a.who for a in attempts}
        if len(submitters) > 1:
            names = ", ".join(sorted(f"{a.name} ({a.who})" for a in attempts))
            hint = "" if identities.roster is not None else " (namesakes: collect with a roster)"
            outcome.ambiguous.append(
                f"{sid}: several LMS submitters match this student: {names}{hint}"
            )
            continue
        attempts.sort(key=Attempt.key)
        with_files = [a for a in attempts if a.files]
        if not with_files:
            outcome.no_files.append(
                f"{sid}: {', '.join(a.label or _describe(a) for a in attempts)} holds no file"
            )
            continue
        attempts = with_files
        newest = attempts[-1]
        if len(attempts) > 1:
            if attempts[-2].key() == newest.key():
                outcome.ambiguous.append(
                    f"{sid}: {len(attempts)} attempts and no way to tell which is newest"
                )
                continue
            older = ", ".join(a.label or _describe(a) for a in attempts[:-1])
            outcome.older_attempts[sid] = (
                f"kept {newest.label or _describe(newest)} (newest of {len(attempts)}); "
                f"not collected: {older}"
            )
        files: dict[str, tuple[str, Path]] = {}
        ranks: dict[str, tuple] = {}
        bad = False
        for original, src, rank in newest.files:
            stored = _stored_name(original, released)
            if stored in files:
                if rank is not None and ranks.get(stored) is not None:
                    older, newer = sorted([(ranks[stored], files[stored]), (rank, (original, src))])
                    files[stored], ranks[stored] = newer[1], newer[0]
                    note = outcome.older_attempts.get(sid, "")
                    outcome.older_attempts[sid] = (
                        note
                        + ("; " if note else "")
                        + f"{stored}: kept the newer upload {newer[1][1].name}, "
                        f"not {older[1][1].name}"
                    )
                    continue
                outcome.duplicate_files.append(
                    f"{sid}/{stored}: {files[stored][1].name}, {src.name}"
                )
                bad = True
                continue
            files[stored] = (original, src)
            ranks[stored] = rank
        if bad:
            continue
        if sid in plans:
            outcome.ambiguous.append(f"{sid}: both a plain folder/file and an LMS submission")
            plans.pop(sid)
            continue
        generated = {
            METADATA_NAME: (
                json.dumps(_metadata(newest, files, len(attempts)), indent=1, sort_keys=True) + "\n"
            ).encode("utf-8")
        }
        if newest.submitted_at is not None and "timestamp.txt" not in files:
            utc = newest.submitted_at.astimezone(timezone.utc)
            generated["timestamp.txt"] = (utc.strftime("%Y-%m-%d %H:%M:%S.%f") + " UTC\n").encode()
        plans[sid] = ({k: v[1] for k, v in files.items()}, generated, _describe(newest))
    return plans


def _install(course, assignment, student, files, generated, force, stamp, outcome) -> None:
    dest = course.submission_directory(assignment, student)
    if dest.exists():
        if _same(dest, files, generated):
            outcome.unchanged.append(student)
            return
        if not force:
            outcome.conflicts.append(student)
            return
        backup = course.state_directory / "replaced" / stamp / student / assignment
        backup.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(dest), str(backup))
        outcome.replaced.append(student)
    for name, src in files.items():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    for name, data in generated.items():
        (dest / name).write_bytes(data)
    outcome.collected[student] = sorted(files)


def lateness_preview(course: Course, assignment: str, students: list[str]) -> dict[str, str]:
    """``{student: note}`` for the collected students that are late (shown by collect)."""
    from coursekit.instructor.deadlines import lateness_table

    deadlines = Deadlines.for_course(course)
    if deadlines.deadline(assignment) is None:
        return {}
    return {s: lt.note for s, lt in lateness_table(course, assignment, students).items() if lt.late}
