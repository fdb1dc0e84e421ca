"""The expression engine: a govaluate-like language for `valueFromExpression`.

Why hand-written rather than simpleeval (or a govaluate port): the language is
govaluate's, as the configurations it comes from write it: `&&`, `? :`, `??`,
`=~`/`!~` on RE2, `in` with a parenthesised list, Go's float division, modulo and
power. simpleeval evaluates Python syntax with Python semantics, and `ast.parse`
recurses as deep as the input nests, while every expression here is untrusted and
bounded (`syntax`). Expressions are compiled once to closures (`compiler`) and
evaluated per object: 2-9x faster than simpleeval evaluating a tree parsed once
(`benchmarks/handwritten.py`, CPython 3.11.7, loaded 2-core machine; wide range
because of the load).
"""
