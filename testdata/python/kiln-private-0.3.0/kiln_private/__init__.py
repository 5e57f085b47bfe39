"""kiln-private: only on the authenticated index."""

__version__ = "0.3.0"
SECRET_ONLY = True


def whoami():
    return "kiln-private " + __version__
