"""A model's card, as the Hugging Face Hub reads one: its metadata (`Metadata`: base model and relation,
license, tags and the evaluation results the Hub's `model-index` holds; no `datasets`, since a recipe's
data are local files, which the body lists) and a Markdown body
with what the dashboard shows of the model's lineage. Pure: it is made from the dashboard's data
(`report.json`), so every figure on the card is one of the page's; backends/hub.py writes the metadata
as YAML with huggingface_hub's own serialiser."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from anvil.stages.report.page import figure_text as shown


@dataclass(frozen=True)
class Result:
    """One entry of the Hub's `model-index` results (huggingface_hub's EvalResult, less its task): a suite's
    composite or a knowledge benchmark's score."""

    dataset_type: str
    dataset_name: str
    metric_type: str
    metric_name: str
    metric_value: float


@dataclass(frozen=True)
class Metadata:
    model: str
    license: str | None
    base_model: str | None  # a Hub repo id: the lineage's root, when it came from the Hub
    relation: str | None  # finetune, adapter or quantized (the Hub's base_model_relation)
    tags: list[str] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Lineage:
    """What the card needs of the recipe: the model's ancestry, root first, and how each came about."""

    project: str
    models: list[dict[str, Any]]  # {model, parent, source, dataset, method, quantize}, root first
    root_source: str  # hf:ORG/NAME, path:..., synthetic:...
    license: str | None
    recipe_excerpt: str


def relation(lineage: Lineage, adapter: bool) -> str | None:
    """How the exported weights relate to the root model, in the Hub's words."""
    model = lineage.models[-1]
    if len(lineage.models) == 1:
        return None
    if adapter:
        return "adapter"
    return "quantized" if model.get("quantize") and len(lineage.models) == 2 else "finetune"


def metadata(report: dict[str, Any], lineage: Lineage, adapter: bool) -> Metadata:
    model = lineage.models[-1]["model"]
    results = [
        Result(
            f"anvil-suite/{card['suite']}",
            f"{card['suite']} (behavioural suite, LLM judge, {card['runs']} runs)",
            "composite",
            "composite score (0-5)",
            card["composite"],
        )
        for card in report["composites"]
        if card["model"] == model and card.get("suite") and card.get("composite") is not None
    ]
    results += [
        Result(
            row["benchmark"], row.get("title") or row["benchmark"], "accuracy", f"accuracy (n={row['n']})", row["score"]
        )
        for row in report["knowledge"]
        if row["model"] == model and row.get("score") is not None
    ]
    hub_root = lineage.root_source.removeprefix("hf:") if lineage.root_source.startswith("hf:") else None
    # the adapter of a round stacked on another applies to that round's fused weights, not to the root's
    direct = len(lineage.models) == 2
    base = hub_root if hub_root and (direct or not adapter) else None
    tags = ["anvil", "mlx", "lora"] + (["quantized"] if lineage.models[-1].get("quantize") else [])
    return Metadata(
        model=model,
        license=lineage.license,
        base_model=base,
        relation=relation(lineage, adapter) if base else None,
        tags=tags,
        results=results,
    )


def failed_gates(report: dict[str, Any], model: str) -> list[str]:
    """The model's gates that did not pass, each as `metric value (threshold)`."""
    out = []
    for row in report["gates"]:
        if row["model"] != model:
            continue
        for gate in row.get("gates") or []:
            if not gate.get("passed"):
                out.append(f"{gate['metric']} {shown(gate.get('value'))} ({_threshold(gate)})")
        if row.get("state") == "failed" and not out:
            out.append("its gate stage failed")
    return out


def body(report: dict[str, Any], lineage: Lineage, adapter: bool, forced: list[str]) -> str:
    """The card's Markdown: what the model is, how it was made, how it did, and where every figure is from."""
    model = lineage.models[-1]["model"]
    chain = " → ".join(m["model"] for m in lineage.models)
    lines = [f"# {lineage.project}: {model}", ""]
    if forced:
        lines += [f"> **Not gated.** Exported with `--force`: {len(forced)} gate(s) failed: {'; '.join(forced)}.", ""]
    what = (
        "A LoRA adapter" if adapter else "A quantized checkpoint" if lineage.models[-1].get("quantize") else "A model"
    )
    lines += [
        f"{what} of the lineage {chain}, from `{lineage.root_source}`, built by Anvil: every figure below "
        "is the dashboard's (`dashboard.html` and `anvil-report.json` in this folder), read from the stage "
        "named beside it.",
        "",
        *_use(lineage, adapter),
        "## Lineage",
        "",
        "| model | from | data | method |",
        "| --- | --- | --- | --- |",
        *[
            f"| {m['model']} | {_from(m)} | {m.get('dataset') or '–'} | {m.get('method') or '–'} |"
            for m in lineage.models
        ],
        "",
    ]
    ancestry = {m["model"] for m in lineage.models}
    lines += _rounds(report, ancestry)
    lines += _evaluation(report, model)
    lines += _gates(report, model)
    lines += _knowledge(report, model)
    lines += _checks(report, ancestry, model)
    lines += _provenance(report, lineage)
    return "\n".join(lines).rstrip() + "\n"


def _use(lineage: Lineage, adapter: bool) -> list[str]:
    if adapter:
        parent = lineage.models[-2]["model"]
        return [
            "## Use",
            "",
            f"Apply it to {parent}'s weights (`anvil export {parent} DIR` writes them): "
            f"`mlx_lm.generate --model {parent.upper()}_DIR --adapter-path .` or "
            "`mlx_lm.load(parent, adapter_path=...)`.",
            "",
        ]
    return [
        "## Use",
        "",
        "A multimodal checkpoint (vision and audio towers kept): `mlx_vlm.load(folder)`, or serve it with "
        "`mlx_vlm.server --model folder`.",
        "",
    ]


