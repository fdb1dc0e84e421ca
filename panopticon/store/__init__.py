"""Where shards put rendered lines and aggregators read them.

`layout` names the keys, `batch` the write batches, `contract` the Store protocol,
`scripts` and `writescript` the Lua that fences every claim and write; `redisstore`
and `scan` talk to Redis (the only modules that do), `memory` is the in-process store of
embedded mode, `options` how to reach the store.
"""
