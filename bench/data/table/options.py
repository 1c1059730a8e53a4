"""The options of the generic table dataset (`dataset=table`), checked before any file is read."""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields

from bench.errors import ConfigError

NON_FINITE_POLICIES = ("error", "drop_rows", "clip")
DUPLICATE_POLICIES = ("error", "keep_first", "rename")
HEADER_MODES = ("strip", "none")
READER_VERSION = "table.v1"  # bump when the cached per-file layout changes

# Well-known flow identifier / address / time columns (CICFlowMeter, Zeek, NetFlow / IPFIX,
# Argus / UNSW, Suricata, Wireshark field names), compared after lower-casing and removing
# everything but letters and digits (`SRC_IP_ADDR`, `ip.src`, `Source Address` ...). They
# identify a flow, a host or its moment, never its behaviour: a model that sees them learns the
# capture, not the attack. Text columns holding addresses are found by their values too
# (roles.address_columns).
FLOW_IDENTIFIERS = frozenset({
    "flowid", "uid",
    # IP addresses
    "srcip", "sourceip", "dstip", "destip", "destinationip", "srcaddr", "dstaddr", "destaddr",
    "sourceaddr", "destinationaddr", "srcaddress", "dstaddress", "destaddress",
    "sourceaddress", "destinationaddress", "srcipaddr", "dstipaddr", "destipaddr",
    "sourceipaddress", "destinationipaddress", "srcipaddress", "dstipaddress", "ipsrc", "ipdst",
    "ipsrcaddr", "ipdstaddr", "ipv4srcaddr", "ipv4dstaddr", "ipv6srcaddr", "ipv6dstaddr",
    "ipv4src", "ipv4dst", "ipv6src", "ipv6dst", "srcipv4", "dstipv4", "srcipv6", "dstipv6",
    "saddr", "daddr", "idorigh", "idresph", "origh", "resph", "clientip", "serverip",
    # MAC addresses
    "srcmac", "dstmac", "sourcemac", "destinationmac", "srcmacaddr", "dstmacaddr", "ethsrc",
    "ethdst", "insrcmac", "outdstmac", "indstmac", "outsrcmac",
    # times
    "timestamp", "ts", "stime", "ltime", "starttime", "endtime", "flowstart",
    "flowend", "flowstartmilliseconds", "flowendmilliseconds", "firstseen", "lastseen",
})
# Names of columns that state the label in other words (compared as `canonical` names): the
# attack class or category, a verdict, a second label. Beside the declared label they are label
# proxies, never features, unless a dataset option gives them a role (categorical, ...).
LABEL_PROXY_NAMES = frozenset({
    "label", "labels", "class", "attack", "attacks", "attackcat", "attackcategory",
    "attacktype", "attackname", "attackclass", "attackfamily", "isattack", "malicious",
    "ismalicious", "maliciousness", "verdict", "threat", "threattype", "groundtruth",
    "detailedlabel", "attacksubcategory", "attacksubcat",
})
# Ports identify a service as much as a flow: flagged only with `port_identifiers: true`.
PORT_IDENTIFIERS = frozenset({
    "srcport", "sourceport", "dstport", "destport", "destinationport", "sport", "dport",
    "dsport", "idorigp", "idrespp", "origp", "respp", "l4srcport", "l4dstport", "tcpsrcport",
    "tcpdstport", "udpsrcport", "udpdstport", "spt", "dpt",
})


