"""A campaign of bad inputs, by class: every one must be refused with one clean message (no traceback,
exit 1) and write nothing. `cases()` builds them; tests/test_bad_inputs.py runs them all.

Each case is a function that gets a fresh project folder holding a valid tiny recipe (`anvil.toml`),
its data and its suite, breaks something, and returns the CLI arguments to run and the text the error
must contain."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import tomli

from tests.conftest import REPO

RECIPE = """\
[project]
name = "bad"

[models.base]
source = "synthetic:tiny"
synthetic = { hidden_size = 32, intermediate_size = 64, num_layers = 2, num_heads = 2, head_dim = 16, vocab_size = 320 }

[models.v1]
parent = "base"
dataset = "d"
lora = { rank = 2, scale = 10.0, last_layers = 1, dropout = 0.0, targets = ["attention"] }
train = { steps = 4, batch_size = 2, learning_rate = 1e-3, max_seq_length = 64, seed = 0, warmup_steps = 0, val_interval = 2, val_batches = 1, checkpoint_interval = 2 }

[datasets.d]
valid_fraction = 0.25
seed = 7
sources = [{ path = "data/voice.jsonl", category = "voice", count = 8 }]

[eval]
runs = 1
compare = ["base", "v1"]
temperature = 0.5
max_tokens = 8
high_variance = 2.0
judge = { kind = "rules", timeout_s = 10.0, retries = 2 }
suites = ["suite"]
knowledge = [{ benchmark = "gsm8k_cot", n = 5 }]

[[gates]]
model = "v1"
metric = "suite.composite"
min = 1.0

[serve]
model = "v1"
host = "127.0.0.1"
port = 8092
max_tokens = 16
kv_cache = { quantization = "turboquant", bits = 4, group_size = 64, start = 0 }

[machine]
name = "a test box"
memory_gb = 64

