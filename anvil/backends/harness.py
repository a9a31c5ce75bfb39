"""lm-evaluation-harness, the one module that imports it (an extra: `pip install 'anvil[lm-eval]'`).

A task is read and checked the way lm-eval reads it (its YAML with `include` and `!function`), then run
by lm-eval itself: lm-eval builds every prompt and grades every answer; Anvil only generates the answers,
through the function the knowledge stage gives it (the model's own server). Anvil does not use lm-eval's
`local-chat-completions` for that: it sends OpenAI's `stop` and trusts the server to end there, and mlx-vlm's
server ignores `stop`, so lm-eval would grade text past the stop sequence. Anvil's chat model streams each
answer and hangs up at the task's `until`, as the hand-written benchmarks do.

Offline only: a task's rows are local files (a `dataset_path` that is a file format, its `data_files` beside
the YAML, or the recipe's `data`); a Hub dataset is refused by name. Only `generate_until` tasks: a chat
server returns no log-probabilities (lm-eval#1174)."""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

from anvil.errors import AnvilError

EXTRA = "pip install 'anvil[lm-eval]'"
LOCAL_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet", ".txt": "text"}
BUILDERS = set(LOCAL_FORMATS.values())
DEFAULT_MAX_TOKENS = 256  # lm-eval's own budget for a task that sets no max_gen_toks

Prompt = tuple[list[dict[str, str]], int, tuple[str, ...]]  # chat turns, max tokens, stop sequences
Answer = Callable[[list[Prompt]], list[str]]


class TaskError(AnvilError):
    """A task lm-eval cannot run here: the message says why, without the file (the caller names it)."""


def version() -> str | None:
    """lm-eval's installed version, None without it (read from its metadata: nothing is imported)."""
    try:
        return metadata.version("lm_eval")
    except metadata.PackageNotFoundError:
        return None


def is_file_task(task: str) -> bool:
    """A recipe's `task` names a YAML file (relative to the recipe's folder), not a task lm-eval ships."""
    return task.endswith((".yaml", ".yml"))


@dataclass(frozen=True)
class Task:
    name: str  # lm-eval's name of the task
    config: dict[str, Any]  # as lm-eval reads it, with the recipe's data and Anvil's settings applied
    metric: str  # the per-item metric scored (0 or 1 per item)
    filters: list[str]  # lm-eval's filter names; the first is the headline
    shots: int  # few-shot exemplars per prompt
    max_tokens: int
    stop: tuple[str, ...]


def load(
    task: str, root: Path, *, data: Path | None, fewshot: Path | None, metric: str | None, max_tokens: int | None
) -> Task:
    """A task by file (`root`/task) or by lm-eval's name, checked for everything Anvil needs to run it offline
    and score it item by item. TaskError says what is wrong."""
    config = _read(task, root)
    if data is not None:
        _local(config, "test", data)
    if fewshot is not None:
        _local(config, "validation" if config.get("fewshot_split") else "train", fewshot)
    if not data and not _is_local(config):
        raise TaskError(
            f"reads {config.get('dataset_path')!r} from the Hugging Face Hub, which needs the network (expected a "
            'local file: `data = "path:FILE"` in the recipe, or dataset_path json with dataset_kwargs.data_files)'
        )
    kind = config.get("output_type", "generate_until")
    if kind != "generate_until":
        raise TaskError(
            f"is a {kind} task: a chat server returns no log-probabilities (lm-eval#1174; expected generate_until)"
        )
    shots = int(config.get("num_fewshot") or 0)
    samples = (config.get("fewshot_config") or {}).get("samples")
    split = config.get("fewshot_split")
    if not samples and fewshot is None and split and not _split_is_local(config, split):
        if shots:
            raise TaskError(
                f'takes its {shots} exemplars from the Hub\'s {split} split (expected `fewshot = "path:FILE"` in '
                "the recipe, or a task file that includes this one with num_fewshot: 0)"
            )
        config.pop("fewshot_split")  # 0-shot: lm-eval would still open the split for its sampler
    metrics = [m.get("metric") for m in config.get("metric_list") or [{"metric": "exact_match"}]]
    chosen = metric or metrics[0]
    if chosen not in metrics:
        raise TaskError(f"has no metric {chosen!r} (expected one of: {', '.join(map(str, metrics))})")
    filters = [f.get("name") for f in config.get("filter_list") or []] or ["none"]
    generation = dict(config.get("generation_kwargs") or {})
    if max_tokens is not None:
        generation["max_gen_toks"] = max_tokens
    until = generation.get("until") or []
    config["generation_kwargs"] = generation
    return Task(
        name=str(config.get("task")),
        config=config,
        metric=str(chosen),
        filters=[str(f) for f in filters],
        shots=shots,
        max_tokens=int(generation.get("max_gen_toks") or DEFAULT_MAX_TOKENS),
        stop=tuple([until] if isinstance(until, str) else until),
    )


