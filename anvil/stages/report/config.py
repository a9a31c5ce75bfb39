"""What the report stage is given of the recipe: the lineage and the notes that only the page shows
(dataset and category descriptions). Fingerprinted as the report's config, so rewording a note rebuilds
the page and nothing else."""

from __future__ import annotations

from importlib import resources

from anvil.planning.fingerprint import digest
from anvil.recipe.base import Strict
from anvil.recipe.datasets import Category
from anvil.recipe.models import Recipe
from anvil.recipe.sweep import variants

TEMPLATE = "report.html.jinja"  # in anvil/assets


def template_text() -> str:
    return resources.files("anvil.assets").joinpath(TEMPLATE).read_text("utf-8")


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
        template=digest(template_text())[:16],
    )
