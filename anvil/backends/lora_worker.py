"""The training child: `python -m anvil.backends.lora_worker JOB.json`, started by backends/lora.py.

It runs the job's method (anvil/methods/: mlx-lm-lora's own trainers) with the job's settings and supplies
what mlx-lm-lora's CLI cannot take: the projections to adapt (its `from_pretrained` drops LoRA `keys`),
checkpoints that count steps across restarts, and a callback that records the loss curve. It writes
the adapter, `loss.json` and `samples.json` into the job's `out` (all a function of the job alone: no
timing, so that the same job always writes the same bytes), its metrics (timings included) into
`checkpoints/result.json`, and an error the user can act on into `checkpoints/error.json`."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from anvil.backends import checkpoints, samples
from anvil.backends.lora import FAILED_EXIT, FAILURE, LOSS_LOG, RESULT, adapter_config
from anvil.errors import AnvilError
from anvil.methods.method import Session
from anvil.methods.registry import METHODS
from anvil.recipe.evaluation import Judge, label
from anvil.recipe.models import Lora, Train, lora_keys
from anvil.recipe.suite import Scoring
from anvil.state.atomic import write_json


@contextmanager
def metal_only_calls_guarded(trainer=None):
    """mlx-lm-lora's trainers call `mx.set_wired_limit(mx.device_info()["max_recommended_working_set_size"])`,
    a key only Metal reports, so it raises KeyError on the CPU backend. Where the key is missing, the
    trainer module alone (sft_trainer unless given) sees a `device_info` that reports it as 0 (wired memory
    is a Metal notion; 0 means no limit). On a Mac nothing changes. Only ever active in this child process."""
    import mlx.core as mx

    if trainer is None:
        from mlx_lm_lora.trainer import sft_trainer

        trainer = sft_trainer

    if "max_recommended_working_set_size" in mx.device_info():
        yield
        return

    class _Mx:
        def __getattr__(self, name):
            return getattr(mx, name)

        @staticmethod
        def device_info():
            return {**mx.device_info(), "max_recommended_working_set_size": 0}

    trainer.mx = _Mx()
    try:
        yield
    finally:
        trainer.mx = mx


class Recorder:
    """The mlx-lm training callback: a loss curve that survives restarts (log.jsonl, one line per report),
    the validation loss after every `val_interval`-th step (and before the first, and after the last),
    and a resumable checkpoint every `checkpoint_interval` steps. Validation runs here, at absolute
    steps, rather than in mlx-lm-lora's loop (which counts from a restart): a resumed run then records
    the very curve an uninterrupted one does."""

    def __init__(
        self,
        log: Path,
        offset: int,
        settings: Train,
        validate: Callable[[], float | None],
        checkpoint: Callable[[int], None],
        lead: bool = True,
    ):
        self.log, self.offset, self.settings, self.validate, self.checkpoint = (
            log,
            offset,
            settings,
            validate,
            checkpoint,
        )
        self.lead = lead  # the one process of a distributed run that writes; every one validates
        # What an earlier try logged up to its checkpoint; from scratch (offset 0) nothing, not even the step-0
        # validation it redoes below.
        kept = [e for e in _logged(log) if e["step"] <= offset] if offset > 0 else []
        if lead:
            log.write_text("".join(json.dumps(e) + "\n" for e in kept))
        self.entries = kept
        if offset == 0:
            self._validated(0)

    def _validated(self, step: int) -> None:
        """The validation loss at `step`, for a method that has one."""
        if (loss := self.validate()) is not None:
            self._add({"kind": "valid", "step": step, "loss": round(loss, 5), "time": time.time()})

    def _add(self, entry: dict) -> None:
        self.entries.append(entry)
        if self.lead:
            with open(self.log, "a") as f:
                f.write(json.dumps(entry) + "\n")

    def on_train_loss_report(self, info: dict) -> None:
        step = self.offset + info["iteration"]
        if not math.isfinite(info["train_loss"]):
            raise AnvilError(
                f"training diverged at step {step}: the loss is {info['train_loss']} (expected a finite "
                "loss; lower train.learning_rate?)"
            )
        self._add(
            {
                "kind": "train",
                "step": step,
                "loss": round(float(info["train_loss"]), 5),
                "tokens_per_second": round(float(info["tokens_per_second"]), 2),
                "seconds": round(1 / max(float(info["iterations_per_second"]), 1e-9), 4),
                "peak_memory_gb": round(float(info["peak_memory"]), 4),
                "time": time.time(),
            }
            | ({"figures": info["figures"]} if "figures" in info else {})  # a method's own (GRPO's reward)
        )
        if step % self.settings.val_interval == 0 or step == self.settings.steps:
            self._validated(step)
        if step % self.settings.checkpoint_interval == 0 and self.lead:
            self.checkpoint(step)

    def on_val_loss_report(self, info: dict) -> None:
        pass  # mlx-lm-lora's own validation is off: see the class docstring


def _logged(log: Path) -> list[dict]:
    """The entries of a loss log; a line torn by a kill is left out."""
    entries = []
    for line in log.read_text().splitlines() if log.exists() else []:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("step"), int):
            entries.append(entry)
    return entries


def train(job: dict) -> dict:
    """Train by the job's method, save mlx-lm's adapter format into `out`, sample; return the run's metrics."""
    import mlx.core as mx
    import mlx.optimizers as optim
    import numpy as np
    from mlx.utils import tree_flatten
    from mlx_lm import load
    from mlx_lm.tuner.utils import build_schedule, linear_to_lora_layers

    lora, settings = Lora.model_validate(job["lora"]), Train.model_validate(job["train"])
    method = METHODS[job.get("method", "sft")]
    out, folder = Path(job["out"]), Path(job["checkpoints"])
    world = mx.distributed.init()  # one process, or one of mlx.launch's: mlx-lm-lora averages gradients
    lead = world.rank() == 0
    mx.random.seed(settings.seed)
    np.random.seed(settings.seed)
    model, tokenizer = load(job["parent"])
    extra = method.SETTINGS.model_validate(job["settings"]) if method.SETTINGS and job.get("settings") else None
    session = Session(
        model,
        tokenizer,
        Path(job["data"]),
        settings,
        extra,
        job["parent"],
        batches=lambda done: checkpoints.seeded_batches(settings.seed, done, world.rank(), world.size()),
        shared_validation=checkpoints.shared_validation(world.rank(), world.size()) if world.size() > 1 else None,
        guarded=metal_only_calls_guarded,
        judge=RewardJudge(job["reward_judge"]) if job.get("reward_judge") else None,
    )
    before = method.measure(session)  # on the parent, before any adapter (a resumed run measures it again)
    layers = len(model.layers)
    if lora.last_layers > layers:
        raise AnvilError(f"lora.last_layers = {lora.last_layers}, but the model only has {layers} layers")
    model.freeze()
    config = {"rank": lora.rank, "scale": lora.scale, "dropout": lora.dropout, "keys": lora_keys(lora.targets)}
    linear_to_lora_layers(model, lora.last_layers, config)
    total = sum(v.size for _, v in tree_flatten(model.parameters()))
    trainable = sum(v.size for _, v in tree_flatten(model.trainable_parameters()))
    if trainable == 0:
        raise AnvilError(f"lora.targets {lora.targets} match no projection of the last {lora.last_layers} layers")
    trainer = method.trainer(session)

    base_lr = settings.learning_rate
    if settings.lr_schedule == "cosine":
        schedule = build_schedule(
            {"name": "cosine_decay", "arguments": [base_lr, settings.steps], "warmup": settings.warmup_steps}
        )
    elif settings.warmup_steps:
        schedule = build_schedule(
            {"name": "linear_schedule", "arguments": [base_lr, base_lr, 1], "warmup": settings.warmup_steps}
        )
    else:
        schedule = None
    optimizer = optim.Adam(learning_rate=schedule or base_lr)  # its restored step counter drives the schedule
    done = checkpoints.restore(folder, model, optimizer)

    recorder = Recorder(
        folder / LOSS_LOG,
        done,
        settings,
        lambda: trainer.validate(model),
        lambda step: checkpoints.save(folder, step, model, optimizer),
        lead,
    )
    if done < settings.steps:
        trainer.train(model, optimizer, done, recorder)
    if not lead:
        return {}  # the lead writes the adapter (every process holds the same one) and the samples
    adapters = dict(tree_flatten(model.trainable_parameters()))
    mx.save_safetensors(str(out / "adapters.safetensors"), adapters)
    (out / "adapter_config.json").write_text(json.dumps(adapter_config(lora, job["base_model"]), indent=2))
    train_log = [e for e in recorder.entries if e["kind"] == "train"]
    valid_log = [e for e in recorder.entries if e["kind"] == "valid"]
    curve = {
        kind: [{"step": e["step"], "loss": e["loss"]} for e in log]
        for kind, log in (("train", train_log), ("valid", valid_log))
    }
    (out / "loss.json").write_text(json.dumps(curve, indent=1))
    if figures := [{"step": e["step"], **e["figures"]} for e in train_log if "figures" in e]:
        (out / "steps.json").write_text(json.dumps(figures, indent=1))
    steady = train_log[1:] or train_log  # the first step includes the one-time compile
    metrics = {
        "steps": settings.steps,
        "processes": world.size(),
        "resumed_from_step": done,
        "train_loss_first": train_log[0]["loss"] if train_log else None,
        "train_loss_last": train_log[-1]["loss"] if train_log else None,
        "valid_loss_first": valid_log[0]["loss"] if valid_log else None,
        "valid_loss_last": valid_log[-1]["loss"] if valid_log else None,
        "tokens_per_second": round(sum(e["tokens_per_second"] for e in steady) / max(len(steady), 1), 1),
        "seconds_per_step": round(sum(e["seconds"] for e in steady) / max(len(steady), 1), 4),
        "peak_memory_gb": max((e["peak_memory_gb"] for e in train_log), default=0.0),
        "trainable_parameters": trainable,
        "total_parameters": total,
        "trainable_percent": round(100 * trainable / total, 4),
    }
    metrics |= method.results(before, None if before is None else method.measure(session), out)
    results, sample_metrics = samples.before_and_after(model, tokenizer, job["prompts"])
    (out / "samples.json").write_text(json.dumps(results, indent=1, ensure_ascii=False))
    return metrics | sample_metrics


