"""coursekit's performance suite: each reference implementation against its baseline.

Usage::

    python benchmarks/run.py                    # full run: writes results.json and performance.png
    python benchmarks/run.py --quick            # small shapes, few repeats (what CI runs)
    python benchmarks/run.py --only layernorm adam --json /tmp/out.json

Every figure is the median of several timed runs after a warm-up. Each benchmark times
coursekit and its baseline **in the same run, interleaved** (ours, baseline, baseline, ours,
...), so the ratio stays meaningful on a loaded machine even when the absolute times do not. PyTorch
and the BLAS behind numpy both get the same number of threads (2 unless the environment
variable ``COURSEKIT_BENCH_THREADS`` says otherwise); the BLAS thread count has to be set
before numpy is imported, which is why this script sets it at the very top.

The JSON holds the machine description and one entry per benchmark: ``name``, ``shape``,
``ours_median_s``, ``baseline``, ``baseline_median_s``, ``ratio`` (see ``ratio_is``),
``target`` (``{"op": "<=" | ">=", "value": x}``), ``met`` and ``notes``, plus every single
time and ``ratio_of_minimums``. Record-only entries (notebook execution times) have no baseline.
"""

from __future__ import annotations

import os

THREADS = os.environ.get("COURSEKIT_BENCH_THREADS", "2")
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ[_var] = THREADS

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # coursekit from this checkout

SCHEMA_VERSION = 1


# -- timing -------------------------------------------------------------------------------------


def time_pair(
    ours: Callable[[], object],
    baseline: Callable[[], object] | None,
    repeats: int,
    warmup: int = 1,
    ours_number: int = 1,
    baseline_number: int = 1,
) -> tuple[list[float], list[float]]:
    """Wall times of ``ours`` and ``baseline``, interleaved, after ``warmup`` untimed calls each.

    The order alternates every repeat so neither side always runs right after the other's
    memory traffic; the garbage collector is off while a call is timed. With
    ``ours_number > 1`` each sample of ``ours`` is the mean of that many back-to-back calls
    (``timeit``'s ``number``), for functions too short to time one call at a time;
    ``baseline_number`` does the same for ``baseline``.
    """

    def repeated(fn, number):
        def run():
            for _ in range(number):
                fn()

        return run if number > 1 else fn

    ours = repeated(ours, ours_number)
    if baseline is not None:
        baseline = repeated(baseline, baseline_number)
    numbers = (ours_number, baseline_number)

    fns = [ours] if baseline is None else [ours, baseline]
    for fn in fns:
        for _ in range(warmup):
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for r in range(repeats):
        order = range(len(fns)) if r % 2 == 0 else reversed(range(len(fns)))
        for k in order:
            gc.collect()
            gc.disable()
            try:
                start = time.perf_counter()
                fns[k]()
                elapsed = time.perf_counter() - start
                times[k].append(elapsed / numbers[k])
            finally:
                gc.enable()
    return times[0], (times[1] if baseline is not None else [])


@dataclass
class Result:
    name: str
    shape: str
    ours_times: list[float]
    baseline: str | None = None
    baseline_times: list[float] = field(default_factory=list)
    # "time": ratio = ours / baseline (lower is better);
    # "speedup": ratio = baseline / ours (how many times faster ours is; higher is better)
    kind: str = "time"
    target: float | None = None
    notes: str = ""
    extra: dict = field(default_factory=dict)

    def ratio_range(self) -> list[float] | None:
        """``[min, max]`` of the per-repeat ratios (run i of ours against run i of the
        baseline, taken one after the other), or ``None`` without a baseline."""
        pairs = list(zip(self.ours_times, self.baseline_times))
        if not pairs or any(b <= 0 or o <= 0 for o, b in pairs):
            return None
        ratios = [o / b if self.kind == "time" else b / o for o, b in pairs]
        return [min(ratios), max(ratios)]

    def as_dict(self) -> dict:
        ours = statistics.median(self.ours_times) if self.ours_times else None
        base = statistics.median(self.baseline_times) if self.baseline_times else None
        ratio = ratio_min = None
        if base is not None and ours is not None:
            ratio = ours / base if self.kind == "time" else base / ours
            best, best_base = min(self.ours_times), min(self.baseline_times)
            ratio_min = best / best_base if self.kind == "time" else best_base / best
        op = "<=" if self.kind == "time" else ">="
        met = None
        if self.target is not None:
            value = ratio if base is not None else ours
            if value is None:
                met = False  # the benchmark did not produce a figure
            elif op == "<=":
                met = bool(value <= self.target)
            else:
                met = bool(value >= self.target)
        return {
            "name": self.name,
            "shape": self.shape,
            "ours_median_s": ours,
            "ours_times_s": self.ours_times,
            "baseline": self.baseline,
            "baseline_median_s": base,
            "baseline_times_s": self.baseline_times,
            "ratio": ratio,
            "ratio_is": (
                None
                if base is None
                else "ours / baseline (time)"
                if self.kind == "time"
                else "baseline / ours (speed-up)"
            ),
            # the same ratio from the fastest runs: less sensitive to a loaded machine
            "ratio_of_minimums": ratio_min,
            # the spread: the smallest and largest ratio of a run to the run taken with it
            "ratio_range": self.ratio_range(),
            "target": None if self.target is None else {"op": op, "value": self.target},
            "met": met,
            "repeats": len(self.ours_times),
            "notes": self.notes,
            **self.extra,
        }


