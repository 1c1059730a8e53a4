"""User-facing errors: printed as one clear message (no traceback) and exit non-zero."""


class BenchError(Exception):
    """A problem with the user's input (config, data, environment), not a bug in bench."""

    exit_code = 2


class DataError(BenchError):
    """A data file is missing, malformed or fails verification.

    Messages name the file, and where known the column, row and offending value.
    """


class ConfigError(BenchError):
    """A configuration value is invalid (e.g. a budget outside (0, 1))."""


class TrackingError(BenchError):
    """The MLflow tracking store cannot be reached or written."""
