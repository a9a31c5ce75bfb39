"""Where a recipe runs and what it shares: training over several processes and hosts, the machine it is
planned for, and the remote store shared between machines."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, model_validator

from anvil.recipe.base import Strict


class Distributed(Strict):
    """Data-parallel training over processes and hosts, launched by `mlx.launch` (MLX's own engine):
    every process trains on its share of each batch and gradients are averaged (mlx-lm-lora's trainer
    calls `mx.distributed`). `batch_size` stays the global batch. Every host needs the same paths (the
    store on shared storage) and, beyond this one, SSH access, as mlx.launch requires."""

    hosts: list[str] = Field(default=["127.0.0.1"], min_length=1, description="Hosts, by IP address (the ring "
                             "backend connects to IPs); 127.0.0.1 runs here.")  # fmt: skip
    processes_per_host: int = Field(default=2, ge=1, le=256, description="Training processes on each host.")
    backend: Literal["ring", "mpi", "jaccl", "jaccl-ring"] = Field(
        default="ring",
        description="mlx.launch's backend: `ring` (TCP), `mpi`, or `jaccl` / `jaccl-ring` (Thunderbolt RDMA "
        "between Macs).",
    )

    @property
    def world_size(self) -> int:
        return len(self.hosts) * self.processes_per_host

    @model_validator(mode="after")
    def _ips(self) -> Distributed:
        for host in self.hosts:
            try:
                ipaddress.ip_address(host)
            except ValueError:
                raise ValueError(f"{host!r} is not an IP address (mlx.launch's ring connects to IPs)") from None
        return self


class StoreConfig(Strict):
    """Where artifacts are shared between machines (`anvil push` / `pull`; `apply` restores from it)."""

    remote: str | None = Field(
        default=None,
        pattern=r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/\S*)?|[^:\s][^:]*)$",
        description="A shared artifact store: `s3://BUCKET/PREFIX`, or a shared folder (absolute, or relative to "
        "the recipe's folder). Credentials come only from the environment (AWS_ACCESS_KEY_ID, AWS_PROFILE, ...). "
        "ANVIL_REMOTE overrides it.",
    )
    endpoint_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/]+",
        description="An S3-compatible endpoint (MinIO, a server of your own); default AWS (or AWS_ENDPOINT_URL).",
    )


class Machine(Strict):
    """The machine the recipe is planned for, when it is not this one (plan here, train on the Mac)."""

    name: str | None = Field(default=None, min_length=1, max_length=200, description="What to call it in the plan.")
    memory_gb: float | None = Field(
        default=None, gt=0, le=1_000_000, description="Its memory in GB (default: this machine's)."
    )
