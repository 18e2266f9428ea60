"""A dependency of hello_mod (vendored as a wheel)."""
__version__ = "2.0"


def decorate(text):
    return f"** {text} **"
