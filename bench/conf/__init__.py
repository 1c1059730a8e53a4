"""Hydra configs of bench, one folder per config group (a package: `pkg://bench.conf`)."""