# -- benchmarks ---------------------------------------------------------------------------------


def _torch():
    import torch

    torch.set_num_threads(int(THREADS))
    return torch


def bench_pairwise(quick: bool, repeats: int) -> list[Result]:
    torch = _torch()
    from coursekit.ops import pairwise_distances

    n, m, d = (400, 500, 64) if quick else (4000, 5000, 256)
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((n, d)), rng.standard_normal((m, d))
    tX, tY = torch.from_numpy(X), torch.from_numpy(Y)

    def baseline():
        return torch.cdist(tX, tY, compute_mode="use_mm_for_euclid_dist")

    ours_t, base_t = time_pair(lambda: pairwise_distances(X, Y), baseline, repeats)
    assert np.allclose(pairwise_distances(X, Y), baseline().numpy(), atol=1e-8)
    return [
        Result(
            "pairwise_distances",
            f"{n}x{m}x{d} float64",
            ours_t,
            "torch.cdist (use_mm_for_euclid_dist)",
            base_t,
            target=1.2,
        )
    ]


def _pairwise_native_python(X: list, Y: list) -> list:
    """The seed's first version: two loops over the points, the distance in plain Python."""
    return [[math.sqrt(sum((a - b) ** 2 for a, b in zip(x, y))) for y in Y] for x in X]


def bench_loops(quick: bool, repeats: int) -> list[Result]:
    from coursekit.ops import pairwise_distances, pairwise_distances_two_loops

    n, m, d = 300, 400, 128  # the seed's sizes, in quick mode too (the loops are what is slow)
    rows = 2 if quick else 20
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((n, d)), rng.standard_normal((m, d))
    Xs = X[:rows]
    scale = n / rows
    # One vectorized call takes about a millisecond: each sample is the mean of 20 calls in
    # a row, as timeit does. Timed one call at a time right after the loop (cold caches,
    # BLAS threads asleep) it is several times slower; that figure is kept as well.
    ours_t, loop_t = time_pair(
        lambda: pairwise_distances(X, Y),
        lambda: pairwise_distances_two_loops(Xs, Y),
        repeats,
        ours_number=20,
    )
    single_t, _ = time_pair(
        lambda: pairwise_distances(X, Y), lambda: pairwise_distances_two_loops(Xs, Y), repeats
    )
    np.testing.assert_allclose(
        pairwise_distances_two_loops(Xs, Y), pairwise_distances(X, Y)[:rows], rtol=1e-6
    )
    # For scale, the seed's native-Python version (no numpy inside the loops), on fewer rows.
    native_rows = 1 if quick else 4
    Xl, Yl = X[:native_rows].tolist(), Y.tolist()
    native_t, _ = time_pair(lambda: _pairwise_native_python(Xl, Yl), None, 3 if quick else 5)
    native_s = statistics.median(native_t) * n / native_rows
    loop_s = statistics.median(loop_t) * scale
    # The vectorized call against the machine's limit for it: the matrix product at its
    # heart (X @ Y.T, the same BLAS and threads), each sample again the mean of 20 calls.
    vec_t, mm_t = time_pair(
        lambda: pairwise_distances(X, Y),
        lambda: X @ Y.T,
        repeats,
        ours_number=20,
        baseline_number=20,
    )
    return [
        Result(
            "vectorized_vs_matmul",
            f"{n}x{m}x{d} float64",
            vec_t,
            "X @ Y.T (the matrix product inside it)",
            mm_t,
            target=2.0,
            notes=(
                "pairwise_distances is one matrix product plus the squared norms, their "
                "broadcast sum, a clip at 0 and a square root (four passes over the n x m "
                "result); the ratio says how close it is to the product alone"
            ),
        ),
        Result(
            "loops_vs_vectorized",
            f"{n}x{m}x{d} float64",
            ours_t,
            "coursekit.ops.pairwise_distances_two_loops",
            [t * scale for t in loop_t],
            kind="speedup",
            notes=(
                f"for the lecture, no target (the figure moves with the noise of the loop): "
                f"the two-loop version was timed on the first {rows} of {n} rows and "
                f"extrapolated linearly (x{scale:g}): its cost is the same for every row"
            ),
            extra={
                "baseline_extrapolated": True,
                "baseline_rows_timed": rows,
                "ours_calls_per_sample": 20,
                "ours_single_call_median_s": statistics.median(single_t),
                "ratio_single_call": loop_s / statistics.median(single_t),
                "native_python_two_loops_s": native_s,
                "ratio_vs_native_python": native_s / statistics.median(ours_t),
            },
        ),
    ]


