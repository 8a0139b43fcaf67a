"""Where and how the network ran: device, float32 precision, autocast, network call size.

These change the pixels (GPU vs CPU kernels, TF32, bf16, batch-shape-dependent kernel choices), so
they are part of sample settings (a resumed run must match), of the model-source fingerprint and
hence of feature cache keys: features of CPU- and GPU-sampled images never collide.
"""
from __future__ import annotations

from ambient_eval.runtime import precision
EXECUTION_KEY = "execution"  # key in sample settings / ModelSource.settings()
WHOLE_BATCH = "whole batch"  # net_batch recorded when the network sees each --batch at once


def device_name(dev) -> str:
    """'cpu' | 'cuda (NVIDIA H100 80GB HBM3)': the device type and, on GPUs, the model."""
    if dev.type != "cuda":
        return dev.type
    import torch

    return f"cuda ({torch.cuda.get_device_name(dev)})"


def execution(device, autocast: str | None, net_batch) -> dict:
    """{'device', 'fp32_matmul', 'fp32_conv', 'autocast', 'api', 'net_batch'} for a sampling run."""
    import torch

    from ambient_eval.runtime.device import resolve_device, with_policy
    from ambient_eval.sampling.generate import resolve_net_batch

    dev = resolve_device(device) if isinstance(device, (str, type(None))) else with_policy(torch.device(device))
    nb = resolve_net_batch(net_batch, dev)
    p = precision.settings(autocast)
    return {"device": device_name(dev), **p, "net_batch": nb if nb else WHOLE_BATCH}


def describe(e: dict | None) -> str:
    """One line for messages: 'cpu, fp32 ieee, no autocast, net batch 8'."""
    if not e:
        return "an unrecorded device and precision (written by an older ambient-eval)"
    return (f"{e.get('device')}, float32 matmul {e.get('fp32_matmul')} / conv {e.get('fp32_conv')}, "
            f"autocast {e.get('autocast') or 'off'}, net batch {e.get('net_batch')}")
