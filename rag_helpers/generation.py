# Generated from notebooks/06_generation.ipynb by tools/nbexport.py: edit the notebook, not this file.
# Each block below is one `#| export` cell of the notebook, verbatim, in order.

"""Step 6 of the pipeline: running the language model (notebook 06).

Where the model runs and in which number format, how its scores become
probabilities, and greedy decoding written out by hand, with a KV cache.
"""
import inspect

import numpy as np
import torch
from transformers import PreTrainedModel


def pick_device() -> str:
    """The best device here: "cuda" (an NVIDIA GPU), else "mps" (an Apple GPU), else "cpu"."""
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(device: str) -> torch.dtype:
    """The number format of the model's weights on ``device`` ("cpu", "mps", "cuda" or "cuda:N").

    bfloat16 on NVIDIA GPUs that compute in it natively (compute capability 8
    or more: Ampere and later), float16 on older ones such as the T4 (which
    only emulate bfloat16, slowly) and on Apple MPS, float32 on the CPU (most
    CPUs have no fast half-precision matrix products).
    """
    if device.startswith("cuda"):
        major, _minor = torch.cuda.get_device_capability(device)
        return torch.bfloat16 if major >= 8 else torch.float16
    if device.startswith("mps"):
        return torch.float16
    return torch.float32


def softmax(scores: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Probabilities from scores (logits): (vocab,) float -> (vocab,) float64 summing to 1.

    ``temperature`` < 1 sharpens the distribution (towards greedy), > 1 flattens it.
    """
    z = np.asarray(scores, dtype=np.float64) / temperature
    z = z - z.max()  # the same probabilities, and exp() of large scores cannot overflow
    e = np.exp(z)
    return e / e.sum()


@torch.inference_mode()  # no gradients: we only run the model
def greedy_decode(
    model: PreTrainedModel, input_ids: torch.Tensor, max_new_tokens: int, stop_ids: set[int]
) -> list[int]:
    """The token ids greedy decoding writes after ``input_ids``, (1, n) int64 on the model's device.

    Each step appends the highest-scoring token, until one of ``stop_ids``
    (the end-of-turn token, not returned) or ``max_new_tokens`` tokens. The
    first step reads the whole prompt (the prefill) and keeps every layer's
    attention keys and values (the KV cache); each later step runs the model
    on the one new token only, reading the earlier tokens from the cache.
    """
    # transformers 5.24 renamed the cache argument from past_key_values to cache: use the model's name for it.
    cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    cache = None
    ids = input_ids  # what the model reads this step: the prompt, then one token at a time
    new: list[int] = []
    for _ in range(max_new_tokens):
        out = model(input_ids=ids, use_cache=True, **{cache_arg: cache})  # logits: (1, len(ids), vocab)
        cache = getattr(out, cache_arg)  # the keys and values of every token so far
        next_id = int(out.logits[0, -1].argmax())  # the best next token
        if next_id in stop_ids:
            break
        new.append(next_id)
        ids = torch.tensor([[next_id]], device=input_ids.device)  # (1, 1)
    return new