def _read(task: str, root: Path) -> dict[str, Any]:
    """The task's configuration as lm-eval reads it: includes merged, `!function`s resolved."""
    _offline()
    from lm_eval.tasks._yaml_loader import load_yaml

    if is_file_task(task):
        path = root / task
        if not path.is_file():
            raise TaskError("does not exist (expected an lm-eval task YAML file)")
    else:
        from lm_eval.tasks import TaskManager

        entry = TaskManager().task_index.get(task)
        if entry is None:
            raise TaskError(f"is no lm-eval task (lm-eval {version()}; expected a task name or a .yaml file)")
        if entry.yaml_path is None or entry.kind.name.lower() != "task":
            raise TaskError(f"is an lm-eval {entry.kind.name.lower()}, not one task (expected one of its tasks)")
        path = entry.yaml_path
    try:
        config = load_yaml(path, resolve_func=True)
    except Exception as e:  # YAML, a missing include, a !function that does not import: lm-eval's own errors
        raise TaskError(f"is not a task lm-eval can read ({type(e).__name__}: {_one_line(e)})") from None
    if "task" not in config:
        raise TaskError("names no task (expected a `task:` key, as lm-eval's task files have)")
    if "group" in config or "task_list" in config:
        raise TaskError("is an lm-eval group, not one task (expected one of its tasks)")
    for key in ("data_files", "data_dir"):  # relative to the task's folder, wherever Anvil runs
        files = (config.get("dataset_kwargs") or {}).get(key)
        if files is not None:
            config["dataset_kwargs"][key] = _beside(files, path.parent)
    return config


def _beside(files: Any, folder: Path) -> Any:
    if isinstance(files, str):
        return str(folder / files) if not os.path.isabs(files) else files
    if isinstance(files, list):
        return [_beside(f, folder) for f in files]
    if isinstance(files, dict):
        return {k: _beside(v, folder) for k, v in files.items()}
    return files


def _local(config: dict[str, Any], split: str, file: Path) -> None:
    """Put a local file in as the task's `split` (the test split, or its exemplars')."""
    builder = LOCAL_FORMATS.get(file.suffix, "json")
    kwargs = dict(config.get("dataset_kwargs") or {})
    files = kwargs.get("data_files") if config.get("dataset_path") == builder else None
    kwargs["data_files"] = {**(files if isinstance(files, dict) else {}), split: str(file)}
    config |= {"dataset_path": builder, "dataset_name": None, "dataset_kwargs": kwargs}
    config[
        "test_split" if split == "test" else ("fewshot_split" if config.get("fewshot_split") else "training_split")
    ] = split
    config.pop("validation_split", None) if split == "test" else None


def _is_local(config: dict[str, Any]) -> bool:
    path = str(config.get("dataset_path") or "")
    files = (config.get("dataset_kwargs") or {}).get("data_files")
    if path in BUILDERS:
        return files is not None and all(Path(f).is_file() for f in _flat(files))
    return Path(path).is_dir() or Path(path).is_file()


