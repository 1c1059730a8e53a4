"""Datasets: loaders, schema, splits, cache and the leakage audit."""
