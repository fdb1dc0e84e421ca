"""Panopticon core, in layers: `config` (the MetricsConfiguration contract), `render`
(paths, expressions, compiled programs, exposition), `sharding` (buckets, ranges,
fences), `store` (Redis and in-process) and `kube` (Kubernetes access).

Importing this package starts nothing and holds no global state.
"""

__version__ = "0.1.0"