def _norm_inputs(quick: bool):
    n, d = (256, 128) if quick else (2048, 1024)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, d)).astype(np.float32) * 3 + 1
    dout = rng.standard_normal((n, d)).astype(np.float32)
    gamma = rng.standard_normal(d).astype(np.float32)
    beta = rng.standard_normal(d).astype(np.float32)
    return n, d, x, dout, gamma, beta


def bench_batchnorm(quick: bool, repeats: int) -> list[Result]:
    torch = _torch()
    import torch.nn.functional as F

    from coursekit.normalization import batchnorm_backward, batchnorm_forward

    n, d, x, dout, gamma, beta = _norm_inputs(quick)
    rm, rv = np.zeros(d, np.float32), np.ones(d, np.float32)

    def ours():
        out, cache = batchnorm_forward(x, gamma, beta, rm, rv, mode="train")
        return batchnorm_backward(dout, cache)

    tx = torch.from_numpy(x).requires_grad_()
    tg = torch.from_numpy(gamma).requires_grad_()
    tb = torch.from_numpy(beta).requires_grad_()
    trm, trv, tdout = torch.zeros(d), torch.ones(d), torch.from_numpy(dout)

    def baseline():
        y = F.batch_norm(tx, trm, trv, tg, tb, training=True, momentum=0.1, eps=1e-5)
        return torch.autograd.grad(y, (tx, tg, tb), tdout)

    ours_t, base_t = time_pair(ours, baseline, repeats)
    for a, b in zip(ours(), baseline()):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-3, atol=1e-3)
    return [
        Result(
            "batchnorm_fwd_bwd",
            f"{n}x{d} float32",
            ours_t,
            "F.batch_norm + autograd",
            base_t,
            target=2.0,
            notes="train mode; backward is the closed form (batchnorm_backward)",
        )
    ]


def bench_layernorm(quick: bool, repeats: int) -> list[Result]:
    torch = _torch()
    import torch.nn.functional as F

    from coursekit import normalization
    from coursekit.normalization import layernorm_backward, layernorm_forward

    n, d, x, dout, gamma, beta = _norm_inputs(quick)

    def ours():
        out, cache = layernorm_forward(x, gamma, beta)
        return layernorm_backward(dout, cache)

    tx = torch.from_numpy(x).requires_grad_()
    tg = torch.from_numpy(gamma).requires_grad_()
    tb = torch.from_numpy(beta).requires_grad_()
    tdout = torch.from_numpy(dout)

    def baseline():
        y = F.layer_norm(tx, (d,), tg, tb, eps=1e-5)
        return torch.autograd.grad(y, (tx, tg, tb), tdout)

    ours_t, base_t = time_pair(ours, baseline, repeats)
    for a, b in zip(ours(), baseline()):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-3, atol=1e-3)

    # Where the time goes: each side's forward and backward, and the cost of one elementwise
    # numpy pass over an (N, D) array, the unit that numpy code pays per operation.
    _, cache = layernorm_forward(x, gamma, beta)
    scratch = np.empty_like(x)

    def torch_forward():
        with torch.no_grad():
            return F.layer_norm(tx, (d,), tg, tb, eps=1e-5)

    def median_of(fn):
        return statistics.median(time_pair(fn, None, repeats)[0])

    # The fused numba kernels ran if they loaded (numba installed, compiled) and x is large.
    fused = bool(normalization._fused) and x.size >= normalization._FUSED_MIN_ELEMENTS
    profile = {
        "kernel": "fused (numba)" if fused else "numpy",
        "ours_forward_s": median_of(lambda: layernorm_forward(x, gamma, beta)),
        "ours_backward_s": median_of(lambda: layernorm_backward(dout, cache)),
        "torch_forward_no_grad_s": median_of(torch_forward),
        "one_elementwise_pass_s": median_of(lambda: np.multiply(x, gamma, out=scratch)),
    }
    if fused:
        notes = (
            "fused numba kernels (coursekit.fused_layernorm), one pass over memory each way: "
            "the forward reads x once and writes xhat and out once, the backward reads dout "
            "and xhat once and writes dx once (3 arrays streamed per direction; each row is "
            "swept 2-3 times while in the L1 cache), rows in 16 chunks over numba's threads. "
            "PyTorch also fuses each direction into one kernel, but its forward writes only "
            "out (2 arrays streamed) and its backward recomputes xhat from x. See 'profile'."
        )
    else:
        notes = (
            "numpy path (numba not installed, COURSEKIT_NUMBA=0, or the quick shapes, below "
            "the fused kernels' 2**18 elements): one blocked pass over memory each way; numpy pays "
            "per operation on the cached blocks, about 6 for the forward (mean, center, sum of "
            "squares, scale, gamma, beta) and 10 for the backward (4 matrix-vector products); "
            "PyTorch fuses each direction into one kernel that splits the rows across both "
            "threads. See 'profile'."
        )
    return [
        Result(
            "layernorm_fwd_bwd",
            f"{n}x{d} float32",
            ours_t,
            "F.layer_norm + autograd",
            base_t,
            target=2.5,
            notes=notes,
            extra={"profile": profile},
        )
    ]


