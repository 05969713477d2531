"""scikit-learn's bundled 8x8 handwritten digits: the embedded default, usable with no files at all."""

from __future__ import annotations

import numpy as np

from selfgrow.data.arrays import DatasetArrays
from selfgrow.data.images import as_nchw_tensor, labels_tensor
from selfgrow.data.split import split_dataset

TEST_FRACTION = 0.25
SPLIT_SEED = 0


def load_digits() -> DatasetArrays:
    """The 1,797 digits as uint8 (N, 1, 8, 8) images (0..16 rescaled to 0..255), with a fixed stratified 1/4 test split.

    The digits have no official test set, so the split is drawn once with seed 0 and is the
    same on every machine.
    """
    from sklearn.datasets import load_digits as sklearn_digits  # here: scikit-learn adds ~1 s to every CLI start

    bunch = sklearn_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    classes = [str(c) for c in range(10)]
    x, y = as_nchw_tensor(images), labels_tensor(bunch.target)
    return split_dataset("digits", x, y, classes, TEST_FRACTION, SPLIT_SEED)
