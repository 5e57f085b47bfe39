"""kiln-hello 1.0.0: a greeting for kiln's end-to-end tests."""

__version__ = "1.0.0"


def greet():
    return "hello from kiln-hello " + __version__


def main():
    print(greet())
    return 0
