"""Where a recipe runs and what it shares: training over several processes and hosts, the machine it is
planned for, and the remote store shared between machines."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Literal

from pydantic import Field, PrivateAttr, ValidationInfo, model_validator

from anvil.recipe.base import Strict


class Distributed(Strict):
    """Data-parallel training over processes and hosts, launched by `mlx.launch` (MLX's own engine):
    every process trains on its share of each batch and gradients are averaged (mlx-lm-lora's trainer
    calls `mx.distributed`). `batch_size` stays the global batch. Every host needs the same paths (the
    store on shared storage) and, beyond this one, SSH access, as mlx.launch requires."""

    hosts: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Hosts, by IP address (the ring backend connects to IPs); default 127.0.0.1, this machine.",
    )
    processes_per_host: int = Field(default=2, ge=1, le=256, description="Training processes on each host.")
    hostfile: str | None = Field(
        default=None,
        min_length=1,
        description="Instead of hosts: mlx.launch's JSON hostfile (relative to the recipe's folder), one entry a "
        "process: `ssh` name, `ips`, and for jaccl the `rdma` devices between each pair of Macs.",
    )
    backend: Literal["ring", "mpi", "jaccl", "jaccl-ring"] = Field(
        default="ring",
        description="mlx.launch's backend: `ring` (TCP), `mpi`, or `jaccl` / `jaccl-ring` (Thunderbolt RDMA "
        "between Macs; it needs a hostfile with the RDMA devices).",
    )
    _from_hostfile: list[str] = PrivateAttr(default_factory=list)  # its hosts' ssh names, one a process
    _hostfile_path: str = PrivateAttr(default="")

    @property
    def world_size(self) -> int:
        if self.hostfile:
            return len(self._from_hostfile)
        return len(self.hosts or ["127.0.0.1"]) * self.processes_per_host

    def host_of(self, rank: int) -> str:
        if self.hostfile:
            return self._from_hostfile[min(rank, len(self._from_hostfile) - 1)]
        hosts = self.hosts or ["127.0.0.1"]
        return hosts[min(rank // self.processes_per_host, len(hosts) - 1)]

    def launch_hosts(self) -> list[str]:
        """mlx.launch's arguments that say where the processes run."""
        if self.hostfile:
            return ["--hostfile", self._hostfile_path]
        return ["--hosts", ",".join(self.hosts or ["127.0.0.1"]), "--repeat-hosts", str(self.processes_per_host)]

    @model_validator(mode="after")
    def _where(self, info: ValidationInfo) -> Distributed:
        if self.hostfile is None:
            for host in self.hosts or []:
                try:
                    ipaddress.ip_address(host)
                except ValueError:
                    raise ValueError(f"{host!r} is not an IP address (mlx.launch's ring connects to IPs)") from None
            if self.backend.startswith("jaccl"):
                raise ValueError("the jaccl backends need a hostfile (its `rdma` devices say how the Macs connect)")
            return self
        if self.hosts is not None or "processes_per_host" in self.model_fields_set:
            raise ValueError("give hosts (and processes_per_host) or a hostfile, not both")
        root = Path((info.context or {}).get("root", "."))
        path = root / self.hostfile
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            entries = data["hosts"] if isinstance(data, dict) else data
            names = [entry["ssh"] for entry in entries]
            if not all(isinstance(n, str) and n.strip() and n == n.strip() for n in names):
                raise ValueError("ssh")
        except OSError as e:
            raise ValueError(f"hostfile {self.hostfile}: cannot read it ({e.strerror or e})") from None
        except (ValueError, KeyError, TypeError):
            raise ValueError(
                f"hostfile {self.hostfile}: expected mlx.launch's JSON: a list of hosts (or "
                '{"hosts": [...]}), each with an "ssh" name: a non-empty string'
            ) from None
        if not names:
            raise ValueError(f"hostfile {self.hostfile}: lists no host")
        self._from_hostfile, self._hostfile_path = names, str(path.resolve())
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


# The machines anvil/estimates/machines.py describes (a test holds the two together).
MachineProfile = Literal["m1-max", "m1-ultra", "m2-max", "m2-ultra", "m3-max", "m3-ultra", "m4-max"]


class Machine(Strict):
    """The machine the recipe is planned for, when it is not this one (plan here, train on the Mac)."""

    name: str | None = Field(default=None, min_length=1, max_length=200, description="What to call it in the plan.")
    memory_gb: float | None = Field(
        default=None,
        gt=0,
        le=1_000_000,
        description="Its memory in GB (default: the profile's largest, else this machine's).",
    )
    profile: MachineProfile | None = Field(
        default=None,
        description="The Apple Silicon chip it has, for the plan's times: its memory bandwidth, GPU throughput and "
        "latency (anvil/estimates/machines.py gives each figure and where it comes from). Default: this machine, "
        "as a probe measures it.",
    )
