"""The generic diagnosis: what differs, where, and how (``coursekit.grading.diagnose``)."""

from __future__ import annotations

import numpy as np
import pytest

from coursekit.grading.diagnose import explain_error, explain_mismatch, relation

RTOL, ATOL = 1e-9, 1e-12
W = np.arange(1.0, 7.0).reshape(2, 3)
S = np.arange(1.0, 10.0).reshape(3, 3)


def explain(got, want=W):
    return explain_mismatch(got, want, RTOL, ATOL)


def test_a_match_has_no_message():
    assert explain(W.copy()) is None
    assert explain((W, {"a": W}), (W.copy(), {"a": W.copy()})) is None
    assert explain(W * (1 + 1e-12)) is None


def test_names_the_output_the_first_wrong_entry_and_both_values():
    got = W.copy()
    got[1, 0] = 9.0
    message = explain((W, {"dx": got}), (W, {"dx": W}))
    assert message.startswith("output[1]['dx']: 1 of 6 entries differ; first at [1, 0]")
    assert "expected 4, got 9" in message


def test_shows_enough_digits_to_see_the_difference():
    message = explain(W * (1 + 3e-7))
    assert "expected 1, got 1.0000003" in message
    assert "right to about 7 significant digits only" in message


@pytest.mark.parametrize(
    ("got", "words"),
    [
        (2 * W, "exactly 2 times the expected values"),
        (W / 4, "exactly 1/4 times the expected values"),
        (-W, "opposite sign"),
        (W + 0.5, "shifted by the constant 0.5"),
        (W**2, "the squares of the expected values"),
        (np.sqrt(W), "the square roots"),
        (np.where(W > 2, np.nan, W), "NaN in 4 entries, first at [0, 2]"),
        (np.where(W > 5, np.inf, W), "inf in 1 entries: overflow"),
    ],
)
def test_relations_between_wrong_and_right_values(got, words):
    assert words in explain(got)


def test_transposed_values_and_shapes():
    assert "the transpose of the expected values" in explain(S.T, S)
    assert "— the transpose (rows and columns swapped)" in explain(W.T)


def test_rows_columns_and_the_last_entry():
    got = W.copy()
    got[:, -1] = 0.0
    assert "only column 2 differs (all 0): the last one; a loop that stops one step early?" in (
        explain(got)
    )
    got = S.copy()
    got[1] += 1.0
    assert "only row 1 differs" in explain(got, S)
    vector = np.arange(1.0, 6.0)
    assert "only the last entry differs" in explain(np.r_[vector[:-1], 0.5], vector)


def test_kept_or_lost_axes_and_other_shapes():
    assert "an extra axis of size 1" in explain(W.sum(axis=1)[:, None], W.sum(axis=1))
    assert "an axis of size 1 is missing" in explain(W.sum(axis=1), W.sum(axis=1)[:, None])
    assert "same number of entries in another shape" in explain(W.reshape(3, 2).T.ravel())
    assert "a sum over the rows (axis=0) is missing" in explain(W, W.sum(axis=0))
    assert "a single number was expected" in explain(W, np.array(3.0))


def test_structure_mismatches_say_what_was_expected():
    assert "should be 2 values (a tuple)" in explain(W, (W, W))
    assert "has 3 values, expected 2" in explain((W, W, W), (W, W))
    assert "missing keys ['b']" in explain({"a": W}, {"a": W, "b": W})
    assert "should be a single array, got a tuple of 2" in explain((W, W))


def test_integers_and_single_numbers():
    message = explain_mismatch(np.array([3, 1, 2]), np.array([3, 1, 0]), 0, 0)
    assert message.startswith("output: 1 of 3 entries are wrong; first at [2]: expected 0, got 2")
    assert explain(np.array(1.0), np.array(0.5)).endswith(
        "expected 0.5, got 1 — exactly 2 times the expected values"
    )
    assert (
        explain(np.array(0.0), np.array(1.0)) == "output: 1 of 1 entries differ; expected 1, got 0"
    )


