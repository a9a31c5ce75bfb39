"""train: a LoRA round on its parent's full weights and its dataset, by SFT or, on preference pairs, DPO
or ORPO (mlx-lm-lora's trainers, in a child process). Writes mlx-lm's adapter format, the loss curve and
before/after samples on held-out prompts: `adapters.safetensors`, `adapter_config.json`, `loss.json`,
`samples.json`; a preference round also `preference.json` (chosen-vs-rejected margins on held-out pairs)."""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, model_serializer

from anvil.backends import lora, samples
from anvil.backends.lora import curve_so_far
from anvil.errors import AnvilError
from anvil.estimates import arithmetic, first_run
from anvil.estimates.cost import Cost, Work
from anvil.methods.preference import Preference
from anvil.methods.registry import METHODS, TABLES, Method, settings_in
from anvil.methods.rewards import Grpo, Term
from anvil.planning.graph import Node, stage_id
from anvil.planning.record import StageRecord
from anvil.recipe.base import Strict
from anvil.recipe.evaluation import Judge
from anvil.recipe.infrastructure import Distributed
from anvil.recipe.models import Lora, Recipe, Train, lora_keys
from anvil.recipe.preference import as_chat
from anvil.recipe.suite import Scoring
from anvil.stages import dataset, source, transcripts
from anvil.stages.report.charts import bars, drawn, loss_curves
from anvil.stages.report.config import ReportConfig
from anvil.stages.report.view import View
from anvil.stages.stage import (
    Recorded,
    Result,
    Stage,
    StageRun,
    Suites,
    artifact_json,
    read_figures,
    weights_of,
)
from anvil.state import adapters

CODE_VERSION = 3


class RewardJudge(Strict):
    """The recipe's judge and each test a judge term scores against, by `SUITE/TEST`."""

    judge: Judge
    tests: dict[str, Scoring]


class TrainConfig(Strict):
    lora: Lora
    train: Train
    # How many processes share each batch: part of what the weights are (gradients summed across processes
    # round differently from one process's batch), so part of the fingerprint; 1 is left out of it, so
    # that single-process rounds keep the fingerprints they always had.
    processes: int = 1
    method: Method = "sft"
    # the method's settings, in its table (methods/registry.py's TABLES): a GRPO round's reward is part of
    # what the round is
    preference: Preference | None = None
    grpo: Grpo | None = None
    # A judge reward's judge and the tests it scores against (their rubrics and checks): what the reward is
    reward_judge: RewardJudge | None = None

    @property
    def method_settings(self) -> Strict | None:
        return settings_in(self)

    @model_serializer(mode="wrap")
    def _without_defaults(self, handler):
        """1 process, the sft method and no method settings are left out of what is fingerprinted, so that
        rounds that do not use them keep the fingerprints they had before these existed."""
        data = handler(self)
        defaults = (("processes", 1), ("method", "sft"), ("reward_judge", None), *((table, None) for table in TABLES))
        for key, default in defaults:
            if key in data and data[key] == default:
                data.pop(key)
        return data


def nodes(recipe: Recipe, suites: Suites) -> list[Node]:
    return [
        Node(
            id=stage_id("train", name),
            kind="train",
            config=TrainConfig(
                lora=model.lora or Lora(),
                train=model.train or Train(),
                processes=model.distributed.world_size if model.distributed else 1,
                method=model.method,
                **method_table(model.method, model.method_settings),
                reward_judge=reward_judge(recipe, suites, model.method_settings),
            ),
            needs={"parent": weights_of(recipe, model.parent), "dataset": stage_id("dataset", model.dataset)}
            | calibrations(model.method_settings),
            code_version=CODE_VERSION,
            model=name,
            options=model.distributed,  # where the processes run, never what they compute
            detail=model.method if model.method != "sft" else "",
        )
        for name, model in recipe.models.items()
        if model.trains and model.parent is not None
    ]