[store]
remote = "shared-store"
"""
TEST = 'category = "voice"\nturns = ["Hi"]\nrubric = "Greets."\n[[checks]]\nkind = "contains"\nvalue = "hi"\n'

Case = tuple[str, Callable[[Path], tuple[list[str], str]]]


def setup(folder: Path) -> None:
    (folder / "data").mkdir()
    shutil.copy(REPO / "data" / "voice.jsonl", folder / "data" / "voice.jsonl")
    (folder / "suite").mkdir()
    (folder / "suite" / "greet.toml").write_text(TEST)
    (folder / "anvil.toml").write_text(RECIPE)


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"


def to_toml(data: dict) -> str:
    """A recipe as TOML: top-level tables, everything below them inline."""
    lines = []
    for key, table in data.items():
        if key == "gates":
            for gate in table:
                lines += ["[[gates]]", *(f"{k} = {toml_value(v)}" for k, v in gate.items()), ""]
        elif key in ("models", "datasets"):
            for name, sub in table.items():
                lines += [f"[{key}.{name}]", *(f"{k} = {toml_value(v)}" for k, v in sub.items()), ""]
        else:
            lines += [f"[{key}]", *(f"{k} = {toml_value(v)}" for k, v in table.items()), ""]
    return "\n".join(lines)


def field_case(path: tuple, value, expect: str = "anvil.toml:") -> Case:
    """The recipe with the value at `path` (keys and list indexes) replaced (or added)."""

    def make(folder: Path):
        data = tomli.loads(RECIPE)
        node = data
        for key in path[:-1]:
            node = node.setdefault(key, {}) if isinstance(node, dict) else node[key]
        node[path[-1]] = value
        if path[:2] == ("models", "q") and len(path) > 2:  # a quantized node of v1, broken inside
            data["models"]["q"].setdefault("parent", "v1")
        if path[:2] == ("models", "q2"):  # a node on top of a quantized one
            data["models"]["q"] = {"parent": "v1", "quantize": {}}
        (folder / "anvil.toml").write_text(to_toml(data))
        return ["validate"], expect

    return f"{'.'.join(map(str, path))} = {toml_value(value)[:40]}", make


def file_case(name: str, write: Callable[[Path], object], expect: str, args: tuple[str, ...] = ("validate",)) -> Case:
    def make(folder: Path):
        write(folder)
        return list(args), expect

    return name, make


def state_file(folder: Path) -> Path:
    path = folder / ".anvil" / "state" / "anvil.toml" / "state.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def record_file(folder: Path) -> Path:
    """The run-cache record of a stage the plan looks up."""
    from anvil.project import open_project

    fingerprint = next(a.fingerprint for a in open_project(folder / "anvil.toml").plan().actions)
    path = folder / ".anvil" / "records" / f"{fingerprint}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    (folder / ".anvil" / "artifacts" / fingerprint).mkdir(parents=True)
    return path


def runtime() -> list[Case]:
    """Damaged files of the project and the store, arguments and the environment, for the commands that read them."""
    record = {
        "id": "x",
        "kind": "dataset",
        "fingerprint": "f",
        "code_version": 1,
        "config": {},
        "inputs": {},
        "files": {},
        "outputs": "",
        "started": "now",
        "duration_s": 1.0,
    }
    out = []
    for text, expect in [
        ("[]", "not an Anvil state file"),
        ('{"format": 1}', "state format 1 is not 2"),
        ('{"format": 2}', "no `stages` table"),
        ('{"format": 2, "stages": []}', "no `stages` table"),
        ('{"format": 2, "stages": {"x": 5}}', "damaged state"),
        ("{not json", "unreadable state"),
        (json.dumps({"format": 2, "stages": {"x": {**record, "duration_s": "long"}}}), "stages.x.duration_s"),
        (json.dumps({"format": 2, "stages": {"x": {k: v for k, v in record.items() if k != "kind"}}}), "stages.x.kind"),
    ]:
        for command in ("plan", "status", "apply", "down", "gc"):
            out.append(
                file_case(
                    f"state {text[:30]} ({command})", lambda f, t=text: state_file(f).write_text(t), expect, (command,)
                )
            )
    out += [
        file_case(
            "run-cache record damaged", lambda f: record_file(f).write_text("{}"), "damaged run-cache record", ("plan",)
        ),
        file_case(
            "run-cache record not json",
            lambda f: record_file(f).write_text("[1,"),
            "damaged run-cache record",
            ("plan",),
        ),
        *(
            file_case(
                f"lock is a folder ({command})",
                lambda f: state_file(f).with_name("lock").mkdir(),
                "cannot open it as a lock file",
                (command,),
            )
            for command in ("down", "gc")  # apply: in test_bad_inputs (its live page is written first)
        ),
        file_case(
            "eval show with its artifact gone",
            lambda f: state_file(f).write_text(
                json.dumps(
                    {
                        "format": 2,
                        "stages": {"v1.eval": {**record, "id": "v1.eval", "kind": "eval", "fingerprint": "0" * 64}},
                    }
                )
            ),
            "results.json: missing",
            ("eval", "show", "v1"),
        ),
        file_case("serve --port 99999", lambda f: None, "not a TCP port", ("serve", "v1", "--port", "99999")),
        file_case("serve --port -5", lambda f: None, "not a TCP port", ("serve", "v1", "--port", "-5")),
        file_case("serve --port abc", lambda f: None, "not a TCP port", ("serve", "v1", "--port", "abc")),
        file_case("serve an unknown model", lambda f: None, "no such model", ("serve", "v7")),
        file_case("serve an unbuilt model", lambda f: None, "is not built yet", ("serve", "v1")),
        file_case(
            "plan --target unknown", lambda f: None, "--target v7: no such model or stage", ("plan", "--target", "v7")
        ),
        file_case(
            "plan --replace unknown",
            lambda f: None,
            "--replace v7.train: no such stage",
            ("plan", "--replace", "v7.train"),
        ),
        file_case(
            "eval show an unevaluated model", lambda f: None, "has no evaluation results", ("eval", "show", "v1")
        ),
        file_case(
            "graph of a bad recipe", lambda f: (f / "anvil.toml").write_text("[project]\n"), "project.name", ("graph",)
        ),
        file_case(
            "schema into /dev/null", lambda f: None, "cannot write the schema", ("schema", "--dir", "/dev/null/x")
        ),
        file_case("a command that is not", lambda f: None, "invalid choice", ("frobnicate",)),
        file_case(
            "plan --exclude unknown",
            lambda f: None,
            "--exclude v7: no such model or stage",
            ("plan", "--exclude", "v7"),
        ),
        file_case("plan -out into /dev/null", lambda f: None, "cannot write the plan", ("plan", "-out", "/dev/null/p")),
        file_case(
            "apply a saved plan that is not there",
            lambda f: None,
            "nothere.json: no such recipe",
            ("apply", "nothere.json"),
        ),
        file_case(
            "apply a saved plan that is not JSON",
            lambda f: (f / "p.json").write_text("{"),
            "not a saved plan",
            ("apply", "p.json"),
        ),
        file_case(
            "apply a saved plan that is binary",
            lambda f: (f / "p.json").write_bytes(b"\xff\xfe"),
            "p.json: cannot read the recipe",
            ("apply", "p.json"),
        ),
        file_case(
            "apply a saved plan with its actions cut",
            lambda f: (f / "p.json").write_text(
                json.dumps(
                    {
                        "format": "anvil-plan",
                        "version": 1,
                        "recipe": "anvil.toml",
                        "request": {},
                        "files": {},
                        "state": {},
                        "plan": {"actions": [{"stage": "x"}]},
                    }
                )
            ),
            "plan.actions",
            ("apply", "p.json"),
        ),
        file_case(
            "apply a saved plan of a recipe gone",
            lambda f: (f / "p.json").write_text(
                json.dumps(
                    {
                        "format": "anvil-plan",
                        "version": 1,
                        "recipe": "gone.toml",
                        "request": {},
                        "files": {},
                        "state": {},
                        "plan": {"actions": []},
                    }
                )
            ),
            "gone.toml",
            ("apply", "p.json"),
        ),
    ]
    return out


NUMBERS = [
    ("models", "base", "synthetic", "hidden_size"),
    ("models", "base", "synthetic", "num_layers"),
    ("models", "base", "synthetic", "vocab_size"),
    ("models", "base", "synthetic", "seed"),
    ("models", "v1", "lora", "rank"),
    ("models", "v1", "lora", "scale"),
    ("models", "v1", "lora", "last_layers"),
    ("models", "v1", "lora", "dropout"),
    ("models", "v1", "train", "steps"),
    ("models", "v1", "train", "batch_size"),
    ("models", "v1", "train", "learning_rate"),
    ("models", "v1", "train", "max_seq_length"),
    ("models", "v1", "train", "seed"),
    ("models", "v1", "train", "warmup_steps"),
    ("models", "v1", "train", "val_interval"),
    ("models", "v1", "train", "checkpoint_interval"),
    ("models", "v1", "preference", "beta"),
    ("models", "v1", "preference", "delta"),
    ("datasets", "d", "valid_fraction"),
    ("datasets", "d", "seed"),
    ("datasets", "d", "sources", 0, "count"),
    ("eval", "runs"),
    ("eval", "temperature"),
    ("eval", "max_tokens"),
    ("eval", "high_variance"),
    ("eval", "judge", "timeout_s"),
    ("eval", "judge", "retries"),
    ("eval", "knowledge", 0, "n"),
    ("gates", 0, "min"),
    ("serve", "port"),
    ("serve", "max_tokens"),
    ("serve", "kv_cache", "bits"),
    ("serve", "kv_cache", "group_size"),
    ("serve", "kv_cache", "start"),
    ("machine", "memory_gb"),
]
BAD_NUMBERS = [-1, 10**30, math.inf, math.nan, "20", True]
STRINGS = [
    ("project", "name"),
    ("models", "base", "source"),
    ("models", "v1", "parent"),
    ("models", "v1", "dataset"),
    ("datasets", "d", "sources", 0, "path"),
    ("datasets", "d", "sources", 0, "category"),
    ("eval", "suites", 0),
    ("eval", "compare", 0),
    ("gates", 0, "model"),
    ("gates", 0, "metric"),
    ("serve", "model"),
    ("serve", "host"),
]
BAD_STRINGS = ["", 5, False, ["x"]]


def cases() -> list[Case]:
    out: list[Case] = []
    for path in NUMBERS:
        out += [field_case(path, value) for value in BAD_NUMBERS if not (value == -1 and path == ("gates", 0, "min"))]
    for path in STRINGS:
        out += [field_case(path, value) for value in BAD_STRINGS]
    out += [
        # quantized nodes: what MLX cannot do, and what a quantized node cannot be
        *(
            field_case(("models", "q", "quantize"), spec, expect)
            for spec, expect in (
                ({"bits": 7}, "affine quantization takes bits 2 or 3 or 4 or 5 or 6 or 8, not 7"),
                ({"group_size": 16}, "affine quantization takes group_size 32 or 64 or 128"),
                ({"mode": "mxfp4", "group_size": 64}, "mxfp4 quantization takes group_size 32, not 64"),
                ({"mode": "nvfp8"}, "models.q.quantize.mode"),
                ({"mixed": "mixed_3_6", "mode": "mxfp4", "group_size": 32}, "quantizes in affine mode"),
                ({"mixed": "mixed_9_9"}, "models.q.quantize.mixed"),
                ({"margin": 0}, "models.q.quantize.margin"),
                ({"bits": "4"}, "models.q.quantize.bits"),
            )
        ),
        # sweeps: what a matrix may vary, what select may choose on
        *[
            file_case(f"matrix {matrix[:30]}", lambda f, m=matrix: _swept(f, m), expect)
            for matrix, expect in [
                ('{ "train.learnig_rate" = [1e-3, 2e-3] }', "train has no field 'learnig_rate'"),
                ('{ "eval.runs" = [1, 2] }', "'eval.runs' is not a setting a matrix can vary"),
                ('{ "train.learning_rate" = [] }', "lists no values"),
                ('{ "train.learning_rate" = [1e-3, 1e-3] }', "0.001 is listed twice"),
                ('{ "lora.rank" = [10, 10.0] }', "10 and 10.0 are the same number"),
                ('{ "train.learning_rate" = [1e-3] }', "it makes one variant (a sweep needs two or more"),
                ('{ "lora.targets" = [["q_proj"], ["v_proj"]] }', "has the wrong type (expected number or integer"),
                ('{ "train.learning_rate" = [1e-3, -1.0] }', "-1.0 is not a valid learning_rate"),
                ('{ "lora.rank" = [2, 4.5] }', "is not a valid rank"),
                ('{ "train.learning_rate" = [1.0000001e-3, 1.0000002e-3] }', "two values name the same variant"),
                ('{ "train.seed" = [' + ", ".join(map(str, range(40))) + "] }", "makes 40 variants (at most 32)"),
            ]
        ],
        field_case(("models", "v1", "select"), {"metric": "suite.composite"}, "needs both matrix"),
        field_case(("models", "base", "matrix"), {"train.learning_rate": [1e-3]}, "needs both matrix"),
        field_case(("models", "base", "select"), {"metric": "suite.composite"}, "needs both matrix"),
        file_case(
            "sweep on a root model",
            lambda f: (f / "anvil.toml").write_text(
                RECIPE.replace(
                    'source = "synthetic:tiny"',
                    'source = "synthetic:tiny"\nmatrix = { "train.seed" = [1, 2] }\n'
                    'select = { metric = "suite.composite" }',
                )
            ),
            "a matrix belongs to a training round",
        ),
        file_case(
            "sweep selects an unknown metric",
            lambda f: (f / "anvil.toml").write_text(
                RECIPE.replace(
                    "checkpoint_interval = 2 }",
                    'checkpoint_interval = 2 }\nmatrix = { "train.seed" = [1, 2] }\n'
                    'select = { metric = "suite.compsite" }',
                )
            ),
            "did you mean 'suite.composite'",
        ),
        file_case(
            "sweep within noise on knowledge",
            lambda f: (f / "anvil.toml").write_text(
                RECIPE.replace(
                    "checkpoint_interval = 2 }",
                    'checkpoint_interval = 2 }\nmatrix = { "train.seed" = [1, 2] }\n'
                    'select = { metric = "knowledge.gsm8k_cot.score", rule = "simplest_within_noise" }',
                )
            ),
            "compares suite scores test by test",
        ),
        field_case(("models", "q"), {"quantize": {}}, "a quantized node needs a parent"),
        field_case(("models", "q"), {"parent": "v1", "dataset": "d", "quantize": {}}, "dataset belong to training"),
        field_case(("models", "q2"), {"parent": "q", "dataset": "d"}, "'q' is a quantized node: a round trains on"),
        field_case(("models", "q2"), {"parent": "q", "quantize": {"bits": 8}}, "'q' is already quantized"),
        field_case(("models", "v1", "lora", "rankk"), 4, "did you mean 'rank'"),
        field_case(("models", "v1", "trian"), {}, "did you mean 'train'"),
        field_case(("serve", "prot"), 8, "did you mean 'port'"),
        field_case(("eval", "judge", "kind"), "llm", "anvil.toml:"),
        field_case(("eval", "judge"), {"kind": "command", "argv": [""]}, "eval.judge.argv"),
        field_case(("eval", "judge"), {"kind": "command", "argv": []}, "eval.judge.argv"),
        field_case(("eval", "judge"), {"kind": "openai", "url": "ftp://x", "model": "m"}, "eval.judge.url"),
        field_case(
            ("eval", "judge"), {"kind": "openai", "url": "http://x", "model": "m", "api_key_env": ""}, "api_key_env"
        ),
        field_case(("serve", "api_key_env"), "", "serve.api_key_env"),
        field_case(("serve", "api_key_env"), "MY KEY", "serve.api_key_env"),
        field_case(("serve", "host"), "0.0.0.0", "set api_key_env too"),
        field_case(("serve", "host"), "example.com", "is not an IP address"),
        field_case(("models", "base"), {"source": "hf:../../etc"}, "expected hf:ORG/NAME"),
        field_case(("models", "base"), {"source": "hf:a..b/c"}, "not a Hub repo id"),
        field_case(("models", "base"), {"source": "hf:org"}, "expected hf:ORG/NAME"),
        field_case(("models", "base"), {"source": "s3:bucket/x"}, "expected hf:ORG/NAME"),
        field_case(("models", "base"), {"source": "path:/etc"}, "not a checkpoint folder"),
        field_case(("models", "base"), {"source": "path:/"}, "not a checkpoint folder"),
        field_case(("models", "base"), {"source": "path:anvil.toml"}, "not a checkpoint folder"),
        field_case(("models", "base"), {"source": "path:nowhere"}, "does not exist"),
        field_case(("models", "base", "synthetic"), {"hidden_size": 32, "layers": 2}, "did you mean 'num_layers'"),
        field_case(("models", "base", "revision"), "main", "revision needs an `hf:` source"),
        field_case(("models", "v1", "parent"), "v9", "model 'v9' is not defined"),
        field_case(("models", "v1", "dataset"), "nope", "dataset 'nope' is not defined"),
        field_case(("models", "v1", "lora", "last_layers"), 5, "5 layers requested but the model has 2"),
        field_case(("models", "v1", "lora", "targets"), ["qproj"], "models.v1.lora.targets"),
        field_case(("models", "v1", "train", "warmup_steps"), 9, "warmup_steps 9 is more than steps 4"),
        field_case(("datasets", "d", "sources", 0, "count"), 99, "asks for 99 rows"),
        field_case(("datasets", "d", "sources", 0, "weight"), 1.0, "either count or weight"),
        field_case(("datasets", "d", "sources"), [], "datasets.d.sources"),
        field_case(("eval", "contamination"), "warning", "eval.contamination"),
        field_case(("models", "v1", "method"), "dpo", "holds chat rows, but method = 'dpo' trains on preference rows"),
        field_case(("models", "v1", "method"), "ppo", "models.v1.method"),
        field_case(("models", "v1", "preference"), {"beta": 0.2}, "preference settings belong to method"),
        field_case(("models", "v1", "preference"), {"bta": 0.2}, "did you mean 'beta'"),
        field_case(("models", "base", "method"), "orpo", "a root model (source) takes no method"),
        field_case(("datasets", "d", "format"), "pairs", "datasets.d.format"),
        field_case(("datasets", "d", "format"), "preference", "holds preference rows, but method = 'sft'"),
        field_case(("models", "v1", "distributed"), {"hosts": ["mac-studio.local"]}, "is not an IP address"),
        field_case(("models", "v1", "distributed"), {"processes_per_host": 3}, "not a multiple of the 3"),
        field_case(("models", "v1", "distributed"), {"processes_per_host": 0}, "models.v1.distributed"),
        field_case(("models", "v1", "distributed"), {"backend": "nccl"}, "models.v1.distributed.backend"),
        field_case(("models", "v1", "distributed"), {"host": ["127.0.0.1"]}, "did you mean 'hosts'"),
        field_case(("models", "base", "distributed"), {}, "distributed training belongs to rounds"),
        field_case(("models", "v1", "distributed"), {"backend": "jaccl"}, "the jaccl backends need a hostfile"),
        field_case(
            ("models", "v1", "distributed"), {"hostfile": "nowhere.json"}, "hostfile nowhere.json: cannot read it"
        ),
        field_case(("models", "v1", "distributed"), {"hostfile": "anvil.toml"}, "expected mlx.launch's JSON"),
        field_case(("models", "v1", "distributed"), {"hostfile": "h.json", "hosts": ["127.0.0.1"]}, "not both"),
        field_case(("store", "remote"), "gs://bucket/x", "store.remote"),
        field_case(("store", "remote"), "s3://", "store.remote"),
        field_case(("store", "endpoint_url"), "localhost:9000", "store.endpoint_url"),
        field_case(("machine", "memory"), 96, "did you mean 'memory_gb'"),
        field_case(("machine", "memory_gb"), 0, "machine.memory_gb"),
        field_case(("machine", "name"), "", "machine.name"),
        field_case(("project", "name"), "x" * 100_000, "project.name"),
        field_case(("datasets", "d", "categories"), {"voic": {"description": "x"}}, "did you mean 'voice'"),
        field_case(("datasets", "d", "categories"), {"voice": {"description": ""}}, "datasets.d.categories.voice"),
        field_case(("datasets", "d", "categories"), {"voice": "x"}, "datasets.d.categories.voice"),
        field_case(
            ("datasets", "d", "categories"),
            {"voice": {"description": "x", "addresses": ["gret"]}},
            "'gret' is no suite category or test",
        ),
        field_case(("datasets", "d", "description"), "", "datasets.d.description"),
        field_case(("gates", 0, "metric"), "suite.composit", "did you mean 'suite.composite'"),
        field_case(("gates", 0, "metric"), "suite.test.nope", "is not a metric of v1"),
        field_case(("gates", 0, "metric"), "knowledge.gsm8k_cot.delta_vs_bse", "did you mean"),
        field_case(("gates", 0, "min"), 7.0, "outside suite.composite's range"),
        field_case(("gates", 0, "max"), 0.5, "above max"),
        field_case(("gates", 0, "model"), "v9", "model 'v9' is not defined"),
        field_case(("eval", "compare"), [], "eval.compare"),
        field_case(("eval", "suites"), ["suite", "suite"], "suite name 'suite' is also"),
        field_case(("eval", "suites"), ["nowhere"], "eval.suites[0]: nowhere does not exist"),
        field_case(("eval", "suites"), ["data/voice.jsonl"], "is not a folder"),
        field_case(("eval", "suites"), ["data"], "has no test files"),
        field_case(("eval", "knowledge", 0, "benchmark"), "arc", "eval.knowledge[0].benchmark"),
        field_case(("serve", "model"), "v7", "model 'v7' is not defined"),
        file_case("project is a value", lambda f: (f / "anvil.toml").write_text('project = "x"\n'), "project"),
        file_case(
            "models is a list",
            lambda f: (f / "anvil.toml").write_text('models = []\n[project]\nname = "x"\n'),
            "models",
        ),
    ]
    out += files() + runtime() + lm_eval_tasks() + grpo_rounds()
    return out


def _loop(folder: Path, name: str = "loop.toml") -> None:
    """`name` made a symlink to itself, through a second link."""
    (folder / name).unlink(missing_ok=True)
    (folder / f"{name}.other").symlink_to(folder / name)
    (folder / name).symlink_to(folder / f"{name}.other")


def _hostfile(folder: Path, hosts: str) -> None:
    (folder / "h.json").write_text(hosts)
    text = RECIPE.replace("[models.v1]", '[models.v1]\ndistributed = { hostfile = "h.json" }')
    (folder / "anvil.toml").write_text(text)


def _data(folder: Path, content: bytes) -> None:
    (folder / "data" / "voice.jsonl").write_bytes(content)


def _swept(folder: Path, matrix: str) -> None:
    swept = f'checkpoint_interval = 2 }}\nmatrix = {matrix}\nselect = {{ metric = "suite.composite" }}'
    (folder / "anvil.toml").write_text(RECIPE.replace("checkpoint_interval = 2 }", swept))


TASK = """task: mine
dataset_path: json
dataset_kwargs:
  data_files:
    test: rows.jsonl
