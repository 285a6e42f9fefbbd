"""The static integrity check: what the code a student wrote mentions."""

from __future__ import annotations

import pytest

from coursekit.grading.trusted import integrity_problems

OWN_ADAM = """
from coursekit.optim import Optimizer

class Adam(Optimizer):
    "The student's own optimizer."

def adam(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    return param, state

opt = Adam([])
"""


@pytest.mark.parametrize(
    "source, task",
    [
        ("from coursekit.ops import softmax\n", "a1.softmax"),
        ("import coursekit.ops as o\n\ndef softmax(z):\n    return o.softmax(z)\n", "a1.softmax"),
        ("from coursekit import ops\nf = ops.logsumexp\n", "a1.logsumexp"),
        ("from coursekit.optim.functional import adamw as f\n", "a3.adamw"),
        ("from coursekit.early_stopping import EarlyStopping as E\n", "a5.early_stopping"),
        (
            "import coursekit.normalization as N\nN.batchnorm_backward_graph\n",
            "a4.batchnorm_backward",
        ),
    ],
)
def test_using_the_library_implementation_is_flagged_with_its_name(source, task):
    problems = integrity_problems([source], [task])
    assert set(problems) == {task}
    assert problems[task].startswith("integrity: the submission calls coursekit's own")


def test_own_functions_named_like_the_library_are_not_flagged():
    # a class named Adam next to ``from coursekit.optim import ...`` is the student's own
    assert integrity_problems([OWN_ADAM], ["a3.adam", "a3.sgd_momentum"]) == {}


@pytest.mark.parametrize(
    "source, reason",
    [
        ("check = lambda *a, **k: None\n", "rebinds check"),
        ("import coursekit.grading.core as c\n", "uses coursekit.grading.core"),
        ("get_ipython().set_custom_exc((Exception,), None)\n", "uses set_custom_exc"),
    ],
)
def test_tampering_with_the_machinery_is_flagged_for_every_task(source, reason):
    problems = integrity_problems([source], ["a1.softmax", "a1.logsumexp"])
    assert set(problems) == {"a1.softmax", "a1.logsumexp"}
    assert all(reason in p and "tampers with the grading machinery" in p for p in problems.values())


def test_unparsable_cells_are_skipped_not_fatal():
    assert integrity_problems(["def broken(:\n", "x = 1\n"], ["a1.softmax"]) == {}