def _adam_shapes(quick: bool) -> dict[str, tuple[int, ...]]:
    if quick:
        return {"W1": (400, 200), "b1": (200,), "W2": (200, 100), "b2": (100,)}
    # a two-layer-pair MLP's worth of parameters: 10,003,000 float32 values in 4 arrays
    return {"W1": (4000, 2000), "b1": (2000,), "W2": (2000, 1000), "b2": (1000,)}


def bench_adam(quick: bool, repeats: int) -> list[Result]:
    torch = _torch()
    from coursekit.optim import Adam

    shapes = _adam_shapes(quick)
    rng = np.random.default_rng(0)
    params = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    grads = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    tparams = [torch.from_numpy(p.copy()).requires_grad_() for p in params.values()]
    for t, g in zip(tparams, grads.values()):
        t.grad = torch.from_numpy(g)
    opt = Adam(params, lr=1e-3)
    topt = torch.optim.Adam(tparams, lr=1e-3, foreach=True)

    ours_t, base_t = time_pair(lambda: opt.step(grads), topt.step, repeats)
    # both took the same number of identical steps from the same start
    for p, t in zip(params.values(), tparams):
        np.testing.assert_allclose(p, t.detach().numpy(), rtol=1e-4, atol=1e-6)
    total = sum(int(np.prod(s)) for s in shapes.values())
    return [
        Result(
            "adam_step",
            f"{total:,} float32 in {len(shapes)} arrays",
            ours_t,
            "torch.optim.Adam(foreach=True)",
            base_t,
            target=2.0,
        )
    ]


def bench_softmax_loss(quick: bool, repeats: int) -> list[Result]:
    torch = _torch()
    import torch.nn.functional as F

    from coursekit.losses import softmax_loss

    n, c = (512, 100) if quick else (4096, 1000)
    rng = np.random.default_rng(0)
    scores = (rng.standard_normal((n, c)) * 3).astype(np.float32)
    y = rng.integers(0, c, n)
    ts = torch.from_numpy(scores).requires_grad_()
    ty = torch.from_numpy(y)

    def baseline():
        loss = F.cross_entropy(ts, ty)
        return loss, torch.autograd.grad(loss, ts)[0]

    ours_t, base_t = time_pair(lambda: softmax_loss(scores, y), baseline, repeats)
    loss, dscores = softmax_loss(scores, y)
    tloss, tgrad = baseline()
    np.testing.assert_allclose(loss, tloss.item(), rtol=1e-5)
    np.testing.assert_allclose(dscores, tgrad.numpy(), rtol=1e-4, atol=1e-8)
    return [
        Result(
            "softmax_cross_entropy_fwd_bwd",
            f"{n}x{c} float32",
            ours_t,
            "F.cross_entropy + autograd",
            base_t,
            target=2.0,
        )
    ]


