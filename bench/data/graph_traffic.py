"""Synthetic graph traffic, after the Kaggle graph-anomaly study's generator (no download).

A network of `n_nodes` hosts, observed in time windows: each row is one window, with one
feature per edge (an unordered node pair, or an ordered one if `directed`): the bytes sent over
that edge in the window. Each edge has its own mean (log-normal across edges, around
`mean_bytes`); in a normal window its bytes are Normal(mean, (noise_cv * mean)^2), clipped at 0.
An anomalous window multiplies the traffic of some edges by a factor drawn uniformly from
[factor_low, factor_high]:

- `edge_burst`: 1 to `max_burst_edges` random edges (a transfer between two hosts);
- `node_flood`: every edge of one random node (a host flooding, or being flooded).

The study's baseline flags a window when any edge lies beyond its mean + 2 sigma: that is
`model=mean_2sigma threshold=fixed threshold.value=2` (with `preprocess=raw` for raw bytes).
With many edges this rule alarms often on normal windows (45 edges at 2 sigma: about 88% of
normal windows have some edge beyond 2 sigma), which the benchmark makes visible.
"""

from __future__ import annotations

from itertools import combinations, permutations

import numpy as np
import pandas as pd

from bench.data.dataset import Dataset, Schema
from bench.errors import ConfigError

FAMILIES = ("edge_burst", "node_flood")


def edges(n_nodes: int, directed: bool = False) -> list[tuple[int, int]]:
    """The node pairs, one feature each: (i, j) with i < j, or all i != j if directed."""
    pairs = permutations(range(n_nodes), 2) if directed else combinations(range(n_nodes), 2)
    return list(pairs)


def _check(n_nodes: int, n_rows: int, attack_share: float, noise_cv: float,
           factor_low: float, factor_high: float, max_burst_edges: int) -> None:
    if n_nodes < 2:
        raise ConfigError(f"dataset.n_nodes must be at least 2, got {n_nodes}")
    if n_rows < 100:
        raise ConfigError(f"dataset.n_rows must be at least 100, got {n_rows}")
    if not 0.0 < attack_share < 1.0:
        raise ConfigError(f"dataset.attack_share must be in (0, 1), got {attack_share}")
    if not noise_cv > 0:
        raise ConfigError(f"dataset.noise_cv must be > 0, got {noise_cv}")
    if not 1.0 < factor_low <= factor_high:
        raise ConfigError("dataset needs 1 < factor_low <= factor_high, got "
                          f"{factor_low}, {factor_high}")
    if max_burst_edges < 1:
        raise ConfigError(f"dataset.max_burst_edges must be at least 1, got {max_burst_edges}")


def check_options(n_nodes: int = 10, n_rows: int = 5000, attack_share: float = 0.1,
                  noise_cv: float = 0.2, factor_low: float = 1.5, factor_high: float = 4.0,
                  max_burst_edges: int = 3, **_: object) -> None:
    """ConfigError for what `generate` would refuse (bench.validate calls it before a
    command starts: factor_low > factor_high was found inside the cell)."""
    _check(n_nodes, n_rows, attack_share, noise_cv, factor_low, factor_high, max_burst_edges)


def generate(n_nodes: int = 10, n_rows: int = 5000, attack_share: float = 0.1, seed: int = 0,
             mean_bytes: float = 5000.0, noise_cv: float = 0.2, factor_low: float = 1.5,
             factor_high: float = 4.0, max_burst_edges: int = 3, directed: bool = False
             ) -> pd.DataFrame:
    """(n_rows, 3 + n_edges) frame in window order: `window`, `bytes_<i>_<j>` per edge,
    `anomaly` (normal / edge_burst / node_flood) and `label` (1 = anomalous window)."""
    _check(n_nodes, n_rows, attack_share, noise_cv, factor_low, factor_high, max_burst_edges)
    rng = np.random.default_rng(seed)
    pairs = edges(n_nodes, directed)
    means = mean_bytes * rng.lognormal(0.0, 0.75, size=len(pairs))
    traffic = rng.normal(means, noise_cv * means, size=(n_rows, len(pairs)))

    n_attack = round(n_rows * attack_share)
    attack_rows = rng.choice(n_rows, size=n_attack, replace=False)
    family = np.full(n_rows, "normal", dtype=object)
    family[attack_rows] = rng.choice(FAMILIES, size=n_attack)
    touches = np.array([[i in pair for pair in pairs] for i in range(n_nodes)])  # node x edge
    for row in attack_rows:
        if family[row] == "node_flood":
            hit = np.flatnonzero(touches[rng.integers(n_nodes)])
        else:
            k = int(rng.integers(1, min(max_burst_edges, len(pairs)) + 1))
            hit = rng.choice(len(pairs), size=k, replace=False)
        traffic[row, hit] *= rng.uniform(factor_low, factor_high, size=len(hit))

    frame = pd.DataFrame(np.round(np.clip(traffic, 0, None)).astype(np.int64),
                         columns=[f"bytes_{i}_{j}" for i, j in pairs])
    frame.insert(0, "window", np.arange(n_rows, dtype=np.int64))
    frame["anomaly"] = family
    frame["label"] = (family != "normal").astype(np.int64)
    return frame


def load(n_nodes: int = 10, n_rows: int = 5000, attack_share: float = 0.1, seed: int = 0,
         mean_bytes: float = 5000.0, noise_cv: float = 0.2, factor_low: float = 1.5,
         factor_high: float = 4.0, max_burst_edges: int = 3, directed: bool = False
         ) -> Dataset:
    """The graph-traffic dataset; TEST is split off (no fixed partition)."""
    frame = generate(n_nodes, n_rows, attack_share, seed, mean_bytes, noise_cv, factor_low,
                     factor_high, max_burst_edges, directed)
    numeric = tuple(c for c in frame.columns if c.startswith("bytes_"))
    schema = Schema(label="label", categorical=(), numeric=numeric, family="anomaly",
                    identifiers=("window",), label_proxies=("anomaly",))
    note = (f"synthetic graph traffic ({n_nodes} nodes, {len(numeric)} edges, n_rows={n_rows}, "
            f"attack_share={attack_share}, noise_cv={noise_cv}, factors [{factor_low}, "
            f"{factor_high}], seed={seed})")
    return Dataset(name="graph_traffic", schema=schema, train=frame,
                   notes={"data.source": note})
