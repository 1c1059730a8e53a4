"""Dataset loaders on small crafted files (plain and .gz): validation, verification, cache."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from bench.app import CONFIG_DIR
from bench.data import cache as cache_mod
from bench.data import files, kaggle_nid, nslkdd, snmp_mib, unsw
from bench.data.cache import CacheWarning, TableCache, load_table
from bench.data.dataset import Dataset
from bench.data.files import DataWarning, KnownFile, TableSpec, read_table
from bench.errors import ConfigError, DataError

CONF_DIR = Path(CONFIG_DIR)

# ------------------------------------------------------------------------------------------
# crafted files


def nsl_row(attack: str = "normal", i: int = 0, difficulty: int = 20) -> list[str]:
    values = {"protocol_type": "tcp", "service": "http", "flag": "SF"}
    row = [values.get(c, f"{(i * 7 + k) % 5}.{k % 10}0" if k > 20 else str((i + k) % 3))
           for k, c in enumerate(nslkdd.FEATURES)]
    return [*row, attack, str(difficulty)]


NSL_ATTACKS = ["normal", "neptune", "apache2", "mscan", "httptunnel", "worm", "normal", "satan"]


def nsl_text(n: int = 8) -> str:
    return "".join(",".join(nsl_row(NSL_ATTACKS[i % len(NSL_ATTACKS)], i)) + "\n"
                   for i in range(n))


def unsw_row(i: int, attack_cat: str = "Normal") -> list[str]:
    label = "0" if attack_cat == "Normal" else "1"
    fixed = {"id": str(i + 1), "proto": "tcp", "service": "-", "state": "FIN",
             "attack_cat": attack_cat, "label": label, "dur": f"0.{i:06d}"}
    return [fixed.get(c, str((i * 3 + k) % 11)) for k, c in enumerate(unsw.COLUMNS)]


def unsw_text(n: int = 6, cats: tuple[str, ...] = ("Normal", "Exploits", "Generic")) -> str:
    """UNSW-style file: BOM, header, CRLF line endings."""
    lines = [",".join(unsw.COLUMNS)]
    lines += [",".join(unsw_row(i, cats[i % len(cats)])) for i in range(n)]
    return "\ufeff" + "\r\n".join(lines) + "\r\n"


def kaggle_text(n: int = 6, labelled: bool = True) -> str:
    cols = [*nslkdd.FEATURES, "class"] if labelled else list(nslkdd.FEATURES)
    lines = [",".join(cols)]
    for i in range(n):
        row = nsl_row(i=i)[:41]
        lines.append(",".join([*row, "anomaly" if i % 2 else "normal"] if labelled else row))
    return "\r\n".join(lines) + "\r\n"


SNMP_CLASSES = ["normal", "tcp-syn", "slowloris", "httpFlood"]


def snmp_text(n: int = 8) -> str:
    lines = [",".join([*snmp_mib.COUNTERS, "class"])]
    for i in range(n):
        counters = [str(1000 * i + k) for k in range(len(snmp_mib.COUNTERS))]
        lines.append(",".join([*counters, SNMP_CLASSES[i % len(SNMP_CLASSES)]]))
    return "\r\n".join(lines) + "\r\n"


def write(directory: Path, name: str, text: str | bytes, gz: bool = False) -> Path:
    """Write `text` as `directory/name`, or gzip-compressed as `directory/name.gz`."""
    directory.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8") if isinstance(text, str) else text
    if gz:
        path = directory / f"{name}.gz"
        path.write_bytes(gzip.compress(data, mtime=0))
    else:
        path = directory / name
        path.write_bytes(data)
    return path


def assert_cache_empty(cache_dir: Path) -> None:
    assert not cache_dir.exists() or not any(cache_dir.iterdir()), list(cache_dir.iterdir())


@pytest.fixture(params=[False, True], ids=["plain", "gz"])
def gz(request: pytest.FixtureRequest) -> bool:
    return request.param


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "data", tmp_path / "cache"


# ------------------------------------------------------------------------------------------
# happy paths


def test_nslkdd_loads_labels_families_and_metadata(dirs: tuple[Path, Path], gz: bool) -> None:
    data, cache = dirs
    write(data, "train.txt", nsl_text(8), gz)
    write(data, "test.txt", nsl_text(5), gz)
    ds = nslkdd.load(data, cache, train_file="train.txt", test_file="test.txt")
    assert isinstance(ds, Dataset)
    assert ds.train["label"].dtype == "int64"
    assert ds.train["label"].tolist() == [0, 1, 1, 1, 1, 1, 0, 1]
    assert ds.train["attack_family"].tolist() == [
        "normal", "DoS", "DoS", "Probe", "U2R", "R2L", "normal", "Probe"]
    assert len(ds.test) == 5
    features = ds.schema.features
    assert len(features) == 41
    for column in ("difficulty", "attack", "attack_family", "label"):
        assert column in ds.train.columns and column not in features
    assert ds.notes["data.partition"].startswith("official files")
    assert ds.notes["data.verify.train"].startswith("unknown")


def test_nslkdd_without_test_file_announces_resplit(dirs: tuple[Path, Path]) -> None:
    data, cache = dirs
    write(data, "train.txt", nsl_text(4))
    ds = nslkdd.load(data, cache, train_file="train.txt", test_file=None)
    assert ds.test is None
    assert "re-split" in ds.notes["data.resplit"]


def test_attack_family_mapping_is_complete() -> None:
    assert set(nslkdd.ATTACK_FAMILY.values()) == {"normal", "DoS", "Probe", "R2L", "U2R"}
    for name in ("apache2", "mailbomb", "processtable", "udpstorm", "mscan", "saint",
                 "httptunnel", "named", "sendmail", "snmpgetattack", "snmpguess", "worm",
                 "xlock", "xsnoop", "ps", "sqlattack", "xterm", "warezclient", "spy"):
        assert name in nslkdd.ATTACK_FAMILY
    assert len(nslkdd.ATTACK_FAMILY) == 40  # normal + 22 training + 17 test-only attacks


def test_unsw_one_file_is_resplit_with_bom_and_crlf(dirs: tuple[Path, Path], gz: bool) -> None:
    data, cache = dirs
    write(data, "part.csv", unsw_text(6), gz)
    ds = unsw.load(data, cache, train_file=None, test_file="part.csv")
    assert ds.test is None
    assert list(ds.train.columns) == list(unsw.COLUMNS)  # BOM stripped from "id"
    assert ds.train["id"].tolist() == [1, 2, 3, 4, 5, 6]  # file order
    assert ds.train["label"].tolist() == [0, 1, 1, 0, 1, 1]
    assert "re-split" in ds.notes["data.resplit"]
    for column in ("id", "attack_cat", "label"):
        assert column not in ds.schema.features
    assert set(ds.schema.categorical) == {"proto", "service", "state"}


def test_kaggle_nid_train_and_unlabelled(dirs: tuple[Path, Path], gz: bool) -> None:
    data, cache = dirs
    write(data, "tr.csv", kaggle_text(6), gz)
    write(data, "te.csv", kaggle_text(3, labelled=False), gz)
    ds = kaggle_nid.load(data, cache, train_file="tr.csv", unlabelled_file="te.csv")
    assert ds.test is None and len(ds.unlabelled) == 3
    assert ds.train["label"].tolist() == [0, 1, 0, 1, 0, 1]
    assert "class" not in ds.schema.features and ds.schema.family is None
    assert "re-split" in ds.notes["data.resplit"]
    assert kaggle_nid.load(data, cache, train_file="tr.csv", unlabelled_file=None
                           ).unlabelled is None


def test_snmp_mib_question_mark_column(dirs: tuple[Path, Path], gz: bool) -> None:
    data, cache = dirs
    write(data, "snmp.csv", snmp_text(8), gz)
    ds = snmp_mib.load(data, cache, train_file="snmp.csv")
    assert "tcp?ActiveOpens" in ds.schema.features and len(ds.schema.numeric) == 34
    assert ds.train["label"].tolist() == [0, 1, 1, 1] * 2
    assert ds.schema.family == "class" and "class" in ds.schema.label_proxies
    assert "split=blocked" in ds.notes["data.resplit"]


# ------------------------------------------------------------------------------------------
# malformed files: one DataError naming file, line, column and value; nothing cached


def _replace_field(text: str, line: int, column: int, value: str, sep: str = "\n") -> str:
    lines = text.split(sep)
    fields = lines[line - 1].split(",")
    fields[column] = value
    lines[line - 1] = ",".join(fields)
    return sep.join(lines)


SRC_BYTES = nslkdd.FEATURES.index("src_bytes")
SAME_SRV = nslkdd.FEATURES.index("same_srv_rate")

def _drop_last_field(text: str, line: int) -> str:
    lines = text.split("\n")
    lines[line - 1] = lines[line - 1].rsplit(",", 1)[0]
    return "\n".join(lines)


NSL_CASES: dict[str, tuple[Callable[[str], str], list[str]]] = {
    "non_numeric": (lambda t: _replace_field(t, 3, SRC_BYTES, "12x"),
                    ["line 3", "'src_bytes'", "'12x'"]),
    "nan": (lambda t: _replace_field(t, 4, SAME_SRV, "NaN"),
            ["line 4", "'same_srv_rate'", "'NaN'"]),
    "infinity": (lambda t: _replace_field(t, 2, SAME_SRV, "inf"),
                 ["line 2", "'same_srv_rate'", "'inf'"]),
    "missing_value": (lambda t: _replace_field(t, 5, SRC_BYTES, ""),
                      ["line 5", "'src_bytes'", "missing value"]),
    "missing_category": (lambda t: _replace_field(t, 2, 2, ""), ["line 2", "'service'"]),
    "unknown_attack": (lambda t: _replace_field(t, 6, 41, "teleport"),
                       ["line 6", "'attack'", "'teleport'", "unknown label"]),
    "too_many_fields": (lambda t: _replace_field(t, 3, 42, "20,7"),
                        ["line 3", "44 fields, expected 43"]),
    "too_few_fields": (lambda t: _drop_last_field(t, 4), ["line 4", "42 fields, expected 43"]),
    "first_row_too_many": (lambda t: _replace_field(t, 1, 0, "0,0"),
                           ["line 1", "44 fields, expected 43"]),
    "blank_line": (lambda t: t.replace("\n", "\n\n", 2).replace("\n\n", "\n", 1),
                   ["line 3", "0 fields, expected 43"]),
    "empty": (lambda t: "", ["empty file"]),
}




@pytest.mark.parametrize("case", sorted(NSL_CASES))
def test_malformed_nslkdd_file_raises_dataerror(dirs: tuple[Path, Path], gz: bool,
                                                 case: str) -> None:
    data, cache = dirs
    corrupt, expected = NSL_CASES[case]
    path = write(data, "bad.txt", corrupt(nsl_text(8)), gz)
    with pytest.raises(DataError) as err:
        nslkdd.load(data, cache, train_file="bad.txt", test_file=None)
    message = str(err.value)
    assert str(path) in message
    for part in expected:
        assert part in message, message
    assert_cache_empty(cache)


def _unsw_header(t: str, old: str, new: str) -> str:
    head, rest = t.split("\r\n", 1)
    return head.replace(old, new, 1) + "\r\n" + rest


UNSW_CASES: dict[str, tuple[Callable[[str], str], list[str]]] = {
    "missing_column": (lambda t: _unsw_header(t, ",sbytes", ",sbytez"),
                       ["line 1", "'sbytes'", "missing", "unexpected", "'sbytez'"]),
    "duplicate_column": (lambda t: _unsw_header(t, ",dbytes", ",sbytes"),
                         ["line 1", "duplicate column", "'sbytes'"]),
    "bad_label": (lambda t: _replace_field(t, 3, 44, "2", sep="\r\n"),
                  ["line 3", "'label'", "'2'", "unknown label"]),
    "bad_attack_cat": (lambda t: _replace_field(t, 4, 43, "Backdoors", sep="\r\n"),
                       ["line 4", "'attack_cat'", "'Backdoors'"]),
    "label_contradicts_attack_cat": (lambda t: _replace_field(t, 2, 44, "1", sep="\r\n"),
                                     ["line 2", "'label'", "'Normal'"]),
    "non_numeric_id": (lambda t: _replace_field(t, 5, 0, "x5", sep="\r\n"),
                       ["line 5", "'id'", "'x5'"]),
    "negative_infinity": (lambda t: _replace_field(t, 6, 1, "-inf", sep="\r\n"),
                          ["line 6", "'dur'", "'-inf'"]),
    "header_only": (lambda t: t.split("\r\n", 1)[0] + "\r\n", ["empty file"]),
    "zero_bytes": (lambda t: "", ["empty file"]),
}


@pytest.mark.parametrize("case", sorted(UNSW_CASES))
def test_malformed_unsw_file_raises_dataerror(dirs: tuple[Path, Path], gz: bool,
                                               case: str) -> None:
    data, cache = dirs
    corrupt, expected = UNSW_CASES[case]
    path = write(data, "u.csv", corrupt(unsw_text(6)), gz)
    with pytest.raises(DataError) as err:
        unsw.load(data, cache, train_file="u.csv", test_file=None)
    message = str(err.value)
    assert str(path) in message
    for part in expected:
        assert part in message, message
    assert_cache_empty(cache)


def test_unknown_class_in_kaggle_and_snmp(dirs: tuple[Path, Path]) -> None:
    data, cache = dirs
    path = write(data, "tr.csv", kaggle_text(4).replace("anomaly", "attack", 1))
    with pytest.raises(DataError, match=r"line 3, column 'class'.*'attack'") as err:
        kaggle_nid.load(data, cache, train_file="tr.csv", unlabelled_file=None)
    assert str(path) in str(err.value)
    write(data, "s.csv", snmp_text(4).replace("slowloris", "slowlorris"))
    with pytest.raises(DataError, match=r"line 4, column 'class'.*'slowlorris'"):
        snmp_mib.load(data, cache, train_file="s.csv")
    write(data, "s2.csv", snmp_text(4).replace("tcp?ActiveOpens", "tcpActiveOpens"))
    with pytest.raises(DataError, match=r"line 1.*'tcp\?ActiveOpens'"):
        snmp_mib.load(data, cache, train_file="s2.csv")
    assert_cache_empty(cache)


@pytest.mark.parametrize("damage", ["truncated", "bad_crc", "not_gzip"])
def test_damaged_gzip_names_the_file(dirs: tuple[Path, Path], damage: str) -> None:
    data, cache = dirs
    path = write(data, "train.txt", nsl_text(200), gz=True)
    raw = path.read_bytes()
    if damage == "truncated":
        raw = raw[: len(raw) // 2]
    elif damage == "bad_crc":
        raw = raw[:-8] + bytes(b ^ 0xFF for b in raw[-8:-4]) + raw[-4:]
    else:
        raw = b"this is not gzip at all\n" * 10
    path.write_bytes(raw)
    with pytest.raises(DataError, match="gzip") as err:
        nslkdd.load(data, cache, train_file="train.txt", test_file=None)
    assert str(path) in str(err.value)
    assert_cache_empty(cache)


def test_read_table_reports_truncated_gzip_during_parse(tmp_path: Path) -> None:
    path = write(tmp_path, "t.txt", nsl_text(300), gz=True)
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(DataError, match="truncated or corrupt gzip") as err:
        read_table(path, nslkdd.SPEC)
    assert str(path) in str(err.value)


def test_non_utf8_bytes_name_the_file(dirs: tuple[Path, Path]) -> None:
    data, cache = dirs
    path = write(data, "train.txt", nsl_text(4).encode().replace(b"http", b"ht\xfftp", 1))
    with pytest.raises(DataError, match="UTF-8") as err:
        nslkdd.load(data, cache, train_file="train.txt", test_file=None)
    assert str(path) in str(err.value)


def test_missing_file_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BENCH_DATA_DIR", raising=False)
    empty = tmp_path / "nowhere"
    empty.mkdir()
    cases = [
        (lambda: nslkdd.load(empty), "KDDTrain+.txt", "https://www.unb.ca/cic/datasets/nsl.html"),
        (lambda: kaggle_nid.load(empty), "Train_data.csv",
         "https://www.kaggle.com/datasets/sampadab17/network-intrusion-detection"),
        (lambda: snmp_mib.load(empty), "SNMP-MIB.csv", "researchgate.net/publication/309807745"),
        (lambda: unsw.load(empty), "UNSW_NB15_testing-set.csv",
         "https://research.unsw.edu.au/projects/unsw-nb15-dataset"),
    ]
    for load, name, url in cases:
        with pytest.raises(DataError) as err:
            load()
        message = str(err.value)
        for part in (name, f"{name}.gz", str(empty.resolve()), "BENCH_DATA_DIR", url):
            assert part in message, message
    with pytest.raises(DataError, match=r"neither 'UNSW_NB15_training-set\.csv' nor"):
        unsw.load(empty)


def test_missing_test_file_is_an_error_even_if_train_exists(dirs: tuple[Path, Path]) -> None:
    data, cache = dirs
    write(data, "train.txt", nsl_text(4))
    with pytest.raises(DataError, match=r"KDDTest-21\.txt"):
        nslkdd.load(data, cache, train_file="train.txt", test_file="KDDTest-21.txt")


def test_plain_file_is_preferred_and_gz_name_accepted(dirs: tuple[Path, Path]) -> None:
    data, _ = dirs
    plain = write(data, "x.txt", nsl_text(2))
    write(data, "x.txt", nsl_text(3), gz=True)
    assert files.locate(data, "x.txt", "nslkdd") == plain
    assert files.locate(data, "x.txt.gz", "nslkdd").name == "x.txt.gz"


def test_invalid_verify_mode_is_a_config_error(dirs: tuple[Path, Path]) -> None:
    data, cache = dirs
    with pytest.raises(ConfigError, match=r"dataset\.verify"):
        nslkdd.load(data, cache, verify="maybe")


# ------------------------------------------------------------------------------------------
# verification


def test_checksum_mismatch_warns_with_both_hashes(dirs: tuple[Path, Path], gz: bool) -> None:
    data, cache = dirs
    path = write(data, "KDDTrain+.txt", nsl_text(4), gz)
    actual = hashlib.sha256(nsl_text(4).encode()).hexdigest()  # of the uncompressed bytes
    with pytest.warns(DataWarning) as record:
        ds = nslkdd.load(data, cache, test_file=None)
    message = str(record[0].message)
    assert "KDDTrain+.txt" in message
    assert files.KNOWN_FILES["KDDTrain+.txt"].sha256 in message and actual in message
    assert ds.notes["data.sha256.train"] == actual
    assert ds.notes["data.verify.train"].startswith("mismatch")
    # strict: an error, and nothing is cached
    shutil.rmtree(cache, ignore_errors=True)
    with pytest.raises(DataError, match="checksum mismatch"):
        nslkdd.load(data, cache, verify="strict", test_file=None)
    assert_cache_empty(cache)
    assert path.exists()


def test_verify_ok_when_content_matches(dirs: tuple[Path, Path],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    data, cache = dirs
    text = nsl_text(4)
    write(data, "KDDTest+.txt", text, gz=True)
    good = KnownFile("KDDTest+.txt", "nslkdd", "test copy", 4, len(text),
                     hashlib.sha256(text.encode()).hexdigest())
    monkeypatch.setitem(files.KNOWN_FILES, "KDDTest+.txt", good)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        ds = nslkdd.load(data, cache, verify="strict", train_file="KDDTest+.txt",
                         test_file=None)
    assert ds.notes["data.verify"].startswith("ok")


def test_md5_only_entry_verifies_by_md5_and_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """The UNSW training partition has no published sha256: md5 + size are compared."""
    data = b"id,label\n1,0\n"
    digest = files.FileDigest(hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest(),
                              len(data))
    entry = KnownFile("UNSW_NB15_training-set.csv", "unsw", "training (crafted)", 1, len(data),
                      None, hashlib.md5(data).hexdigest())
    monkeypatch.setitem(files.KNOWN_FILES, entry.name, entry)
    result = files.verify_file(entry.name, digest, "strict")
    assert (result.status, result.content) == ("ok", entry)
    assert "md5 and size" in result.message
    other = files.FileDigest("0" * 64, "f" * 32, len(data))
    with pytest.warns(DataWarning, match=f"expected md5 {entry.md5}.*got md5 {'f' * 32}"):
        assert files.verify_file(entry.name, other, "warn").status == "mismatch"


# ------------------------------------------------------------------------------------------
# UNSW partitions: recognised by content, swapped names warn


@pytest.fixture
def small_partitions(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Pretend the official partitions have 7 (training) and 5 (testing) rows."""
    monkeypatch.setattr(unsw, "PARTITION_ROWS", {"training": 7, "testing": 5})
    return {"training": unsw_text(7), "testing": unsw_text(5)}


