"""The package version (imported by modules that record provenance, and by ``hdbench``)."""

__version__ = "0.1.0"
