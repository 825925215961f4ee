"""Your tasks: importing this package registers them (the template's TaskModules parameter)."""

from tasks import greet

__all__ = ["greet"]
