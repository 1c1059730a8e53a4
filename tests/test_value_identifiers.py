"""dataset=table finds identifiers by their values, whatever the column is called: dates as
text, epoch times as numbers, private IPv4 addresses as integers; honest features stay."""

from __future__ import annotations

import ipaddress

import numpy as np
import pandas as pd
import pytest

from bench.data.split import ByTimeSplit
from bench.data.table import load
from bench.errors import DataError

N = 2000


def _capture(tmp_path, **columns: object) -> pd.DataFrame:
    """A shuffled capture: label, two honest features, and `columns`; written as x.csv."""
    rng = np.random.default_rng(0)
    label = rng.random(N) < 0.3
    frame = pd.DataFrame({"bytes": rng.lognormal(6, 2, N).round(), "pkts": rng.poisson(9, N),
                          "label": np.where(label, "attack", "normal"), **columns})
    frame.to_csv(tmp_path / "x.csv", index=False)
    return frame


def _load(tmp_path, **options: object):
    return load(path="x.csv", label="label", normal=["normal"], data_dir=str(tmp_path),
                cache_dir=str(tmp_path / "cache"), **options)


def _times(unit_scale: float) -> np.ndarray:
    start = pd.Timestamp("2017-07-05 09:00").timestamp()
    return (start + np.sort(np.random.default_rng(1).uniform(0, 86_400, N))) * unit_scale


@pytest.mark.parametrize("name, values", [
    ("when", [f"{t.day}/{t.month}/{t.year} {t.hour % 12 or 12}:{t.minute:02d}"
              for t in pd.to_datetime(_times(1), unit="s")]),  # CIC-IDS2017's Timestamp
    ("when", [t.isoformat() for t in pd.to_datetime(_times(1), unit="s")]),
    ("when", [t.strftime("%d-%b-%Y %H:%M:%S") for t in pd.to_datetime(_times(1), unit="s")]),
    ("sent_at", _times(1)),
    ("sent_ms", _times(1e3)),
    ("sent_us", _times(1e6).round()),
])
def test_a_time_column_under_any_name_is_an_identifier(tmp_path, name, values):
    _capture(tmp_path, **{name: values})
    data = _load(tmp_path)
    assert name in data.schema.identifiers and name not in data.schema.features
    note = data.notes["data.flow_identifiers"]
    assert f"columns holding dates or epoch times ['{name}']" in note


def test_private_ipv4_addresses_as_integers_are_an_identifier(tmp_path):
    rng = np.random.default_rng(2)
    base = int(ipaddress.IPv4Address("10.1.0.0"))
    _capture(tmp_path, host_num=base + rng.integers(1, 1200, N),
             peer=int(ipaddress.IPv4Address("192.168.1.0")) + rng.integers(0, 255, N))
    data = _load(tmp_path)
    assert {"host_num", "peer"} <= set(data.schema.identifiers)
    assert "columns holding IP / MAC addresses ['host_num', 'peer']" in (
        data.notes["data.flow_identifiers"])


def test_counts_sizes_and_declared_categoricals_are_not_identifiers(tmp_path):
    """Honest numbers that reach large values (bytes up to ~1e9, a rate) stay features; so
    does a time-shaped column declared categorical, and everything with
    dataset.flow_identifiers=false."""
    rng = np.random.default_rng(3)
    _capture(tmp_path, total_bytes=rng.integers(0, 3_000_000_000, N),
             rate=rng.uniform(0, 2e9, N), day=["2017-07-05"] * (N // 2) + ["2017-07-06"] * (N // 2),
             duration=[f"00:00:{s:02d}" for s in rng.integers(0, 60, N)])
    data = _load(tmp_path, categorical=["day"])
    assert {"total_bytes", "rate", "day", "bytes", "pkts"} <= set(data.schema.features)
    assert "duration" in data.schema.identifiers  # a time of day with seconds: a time column
    plain = _load(tmp_path, flow_identifiers=False)
    assert {"total_bytes", "rate", "duration"} <= set(plain.schema.features)


def test_split_by_time_refuses_rows_without_a_time(tmp_path):
    """A missing time belongs to no period; before, such rows all landed in TEST."""
    times = _times(1e3)
    times[::50] = np.nan
    _capture(tmp_path, t_ms=times)
    data = _load(tmp_path, identifiers=["t_ms"])
    split = ByTimeSplit(column="t_ms", test_from=float(times[1500]), unit="ms")
    with pytest.raises(DataError, match=r"column 't_ms': 40 row\(s\) without a time; row 0 "
                                        r"\(source row position\) has no value"):
        split(data)
