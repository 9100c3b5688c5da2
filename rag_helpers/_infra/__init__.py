"""Infrastructure a learner can skip: the plumbing behind the course's steps.

Nothing here is taught by a notebook. It is what makes the taught code safe
and convenient to run anywhere:

* ``validation``: argument checks, run once where a public function is called;
* ``models``: which model to load and from where (the Hub, a packaged copy, the offline fallback);
* ``devices``: CUDA, Apple MPS or CPU, and the dtype for each;
* ``cache``: the user cache folder, confined and checked;
* ``gguf_cache``: the packaged GGUF generator converted once to safetensors;
* ``embedding_cache``: document embeddings kept on disk between runs.
"""
