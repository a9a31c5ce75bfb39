"""Results read back from an artifact are typed and versioned: what was written reads back equal, and a file
of another version or a damaged one is an error naming the file and the field, never a KeyError."""

from __future__ import annotations

import json

import pytest

from anvil.errors import AnvilError
from anvil.evaluation.results import EvalResults, KnowledgeResults
from anvil.evaluation.scores import deltas, summarize
from anvil.recipe.suite import Scoring

TESTS = [Scoring(id=f"t{i}", category="c" if i % 2 else "d", rubric="r") for i in range(4)]


def _results() -> EvalResults:
    mine = summarize(TESTS, {t.id: [4.0, 3.0, 5.0 - i % 3] for i, t in enumerate(TESTS)}, 2.0)
    base = summarize(TESTS, {t.id: [1.0, 2.0, 1.0] for t in TESTS}, 2.0)
    return EvalResults(suites={"s": mine.model_copy(update={"delta_vs_base": deltas(mine, base)})})


def test_what_is_written_reads_back_equal(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(_results().model_dump(mode="json")))
    assert EvalResults.read(path) == _results()
    assert EvalResults.read(path).suites["s"].delta("base").significance.composite.significant


def test_a_file_without_a_format_is_version_one(tmp_path):
    written = _results().model_dump(mode="json")
    del written["format"]
    (tmp_path / "results.json").write_text(json.dumps(written))
    assert EvalResults.read(tmp_path / "results.json").format == 1


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda r: r | {"format": 2}, "format"),
        (lambda r: r | {"suites": {"s": {"composite": "high"}}}, "suites.s"),
        (lambda r: r | {"extra": 1}, "extra"),
    ],
)
def test_another_version_or_a_damaged_file_is_an_error_naming_it(tmp_path, change, named):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(change(_results().model_dump(mode="json"))))
    with pytest.raises(AnvilError) as e:
        EvalResults.read(path)
    assert str(path) in str(e.value) and named in str(e.value) and "anvil plan" in str(e.value)


def test_a_missing_or_unparsable_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(AnvilError, match="missing"):
        KnowledgeResults.read(tmp_path / "results.json")
    (tmp_path / "results.json").write_text("{")
    with pytest.raises(AnvilError, match="not results this Anvil reads"):
        KnowledgeResults.read(tmp_path / "results.json")
