"""CUDA and faiss-GPU out-of-memory errors become exit 2 naming the size that failed and what to lower.

The real exception types are raised on CPU by stand-ins: torch.OutOfMemoryError (what a CUDA
allocation raises) and faiss-gpu's RuntimeError text (cudaMalloc).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ambient_eval.errors import AmbientError
from ambient_eval.runtime.oom import as_oom_error, is_gpu_oom, oom_guard

TORCH_OOM = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total "
                                   "capacity of 79.11 GiB of which 1.2 GiB is free.")
FAISS_OOM = RuntimeError("Error in virtual void* faiss::gpu::StandardGpuResourcesImpl::allocMemory(...): "
                         "Error: 'err == cudaSuccess' failed: StandardGpuResources: alloc fail type "
                         "FlatData dev 0 space Device stream 0x5 size 4294967296 bytes (cudaMalloc error "
                         "out of memory [2])")


@pytest.mark.parametrize("exc,oom", [(TORCH_OOM, True), (FAISS_OOM, True),
                                     (torch.cuda.OutOfMemoryError("x"), True),
                                     (RuntimeError("CUDA error: out of memory"), True),
                                     (RuntimeError("shape mismatch"), False), (MemoryError(), False),
                                     (AmbientError("CUDA out of memory"), False)])
def test_detection(exc, oom):
    assert is_gpu_oom(exc) is oom
    assert (as_oom_error(exc) is not None) is oom


def test_guard_names_the_size_and_keeps_other_errors():
    with pytest.raises(AmbientError, match=r"while doing 7 things \(CUDA out of memory\..*Lower X"):
        with oom_guard("doing 7 things", "Lower X."):
            raise TORCH_OOM
    with pytest.raises(ValueError):
        with oom_guard("doing 7 things", "Lower X."):
            raise ValueError("not memory")


class _Hungry(torch.nn.Module):
    def forward(self, x, sigma, labels=None):
        raise TORCH_OOM


def test_sampling_network_oom_names_the_network_batch():
    from ambient_eval.sampling.generate import NetCall

    with pytest.raises(AmbientError, match=r"running the network on 8 images of \(3, 4, 4\).*--net-batch"):
        NetCall(_Hungry(), 8, None)(torch.zeros(20, 3, 4, 4), torch.ones(20), None)


def test_feature_extraction_oom_names_the_batch():
    from ambient_eval.features import extract_features, get_extractor
    from tests.features.conftest import array_source

    ex = get_extractor("pixel-8", device="cpu")
    ex._extract = lambda images: (_ for _ in ()).throw(TORCH_OOM)
    images = np.zeros((10, 8, 8, 3), np.uint8)
    with pytest.raises(AmbientError, match=r"pixel.* features of a batch of 4 images.*Lower --batch"):
        extract_features(array_source(images), ex, batch_size=4)


def test_cli_sample_oom_is_exit_2(cli, tiny_ckpt, tmp_path, monkeypatch):
    from ambient_eval.sampling.generate import NetCall

    real_init = NetCall.__init__
    monkeypatch.setattr(NetCall, "__init__", lambda self, d, nb, ac: real_init(self, _Hungry(), nb, ac))
    r = cli(["sample", tiny_ckpt, "--seeds", "0-3", "--steps", "2", "--device", "cpu", "--out", tmp_path / "o"])
    msg = " ".join(r.stderr.split())
    assert r.exit_code == 2 and "Ran out of GPU memory" in msg and "--net-batch" in msg, msg
    assert "Internal error" not in msg


def test_cli_maps_an_unguarded_faiss_oom_to_exit_2():
    from ambient_eval.cli.app import _as_user_error

    user = _as_user_error(FAISS_OOM)
    assert user is not None and user.exit_code == 2 and "GPU memory" in str(user)
