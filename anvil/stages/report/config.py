"""What the report stage is given of the recipe: the lineage and the notes that only the page shows
(dataset and category descriptions). Fingerprinted as the report's config, so rewording a note rebuilds
the page and nothing else."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from anvil.planning.fingerprint import digest
from anvil.recipe.base import Strict
from anvil.recipe.datasets import Category
from anvil.recipe.models import Recipe
from anvil.recipe.sweep import variants

TEMPLATE = "report.html.jinja"  # in anvil/assets: the page around the sections (head, lineage, sources)
# A stage kind's section of the page is a partial beside its module (anvil/stages/<kind>[.<part>].html.jinja)
# whose first line gives its place on the page: `{#- page 50: what it shows -#}`. The page includes every
# partial in place order: a new kind's section is its partial, and the page is not edited.
PLACE = re.compile(r"\{#- page (\d+): ")


def template_text() -> str:
    return resources.files("anvil.assets").joinpath(TEMPLATE).read_text("utf-8")


@cache
def partials() -> dict[str, str]:
    """Each stage kind's section of the page by file name, in page order."""
    found = []
    for file in resources.files("anvil.stages").iterdir():
        if file.name.endswith(".html.jinja"):
            text = file.read_text("utf-8")
            place = PLACE.match(text)
            if place is None:
                raise ValueError(f"anvil/stages/{file.name}: its first line must be {{#- page N: what it shows -#}}")
            found.append((int(place.group(1)), file.name, text))
    return {name: text for _, name, text in sorted(found)}


class ModelNotes(Strict):
    parent: str | None = None
    source: str | None = None
    dataset: str | None = None
    quantize: str | None = None  # a quantized node: how (Quantize.label)
    variants: list[str] = []  # a swept round: its variants (its weights are the winner's, from its select)
    margin: float | None = None  # ... and its non-inferiority margin


class DatasetNotes(Strict):
    description: str | None = None
    categories: dict[str, Category] = {}


class ReportConfig(Strict):
    project: str
    models: dict[str, ModelNotes]  # in the recipe's order
    datasets: dict[str, DatasetNotes]
    evaluated: list[str]  # eval.compare
    served: str | None  # the model `[serve]` keeps running
    template: str  # digest of the page's template: editing it draws the page again


def report_config(recipe: Recipe) -> ReportConfig:
    return ReportConfig(
        project=recipe.project.name,
        models={
            name: ModelNotes(
                parent=m.parent,
                source=m.source,
                dataset=m.dataset,
                quantize=m.quantize.label if m.quantize else None,
                margin=m.quantize.margin if m.quantize else None,
                variants=list(variants(name, m)) if m.matrix else [],
            )
            for name, m in recipe.models.items()
        },
        datasets={
            name: DatasetNotes(description=d.description, categories=d.categories)
            for name, d in recipe.datasets.items()
        },
        evaluated=list(recipe.eval.compare) if recipe.eval else [],
        served=recipe.serve.model if recipe.serve else None,
        template=digest([template_text(), partials()])[:16],
    )
