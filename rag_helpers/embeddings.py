# Generated from notebooks/01_embeddings.ipynb by tools/nbexport.py: edit the notebook, not this file.
# Each block below is one `#| export` cell of the notebook, verbatim, in order.

"""Step 1 of RAG: turn texts into unit vectors with a sentence-embedding model.

A sentence-embedding model (the course uses all-MiniLM-L6-v2) maps any text to
a fixed number of floats (384), so that texts with similar meaning get vectors
that point in similar directions. Notebook 01 builds this module.
"""
import numpy as np
from sentence_transformers import SentenceTransformer


def load_encoder(path_or_name: str, device: str | None = None) -> SentenceTransformer:
    """Load a sentence-embedding model from a local folder or a Hugging Face Hub id.

    device: "cpu", "cuda", "mps", or None for the best one available.
    """
    # A Hub id is downloaded once, then read from the local cache; a folder is read as it is.
    return SentenceTransformer(str(path_or_name), device=device)


def embed(texts: list[str], encoder: SentenceTransformer, batch_size: int = 32,
          show_progress_bar: bool = False) -> np.ndarray:
    """Embed n texts: (n, dim) float32, one row of length 1 per text (dim = 384 for all-MiniLM-L6-v2).

    batch_size: how many texts the model reads at once (more is faster, up to what memory allows).
    """
    # normalize_embeddings=True: unit rows, so that the dot product of two rows is their cosine
    # (notebook 02 proves it, and writes the normalization itself).
    return encoder.encode(texts, batch_size=batch_size, show_progress_bar=show_progress_bar,
                          normalize_embeddings=True)  # (n, dim) float32