def bench_training_epoch(quick: bool, repeats: int) -> list[Result]:
    """One epoch of a 64-100-10 ReLU net with Adam on the digits, float64 on both sides.

    Both sides do the same work: minibatches of 100 over a fresh permutation of the 1079
    training digits, then the trainer's end-of-epoch evaluation (accuracy on 1000 training
    samples, accuracy and loss on the validation set, a copy of the best parameters).
    """
    torch = _torch()

    from coursekit.data import digits_splits
    from coursekit.models import FullyConnectedNet
    from coursekit.optim import Adam
    from coursekit.trainer import Trainer

    data = digits_splits()
    hidden, batch, lr = 100, 100, 1e-2

    def make_ours():
        model = FullyConnectedNet(64, [hidden], 10, seed=0)
        return Trainer(model, data, Adam(model.params, lr=lr), batch_size=batch, num_epochs=1)

    Xtr = torch.from_numpy(data["X_train"])
    ytr = torch.from_numpy(data["y_train"])
    Xval = torch.from_numpy(data["X_val"])
    yval = torch.from_numpy(data["y_val"])

    def make_torch():
        torch.manual_seed(0)
        net = torch.nn.Sequential(
            torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10)
        ).double()
        return net, torch.optim.Adam(net.parameters(), lr=lr)

    def torch_epoch(net, opt, gen):
        n = Xtr.shape[0]
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(Xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
        with torch.no_grad():
            sub = torch.randperm(n, generator=gen)[:1000]
            train_acc = (net(Xtr[sub]).argmax(1) == ytr[sub]).double().mean().item()
            val_scores = net(Xval)
            val_acc = (val_scores.argmax(1) == yval).double().mean().item()
            val_loss = torch.nn.functional.cross_entropy(val_scores, yval).item()
            best = {k: v.clone() for k, v in net.state_dict().items()}
        return train_acc, val_acc, val_loss, best

    # fresh model and optimizer for every epoch, built outside the timed region
    pending_ours: list = []
    pending_torch: list = []

    def ours():
        return pending_ours.pop().train()

    def baseline():
        net, opt = pending_torch.pop()
        return torch_epoch(net, opt, torch.Generator().manual_seed(0))

    warmup = 2
    pending_ours.extend(make_ours() for _ in range(repeats + warmup))
    pending_torch.extend(make_torch() for _ in range(repeats + warmup))
    ours_t, base_t = time_pair(ours, baseline, repeats, warmup=warmup)
    history = make_ours().train()
    assert history["val_acc_history"][-1] > 0.5, history["val_acc_history"]
    return [
        Result(
            "training_epoch_digits",
            f"64-{hidden}-10 ReLU, Adam, batch {batch}, 1079 digits, float64",
            ours_t,
            "the same net and loop in PyTorch",
            base_t,
            target=1.5,
            notes="Trainer.train() for one epoch incl. its end-of-epoch evaluation; "
            "the PyTorch loop does the same evaluation",
        )
    ]


GRADING = {"n": 40, "repeats": 3, "overhead": True}
#: Assignments whose grading overhead per notebook is measured besides the largest one (the
#: one with a trained model), with fewer submissions.
OVERHEAD_ALSO = {"a5": 20}


def bench_grading(quick: bool, repeats: int) -> list[Result]:
    sys.path.insert(0, str(HERE))
    import grading

    n, reps = (4, 1) if quick else (GRADING["n"], GRADING["repeats"])
    overhead = GRADING["overhead"] and not quick
    runs = [grading.run(n=n, repeats=reps, overhead=overhead)]
    if overhead:
        for name, size in OVERHEAD_ALSO.items():
            if name != runs[0]["assignment"]:
                runs.append(grading.run(n=size, repeats=1, assignment=name))
    out = runs[0]
    results = [
        Result(
            "grading",
            f"{n} submissions of {out['assignment']}, {out['workers']} workers",
            out["coursekit_seconds"],
            "sequential nbgrader autograde",
            out["plain_seconds"],
            kind="speedup",
            target=3.0,
            notes="benchmarks/grading.py: coursekit grade vs nbgrader autograde, each a fresh "
            f"subprocess on a fresh copy of the course (coursekit pays its preflight); {reps} "
            f"run(s) each; grades identical to plain nbgrader: {out['scores_identical']}",
            extra={"grading": out},
        )
    ]
    for run in runs if overhead else []:
        results.append(
            Result(
                f"grading_overhead:{run['assignment']}",
                f"per notebook, {run['n']} submissions, 1 worker",
                run["overhead_per_notebook_all_s"],
                target=0.3,
                notes="the grading step of each submission (one worker: sandboxed kernel, "
                "hidden cases, nbgrader, results) minus the bare execution of the same "
                "notebooks (fresh kernel, every cell, nbclient's default graceful shutdown); "
                f"bare median {run['bare_median_s']:.2f} s, grading step median "
                f"{run['grading_step_median_s']:.2f} s",
            )
        )
        if "overhead_vs_immediate_shutdown_all_s" in run:
            results.append(
                Result(
                    f"grading_overhead_strict:{run['assignment']}",
                    f"per notebook, {run['n']} submissions, 1 worker",
                    run["overhead_vs_immediate_shutdown_all_s"],
                    notes="as grading_overhead, against a bare execution that kills its "
                    "kernel at the end as grading does (no graceful shutdown): bare median "
                    f"{run['bare_immediate_median_s']:.2f} s; recorded, the target is "
                    "grading_overhead's",
                )
            )
    return results


def bench_similarity(quick: bool, repeats: int) -> list[Result]:
    """``coursekit similarity a1`` on a synthesized class (tests/similarity_class.py), each run
    a fresh process on two workers; also records how many planted copies it flagged and how
    many independent pairs."""
    import shutil
    import subprocess
    import tempfile

    sys.path.insert(0, str(ROOT / "tests"))
    import similarity_class

    n, reps = (60, 1) if quick else (300, max(3, min(repeats, 5)))
    klass = similarity_class.synthesize(n, seed=2026)
    with tempfile.TemporaryDirectory() as tmp:
        course = Path(tmp) / "course"
        course.mkdir()
        shutil.copy(ROOT / "nbgrader_config.py", course)
        for step in ("solutions", "assignments"):
            shutil.copytree(ROOT / step / "a1", course / step / "a1")
        similarity_class.write_class(course, klass)
        out = Path(tmp) / "pairs.json"
        cmd = [sys.executable, "-m", "coursekit.cli.main", "--course", str(course)]
        cmd += ["similarity", "a1", "--workers", "2", "--json", str(out)]
        import resource

        times, cpu = [], []
        for _ in range(reps):
            used = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            times.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime + after.ru_stime - used.ru_utime - used.ru_stime)
        pairs = json.loads(out.read_text())
    source = {}
    for pair in klass.planted:  # a copy (c..., ck...) and its source are not independent
        copy, original = sorted(pair)
        source[copy] = original
    root = {s: source.get(s, s) for s in [*klass.answers, "coursekit"]}
    planted = [p["flagged"] for p in pairs if frozenset((p["a"], p["b"])) in klass.planted]
    independent = [p["flagged"] for p in pairs if root[p["a"]] != root[p["b"]]]
    return [
        Result(
            "similarity",
            f"{n} students of a1, every pair and each against coursekit, 2 workers",
            times,
            target=60.0,
            notes=f"whole command in a fresh process (median CPU time {statistics.median(cpu):.1f} s, "
            "all processes); planted copies flagged "
            f"{sum(planted)}/{len(planted)}, independent pairs flagged "
            f"{sum(independent)}/{len(independent)}",
            extra={
                "cpu_seconds": cpu,
                "planted_flagged": sum(planted) / len(planted),
                "independent_flagged": sum(independent) / len(independent),
            },
        )
    ]


