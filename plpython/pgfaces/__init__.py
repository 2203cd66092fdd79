"""pgfaces: find the photos a person appears in. This package runs inside PostgreSQL (PL/Python) and in clients."""

__version__ = "0.1.0"
