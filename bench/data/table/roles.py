"""Column roles of a table dataset, decided from the headers (before any file is parsed), then
completed from the values: text columns holding IP or MAC addresses are identifiers."""

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


@dataclass(frozen=True)
class Roles:
    """Which column is what. `target` is the binary 0/1 label bench adds (1 = attack); `raw`
    the source label column (renamed `raw` when it was called like the target); `flagged` the
    identifiers bench found itself (well-known names, then `addresses`: columns found by
    their values, see `with_address_columns`)."""

    target: str
    raw: str
    family: str | None
    identifiers: tuple[str, ...]
    label_proxies: tuple[str, ...]
    metadata: tuple[str, ...]
    flagged: tuple[str, ...]  # identifiers found by name or by value, not declared
    absent: tuple[str, ...]  # declared identifier / proxy / metadata columns not in the files
    addresses: tuple[str, ...] = ()  # text columns of IP / MAC addresses (also in identifiers)
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


def address_columns(frame: pd.DataFrame, candidates: Iterable[str]) -> tuple[str, ...]:
    """The text columns among `candidates` whose present values are nearly all (at least
    ADDRESS_SHARE) IPv4, IPv6 or MAC addresses, whatever they are called."""
    text = [c for c in candidates if not pd.api.types.is_numeric_dtype(frame[c])]
    return tuple(c for c in text if address_share(frame[c]) >= ADDRESS_SHARE)


def with_address_columns(roles: Roles, frame: pd.DataFrame, options: TableOptions) -> Roles:
    """`roles` with the address columns of `frame` (see `address_columns`) among the flagged
    identifiers. Only columns without a role are looked at (a column declared in
    dataset.categorical stays a feature); nothing with dataset.flow_identifiers=false."""
    if not options.flow_identifiers:
        return roles
    taken = roles.not_features() | set(options.categorical or ()) | {roles.family}
    found = address_columns(frame, [c for c in frame.columns if c not in taken])
    if not found:
        return roles
    return replace(roles, identifiers=(*roles.identifiers, *found),
                   flagged=(*roles.flagged, *found), addresses=found)
