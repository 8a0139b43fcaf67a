"""Float32 precision policy on GPU: exact (IEEE float32) by default, TF32 only when asked for.

torch's own default lets cuDNN convolutions run in TF32 on Ampere and later GPUs (10-bit mantissa),
so feature extractors and samplers would silently lose precision against the CPU. ambient-eval
turns TF32 off for cuBLAS matmuls and cuDNN convolutions the first time a CUDA device is resolved
(`ensure_exact()`), and `--autocast tf32|bf16` are the explicit speed choices.

torch >= 2.9 has the `fp32_precision` API (`torch.backends.cuda.matmul.fp32_precision`,
`torch.backends.cudnn.conv.fp32_precision`, values "ieee" | "tf32"); mixing it with the legacy
`allow_tf32` flags in one process makes torch raise when the flags are read. So this module uses the
new API when it exists and the legacy flags only on an older torch, never both.
The state in effect is recorded in every results.json and sample settings (`settings()`).
"""
from __future__ import annotations

import contextlib
from typing import Iterator

IEEE = "ieee"   # exact float32
TF32 = "tf32"   # TensorFloat-32: 10-bit mantissa inside matmuls / convolutions (GPU only)
SETTINGS_KEY = "precision"  # key of settings() in results.json settings and sample settings

_applied = False


def new_api() -> bool:
    """True when this torch has the fp32_precision API (torch >= 2.9)."""
    import torch

    return hasattr(torch.backends.cuda.matmul, "fp32_precision") and \
        hasattr(getattr(torch.backends.cudnn, "conv", None), "fp32_precision")


def set_fp32(mode: str) -> None:
    """Set cuBLAS matmul and cuDNN convolution float32 precision to IEEE or TF32."""
    import torch

    if mode not in (IEEE, TF32):
        raise ValueError(f"fp32 precision must be {IEEE!r} or {TF32!r}, got {mode!r}")
    if new_api():
        torch.backends.cuda.matmul.fp32_precision = mode
        torch.backends.cudnn.conv.fp32_precision = mode
    else:  # pragma: no cover - torch < 2.9 only
        torch.backends.cuda.matmul.allow_tf32 = mode == TF32
        torch.backends.cudnn.allow_tf32 = mode == TF32


def read_fp32() -> dict[str, str]:
    """{'matmul': 'ieee'|'tf32', 'conv': ...} as torch has them now (read through the same API)."""
    import torch

    if new_api():
        m, c = torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision
        # "none" = inherit from torch.backends.fp32_precision; torch's root default is IEEE for
        # matmuls; cuDNN convolutions report "tf32" by default (torch's allow_tf32=True legacy default).
        root = getattr(torch.backends, "fp32_precision", "none")
        return {"matmul": m if m != "none" else (root if root != "none" else IEEE),
                "conv": c if c != "none" else (root if root != "none" else TF32)}
    return {"matmul": TF32 if torch.backends.cuda.matmul.allow_tf32 else IEEE,  # pragma: no cover
            "conv": TF32 if torch.backends.cudnn.allow_tf32 else IEEE}


def ensure_exact() -> None:
    """Apply the exact policy once per process (called when a CUDA device is first resolved)."""
    global _applied
    if not _applied:
        set_fp32(IEEE)
        _applied = True


@contextlib.contextmanager
def tf32() -> Iterator[None]:
    """TF32 matmuls and convolutions for the duration (`--autocast tf32`), then the previous state."""
    old = read_fp32()
    set_fp32(TF32)
    try:
        yield
    finally:
        import torch

        if new_api():
            torch.backends.cuda.matmul.fp32_precision = old["matmul"]
            torch.backends.cudnn.conv.fp32_precision = old["conv"]
        else:  # pragma: no cover - torch < 2.9 only
            torch.backends.cuda.matmul.allow_tf32 = old["matmul"] == TF32
            torch.backends.cudnn.allow_tf32 = old["conv"] == TF32


def settings(autocast: str | None = None, device: str | None = None) -> dict:
    """What results.json / sample settings record: fp32 matmul/conv precision, autocast, torch API.

    Without torch imported (a warm-cache run computes nothing on a device) => the policy that
    would apply, marked as not applied.
    """
    import sys

    out: dict = {"autocast": autocast}
    if device is not None:
        out["device"] = device
    if "torch" not in sys.modules:
        return {"fp32_matmul": IEEE, "fp32_conv": IEEE, **out, "api": None, "note": "no network ran"}
    state = read_fp32() if _applied else {"matmul": IEEE, "conv": IEEE}
    api = "fp32_precision" if new_api() else "allow_tf32"
    return {"fp32_matmul": state["matmul"], "fp32_conv": state["conv"], **out, "api": api}
