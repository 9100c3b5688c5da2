"""The package's public face: the contract's names, a small __all__, old names still working, one assembler."""
from __future__ import annotations

import ast
from pathlib import Path

import rag_helpers as rh

PACKAGE = Path(rh.__file__).parent

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
#: Public before the one-module-per-notebook layout: still reachable as rh.NAME.
OLD_NAMES = [
    "embed_cached", "stream_answer", "fit_documents", "Generator", "pick_device", "pick_dtype",
    "SAMPLE_DOCUMENTS", "SAMPLE_QUESTION", "DEFAULT_EMBEDDING_MODEL", "DEFAULT_GENERATOR_MODEL",
    "PACKAGED_GENERATOR", "EMBEDDING_MODEL_ENV", "GENERATOR_MODEL_ENV", "DEFAULT_MAX_NEW_TOKENS",
]
#: The modules of the pipeline's steps: front ends must not call them directly.
STEP_MODULES = {"embeddings", "vectors", "scoring", "topk", "retrieval", "blocked_search", "prompts", "generation"}


def test_all_holds_the_contract_and_little_else():
    names = set(rh.__all__)
    assert CONTRACT <= names
    assert RESULT_ERRORS_WARNINGS <= names
    assert len(names - CONTRACT - RESULT_ERRORS_WARNINGS) <= 8
    assert all(hasattr(rh, name) for name in rh.__all__)


def test_every_old_name_still_works():
    for name in OLD_NAMES:
        assert getattr(rh, name) is not None, name
    assert rh.fit_documents.__module__ == "rag_helpers._compat"


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rag_helpers."):
            found.add(node.module.split(".")[1])
    return found


def test_front_ends_go_through_the_pipeline_only():
    for front_end in ("__main__.py", "explorer.py"):
        imported = _imported_modules(PACKAGE / front_end)
        assert "pipeline" in imported, front_end
        assert not imported & STEP_MODULES, f"{front_end} imports a step directly: {imported & STEP_MODULES}"