def _notebooks(quick: bool) -> list[Path]:
    lectures = sorted((ROOT / "lectures").glob("L[0-9][0-9]_*.ipynb"))
    if quick:
        return lectures[:1]
    return lectures + sorted((ROOT / "solutions").glob("*/*.ipynb"))


def _slowest_cells(nb, k: int = 3) -> list[dict]:
    """The ``k`` code cells that took longest, from the timings nbclient records per cell."""
    from datetime import datetime

    cells = []
    for index, cell in enumerate(nb.cells):
        timing = cell.get("metadata", {}).get("execution", {})
        begin, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
        if cell.cell_type == "code" and begin and end:
            seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(begin)).total_seconds()
            first = next((ln for ln in cell.source.splitlines() if ln.strip()), "")
            cells.append({"cell": index, "seconds": round(seconds, 2), "starts": first[:80]})
    return sorted(cells, key=lambda c: -c["seconds"])[:k]


def execute_notebook(path: Path, timeout: int) -> tuple[float, list[dict]]:
    """Seconds to run every cell of ``path`` in a fresh kernel (kernel start-up excluded), and
    the slowest cells.

    The kernel talks over local sockets (IPC) rather than TCP ports: with many kernels starting
    at once on a shared machine, a TCP port can be taken between being chosen and being bound,
    and the client then waits for replies that never come.
    """
    import tempfile

    import nbformat
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="coursekit-nb-") as tmp:
        km = KernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(tmp, "kernel"))
        km.connection_file = os.path.join(tmp, "kernel.json")
        # run in the temporary directory, as the lecture tests do: scratch files land there
        client = NotebookClient(nb, km=km, timeout=timeout, resources={"metadata": {"path": tmp}})
        try:
            with client.setup_kernel():
                start = time.perf_counter()
                for index, cell in enumerate(nb.cells):
                    client.execute_cell(cell, index)
                return time.perf_counter() - start, _slowest_cells(nb)
        finally:  # the client does not stop a kernel manager it was handed
            if km.has_kernel:
                km.shutdown_kernel(now=True)


def bench_notebooks(quick: bool, repeats: int) -> list[Result]:
    results = []
    for path in _notebooks(quick):
        lecture = path.parent.name == "lectures"
        rel = path.relative_to(ROOT).as_posix()
        print(f"  executing {rel} ...", flush=True)
        try:
            seconds, slowest = execute_notebook(path, timeout=300 if quick else 900)
        except Exception as exc:  # a failing notebook is recorded, not fatal to the suite
            results.append(
                Result(
                    f"notebook:{rel}",
                    "execution",
                    [],
                    target=60.0 if lecture else None,
                    notes=f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
                )
            )
            continue
        results.append(
            Result(
                f"notebook:{rel}",
                "execution",
                [seconds],
                kind="time",
                target=60.0 if lecture else None,
                notes="seconds, one run, kernel start-up excluded"
                + ("; lectures must run in under 60 s" if lecture else "; recorded only"),
                extra={"slowest_cells": slowest},
            )
        )
    return results


BENCHMARKS: dict[str, Callable[[bool, int], list[Result]]] = {
    "pairwise": bench_pairwise,
    "loops": bench_loops,
    "batchnorm": bench_batchnorm,
    "layernorm": bench_layernorm,
    "adam": bench_adam,
    "softmax": bench_softmax_loss,
    "training": bench_training_epoch,
    "grading": bench_grading,
    "notebooks": bench_notebooks,
    "similarity": bench_similarity,
}
REPEATS = {"quick": 3, "full": 15}  # timed runs per figure (grading: see GRADING)


# -- machine, report ---------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _numpy_blas() -> str:
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version', '')}".strip()
    except Exception:
        return "unknown"


def _torch_blas(torch) -> str:
    import re

    found = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    return found.group(1) if found else "unknown"


