"""The recipe's `[serve]` table: the OpenAI-compatible server Anvil keeps running."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from anvil.recipe.base import ENV_PATTERN, Strict


class KvCache(Strict):
    quantization: Literal["none", "uniform", "turboquant"] = Field(
        default="none", description="KV-cache quantization scheme of mlx-vlm's server."
    )
    bits: Literal[2, 3, 4, 8] = Field(default=4, description="Bits per KV-cache element when quantized.")
    group_size: Literal[32, 64, 128] = Field(default=64, description="Quantization group size (uniform scheme).")
    start: int = Field(
        default=5000,
        ge=0,
        le=1_000_000_000,
        description="Tokens of each sequence kept unquantized before quantization starts (mlx-vlm's default, "
        "5000: shorter prompts and answers are served exactly; 0 quantizes from the first token).",
    )


Tolerance = Annotated[float, Field(gt=0, le=1000)]


class Parity(Strict):
    """The check after every fuse that the model served is the model trained: the round as trained (mlx-lm:
    parent + adapter) against the fused checkpoint as mlx-vlm serves it, on the token ids of held-out prompts.
    Beyond the tolerance the round fails, and what needs it is blocked."""

    max_logit_diff: dict[Literal["float32", "bfloat16", "float16"], Tolerance] = Field(
        default={"float32": 1e-3, "bfloat16": 0.5, "float16": 0.25},
        description="Largest |logit| difference accepted, by the fused weights' dtype (float32: rounding only).",
    )
    probes: int = Field(default=4, ge=1, le=256, description="Held-out prompts compared.")
    new_tokens: int = Field(default=8, ge=1, le=1024, description="Tokens of greedy continuation compared.")


def loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Serve(Strict):
    model: str | None = Field(
        default=None, description="Model node that `apply` keeps served once its gates pass; none serves nothing."
    )
    host: str = Field(
        default="127.0.0.1",
        description="Address to listen on (an IP address or `localhost`): loopback, unless api_key_env is set too.",
    )
    port: int = Field(default=8092, ge=1, le=65535, description="TCP port of the OpenAI-compatible server.")
    kv_cache: KvCache = Field(default_factory=KvCache, description="KV-cache quantization.")
    max_tokens: int = Field(default=512, ge=1, le=1_000_000, description="Default cap on generated tokens per request.")
    api_key_env: str | None = Field(
        default=None,
        pattern=ENV_PATTERN,
        description="Environment variable holding the API key requests must carry; required to listen on an "
        "address other than loopback.",
    )

    @field_validator("host")
    @classmethod
    def _an_address(cls, host: str) -> str:
        if host != "localhost":
            try:
                ipaddress.ip_address(host)
            except ValueError:
                raise ValueError(f"{host!r} is not an IP address (expected e.g. 127.0.0.1 or ::1)") from None
        return host

    @model_validator(mode="after")
    def _loopback_unless_keyed(self) -> Serve:
        if not loopback(self.host) and self.api_key_env is None:
            raise ValueError(
                f"host {self.host!r} is reachable from other machines: set api_key_env too, or listen on 127.0.0.1"
            )
        return self
