"""Every lecture runs top to bottom with a real Jupyter kernel, and its key claims hold.

Each lecture asserts its own claims in code cells; on top of that, this test reads a few
variables out of the executed kernel and checks the claims the course is built on.
Execution times are recorded in ``benchmarks/results.json`` by the benchmark suite,
not asserted here.
"""

from __future__ import annotations

import math
from pathlib import Path

import nbformat
import pytest

from coursekit.notebooks import run_notebook

LECTURES = sorted((Path(__file__).resolve().parents[1] / "lectures").glob("L[0-9][0-9]_*.ipynb"))

# lecture prefix -> {expression evaluated in the lecture's kernel: (predicate, meaning)}
CLAIMS = {
    "L02": {"best_h": (lambda v: 1e-7 <= v <= 1e-3, "centered differences are best near h=1e-5")},
    "L05": {"tanh_small_last_std": (lambda v: v < 1e-4, "tanh with std 0.01 collapses")},
    "L07": {
        "np.max(gap_plain)": (lambda v: v < 1e-12, "weight decay equals L2 for plain SGD"),
        "capacity[2].mean(axis=0)[0]": (lambda v: v < 0.5, "a 2-unit-wide net underfits"),
        "capacity[128].mean(axis=0)[0] - capacity[128].mean(axis=0)[1]": (
            lambda v: v > 0.3,
            "a 128-unit-wide net overfits (train - validation accuracy)",
        ),
    },
    "L09": {
        "abs(loss10 / np.log(10) - 1)": (lambda v: v < 0.02, "initial loss is ln C"),
        "tiny_train_acc": (lambda v: v == 1.0, "a tiny subset is memorized"),
    },
    "L08": {
        "np.max(np.abs(np.asarray(adam_l2_trajectory) - np.asarray(adamw_trajectory)))": (
            lambda v: v > 1e-3,
            "Adam+L2 and AdamW trajectories differ",
        ),
        "gap_momentum[-1]": (lambda v: v > 1e-3, "L2 and decoupled decay differ with momentum"),
        "warm_summary[60] - warm_summary[0]": (
            lambda v: v >= 2,
            "warmup rescues runs that diverge at a high learning rate",
        ),
        "abs(big_scaled - small) / small": (
            lambda v: v < 0.1,
            "batch x4 with learning rate x4 matches the small-batch validation loss",
        ),
    },
}


def test_there_are_ten_lectures():
    assert len(LECTURES) == 10, [p.name for p in LECTURES]


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("path", LECTURES, ids=[p.stem for p in LECTURES])
def test_lecture_runs_and_its_claims_hold(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), (
        f"{path.name} is committed with outputs; clear them"
    )
    claims = CLAIMS.get(path.stem[:3], {})
    values, _ = run_notebook(path, cwd=tmp_path, timeout=300, read=claims)
    for expression, (holds, meaning) in claims.items():
        value = values[expression]
        assert math.isfinite(value) and holds(value), (
            f"{path.name}: {meaning} should hold, but {expression} = {value!r}"
        )


# A stand-in for a missing PyTorch: any `import torch` in the kernel raises ImportError.
_NO_TORCH = (
    """raise ImportError("No module named 'torch' (hidden by the no-PyTorch lecture test)")\n"""
)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_l08_runs_without_pytorch(tmp_path):
    """lectures/README.md promises that L08 runs without PyTorch (only L10 needs it)."""
    import os

    from nbclient import NotebookClient

    from coursekit.notebooks import poll_shell_in_slices

    (tmp_path / "hide" / "torch").mkdir(parents=True)
    (tmp_path / "hide" / "torch" / "__init__.py").write_text(_NO_TORCH)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(tmp_path / "hide"), env.get("PYTHONPATH")) if p
    )
    (path,) = [p for p in LECTURES if p.stem.startswith("L08")]
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    with client.setup_kernel(env=env):
        poll_shell_in_slices(client)
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
    printed = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
    )
    assert "PyTorch is not installed" in printed, "the torch stand-in was not used"
    assert "L-BFGS needs PyTorch" in printed
