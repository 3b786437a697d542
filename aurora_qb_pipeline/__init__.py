"""Aurora Solar -> Quickbase sync as Dagster software-defined assets."""

__version__ = "0.1.0"
