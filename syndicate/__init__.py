"""syndicate: ingest blog feeds, publish RSS/Atom/JSON, link forum threads, send a digest."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("syndicate")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
