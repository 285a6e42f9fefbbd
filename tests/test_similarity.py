"""``coursekit similarity``: copies are flagged, independent work is not, the evidence is shown.

The class is synthesized by ``tests/similarity_class.py`` (A1 answers written several
independent ways, and planted copies disguised by renaming, reordering, new comments,
another loop style, all at once, or pasted from coursekit's own source). No notebook runs.
"""

import importlib.util
import json
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest
import similarity_class as synth

from coursekit.cli.main import main
from coursekit.grading import submissions
from coursekit.instructor import similarity as sim

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = {
    "a1": "vectorization.ipynb",
    "a2": "backprop.ipynb",
    "a3": "optimizers.ipynb",
}


def make_course(root: Path, assignment: str = "a1", config_extra: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    text = (ROOT / "nbgrader_config.py").read_text()
    (root / "nbgrader_config.py").write_text(text + "\n" + config_extra)
    for step in ("solutions", "assignments"):
        shutil.copytree(ROOT / step / assignment, root / step / assignment)
    return root


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _clusters(planted):
    parent = {}

    def find(x):
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    for pair in planted:
        a, b = tuple(pair)
        parent[find(a)] = find(b)
    return find


@pytest.fixture(scope="module")
def class_run(tmp_path_factory):
    """A synthesized class of 70 students, compared by the command line."""
    root = make_course(tmp_path_factory.mktemp("sim") / "course")
    klass = synth.synthesize(70, seed=11)
    synth.write_class(root, klass)
    out = root / "pairs.json"
    code = main(["--course", str(root), "similarity", "a1", "--json", str(out)])
    assert code == 0
    return root, klass, json.loads(out.read_text())


def test_every_planted_copy_is_flagged(class_run):
    _, klass, pairs = class_run
    by_pair = {frozenset((p["a"], p["b"])): p for p in pairs}
    kinds = set()
    for pair in klass.planted:
        found = by_pair[pair]
        assert found["flagged"], (klass.kinds[pair], sorted(pair), found["score"])
        kinds.add(("coursekit " if "coursekit" in pair else "") + klass.kinds[pair])
    # every disguise was planted, between students and from coursekit's source
    assert {k for k in kinds if not k.startswith("coursekit")} == set(synth.COPY_KINDS)
    assert any(k.startswith("coursekit") for k in kinds)


def test_independent_students_are_rarely_flagged(class_run):
    _, klass, pairs = class_run
    same_cluster = _clusters(klass.planted)
    independent = [p for p in pairs if same_cluster(p["a"]) != same_cluster(p["b"])]
    assert len(independent) > 2000
    rate = np.mean([p["flagged"] for p in independent])
    assert rate <= 0.02, rate


def test_json_is_a_ranked_list_of_pairs(class_run):
    root, klass, pairs = class_run
    n = len(klass.answers)
    assert len(pairs) == n * (n - 1) // 2 + n  # every pair, and everyone against coursekit
    scores = [p["score"] for p in pairs]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert all(isinstance(p["flagged"], bool) for p in pairs)
    assert all(p["flagged"] == (p["score"] >= 0.5) for p in pairs)
    assert {p["b"] for p in pairs if p["b"] == "coursekit"} == {"coursekit"}
    assert all(p["a"] != "coursekit" for p in pairs)


def test_page_shows_the_matching_code_side_by_side_and_says_it_is_a_lead(class_run):
    root, klass, pairs = class_run
    page = (root / "reports" / "a1" / "similarity.html").read_text()
    assert "a lead for review, not a verdict" in page
    top = pairs[0]
    assert 'id="pair-1"' in page
    detail = page.split('id="pair-1"')[1].split('id="pair-2"')[0]
    assert top["a"] in detail and top["b"] in detail
    assert detail.count("<pre>") == 2 and detail.count("<mark>") >= 2


def test_alternative_solutions_are_not_flagged_against_the_reference(tmp_path):
    """Independently written answers of the alternatives catalogue (whole functions) against
    the reference solution of the same cells, in a class of independent students; a
    catalogue entry that is the reference with one line changed is a copy by construction."""
    source = submissions.read(ROOT / "solutions" / "a1" / NOTEBOOKS["a1"])
    reference = submissions.reference_answers(source)
    alternatives = _catalogue("a1")
    rng = np.random.default_rng(5)
    answers = {f"s{k:02d}": synth.independent_answers(rng) for k in range(40)}
    for name, alt in alternatives.items():
        answers[f"alt-{name}"] = alt
        answers[f"ref-{name}"] = {g: reference[g] for g in alt}
    root = make_course(tmp_path / "course")
    synth.write_class(root, synth.SynthesizedClass(answers, set(), {}))
    result = sim.similarity(sim.Course.locate(root), "a1", workers=1)
    scores = {frozenset((p.a, p.b)): p for p in result.pairs}
    for name in alternatives:
        pair = scores[frozenset((f"alt-{name}", f"ref-{name}"))]
        assert not pair.flagged, (name, pair.score)


#: Catalogue entries that keep a run of the reference's lines verbatim and change only the
#: loop around them: a copy with another loop style by the issue's own definition, so it is
#: flagged (numerical_gradient: the six lines from ``x[i] = old + h`` to ``grad[i] = ...``
#: under ``np.nditer`` instead of ``np.ndindex``).
REWRITES_OF_THE_REFERENCE = {"numerical_gradient_with_nditer"}


@pytest.mark.parametrize("assignment", ["a2", "a3"])
def test_alternatives_of_other_assignments_are_not_flagged(tmp_path, assignment):
    """Without a class around them (so nothing is discounted as common): each alternative
    against the reference answers of the same cells, and against coursekit's own code."""
    source = submissions.read(ROOT / "solutions" / assignment / NOTEBOOKS[assignment])
    released = submissions.read(ROOT / "assignments" / assignment / NOTEBOOKS[assignment])
    reference = submissions.reference_answers(source)
    release = sim.Release.read(ROOT / "assignments" / assignment)
    ck = sim.coursekit_document(assignment)
    for name, alt in _catalogue(assignment).items():
        docs = []
        for owner, answers in (("alt", alt), ("ref", {g: reference[g] for g in alt})):
            path = tmp_path / f"{name}-{owner}.ipynb"
            nbformat.write(submissions.fill_answers(released, answers), str(path))
            docs.append(sim.notebook_document(owner, [path], release))
        result = sim.compare(docs, sim.Settings(), reference=ck, release_code=release.code)
        flagged = {(p.a, p.b) for p in result.flagged}
        assert ("alt", "coursekit") not in flagged, (name, result.pairs)
        expected = name in REWRITES_OF_THE_REFERENCE
        assert (("alt", "ref") in flagged) == expected, (name, result.pairs)


def _catalogue(assignment):
    spec = importlib.util.spec_from_file_location(
        f"_alternatives_{assignment}", ROOT / "tests" / "alternatives" / f"{assignment}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    alts = module.ALTERNATIVES
    items = alts.items() if isinstance(alts, dict) else []
    return {name: alt for name, alt in items if isinstance(alt, dict)}


# -- what is compared ------------------------------------------------------------------------
RELEASED_CELL = '''def softmax(logits):
    """Row-wise softmax of an (N, C) array, stable for logits of any size."""
    # YOUR CODE HERE
    raise NotImplementedError()'''


def _units(source, starter=RELEASED_CELL):
    starter_lines = {line.strip() for line in starter.split("\n") if line.strip()}
    return sim.cell_units(source, starter_lines, sim.bound_names(source))


def test_the_release_stub_leaves_nothing_to_compare():
    assert _units(RELEASED_CELL) == []


def test_names_comments_strings_and_layout_do_not_matter():
    a = _units(
        RELEASED_CELL.replace(
            "    # YOUR CODE HERE\n    raise NotImplementedError()",
            "    shifted = logits - logits.max(axis=1, keepdims=True)  # stability\n"
            "    e = np.exp(shifted)\n"
            '    assert e.ndim == 2, "two dimensions"\n'
            "    return e / e.sum(axis=1, keepdims=True)",
        )
    )
    b = _units(
        'def softmax(logits):\n    """My own docstring."""\n'
        "    # subtract the max first\n"
        "    z = logits - logits.max(axis=1,\n                           keepdims=True)\n\n"
        "    ex = np.exp(z)\n"
        "    assert ex.ndim == 2, 'something else'\n"
        "    return ex / ex.sum(axis=1, keepdims=True)\n"
    )
    assert len(a) == len(b) == 1
    assert a[0].tokens == b[0].tokens


def test_library_names_are_kept():
    one = _units("def softmax(logits):\n    return np.sum(logits)\n")
    other = _units("def softmax(logits):\n    return np.max(logits)\n")
    assert one[0].tokens != other[0].tokens


def test_shown_code_keeps_the_signature_but_not_the_stub_or_docstring():
    units = _units(RELEASED_CELL.replace("raise NotImplementedError()", "return logits * 2"))
    assert units[0].text.splitlines() == ["def softmax(logits):", "    return logits * 2"]


def test_added_cells_count_and_test_cells_do_not(tmp_path):
    released = submissions.read(ROOT / "assignments" / "a1" / NOTEBOOKS["a1"])
    nb = submissions.fill_answers(released, {})
    helper = "def my_helper(values):\n    total = 0\n    for v in values:\n        total += v * v\n    return total\n"
    nb.cells.append(nbformat.v4.new_code_cell(helper))
    for cell in nb.cells:  # a student who edits a test cell: nbgrader restores it anyway
        if cell.metadata.get("nbgrader", {}).get("grade") and "assert" in cell.source:
            cell.source += "\nprint('my own line in a test cell')"
    path = tmp_path / NOTEBOOKS["a1"]
    nbformat.write(nb, str(path))
    doc = sim.notebook_document("s", [path], sim.Release.read(ROOT / "assignments" / "a1"))
    assert "my_helper" in doc.text and "total += v * v" in doc.text
    assert "my own line" not in doc.text
    assert "YOUR CODE HERE" not in doc.text and "NotImplementedError" not in doc.text


def test_a_broken_notebook_is_a_note_not_a_crash(tmp_path):
    path = tmp_path / "broken.ipynb"
    path.write_text("{not json")
    doc = sim.notebook_document("s", [path], sim.Release.read(ROOT / "assignments" / "a1"))
    assert doc.tokens == "" and "broken.ipynb not read" in doc.notes[0]


def test_function_order_does_not_matter():
    f = "def f(a):\n    b = a * 2\n    return np.sum(b, axis=0) + np.max(b)\n"
    g = "def g(x):\n    y = np.exp(x) - 1\n    return np.linalg.norm(y, axis=1)\n"
    one = sim.Document.from_sections("one", [("c", _units(f + "\n\n" + g, ""))])
    two = sim.Document.from_sections("two", [("c", _units(g + "\n\n" + f, ""))])
    assert one.tokens == two.tokens


# -- configuration, archive, errors -----------------------------------------------------------
def _small_class(root):
    rng = np.random.default_rng(3)
    answers = {f"s{k}": synth.independent_answers(rng) for k in range(6)}
    answers["copier"] = synth.plant_copy(answers["s0"], "renamed", rng)
    synth.write_class(root, synth.SynthesizedClass(answers, set(), {}))
    return answers


def test_threshold_from_the_course_configuration_and_the_command_line(tmp_path, capsys):
    root = make_course(tmp_path / "course", config_extra="c.CoursekitSimilarity.threshold = 0.99\n")
    _small_class(root)
    out = tmp_path / "p.json"
    code, text, _ = run(capsys, "--course", root, "similarity", "a1", "--json", out)
    assert code == 0 and ">= 0.99" in text
    strict = {frozenset((p["a"], p["b"])): p["flagged"] for p in json.loads(out.read_text())}
    code, text, _ = run(
        capsys, "--course", root, "similarity", "a1", "--json", out, "--threshold", "0.5"
    )
    loose = {frozenset((p["a"], p["b"])): p["flagged"] for p in json.loads(out.read_text())}
    assert loose[frozenset(("s0", "copier"))]
    assert sum(loose.values()) >= sum(strict.values())


@pytest.mark.parametrize(
    "line, message",
    [
        ("c.CoursekitSimilarity.threshold = 1.5", "threshold must be in (0, 1]"),
        ("c.CoursekitSimilarity.noise = 0", "noise must be a positive integer"),
        ("c.CoursekitSimilarity.treshold = 0.5", "unknown setting"),
    ],
)
def test_bad_settings_are_course_errors(tmp_path, capsys, line, message):
    root = make_course(tmp_path / "course", config_extra=line + "\n")
    _small_class(root)
    code, _, err = run(capsys, "--course", root, "similarity", "a1")
    assert code == 2 and message in err


def test_unknown_assignment_and_no_submissions(tmp_path, capsys):
    root = make_course(tmp_path / "course")
    code, _, err = run(capsys, "--course", root, "similarity", "a9")
    assert code == 2 and "unknown assignment" in err
    code, _, err = run(capsys, "--course", root, "similarity", "a1")
    assert code == 2 and "no submissions" in err


def test_copy_from_an_earlier_term_is_flagged(tmp_path, capsys, monkeypatch):
    root = make_course(tmp_path / "course")
    answers = _small_class(root)
    archive = tmp_path / "archive"
    old = synth.SynthesizedClass(
        {"olduser": synth.plant_copy(answers["s3"], "all", np.random.default_rng(0))}, set(), {}
    )
    synth.write_class(archive / "2025-fall", old)
    out = tmp_path / "p.json"
    monkeypatch.chdir(tmp_path)  # --archive is relative to where the command runs
    code, _, _ = run(
        capsys, "--course", root, "similarity", "a1", "--archive", "archive", "--json", out
    )
    assert code == 0
    pairs = {frozenset((p["a"], p["b"])): p for p in json.loads(out.read_text())}
    found = pairs[frozenset(("s3", "archive:2025-fall/submitted/olduser"))]
    assert found["flagged"]
    # archived students are compared with this term's students only
    assert not any(p["a"].startswith("archive:") for p in pairs.values())


def test_fragment_for_the_report(class_run):
    root, _, _ = class_run
    result = sim.similarity(sim.Course.locate(root), "a1", threshold=0.9, workers=1)
    fragment = sim.render_fragment(result)
    assert fragment.startswith('<section class="coursekit-similarity">')
    assert fragment.rstrip().endswith("</section>")
    assert "<html" not in fragment and sim.DISCLAIMER.split(".")[0] in fragment


def test_class_wide_overlap_equals_copydetects_pairwise_comparison():
    from copydetect import compare_files

    rng = np.random.default_rng(8)
    release = sim.Release.read(ROOT / "assignments" / "a1")
    docs = []
    for k in range(6):
        units = []
        for gid, code in synth.independent_answers(rng, blank=0.0).items():
            units += sim.cell_units(code, release.answer_cells[gid], sim.bound_names(code))
        docs.append(sim.Document.from_sections(f"s{k}", [("all", units)]))
    docs.append(sim.Document.from_sections("copy", [("all", _units_of(docs[0]))]))
    settings = sim.Settings(noise=5)
    fps = [sim._fingerprint(d, settings, None) for d in docs]
    sims = sim.overlap_matrix(fps, settings.noise)
    checked = 0
    for a in range(len(docs)):
        for b in range(len(docs)):
            if a != b and fps[a].hashes & fps[b].hashes:
                _, (sa, sb), _ = compare_files(fps[a], fps[b])
                assert sims[a, b] == pytest.approx(sa) and sims[b, a] == pytest.approx(sb)
                checked += 1
    assert checked >= 10 and sims[0, -1] == pytest.approx(1.0)


def _units_of(document):
    return [sim.Unit(document.text, document.tokens, [tuple(s) for s in document.spans])]


def test_documents_read_in_parallel_are_the_ones_read_in_one_process(class_run):
    root, klass, _ = class_run
    course = sim.Course.locate(root)
    release = sim.Release.read(root / "assignments" / "a1")
    jobs = [
        (s, sorted(course.submission_directory("a1", s).glob("*.ipynb")))
        for s in course.students("a1")
    ]
    one = sim.read_documents(jobs, release, workers=1)
    two = sim.read_documents(jobs, release, workers=2)
    assert [(d.owner, d.text, d.tokens) for d in one] == [(d.owner, d.text, d.tokens) for d in two]
    assert len({d.tokens for d in one}) > len(one) // 2


def test_a_group_copying_in_a_small_class_is_not_taken_for_an_idiom(tmp_path, capsys):
    root = make_course(tmp_path / "course")
    rng = np.random.default_rng(21)
    answers = {f"s{k}": synth.independent_answers(rng) for k in range(5)}
    for k, kind in enumerate(("renamed", "comments", "loops")):
        answers[f"copy{k}"] = synth.plant_copy(answers["s1"], kind, rng)
    synth.write_class(root, synth.SynthesizedClass(answers, set(), {}))
    out = tmp_path / "p.json"
    assert run(capsys, "--course", root, "similarity", "a1", "--json", out)[0] == 0
    flagged = {frozenset((p["a"], p["b"])) for p in json.loads(out.read_text()) if p["flagged"]}
    group = ["s1", "copy0", "copy1", "copy2"]
    assert all(frozenset((a, b)) in flagged for a in group for b in group if a < b)


def test_highlight_offsets_point_at_the_tokens_they_stand_for():
    source = (
        '"""A module docstring."""\n\n\ntotal = 0\nfor value in range(10):\n    total += value\n'
    )
    (unit,) = _units(source, "")
    shown = [unit.text[a:b] for a, b in unit.spans]
    assert shown[:4] == ["total", "=", "0", ""] and "range" in shown and "+=" in shown


def test_report_section_says_why_there_is_nothing_to_compare(tmp_path):
    root = make_course(tmp_path / "course")
    section = sim.report_section(sim.Course.locate(root), "a1")
    assert section.startswith('<section class="coursekit-similarity">')
    assert "Not compared" in section and "no submissions" in section
    _small_class(root)
    section = sim.report_section(sim.Course.locate(root), "a1")
    assert "copier" in section and "<table>" in section


def test_keyword_argument_names_stay_when_a_variable_of_that_name_is_renamed():
    one = _units(
        "def f(x, eps=1e-5):\n    y, axis = x, 0\n    return g(y, axis=axis, eps=eps)\n", ""
    )
    two = _units("def f(x, eps=1e-5):\n    z, a = x, 0\n    return g(z, axis=a, eps=eps)\n", "")
    assert one[0].key == two[0].key
    assert "axis" in one[0].key and one[0].key.count("V") >= 4
