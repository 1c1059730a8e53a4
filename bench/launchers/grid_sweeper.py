"""`hydra/sweeper=basic` (a grid: every combination of the command line's sweeps, Hydra's
default sweeper) with a cheaper check before the first cell (bench/conf/hydra/sweeper/basic.yaml).

Hydra's BasicSweeper composes the config of every cell of a batch before launching any
(`validate_batch_is_legal`), and the launcher composes each one again when it runs it: ~0.1-0.2 s
of OmegaConf merging per cell and per compose. By then bench has composed and validated the
command line's configs (bench.validate.preflight: each swept value of the command line, each
group choice composed; a sweep set in a config file, `hydra.sweeper.params`, at its first value),
and each cell validates its own config again before it loads anything (bench.app.task). So this
sweeper composes in advance only the first cell of each combination of config-group choices
(`dataset=a,b model=x,y`: all four; `model.C=1,2,...,16`: one).
Written here because Hydra has no setting to skip or narrow its check (its own comment: "can
potentially allow disabling from the config").
"""

from __future__ import annotations

from collections.abc import Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper as HydraBasicSweeper


class BasicSweeper(HydraBasicSweeper):
    """Hydra's BasicSweeper; composes one cell per combination of group choices up front."""

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        assert self.hydra_context is not None
        repository = self.hydra_context.config_loader.repository  # type: ignore[attr-defined]
        firsts: dict[tuple[str, ...], Sequence[str]] = {}
        for overrides in batch:
            groups = tuple(sorted(item for item in overrides
                                  if repository.group_exists(_key(item))))
            firsts.setdefault(groups, overrides)
        super().validate_batch_is_legal(list(firsts.values()))


def _key(override: str) -> str:
    """The config path an override names: `+model@m=x` -> `model`."""
    return override.split("=", 1)[0].lstrip("~+").split("@", 1)[0]
