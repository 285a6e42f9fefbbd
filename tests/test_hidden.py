"""Hidden tests graded apart from the student's kernel (coursekit.instructor.hidden).

These tests run the real runner process (``python -I -m coursekit.grading.runner``), without
the sandbox, so they are fast; tests/test_attacks.py grades whole submissions with it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from coursekit.grading.core import case_rng, get_task, task_names
from coursekit.grading.state import decode_state, encode_state
from coursekit.instructor import hidden
from coursekit.instructor.hidden import (
    HiddenCheck,
    ProcessFactory,
    build_runtime,
    disable_definitions,
    dumps_by_value,
    extract_units,
    hidden_checks,
    load_secret,
    pickled_harness,
    run_hidden_checks,
    state_names,
    strip_hidden,
)

SOFTMAX = """
import numpy as np

EPS = np.finfo(float).eps
SCALE = 2 * 0.5


def softmax(logits):
    shifted = logits - np.max(logits, axis=1, keepdims=True)
    exps = np.exp(shifted) * SCALE
    return exps / np.sum(exps, axis=1, keepdims=True)
"""

WRONG = """
import numpy as np


def softmax(logits):
    exps = np.exp(logits - np.max(logits))
    return exps / exps.sum()
"""


def plain_factory(tasks):
    return [sys.executable, "-I", "-m", "coursekit.grading.runner"], {"PATH": "/usr/bin:/bin"}


def grade(cells, checks, *, secret=b"s" * 32, timeout=30.0, state=None):
    units = extract_units(list(enumerate(cells, 1)))
    return run_hidden_checks(
        checks,
        units,
        ProcessFactory(plain_factory),
        secret=secret,
        timeout=timeout,
        state=state,
    )


SOFTMAX_CHECK = HiddenCheck("a1.softmax", 11, ("softmax",))


def test_hidden_regions_are_removed_and_checks_parsed():
    source = (
        "assert True\n### BEGIN HIDDEN TESTS\nfrom coursekit.grading import check\n"
        'check("a1.softmax", softmax, seed=11)\ncheck("a2.relu", (relu_forward, relu_backward), '
        "seed=12)\n### END HIDDEN TESTS\nprint('after')\n"
    )
    assert strip_hidden(source) == "assert True\nprint('after')\n"
    assert "seed" not in strip_hidden(source)
    assert hidden_checks(source) == [
        HiddenCheck("a1.softmax", 11, ("softmax",)),
        HiddenCheck("a2.relu", 12, ("relu_forward", "relu_backward")),
    ]
    assert hidden_checks("check(forward, backward, inputs, seed=0)") == []


def test_only_definitions_cross_and_lines_keep_their_numbers():
    cell = textwrap.dedent(
        """\
        %matplotlib inline
        import numpy as np
        model = train()
        LIMIT = np.sqrt(4.0)
        TABLE = {k: v for k, v in precomputed()}
        @staticmethod
        def f(x):
            return x + LIMIT
        print(f(1))
        """
    )
    units = extract_units([(7, cell)])
    ((label, source),) = units.units
    assert label == "cell 7"
    lines = source.splitlines()
    assert lines[1] == "import numpy as np" and lines[3] == "LIMIT = np.sqrt(4.0)"
    assert lines[5] == "@staticmethod" and lines[6] == "def f(x):"
    assert "train()" not in source and "precomputed" not in source and "print" not in source
    assert units.defined >= {"np", "LIMIT", "f"} and units.computed == {"model", "TABLE"}
    bad = extract_units([(3, "def f(:\n  pass")])
    assert bad.units == [] and "cell 3 has a syntax error (line 1)" in bad.notes[0]


def test_state_names_follow_the_functions_a_graded_function_uses():
    cells = [
        "import numpy as np\nmean = X.mean()\nmodel = fit()",
        "def prep(X):\n    return (X - mean) / std\n\n"
        "def final_predict(X):\n    local = 1\n    return model.predict(prep(X)) + local + len(X)",
    ]
    units = extract_units(list(enumerate(cells, 1)))
    assert state_names(units, ["final_predict"]) == ["mean", "model", "std"]


def test_a_correct_function_passes_and_a_wrong_one_fails_with_a_message():
    verdict = grade([SOFTMAX], [SOFTMAX_CHECK])[SOFTMAX_CHECK]
    assert verdict.status == "passed", verdict.message
    verdict = grade([WRONG], [SOFTMAX_CHECK])[SOFTMAX_CHECK]
    assert verdict.status == "failed"
    assert verdict.message.startswith("a1.softmax: ") and "hidden cases passed" in verdict.message


def test_errors_name_the_students_line_and_missing_functions_are_named():
    raising = "def softmax(logits):\n    x = 1\n    return logits / (x - 1)[None]\n"
    verdict = grade([raising], [SOFTMAX_CHECK])[SOFTMAX_CHECK]
    assert verdict.status == "error"
    assert "cell 1, line 3: return logits / (x - 1)[None]" in verdict.message
    verdict = grade(["import numpy as np"], [SOFTMAX_CHECK])[SOFTMAX_CHECK]
    assert verdict.status == "missing" and "softmax is not defined" in verdict.message
    computed = "import numpy as np\nsoftmax = make_softmax()"
    verdict = grade([computed], [SOFTMAX_CHECK])[SOFTMAX_CHECK]
    assert "computed by a statement the hidden tests do not run" in verdict.message


def test_the_secret_decides_the_inputs_and_is_stable():
    task = get_task("a1.softmax")
    first = task.draw_cases(11, b"a" * 32)
    again = task.draw_cases(11, b"a" * 32)
    other = task.draw_cases(11, b"b" * 32)
    public = task.draw_cases(11)
    moved_cases = plain_cases = 0
    for case, same, moved, plain in zip(first, again, other, public):
        assert np.array_equal(case.args[0], same.args[0])
        moved_cases += not np.array_equal(case.args[0], moved.args[0])
        plain_cases += not np.array_equal(case.args[0], plain.args[0])
    # a few edge cases are constants (all logits equal); every drawn case moves
    assert moved_cases >= len(first) // 2 and plain_cases >= len(first) // 2
    assert case_rng("a1.softmax", 11).integers(1 << 30) == np.random.default_rng(11).integers(
        1 << 30
    )


def test_secret_is_created_once_private_and_reused(tmp_path):
    secret = load_secret(tmp_path)
    assert len(secret) == 32 and load_secret(tmp_path) == secret
    assert (tmp_path / "secret").stat().st_mode & 0o077 == 0
    (tmp_path / "secret").write_text("zz")
    with pytest.raises(ValueError, match="not hexadecimal"):
        load_secret(tmp_path)


def test_writing_to_the_channel_out_of_turn_voids_the_rest():
    forger = SOFTMAX + textwrap.dedent(
        """
        import os, struct, json


        def _forge():
            body = json.dumps({"label": "x", "error": None, "output": None}).encode()
            for fd in range(3, 12):
                try:
                    os.write(fd, struct.pack(">Q", len(body)) + body)
                except OSError:
                    continue


        class _Now:
            _forge()
        """
    )
    checks = [SOFTMAX_CHECK, HiddenCheck("a1.logsumexp", 12, ("logsumexp",))]
    verdicts = grade([forger], checks)
    assert {v.status for v in verdicts.values()} == {"integrity"}


def test_exit_crash_and_timeout_cost_only_that_check():
    exits = "import os\n\ndef softmax(logits):\n    os._exit(3)\n"
    logsumexp = (
        "import numpy as np\n\ndef logsumexp(z):\n    m = z.max(axis=1, keepdims=True)\n"
        "    return np.log(np.exp(z - m).sum(axis=1)) + m[:, 0]\n"
    )
    checks = [SOFTMAX_CHECK, HiddenCheck("a1.logsumexp", 12, ("logsumexp",))]
    verdicts = grade([exits, logsumexp], checks)
    assert (
        verdicts[checks[0]].status == "error"
        and "the process that runs your code ended (an exit" in verdicts[checks[0]].message
    )
    assert verdicts[checks[1]].status == "passed"
    spins = "def softmax(logits):\n    while True:\n        pass\n"
    verdicts = grade([spins, logsumexp], checks, timeout=2.0)
    assert verdicts[checks[0]].status == "timeout"
    assert verdicts[checks[1]].status == "passed"


def test_the_runtime_disables_every_reference_and_keeps_the_rest(tmp_path):
    tasks = [get_task(name) for name in task_names() if name.startswith("a1.")]
    runtime = build_runtime(tmp_path, tasks)
    assert build_runtime(tmp_path, tasks) == runtime  # cached by content
    assert not (runtime / "grading" / "tasks").exists()
    assert not (runtime / "instructor").exists() and not (runtime / "cli").exists()
    probe = textwrap.dedent(
        """
        import sys, numpy as np
        sys.path.insert(0, sys.argv[1])
        import coursekit.ops as ops, coursekit.layers as layers
        assert ops.__file__.startswith(sys.argv[1]), ops.__file__
        out = []
        for name in ("softmax", "logsumexp", "log_softmax", "pairwise_distances"):
            try:
                getattr(ops, name)(np.ones((2, 3)), *([np.ones((2, 3))] if "pair" in name else []))
                out.append(name + ":works")
            except RuntimeError as exc:
                out.append(name + ":" + str(exc).split(" is not")[0])
        out.append(str(layers.affine_forward(np.ones((1, 2)), np.ones((2, 3)), np.zeros(3))[0]))
        print("|".join(out))
        """
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", probe, str(runtime.parent)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == (
        "softmax:coursekit.ops.softmax|logsumexp:coursekit.ops.logsumexp|"
        "log_softmax:coursekit.ops.log_softmax|"
        "pairwise_distances:coursekit.ops.pairwise_distances|[[2. 2. 2.]]"
    )


def test_disabling_a_function_disables_its_private_helpers():
    source = (
        "def _core(x):\n    return x + 1\n\n\ndef public(x):\n    return _core(x)\n\n\n"
        "def other(x):\n    return x\n\n\nclass Opt:\n    def step(self):\n        return 1\n"
    )
    ns = {}
    exec(disable_definitions(source, {"public", "Opt"}, "m"), ns)
    assert ns["other"](2) == 2
    for call in (lambda: ns["public"](1), lambda: ns["_core"](1), lambda: ns["Opt"]()):
        with pytest.raises(RuntimeError, match="is not available while the hidden tests run"):
            call()


def test_no_reference_or_mistake_is_shipped_to_the_runner():
    """The harness is pickled by value: nothing that computes an answer may travel with it."""
    for name in task_names():
        task = get_task(name)
        payload = dumps_by_value(
            {"run": pickled_harness(task.run), "case": task.draw_cases(1, b"k" * 32)}
        )
        references = task.reference if isinstance(task.reference, tuple) else (task.reference,)
        implementations = [*references, *(m.implementation for m in task.mistakes)]
        for fn in implementations:
            code = getattr(fn, "__code__", None)
            if code is not None and fn.__module__.startswith("coursekit.grading.tasks"):
                assert code.co_code not in payload, (name, fn)


def test_notebook_values_cross_as_plain_data_only():
    from coursekit.models import FullyConnectedNet

    model = FullyConnectedNet(8, [5], 3, seed=0)
    values = {
        "model": model,
        "mean": np.arange(8.0),
        "n": 3,
        "nan": float("nan"),
        "fn": lambda x: x,
        "rng": np.random.default_rng(4),
    }
    state = encode_state(values)
    assert "fn (a function)" in state["skipped"]
    back = decode_state(json.dumps(state))
    X = np.random.default_rng(0).normal(size=(4, 8))
    assert np.array_equal(back["model"].predict(X), model.predict(X))
    assert back["fn"] is None and np.isnan(back["nan"]) and back["n"] == 3
    assert back["rng"].integers(1000) == np.random.default_rng(4).integers(1000)
    forged = {"values": {"x": {"object": "coursekit.instructor.grade.GradingJob"}}}
    with pytest.raises(ValueError, match="cannot be passed"):
        decode_state(json.dumps(forged))
    pickled = {"values": {"x": {"array": {"dtype": "|O", "shape": [1], "data": ""}}}}
    with pytest.raises(ValueError, match="hold numbers"):
        decode_state(json.dumps(pickled))


def test_a_task_with_notebook_state_gets_the_exported_values():
    from coursekit.data import digits_splits
    from coursekit.grading.state import encode_state

    data = digits_splits(seed=0)
    cells = [
        "import numpy as np\nX_ref = data['X_train']",
        "def final_predict(X):\n"
        "    d = ((X[:, None, :] - X_ref[None]) ** 2).sum(-1)\n"
        "    return y_ref[np.argmin(d, axis=1)]\n",
    ]
    check = HiddenCheck("a5.final_model", 5511, ("final_predict",))
    exported = json.dumps(encode_state({"X_ref": data["X_train"], "y_ref": data["y_train"]}))
    names_asked = []

    def state(names):
        names_asked.extend(names)
        return exported

    verdict = grade(cells, [check], state=state)[check]
    assert names_asked == ["X_ref", "y_ref"]
    assert verdict.status == "passed", verdict.message
    verdict = grade(cells, [check], state=lambda names: None)[check]
    assert verdict.status == "error" and "X_ref" in verdict.message


def test_hidden_module_names_its_statuses():
    assert hidden.TaskVerdict("t", "passed").passed
    assert not hidden.TaskVerdict("t", "integrity", "x").passed


PROBE = """
import os, sys
out = []
try:
    import coursekit.ops as _o
    _o.softmax(1)
    out.append("reference ran")