def judging(reward: RewardJudge | None, cache: Path) -> dict[str, Any] | None:
    """What the training child needs to ask a judge reward's judge: the judge, the tests, how many calls at
    once, the evaluation's verdict cache (an answer judged once is not asked again) and the folder a command
    judge runs in (this one: the training child runs in its checkpoints folder)."""
    if reward is None:
        return None
    asked = reward.model_dump(mode="json", by_alias=True) | {"concurrency": reward.judge.concurrency}
    return asked | {"cache": str(cache / "judge"), "cwd": os.getcwd()}


def judge_terms(settings: Strict | None) -> list[Term]:
    """A reward's judge terms (none but for a GRPO round's)."""
    return settings.judged() if isinstance(settings, Grpo) else []


def reward_judge(recipe: Recipe, suites: Suites, settings: Strict | None) -> RewardJudge | None:
    """The judge and tests of a reward's judge terms (checked when the recipe was read), or None."""
    terms = judge_terms(settings)
    if not terms or recipe.eval is None:
        return None
    by_name = {transcripts.suite_name(path): {t.id: t for t in tests} for path, tests in suites.items()}
    tests = {t.test: by_name[t.suite][t.test_id].scoring() for t in terms if t.test}
    return RewardJudge(judge=recipe.eval.judge, tests=tests)


def calibrations(settings: Strict | None) -> dict[str, str]:
    """The calibration stage of each suite a judge reward's terms name: a judge that fails it blocks the round."""
    return {f"calibration:{t.suite}": stage_id("calibration", t.suite) for t in judge_terms(settings)}


def method_table(name: str, given: Strict | None) -> dict[str, Any]:
    """The method's settings in its table, as the round gives them or, when omitted, its defaults; nothing for
    a method without settings."""
    method = METHODS[name]
    if method.TABLE is None or method.SETTINGS is None:
        return {}
    return {method.TABLE: given if given is not None else method.SETTINGS()}


def run(ctx: StageRun[TrainConfig]) -> Result:
    parent, data = ctx.inputs["parent"], ctx.inputs["dataset"]
    metrics = lora.train(
        source.checkpoint(parent, ctx.root),
        data,
        ctx.config.lora,
        ctx.config.train,
        ctx.out,
        ctx.scratch,
        prompts=samples.held_out([(as_chat(row), category) for row, category in dataset.validation_rows(data)]),
        method=ctx.config.method,
        settings_of_method=ctx.config.method_settings,
        reward_judge=judging(ctx.config.reward_judge, ctx.cache),
        base_model=f"anvil:{parent.name}",  # artifact folders are named by their fingerprint
        launch=ctx.options if isinstance(ctx.options, Distributed) else None,
        ledger=ctx.local.processes,
        log=ctx.local.logs / f"{ctx.node.id}.trainer.log",
        progress=ctx.progress,
    )
    return Result.of(Trained.model_validate(metrics))


class Trained(Recorded):
    """A round's training: the loss curve's ends, speed and peak memory, the adapter's size, training's own
    greedy samples before and after; beside these, the method's own figures (its module's `results`: a DPO
    round's held-out margin, a GRPO round's held-out reward), which its `summary` and `dashboard` read. An
    imported adapter has its size only."""

    model_config = Recorded.model_config | ConfigDict(extra="allow")

    steps: int | None = None
    processes: int | None = None
    resumed_from_step: int | None = None
    train_loss_first: float | None = None
    train_loss_last: float | None = None
    valid_loss_first: float | None = None
    valid_loss_last: float | None = None
    tokens_per_second: float | None = None
    seconds_per_step: float | None = None
    peak_memory_gb: float | None = None
    trainable_parameters: int | None = None
    total_parameters: int | None = None
    trainable_percent: float | None = None
    samples: int | None = None
    sample_similarity_before: float | None = None
    sample_similarity_after: float | None = None


def figures(record: StageRecord) -> Trained:
    return read_figures(Trained, record)


