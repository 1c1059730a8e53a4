"""Column roles of a table dataset, decided from the headers alone (before any file is parsed)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bench.data.table.options import (
    FLOW_IDENTIFIERS,
    PORT_IDENTIFIERS,
    TableOptions,
    canonical,
    close_matches,
)
from bench.data.table.read import Header
from bench.errors import DataError

SOURCE_FILE = "source_file"


@dataclass(frozen=True)
class Roles:
    """Which column is what. `target` is the binary 0/1 label bench adds (1 = attack); `raw`
    the source label column (renamed `raw` when it was called like the target)."""

    target: str
    raw: str
    family: str | None
    identifiers: tuple[str, ...]
    label_proxies: tuple[str, ...]
    metadata: tuple[str, ...]
    flagged: tuple[str, ...]  # well-known flow identifiers found in the header, not declared
    absent: tuple[str, ...]  # declared identifier / proxy / metadata columns not in the files

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


def resolve_roles(header: Header, options: TableOptions) -> Roles:
    """Roles from the (common) header: required columns must exist, declared optional ones may
    be absent (listed in `absent`), well-known flow identifiers are flagged as identifiers."""
    _check_required(header, options)
    names = set(header.names)
    declared = (*options.identifiers, *options.label_proxies, *options.metadata)
    flagged = _flagged_identifiers(header, options, declared)
    target, raw, family = _label_columns(names, options)
    proxies = {raw, *(n for n in options.label_proxies if n in names)}
    if family:
        proxies.add(family)
    return Roles(
        target=target, raw=raw, family=family,
        identifiers=tuple(n for n in (*options.identifiers, *flagged) if n in names),
        label_proxies=tuple(sorted(proxies)),
        metadata=(*(n for n in options.metadata if n in names), SOURCE_FILE),
        flagged=flagged,
        absent=tuple(n for n in declared if n not in names),
    )
