"""The running example: a handful of short facts on mixed topics, planets among them."""
from __future__ import annotations

__all__ = ["SAMPLE_DOCUMENTS", "SAMPLE_QUESTION"]

SAMPLE_QUESTION = "which planet is the biggest?"

SAMPLE_DOCUMENTS: list[str] = [
    "The Eiffel Tower is in Paris, the capital of France.",
    "Jupiter is the largest planet in our solar system.",
    "Photosynthesis lets plants turn sunlight, water and carbon dioxide into sugar.",
    "Venus is the second planet from the Sun and is the hottest.",
    "Python is a programming language created by Guido van Rossum.",
    "Mars is often called the Red Planet because of its iron-rich dust.",
    "The Pacific Ocean is the largest and deepest ocean on Earth.",
    "Mount Everest is the highest mountain above sea level.",
    "Water boils at 100 degrees Celsius at sea level.",
    "The Moon is Earth's only natural satellite.",
]
