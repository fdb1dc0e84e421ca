"""Panopticon core: configuration model, path and expression engines, rendering,
store layout, hash ring, Kubernetes client and API simulator.

Importing this package starts nothing and holds no global state.
"""

__version__ = "0.1.0"
