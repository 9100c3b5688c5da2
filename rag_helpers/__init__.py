"""rag_helpers: Retrieval-Augmented Generation from scratch with NumPy and Hugging Face.

The package behind the course's notebooks. Each function lives here once, in
the module named for the notebook that teaches it; the notebooks build it
inline, then check themselves against it:

    01 embeddings.py   load_encoder, embed
    02 vectors.py      l2_normalize
    03 scoring.py      cosine_scores, cosine_scores_loop
    04 topk.py         top_k
       retrieval.py    search, retrieve (= retrieve_with_numpy), Hit
    05 prompts.py      build_prompt, chat_messages, fit_documents (injection.py: the defences)
    06 generation.py   load_generator, Generator.generate / .stream, generate_real_answer
    07 pipeline.py     RAGPipeline, RAGResult: the one place that assembles the steps
    08 documents.py, chunking.py, corpus.py: your own files, chunks, the shipped corpus
    09 metrics.py, evaluation.py, bm25.py, hybrid.py, abstention.py: measuring retrieval
    10 quantization.py, index_store.py: below the float32 floor

``_infra/`` holds what no notebook teaches (model resolution, devices,
caches, argument checks): a learner can skip it.

    import rag_helpers as rh
    pipe = rh.RAGPipeline(rh.SAMPLE_DOCUMENTS, k=2)
    res = pipe.answer("which planet is the biggest?")
"""
from ._infra.models import PACKAGED_GENERATOR, ModelLoadError, OfflineFallbackWarning
from .abstention import DEFAULT_MIN_SCORE
from .embeddings import LongDocumentWarning, embed, load_encoder
from .generation import Generator, generate_real_answer, load_generator
from .knowledge_base import SAMPLE_DOCUMENTS, SAMPLE_QUESTION
from .pipeline import ContextOverflowError, ContextTrimmedWarning, RAGPipeline, RAGResult, SkippedFilesWarning
from .prompts import build_prompt
from .quantization import binary_codes, search_binary
from .retrieval import Hit, retrieve, retrieve_with_numpy, search
from .scoring import cosine_scores, cosine_scores_loop
from .topk import top_k
from .vectors import l2_normalize

__version__ = "0.2.0"

__all__ = [
    # The contract (shared/COURSE_DESIGN.md), in pipeline order.
    "l2_normalize",
    "cosine_scores",
    "cosine_scores_loop",
    "top_k",
    "search",
    "load_encoder",
    "embed",
    "retrieve_with_numpy",
    "build_prompt",
    "load_generator",
    "generate_real_answer",
    "RAGPipeline",
    "DEFAULT_MIN_SCORE",
    "binary_codes",
    "search_binary",
    # The pipeline's result, errors and warnings.
    "RAGResult",
    "ModelLoadError",
    "OfflineFallbackWarning",
    "LongDocumentWarning",
    "ContextTrimmedWarning",
    "ContextOverflowError",
    "SkippedFilesWarning",
    # A few more.
    "retrieve",
    "Hit",
    "Generator",
    "SAMPLE_DOCUMENTS",
    "SAMPLE_QUESTION",
    "PACKAGED_GENERATOR",
]

# Names that were public before the one-module-per-notebook layout. They keep
# working (``rh.pick_dtype``, ...) but are not part of ``__all__``: each now
# lives in its module, listed here.
_MOVED = {
    "pick_device": "._infra.devices",
    "pick_dtype": "._infra.devices",
    "embed_cached": "._infra.embedding_cache",
    "stream_answer": "._compat",
    "fit_documents": "._compat",
    "DEFAULT_MAX_NEW_TOKENS": ".generation",
    "DEFAULT_EMBEDDING_MODEL": "._infra.models",
    "DEFAULT_GENERATOR_MODEL": "._infra.models",
    "EMBEDDING_MODEL_ENV": "._infra.models",
    "GENERATOR_MODEL_ENV": "._infra.models",
}


def __getattr__(name: str):
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(_MOVED[name], __name__), name)
    raise AttributeError(f"module 'rag_helpers' has no attribute {name!r}")
