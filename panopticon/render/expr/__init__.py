"""The expression engine: a govaluate-like language for `valueFromExpression`."""