def test_no_relation_for_unrelated_values():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    assert relation(a, b, RTOL, ATOL) is None
    assert " — " not in explain(a, b)


def test_error_hints():
    lost_axis = (
        "raised ValueError: operands could not be broadcast together with shapes (4,6) (4,) "
    )
    assert "keepdims=True" in explain_error(lost_axis)
    transposed = (
        "raised ValueError: operands could not be broadcast together with shapes (4,6) (6,4) "
    )
    assert "transposed" in explain_error(transposed)
    matmul = (
        "raised ValueError: matmul: Input operand 1 has a mismatch in its core dimension 0, "
        "with gufunc signature (n?,k),(k,m?)->(n?,m?) (size 6 is different from 2)"
    )
    assert "(N, D) @ (D, M)" in explain_error(matmul)
    assert "index past the end" in explain_error(
        "raised IndexError: index 6 is out of bounds for axis 0 with size 6"
    )
    assert "division by zero" in explain_error("raised ZeroDivisionError: float division by zero")
    assert explain_error("raised KeyError: 'W1'") is None


def test_per_row_and_per_column_terms():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(5, 4))
    beta = rng.normal(size=4)
    scale = rng.uniform(1.0, 2.0, size=(5, 1))
    assert "each column is off by its own constant" in explain(w - 2 * beta, w)
    assert "each row is off by its own constant" in explain(w + scale, w)
    assert "each row is scaled by its own factor" in explain(w * scale, w)
    assert "each column is scaled by its own factor" in explain(w * beta, w)


def test_a_named_property_that_does_not_hold():
    got = {"out": W, "x unchanged": np.array(0.0)}
    want = {"out": W, "x unchanged": np.array(1.0)}
    assert explain(got, want) == "this does not hold: x unchanged"
    assert explain({"shape": np.array(0.0)}, {"shape": np.array(1.0)}).startswith("output['shape']")
    one_entry = {"same seed, same output": np.array([1.0])}
    assert explain({"same seed, same output": np.array([0.0])}, one_entry) == (
        "this does not hold: same seed, same output"
    )
    assert explain(
        {"same seed, same output": np.array([2.0, 3.0])},
        {"same seed, same output": np.array([1.0, 3.0])},
    ).startswith("output[")


def test_never_raises_on_odd_inputs():
    odd = [
        None,
        "text",
        np.array(["a"]),
        (W, None),
        {"a": object()},
        np.array([[1.0, np.nan]]),
        np.zeros((0, 3)),
    ]
    for got in odd:
        for want in (W, (W, W), {"a": W}, np.zeros((0, 3)), np.array(1.0)):
            explain_mismatch(got, want, RTOL, ATOL)  # returns a message or None
    assert explain_error(None) is None
    assert explain_mismatch(np.zeros((0, 3)), np.zeros((0, 3)), RTOL, ATOL) is None


def test_hints_for_missing_returns_unpacking_and_undefined_names():
    assert "is a return missing?" in explain_error(
        "returned an unusable result: expected a number or an array, got NoneType"
    )
    assert "is a return missing?" in explain_error(
        "raised TypeError: cannot unpack non-iterable NoneType object"
    )
    assert "unpacked into 2 names" in explain_error(
        "raised ValueError: too many values to unpack (expected 2)"
    )
    assert "'np' is not defined where your function runs" in explain_error(
        "raised NameError: name 'np' is not defined"
    )


def test_a_single_number_gets_a_factor_only_when_it_is_a_round_one():
    assert explain(np.array(3.0), np.array(1.5)).endswith("exactly 2 times the expected values")
    assert explain(np.array(1.87565), np.array(1.68799)) == (
        "output: 1 of 1 entries differ; expected 1.68799, got 1.87565"
    )
    assert explain_mismatch(np.array(-1), np.array(6), 0, 0) == (
        "output: 1 of 1 entries are wrong; expected 6, got -1"
    )
