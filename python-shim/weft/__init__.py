"""weft: the Python side of weft, the file-lineage tracer.

Standard library only. It never traces anything itself: it arranges for
the `weft` binary to wrap processes (Ray workers), and tells a wrapper
when a task begins and ends. See docs/ray.md.
"""

__all__ = ["ray"]
