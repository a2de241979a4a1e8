"""The version of scaler."""

__version__ = "0.1.0"
