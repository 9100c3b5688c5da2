"""rag_helpers: Retrieval-Augmented Generation from scratch with NumPy and Hugging Face.

The package behind the course's notebooks. Each function lives here once; the
notebooks build it inline for teaching, then check themselves against it.

    import rag_helpers as rh
    pipe = rh.RAGPipeline(rh.SAMPLE_DOCUMENTS, k=2)
    res = pipe.answer("which planet is the biggest?")
"""
from ._infra.devices import pick_device, pick_dtype
from ._infra.embedding_cache import embed_cached
from .embeddings import LongDocumentWarning, embed, load_encoder
from .generation import (
    DEFAULT_MAX_NEW_TOKENS,
    Generator,
    fit_documents,
    generate_real_answer,
    load_generator,
    stream_answer,
)
from .knowledge_base import SAMPLE_DOCUMENTS, SAMPLE_QUESTION
from ._infra.models import (
    DEFAULT_EMBEDDING_MODEL,
    DEFAULT_GENERATOR_MODEL,
    EMBEDDING_MODEL_ENV,
    GENERATOR_MODEL_ENV,
    PACKAGED_GENERATOR,
    ModelLoadError,
    OfflineFallbackWarning,
)
from .pipeline import ContextTrimmedWarning, RAGPipeline, RAGResult
from .prompts import build_prompt
from .retrieval import retrieve_with_numpy, search
from .scoring import cosine_scores, cosine_scores_loop
from .topk import top_k
from .vectors import l2_normalize

__version__ = "0.1.0"

__all__ = [
    "l2_normalize",
    "cosine_scores",
    "cosine_scores_loop",
    "top_k",
    "search",
    "load_encoder",
    "embed",
    "embed_cached",
    "retrieve_with_numpy",
    "build_prompt",
    "load_generator",
    "generate_real_answer",
    "stream_answer",
    "fit_documents",
    "Generator",
    "RAGPipeline",
    "RAGResult",
    "pick_device",
    "pick_dtype",
    "SAMPLE_DOCUMENTS",
    "SAMPLE_QUESTION",
    "DEFAULT_EMBEDDING_MODEL",
    "DEFAULT_GENERATOR_MODEL",
    "PACKAGED_GENERATOR",
    "EMBEDDING_MODEL_ENV",
    "GENERATOR_MODEL_ENV",
    "DEFAULT_MAX_NEW_TOKENS",
    "ModelLoadError",
    "OfflineFallbackWarning",
    "LongDocumentWarning",
    "ContextTrimmedWarning",
]
