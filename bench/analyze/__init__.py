"""Exploratory statistics of a dataset (`python -m bench.analyze dataset=<name>`): data
quality, distributions, correlation, balance, normal-vs-attack tests with effect sizes,
single-feature logits, PCA/t-SNE. `stats` computes, `sections` writes the document (text in
`prose`), `columns` resolves column roles, `__main__` runs it and logs one MLflow run.
"""
