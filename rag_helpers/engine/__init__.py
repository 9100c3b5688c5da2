"""The engine: the checked and fast versions of what the notebooks teach.

A learner can skip this folder. Each public name of ``rag_helpers`` that a
notebook teaches lives here with its argument checks and clear errors, and
calls the taught function (in the course module generated from the
notebook) or a fast path that gives the same results; a property test per
fast path proves that.
"""
