"""Column roles of a table dataset, decided from the headers (before any file is parsed), then
completed from the values: columns holding IP or MAC addresses (as text, or IPv4 as integers)
or timestamps (dates as text, epoch times as numbers) are identifiers, whatever their name."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from bench.data.table.options import (
    FLOW_IDENTIFIERS,
    LABEL_PROXY_NAMES,
    PORT_IDENTIFIERS,
    TableOptions,
    canonical,
    close_matches,
)
from bench.data.table.read import Header
from bench.errors import DataError

SOURCE_FILE = "source_file"
DECLARED_KEYS = ("identifiers", "label_proxies", "metadata")

# A text column is an address column when at least ADDRESS_SHARE of its present values (other
# than placeholders such as "-") are IPv4 dotted quads, IPv6 addresses or MAC addresses.
ADDRESS_SHARE = 0.9
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4_OR_MAC = re.compile(
    rf"{_OCTET}(?:\.{_OCTET}){{3}}"                           # 192.168.0.1
    r"|[0-9A-Fa-f]{2}(?:([:-])[0-9A-Fa-f]{2})(?:\1[0-9A-Fa-f]{2}){4}"  # aa:bb:cc:dd:ee:ff
    r"|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}")       # aabb.ccdd.eeff (Cisco)
_IPV6_SHAPE = re.compile(r"\[?[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(%[\w.-]+)?\]?")
_PLACEHOLDERS = frozenset({"", "-", "--", "(empty)", "none", "null", "n/a", "na", "unknown", "?"})
# A text column is a time column when at least ADDRESS_SHARE of its present values are dates
# (2017-07-05, 5/7/2017, 05.07.2017, 5-Jul-2017, Jul 5, 2017), optionally with a time of day
# and a zone, or times of day with seconds (10:01:05.123).
_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"
_TIME_OF_DAY = r"\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[ap]\.?m\.?)?"
_DATE_TIME = re.compile(
    r"(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}"
    rf"|\d{{1,2}}[- ](?:{_MONTHS})[a-z]*\.?[- ,]+\d{{2,4}}"
    rf"|(?:{_MONTHS})[a-z]*\.? \d{{1,2}},? \d{{4}})"
    rf"(?:(?:[ T]|, ?){_TIME_OF_DAY})?\s*(?:z|utc|gmt|[+-]\d{{2}}:?\d{{2}})?"
    r"|\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?", re.IGNORECASE)
# A numeric column is an epoch time when at least EPOCH_SHARE of its present values lie in the
# years 1995-2040 counted in seconds, milliseconds, microseconds or nanoseconds since 1970, with
# at least EPOCH_DISTINCT distinct values (traffic counters do not stay inside such a window).
EPOCH_SECONDS = (788_918_400, 2_208_988_800)
EPOCH_SHARE = 0.99
EPOCH_DISTINCT = 10
# A numeric column holds IPv4 addresses as integers when at least ADDRESS_SHARE of its present
# values are integers in the private ranges 10/8, 172.16/12 or 192.168/16, with 2 distinct or more.
_PRIVATE_IPV4 = tuple((int(ipaddress.IPv4Network(net).network_address),
                       int(ipaddress.IPv4Network(net).broadcast_address))
                      for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


@dataclass(frozen=True)
class Roles:
    """Which column is what. `target` is the binary 0/1 label bench adds (1 = attack); `raw`
    the source label column (renamed `raw` when it was called like the target); `flagged` the
    identifiers bench found itself (well-known names, then `addresses` and `times`: columns
    found by their values, see `with_value_identifiers`)."""

    target: str
    raw: str
    family: str | None
    identifiers: tuple[str, ...]
    label_proxies: tuple[str, ...]
    metadata: tuple[str, ...]
    flagged: tuple[str, ...]  # identifiers found by name or by value, not declared
    absent: tuple[str, ...]  # declared identifier / proxy / metadata columns not in the files
    addresses: tuple[str, ...] = ()  # columns of IP / MAC addresses (also in identifiers)
    times: tuple[str, ...] = ()  # columns of dates or epoch times found by value (also there)
    proxies_by_name: tuple[str, ...] = ()  # label proxies found by name (also in label_proxies)

    def not_features(self) -> set[str]:
        return {self.target, *self.identifiers, *self.label_proxies, *self.metadata}


def check_same_columns(headers: Sequence[Header]) -> None:
    """Raise DataError naming both files and the columns when two headers differ."""
    first = headers[0]
    for other in headers[1:]:
        missing = [n for n in first.names if n not in set(other.names)]
        extra = [n for n in other.names if n not in set(first.names)]
        if missing or extra:
            parts = ([f"missing column(s) {missing}"] if missing else []) + (
                [f"extra column(s) {extra}"] if extra else [])
            raise DataError(f"{other.path}: columns differ from {first.path}: "
                            + "; ".join(parts) + " (every file of a dataset needs the same "
                            "columns; list unwanted ones in dataset.drop)")


def _require(header: Header, name: str, key: str) -> None:
    if name not in header.names:
        raise DataError(f"{header.path}: line 1 (header): {key} column {name!r} not found"
                        f"{close_matches(name, header.names)}; columns: {list(header.names)}")


def _check_required(header: Header, options: TableOptions) -> None:
    """The label, the family and every declared categorical column must be in the header."""
    _require(header, options.label, "label (dataset.label)")
    if options.family:
        _require(header, options.family, "family (dataset.family)")
    for name in options.categorical or ():
        _require(header, name, "categorical (dataset.categorical)")


def _flagged_identifiers(header: Header, options: TableOptions,
                         declared: tuple[str, ...]) -> tuple[str, ...]:
    """Well-known flow identifier columns (ports only with port_identifiers) that no option
    already gives a role."""
    if not options.flow_identifiers:
        return ()
    chosen = {options.label, options.family, *(options.categorical or ()), *declared}
    known = FLOW_IDENTIFIERS | (PORT_IDENTIFIERS if options.port_identifiers else frozenset())
    return tuple(n for n in header.names if canonical(n) in known and n not in chosen)


def _label_columns(names: set[str], options: TableOptions) -> tuple[str, str, str | None]:
    """(binary target column, raw label column, family column) after the renames: the target
    is `label` (`is_attack` when a column is already called label); a raw column called
    `label` becomes `label_value`; a label->family map makes `attack_family`."""
    raw = options.label
    target = "is_attack" if "label" in names and raw != "label" else "label"
    if raw == target:
        raw = "label_value"
    family = options.family
    if options.families:
        family = "attack_family"
    elif family == options.label:
        family = raw
    return target, raw, family


def _check_own_names(header: Header, options: TableOptions, target: str, raw: str) -> None:
    """DataError naming a header column whose name bench gives a column it adds (the column
    would be replaced silently): the binary target, the renamed label column, `attack_family`
    (with dataset.families) and `source_file`."""
    renamed = ", named is_attack as a column is called label" if target == "is_attack" else ""
    own = {target: f"the binary target, 1 = attack{renamed}", SOURCE_FILE: "each row's file name"}
    if raw != options.label:
        own[raw] = f"the label column {options.label!r}, renamed"
    if options.families:
        own["attack_family"] = "the family that dataset.families maps each label value to"
    for name, what in own.items():
        if name in header.names and name != options.label:
            raise DataError(f"{header.path}: line 1 (header), column {header.describe(name)}: "
                            f"bench adds a column of that name ({what}); rename the column in "
                            "the file or list it in dataset.drop")


def _check_declared(header: Header, options: TableOptions) -> None:
    """DataError for a declared identifier / label proxy / metadata name that is not in the
    header but differs from a header column only by case, spaces or punctuation (`src_port`
    for `SrcPort`): it would have been ignored and the column become a feature. A declared
    name matching nothing is allowed (a preset may name columns some exports lack)."""
    names = set(header.names)
    for key in DECLARED_KEYS:
        for name in getattr(options, key):
            if name in names or name in options.drop:
                continue
            near = [c for c in header.names if canonical(name) and canonical(c) == canonical(name)]
            if near:
                raise DataError(
                    f"{header.path}: line 1 (header): {key} (dataset.{key}) column {name!r} "
                    f"not found (did you mean {', '.join(repr(c) for c in near)}?); declared "
                    "names must match the header as written (after stripping spaces)")


def absent_hints(header: Header, absent: Iterable[str]) -> str:
    """The declared names not in the header, each with a "did you mean" for near names."""
    return ", ".join(f"{name!r}{close_matches(name, header.names)}" for name in absent)


def resolve_roles(header: Header, options: TableOptions) -> Roles:
    """Roles from the (common) header: required columns must exist, declared optional ones may
    be absent (listed in `absent`) but not misspelt by case or punctuation, bench's own column
    names must be free, well-known flow identifiers are flagged as identifiers; a column named
    like a label (`label`, `attack_cat`, `class`, ...) that is not the label is a label proxy."""
    _check_required(header, options)
    _check_declared(header, options)
    names = set(header.names)
    declared = (*options.identifiers, *options.label_proxies, *options.metadata)
    flagged = _flagged_identifiers(header, options, declared)
    target, raw, family = _label_columns(names, options)
    _check_own_names(header, options, target, raw)
    proxies = {raw, *(n for n in options.label_proxies if n in names)}
    named = _label_proxies_by_name(header, options, declared, target)
    proxies.update(named)
    if family:
        proxies.add(family)
    return Roles(
        target=target, raw=raw, family=family,
        identifiers=tuple(n for n in (*options.identifiers, *flagged) if n in names),
        label_proxies=tuple(sorted(proxies)),
        metadata=(*(n for n in options.metadata if n in names), SOURCE_FILE),
        flagged=flagged,
        absent=tuple(n for n in declared if n not in names and n not in options.drop),
        proxies_by_name=named,
    )


def _label_proxies_by_name(header: Header, options: TableOptions, declared: tuple[str, ...],
                           target: str) -> tuple[str, ...]:
    """Columns named like a label (LABEL_PROXY_NAMES: `label`, `attack_cat`, `class`, ...)
    beside the declared label, that no option gives another role."""
    chosen = {options.label, target, *(options.categorical or ()), *declared}
    return tuple(n for n in header.names
                 if canonical(n) in LABEL_PROXY_NAMES and n not in chosen)


def _is_address(text: str) -> bool:
    """Whether `text` is an IPv4 dotted quad, a MAC address or an IPv6 address (with an
    optional zone or brackets)."""
    if _IPV4_OR_MAC.fullmatch(text):
        return True
    if not _IPV6_SHAPE.fullmatch(text):
        return False
    try:
        ipaddress.IPv6Address(text.strip("[]").split("%")[0])
    except ValueError:
        return False
    return True


def address_share(values: pd.Series) -> float:
    """Share of the present values of `values` (placeholders such as "-" left out) that are
    IP or MAC addresses; 0 when none is present. Each distinct value is checked once."""
    counts = values.value_counts(dropna=True)  # a categorical: one count per category
    texts = [str(value).strip() for value in counts.index]
    present = counts.to_numpy()
    kept = np.array([text.lower() not in _PLACEHOLDERS for text in texts], dtype=bool)
    total = int(present[kept].sum())
    if not total:
        return 0.0
    shaped = np.array([keep and _is_address(text)
                       for keep, text in zip(kept, texts, strict=True)], dtype=bool)
    return float(present[shaped].sum()) / total


def _share_in(values: np.ndarray, ranges: Iterable[tuple[float, float]]) -> float:
    """Share of `values` (floats, none missing) inside any of the closed `ranges`."""
    inside = np.zeros(len(values), dtype=bool)
    for low, high in ranges:
        inside |= (values >= low) & (values <= high)
    return float(inside.mean()) if len(values) else 0.0


def time_share(values: pd.Series) -> float:
    """Share of the present values of `values` that are times: date-shaped text (see
    _DATE_TIME; placeholders left out), or, for a numeric column, epoch times in seconds to
    nanoseconds (see EPOCH_SECONDS) in the one unit that fits most; 0 when none is present."""
    if pd.api.types.is_numeric_dtype(values):
        if pd.api.types.is_bool_dtype(values):
            return 0.0
        low, high = EPOCH_SECONDS
        top = values.max()
        if pd.isna(top) or top < low:  # a count or a size (or nothing present): no copy made
            return 0.0
        present = values.dropna().to_numpy(dtype=float)
        share = max(_share_in(present, [(low * scale, high * scale)])
                    for scale in (1, 10**3, 10**6, 10**9))
        # distinct values are counted last, only for a column inside a window (it costs most)
        return share if share and pd.unique(present).size >= EPOCH_DISTINCT else 0.0
    counts = values.value_counts(dropna=True)
    texts = [str(value).strip() for value in counts.index]
    kept = np.array([text.lower() not in _PLACEHOLDERS for text in texts], dtype=bool)
    total = int(counts.to_numpy()[kept].sum())
    if not total:
        return 0.0
    shaped = np.array([keep and bool(_DATE_TIME.fullmatch(text))
                       for keep, text in zip(kept, texts, strict=True)], dtype=bool)
    return float(counts.to_numpy()[shaped].sum()) / total


def integer_address_share(values: pd.Series) -> float:
    """Share of the present values of the numeric `values` that are integers in the private
    IPv4 ranges (10/8, 172.16/12, 192.168/16); 0 with fewer than 2 distinct values."""
    top = values.max()
    if pd.isna(top) or top < _PRIVATE_IPV4[0][0]:  # below 10.0.0.0 (or nothing present)
        return 0.0
    present = values.dropna().to_numpy(dtype=float)
    whole = present[present == np.round(present)]
    share = _share_in(whole, _PRIVATE_IPV4) * len(whole) / len(present)
    return share if share and pd.unique(present).size >= 2 else 0.0


def address_columns(frame: pd.DataFrame, candidates: Iterable[str]) -> tuple[str, ...]:
    """The columns among `candidates` whose present values are nearly all (at least
    ADDRESS_SHARE) addresses, whatever they are called: IPv4, IPv6 or MAC addresses as text,
    or private IPv4 addresses as integers."""
    found = []
    for column in candidates:
        values = frame[column]
        if pd.api.types.is_bool_dtype(values):
            continue
        share = (integer_address_share(values) if pd.api.types.is_numeric_dtype(values)
                 else address_share(values))
        if share >= ADDRESS_SHARE:
            found.append(column)
    return tuple(found)


def time_columns(frame: pd.DataFrame, candidates: Iterable[str]) -> tuple[str, ...]:
    """The columns among `candidates` holding times, whatever they are called: text columns
    with at least ADDRESS_SHARE date-shaped values, numeric ones with at least EPOCH_SHARE epoch
    times (see time_share). A time reaches a model as a stand-in for the capture's schedule."""
    found = []
    for column in candidates:
        numeric = pd.api.types.is_numeric_dtype(frame[column])
        if time_share(frame[column]) >= (EPOCH_SHARE if numeric else ADDRESS_SHARE):
            found.append(column)
    return tuple(found)


def with_value_identifiers(roles: Roles, frame: pd.DataFrame, options: TableOptions) -> Roles:
    """`roles` with the address and time columns of `frame` (see `address_columns`,
    `time_columns`) among the flagged identifiers. Only columns without a role are looked at
    (a column declared in dataset.categorical stays a feature); nothing with
    dataset.flow_identifiers=false."""
    if not options.flow_identifiers:
        return roles
    taken = roles.not_features() | set(options.categorical or ()) | {roles.family}
    candidates = [c for c in frame.columns if c not in taken]
    addresses = address_columns(frame, candidates)
    times = time_columns(frame, [c for c in candidates if c not in addresses])
    if not addresses and not times:
        return roles
    found = (*addresses, *times)
    return replace(roles, identifiers=(*roles.identifiers, *found),
                   flagged=(*roles.flagged, *found), addresses=addresses, times=times)
