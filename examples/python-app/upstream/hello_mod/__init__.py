"""A tiny library the sample app depends on (vendored as a wheel)."""
from dep_mod import decorate

__version__ = "1.0"


def greet(name):
    return decorate(f"hello {name}")
