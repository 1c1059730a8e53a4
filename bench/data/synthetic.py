"""Embedded synthetic network-flow dataset: the default, so bench runs with no download.

A seeded generator of labelled flow records in the spirit of UNSW-NB15: categorical protocol,
service and connection state; heavy-tailed bytes, packets, durations and rates; per-host
connection counts. Four attack families have distinct signatures (flood, scan, brute_force,
exfiltration); a share of attacks is drawn from normal behaviour ("stealthy") and some normal
flows look like attacks (backups, bursts), so no model reaches a perfect score. The frame also
carries a row counter `id` (identifier) and `attack_cat` (the label in other words) so that the
leakage guard has something to catch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.data.dataset import Dataset, Schema
from bench.errors import ConfigError

FAMILIES = ("flood", "scan", "brute_force", "exfiltration")
FAMILY_SHARES = (0.35, 0.30, 0.20, 0.15)

# Per profile: categorical probabilities and log-normal (mu, sigma) of the numeric columns.
_PROFILES: dict[str, dict] = {
    "normal": {
        "proto": {"tcp": 0.7, "udp": 0.27, "icmp": 0.03},
        "service": {"http": 0.4, "dns": 0.2, "ssh": 0.05, "ftp": 0.05, "smtp": 0.1, "-": 0.2},
        "state": {"FIN": 0.6, "CON": 0.25, "INT": 0.1, "REQ": 0.03, "RST": 0.02},
        "dur": (0.0, 1.5), "spkts": (2.5, 1.0), "dpkts": (2.6, 1.0),
        "bytes_per_spkt": (5.0, 0.8), "bytes_per_dpkt": (6.0, 1.0),
        "ct_srv_src": (1.5, 0.8), "ct_dst_ltm": (1.2, 0.7), "ct_src_dport_ltm": (0.5, 0.6),
    },
    "flood": {
        "proto": {"udp": 0.6, "icmp": 0.25, "tcp": 0.15},
        "service": {"-": 0.5, "dns": 0.35, "http": 0.15},
        "state": {"INT": 0.8, "CON": 0.1, "REQ": 0.1},
        "dur": (-1.5, 1.2), "spkts": (4.0, 1.0), "dpkts": (0.3, 0.8),
        "bytes_per_spkt": (4.2, 0.6), "bytes_per_dpkt": (4.5, 0.8),
        "ct_srv_src": (3.0, 0.7), "ct_dst_ltm": (2.5, 0.8), "ct_src_dport_ltm": (0.8, 0.7),
    },
    "scan": {
        "proto": {"tcp": 0.8, "udp": 0.18, "icmp": 0.02},
        "service": {"-": 0.7, "http": 0.15, "ssh": 0.1, "ftp": 0.05},
        "state": {"REQ": 0.45, "RST": 0.35, "INT": 0.2},
        "dur": (-3.0, 1.5), "spkts": (0.6, 0.5), "dpkts": (0.2, 0.5),
        "bytes_per_spkt": (3.9, 0.3), "bytes_per_dpkt": (3.9, 0.4),
        "ct_srv_src": (1.2, 0.8), "ct_dst_ltm": (2.0, 0.8), "ct_src_dport_ltm": (2.8, 0.7),
    },
    "brute_force": {
        "proto": {"tcp": 1.0},
        "service": {"ssh": 0.55, "ftp": 0.3, "http": 0.15},
        "state": {"FIN": 0.7, "RST": 0.2, "CON": 0.1},
        "dur": (0.3, 0.8), "spkts": (2.3, 0.5), "dpkts": (2.3, 0.5),
        "bytes_per_spkt": (4.6, 0.4), "bytes_per_dpkt": (4.9, 0.5),
        "ct_srv_src": (2.8, 0.6), "ct_dst_ltm": (1.0, 0.6), "ct_src_dport_ltm": (0.4, 0.5),
    },
    "exfiltration": {
        "proto": {"tcp": 0.85, "udp": 0.15},
        "service": {"http": 0.45, "-": 0.3, "dns": 0.15, "smtp": 0.1},
        "state": {"FIN": 0.55, "CON": 0.45},
        "dur": (1.8, 1.2), "spkts": (4.2, 1.0), "dpkts": (2.2, 1.0),
        "bytes_per_spkt": (6.8, 0.6), "bytes_per_dpkt": (4.5, 0.8),
        "ct_srv_src": (1.2, 0.7), "ct_dst_ltm": (0.8, 0.6), "ct_src_dport_ltm": (0.4, 0.5),
    },
}
NUMERIC = ("dur", "spkts", "dpkts", "sbytes", "dbytes", "rate", "sload", "dload",
           "ct_srv_src", "ct_dst_ltm", "ct_src_dport_ltm", "sttl")
CATEGORICAL = ("proto", "service", "state")


def _draw_profile(profile: dict, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for column in CATEGORICAL:
        values, probs = zip(*profile[column].items(), strict=True)
        out[column] = rng.choice(np.array(values, dtype=object), size=n, p=probs)

    def lognormal(key: str) -> np.ndarray:
        mu, sigma = profile[key]
        return rng.lognormal(mu, sigma, size=n)

    out["dur"] = np.round(lognormal("dur"), 6)
    out["spkts"] = np.maximum(1, np.round(lognormal("spkts"))).astype(np.int64)
    out["dpkts"] = np.round(lognormal("dpkts") - 1).clip(0).astype(np.int64)
    out["sbytes"] = np.round(out["spkts"] * lognormal("bytes_per_spkt")).astype(np.int64)
    out["dbytes"] = np.round(out["dpkts"] * lognormal("bytes_per_dpkt")).astype(np.int64)
    for key in ("ct_srv_src", "ct_dst_ltm", "ct_src_dport_ltm"):
        out[key] = np.maximum(1, np.round(lognormal(key))).astype(np.int64)
    return out


def generate(n_rows: int = 20_000, attack_share: float = 0.3, seed: int = 0,
             stealth_share: float = 0.12, lookalike_share: float = 0.04) -> pd.DataFrame:
    """A frame of `n_rows` flows in generation order; `label` is 1 for attacks.

    `stealth_share` of attacks are drawn from the normal profile; `lookalike_share` of normal
    flows are drawn from an attack profile. Both keep the task from being trivially separable.
    """
    if n_rows < 100:
        raise ConfigError(f"dataset.n_rows must be at least 100, got {n_rows}")
    if not 0.0 < attack_share < 1.0:
        raise ConfigError(f"dataset.attack_share must be in (0, 1), got {attack_share}")
    rng = np.random.default_rng(seed)
    n_attack = round(n_rows * attack_share)
    family = np.array(["normal"] * (n_rows - n_attack)
                      + list(rng.choice(FAMILIES, size=n_attack, p=FAMILY_SHARES)), dtype=object)
    # Which generating profile each row uses (differs from its family for stealth/lookalikes).
    profile = family.copy()
    is_attack = family != "normal"
    profile[is_attack & (rng.random(n_rows) < stealth_share)] = "normal"
    lookalike = ~is_attack & (rng.random(n_rows) < lookalike_share)
    profile[lookalike] = rng.choice(FAMILIES, size=int(lookalike.sum()))

    columns: dict[str, np.ndarray] = {}
    for name, spec in _PROFILES.items():
        rows = np.flatnonzero(profile == name)
        drawn = _draw_profile(spec, len(rows), rng)
        for key, values in drawn.items():
            if key not in columns:
                columns[key] = np.empty(n_rows, dtype=values.dtype)
            columns[key][rows] = values
    frame = pd.DataFrame(columns)
    seconds = frame["dur"].clip(lower=1e-6)
    frame["rate"] = ((frame["spkts"] + frame["dpkts"]) / seconds).round(3)
    frame["sload"] = (8 * frame["sbytes"] / seconds).round(3)
    frame["dload"] = (8 * frame["dbytes"] / seconds).round(3)
    frame["sttl"] = rng.choice([31, 62, 64, 254], size=n_rows, p=[0.2, 0.3, 0.4, 0.1])
    frame["attack_cat"] = family
    frame["label"] = is_attack.astype(np.int64)
    frame = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    frame.insert(0, "id", np.arange(1, n_rows + 1, dtype=np.int64))
    return frame[["id", *CATEGORICAL, *NUMERIC, "attack_cat", "label"]]


def load(n_rows: int = 20_000, attack_share: float = 0.3, seed: int = 0,
         stealth_share: float = 0.12, lookalike_share: float = 0.04) -> Dataset:
    """The synthetic dataset; TEST is split off (no fixed partition)."""
    frame = generate(n_rows, attack_share, seed, stealth_share, lookalike_share)
    schema = Schema(label="label", categorical=CATEGORICAL, numeric=NUMERIC,
                    family="attack_cat", identifiers=("id",), label_proxies=("attack_cat",))
    return Dataset(name="synthetic", schema=schema, train=frame,
                   notes={"data.source": f"synthetic generator (n_rows={n_rows}, "
                                         f"attack_share={attack_share}, seed={seed})"})