test_split: test
output_type: generate_until
doc_to_text: "{{question}}"
doc_to_target: "{{answer}}"
generation_kwargs:
  until: ["\\n"]
metric_list:
  - metric: exact_match
"""


def _task(folder: Path, yaml: str, setting: str = "", rows: bool = True, n: int = 2) -> None:
    """The recipe's knowledge as an lm-eval task file (tasks/mine.yaml), with `yaml` as its text."""
    (folder / "tasks").mkdir()
    (folder / "tasks" / "mine.yaml").write_text(yaml)
    if rows:
        (folder / "tasks" / "rows.jsonl").write_text('{"question": "q", "answer": "a"}\n' * 3)
    entry = f'{{ task = "tasks/mine.yaml", n = {n}{setting} }}'
    (folder / "anvil.toml").write_text(RECIPE.replace('{ benchmark = "gsm8k_cot", n = 5 }', entry))


def lm_eval_tasks() -> list[Case]:
    """A task lm-eval rejects, one without its data, one that needs the network, a log-likelihood task, a metric
    or filter it does not have, a name lm-eval does not know: each one line at validate."""
    return [
        file_case(
            "task: YAML lm-eval cannot read", lambda f: _task(f, "task: [unclosed\n"), "is not a task lm-eval can read"
        ),
        file_case("task: no task key", lambda f: _task(f, "dataset_path: json\n"), "names no task"),
        file_case(
            "task: an unknown key",
            lambda f: _task(f, TASK + "doc_to_txt: x\n"),
            "tasks/mine.yaml is refused by lm-eval",
        ),
        file_case("task: its data file missing", lambda f: _task(f, TASK, rows=False), "needs the network"),
        file_case(
            "task: a Hub dataset",
            lambda f: _task(f, TASK.replace("dataset_path: json", "dataset_path: openai/gsm8k")),
            "reads 'openai/gsm8k' from the Hugging Face Hub",
        ),
        file_case(
            "task: log-likelihood",
            lambda f: _task(f, TASK.replace("generate_until", "multiple_choice")),
            "is a multiple_choice task: a chat server returns no log-probabilities",
        ),
        file_case("task: no such metric", lambda f: _task(f, TASK, ', metric = "f1"'), "has no metric 'f1'"),
        file_case("task: no such filter", lambda f: _task(f, TASK, ', filter = "strict"'), "has no filter 'strict'"),
        file_case(
            "task: n above its rows", lambda f: _task(f, TASK, n=9), "asks for 9 items but tasks/mine.yaml has 3"
        ),
        file_case("task: the file missing", lambda f: _task_missing(f), "tasks/none.yaml does not exist"),
        file_case("task: unknown name", lambda f: _task_named(f, "gsm8k_cott"), "gsm8k_cott is no lm-eval task"),
        file_case("task: a group", lambda f: _task_named(f, "mmlu_pro"), "is an lm-eval group"),
        file_case("task and benchmark", lambda f: _task(f, TASK, ', benchmark = "qa"'), "exactly one of"),
    ]


