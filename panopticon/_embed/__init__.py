"""The library's internals behind `panopticon.embed` (not part of its stable API)."""
