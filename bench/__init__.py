"""bench: an experiment-tracking benchmark harness for network intrusion and anomaly detection."""

__version__ = "0.1.0"