class RewardJudge:
    """A judge reward's judge, asked from this child: each (SUITE/TEST, transcript) scored by the recipe's judge
    against that test, through the evaluation's verdict cache, `concurrency` calls at once. A call that fails
    after its retries fails the round (the next apply resumes from the last checkpoint)."""

    def __init__(self, spec: dict):
        from anvil.evaluation.judges import Judging

        judge = Judge.model_validate(spec["judge"])
        self.tests = {ref: Scoring.model_validate(s) for ref, s in spec["tests"].items()}
        self.concurrency = spec["concurrency"]
        self.judging = Judging(judge, Path(spec["cache"]), judge.retries, cwd=spec["cwd"])
        self.members = [label(j) for j in judge.judges or []]  # a panel's judges, each scored apart

    def __call__(self, asks: list[tuple[str, dict]]) -> list:
        from anvil.evaluation.parallel import in_order

        asked = in_order(lambda ask: self.judging(self.tests[ask[0]], ask[1]), asks, self.concurrency)
        verdicts = [verdict for _, verdict in asked]
        if failed := next((f"{ref}: {v.error}" for (ref, _), v in zip(asks, verdicts, strict=True) if v.error), None):
            raise AnvilError(f"the reward's judge failed on {failed}")
        return verdicts


def main(job_file: str) -> int:
    import socket

    import mlx.core as mx

    job = json.loads(Path(job_file).read_text())
    checkpoints = Path(job["checkpoints"])
    world = mx.distributed.init()
    where = f"rank {world.rank()} of {world.size()} on {socket.gethostname()}: " if world.size() > 1 else ""
    try:
        metrics = train(job)
    except AnvilError as e:
        write_json(checkpoints / FAILURE, {"message": where + str(e)})
        return FAILED_EXIT
    except Exception as e:
        if not where:
            raise  # one process: its traceback in the log is the report
        write_json(checkpoints / FAILURE, {"message": f"{where}{type(e).__name__}: {e}"})
        return FAILED_EXIT
    if world.rank() == 0:
        write_json(checkpoints / RESULT, metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
