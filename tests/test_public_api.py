"""The package's public face: the contract's names, a small __all__, nothing hidden, a quick import."""
from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap

import pytest

import rag_helpers as rh

#: shared/COURSE_DESIGN.md: tests outside the project call these names.
CONTRACT = {
    "l2_normalize", "cosine_scores", "cosine_scores_loop", "top_k", "search", "load_encoder", "embed",
    "retrieve_with_numpy", "build_prompt", "load_generator", "generate_real_answer", "RAGPipeline",
    "DEFAULT_MIN_SCORE", "binary_codes", "search_binary",
}
RESULT_ERRORS_WARNINGS = {
    "RAGResult", "ModelLoadError", "OfflineFallbackWarning", "LongDocumentWarning", "ContextTrimmedWarning",
    "ContextOverflowError", "SkippedFilesWarning",
}


def test_all_holds_the_contract_and_at_most_eight_others():
    names = set(rh.__all__)
    assert len(names) == len(rh.__all__), "a name is listed twice in __all__"
    assert CONTRACT <= names
    assert RESULT_ERRORS_WARNINGS <= names
    assert len(names - CONTRACT - RESULT_ERRORS_WARNINGS) <= 12, sorted(names - CONTRACT - RESULT_ERRORS_WARNINGS)


@pytest.mark.parametrize("name", sorted(CONTRACT | RESULT_ERRORS_WARNINGS))
def test_every_public_name_is_what_it_says(name):
    value = getattr(rh, name)
    if name == "DEFAULT_MIN_SCORE":
        assert isinstance(value, float) and -1.0 <= value <= 1.0
    elif name[0].isupper():  # classes: the result, the errors, the warnings
        assert inspect.isclass(value), name
        if name.endswith("Error"):
            assert issubclass(value, Exception), name
        if name.endswith("Warning"):
            assert issubclass(value, Warning), name
    else:
        assert callable(value) and value.__name__ == name or name == "retrieve_with_numpy", name
    assert name in dir(rh)


def test_no_hidden_names():
    # Nothing public but what __all__ lists (plus the subpackages and module dunders):
    # no alias reachable through __getattr__ that dir() does not show.
    for gone in ("pick_device", "pick_dtype", "embed_cached", "stream_answer", "fit_documents", "search_simple"):
        assert not hasattr(rh, gone), gone
    public = {n for n in dir(rh) if not n.startswith("_")}
    submodules = {n for n in public if inspect.ismodule(getattr(rh, n))}
    assert public - submodules == set(rh.__all__)


def test_retrieve_with_numpy_is_retrieve():
    # The contract's name for it, one function under two names (not two functions under one).
    assert rh.retrieve_with_numpy is rh.retrieve


def test_import_is_quick_and_loads_no_model_library():
    # Heavy imports (torch, transformers, sentence-transformers) wait for first use.
    code = textwrap.dedent("""
        import sys, time
        start = time.perf_counter()
        import rag_helpers as rh
        seconds = time.perf_counter() - start
        heavy = sorted(m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules)
        print(f"{seconds:.3f} {','.join(heavy) or '-'}")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    seconds, heavy = float(out[0]), out[1]
    assert heavy == "-", f"import rag_helpers loaded {heavy}"
    assert seconds < 2.0, f"import rag_helpers took {seconds:.2f} s"


def test_the_numeric_core_needs_no_model_library():
    code = textwrap.dedent("""
        import sys
        import numpy as np
        import rag_helpers as rh
        v = rh.l2_normalize(np.eye(3, dtype=np.float32))
        rh.search(v[0], v, 2); rh.top_k(np.arange(5.0), 2); rh.cosine_scores(v[0], v)
        print(",".join(sorted(m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules)) or "-")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "-", f"the NumPy steps imported {out}"