def test_unsw_both_partitions_official_split(dirs: tuple[Path, Path],
                                             small_partitions: dict[str, str]) -> None:
    data, cache = dirs
    write(data, "UNSW_NB15_training-set.csv", small_partitions["training"])
    write(data, "UNSW_NB15_testing-set.csv", small_partitions["testing"], gz=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # crafted files: checksum mismatch
        ds = unsw.load(data, cache)
    assert (len(ds.train), len(ds.test)) == (7, 5)
    assert "official split" in ds.notes["data.partition"]
    assert "data.resplit" not in ds.notes


def test_unsw_swapped_names_warn_and_are_used_by_content(
        dirs: tuple[Path, Path], small_partitions: dict[str, str]) -> None:
    data, cache = dirs
    write(data, "UNSW_NB15_training-set.csv", small_partitions["testing"])
    write(data, "UNSW_NB15_testing-set.csv", small_partitions["training"])
    with pytest.warns(DataWarning, match="swap") as record:
        ds = unsw.load(data, cache, verify="off")
    assert len([w for w in record if "swap" in str(w.message)]) == 2
    assert (len(ds.train), len(ds.test)) == (7, 5)


def test_unsw_single_file_recognised_by_checksum(dirs: tuple[Path, Path],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    data, cache = dirs
    text = unsw_text(6)
    write(data, "UNSW_NB15_training-set.csv", text, gz=True)  # Kaggle's name for testing
    known = KnownFile("UNSW_NB15_testing-set.csv", "unsw", "UNSW-NB15 testing (crafted)", 6,
                      len(text.encode()), hashlib.sha256(text.encode()).hexdigest())
    monkeypatch.setitem(files.KNOWN_FILES, "UNSW_NB15_testing-set.csv", known)
    with pytest.warns(DataWarning, match=r"holds the UNSW-NB15 testing partition.*checksum"):
        ds = unsw.load(data, cache, verify="strict")
    assert ds.test is None and len(ds.train) == 6
    assert "only the testing partition found" in ds.notes["data.resplit"]
    assert ds.notes["data.verify.train"].startswith("renamed")


def test_unsw_same_partition_twice_is_an_error(dirs: tuple[Path, Path],
                                               small_partitions: dict[str, str]) -> None:
    data, cache = dirs
    write(data, "UNSW_NB15_training-set.csv", small_partitions["testing"])
    write(data, "UNSW_NB15_testing-set.csv", small_partitions["testing"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        with pytest.raises(DataError, match="both hold the UNSW-NB15 testing partition"):
            unsw.load(data, cache, verify="off")


# ------------------------------------------------------------------------------------------
# cache


def test_cache_round_trip_equals_parse(dirs: tuple[Path, Path], gz: bool,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    data, cache = dirs
    write(data, "u.csv", unsw_text(9), gz)
    parsed = unsw.load(data, None, train_file=None, test_file="u.csv")
    first = unsw.load(data, cache, train_file=None, test_file="u.csv")
    assert len(list(cache.glob("*.parquet"))) == 1
    # second load: neither parsed nor hashed again
    monkeypatch.setattr(cache_mod, "read_table", _forbidden("read_table"))
    monkeypatch.setattr(cache_mod, "digest_file", _forbidden("digest_file"))
    second = unsw.load(data, cache, train_file=None, test_file="u.csv")
    for frame in (first.train, second.train):
        pd.testing.assert_frame_equal(frame, parsed.train)
    assert second.notes == parsed.notes


def _forbidden(name: str) -> Callable[..., None]:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"{name} must not be called on a warm cache")

    return fail


def test_cache_key_follows_content(dirs: tuple[Path, Path]) -> None:
    data, cache = dirs
    path = write(data, "train.txt", nsl_text(4))
    nslkdd.load(data, cache, train_file="train.txt", test_file=None)
    path.write_text(nsl_text(6))  # same path, new content (and a new mtime/size)
    ds = nslkdd.load(data, cache, train_file="train.txt", test_file=None)
    assert len(ds.train) == 6
    assert len(list(cache.glob("*.parquet"))) == 2
    sha = hashlib.sha256(nsl_text(6).encode()).hexdigest()
    assert any(sha in p.name for p in cache.glob("*.parquet"))


def test_crash_while_writing_leaves_no_loadable_cache(dirs: tuple[Path, Path],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    data, cache = dirs
    write(data, "train.txt", nsl_text(8))
    real_write = cache_mod._write_parquet

    def half_write_then_fail(frame: pd.DataFrame, target: Path, *meta: object) -> None:
        real_write(frame, target, *meta)
        target.write_bytes(target.read_bytes()[:50])  # a partial file on disk
        raise OSError("disk full")

    monkeypatch.setattr(cache_mod, "_write_parquet", half_write_then_fail)
    with pytest.warns(CacheWarning, match="disk full"):
        ds = nslkdd.load(data, cache, train_file="train.txt", test_file=None)
    assert len(ds.train) == 8  # the run goes on with the parsed data
    assert list(cache.glob("*.parquet")) == [] and list(cache.glob(".*.tmp")) == []

    class Killed(BaseException):
        pass

    def die(frame: pd.DataFrame, target: Path, *meta: object) -> None:
        target.write_bytes(b"PAR1 partial")
        raise Killed

    monkeypatch.setattr(cache_mod, "_write_parquet", die)
    with pytest.raises(Killed):
        nslkdd.load(data, cache, train_file="train.txt", test_file=None)
    assert list(cache.glob("*.parquet")) == [] and list(cache.glob(".*.tmp")) == []

    monkeypatch.setattr(cache_mod, "_write_parquet", real_write)
    again = nslkdd.load(data, cache, train_file="train.txt", test_file=None)
    pd.testing.assert_frame_equal(again.train, ds.train)
    assert len(list(cache.glob("*.parquet"))) == 1


def test_damaged_cache_file_is_ignored_and_rewritten(dirs: tuple[Path, Path]) -> None:
    data, cache = dirs
    write(data, "snmp.csv", snmp_text(8))
    good = snmp_mib.load(data, cache, train_file="snmp.csv")
    (target,) = cache.glob("*.parquet")
    target.write_bytes(b"garbage")
    with pytest.warns(CacheWarning, match="unreadable cache file"):
        again = snmp_mib.load(data, cache, train_file="snmp.csv")
    pd.testing.assert_frame_equal(again.train, good.train)
    pd.testing.assert_frame_equal(pd.read_parquet(target), good.train)


def test_load_table_without_cache_dir_writes_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, "t.txt", nsl_text(3))
    table = load_table(path, TableSpec(columns=nslkdd.SPEC.columns, numeric=nslkdd.SPEC.numeric,
                                       header=False), TableCache(None), "test.v1")
    assert not table.cache_hit and len(table.frame) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.txt"]


# ------------------------------------------------------------------------------------------
# Hydra configs


@pytest.fixture
def conf_copy(tmp_path: Path) -> Path:
    """conf/dataset and conf/paths with a minimal primary config (independent of other groups)."""
    root = tmp_path / "conf"
    shutil.copytree(CONF_DIR / "dataset", root / "dataset")
    shutil.copytree(CONF_DIR / "paths", root / "paths")
    (root / "config.yaml").write_text(
        "defaults:\n  - paths: default\n  - dataset: nslkdd\n  - _self_\nseed: 0\n")
    return root


@pytest.mark.parametrize(("choice", "expected"), [
    ("nslkdd", {"train_file": "KDDTrain+.txt", "test_file": "KDDTest+.txt"}),
    ("nslkdd_test21", {"train_file": "KDDTrain+.txt", "test_file": "KDDTest-21.txt"}),
    ("nslkdd_20pct", {"train_file": "KDDTrain+_20Percent.txt", "test_file": "KDDTest+.txt"}),
    ("unsw", {"train_file": "UNSW_NB15_training-set.csv"}),
    ("kaggle_nid", {"unlabelled_file": "Test_data.csv"}),
    ("snmp_mib", {"train_file": "SNMP-MIB.csv"}),
])
def test_dataset_configs_compose_and_instantiate(conf_copy: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch, choice: str,
                                                 expected: dict[str, str]) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("BENCH_DATA_DIR", str(data))
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    with initialize_config_dir(config_dir=str(conf_copy), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"dataset={choice}"])
    for key, value in expected.items():
        assert cfg.dataset[key] == value
    assert cfg.dataset.data_dir == str(data) and cfg.dataset.verify == "warn"
    texts = {"KDDTrain+.txt": nsl_text(6), "KDDTrain+_20Percent.txt": nsl_text(5),
             "KDDTest+.txt": nsl_text(4), "KDDTest-21.txt": nsl_text(3),
             "UNSW_NB15_testing-set.csv": unsw_text(5), "Train_data.csv": kaggle_text(4),
             "Test_data.csv": kaggle_text(2, labelled=False), "SNMP-MIB.csv": snmp_text(8)}
    for name, text in texts.items():
        write(data, name, text, gz=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # crafted files do not match the published checksums
        ds = instantiate(cfg.dataset, _convert_="all")
    assert isinstance(ds, Dataset) and ds.name == choice
    assert ds.train[ds.schema.label].isin([0, 1]).all()
    assert list((tmp_path / "cache").glob("*.parquet"))
