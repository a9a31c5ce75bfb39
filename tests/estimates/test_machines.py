"""Planning for another machine: a shipped Apple Silicon profile gives the plan that machine's times and
memory, checked against the seed's own measured round (Gemma 4 31B on a 96 GB M3 Ultra: 400 steps at
~1.5 s per step, ~10 minutes, ~81 GB at its peak) within 30%."""

from __future__ import annotations

import shutil
import typing

from anvil.estimates.for_project import memory_limit
from anvil.estimates.machines import PROFILES
from anvil.project import open_project
from anvil.recipe.infrastructure import MachineProfile
from tests.conftest import REPO

SEED_STEP_S, SEED_STEPS, SEED_PEAK_GB = 1.5, 400, 81


def planned(tmp_path, machine: str | None, extra: str = ""):
    """The 31B recipe's plan, copied with its data (a state is written beside a recipe), with another
    `[machine]` unless None."""
    (tmp_path / "recipes").mkdir(parents=True)
    for folder in ("data", "evals"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    text = (REPO / "recipes" / "gemma4-31b-pe.toml").read_text().replace('concurrency = "auto"\n', "")
    text = text.replace("runs = 3\n", f"runs = 3\n{extra}")
    if machine is not None:
        head, _, rest = text.partition("[machine]\n")  # the recipe's own machine, replaced
        text = head + f"[machine]\n{machine}\n" + rest[rest.index("\n[") :]
    (tmp_path / "recipes" / "pe.toml").write_text(text)
    project = open_project(tmp_path / "recipes" / "pe.toml")
    return project.plan()


def test_the_seeds_recipe_is_planned_for_its_mac(tmp_path):
    plan = planned(tmp_path, None)
    assert plan.estimates["v2.train"].basis == "M3 Ultra profile"


def test_every_profile_the_recipe_names_is_described():
    assert set(PROFILES) == set(typing.get_args(MachineProfile))
    for profile in PROFILES.values():
        assert profile.bandwidth_gbs > 0 and profile.tflops > 0 and profile.source


def test_the_seeds_round_on_an_m3_ultra_within_30_percent(tmp_path):
    plan = planned(tmp_path, 'profile = "m3-ultra"\nmemory_gb = 96')
    v2 = plan.estimates["v2.train"]
    assert v2.basis == "M3 Ultra profile"
    assert 0.7 < v2.seconds / (SEED_STEP_S * SEED_STEPS) < 1.3, v2.seconds
    assert 0.7 < v2.memory_bytes / 1e9 / SEED_PEAK_GB < 1.3, v2.memory_bytes
    assert plan.evaluation_seconds() > 0.9 * plan.estimated_seconds(), "at 31B, evaluation is most of it"


def test_evaluation_concurrency_divides_the_time_generation_takes(tmp_path):
    one = planned(tmp_path / "one", 'profile = "m3-ultra"')
    eight = planned(tmp_path / "eight", 'profile = "m3-ultra"', extra="concurrency = 8\n")
    assert eight.estimates["v2.knowledge"].seconds < one.estimates["v2.knowledge"].seconds / 6
    assert eight.estimates["v2.train"].seconds == one.estimates["v2.train"].seconds
    auto = planned(tmp_path / "auto", 'profile = "m3-ultra"', extra='concurrency = "auto"\n')
    assert auto.estimates["v2.knowledge"].seconds == eight.estimates["v2.knowledge"].seconds, "greedy: 8 fit"
    assert auto.estimates["v2.transcripts"].seconds == one.estimates["v2.transcripts"].seconds, "sampled: one"


def test_a_slower_chip_plans_slower_and_its_memory_is_the_profiles(tmp_path):
    m1 = planned(tmp_path / "m1", 'profile = "m1-max"')
    m3 = planned(tmp_path / "m3", 'profile = "m3-ultra"')
    assert m1.estimates["v2.train"].seconds > 2 * m3.estimates["v2.train"].seconds
    project = open_project(tmp_path / "m1" / "recipes" / "pe.toml")
    assert memory_limit(project.loaded) == (64e9, "the M1 Max (64 GB)")
