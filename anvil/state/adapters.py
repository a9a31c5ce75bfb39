"""An adapter folder made outside Anvil (mlx-lm / mlx-lm-lora's format: `adapters.safetensors` and
`adapter_config.json`) checked against what a recipe's round declares and the parent it must fit, from
the files' headers alone (no tensor is read): what `anvil import` verifies before it records one."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from anvil.errors import AnvilError
from anvil.state.checkpoint import layout, tensor_shapes

FILES = ("adapters.safetensors", "adapter_config.json")
LAYER = re.compile(r"\.layers\.(\d+)\.")


def read(folder: Path) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """The adapter's config and its tensors' shapes; an error naming what is missing or unreadable."""
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise AnvilError(
            f"{folder}: not an adapter folder ({', '.join(missing)} missing; expected mlx-lm's "
            "adapters.safetensors and adapter_config.json)"
        )
    try:
        config = json.loads((folder / "adapter_config.json").read_text())
        shapes = tensor_shapes(folder / "adapters.safetensors")
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise AnvilError(f"{folder}: unreadable adapter ({type(e).__name__}: {e})") from None
    if not isinstance(config, dict):
        raise AnvilError(f"{folder / 'adapter_config.json'}: expected a JSON object")
    return config, shapes


def mismatches(config: dict[str, Any], expected: dict[str, Any], names: dict[str, str]) -> list[str]:
    """Each field of the adapter's config that differs from the one the recipe would write: the field,
    the recipe's value (and the recipe key it comes from, `names`) and the file's."""
    out = []
    fields = [("fine_tune_type", expected["fine_tune_type"], config.get("fine_tune_type", "lora"))]
    fields += [("num_layers", expected["num_layers"], config.get("num_layers"))]
    given = config.get("lora_parameters") or {}
    # a setting the file leaves out is not a difference (mlx-lm-lora writes no `keys`: the tensors say them)
    fields += [(f"lora_parameters.{k}", v, given[k]) for k, v in expected["lora_parameters"].items() if k in given]
    for field, want, found in fields:
        same = sorted(want) == sorted(found or []) if isinstance(want, list) else _equal(want, found)
        if not same:
            out.append(f"{field}: the recipe's {names.get(field, field)} is {want!r}, the file's is {found!r}")
    return out


def _equal(want: Any, found: Any) -> bool:
    if isinstance(want, float) and isinstance(found, int | float) and not isinstance(found, bool):
        return abs(want - found) <= 1e-9 * max(1.0, abs(want))
    return want == found


def fit(shapes: dict[str, list[int]], parent: Path, config: dict[str, Any], keys: list[str], named: str) -> list[str]:
    """Whether the adapter's tensors fit the parent checkpoint: every module it adapts is a weight of the
    parent with matching sizes, of the rank and in the last layers the config says, and the projections it
    adapts are `keys` (mlx-lm's names of the recipe's targets, `named` as the recipe names them)."""
    weights = layout(parent)
    rank, layers = (config.get("lora_parameters") or {}).get("rank"), config.get("num_layers")
    problems = []
    modules = sorted(name.removesuffix(".lora_a") for name in shapes if name.endswith(".lora_a"))
    if not modules:
        return ["adapters.safetensors holds no LoRA tensor (expected <module>.lora_a and <module>.lora_b)"]
    for module in modules:
        a, b = shapes[f"{module}.lora_a"], shapes.get(f"{module}.lora_b")
        weight = next((weights[n] for n in _weight_names(module) if n in weights), None)
        if weight is None:
            problems.append(f"{module}: no such weight in the parent {parent.name} (another architecture?)")
        elif b is None or len(a) != 2 or len(b) != 2 or a[1] != b[0] or [b[1], a[0]] != weight[-2:]:
            problems.append(f"{module}: lora_a {a} and lora_b {b} do not fit the parent's weight {weight}")
        elif rank is not None and a[1] != rank:
            problems.append(f"{module}: rank {a[1]} in the file, {rank} in its config")
        if len(problems) >= 5:
            break
    adapted = sorted({LAYER.split(module)[-1] for module in modules if LAYER.search(module)})
    if adapted != sorted(keys):
        extra, lacking = sorted(set(adapted) - set(keys)), sorted(set(keys) - set(adapted))
        said = [f"adapts {', '.join(extra)}" if extra else "", f"leaves out {', '.join(lacking)}" if lacking else ""]
        problems.append(f"the adapter {' and '.join(x for x in said if x)}: not the modules {named} adapts")
    found = sorted({int(m.group(1)) for module in modules if (m := LAYER.search(module))})
    total = max((int(m.group(1)) for n in weights if (m := LAYER.search(n)) and "language" in n), default=-1) + 1
    if isinstance(layers, int) and total and found and found != list(range(total - layers, total)):
        problems.append(f"adapted layers {found[0]}..{found[-1]} are not the last {layers} of the parent's {total}")
    return problems


def checkpoint_names(module: str) -> tuple[str, ...]:
    """Where an adapter module (mlx naming: language_model.model.layers.N...) lives in a checkpoint:
    the same name in mlx-vlm's layout, `model.language_model.layers.N...` in Hugging Face's."""
    names: tuple[str, ...] = (module,)
    if module.startswith("language_model.model."):
        names += ("model.language_model." + module.removeprefix("language_model.model."),)
    return names


def _weight_names(module: str) -> tuple[str, ...]:
    return tuple(f"{name}.weight" for name in checkpoint_names(module))