def adopt(ctx: StageRun[TrainConfig], folder: Path) -> Result:
    """An adapter trained outside Anvil (mlx-lm-lora, mlx-lm) as this round's: its config must say what the
    round's `lora` says, its tensors must fit the parent. What it cannot show (the data and steps it was
    trained with) is recorded as imported, not as built."""
    config, shapes = adapters.read(folder)
    at = f"models.{ctx.node.model}.lora"
    names = {
        "num_layers": f"{at}.last_layers",
        "lora_parameters.rank": f"{at}.rank",
        "lora_parameters.scale": f"{at}.scale",
        "lora_parameters.dropout": f"{at}.dropout",
        "lora_parameters.keys": f"{at}.targets, as mlx-lm's keys,",
        "fine_tune_type": "method (LoRA)",
    }
    expected = lora.adapter_config(ctx.config.lora, "")
    problems = adapters.mismatches(config, expected, names)
    keys, parent = expected["lora_parameters"]["keys"], source.checkpoint(ctx.inputs["parent"], ctx.root)
    problems += adapters.fit(shapes, parent, config, keys, f"{at}.targets {ctx.config.lora.targets}")
    if problems:
        raise AnvilError(f"{folder}: does not fit {ctx.node.id}:\n  " + "\n  ".join(problems))
    for name in adapters.FILES:
        shutil.copyfile(folder / name, ctx.out / name)
    trainable = sum(math.prod(shape) for shape in shapes.values())
    return Result.of(Trained(trainable_parameters=trainable))


def summary(record: StageRecord) -> str:
    m = figures(record)
    if m.train_loss_first is None or m.train_loss_last is None:  # nothing logged (imported: trained elsewhere)
        return f"{m.steps} steps" if m.steps else ""
    if own := METHODS[record.config.get("method", "sft")].summary(m.model_dump()):
        return own
    valid = f", valid {m.valid_loss_last:.3f}" if m.valid_loss_last is not None else ""
    return f"loss {m.train_loss_first:.3f} -> {m.train_loss_last:.3f}{valid}"


def page(config: ReportConfig, view: View) -> dict[str, Any]:
    """Each round's data mix, training settings and loss curve (a swept round's rounds are its variants')."""
    return {"rounds": [_round(config, view, name) for name, m in config.models.items() if m.dataset and not m.variants]}


def charts(data: dict[str, Any]) -> dict[str, str | None]:
    """Every round's loss curve in one chart, and each round's data mix."""
    curves = [{"model": r["model"], "loss": {k: r["loss"][k] for k in ("train", "valid")}} for r in data["rounds"]]
    found = {"loss": drawn(loss_curves, curves)}
    for r in data["rounds"]:
        categories, name = r["dataset"]["categories"], f"mix-{r['model']}"
        counts = {"rows": [c["rows"] for c in categories]}
        found[name] = drawn(bars, name, [c["name"] for c in categories], counts, "n", True)
    return found


def _round(config: ReportConfig, view: View, model: str) -> dict[str, Any]:
    m, sid = config.models[model], stage_id("train", model)
    assert m.parent is not None and m.dataset is not None
    curve = view.read(sid, lambda folder: artifact_json(folder, "loss.json"))
    curve = curve or view.curves.get(sid) or {"train": [], "valid": []}
    return {
        "model": model,
        "parent": m.parent,
        "dataset": dataset.mix(config, view, m.dataset),
        "training": _training(config, view, model),
        "loss": {**curve, "table": loss_table(curve), "state": view.states.get(sid, "pending"), "from": sid},
    }


def loss_table(curve: dict[str, list[dict]]) -> list[dict[str, Any]]:
    """The curve at its validation steps, its first and its last step: train and valid loss side by side."""
    train = {p["step"]: p["loss"] for p in curve["train"]}
    valid = {p["step"]: p["loss"] for p in curve["valid"]}
    ends = {min(train), max(train)} if train else set()
    return [{"step": step, "train": train.get(step), "valid": valid.get(step)} for step in sorted(set(valid) | ends)]


