"""The five tests every notebook's self-checks get, written once (tests/test_selfchecks_NN.py use them).

``exercise_tests(notebook, wrong)`` returns test functions for a module to
add to its globals. They take a ``run_after(exercise, code) -> printed``
fixture that the module defines with the names its notebook's checks use.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import selfchecks  # noqa: E402


def exercise_tests(notebook: Path, wrong: dict[str, dict[str, str]], namespace: dict | None = None) -> dict:
    """The tests for ``notebook``'s self-checks, with ``wrong``: exercise -> {mistake: code}.

    With ``namespace`` (the names the checks need, none of them a fixture), the tests come
    with their ``run_after`` fixture; without it, the calling module defines one.
    """
    exercises = sorted(selfchecks.tagged_cells(notebook, "self-check"))
    wrong_answers = [(exercise, mistake) for exercise, answers in wrong.items() for mistake in answers]

    def source(exercise: str, tag: str) -> str:
        return selfchecks.exercise_source(notebook, exercise, tag)

    def test_every_exercise_has_known_wrong_answers():
        assert len(exercises) >= 2
        assert set(wrong) == set(exercises)
        assert all(len(answers) >= 2 for answers in wrong.values())

    def test_check_cells_are_defined_once_and_copied_exactly():
        assert selfchecks.problems(notebook) == []

    @pytest.mark.parametrize("exercise", exercises)
    def test_the_solution_passes(exercise, run_after):
        printed = run_after(exercise, source(exercise, "solution"))
        assert f"{exercise.replace('exercise-', 'Exercise ')}: correct!" in printed

    @pytest.mark.parametrize("exercise", exercises)
    def test_an_empty_exercise_is_not_attempted_yet(exercise, run_after):
        stub = source(exercise, "exercise")
        assert "return None" in stub
        printed = run_after(exercise, stub)
        assert "not attempted yet" in printed and "correct" not in printed

    @pytest.mark.parametrize(("exercise", "mistake"), wrong_answers)
    @pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # the NaN some mistakes make
    def test_a_wrong_answer_is_rejected(exercise, mistake, run_after):
        with pytest.raises(AssertionError):
            run_after(exercise, wrong[exercise][mistake])

    tests = {name: value for name, value in locals().items() if name.startswith("test_")}
    if namespace is not None:

        @pytest.fixture
        def run_after():
            return lambda exercise, code: selfchecks.run_check(notebook, exercise, code, dict(namespace))

        tests["run_after"] = run_after
    return tests
