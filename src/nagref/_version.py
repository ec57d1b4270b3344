"""The package version (its own module, so that the tools can read it without importing nagref)."""

__version__ = "0.1.0"