def _training(config: ReportConfig, view: View, model: str) -> dict[str, Any]:
    """The seed's training-parameters table, from the train record and the parent's weights."""
    sid = stage_id("train", model)
    record = view.records.get(sid)
    if record is None:
        return {"state": view.states.get(sid, "pending"), "from": sid}
    parent = config.models[model].parent
    assert parent is not None
    lora, train, trained = record.config["lora"], record.config["train"], figures(record)
    method = record.config.get("method", "sft")
    return {
        "state": view.states.get(sid, "pending"),
        "from": sid,
        "base": {
            "model": parent,
            "fused": config.models[parent].parent is not None,
            **source.facts(view, source.weights_stage(config, parent)),
        },
        "rank": lora["rank"],
        "scale": lora["scale"],
        "last_layers": lora["last_layers"],
        "targets": lora["targets"],
        "trainable_parameters": trained.trainable_parameters,
        "total_parameters": trained.total_parameters,
        "trainable_percent": trained.trainable_percent,
        "steps": train["steps"],
        "batch_size": train["batch_size"],
        "learning_rate": train["learning_rate"],
        "max_seq_length": train["max_seq_length"],
        "grad_checkpoint": train["grad_checkpoint"],
        # every method's rows, None where this round's method has none of them (one table for all rounds)
        **{row: None for each in METHODS.values() for row in each.dashboard(None, {})},
        **METHODS[method].dashboard(settings_in(record.config), trained.model_dump()),
        "peak_memory_gb": trained.peak_memory_gb,
        "seconds_per_step": trained.seconds_per_step,
        "duration_s": record.duration_s if view.built(sid) else None,
        # adopted by `anvil import`: trained elsewhere, so no curve or time of its own
        "imported": {"from": trained.imported_from, "on": record.started[:10]} if trained.imported_from else None,
    }


def _memory(work: Work) -> float | None:
    assert work.shape is not None
    method, train = METHODS[work.settings.get("method", "sft")], work.settings["train"]
    sequences, _ = method.per_row(settings_in(work.settings))
    train = {**train, "batch_size": sequences * train["batch_size"]}  # a pair is two sequences, a group more
    lora = work.settings["lora"]
    peak = arithmetic.train_memory(work.shape, lora, train, lora_keys(lora["targets"]))
    return peak + (work.shape.text_bytes if method.REFERENCE else 0)  # a frozen reference: the parent again


def _first_run(work: Work, speed: Any) -> float:
    """A first run's time on a machine: the method's sequences per row and the answers it samples first."""
    method = METHODS[work.settings.get("method", "sft")]
    sequences, generated = method.per_row(settings_in(work.settings))
    reference = method.REFERENCE
    trained = first_run.training(work.settings, work.shape, speed, work.sequence, sequences, generated, reference)
    return trained + _judged(work.settings, sequences)


def _judged(settings: Mapping[str, Any], answers_per_prompt: int) -> float:
    """A judge reward's calls, one at a time: each sampled answer against each judge term's test, every step
    (a panel asks each of its judges)."""
    reward = settings.get("reward_judge")
    if not reward:
        return 0.0
    judges = reward["judge"].get("judges") or [reward["judge"]]
    per_call = sum(first_run.JUDGE_S.get(j["kind"], 3.0) for j in judges)
    train = settings["train"]
    return train["steps"] * train["batch_size"] * answers_per_prompt * len(reward["tests"]) * per_call


def _tokens(work: Work) -> float:
    train = work.settings["train"]
    return train["steps"] * train["batch_size"] * (work.sequence or train["max_seq_length"])


COST = Cost(
    start_s=3.0,
    unit="tokens",
    units=_tokens,
    first_run=lambda work, units, speed: _first_run(work, speed),
    memory=_memory,
    reads_rows=True,
)


STAGE = Stage(
    kind="train",
    code_version=CODE_VERSION,
    nodes=nodes,
    run=run,
    summary=summary,
    cost=COST,
    so_far=curve_so_far,
    adopt=adopt,
    figures=Trained,
    page=page,
    charts=charts,
)
