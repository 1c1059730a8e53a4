"""The dataset contract: what every loader returns, whatever the file format."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass(frozen=True)
class Schema:
    """Roles of the columns of a dataset frame.

    `label` is the binary target (1 = attack, 0 = normal). Only `categorical` and `numeric`
    columns may reach a model; identifiers, label proxies and metadata are kept for auditing
    and per-family reporting and are dropped before preprocessing.
    """

    label: str
    categorical: tuple[str, ...]
    numeric: tuple[str, ...]
    family: str | None = None
    identifiers: tuple[str, ...] = ()
    label_proxies: tuple[str, ...] = ()
    metadata: tuple[str, ...] = ()

    @property
    def features(self) -> list[str]:
        return [*self.categorical, *self.numeric]

    def without(self, columns: set[str]) -> Schema:
        """The same schema with `columns` removed from the feature lists."""
        return Schema(
            label=self.label,
            categorical=tuple(c for c in self.categorical if c not in columns),
            numeric=tuple(c for c in self.numeric if c not in columns),
            family=self.family,
            identifiers=self.identifiers,
            label_proxies=self.label_proxies,
            metadata=self.metadata,
        )


@dataclass
class Dataset:
    """A loaded dataset.

    `train` holds the rows that TRAIN and VAL are drawn from. `test` is a fixed TEST partition
    when the source defines one (None: TEST is split off `train`). `unlabelled` holds rows that
    may be scored but never used for metrics. `extra_tests` are further TEST sets scored by the
    same fit at the same VAL threshold (name -> frame; names start with "test", e.g. NSL-KDD's
    `test21` = KDDTest-21; their metrics are `<name>_<metric>`). `notes` are facts to announce
    and tag on the run.
    """

    name: str
    schema: Schema
    train: pd.DataFrame
    test: pd.DataFrame | None = None
    unlabelled: pd.DataFrame | None = None
    extra_tests: dict[str, pd.DataFrame] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