def _from(m: dict[str, Any]) -> str:
    if m.get("quantize"):
        return f"{m['parent']}, {m['quantize']}"
    return f"{m['parent']} (fused weights)" if m.get("parent") else f"`{m['source']}`"


def _rounds(report: dict[str, Any], ancestry: set[str]) -> list[str]:
    lines: list[str] = []
    for r in report["rounds"]:
        if r["model"] not in ancestry:
            continue
        d, t = r["dataset"], r.get("training") or {}
        lines += [f"## {r['model']}: data and training", ""]
        categories = ", ".join(f"{c['name']} {c['rows']}" for c in d.get("categories") or [])
        lines += [f"- data: `{d['name']}`, {shown(d.get('rows'), 'int')} rows ({categories or 'not mixed'})"]
        if d.get("description"):
            lines += [f"- {d['description']}"]
        if t.get("rank") is not None:
            lines += [
                f"- {t.get('method', 'sft')}: LoRA rank {t['rank']}, scale {shown(t['scale'], 'g')}, last "
                f"{t['last_layers']} layers ({' + '.join(t.get('targets') or [])}), {shown(t['steps'], 'int')} "
                f"steps, batch {t['batch_size']}, lr {shown(t['learning_rate'], 'g')}, max length "
                f"{t['max_seq_length']}, peak memory {shown(t.get('peak_memory_gb'))} GB ({t['from']})"
            ]
        lines += [""]
    return lines


def _evaluation(report: dict[str, Any], model: str) -> list[str]:
    cards = [c for c in report["composites"] if c["model"] == model and c.get("suite")]
    if not cards:
        return []
    lines = [
        "## Evaluation",
        "",
        "| suite | composite | vs parent (p) | vs base (p) | judge |",
        "| --- | --- | --- | --- | --- |",
    ]
    for c in cards:
        judge = "uncalibrated" if c.get("uncalibrated") else "calibrated"
        lines += [
            f"| {c['suite']} | {shown(c['composite'])} ({c['runs']}-run average, {c['from']}) "
            f"| {_delta(c['delta_vs_parent'], c['p_vs_parent'])} | {_delta(c['delta_vs_base'], c['p_vs_base'])} "
            f"| {judge} |"
        ]
    for j in report["judge"]:
        lines += ["", f"Judge of `{j['suite']}` ({j['from']}): {j['verdict']}"]
    return lines + [""]


def _delta(value: float | None, p: float | None) -> str:
    return "–" if value is None else f"{shown(value, '+.2f')} ({shown(p, 'p')})"


def _threshold(gate: dict[str, Any]) -> str:
    bounds = [f">= {shown(gate['min'], 'g')}" if gate.get("min") is not None else ""]
    bounds += [f"<= {shown(gate['max'], 'g')}" if gate.get("max") is not None else ""]
    return " and ".join(b for b in bounds if b) or "no bound"


def _gates(report: dict[str, Any], model: str) -> list[str]:
    rows = [row for row in report["gates"] if row["model"] == model and row.get("gates")]
    if not rows:
        return []
    lines = ["## Gates", "", "| gate | value | threshold | passed |", "| --- | --- | --- | --- |"]
    for row in rows:
        for g in row["gates"]:
            lines += [
                f"| {g['metric']} | {shown(g.get('value'))} | {_threshold(g)} | {'yes' if g['passed'] else 'NO'} |"
            ]
    return lines + [""]


def _knowledge(report: dict[str, Any], model: str) -> list[str]:
    rows = [row for row in report["knowledge"] if row["model"] == model and row.get("score") is not None]
    if not rows:
        return []
    lines = [
        "## Knowledge preservation",
        "",
        "| benchmark | n | score | vs parent | vs base |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        parent, base = row.get("parent") or {}, row.get("base") or {}
        name = f"{row.get('title') or row['benchmark']} (`{row['benchmark']}`)"
        lines += [f"| {name} | {row['n']} | {shown(row['score'], 'pct')} | {_pp(parent)} | {_pp(base)} |"]
    return lines + [""]


def _pp(delta: dict[str, Any]) -> str:
    if delta.get("delta") is None:
        return "–"
    return f"{shown(delta['delta'], 'pp')} (p {shown(delta.get('p_value'), 'p')})"


def _checks(report: dict[str, Any], ancestry: set[str], model: str) -> list[str]:
    lines = []
    for p in report["parity"]:
        if p["model"] in ancestry:
            lines += [
                f"- train/serve parity of {p['model']} ({p['from']}): {p['verdict']}, max |dlogit| "
                f"{shown(p['max_logit_diff'], '.1e')}, top-1 agreement {shown(p['top1_agreement'], 'pct')}"
            ]
    for s in report["shipped"]:
        if s["model"] == model:
            lines += [f"- quantized: {s['verdict']}: {s['why']}"]
    return ["## Checks", "", *lines, ""] if lines else []


def _provenance(report: dict[str, Any], lineage: Lineage) -> list[str]:
    packages = " · ".join(f"{name} {version}" for name, version in report["architecture"]["packages"].items())
    ancestry = {m["model"] for m in lineage.models}
    stages = [
        f"| {sid} | `{s['fingerprint'][:16]}` | {(s.get('started') or '')[:16].replace('T', ' ')} |"
        for sid, s in report["sources"].items()
        if sid.split(".")[0] in ancestry or sid.startswith("dataset.")
    ]
    return [
        "## Provenance",
        "",
        f"Packages: {packages}.",
        "",
        "| stage | fingerprint | built |",
        "| --- | --- | --- |",
        *stages,
        "",
        "The recipe's tables for this lineage:",
        "",
        "```toml",
        lineage.recipe_excerpt.strip(),
        "```",
        "",
    ]
