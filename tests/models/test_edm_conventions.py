"""How pickled EDM / EDM2 networks are called, as EDM's and EDM2's own samplers call them.

Both were found by comparing against the reference code (docs/verification-edm.md): the noise level
goes to the network once per batch (a scalar), and EDM2 snapshots use EDM2's sampler convention.
"""
from __future__ import annotations

from ambient_eval.models import load_model
from ambient_eval.sampling.edm2_sampler import convention
from ambient_eval.sampling.generate import generate
from tests.models.edm_writer import write_snapshot


def test_network_gets_one_noise_level_per_batch(tmp_path):
    # EDM's sampler passes sigma as a scalar; per-row sigmas run the nets' embedding MLP as a batch-N
    # GEMM, whose last-bit rounding differs and flipped pixels against EDM's generate.py.
    p = tmp_path / "network-snapshot.pkl"
    write_snapshot(p, label_dim=3)
    D = load_model(p, trust_pickle=True, device="cpu")
    seen = []
    D.net.register_forward_pre_hook(lambda mod, args: seen.append(tuple(args[1].shape)))
    for _ in generate(D, [0, 1, 2, 3, 4], batch_size=3, steps=3, device="cpu"):
        pass
    assert seen and set(seen) == {(1,)}


def test_edm2_snapshots_use_edm2_sampler_convention(tmp_path):
    write_snapshot(tmp_path / "edm.pkl")
    assert convention(load_model(tmp_path / "edm.pkl", trust_pickle=True, device="cpu")) == "edm"
    # EDM2's training loop always saves an 'encoder' entry (StandardRGBEncoder for pixel models).
    write_snapshot(tmp_path / "edm2.pkl", encoder_vae="unused", encoder_class="StandardRGBEncoder")
    D2 = load_model(tmp_path / "edm2.pkl", trust_pickle=True, device="cpu")
    assert convention(D2) == "edm2" and getattr(D2, "decoder", None) is None
