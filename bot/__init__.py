"""Composition root: settings, factories, middlewares, the web app and the command line."""

__version__ = "0.1.0"
