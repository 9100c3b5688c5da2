"""rag_helpers: Retrieval-Augmented Generation from scratch with NumPy and Hugging Face.

The package behind the course's notebooks, in three layers:

- **The course modules** (``embeddings.py`` ... ``scaling.py``), one per
  notebook, are generated from the notebook's ``#| export`` cells, verbatim
  (``python tools/nbexport.py write``): open one and you read what the
  notebook built, top to bottom.
- **``engine/``** holds what a learner can skip: the names below with their
  argument checks and clear errors, and the fast paths (blocked scan, batched
  top-k, Hamming scan, on-disk index). Each fast path is tested to give the
  taught function's results.
- **``_infra/``** is plumbing: model resolution, devices, caches.

    import rag_helpers as rh
    pipe = rh.RAGPipeline(rh.SAMPLE_DOCUMENTS, k=2)
    res = pipe.answer("which planet is the biggest?")

Names load on first use, so ``import rag_helpers`` is quick: torch and
sentence-transformers are imported only by what needs them.
"""
import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING

__version__ = "0.2.0"

#: Public name -> the module that defines it (imported on first use).
_WHERE = {
    # The contract (shared/COURSE_DESIGN.md), in pipeline order.
    "l2_normalize": ".engine.vectors",
    "cosine_scores": ".engine.scoring",
    "cosine_scores_loop": ".engine.scoring",
    "top_k": ".engine.topk",
    "search": ".engine.retrieval",
    "load_encoder": ".engine.embeddings",
    "embed": ".engine.embeddings",
    "retrieve_with_numpy": ".engine.retrieval",
    "build_prompt": ".engine.prompts",
    "load_generator": ".engine.generation",
    "generate_real_answer": ".engine.pipeline",
    "RAGPipeline": ".engine.pipeline",
    "DEFAULT_MIN_SCORE": ".engine.abstention",
    "binary_codes": ".engine.quantization",
    "search_binary": ".engine.quantization",
    # The pipeline's result, errors and warnings.
    "RAGResult": ".engine.pipeline",
    "ModelLoadError": "._infra.models",
    "OfflineFallbackWarning": "._infra.models",
    "LongDocumentWarning": ".engine.embeddings",
    "ContextTrimmedWarning": ".engine.pipeline",
    "ContextOverflowError": ".engine.pipeline",
    "SkippedFilesWarning": ".engine.pipeline",
    # A few more.
    "retrieve": ".engine.retrieval",
    "Hit": ".engine.retrieval",
    "Generator": ".engine.generation",
    "SAMPLE_DOCUMENTS": ".knowledge_base",
    "SAMPLE_QUESTION": ".knowledge_base",
    "PACKAGED_GENERATOR": "._infra.models",
    # Changing documents, filters, and a vector database (notebook 12).
    "Where": ".engine.filters",
    "NoMatchError": ".engine.filters",
    "VectorStore": ".engine.vector_store",
    "StoreFilter": ".engine.vector_store",
}

__all__ = list(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(_importlib.import_module(_WHERE[name], __name__), name)
        globals()[name] = value  # the next look-up is a plain attribute
        return value
    raise AttributeError(f"module 'rag_helpers' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if _TYPE_CHECKING:  # for editors and type checkers: the same names, eagerly
    from ._infra.models import PACKAGED_GENERATOR, ModelLoadError, OfflineFallbackWarning
    from .engine.abstention import DEFAULT_MIN_SCORE
    from .engine.embeddings import LongDocumentWarning, embed, load_encoder
    from .engine.filters import NoMatchError, Where
    from .engine.vector_store import StoreFilter, VectorStore
    from .engine.generation import Generator, load_generator
    from .engine.pipeline import (
        ContextOverflowError, ContextTrimmedWarning, RAGPipeline, RAGResult, SkippedFilesWarning, generate_real_answer,
    )
    from .engine.prompts import build_prompt
    from .engine.quantization import binary_codes, search_binary
    from .engine.retrieval import Hit, retrieve, retrieve_with_numpy, search
    from .engine.scoring import cosine_scores, cosine_scores_loop
    from .engine.topk import top_k
    from .engine.vectors import l2_normalize
    from .knowledge_base import SAMPLE_DOCUMENTS, SAMPLE_QUESTION
