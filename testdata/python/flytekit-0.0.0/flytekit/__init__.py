"""A fake flytekit 0.0.0 for kiln's end-to-end tests."""

__version__ = "0.0.0"
