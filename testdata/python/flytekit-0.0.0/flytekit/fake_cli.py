"""What a task command needs to show: which interpreter runs the console
script, and whether it can import the modules named on its command line
(the image's packages)."""

import importlib
import sys


def main():
    print("python: " + sys.executable)
    for name in sys.argv[1:]:
        mod = importlib.import_module(name)
        print("imported " + name + " from " + mod.__file__)
    return 0