def _split_is_local(config: dict[str, Any], split: str | None) -> bool:
    files = (config.get("dataset_kwargs") or {}).get("data_files")
    return bool(split) and _is_local(config) and (not isinstance(files, dict) or split in files)


def _flat(files: Any) -> Iterator[str]:
    if isinstance(files, str):
        yield files
    elif isinstance(files, list):
        for f in files:
            yield from _flat(f)
    elif isinstance(files, dict):
        for f in files.values():
            yield from _flat(f)


def build(task: Task) -> Any:
    """lm-eval's task object, its rows loaded into memory (datasets' cache in a temporary folder, so that
    reading a task writes nothing anywhere and the object outlives the folder). TaskError when lm-eval refuses
    the task."""
    _offline()
    from lm_eval.api.task import ConfigurableTask

    config = copy.deepcopy(task.config)  # lm-eval may change it
    config["dataset_kwargs"] = {**(config.get("dataset_kwargs") or {}), "keep_in_memory": True}
    with tempfile.TemporaryDirectory() as scratch:
        config["dataset_kwargs"]["cache_dir"] = scratch
        try:
            built = ConfigurableTask(config=config)
            built.eval_docs  # noqa: B018 (loads the rows now, while the cache folder exists)
        except Exception as e:
            raise TaskError(f"is refused by lm-eval ({type(e).__name__}: {_one_line(e)})") from None
    return built


def fingerprinted(task: str) -> str | None:
    """What of a task file its fingerprint reads, relative to the recipe's folder: the file's whole folder,
    with what it includes, imports and reads (the file alone when it sits in the recipe's own folder). None
    for a task lm-eval ships: lm-eval's version pins it."""
    if not is_file_task(task):
        return None
    folder = PurePosixPath(task).parent
    return task if str(folder) in ("", ".") else str(folder)


def loaded(
    task: str, root: Path, *, data: Path | None, fewshot: Path | None, metric: str | None, max_tokens: int | None
) -> tuple[Task, Any]:
    """`load` and `build`, once per process for the same task and files (each file it reads, with its size and
    modification time): the recipe's check and the knowledge stages of every model in one apply share one
    read. lm-eval's `evaluate` builds its requests anew from the task object each time."""
    own = fingerprinted(task)
    read = ([root / own] if own else []) + [f for f in (data, fewshot) if f is not None]
    return _loaded(task, root, data, fewshot, metric, max_tokens, _stamp(read))


@functools.lru_cache(maxsize=8)
def _loaded(
    task: str,
    root: Path,
    data: Path | None,
    fewshot: Path | None,
    metric: str | None,
    max_tokens: int | None,
    stamp: tuple[tuple[str, int, int], ...],
) -> tuple[Task, Any]:
    task_read = load(task, root, data=data, fewshot=fewshot, metric=metric, max_tokens=max_tokens)
    return task_read, build(task_read)


def _stamp(paths: list[Path]) -> tuple[tuple[str, int, int], ...]:
    """Files (or folders, file by file) as `loaded` keys them: path, size and modification time."""
    found = []
    for path in paths:
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.is_file():
                stat = file.stat()
                found.append((str(file), stat.st_size, stat.st_mtime_ns))
    return tuple(found)


def size(built: Any) -> int:
    return len(built.eval_docs)