def machine() -> dict:
    torch = _torch()
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "threads": int(THREADS),
        "load_average_at_start": list(os.getloadavg()),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numpy_blas": _numpy_blas(),
        "torch": torch.__version__,
        "torch_blas": _torch_blas(torch),
        "torch_threads": torch.get_num_threads(),
    }


def _fmt_time(s: float | None) -> str:
    if s is None or s != s:
        return "-"
    if s < 0:  # an overhead below its floor: grading faster than the bare run
        return "−" + _fmt_time(-s)
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.1f} µs"


def _fmt_target(entry: dict) -> str:
    t = entry["target"]
    if t is None:
        return "record"
    if entry["baseline"] is None:
        return f"< {t['value']:g} s"
    return f"{'≤' if t['op'] == '<=' else '≥'} {t['value']:g}×"


def table(entries: list[dict]) -> str:
    """The results as a Markdown table."""
    head = (
        "| benchmark | shape | ours (median) | baseline | baseline (median) | ratio (range) | target "
        "| met | ratio of fastest runs |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    for e in entries:
        ratio = "-" if e["ratio"] is None else f"{e['ratio']:.3g}×"
        if e.get("ratio_range"):
            low, high = e["ratio_range"]
            ratio += f" ({low:.3g}–{high:.3g})"
        best = "-" if e.get("ratio_of_minimums") is None else f"{e['ratio_of_minimums']:.3g}×"
        if e["ratio_is"] and e["ratio_is"].startswith("baseline"):
            ratio += " faster"
            best += " faster"
        met = {True: "yes", False: "**no**", None: "-"}[e["met"]]
        lines.append(
            f"| {e['name']} | {e['shape']} | {_fmt_time(e['ours_median_s'])} | "
            f"{e['baseline'] or '-'} | {_fmt_time(e['baseline_median_s'])} | {ratio} | "
            f"{_fmt_target(e)} | {met} | {best} |"
        )
    return "\n".join(lines)


def chart(entries: list[dict], path: Path) -> None:
    """Bar charts: ratio against target, and notebook execution times."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # a ratio without a target (the loops figure for the lecture) is in the table only
    compared = [e for e in entries if e["ratio"] is not None and e["target"] is not None]
    notebooks = [e for e in entries if e["ratio"] is None and e["name"].startswith("notebook:")]
    panels = [p for p in (compared, notebooks) if p]
    if not panels:
        return
    fig, axes = plt.subplots(
        1, len(panels), figsize=(7 * len(panels), 0.45 * max(map(len, panels)) + 2)
    )
    axes = np.atleast_1d(axes)
    ax = axes[0]
    if compared:
        # normalise so that >1 always means "target missed": time ratio / target, target / speed-up
        y = np.arange(len(compared))
        score, colors = [], []
        for e in compared:
            t = e["target"]["value"]
            s = e["ratio"] / t if e["target"]["op"] == "<=" else t / e["ratio"]
            score.append(s)
            colors.append("tab:green" if e["met"] else "tab:red")
        ax.barh(y, score, color=colors)
        ax.axvline(1.0, color="k", lw=1)
        ax.set_xscale("log")
        ax.set_yticks(y, [f"{e['name']}\n{e['ratio']:.3g}× vs {_fmt_target(e)}" for e in compared])
        ax.invert_yaxis()
        ax.set_xlabel("fraction of the allowed budget used (target at 1; left is better)")
        ax.set_title("coursekit vs baseline, same run (green: target met)")
        ax = axes[1] if len(panels) > 1 else None
    if notebooks and ax is not None:
        y = np.arange(len(notebooks))
        secs = [e["ours_median_s"] or 0.0 for e in notebooks]  # None: the notebook failed
        colors = ["tab:red" if e["met"] is False else "tab:blue" for e in notebooks]
        ax.barh(y, secs, color=colors)
        ax.axvline(60.0, color="k", lw=1, ls="--")
        labels = [
            e["name"].split(":", 1)[1] + ("" if e["ours_median_s"] else " (failed)")
            for e in notebooks
        ]
        ax.set_yticks(y, labels)
        ax.invert_yaxis()
        ax.set_xlabel("seconds to execute (lecture limit 60 s, dashed)")
        ax.set_title("notebook execution")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def update_readme(path: Path, report: dict) -> None:
    """Replace the text between the results markers of ``path`` with this run's table."""
    text = path.read_text()
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    m = report["machine"]
    about = (
        f"Run of {report['started']} on {m['cpu']} ({m['cores']} cores, {m['threads']} threads "
        f"for BLAS and PyTorch; load average {m['load_average_at_start'][0]:.1f} at the start, "
        f"{m['load_average_at_end'][0]:.1f} at the end), numpy {m['numpy']} "
        f"({m['numpy_blas']}), torch {m['torch']}."
    )
    if report.get("merged_from"):
        about += " Entries marked * come from an earlier run of the same day: " + ", ".join(
            report["merged_from"]
        )
    entries = [
        dict(e, name=e["name"] + (" *" if "from_run" in e else "")) for e in report["benchmarks"]
    ]
    path.write_text(f"{head}{README_START}\n{about}\n\n{table(entries)}\n{README_END}{tail}")


def merge(report: dict, earlier: dict, source: Path) -> None:
    """Copy ``earlier``'s entries whose benchmark is not in ``report`` into ``report``."""
    have = {e["name"] for e in report["benchmarks"]}
    copied = 0
    for entry in earlier["benchmarks"]:
        if entry["name"] not in have:
            copied += 1
            entry = dict(entry, from_run={"file": source.name, "started": earlier.get("started")})
            entry["from_run"]["load_average"] = [
                earlier["machine"].get("load_average_at_start"),
                earlier["machine"].get("load_average_at_end"),
            ]
            report["benchmarks"].append(entry)
    if copied:  # name only the files that supplied entries
        report.setdefault("merged_from", []).append(source.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, few repeats")
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="where to write the results (default: benchmarks/results.json for a full run, "
        "nothing for --quick)",
    )
    parser.add_argument("--chart", type=Path, default=None, help="PNG chart (default like --json)")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), metavar="NAME")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per figure")
    parser.add_argument("--grading-n", type=int, default=None, help="submissions (default 40)")
    parser.add_argument(
        "--grading-repeats", type=int, default=None, help="grading runs per tool (default 3)"
    )
    parser.add_argument(
        "--grading-no-overhead",
        action="store_true",
        help="skip the extra one-worker grading run that measures coursekit's overhead",
    )
    parser.add_argument(
        "--readme",
        type=Path,
        default=None,
        help="a Markdown file whose results section (between the markers) gets the new table",
    )
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        default=[],
        metavar="JSON",
        help="earlier result files: their entries for benchmarks not run now are copied in "
        "(marked with the run they came from)",
    )
    args = parser.parse_args(argv)
    # Only a full run writes the committed results and chart by default; a partial run
    # writes them only when told where (and never over the committed files unless it
    # merges them, so their other entries survive).
    full = not args.quick and not args.only
    if args.json is None and full:
        args.json = HERE / "results.json"
    if args.chart is None and full:
        args.chart = HERE / "performance.png"
    committed = {(HERE / "results.json").resolve(), (HERE / "performance.png").resolve()}
    merged = {p.resolve() for p in args.merge}
    for target in (args.json, args.chart):
        if (
            target is not None
            and not full
            and target.resolve() in committed
            and (HERE / "results.json").resolve() not in merged
        ):
            parser.error(
                f"a partial run would overwrite {target.name}; pass --merge "
                f"{HERE / 'results.json'} to keep the other entries, or write elsewhere"
            )

    repeats = args.repeats or (REPEATS["quick"] if args.quick else REPEATS["full"])
    names = args.only or list(BENCHMARKS)
    if args.grading_n:
        GRADING["n"] = args.grading_n
    if args.grading_repeats:
        GRADING["repeats"] = args.grading_repeats
    GRADING["overhead"] = not args.grading_no_overhead
    report = {
        "schema": SCHEMA_VERSION,
        "mode": "quick" if args.quick else "full",
        "machine": machine(),
        "benchmarks": [],
        "errors": {},
        "skipped": {},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    started = time.perf_counter()
    for name in names:
        print(f"[{name}]", flush=True)
        if args.quick and name == "grading" and not args.only:
            # grading even 4 submissions twice takes minutes; run it with --only grading
            report["skipped"][name] = (
                "skipped in --quick (several minutes even for 4 submissions); "
                "run `--quick --only grading` for a 4-submission check"
            )
            print(f"  {report['skipped'][name]}", flush=True)
            continue
        t0 = time.perf_counter()
        try:
            results = BENCHMARKS[name](args.quick, repeats)
        except Exception as exc:
            report["errors"][name] = f"{type(exc).__name__}: {exc}"
            print(f"  FAILED: {report['errors'][name]}", flush=True)
            continue
        for r in results:
            entry = r.as_dict()
            report["benchmarks"].append(entry)
            print("  " + table([entry]).splitlines()[-1], flush=True)
        print(f"  ({time.perf_counter() - t0:.1f} s)", flush=True)
    report["machine"]["load_average_at_end"] = list(os.getloadavg())
    for path in args.merge:
        merge(report, json.loads(path.read_text()), path)
    report["total_seconds"] = time.perf_counter() - started

    print()
    print(table(report["benchmarks"]))
    missed = [e["name"] for e in report["benchmarks"] if e["met"] is False]
    if missed:
        print(f"\ntargets not met: {', '.join(missed)}")
    if report["errors"]:
        print(f"\nbenchmarks that failed: {', '.join(report['errors'])}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1, allow_nan=False) + "\n")
        print(f"\nwrote {args.json}")
    if args.chart:
        chart(report["benchmarks"], args.chart)
        print(f"wrote {args.chart}")
    if args.readme:
        update_readme(args.readme, report)
        print(f"updated the table in {args.readme}")
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
