"""From a config and an object to exposition lines: paths, expressions, compiled programs.

`program` compiles a config once per change; `shapes/` holds the compiled metric shapes
that render one object's series; `exposition` writes Prometheus' text formats;
`offline` renders files the way the shards render objects. Pure computation: no I/O
library is imported here (import-linter), so every path is testable offline.
"""
