"""The benchmark suite runs end to end (``--quick``) and writes results in the documented schema.

Targets are not enforced here: quick shapes are too small for the ratios to mean anything.
What is checked is that every benchmark still runs (each one also asserts that coursekit and
its baseline compute the same thing) and that the JSON has what the README table needs.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "benchmarks" / "run.py"
COMPARED = {
    "pairwise_distances",
    "loops_vs_vectorized",
    "vectorized_vs_matmul",
    "batchnorm_fwd_bwd",
    "layernorm_fwd_bwd",
    "adam_step",
    "softmax_cross_entropy_fwd_bwd",
    "training_epoch_digits",
}
MACHINE_KEYS = {"cpu", "cores", "threads", "numpy", "numpy_blas", "torch", "torch_blas"}


def run_suite(*args: str, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(RUN), "--quick", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def check_entry(entry: dict) -> None:
    name = entry["name"]
    assert isinstance(entry["shape"], str) and entry["shape"], name
    assert entry["ours_median_s"] > 0 and math.isfinite(entry["ours_median_s"]), name
    assert len(entry["ours_times_s"]) == entry["repeats"] >= 1, name
    if entry["baseline"] is None:  # record-only: a notebook's execution time
        assert entry["ratio"] is None and entry["baseline_median_s"] is None, name
        return
    assert entry["baseline_median_s"] > 0, name
    ours, base = entry["ours_median_s"], entry["baseline_median_s"]
    # the ratio is oriented so that the target reads naturally: time ratio or speed-up
    speedup = entry["ratio_is"].startswith("baseline / ours")
    expected = base / ours if speedup else ours / base
    assert entry["ratio"] == pytest.approx(expected), name
    target = entry["target"]
    if target is None:  # a figure for the lectures, with nothing to meet
        assert entry["met"] is None, name
        return
    assert target["op"] == (">=" if speedup else "<=") and target["value"] > 0, name
    met = (
        entry["ratio"] <= target["value"]
        if target["op"] == "<="
        else entry["ratio"] >= target["value"]
    )
    assert entry["met"] is met, name
    if entry.get("ratio_range") is not None:  # the spread holds every run's ratio
        low, high = entry["ratio_range"]
        assert low <= high and low > 0, name


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_quick_run_writes_every_benchmark_in_the_schema(tmp_path):
    out = tmp_path / "quick.json"
    proc = run_suite("--json", str(out), timeout=880)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["mode"] == "quick" and not report["errors"]
    assert MACHINE_KEYS <= set(report["machine"])
    names = {e["name"] for e in report["benchmarks"]}
    assert COMPARED <= names, names
    # quick mode runs one lecture and skips the long grading benchmark, saying why
    assert any(n.startswith("notebook:lectures/") for n in names), names
    assert "grading" in report["skipped"]
    for entry in report["benchmarks"]:
        check_entry(entry)
    loops = next(e for e in report["benchmarks"] if e["name"] == "loops_vs_vectorized")
    assert loops["baseline_extrapolated"] and "extrapolated" in loops["notes"]
    assert loops["target"] is None  # retired: the vectorized call is held to the matmul
    matmul = next(e for e in report["benchmarks"] if e["name"] == "vectorized_vs_matmul")
    assert matmul["target"] == {"op": "<=", "value": 2.0}
    assert "| benchmark |" in proc.stdout  # the printed table


@pytest.mark.timeout(300)
def test_only_and_merge_combine_runs(tmp_path):
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    proc = run_suite("--only", "loops", "--json", str(first), timeout=280)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert [e["name"] for e in json.loads(first.read_text())["benchmarks"]] == [
        "vectorized_vs_matmul",
        "loops_vs_vectorized",
    ]
    proc = run_suite("--only", "softmax", "--json", str(second), "--merge", str(first), timeout=280)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(second.read_text())
    entries = {e["name"]: e for e in report["benchmarks"]}
    assert set(entries) == {
        "softmax_cross_entropy_fwd_bwd",
        "loops_vs_vectorized",
        "vectorized_vs_matmul",
    }
    assert entries["loops_vs_vectorized"]["from_run"]["file"] == "first.json"
    assert "from_run" not in entries["softmax_cross_entropy_fwd_bwd"]
    for entry in entries.values():
        check_entry(entry)


def test_a_partial_run_never_overwrites_the_committed_results(tmp_path):
    committed = ROOT / "benchmarks" / "results.json"
    before = committed.read_bytes()
    proc = subprocess.run(
        [sys.executable, str(RUN), "--only", "softmax", "--json", str(committed)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "partial run would overwrite results.json" in proc.stderr
    assert committed.read_bytes() == before


def test_unknown_benchmark_name_is_rejected():
    proc = subprocess.run(
        [sys.executable, str(RUN), "--only", "nonsense"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "nonsense" in proc.stderr and "invalid choice" in proc.stderr


@pytest.mark.slow
def test_grading_benchmark_reports_its_overhead_entries(monkeypatch):
    """The full grading benchmark's entries, on two submissions: the speedup and, per
    assignment, the overhead per notebook over bare execution (a real run of both tools)."""
    sys.path.insert(0, str(RUN.parent))
    import run as suite

    monkeypatch.setattr(suite, "GRADING", {"n": 2, "repeats": 1, "overhead": True})
    monkeypatch.setattr(suite, "OVERHEAD_ALSO", {})
    results = suite.bench_grading(quick=False, repeats=1)
    names = [r.name for r in results]
    assert names[0] == "grading" and len(names) == 3 and names[1].startswith("grading_overhead:")
    assert names[2].startswith("grading_overhead_strict:")  # against a bare run that kills
    strict = results[2].as_dict()
    assert strict["target"] is None and strict["repeats"] == 2
    assert math.isfinite(strict["ours_median_s"]) and "bare median" in strict["notes"]
    overhead = results[1].as_dict()
    assert overhead["target"] == {"op": "<=", "value": 0.3}
    assert overhead["repeats"] == 2  # one difference per submission
    assert math.isfinite(overhead["ours_median_s"]) and abs(overhead["ours_median_s"]) < 30
    assert "bare median" in overhead["notes"] and "grading step median" in overhead["notes"]


def test_times_below_their_floor_print_with_a_minus_sign():
    sys.path.insert(0, str(RUN.parent))
    import run as suite

    assert suite._fmt_time(-0.844) == "−844.00 ms" and suite._fmt_time(-1.5) == "−1.50 s"
    assert suite._fmt_time(2e-5) == "20.0 µs" and suite._fmt_time(None) == "-"
