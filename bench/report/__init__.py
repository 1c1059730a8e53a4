"""Reads runs back from MLflow and compares them: leaderboards with confidence intervals,
Friedman/Nemenyi with a critical-difference diagram, paired tests, per-family recall.

`python -m bench.report --help`; modules: runs (read the store), tables (leaderboard, family
recall), stats (significance), render (Markdown + self-contained HTML), build (the report,
one function per section), prose (its explanatory text).
"""
