"""The preprocessed matrix is float32 by default (half the memory), float64 on request."""

from __future__ import annotations

import numpy as np
import pytest

from bench.data.synthetic import generate
from bench.features.preprocess import build_preprocessor


@pytest.mark.parametrize("log1p", ["auto", "none"])
def test_preprocess_output_is_float32_and_matches_float64_to_float32_precision(log1p):
    frame = generate(n_rows=2000, seed=0)
    categorical, numeric = ["proto", "service"], ["sbytes", "dur"]
    wide = build_preprocessor(categorical, numeric, log1p=log1p, dtype="float64").fit(frame)
    narrow = build_preprocessor(categorical, numeric, log1p=log1p).fit(frame)
    exact, small = wide.transform(frame), narrow.transform(frame)
    assert exact.dtype == np.float64 and small.dtype == np.float32
    assert small.nbytes * 2 == exact.nbytes
    np.testing.assert_allclose(small, exact, rtol=1e-5, atol=1e-5)
    # the statistics are still TRAIN's: scaled numeric columns have mean 0, std 1
    np.testing.assert_allclose(small[:, -2:].mean(axis=0, dtype=np.float64), 0, atol=1e-5)
    np.testing.assert_allclose(small[:, -2:].std(axis=0, dtype=np.float64), 1, atol=1e-4)
