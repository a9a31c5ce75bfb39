"""Quantized nodes: a model that is its parent's weights quantized (mlx-vlm's convert), not trained. What
the installed MLX supports is fixed per mode (checked here, when the recipe is read, not when it runs)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from anvil.recipe.base import Strict

# mode -> (bits, group sizes) mlx.core.quantize accepts (mlx 0.29+; pyproject pins the range)
SUPPORTED: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "affine": ((2, 3, 4, 5, 6, 8), (32, 64, 128)),
    "mxfp4": ((4,), (32,)),
    "mxfp8": ((8,), (32,)),
    "nvfp4": ((4,), (16,)),
}
# mlx-vlm's mixed-precision recipes (convert.QUANT_RECIPES): most layers at the low bits, the sensitive
# ones (v_proj, down_proj of some layers, lm_head) at the high bits, llama.cpp's Q4_K_M idea.
MIXED = ("mixed_2_6", "mixed_3_4", "mixed_3_5", "mixed_3_6", "mixed_3_8", "mixed_4_6", "mixed_4_8")


class Quantize(Strict):
    """How a quantized node is made from its parent's weights."""

    bits: int = Field(default=4, ge=2, le=8, description="Bits per weight of the language model's linear layers.")
    group_size: int = Field(default=64, ge=16, le=128, description="Weights sharing one scale (and bias).")
    mode: Literal["affine", "mxfp4", "mxfp8", "nvfp4"] = Field(
        default="affine",
        description="MLX's quantization mode: `affine` (scale and bias per group) or a "
        "floating-point microscaling format.",
    )
    mixed: Literal[MIXED] | None = Field(  # type: ignore[valid-type]
        default=None,
        description="One of mlx-vlm's mixed-precision recipes (e.g. `mixed_3_6`): low and high bits by layer, "
        "in place of `bits` (affine mode).",
    )
    margin: float = Field(
        default=0.25,
        gt=0,
        le=5,
        description="Non-inferiority margin: the node is not worse than its parent when the lower 95% bound of "
        "its suite composite's delta vs the parent is above -margin and no knowledge benchmark is "
        "significantly worse.",
    )

    @model_validator(mode="after")
    def _supported(self) -> Quantize:
        bits, groups = SUPPORTED[self.mode]
        if self.mixed is not None and self.mode != "affine":
            raise ValueError(f"mixed = {self.mixed!r} quantizes in affine mode, not {self.mode!r}")
        if self.mixed is not None and "bits" in self.model_fields_set:
            raise ValueError(f"mixed = {self.mixed!r} sets the bits by layer: leave bits out")
        if self.bits not in bits:
            raise ValueError(f"{self.mode} quantization takes bits {' or '.join(map(str, bits))}, not {self.bits}")
        if self.group_size not in groups:
            sizes = " or ".join(map(str, groups))
            raise ValueError(f"{self.mode} quantization takes group_size {sizes}, not {self.group_size}")
        return self

    @property
    def label(self) -> str:
        """`4-bit affine (group 64)`, `mixed_3_6 (group 64)`: how plans and the page name it."""
        return f"{self.mixed or f'{self.bits}-bit {self.mode}'} (group {self.group_size})"

    def weight_bits(self, parent_bits: int = 16) -> float:
        """Bits a quantized weight takes with its share of its group's scale (and bias, in the parent's float
        type for affine; one 8-bit exponent for the microscaling formats): the size estimate."""
        low, high = (int(b) for b in self.mixed.split("_")[1:]) if self.mixed else (self.bits, self.bits)
        bits = 0.8 * low + 0.2 * high  # mixed recipes keep roughly a fifth of the layers at the high bits
        extra = 2 * parent_bits if self.mode == "affine" else 8
        return bits + extra / self.group_size
