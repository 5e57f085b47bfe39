"""kiln-dep: the dependency of kiln-hello 1.1.0."""

VERSION = "0.1.0"