def run(task: Task, built: Any, indices: list[int], answer: Answer, chat: str) -> list[dict[str, Any]]:
    """The task on the documents `indices` (as lm-eval numbers them), answered by `answer`, graded by lm-eval:
    one entry per document, in `indices` order: {key, messages, response, extracted, correct}, `correct` by
    filter (the task's metric, 0 or 1 per item). `chat`: "one_turn" sends lm-eval's prompt as one user turn;
    "system_header" applies lm-eval's chat form (its description as a system turn, exemplars in the user's)."""
    _offline()
    from lm_eval import evaluator

    # lm-eval's lower-level evaluate(): simple_evaluate would index all its 14,000 tasks (4 s) and ask git and
    # torch for the environment each time
    built.set_config(key="num_fewshot", value=task.shots)
    built.set_fewshot_seed(seed=1234)  # simple_evaluate's default fewshot_random_seed
    results = evaluator.evaluate(
        lm=_chat_model(answer),
        task_dict={"tasks": {task.name: built}, "groups": {}},
        samples={task.name: indices},
        log_samples=True,
        apply_chat_template=chat == "system_header",
        fewshot_as_multiturn=False,
        bootstrap_iters=0,
        verbosity="ERROR",
    )
    by_doc: dict[int, dict[str, Any]] = {}
    for sample in (results or {}).get("samples", {}).get(task.name, []):
        value = sample.get(task.metric)
        if value not in (0, 1, True, False, 0.0, 1.0):
            raise TaskError(f"scores an item {value!r} by {task.metric} (expected a metric of 0 or 1 per item)")
        entry = by_doc.setdefault(
            sample["doc_id"],
            {
                "key": hashlib.sha256(json.dumps(sample["doc"], sort_keys=True, default=str).encode()).hexdigest()[:16],
                "messages": messages(sample["arguments"][0][0]),
                "response": sample["resps"][0][0],
                "extracted": {},
                "correct": {},
            },
        )
        entry["extracted"][sample["filter"]] = _text(sample["filtered_resps"])
        entry["correct"][sample["filter"]] = bool(value)
    return [by_doc[i] for i in indices]


def _text(filtered: Any) -> str | None:
    while isinstance(filtered, list) and filtered:
        filtered = filtered[0]
    return None if filtered in ([], "[invalid]", None) else str(filtered)


def _offline() -> None:
    """Nothing lm-eval or datasets does may reach the network (a task that needs it fails by name instead), or
    draw progress bars over Anvil's."""
    for variable in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE", "HF_DATASETS_DISABLE_PROGRESS_BARS", "TQDM_DISABLE"):
        os.environ.setdefault(variable, "1")
    import logging

    for name in ("lm_eval", "lm-eval", "datasets"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())[:300]


def _chat_model(answer: Answer) -> Any:
    """lm-eval's model (its LM class, imported here): each request's prompt as chat turns, answered by `answer`."""
    from lm_eval.api.model import LM

    class ChatModel(LM):
        def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
            prompts: list[Prompt] = []
            for request in requests:
                context, kwargs = request.args[0], dict(request.args[1])
                until = kwargs.get("until") or []
                stop = tuple([until] if isinstance(until, str) else until)
                prompts.append((messages(context), int(kwargs.get("max_gen_toks") or DEFAULT_MAX_TOKENS), stop))
            return answer(prompts)

        def loglikelihood(self, requests: list[Any]) -> list[tuple[float, bool]]:
            raise TaskError("needs log-probabilities, which a chat server does not return (lm-eval#1174)")

        def loglikelihood_rolling(self, requests: list[Any]) -> list[float]:
            raise TaskError("needs log-probabilities, which a chat server does not return (lm-eval#1174)")

        def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
            return json.dumps(chat_history, ensure_ascii=False)

        @property
        def tokenizer_name(self) -> str:
            return "anvil-chat"

        def chat_template(self, chat_template: bool | str = False) -> str | None:
            return ""

    return ChatModel()


def messages(context: str) -> list[dict[str, str]]:
    """A prompt as chat turns: lm-eval's chat form arrives as JSON turns, a plain prompt as one user turn."""
    if context.startswith("[{"):
        try:
            turns = json.loads(context)
        except json.JSONDecodeError:
            turns = None
        if isinstance(turns, list) and all(isinstance(t, dict) and "role" in t for t in turns):
            return turns
    return [{"role": "user", "content": context}]
