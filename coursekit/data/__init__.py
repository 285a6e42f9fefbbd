"""Data for the course: the bundled 8×8 digits, generated toy problems and augmentation."""

from coursekit.data.augment import shift_digits, shift_image
from coursekit.data.digits import as_images, digits_splits, load_digits, stratified_split_indices
from coursekit.data.toy import (
    correlated_covariance,
    make_blobs,
    make_correlated_gaussian,
    make_spirals,
    make_three_class,
)

__all__ = [
    "as_images",
    "correlated_covariance",
    "digits_splits",
    "load_digits",
    "make_blobs",
    "make_correlated_gaussian",
    "make_spirals",
    "make_three_class",
    "shift_digits",
    "shift_image",
    "stratified_split_indices",
]