def _grpo(folder: Path, table: str, rows: str = '{"prompt": "Hi", "answer": "Hello."}\n' * 8) -> None:
    """v1 as a GRPO round on prompt rows (data/prompts.jsonl), with `table` as its `grpo` settings."""
    (folder / "data" / "prompts.jsonl").write_text(rows)
    text = RECIPE.replace('dataset = "d"', f'dataset = "p"\nmethod = "grpo"\ngrpo = {table}')
    text = text.replace(
        "[datasets.d]",
        '[datasets.p]\nformat = "prompt"\nsources = [{ path = "data/prompts.jsonl", category = "voice" }]\n\n[datasets.d]',
    )
    (folder / "anvil.toml").write_text(text)


def grpo_rounds() -> list[Case]:
    """A reward that names a missing field, a judge as reward, a group of 1, a regex that does not compile, no
    reward, a grpo table on another method, a dataset of chat rows: each one line at validate."""
    exact = '{ reward = [{ kind = "exact", field = "answer" }] }'
    return [
        file_case(
            "grpo: a field no row has",
            lambda f: _grpo(f, '{ reward = [{ kind = "exact", field = "solution" }] }'),
            "'solution' is not in data/prompts.jsonl:1 (expected every row the reward reads to have it)",
        ),
        file_case(
            "grpo: a field one row lacks",
            lambda f: _grpo(f, exact, '{"prompt": "Hi", "answer": "Hello."}\n{"prompt": "Yo"}\n'),
            "'answer' is not in data/prompts.jsonl:2",
        ),
        file_case(
            "grpo: a judge reward without its test",
            lambda f: _grpo(f, '{ reward = [{ kind = "judge" }] }'),
            "a judge term needs `test`",
        ),
        file_case(
            "grpo: a judge reward on a suite not evaluated",
            lambda f: _grpo(f, '{ reward = [{ kind = "judge", test = "other/greet" }] }'),
            "'other' is not a suite of eval.suites (expected one of: suite)",
        ),
        file_case(
            "grpo: a judge reward on a test the suite lacks",
            lambda f: _grpo(
                f, '{ reward = [{ kind = "regex", pattern = "x" }, { kind = "judge", test = "suite/wave" }] }'
            ),
            "models.v1.grpo.reward[1].test: suite has no test 'wave' (expected one of: greet)",
        ),
        file_case(
            "grpo: an uncalibrated judge as reward",
            lambda f: _grpo(f, '{ reward = [{ kind = "judge", test = "suite/greet" }] }'),
            "the judge is uncalibrated on suite (no suite/calibration/ answers a person scored)",
        ),
        file_case(
            "grpo: a judge reward held to no threshold",
            lambda f: (
                _calibration(f, CALIBRATION_ROW),
                _grpo(f, '{ reward = [{ kind = "judge", test = "suite/greet" }] }'),
            ),
            "eval.judge_agreement sets no threshold",
        ),
        file_case(
            "grpo: a group of one",
            lambda f: _grpo(f, '{ group_size = 1, reward = [{ kind = "regex", pattern = "x" }] }'),
            "models.v1.grpo.group_size",
        ),
        file_case(
            "grpo: a regex that does not compile",
            lambda f: _grpo(f, '{ reward = [{ kind = "regex", pattern = "(x" }] }'),
            "pattern '(x' does not compile",
        ),
        file_case("grpo: no reward", lambda f: _grpo(f, "{ beta = 0.1 }"), "models.v1.grpo.reward"),
        file_case(
            "grpo: no grpo table",
            lambda f: (f / "anvil.toml").write_text(RECIPE.replace('dataset = "d"', 'dataset = "d"\nmethod = "grpo"')),
            "a grpo round needs its `grpo` table",
        ),
        file_case(
            "grpo: chat rows",
            lambda f: (f / "anvil.toml").write_text(
                RECIPE.replace('dataset = "d"', f'dataset = "d"\nmethod = "grpo"\ngrpo = {exact}')
            ),
            "trains on prompt rows",
        ),
        file_case(
            "grpo table on sft",
            lambda f: (f / "anvil.toml").write_text(RECIPE.replace('dataset = "d"', f'dataset = "d"\ngrpo = {exact}')),
            "grpo settings belong to method = 'grpo', not 'sft'",
        ),
    ]


