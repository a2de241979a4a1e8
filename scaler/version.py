"""The version of scaler: the single source, read by pyproject.toml (``[tool.setuptools.dynamic]``) and --version."""

__version__ = "0.1.0"
