"""A stage kind's section of the page is a partial beside its module, and the page includes each one in
the place its first line gives: no section is written into the page itself."""

from __future__ import annotations

from importlib import resources

from anvil.stages.registry import STAGES
from anvil.stages.report.config import PLACE, TEMPLATE, partials, template_text


def test_every_partial_belongs_to_a_stage_kind_and_has_a_place_of_its_own():
    found = partials()
    modules = {stage.nodes.__module__.rpartition(".")[2] for stage in STAGES}  # anvil/stages/<module>.py
    assert len(found) >= 10
    for name in found:
        assert name.split(".")[0] in modules, f"{name}: beside no stage module (expected <module>[.<part>].html.jinja)"
    places = [int(PLACE.match(text).group(1)) for text in found.values()]
    assert places == sorted(places) and len(set(places)) == len(places), "each partial its own place, in page order"


def test_the_page_holds_only_what_belongs_to_no_kind():
    page = template_text()
    sections = {line.split('id="')[1].split('"')[0] for line in page.splitlines() if "<section" in line}
    assert sections == {"live", "architecture", "sources"}, sections
    assert "{% include partial %}" in page
    assert resources.files("anvil.assets").joinpath(TEMPLATE).is_file()


def test_the_report_reads_every_kind_through_the_kinds_page():
    """No module of the report imports a kind: each section's data comes from its kind's `page`, and every
    kind with a partial has one."""
    from anvil.stages.kinds import KINDS
    from tests.test_layers import PACKAGE, imports

    modules = {stage.nodes.__module__: stage for stage in KINDS}
    for path in (PACKAGE / "stages" / "report").glob("*.py"):
        assert not imports(path) & set(modules), f"{path.name} reads a kind itself"
    for name in partials():
        assert modules[f"anvil.stages.{name.split('.')[0]}"].page is not None, f"{name}: its kind has no page"
