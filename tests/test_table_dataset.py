"""dataset=table: any labelled flow table (CSV / CSV.gz / Parquet), presets, splits by file/time.

The CICFlowMeter-shaped files are crafted in the published shape (leading-space headers, the
duplicated `Fwd Header Length`, Infinity / NaN rates, a non-ASCII label, BENIGN, identifiers).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import tracking
from bench.data import table
from bench.data.split import ByFileSplit, ByTimeSplit
from bench.errors import ConfigError, DataError

CIC_HEADER = ["Flow ID", " Source IP", " Source Port", " Destination IP", " Destination Port",
              " Protocol", " Timestamp", " Flow Duration", " Total Fwd Packets",
              " Total Backward Packets", "Total Length of Fwd Packets", " Fwd Header Length",
              "Flow Bytes/s", " Flow Packets/s", " Fwd Header Length", " Label"]
CIC_DAYS = {
    "Monday-WorkingHours.pcap_ISCX.csv": ("3/7/2017", ["BENIGN"]),
    "Tuesday-WorkingHours.pcap_ISCX.csv": ("4/7/2017", ["BENIGN", "FTP-Patator"]),
    "Thursday-WorkingHours-Morning-WebAttacks.pcap_ISCX.csv":
        ("6/7/2017", ["BENIGN", "Web Attack \ufffd Brute Force", "FTP-Patator"]),
}


def cic_rows(day: str, labels: list[str], n: int, rng: np.random.Generator) -> list[list[str]]:
    """`n` CICFlowMeter-like rows; attacks have longer flows and more packets."""
    rows = []
    for i in range(n):
        label = labels[0] if len(labels) == 1 or rng.random() < 0.6 else rng.choice(labels[1:])
        attack = label != "BENIGN"
        duration = int(rng.integers(1, 1000) * (50 if attack else 1))
        fwd = int(rng.integers(1, 20) + (30 if attack else 0))
        src, dst = f"192.168.10.{rng.integers(2, 250)}", f"205.174.165.{rng.integers(2, 250)}"
        sport, dport = int(rng.integers(1024, 65535)), int(rng.choice([80, 443, 21, 22]))
        rate = f"{fwd * 1e6 / duration:.6f}"
        rows.append([f"{src}-{dst}-{sport}-{dport}-6", src, str(sport), dst, str(dport), "6",
                     f"{day} {8 + i % 9}:{i % 60:02d}", str(duration), str(fwd),
                     str(int(rng.integers(0, 10))), str(fwd * 60), str(fwd * 20), rate,
                     rate, str(fwd * 20), label])
    rows[3][12], rows[3][13] = "Infinity", "Infinity"  # 0 duration: CICFlowMeter writes these
    rows[5][12] = "NaN"
    return rows


def write_cic(folder: Path, n: int = 300, seed: int = 0) -> dict[str, Path]:
    """The three CIC-IDS2017-shaped day files in `folder`/CIC-IDS2017 (the preset's paths)."""
    rng = np.random.default_rng(seed)
    out = folder / "CIC-IDS2017"
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, (day, labels) in CIC_DAYS.items():
        lines = [",".join(CIC_HEADER)] + [",".join(r) for r in cic_rows(day, labels, n, rng)]
        path = out / name
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths[name] = path
    return paths


def load_cic(data: Path, cache: Path | None, **overrides: object) -> table.Dataset:
    from bench.data.table import load

    options = dict(path=[str(p) for p in sorted((data / "CIC-IDS2017").iterdir())],
                   label="Label", normal=["BENIGN"], family="Label", categorical=[],
                   identifiers=["Flow ID", "Source IP", "Source Port", "Destination IP",
                                "Timestamp"], duplicate_columns="keep_first",
                   non_finite="drop_rows", data_dir=data, cache_dir=cache)
    options.update(overrides)
    return load(**options)


def _bench(cwd: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """The CLI in `cwd` (its default ./mlruns store lands there)."""
    env = {**os.environ, "BENCH_CACHE_DIR": str(cwd / "cache")}
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_cicflowmeter_quirks_are_handled(tmp_path):
    write_cic(tmp_path)
    ds = load_cic(tmp_path, tmp_path / "cache")
    frame, schema = ds.train, ds.schema
    assert "Fwd Header Length" in frame.columns and "Fwd Header Length.1" not in frame.columns
    assert not any(c != c.strip() for c in frame.columns)  # leading spaces stripped
    assert set(frame["Label"]) == {"BENIGN", "FTP-Patator", "Web Attack \ufffd Brute Force"}
    assert (frame["label"] == (frame["Label"] != "BENIGN")).all()
    assert ds.notes["data.non_finite_rows_dropped"] == "6"  # rows 3 and 5 of each file
    assert ds.notes["data.non_finite_cells"] == "9"
    assert np.isfinite(frame[list(schema.numeric)].to_numpy(dtype=float)).all()
    assert frame["source_file"].nunique() == 3 and "source_file" in schema.metadata
    for column in ("Flow ID", "Source IP", "Source Port", "Destination IP", "Timestamp",
                   "Label", "source_file"):
        assert column not in schema.features
    assert frame["Flow Duration"].dtype == np.int32  # compact dtypes
    cached = load_cic(tmp_path, tmp_path / "cache")
    per_file = {k: v for k, v in cached.notes.items() if k.removeprefix("data.file.").isdigit()}
    assert len(per_file) == 3 and all(v.endswith("cache") for v in per_file.values())
    # the run's MLflow dataset inputs name the configured files and a digest of their sha256s
    sources = tracking.split_sources(cached.notes, str(tmp_path), {})
    assert sources["train"] == sources["val"] == sources["test"]
    assert sources["train"][0] != "generated" and len(sources["train"][1]) == 64
    pd.testing.assert_frame_equal(cached.train, frame)


def test_non_finite_policies(tmp_path):
    write_cic(tmp_path)
    with pytest.raises(DataError) as error:
        load_cic(tmp_path, None, non_finite="error")
    message = str(error.value)
    assert "Monday-WorkingHours.pcap_ISCX.csv: line 5, column 'Flow Bytes/s'" in message
    assert "'Infinity'" in message
    clipped = load_cic(tmp_path, None, non_finite="clip")
    assert len(clipped.train) == 900 and clipped.notes["data.non_finite_cells"] == "9"
    rates = clipped.train["Flow Bytes/s"].to_numpy()
    assert np.isfinite(rates).all() and rates.max() == np.finfo(np.float32).max
    assert (rates == 0).sum() >= 3  # NaN -> 0


@pytest.mark.slow
def test_cicids2017_preset_end_to_end_by_file(tmp_path):
    """Identifiers never reach the model; non-finite handling is counted in the run."""
    write_cic(tmp_path / "data")
    result = _bench(tmp_path, "dataset=cicids2017", f"paths.data_dir={tmp_path / 'data'}",
                    "dataset.path=CIC-IDS2017", "split=by_file",
                    "split.test_files=[Thursday-WorkingHours-Morning-WebAttacks.pcap_ISCX.csv]",
                    "model=logreg")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "by file: TRAIN = ['Monday-WorkingHours.pcap_ISCX.csv', " in result.stdout
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    client = MlflowClient(uri)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.data.tags["data.non_finite_rows_dropped"] == "6"
    mlflow.set_tracking_uri(uri)
    from bench.models.decision import load_decision

    local = mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/model")
    pipeline = load_decision(Path(local) / "data" / "decision").pipeline
    seen = set(pipeline["preprocess"].feature_names_in_)
    assert seen.isdisjoint({"Flow ID", "Source IP", "Source Port", "Destination IP",
                            "Timestamp", "Label", "label", "source_file"})
    assert "Flow Bytes/s" in seen and "Destination Port" in seen


# ------------------------------------------------------------------------------------------
# Bad input: one line naming the file(s) and column(s), exit 2, no traceback, no run.

SMALL_HEADER = "proto,bytes,dur,Label"


def _small(folder: Path, name: str, rows: list[str], header: str = SMALL_HEADER) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def _rows(n: int = 40, attack: str = "dos") -> list[str]:
    return [f"{'tcp' if i % 3 else 'udp'},{100 + i},{i * 0.5},{attack if i % 4 == 0 else 'normal'}"
            for i in range(n)]


def _bad_text_column(d: Path) -> list[str]:
    _small(d, "a.csv", _rows())
    _small(d, "b.csv", [r.replace(",", ",x", 2).replace(",x", ",", 1) for r in _rows()])
    return ["a.csv", "b.csv", "dur"]


def _bad_parquet(d: Path) -> list[str]:
    _small(d, "a.csv", _rows())
    frame = pd.read_csv(d / "a.csv").drop(columns=["dur"])
    frame.to_parquet(d / "b.parquet")
    return ["a.csv", "b.parquet", "dur"]


BAD_INPUT = {
    "missing label column": (lambda d: [_small(d, "a.csv", _rows()).name, "Lable"],
                             ["dataset.label=Lable"], ["did you mean 'Label'"]),
    "label value not declared": (lambda d: [_small(d, "a.csv", _rows(attack="worm")).name,
                                            "'Label'", "'worm'", "line 2"],
                                 ["dataset.attack=[dos]"], []),
    "header differs": (lambda d: [_small(d, "a.csv", _rows()).name, _small(
        d, "b.csv", [r.rsplit(",", 2)[0] + "," + r.rsplit(",", 1)[1] for r in _rows()],
        "proto,bytes,Label").name, "dur"], [], ["columns differ"]),
    "glob matches nothing": (lambda d: ["nothing*.csv"], ["dataset.path=nothing*.csv"],
                             ["matches no"]),
    "csv and parquet differ": (_bad_parquet, [], ["columns differ"]),
    "numeric in one file, text in another": (_bad_text_column, [], ["numeric in", "text in"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_raises_a_bench_error_naming_files_and_columns(tmp_path, case):
    from bench.data.table import load
    from bench.errors import BenchError

    make, extra_args, extra_text = BAD_INPUT[case]
    names = make(tmp_path)
    options = {"path": ".", "label": "Label", "normal": ["normal"]}
    for arg in extra_args:
        key, value = arg.removeprefix("dataset.").split("=")
        options[key] = value.strip("[]").split(",") if value.startswith("[") else value
    with pytest.raises(BenchError) as error:
        load(data_dir=tmp_path, cache_dir=tmp_path / "cache", **options)
    for text in [*names, *extra_text]:
        assert text in str(error.value), (text, str(error.value))


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_one_line_before_any_run(tmp_path, case):
    make, extra_args, extra_text = BAD_INPUT[case]
    data = tmp_path / "data"
    data.mkdir()
    names = make(data)
    result = _bench(tmp_path, "dataset=table", f"paths.data_dir={data}", "dataset.path=.",
                    "dataset.label=Label", "dataset.normal=[normal]", *extra_args, timeout=120)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    for text in [*names, *extra_text]:
        assert text in errors[0], (text, errors[0])
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()  # no run was created


# ------------------------------------------------------------------------------------------
# Splits by file and by time


def test_split_by_file_keeps_whole_files_apart(tmp_path):
    write_cic(tmp_path)
    ds = load_cic(tmp_path, None)
    monday, tuesday, thursday = CIC_DAYS
    splits = ByFileSplit(test_files=(thursday,), val_files=(tuesday,))(ds)
    assert set(splits.train["source_file"]) == {monday}
    assert set(splits.val["source_file"]) == {tuesday}
    assert set(splits.test["source_file"]) == {thursday}
    shared = ByFileSplit(test_files=(thursday,), val_size=0.25, seed=1)(ds)
    assert set(shared.val["source_file"]) == set(shared.train["source_file"]) == {monday, tuesday}
    assert set(shared.train.index).isdisjoint(shared.val.index)
    assert len(shared.val) == round(0.25 * (len(shared.train) + len(shared.val)))
    with pytest.raises(ConfigError, match=r"no file 'Friday\.csv' in the dataset"):
        ByFileSplit(test_files=("Friday.csv",))(ds)
    with pytest.raises(ConfigError, match="leaves no file for TRAIN"):
        ByFileSplit(test_files=(thursday,), val_files=(monday, tuesday))(ds)


def test_split_by_time_cuts_on_the_timestamp(tmp_path):
    write_cic(tmp_path)
    ds = load_cic(tmp_path, None)
    splits = ByTimeSplit(column="Timestamp", test_from="6/7/2017", dayfirst=True,
                         val_size=0.5)(ds)
    times = {name: pd.to_datetime(part["Timestamp"].astype(str), format="mixed", dayfirst=True)
             for name, part in (("train", splits.train), ("val", splits.val),
                                ("test", splits.test))}
    assert times["train"].max() <= times["val"].min() < times["test"].min()
    assert set(splits.test["source_file"]) == {"Thursday-WorkingHours-Morning-WebAttacks"
                                               ".pcap_ISCX.csv"}
    featured = load_cic(tmp_path, None, identifiers=[], flow_identifiers=False,
                        categorical=["Timestamp"],
                        drop=["Flow ID", "Source IP", "Destination IP"])
    with pytest.raises(ConfigError, match="is a feature"):
        ByTimeSplit(column="Timestamp", test_from="6/7/2017")(featured)


def test_categorical_inference_and_identifier_flagging(tmp_path):
    from bench.data.table import load

    rows = [f"C{i % 7},{i % 3},10.0.0.{i % 250},{i * 1.5},{'bad' if i % 5 == 0 else 'ok'}"
            for i in range(60)]
    _small(tmp_path, "flows.csv", rows, "uid,service_code,id.orig_h,bytes,verdict")
    ds = load(path="flows.csv", label="verdict", normal="ok", data_dir=tmp_path)
    assert ds.schema.identifiers == ("uid", "id.orig_h")  # well-known flow identifiers
    assert ds.schema.categorical == ()  # every text column is an identifier
    assert ds.schema.numeric == ("service_code", "bytes")
    assert "uid" in ds.notes["data.flow_identifiers"]
    inferred = load(path="flows.csv", label="verdict", normal="ok", data_dir=tmp_path,
                    flow_identifiers=False, max_categories=10, drop=["id.orig_h"])
    assert inferred.schema.categorical == ("uid",)
    assert inferred.notes["data.categorical"] == "inferred (text columns): ['uid']"
    with pytest.raises(DataError, match=r"^flows\.csv: column 'id\.orig_h' is text with 60 "
                       "distinct values"):
        load(path="flows.csv", label="verdict", normal="ok", data_dir=tmp_path,
             flow_identifiers=False, max_categories=10)


def test_sha256_pin_and_duplicate_header_policy(tmp_path):
    from bench.data.table import load

    path = _small(tmp_path, "a.csv", _rows(), "proto,bytes,bytes,Label")
    with pytest.raises(DataError, match=r"a.csv: line 1 \(header\), column 'bytes': duplicate"):
        load(path="a.csv", label="Label", normal="normal", data_dir=tmp_path)
    renamed = load(path="a.csv", label="Label", normal="normal", data_dir=tmp_path,
                   duplicate_columns="rename")
    assert {"bytes", "bytes.1"} <= set(renamed.schema.numeric)
    with pytest.raises(DataError, match="differs from the value pinned"):
        load(path=str(path), label="Label", normal="normal", duplicate_columns="keep_first",
             sha256=["0" * 64 + "  a.csv"])


def test_gzip_and_parquet_files_give_the_same_rows(tmp_path):
    from bench.data.table import load

    plain = _small(tmp_path / "csv", "a.csv", _rows())
    (tmp_path / "gz").mkdir()
    (tmp_path / "gz" / "a.csv.gz").write_bytes(__import__("gzip").compress(plain.read_bytes()))
    (tmp_path / "pq").mkdir()
    pd.read_csv(plain).to_parquet(tmp_path / "pq" / "a.parquet")
    frames = [load(path=str(tmp_path / d), label="Label", normal="normal",
                   cache_dir=tmp_path / "cache").train.drop(columns="source_file")
              for d in ("csv", "gz", "pq")]
    for frame in frames[1:]:
        pd.testing.assert_frame_equal(frame, frames[0], check_dtype=False,
                                      check_categorical=False)


# ------------------------------------------------------------------------------------------
# The real NSL-KDD and UNSW files through dataset=table give what the dedicated loaders give.

PRESETS = Path(__file__).resolve().parent / "table_presets"


def _real_data_dir(*names: str) -> Path:
    from bench.data.files import find

    value = os.environ.get("BENCH_DATA_DIR")
    how = "set BENCH_DATA_DIR=/path/to/datasets (e.g. ../shared/datasets) to run real-data tests"
    if not value:
        pytest.skip(f"BENCH_DATA_DIR is not set: {how}")
    missing = [n for n in names if find(value, n) is None]
    if missing:
        pytest.skip(f"{missing} not in BENCH_DATA_DIR={value}: {how}")
    return Path(value)


def _table_cfg(preset: str, data: Path, cache: Path):
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(PRESETS / preset)
    cfg.data_dir, cfg.cache_dir = str(data), str(cache)
    return cfg


@pytest.mark.real_data
@pytest.mark.slow
@pytest.mark.parametrize(("dedicated", "preset", "files"), [
    ("nslkdd", "nslkdd_table.yaml", ("KDDTrain+.txt", "KDDTest+.txt")),
    ("unsw", "unsw_table.yaml", ("UNSW_NB15_testing-set.csv",)),
])
def test_real_files_through_the_table_dataset_match_the_dedicated_loader(
        compose_cfg, tmp_path, dedicated, preset, files):
    from omegaconf import open_dict

    from bench.experiment import run_experiment
    from bench.instantiate import build

    data = _real_data_dir(*files)
    cfg, choices = compose_cfg(f"dataset={dedicated}", f"paths.data_dir={data}",
                               f"paths.cache_dir={tmp_path / 'cache'}", "model=xgboost",
                               small=False)
    table_cfg = _table_cfg(preset, data, tmp_path / "cache")
    ours, theirs = build(table_cfg), build(cfg.dataset)
    assert ours.schema.features == theirs.schema.features
    for part in ("train", "test"):
        a, b = getattr(ours, part), getattr(theirs, part)
        if b is None:
            assert a is None
            continue
        features = list(theirs.schema.features)
        pd.testing.assert_frame_equal(a[features].astype(object), b[features].astype(object),
                                      check_dtype=False)
        assert (a[ours.schema.label].to_numpy() == b[theirs.schema.label].to_numpy()).all()
    expected = run_experiment(cfg, choices).metrics
    with open_dict(cfg):
        cfg.dataset = table_cfg
    got = run_experiment(cfg, {**choices, "dataset": "table"}).metrics
    test_metrics = sorted(k for k in expected if k.startswith("test_")
                          and "family" not in k and "latency" not in k)
    assert test_metrics
    assert {k: got[k] for k in test_metrics} == {k: expected[k] for k in test_metrics}


def test_zeek_conn_example_composes_and_loads(compose_cfg, tmp_path):
    from bench.instantiate import build

    header = ("ts,uid,id.orig_h,id.orig_p,id.resp_h,id.resp_p,proto,service,duration,"
              "orig_bytes,resp_bytes,conn_state,history,tunnel_parents,label,detailed_label")
    rows = [f"{1545403816.0 + i},C{i}x,192.168.1.{i % 9},{40000 + i},10.0.0.{i % 5},"
            f"{80 if i % 2 else 23},tcp,{'-' if i % 3 else 'http'},{'-' if i % 7 == 0 else i},"
            f"{i * 10},{i},S0,S,(empty),{'Malicious' if i % 4 == 0 else 'Benign'},"
            f"{'PartOfAHorizontalPortScan' if i % 4 == 0 else '-'}" for i in range(80)]
    _small(tmp_path, "conn.csv", rows, header)
    cfg, _ = compose_cfg("dataset=table", "+dataset/examples=zeek_conn", "dataset.path=conn.csv",
                         f"paths.data_dir={tmp_path}", "dataset.normal=[Benign]", small=False)
    ds = build(cfg.dataset)
    assert set(ds.schema.identifiers) == {"ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h",
                                          "id.resp_p"}
    assert set(ds.schema.categorical) == {"proto", "service", "conn_state", "history"}
    assert ds.schema.family == "detailed_label"
    assert ds.notes["data.non_finite_cells"] == str(len(range(0, 80, 7)))  # duration "-"
    assert "(missing)" in set(ds.train["service"])
    assert int(ds.train["label"].sum()) == 20
    assert set(ds.train["detailed_label"]) == {"PartOfAHorizontalPortScan", "Benign"}


def test_a_cache_file_of_another_source_is_discarded_and_rebuilt(tmp_path):
    """A cache file copied under this file's cache name from another CSV with the same
    columns is refused (CacheWarning) and rebuilt from the source; the notes say parsed."""
    import shutil
    import warnings

    from bench.data.cache import CacheWarning, TableCache
    from bench.data.files import digest_file
    from bench.data.table import load

    a = _small(tmp_path, "a.csv", _rows(40, "dos"))
    b = _small(tmp_path, "b.csv", _rows(60, "scan"))
    cache = tmp_path / "cache"

    def read(name: str) -> table.Dataset:
        return load(path=name, label="Label", normal=["normal"], data_dir=tmp_path,
                    cache_dir=cache)

    first = read("a.csv")
    assert read("a.csv").notes["data.file.0"].endswith("cache")
    assert tracking.split_sources(first.notes, str(tmp_path), {})["train"] == (
        str(tmp_path / "a.csv"), hashlib.sha256((tmp_path / "a.csv").read_bytes()).hexdigest())
    read("b.csv")
    (a_file,) = cache.glob(f"*{digest_file(a).sha256}.parquet")
    (b_file,) = cache.glob(f"*{digest_file(b).sha256}.parquet")
    shutil.copyfile(b_file, a_file)  # b's rows under a's cache name
    with pytest.warns(CacheWarning, match="made from another source file"):
        again = read("a.csv")
    pd.testing.assert_frame_equal(again.train, first.train)
    assert again.notes["data.file.0"].endswith("parsed")
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)  # the rebuilt file is used silently
        third = read("a.csv")
    assert third.notes["data.file.0"].endswith("cache")
    pd.testing.assert_frame_equal(third.train, first.train)

    # a cache file written without the source's sha256 (an older bench) is rebuilt too
    TableCache(cache).put(a_file.stem, pd.read_parquet(a_file), "")  # no source sha256
    with pytest.warns(CacheWarning, match="stores no source sha256"):
        assert read("a.csv").notes["data.file.0"].endswith("parsed")


# ------------------------------------------------------------------------------------------
# What never reaches a model: addresses under any name, declared names, bench's own column
# names, label copies; and how the label values were read.


def _flow_table(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Shuffled flows: honest `bytes`, `dur`, `proto`; addresses under common names and under
    innocent ones; columns that are the label in other words; label `Label`."""
    rng = np.random.default_rng(seed)
    attack = rng.random(n) < 0.3
    kind = np.where(attack, rng.choice(["dos", "probe"], n), "none")
    return pd.DataFrame({
        "bytes": rng.integers(100, 2000, n) + attack * rng.integers(0, 800, n),
        "dur": np.round(rng.exponential(1.0, n) * (1 + attack), 4),
        "proto": rng.choice(["tcp", "udp", "icmp"], n),
        "via": [f"10.9.9.{i % 3}" if i % 2 else "gw" for i in range(n)],  # half addresses
        "SRC_IP_ADDR": [f"10.0.{i % 5}.{i % 250}" for i in range(n)],
        "ip.src": [f"192.168.1.{i % 200}" for i in range(n)],
        "Source Address": [f"172.16.0.{i % 100}" for i in range(n)],
        "orig_h": [f"10.1.1.{i % 50}" for i in range(n)],
        "peer": [f"172.16.{i % 3}.{i % 7}" if i % 20 else "-" for i in range(n)],
        "hw": [f"aa:bb:cc:dd:ee:{i % 60:02x}" for i in range(n)],
        "v6": [f"fe80::{i % 30:x}" for i in range(n)],
        "y": attack.astype(int),
        "outcome": np.where(attack, "attack", "normal"),  # not named like a label: found by
        "kind": kind,  # the audit's label-copy rule
        "Traffic Kind": np.where(attack, kind, "-"),
        "Label": np.where(attack, "DoS", "BENIGN"),
    })


NAMED_ADDRESSES = ["SRC_IP_ADDR", "ip.src", "Source Address", "orig_h"]
VALUED_ADDRESSES = ["peer", "hw", "v6"]
LABEL_COPIES = ["y", "outcome", "kind", "Traffic Kind"]
HONEST = ["bytes", "dur", "proto", "via"]


def test_addresses_are_identifiers_under_any_common_name_or_by_their_values(tmp_path):
    from bench.data.table import load

    _flow_table().drop(columns=LABEL_COPIES).to_csv(tmp_path / "flows.csv", index=False)
    ds = load(path="flows.csv", label="Label", normal="BENIGN", data_dir=tmp_path)
    assert set(ds.schema.identifiers) == {*NAMED_ADDRESSES, *VALUED_ADDRESSES}
    assert set(ds.schema.features) == set(HONEST)  # 'via' is half host names: a category
    note = ds.notes["data.flow_identifiers"]
    assert f"well-known flow identifier columns {NAMED_ADDRESSES}" in note
    assert f"columns holding IP / MAC addresses {VALUED_ADDRESSES}" in note
    kept = load(path="flows.csv", label="Label", normal="BENIGN", data_dir=tmp_path,
                flow_identifiers=False)  # the user's opt-out
    assert {*NAMED_ADDRESSES, *VALUED_ADDRESSES} <= set(kept.schema.categorical)
    assert kept.schema.identifiers == () and "data.flow_identifiers" not in kept.notes


def test_label_copies_of_a_table_are_left_out_of_the_features(tmp_path):
    from bench.data.audit import audit
    from bench.data.split import StratifiedSplit
    from bench.data.table import load

    _flow_table().to_csv(tmp_path / "flows.csv", index=False)
    ds = load(path="flows.csv", label="Label", normal="BENIGN", data_dir=tmp_path)
    schema, _, report = audit(ds.schema, StratifiedSplit(seed=0)(ds))
    assert set(schema.features) == set(HONEST)
    assert set(report.dropped_label_copies) == set(LABEL_COPIES)


@pytest.mark.parametrize("key", ["identifiers", "label_proxies", "metadata", "drop"])
def test_a_declared_name_differing_from_a_column_by_case_or_punctuation_is_an_error(
        tmp_path, key):
    from bench.data.table import load

    _small(tmp_path, "a.csv", _rows(), "proto,Src-Port,dur,Label")
    with pytest.raises(DataError) as error:
        load(path="a.csv", label="Label", normal="normal", data_dir=tmp_path,
             **{key: ["src_port"]})
    message = str(error.value)
    assert "a.csv: line 1 (header)" in message and f"(dataset.{key})" in message
    assert "'src_port' not found (did you mean 'Src-Port'?)" in message


def test_a_declared_name_matching_no_column_is_a_warning_with_a_hint(tmp_path, caplog):
    import logging

    from bench.data.table import load

    _small(tmp_path, "a.csv", _rows(), "proto,SrcPort,dur,Label")
    _small(tmp_path, "b.csv", [f"{r},9" for r in _rows()], "proto,SrcPort,dur,Label,extra")
    with caplog.at_level(logging.WARNING, logger="bench.data.table"):
        ds = load(path=["a.csv", "b.csv"], label="Label", normal="normal", data_dir=tmp_path,
                  identifiers=["SrcPrt", "Flow ID"], drop=["extra", "Dst Port"])
    assert ds.notes["data.absent_columns"] == "declared but not in the files: ['SrcPrt', 'Flow ID']"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("nothing was excluded under these names: 'SrcPrt' (did you mean 'SrcPort'?), "
               "'Flow ID'" in w for w in warnings), warnings
    (drop,) = [w for w in warnings if "dataset.drop" in w]
    assert "in no file: 'Dst Port'" in drop and "extra" not in drop  # dropped from b.csv
    assert "SrcPort" in ds.schema.features  # not silently excluded: the warning says so


OWN_NAMES = {  # header, options, what the error says the column is
    "source_file": ("proto,source_file,dur,Label", {}, "each row's file name"),
    "label_value": ("proto,label_value,dur,label", {"label": "label"},
                    "the label column 'label', renamed"),
    "is_attack": ("proto,label,is_attack,Label", {}, "named is_attack as a column is called"),
    "attack_family": ("proto,attack_family,dur,Label", {"families": {"dos": "DoS"}},
                      "dataset.families"),
}


@pytest.mark.parametrize("case", list(OWN_NAMES))
def test_a_header_column_named_like_a_column_bench_adds_is_an_error(tmp_path, case):
    from bench.data.table import load

    header, options, what = OWN_NAMES[case]
    _small(tmp_path, "a.csv", _rows(), header)
    with pytest.raises(DataError) as error:
        load(**{"path": "a.csv", "label": "Label", "normal": "normal", "data_dir": tmp_path,
                **options})
    assert (f"a.csv: line 1 (header), column '{case}': bench adds a column of that name"
            in str(error.value))
    assert what in str(error.value) and "dataset.drop" in str(error.value)


def test_a_column_called_label_beside_the_label_column_is_a_label_proxy(tmp_path):
    from bench.data.table import load

    _small(tmp_path, "a.csv", _rows(), "proto,label,dur,Label")
    ds = load(path="a.csv", label="Label", normal="normal", data_dir=tmp_path)
    assert ds.schema.label == "is_attack" and "label" in ds.schema.label_proxies
    assert "label" not in ds.schema.features



@pytest.mark.parametrize("name", ["attack_cat", "Attack Type", "class", "is_malicious",
                                  "Verdict"])
def test_a_column_named_like_a_label_is_a_label_proxy_unless_declared_a_feature(tmp_path, name):
    """An attack category or verdict with a few wrong values is not a perfect copy (the audit's
    label-copy rule misses it), but by its name it states the label: never a feature."""
    from bench.data.table import load

    _small(tmp_path, "a.csv", _rows(), f"proto,{name},dur,Label")
    ds = load(path="a.csv", label="Label", normal="normal", data_dir=tmp_path)
    assert name in ds.schema.label_proxies and name not in ds.schema.features
    assert repr(name) in ds.notes["data.label_proxies"]
    kept = load(path="a.csv", label="Label", normal="normal", data_dir=tmp_path,
                categorical=["proto", name])
    assert name in kept.schema.features and "data.label_proxies" not in kept.notes


def test_label_values_are_counted_per_side_and_near_misses_warned(tmp_path, caplog):
    import logging

    from bench.data.table import load

    rows = _rows(40)  # rows 0, 4, ... are 'dos', the others 'normal'
    rows[1], rows[2] = rows[1].replace(",normal", ",Normal"), rows[2].replace(",normal",
                                                                             ",normal ")
    _small(tmp_path, "a.csv", rows)
    with caplog.at_level(logging.WARNING, logger="bench.data.table"):
        ds = load(path="a.csv", label="Label", normal="normal", data_dir=tmp_path)
    assert ds.notes["data.label_values"] == ("'normal' 28 normal, 'dos' 10 attack, "
                                             "'Normal' 1 attack, 'normal ' 1 attack")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert ("[data] label value 'normal ' (1 row) differs from the dataset.normal value "
            "'normal' only by surrounding spaces or case: counted as an attack") in " ".join(
        warnings)
    assert sum("'Normal' (1 row)" in w for w in warnings) == 1
    caplog.clear()
    rows[4] = rows[4].replace(",dos", ",DoS ")
    _small(tmp_path, "b.csv", rows)
    with caplog.at_level(logging.WARNING, logger="bench.data.table"):
        load(path="b.csv", label="Label", attack="dos", data_dir=tmp_path)
    assert any("'DoS ' (1 row) differs from the dataset.attack value 'dos'" in r.getMessage()
               and "counted as normal" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_addresses_and_label_copies_never_reach_the_model_end_to_end(tmp_path):
    """One CLI run: the model's input and reports/selected_features.txt hold only the honest
    features; data_audit.json names the label copies. Then a file whose `label_value` column
    clashes with the renamed label is one error line (it was an AttributeError traceback)."""
    import json

    import mlflow
    from mlflow.tracking import MlflowClient

    from bench.models.decision import load_decision

    data = tmp_path / "data"
    data.mkdir()
    _flow_table().to_csv(data / "flows.csv", index=False)
    result = _bench(tmp_path, "dataset=table", f"paths.data_dir={data}", "dataset.path=flows.csv",
                    "dataset.label=Label", "dataset.normal=[BENIGN]", "model=logreg",
                    "evaluation.plots=none")
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    for column in LABEL_COPIES:
        assert f"feature {column!r} is the label in other words" in output, column
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    client = MlflowClient(uri)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    mlflow.set_tracking_uri(uri)
    local = Path(mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/reports",
                                                     dst_path=str(tmp_path / "reports")))
    selected = (local / "selected_features.txt").read_text().split()
    assert {name.split("__", 1)[1].split("_")[0] for name in selected} == set(HONEST)
    audit = json.loads((local / "data_audit.json").read_text())
    assert set(audit["dropped_label_copies"]) == set(LABEL_COPIES)
    assert run.data.tags["audit.dropped_label_copies"] == "4"
    model = Path(mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/model"))
    seen = set(load_decision(model / "data" / "decision").pipeline["preprocess"]
               .feature_names_in_)
    assert seen == set(HONEST)

    _flow_table(n=50)[["bytes", "Label"]].rename(columns={"Label": "label"}).assign(
        label_value=1).to_csv(data / "clash.csv", index=False)
    result = _bench(tmp_path, "dataset=table", f"paths.data_dir={data}",
                    "dataset.path=clash.csv", "dataset.label=label", "dataset.normal=[BENIGN]")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "column 'label_value': bench adds a column" in errors[0]


def test_a_label_value_equal_in_number_to_a_declared_one_is_warned(tmp_path, caplog):
    """'0.0' beside a declared normal 0 went to the attack side silently (compared as text)."""
    import logging

    from bench.data.table import load

    rows = [r.replace(",normal", ",0").replace(",dos", ",1") for r in _rows(40)]
    rows[1], rows[2], rows[4] = (rows[1][:-2] + ",0.0", rows[2][:-2] + ",0.0",
                                 rows[4][:-2] + ",1.0")
    _small(tmp_path, "a.csv", rows)
    with caplog.at_level(logging.WARNING, logger="bench.data.table"):
        ds = load(path="a.csv", label="Label", normal=[0], data_dir=tmp_path)
    assert "'0.0' 2 attack" in ds.notes["data.label_values"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("label value '0.0' (2 rows) differs from the dataset.normal value '0' only in "
               "how the number is written" in w and "counted as an attack" in w
               for w in warnings), warnings
    assert not any("'1.0'" in w for w in warnings)  # 1 and 1.0 are both attacks: no matter


def test_a_header_wider_than_max_columns_is_refused_before_any_row_is_read(tmp_path):
    """A 100,000-column header parsed for minutes and wrote a 51 MB cache."""
    from bench.data.table import load

    header = ",".join(f"c{i}" for i in range(6000)) + ",Label"
    (tmp_path / "wide.csv").write_text(header + "\n" + ",".join(["1"] * 6000) + ",0\n")
    with pytest.raises(DataError, match=r"wide.csv: line 1 \(header\): 6,001 columns, more "
                                        r"than dataset.max_columns=5,000"):
        load(path="wide.csv", label="Label", normal=["0"], data_dir=tmp_path,
             cache_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("**/*.parquet"))
    with pytest.raises(ConfigError, match=r"dataset\.max_columns=0"):
        load(path="wide.csv", label="Label", normal=["0"], data_dir=tmp_path, max_columns=0)
