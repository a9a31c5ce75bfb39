"""LoRA rounds (by a method of anvil/methods/: SFT, DPO, ORPO) through mlx-lm-lora's trainers, run as a child process
(backends/lora_worker.py) that writes files: the adapter in mlx-lm's format, the loss curve, samples and
its metrics. Anvil's process never imports the trainer, so nothing of it (module globals, stdout) leaks
into Anvil, and the same child is what `mlx.launch` can start several of.

This side writes the job, starts the worker through backends/process.py, follows its loss log for
progress and turns its exit into a result or a clean error."""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from anvil.backends import distributed, process
from anvil.errors import AnvilError
from anvil.recipe.base import Strict
from anvil.recipe.infrastructure import Distributed
from anvil.recipe.models import Lora, Train, lora_keys

JOB, RESULT, FAILURE, LOSS_LOG, TRAINER_LOG = "job.json", "result.json", "error.json", "log.jsonl", "trainer.log"
FAILED_EXIT = 3  # the worker's exit status when it wrote FAILURE: an error it could explain


def adapter_config(lora: Lora, base: str) -> dict:
    """mlx-lm's adapter_config.json, so `mlx_lm.load(base, adapter_path=...)` loads the adapter. `base`
    names the parent weights without a path of this machine (Anvil writes `anvil:<fingerprint>`)."""
    return {
        "fine_tune_type": "lora",
        "num_layers": lora.last_layers,
        "lora_parameters": {
            "rank": lora.rank,
            "scale": lora.scale,
            "dropout": lora.dropout,
            "keys": lora_keys(lora.targets),
        },
        "base_model": base,
    }


def curve_so_far(checkpoints: Path) -> dict[str, list[dict]]:
    """The loss curve a training in flight has logged, in loss.json's shape (train and valid points)."""
    curve: dict[str, list[dict]] = {"train": [], "valid": []}
    try:
        lines = (checkpoints / LOSS_LOG).read_text().splitlines()
    except OSError:
        return curve
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line being written
        if entry.get("kind") in curve:
            curve[entry["kind"]].append({"step": entry["step"], "loss": entry["loss"]})
    return curve


def train(
    parent: Path,
    data: Path,
    lora: Lora,
    settings: Train,
    out: Path,
    checkpoints: Path,
    *,
    prompts: Sequence[dict] = (),
    base_model: str = "",
    launch: Distributed | None = None,
    ledger: Path | None = None,
    log: Path | None = None,
    method: str = "sft",
    settings_of_method: Strict | None = None,
    reward_judge: dict[str, Any] | None = None,
    progress: Callable[[float, str], None] = lambda f, m: None,
) -> dict:
    """Train an adapter on `parent` with `data/{train,valid}.jsonl` into `out`, resuming from the
    checkpoints in `checkpoints`; sample `prompts` before and after. Returns the run's metrics; the
    trainer's own output is kept at `log`."""
    checkpoints.mkdir(parents=True, exist_ok=True)
    for name in (RESULT, FAILURE):
        (checkpoints / name).unlink(missing_ok=True)
    job = {
        "parent": str(parent),
        "data": str(data),
        "out": str(out),
        "checkpoints": str(checkpoints),
        "lora": lora.model_dump(mode="json"),
        "train": settings.model_dump(mode="json"),
        "prompts": list(prompts),
        "base_model": base_model,
        "method": method,
        "settings": settings_of_method.model_dump(mode="json") if settings_of_method else None,
        "reward_judge": reward_judge,
    }
    (checkpoints / JOB).write_text(json.dumps(job))
    progress(0.0, "loading the parent model")
    argv = [sys.executable, "-m", "anvil.backends.lora_worker", str(checkpoints / JOB)]
    if launch is not None and launch.world_size > 1:
        argv = distributed.launch_argv(launch, argv, checkpoints)
    # Run where its checkpoints go: the trainer's log then names them without a path of this machine.
    child = process.spawn(argv, checkpoints / TRAINER_LOG, tethered=True, ledger=ledger, cwd=checkpoints)
    try:
        while child.poll() is None:
            if logged := curve_so_far(checkpoints)["train"]:
                entry, step = logged[-1], logged[-1]["step"]
                progress(step / settings.steps, f"step {step}/{settings.steps} loss {entry['loss']:.3f}")
            time.sleep(0.25)
    finally:
        child.stop()  # a no-op once it has exited; on Ctrl-C or an error it ends the training
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(checkpoints / TRAINER_LOG, log)
    if child.poll() != 0 or not (checkpoints / RESULT).exists():  # mlx.launch exits 0 when a rank failed
        failure = checkpoints / FAILURE
        reported = json.loads(failure.read_text())["message"] if failure.exists() else None
        text = re.sub(r"\x1b\[[0-9;]*m", "", (checkpoints / TRAINER_LOG).read_text(errors="replace"))  # no colours
        tail = "\n".join(text.splitlines()[-15:])
        # A rank that died takes the others' connections with it: name the dead first, then what a rank said.
        if (
            launch is not None
            and launch.world_size > 1
            and (ranks := distributed.failed_ranks(text, launch, FAILED_EXIT))
        ):
            said = f" ({reported})" if reported else ""
            raise AnvilError(
                f"distributed training stopped: {ranks}{said}; every other rank was stopped, and the "
                f"next apply resumes from the last checkpoint. The end of its log:\n{tail}"
            )
        if reported:
            raise AnvilError(reported)
        raise AnvilError(f"training exited with code {child.poll()}; the end of its log:\n{tail}")
    return json.loads((checkpoints / RESULT).read_text())
