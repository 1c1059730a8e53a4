"""Hydra launchers and the grid sweeper of bench's own (see docs/scale-out.md), and the
command-line hook that prepares a run for shared stores."""

from __future__ import annotations

from collections.abc import Sequence


def prepare_cli(argv: Sequence[str]) -> list[str]:
    """Called by `bench.app.main` before Hydra parses `argv`: passwords moved out of URL
    overrides and $MLFLOW_TRACKING_URI into the environment (bench.secrets), and bench's Ray
    launcher and grid sweeper (bench.launchers.grid_sweeper, `hydra/sweeper=basic`) made known
    to Hydra (which instantiates only registered plugin classes). Returns the new argv; a URL
    whose password cannot be moved raises ConfigError (main's one handler prints it)."""
    from hydra.core.plugins import Plugins

    from bench.launchers.grid_sweeper import BasicSweeper
    from bench.launchers.ray_launcher import RayLauncher
    from bench.secrets import hide_env_passwords, hide_passwords

    Plugins.instance().register(RayLauncher)
    Plugins.instance().register(BasicSweeper)
    hide_env_passwords(argv)
    return hide_passwords(argv)
