"""Exploratory statistics of a dataset (`python -m bench.analyze dataset=<name>`): data
quality, distributions, correlation, balance, normal-vs-attack tests with effect sizes,
single-feature logits, PCA/t-SNE. `stats` computes, `__main__` writes and logs one MLflow run.
"""
