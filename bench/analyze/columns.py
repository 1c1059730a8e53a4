"""Column roles of the analysis: configured in analyze.columns, else inferred from the Schema."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bench.errors import ConfigError

ROLES = ("protocol", "service", "flag")
_PATTERNS = {"protocol": r"proto", "service": r"service", "flag": r"flag|^state$"}
_BYTES = re.compile(r"bytes|octets", re.IGNORECASE)


def resolve_columns(configured: Mapping[str, Any], schema: Any, columns: list[str]
                    ) -> dict[str, Any]:
    """Column roles: configured names (checked to exist), else inferred from the Schema:
    protocol/service/flag = first categorical whose name matches proto / service /
    flag|state; bytes = numeric columns named *bytes* or *octets*; logit = [flag]."""
    out: dict[str, Any] = {role: _role_column(configured.get(role), schema, role)
                           for role in ROLES}
    out["bytes"] = (list(configured["bytes"]) if configured.get("bytes") is not None
                    else [c for c in schema.numeric if _BYTES.search(c)])
    out["logit"] = (list(configured["logit"]) if configured.get("logit") is not None
                    else [c for c in (out["flag"],) if c])
    named = [*(out[r] for r in ROLES if out[r]), *out["bytes"], *out["logit"]]
    unknown = [c for c in named if c not in columns]
    if unknown:
        raise ConfigError(f"analyze.columns name(s) {unknown} that the dataset does not have; "
                          f"its columns: {columns}")
    labels = [c for c in named if c == schema.label or c in schema.label_proxies
              or c == schema.family]
    if labels:  # a logit of the label on itself "failed: MissingDataError" in the report
        raise ConfigError(f"analyze.columns name(s) {labels}: the label or a column that "
                          f"restates it (label proxy, attack family); name features: "
                          f"{schema.features}")
    text = [c for c in out["bytes"] if c not in schema.numeric]
    if text:  # a Welch t-test of a text column's codes means nothing
        raise ConfigError(f"analyze.columns.bytes: {text} are not numeric features; numeric "
                          f"columns: {list(schema.numeric)}")
    return out


def _role_column(configured: str | None, schema: Any, role: str) -> str | None:
    """The configured column, else the first categorical whose name matches the role."""
    if configured is not None:
        return configured
    return next((c for c in schema.categorical if re.search(_PATTERNS[role], c, re.IGNORECASE)),
                None)
