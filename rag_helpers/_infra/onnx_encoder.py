"""A faster CPU path for the packaged encoder: the same network, run by ONNX Runtime.

On a CPU, embedding is the slow step of building an index. Run this way, the
very same all-MiniLM-L6-v2 embeds chunks of ~200 tokens about 1.5-2x as fast
as ``SentenceTransformer.encode`` (``python -m benchmarks embedding``), for
three reasons, each measured while choosing this design: ONNX Runtime's graph
optimizer fuses the small operations of each layer into single kernels; a
short run (one ~200-token chunk) keeps its activations in the CPU's cache,
where a batch of 32 does not; and each core runs its own texts with one
thread, so the cores never wait for each other inside a layer.

Once per machine, the packaged model folder is exported to ONNX with
``torch.onnx.export`` (locally, offline) and kept in
``cache_root() / "encoders" / <model>`` with a ``manifest.json`` that records
the size and SHA-256 of the exported file and of the model files it came
from (the manifest pattern of ``cache.py``, shared with the generator cache).
A missing, stale or corrupt export is rebuilt, saying so in one line.

Every time it is loaded, the ONNX model embeds a few fixed sentences and must
give the PyTorch encoder's vectors (cosine >= ``VERIFY_MIN_COSINE``);
otherwise it is not used. Tokenizing and pooling stay as they are: the
encoder's own tokenizer prepares the inputs, and mean pooling is done here
in NumPy, exactly as the packaged model's Pooling module does it.

This path needs the ``fast`` extra (``onnxruntime`` and ``onnx``). Without
it, ``embed`` calls ``SentenceTransformer.encode`` as before; with it, any
failure also falls back to ``encode``, with one line on stderr saying why.
Set ``RAG_FAST_EMBEDDING=0`` to turn the fast path off.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import threading
import warnings
import weakref
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from .cache import build_atomically, cache_root, check_manifest, file_id, remove_stale, write_manifest
from .models import short_reason

__all__ = [
    "FAST_EMBEDDING_ENV",
    "OnnxEncoder",
    "token_budget_batches",
    "token_lengths",
    "fast_path_available",
    "register_packaged_encoder",
    "fast_encoder_for",
    "forget_fast_encoder",
    "exported_dir",
    "ensure_exported",
    "check_exported",
]

FAST_EMBEDDING_ENV = "RAG_FAST_EMBEDDING"
#: The fast path must reproduce the PyTorch vectors this closely, sentence by sentence.
VERIFY_MIN_COSINE = 0.99999
#: Each ONNX run gets at most this many tokens, padding included. One
#: 200-token chunk runs alone; short texts are grouped. Smaller runs keep
#: the attention scores and the feed-forward activations in the CPU cache.
TOKEN_BUDGET = 256

_FORMAT = 1
_ONNX_FILE = "encoder.onnx"
_OPSET = 17
# What decides the exported network; the tokenizer files do not, since the
# encoder's own tokenizer prepares the inputs.
_SOURCE_FILES = ("config.json", "model.safetensors", "pytorch_model.bin")
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Sentences of different lengths, embedded together, so that padding and the
# attention mask are exercised too.
_VERIFY_SENTENCES = (
    "Jupiter is the largest planet in our solar system.",
    "Hi.",
    "Retrieval-augmented generation looks up the passages most similar to a question and gives "
    "them to a language model, which then answers from them rather than from memory alone; "
    "the similarity is the cosine between two sentence embeddings.",
    "Zürich, 東京 and São Paulo: non-ASCII text, numbers (3.14159) and punctuation!?",
)

# Encoders that load_encoder made from the packaged folder -> that folder; and
# the prepared fast paths (or None: not usable for this encoder).
_registered: "weakref.WeakKeyDictionary[object, Path]" = weakref.WeakKeyDictionary()
_prepared: "weakref.WeakKeyDictionary[object, OnnxEncoder | None]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def fast_path_available() -> bool:
    """True if the ``fast`` extra is installed and not turned off by ``RAG_FAST_EMBEDDING=0``."""
    if os.environ.get(FAST_EMBEDDING_ENV, "").strip().lower() in {"0", "false", "no", "off"}:
        return False
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


def register_packaged_encoder(encoder, model_dir: Path) -> None:
    """Note that ``encoder`` was loaded from the packaged folder ``model_dir`` (cheap; nothing is exported)."""
    _registered[encoder] = Path(model_dir)
    _prepared.pop(encoder, None)


def forget_fast_encoder(encoder, reason: str) -> None:
    """Stop using the fast path for ``encoder``, saying why in one line."""
    _prepared[encoder] = None
    print(f"Fast embedding path off ({reason}); using SentenceTransformer.encode.", file=sys.stderr)


def fast_encoder_for(encoder) -> OnnxEncoder | None:
    """The verified ONNX path for ``encoder``, prepared on first use; None where it does not apply.

    It applies to an encoder that ``load_encoder`` loaded from the packaged
    model, on the CPU, with the ``fast`` extra installed. Weights changed
    since it was verified (an edit, a ``load_state_dict``) turn it off.
    """
    if encoder not in _registered or not fast_path_available():
        return None
    if getattr(encoder.device, "type", "cpu") != "cpu":
        return None
    with _lock:
        if encoder not in _prepared:
            _prepared[encoder] = _prepare(encoder, _registered[encoder])
        fast = _prepared[encoder]
    if fast is not None and fast.weights_stamp != _weights_stamp(encoder):
        forget_fast_encoder(encoder, "the encoder's weights changed after the ONNX export was verified")
        return None
    return fast


def _prepare(encoder, model_dir: Path) -> OnnxEncoder | None:
    try:
        folder = ensure_exported(model_dir)
        fast = OnnxEncoder(folder / _ONNX_FILE, encoder)
        worst = fast.verify()
    except Exception as exc:  # the exporter, onnx and onnxruntime raise many kinds
        print(f"Fast embedding path unavailable ({type(exc).__name__}: {short_reason(exc)}); "
              "using SentenceTransformer.encode.", file=sys.stderr)
        return None
    if worst < VERIFY_MIN_COSINE:
        print(f"Fast embedding path off: the ONNX export disagrees with the PyTorch encoder "
              f"(cosine {worst:.6f} < {VERIFY_MIN_COSINE}); using SentenceTransformer.encode.", file=sys.stderr)
        return None
    return fast


def _weights_stamp(encoder) -> tuple:
    # Where each tensor lives and how often it was modified in place: a change
    # of weights changes one of them, at the cost of a few microseconds.
    return tuple((t.data_ptr(), t._version) for t in encoder.state_dict().values())


class OnnxEncoder:
    """Runs the exported network; the encoder's own tokenizer prepares its inputs."""

    def __init__(self, onnx_path: Path, encoder) -> None:
        import onnxruntime as ort

        # A weak reference: the table of prepared paths must not keep the encoder alive.
        self._encoder = weakref.ref(encoder)
        self.weights_stamp = _weights_stamp(encoder)
        # One thread per run, and as many runs at once as PyTorch would use
        # threads: each core works through its own texts without waiting.
        self.workers = max(1, torch.get_num_threads())
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        # sentence-transformers 6 renamed the method; older releases have only the old name.
        self.dim = (getattr(encoder, "get_embedding_dimension", None) or encoder.get_sentence_embedding_dimension)()

    def verify(self) -> float:
        """The lowest cosine between this path's and ``encoder.encode``'s vectors for the fixed sentences."""
        texts = list(_VERIFY_SENTENCES)
        reference = self._encoder().encode(texts, convert_to_numpy=True, normalize_embeddings=True)
        feed, mask = self._inputs(texts)  # one run: the short sentences are padded
        ours = _mean_pool(self.session.run(None, feed)[0], mask)
        return float(np.min(np.sum(ours * reference, axis=1)))

    def encode(self, texts: list[str], *, batch_size: int = 32, show_progress_bar: bool = False) -> np.ndarray:
        """Embed ``texts``: (n, dim) float32, unit rows, in the order given.

        ``batch_size`` caps the texts per run; ``TOKEN_BUDGET`` usually decides first.
        """
        encoder = self._encoder()
        batches = token_budget_batches(token_lengths(encoder.tokenizer, texts, encoder.max_seq_length or None),
                                       batch_size, TOKEN_BUDGET)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        progress = None
        if show_progress_bar:
            from tqdm.auto import tqdm

            progress = tqdm(total=len(texts), desc="Embedding (ONNX)", unit="text")
        pending: deque = deque()

        def finish() -> None:
            idx, mask, future = pending.popleft()
            out[idx] = _mean_pool(future.result()[0], mask)
            if progress is not None:
                progress.update(len(idx))

        try:
            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                for idx in batches:
                    # Tokenizing stays on this thread (a fast tokenizer is not safe
                    # to share between threads); the runs go to the workers, a few
                    # at a time, so that memory stays flat however long the list.
                    feed, mask = self._inputs([texts[i] for i in idx])
                    pending.append((idx, mask, pool.submit(self.session.run, None, feed)))
                    if len(pending) > 2 * self.workers:
                        finish()
                while pending:
                    finish()
        finally:
            if progress is not None:
                progress.close()
        return out

    def _inputs(self, texts: list[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The ONNX inputs for ``texts`` as the encoder tokenizes them, and their (batch, seq) attention mask."""
        encoder = self._encoder()
        prepare = getattr(encoder, "preprocess", None) or encoder.tokenize  # sentence-transformers < 6
        features = prepare(texts)
        mask = features["attention_mask"].numpy()
        feed = {name: features[name].numpy() if name in features else np.zeros_like(mask) for name in self.input_names}
        return feed, mask


def _mean_pool(tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean pooling, as the model's Pooling module does it, then unit length.

    tokens (batch, seq, dim) float32, mask (batch, seq) 0/1 -> (batch, dim) float32 unit rows.
    """
    weights = mask[:, :, None].astype(np.float32)  # padding tokens count for nothing
    vectors = (tokens * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


#: Texts tokenized at a time to count their tokens.
LENGTH_BLOCK = 2048


def token_lengths(tokenizer, texts: list[str], window: int | None) -> np.ndarray:
    """Each text's number of tokens (cut at ``window``): (n,) int64.

    Tokenized ``LENGTH_BLOCK`` texts at a time, and only the counts kept:
    the token lists of every text at once, as Python ints, cost about 9 KiB a
    line (0.9 GiB for 100,000 lines, most of it kept by the allocator after
    they are freed). Each batch is tokenized again when it runs.
    """
    lengths = np.empty(len(texts), dtype=np.int64)
    for start in range(0, len(texts), LENGTH_BLOCK):
        ids = tokenizer(list(texts[start : start + LENGTH_BLOCK]), truncation=window is not None,
                        max_length=window)["input_ids"]
        lengths[start : start + len(ids)] = [len(i) for i in ids]
    return lengths


def token_budget_batches(lengths: list[int], batch_size: int, budget: int = TOKEN_BUDGET) -> list[np.ndarray]:
    """Group texts of ``lengths`` tokens into runs: longest first, at most ``budget`` tokens each.

    Returns a list of int arrays of indices into ``lengths``; together they
    hold every index once. A run holds at most ``batch_size`` texts, and its
    padded size (texts x its longest) stays within ``budget`` unless one
    text alone is longer.
    """
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    batches = []
    start = 0
    while start < len(order):
        # Sorted longest first, so a run's first text sets its padded length.
        longest = max(1, int(lengths[order[start]]))
        size = max(1, min(batch_size, budget // longest))
        batches.append(order[start : start + size])
        start += size
    return batches


# ---------------------------------------------------------------- the export, cached


def exported_dir(model_dir: Path) -> Path:
    """Where the ONNX export of the model folder ``model_dir`` lives."""
    name = model_dir.parent.name if model_dir.name == "model" else model_dir.name
    return cache_root() / "encoders" / f"{name}-onnx"


def _source_id(model_dir: Path) -> dict:
    # By content, not by path: every virtual environment installs its own copy
    # of the same model, and they all share one export.
    return {name: file_id(model_dir / name) for name in _SOURCE_FILES if (model_dir / name).is_file()}


def check_exported(folder: Path, model_dir: Path) -> str | None:
    """Why ``folder`` is not a valid export of ``model_dir``, or None if it is."""
    return check_manifest(
        folder,
        fmt=_FORMAT,
        source=lambda: _source_id(model_dir),
        other_source="made from another model",
        required=(_ONNX_FILE,),
    )


def ensure_exported(model_dir: Path) -> Path:
    """Return a folder holding ``encoder.onnx``, the ONNX export of ``model_dir``.

    Exports on first use (and whenever the cache is missing, stale or
    corrupt, saying so in one line); otherwise only verifies the checksums.
    """
    folder = exported_dir(model_dir)
    problem = check_exported(folder, model_dir)
    if problem is None:
        return folder
    # Exports killed half-way (their process is gone) left temporary folders beside it.
    remove_stale(folder.parent, folder.name)
    if folder.exists():
        print(f"Encoder export {folder} is unusable ({problem}); exporting again.", file=sys.stderr)
    else:
        print(f"Exporting the encoder to ONNX once (a few seconds); cached in {folder}", file=sys.stderr)
    _export(model_dir, folder)
    return folder


def _export(model_dir: Path, folder: Path) -> None:
    from transformers import AutoModel

    def build(tmp: Path) -> None:
        # Eager attention: its plain matrix products export to standard ONNX
        # operators, which ONNX Runtime's optimizer recognizes and fuses.
        model = AutoModel.from_pretrained(
            model_dir, attn_implementation="eager", local_files_only=True, trust_remote_code=False
        ).eval()
        # A batch of two with padding, so that the traced graph keeps the mask.
        example = {
            "input_ids": torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]]),
            "attention_mask": torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]]),
            "token_type_ids": torch.zeros(2, 4, dtype=torch.long),
        }
        with warnings.catch_warnings(), torch.no_grad():
            # The TorchScript exporter is deprecated in favour of torch.export's,
            # which needs onnxscript; it still exports this model exactly, and
            # the result is verified on every load.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _LastHiddenState(model),
                tuple(example[name] for name in _INPUTS),
                str(tmp / _ONNX_FILE),
                input_names=list(_INPUTS),
                output_names=["token_embeddings"],
                dynamic_axes={name: {0: "batch", 1: "sequence"} for name in (*_INPUTS, "token_embeddings")},
                opset_version=_OPSET,
                dynamo=False,
            )
        write_manifest(
            tmp, fmt=_FORMAT, source=_source_id(model_dir), exported_with={"torch": torch.__version__, "opset": _OPSET}
        )

    build_atomically(folder, build)


class _LastHiddenState(torch.nn.Module):
    """A transformers model whose forward returns the token vectors only: (batch, seq, dim) float32."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.model(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
