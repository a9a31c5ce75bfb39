"""Training checkpoints that resume exactly: a run killed at any moment and resumed ends with the same
adapter, byte for byte, as one that was never interrupted.

What decides the rest of a run is saved or made a function of (seed, step) alone:
- the adapter weights and the optimizer's state (Adam's moments and step counter, which also drives
  the learning-rate schedule) are saved every `checkpoint_interval` steps;
- the batch of step N is one of the length-grouped batches of its epoch, in an order drawn from
  (seed, epoch), and the dropout noise of step N comes from a generator seeded with (seed, N): neither
  depends on what ran before.
Each file is written to a temporary name, fsynced and renamed; the adapter file is written last and
marks a checkpoint complete. A checkpoint that cannot be read (torn by a kill) is removed and the
previous one used."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable
from pathlib import Path

from anvil.backends import tensors

ADAPTERS, OPTIMIZER = "_adapters.safetensors", "_optimizer.safetensors"


def _save(path: Path, tensors: dict) -> None:
    import mlx.core as mx

    tmp = path.with_name(f".{path.stem}.tmp.safetensors")
    mx.save_safetensors(str(tmp), tensors)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def save(folder: Path, step: int, model, optimizer) -> None:
    from mlx.utils import tree_flatten

    _save(folder / f"{step:07d}{OPTIMIZER}", dict(tree_flatten(optimizer.state)))
    _save(folder / f"{step:07d}{ADAPTERS}", dict(tree_flatten(model.trainable_parameters())))


def restore(folder: Path, model, optimizer) -> int:
    """Load the latest readable checkpoint into `model` and `optimizer`; the step it was taken at (0: none)."""
    from mlx.utils import tree_unflatten

    steps = sorted(
        (int(m.group(1)) for p in folder.glob(f"*{ADAPTERS}") if (m := re.match(r"(\d+)_", p.name))), reverse=True
    )
    for step in steps:
        adapters, state = folder / f"{step:07d}{ADAPTERS}", folder / f"{step:07d}{OPTIMIZER}"
        try:
            weights, moments = tensors.read(adapters), tensors.read(state)
        except (OSError, RuntimeError, ValueError):
            adapters.unlink(missing_ok=True)  # torn by a kill mid-write: fall back to the previous one
            state.unlink(missing_ok=True)
            continue
        model.load_weights(list(weights.items()), strict=False)
        optimizer.state = tree_unflatten(list(moments.items()))
        return step
    return 0


def seeded_batches(seed: int, done: int, rank: int = 0, size: int = 1) -> Callable:
    """mlx-lm-lora's `iterate_batches`, fed the batch of step N in epochs. Like mlx-lm-lora, rows are
    grouped by length into batches; unlike it, every batch is used once per epoch, in an order drawn
    from (seed, epoch), and the dropout generator is reseeded from (seed, N). Validation always draws
    from the same fixed stream. So step N trains on what it would in any run of the recipe, interrupted
    or not."""
    import mlx.core as mx
    import numpy as np
    from mlx_lm_lora.trainer.sft_trainer import iterate_batches

    steps = itertools.count(done + 1)

    def iterate(dataset, batch_size, max_seq_length, train=False, **kwargs):
        if not train:
            np.random.seed([seed, 0])
            return iterate_batches(dataset, batch_size, max_seq_length, train=False, **kwargs)
        step = next(steps)
        by_length = sorted(range(len(dataset)), key=dataset.itemlen)
        groups = [by_length[i : i + batch_size] for i in range(0, len(by_length) - batch_size + 1, batch_size)]
        epoch, position = divmod(step - 1, len(groups))
        group = groups[np.random.default_rng([seed, epoch]).permutation(len(groups))[position]]
        mx.random.seed((seed * 1_000_003 + step) % 2**32)
        # mlx-lm-lora builds the batch (padding, truncation) from rows 0, size, 2 size... of what it is given,
        # once sorted by length, and gives no process an offset: every rank would train on the same rows.
        # So each is handed its own share (rank::size of the group sorted by length), every row repeated
        # `size` times: sorted already, the rows it picks are exactly that share. One process: the group.
        rows = sorted((dataset[j] for j in group), key=len)
        mine = [row for row in rows[rank::size] for _ in range(size)]
        return iterate_batches(mine, batch_size, max_seq_length, train=True, **kwargs)

    return iterate


def shared_validation(rank: int, size: int) -> Callable:
    """Validation batches for one of `size` processes: the batches one process would draw (length groups
    in an order from the caller's seeded numpy stream), each split into the processes' shares as training
    does. mlx-lm-lora sums losses and tokens over the processes, so the loss is the one-process loss."""
    import numpy as np
    from mlx_lm_lora.trainer.sft_trainer import iterate_batches

    def iterate(dataset, batch_size, max_seq_length, train=False, **kwargs):
        by_length = sorted(range(len(dataset)), key=dataset.itemlen)
        groups = [by_length[i : i + batch_size] for i in range(0, len(by_length) - batch_size + 1, batch_size)]
        for position in np.random.permutation(len(groups)):
            rows = sorted((dataset[j] for j in groups[position]), key=len)
            mine = [row for row in rows[rank::size] for _ in range(size)]
            yield from iterate_batches(mine, batch_size, max_seq_length, train=False, **kwargs)

    return iterate
