"""Compiled metric shapes: how one metric renders its series for one object.

`pick` chooses a shape from a metric's compiled parts; `metrics` holds the shapes
without fan-out, `elements` the Array fan-out over `fanout`'s iteration, and
`values` the value sources they all call.
"""