def canonical(name: str) -> str:
    """`name` lower-cased with everything but letters and digits removed ("Flow ID" -> flowid)."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def close_matches(name: str, columns: Sequence[str]) -> str:
    """' (did you mean ...?)' for the closest column names, or ''."""
    near = difflib.get_close_matches(name, list(columns), n=3, cutoff=0.6)
    by_form = [c for c in columns if canonical(c) == canonical(name) and c not in near]
    near = by_form + near
    return f" (did you mean {', '.join(repr(c) for c in near)}?)" if near else ""


def _names(key: str, value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence):
        return tuple(str(v) for v in value)
    raise ConfigError(f"dataset.{key} must be a column name or a list of names, got {value!r}")


@dataclass(frozen=True)
class TableOptions:
    """Validated options; column names are the normalised header names (see `header`)."""

    label: str | None = None  # required: __post_init__ names it when missing
    normal: tuple[str, ...] = ()
    attack: tuple[str, ...] = ()
    family: str | None = None
    families: Mapping[str, str] = field(default_factory=dict)
    categorical: tuple[str, ...] | None = None  # None: inferred from the text columns
    identifiers: tuple[str, ...] = ()
    label_proxies: tuple[str, ...] = ()
    metadata: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    flow_identifiers: bool = True
    port_identifiers: bool = False
    columns: tuple[str, ...] | None = None  # names for headerless files
    header: str = "strip"
    duplicate_columns: str = "error"
    non_finite: str = "error"
    missing_values: tuple[str, ...] = ("", "NaN", "nan", "-nan")
    encoding_errors: str = "strict"
    max_categories: int = 1000
    max_columns: int = 5000  # a wider header is refused before any row is read
    chunk_rows: int = 250_000

    def __post_init__(self) -> None:
        for key, allowed in (("non_finite", NON_FINITE_POLICIES),
                             ("duplicate_columns", DUPLICATE_POLICIES), ("header", HEADER_MODES),
                             ("encoding_errors", ("strict", "replace"))):
            if getattr(self, key) not in allowed:
                raise ConfigError(f"dataset.{key} must be one of {allowed}, got "
                                  f"{getattr(self, key)!r}")
        if not self.label:
            raise ConfigError("dataset.label must name the label column (e.g. dataset.label=Label)")
        if not self.normal and not self.attack:
            raise ConfigError("declare the label values: dataset.normal (values of normal rows; "
                              "every other value is an attack) and/or dataset.attack")
        both = set(self.normal) & set(self.attack)
        if both:
            raise ConfigError(f"label value(s) {sorted(both)} are in both dataset.normal and "
                              "dataset.attack")
        if self.family and self.families:
            raise ConfigError("set dataset.family (a column) or dataset.families (a mapping "
                              "label value -> family), not both")
        for key in ("chunk_rows", "max_categories", "max_columns"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"dataset.{key}={value!r}: must be an integer >= 1")

    @classmethod
    def from_config(cls, **kw: object) -> TableOptions:
        """Build from YAML values (scalars or lists; label values compared as text)."""
        lists = ("normal", "attack", "identifiers", "label_proxies", "metadata", "drop",
                 "missing_values")
        out = {k: _names(k, v) for k, v in kw.items() if k in lists}
        for key in ("categorical", "columns"):
            if kw.get(key) is not None:
                out[key] = _names(key, kw[key])
        families = kw.get("families") or {}
        if not isinstance(families, Mapping):
            raise ConfigError(f"dataset.families must map label values to families, got "
                              f"{families!r}")
        out["families"] = {str(k): str(v) for k, v in families.items()}
        rest = {k: v for k, v in kw.items() if k not in out and v is not None}
        known = [f.name for f in fields(cls)]
        for key in rest:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean dataset.{close[0]}?)" if close else ""
                raise ConfigError(f"dataset.{key}: dataset=table has no option {key!r}{hint}; "
                                  f"its options are in bench/conf/dataset/table.yaml")
        return cls(**{**rest, **out})

    def text_columns(self) -> set[str]:
        """Columns read as text whatever they hold: label, family and declared categoricals."""
        return {self.label, *([self.family] if self.family else []), *(self.categorical or ())}

    def parse_fingerprint(self) -> str:
        """Hash of the options that change a parsed file (part of its cache key)."""
        keys = ("columns", "header", "duplicate_columns", "drop", "missing_values",
                "encoding_errors")
        data = {k: v for k, v in asdict(self).items() if k in keys}
        data["text"] = sorted(self.text_columns())
        data["version"] = READER_VERSION
        text = json.dumps(data, sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:16]