except Exception as exc:
    out.append("reference: " + str(exc).split(" is not")[0])
try:
    import torch
    torch.zeros(1)
    out.append("torch ran")
except Exception as exc:
    out.append("torch: " + type(exc).__name__)
out.append("home " + str(os.listdir(os.environ["HOME"])))
out.append("env " + str(sorted(os.environ)))
raise SystemExit(" | ".join(out))
"""


@pytest.mark.parametrize("bubblewrap", [True, False])
def test_the_sandboxed_runner_has_no_reference_torch_or_grader_environment(
    tmp_path, monkeypatch, bubblewrap
):
    from coursekit.grading.runner import read_frame, write_frame
    from coursekit.instructor.sandbox import Limits, bwrap_usable, runner_command

    if not bubblewrap:
        monkeypatch.setenv("COURSEKIT_NO_BWRAP", "1")
    elif not bwrap_usable():
        pytest.skip("bubblewrap is unusable here")
    monkeypatch.setenv("COURSEKIT_TEST_SECRET", "hunter2")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    for path in (tmp_path, scratch):
        path.chmod(0o755)
    argv, env = runner_command(
        [get_task("a1.softmax")],
        scratch_dir=str(scratch),
        runtime_root=str(scratch / "runtimes"),
        hide=(str(tmp_path),),
        limits=Limits(),
    )
    assert "COURSEKIT_TEST_SECRET" not in env
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    try:
        write_frame(
            proc.stdin.fileno(),
            __import__("pickle").dumps({"units": [("cell 1", PROBE)], "state": None}),
        )
        reply = json.loads(read_frame(proc.stdout.fileno()))
    finally:
        proc.kill()
    (note,) = reply["notes"]
    assert "reference: coursekit.ops.softmax" in note
    assert "hunter2" not in note and "COURSEKIT_TEST_SECRET" not in note
    if bubblewrap:
        assert "torch: " in note and "home []" in note


def test_a_malformed_answer_in_turn_is_integrity_not_a_crash():
    nested = textwrap.dedent(
        """
        import os, struct, time


        def softmax(logits):
            body = b'{"label": "x", "output": ' + b'{"tuple": [' * 100000 + b']}' * 100000 + b'}'
            for fd in range(3, 12):
                try:
                    os.write(fd, struct.pack(">Q", len(body)) + body)
                except OSError:
                    continue
            time.sleep(5)
            return logits
        """
    )
    verdicts = grade([nested], [SOFTMAX_CHECK, HiddenCheck("a1.logsumexp", 12, ("logsumexp",))])
    assert {v.status for v in verdicts.values()} == {"integrity"}


def test_text_that_cannot_be_encoded_is_escaped_in_messages():
    raising = 'def softmax(logits):\n    raise ValueError("bad \\ud800 text")\n'
    verdict = grade([raising], [SOFTMAX_CHECK])[SOFTMAX_CHECK]
    assert verdict.status == "error" and "bad \\ud800 text" in verdict.message
    verdict.message.encode("utf-8")


def test_a_runner_that_stops_reading_cannot_hang_the_grader():
    stops_reading = textwrap.dedent(
        """
        import sys, time


        def dropout_forward(x, p, *, mode, rng):
            frame = sys._getframe()
            while frame is not None:
                if "read_frame" in frame.f_globals and "serve" in frame.f_globals:
                    frame.f_globals["read_frame"] = lambda *a, **k: time.sleep(10**6)
                frame = frame.f_back
            return x, None
        """
    )
    check = HiddenCheck("a4.dropout_forward", 4401, ("dropout_forward",))
    started = __import__("time").monotonic()
    verdict = grade([stops_reading], [check], timeout=5.0)[check]
    assert verdict.status == "timeout", verdict
    assert __import__("time").monotonic() - started < 60


def test_grader_only_data_never_reaches_the_students_function():
    peeks = textwrap.dedent(
        """
        import sys
        import numpy as np


        def xavier_init(fan_in, fan_out, *, rng):
            frame = sys._getframe(1)
            seen = []
            while frame is not None:
                case = frame.f_locals.get("case")
                if case is not None:
                    seen.append(getattr(case, "grader", None))
                frame = frame.f_back
            assert seen and not any(seen), seen
            return rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / (fan_in + fan_out))
        """
    )
    check = HiddenCheck("a5.xavier_init", 5502, ("xavier_init",))
    verdict = grade([peeks], [check])[check]
    assert verdict.status == "passed", verdict.message


def test_each_submission_draws_its_own_inputs_and_messages_are_bounded():
    units = extract_units([(1, SOFTMAX)])
    other = extract_units([(1, SOFTMAX + "\n# a table of leaked inputs\n")])
    course = b"c" * 32
    assert hidden.submission_secret(course, units) == hidden.submission_secret(course, units)
    assert hidden.submission_secret(course, units) != hidden.submission_secret(course, other)
    task = get_task("a1.softmax")
    first = task.draw_cases(11, hidden.submission_secret(course, units))
    second = task.draw_cases(11, hidden.submission_secret(course, other))
    assert not np.array_equal(first[0].args[0], second[0].args[0])
    leaky = "def softmax(logits):\n    raise ValueError('LEAK' + repr(logits.tolist()) * 100)\n"
    verdict = grade([leaky], [SOFTMAX_CHECK])[SOFTMAX_CHECK]
    assert all(len(line) < 400 for line in verdict.message.splitlines())


def test_calling_a_disabled_reference_is_an_integrity_problem_with_evidence(tmp_path):
    import os

    from coursekit.instructor.hidden import UNAVAILABLE, _stub

    # the stub's own words are what the verdict recognises
    ns = {}
    exec(
        compile(
            __import__("ast").Module(_stub("softmax", "coursekit.ops.softmax", False), []),
            "s",
            "exec",
        ),
        ns,
    )  # noqa: E501
    with pytest.raises(RuntimeError) as info:
        ns["softmax"](1)
    assert UNAVAILABLE.search(str(info.value)).group(1) == "coursekit.ops.softmax"
    runtime = build_runtime(tmp_path, [get_task("a1.softmax")])
    calls = "from coursekit.ops import softmax as _ref\n\ndef softmax(logits):\n    return _ref(logits)\n"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ""}

    def start(tasks):
        boot = "import sys; sys.path.insert(0, sys.argv[1]); from coursekit.grading.runner import main; main()"
        return [sys.executable, "-I", "-c", boot, os.fspath(runtime.parent)], env

    units = extract_units([(1, calls)])
    verdict = run_hidden_checks(
        [SOFTMAX_CHECK], units, ProcessFactory(start), secret=b"s" * 32, timeout=30
    )[SOFTMAX_CHECK]
    assert verdict.status == "integrity"
    assert "coursekit's own implementation (coursekit.ops.softmax)" in verdict.message
