"""The course's benchmarks: programs that time rag_helpers against its peers and the hardware.

Run them with ``python -m benchmarks`` (see benchmarks/README.md). They are
not tests: nothing here fails on a slow machine; each part prints medians
and ratios measured in the same run, and the goals each figure is held to.
"""
