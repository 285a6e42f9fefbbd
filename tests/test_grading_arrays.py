"""Arrays as plain JSON between grading processes (coursekit.grading.arrays)."""

from __future__ import annotations

import base64
import json

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coursekit.grading.arrays import decode_array, encode_array

NUMERIC = st.sampled_from(["<f8", ">f8", "<f4", "<i8", ">i4", "|u1", "|b1"])


@given(
    hnp.arrays(
        NUMERIC,
        hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5),
        elements=None,
    )
)
def test_every_bit_survives_a_json_round_trip(value):
    body = json.loads(json.dumps(encode_array(value)))
    back = decode_array(body, kinds="biuf")
    assert back.shape == value.shape
    assert back.dtype == value.dtype.newbyteorder("<")  # sent little-endian
    assert back.tobytes() == value.astype(back.dtype).tobytes()  # NaN payloads and -0.0 too


def test_non_finite_values_are_exact():
    value = np.array([np.nan, -np.inf, np.inf, -0.0, 5e-324])
    back = decode_array(encode_array(value))
    assert np.isnan(back[0]) and back[1] == -np.inf and back[2] == np.inf
    assert np.signbit(back[3]) and back[4] == 5e-324


@pytest.mark.parametrize(
    "body, message",
    [
        ({"dtype": "|O", "shape": [1], "data": ""}, "numbers"),
        ({"dtype": "<c16", "shape": [1], "data": base64.b64encode(b"\0" * 16).decode()}, "numbers"),
        ({"dtype": "<f8", "shape": [2], "data": base64.b64encode(b"\0" * 8).decode()}, "fit"),
        ({"dtype": "<f8", "shape": [-1], "data": ""}, "shape"),
        ({"dtype": "<f8", "shape": [1], "data": "not base64!"}, "malformed"),
        ({"dtype": "<f8", "shape": [1]}, "malformed"),
        ({"dtype": "[('a', '<f8')]", "shape": [1], "data": ""}, "malformed|numbers"),
        ([1.0, 2.0], "malformed"),
    ],
)
def test_anything_malformed_is_refused_with_a_reason(body, message):
    with pytest.raises(ValueError, match=message):
        decode_array(body)


def test_the_caller_chooses_the_dtype_kinds():
    body = encode_array(np.array([True, False]))
    assert decode_array(body, kinds="b").tolist() == [True, False]
    with pytest.raises(ValueError, match="numbers"):
        decode_array(body, kinds="if")
