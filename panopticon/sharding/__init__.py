"""Who owns which object: buckets of the uid hash, contiguous ranges, rings and fences.

Pure arithmetic shared by shards and aggregators (every process computes the same
assignment from the same shard count); the store enforces it with fenced writes.
"""
