"""The MetricsConfiguration contract: the model, its extensions' fields, documents.

The bottom layer of the core: it reads untrusted input into typed specs and reports
what is wrong by field path. It knows nothing of rendering, storage or Kubernetes
(import-linter: `panopticon.render.offline` may import it, never the reverse).
"""