def _task_missing(folder: Path) -> None:
    entry = '{ task = "tasks/none.yaml", n = 2 }'
    (folder / "anvil.toml").write_text(RECIPE.replace('{ benchmark = "gsm8k_cot", n = 5 }', entry))


def _task_named(folder: Path, name: str) -> None:
    (folder / "rows.jsonl").write_text('{"question": "q", "answer": "a"}\n' * 3)
    entry = f'{{ task = "{name}", data = "path:rows.jsonl", n = 2 }}'
    (folder / "anvil.toml").write_text(RECIPE.replace('{ benchmark = "gsm8k_cot", n = 5 }', entry))


def _calibration(folder: Path, content: bytes) -> None:
    (folder / "suite" / "calibration").mkdir(exist_ok=True)
    (folder / "suite" / "calibration" / "p.jsonl").write_bytes(content)


CALIBRATION_ROW = b'{"test": "greet", "answer": "Hi there", "score": 5}\n'


def files() -> list[Case]:
    row = (REPO / "data" / "voice.jsonl").read_bytes().splitlines()[0]
    deep = b"[" * 100_000 + b"]" * 100_000
    return [
        file_case("toml syntax", lambda f: (f / "anvil.toml").write_text(RECIPE + "\n[serve\n"), "invalid TOML"),
        file_case(
            "toml duplicate key",
            lambda f: (f / "anvil.toml").write_text(RECIPE.replace('name = "bad"', 'name = "a"\nname = "b"')),
            'defined twice (`name = "b"`',
        ),
        file_case(
            "toml nested",
            lambda f: (f / "anvil.toml").write_text(RECIPE + "x = " + "[" * 5000 + "]" * 5000),
            "nested too deeply",
        ),
        file_case(
            "recipe not utf-8",
            lambda f: (f / "anvil.toml").write_bytes(b"\xff\xfe" + RECIPE.encode()),
            "cannot read the recipe",
        ),
        file_case("recipe missing", lambda f: (f / "anvil.toml").unlink(), "no such recipe"),
        file_case(
            "recipe is a folder",
            lambda f: ((f / "anvil.toml").unlink(), (f / "anvil.toml").mkdir()),
            "cannot read the recipe",
        ),
        file_case("recipe /dev/zero", lambda f: None, "is not a regular file", ("validate", "/dev/zero")),
        file_case("recipe symlink loop", _loop, "is a symlink loop", ("validate", "loop.toml")),
        file_case("plan on a symlink loop", _loop, "is a symlink loop", ("plan", "loop.toml")),
        file_case(
            "recipe too large",
            lambda f: (f / "anvil.toml").write_text(RECIPE + "#" * (17 << 20)),
            "expected a TOML file under 16 MB",
        ),
        file_case(
            "model name ends in a newline",
            lambda f: (f / "anvil.toml").write_text(RECIPE.replace("[models.v1]", '[models."v1\\n"]')),
            "is not allowed",
        ),
        file_case(
            "project name on two lines",
            lambda f: (f / "anvil.toml").write_text(RECIPE.replace('name = "bad"', 'name = "two\\nlines"')),
            "project.name",
        ),
        file_case("hostfile ssh null", lambda f: _hostfile(f, '[{"ssh": null}]'), 'each with an "ssh" name'),
        file_case("hostfile ssh empty", lambda f: _hostfile(f, '{"hosts": [{"ssh": ""}]}'), 'an "ssh" name'),
        file_case("hostfile ssh number", lambda f: _hostfile(f, '[{"ssh": 3}]'), 'an "ssh" name'),
        file_case("data symlink loop", lambda f: _loop(f, "data/voice.jsonl"), "voice.jsonl is a symlink loop"),
        file_case("data not utf-8", lambda f: _data(f, row + b"\n\xff\xfe\xfd\n"), "not UTF-8"),
        file_case("data nested", lambda f: _data(f, row + b"\n" + deep + b"\n"), "nested too deeply"),
        file_case("data bad json", lambda f: _data(f, row + b"\n{not json\n"), "not valid JSON"),
        file_case(
            "data wrong record", lambda f: _data(f, row + b'\n{"messages": [{"role": "bot"}]}\n'), "voice.jsonl:2"
        ),
        file_case(
            "data no assistant",
            lambda f: _data(f, b'{"messages": [{"role": "user", "content": "x"}]}\n'),
            "no assistant",
        ),
        file_case("data empty", lambda f: _data(f, b""), "has no rows"),
        *(
            file_case(f"calibration {name}", lambda f, c=content: _calibration(f, CALIBRATION_ROW + c), expect)
            for name, content, expect in (
                ("bad json", b"{not json\n", "suite/calibration/p.jsonl:2:1: not valid JSON"),
                ("unknown test", b'{"test": "nope", "answer": "a", "score": 1}\n', "no test 'nope' in the suite"),
                ("score above 5", b'{"test": "greet", "answer": "a", "score": 7}\n', "p.jsonl:2:1: score:"),
                ("score as text", b'{"test": "greet", "answer": "a", "score": "5"}\n', "p.jsonl:2:1: score:"),
                ("score nan", b'{"test": "greet", "answer": "a", "score": NaN}\n', "p.jsonl:2:1: score:"),
                ("no answer", b'{"test": "greet", "score": 1}\n', "p.jsonl:2:1: answer:"),
                ("empty answer", b'{"test": "greet", "answer": "", "score": 1}\n', "p.jsonl:2:1: answer:"),
                ("extra key", b'{"test": "greet", "answer": "a", "score": 1, "judge": 3}\n', "p.jsonl:2:1: judge:"),
                ("a list", b"[1, 2]\n", "p.jsonl:2:1:"),
                ("not utf-8", b"\xff\xfe\n", "cannot be read as UTF-8"),
            )
        ),
        file_case("calibration empty", lambda f: _calibration(f, b"\n\n"), "suite/calibration: has no rows"),
        file_case(
            "calibration file is a folder",
            lambda f: (f / "suite" / "calibration" / "x.jsonl").mkdir(parents=True),
            "x.jsonl: is not a regular file",
        ),
        file_case("data blank lines", lambda f: _data(f, b"\n\n  \n"), "has no rows"),
        file_case(
            "data is a folder",
            lambda f: ((f / "data" / "voice.jsonl").unlink(), (f / "data" / "voice.jsonl").mkdir()),
            "not a regular file",
        ),
        file_case("data missing", lambda f: (f / "data" / "voice.jsonl").unlink(), "does not exist"),
        file_case(
            "data /dev/null",
            lambda f: (f / "anvil.toml").write_text(RECIPE.replace("data/voice.jsonl", "/dev/null")),
            "not a regular file",
        ),
        file_case(
            "suite test bad",
            lambda f: (f / "suite" / "greet.toml").write_text('category = "voice"\nturns = []\n'),
            "greet.toml",
        ),
        file_case(
            "suite test regex",
            lambda f: (f / "suite" / "greet.toml").write_text(
                TEST.replace('kind = "contains"\nvalue = "hi"', 'kind = "regex"\nvalue = "("')
            ),
            "invalid regex",
        ),
        file_case(
            "suite test no checks (rules judge)",
            lambda f: (f / "suite" / "greet.toml").write_text(TEST.split("[[checks]]")[0]),
            "has no checks",
        ),
        file_case(
            "suite test inf weight",
            lambda f: (f / "suite" / "greet.toml").write_text(TEST.replace("rubric", "weight = inf\nrubric")),
            "greet.toml",
        ),
        file_case(
            "suite test not utf-8",
            lambda f: (f / "suite" / "greet.toml").write_bytes(b"\xff" + TEST.encode()),
            "greet.toml",
        ),
    ]
