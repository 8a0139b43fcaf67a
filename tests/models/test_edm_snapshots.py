"""Real-format EDM / EDM2 training snapshots, sampled with nothing of EDM installed."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from PIL import Image

from ambient_eval.errors import AmbientError
from ambient_eval.models import load_model
from ambient_eval.models.edm_pickle import PickledDenoiser
from ambient_eval.sampling.generate import generate
from ambient_eval.sampling.writer import png_path
from tests.models.edm_writer import NET_SRC, write_snapshot

SEEDS = [0, 1, 2, 1001]
STAND_INS = ("torch_utils", "torch_utils.persistence", "torch_utils.misc", "dnnlib", "dnnlib.util")


def _pngs(out, seeds):
    return np.stack([np.asarray(Image.open(png_path(out, s))) for s in seeds])


@pytest.mark.parametrize("label_dim", [0, 5])
def test_edm_training_snapshot_samples_like_the_network_built_directly(cli, tmp_path, label_dim):
    p = tmp_path / "network-snapshot-000200.pkl"
    net = write_snapshot(p, label_dim=label_dim)
    assert not any(name in sys.modules for name in STAND_INS)       # no EDM code anywhere
    args = ["sample", p, "--trust-pickle", "--seeds", "0-2,1001", "--steps", "4", "--device", "cpu"]
    r = cli([*args, "--out", tmp_path / "o"])
    assert r.exit_code == 0, r.stderr
    direct = PickledDenoiser(net).eval()
    ref = torch.cat([x for _, x in generate(direct, SEEDS, batch_size=3, steps=4, device="cpu")])
    got = _pngs(tmp_path / "o", SEEDS)
    assert np.array_equal(got, ref.permute(0, 2, 3, 1).numpy()) and got.std() > 5
    assert not any(name in sys.modules for name in STAND_INS)       # stand-ins removed again
    # The loaded network's blocks share one module (isinstance holds) and carry the weights.
    D = load_model(p, trust_pickle=True, device="cpu")
    blocks = list(D.net.blocks)
    assert type(blocks[0]) is type(blocks[1]) and type(blocks[0]).__module__ == type(D.net).__module__
    assert torch.equal(blocks[1].conv.weight, net.blocks[1].conv.weight)
    # A second snapshot with the same source reuses that module, as EDM's persistence does.
    write_snapshot(tmp_path / "again.pkl", label_dim=label_dim, seed=1)
    D2 = load_model(tmp_path / "again.pkl", trust_pickle=True, device="cpu")
    assert type(D2.net) is type(D.net)


def test_network_whose_code_is_missing_exits_2_naming_it(cli, tmp_path):
    p = tmp_path / "net.pkl"
    write_snapshot(p, net_src=NET_SRC.replace("from torch_utils import misc",
                                              "from torch_utils import misc, training_stats"))
    with pytest.raises(AmbientError, match="training_stats"):
        load_model(p, trust_pickle=True, device="cpu")
    r = cli(["sample", p, "--trust-pickle", "--seeds", "0", "--out", tmp_path / "o", "--device", "cpu"])
    assert r.exit_code == 2 and "training_stats" in r.stderr and not (tmp_path / "o").exists()


def test_snapshot_without_ema_network_exits_2(tmp_path):
    import pickle

    p = tmp_path / "x.pkl"
    p.write_bytes(pickle.dumps({"loss_fn": 1}))
    with pytest.raises(AmbientError, match="holds no network under 'ema'"):
        load_model(p, trust_pickle=True, device="cpu")


def test_network_calling_a_misc_helper_we_lack_exits_2_at_load(cli, tmp_path):
    p = tmp_path / "net.pkl"
    write_snapshot(p, net_src=NET_SRC.replace("misc.const_like(x, self.sigma_data)",
                                              "misc.profiled_constant(x, self.sigma_data)"))
    with pytest.raises(AmbientError, match="torch_utils.misc.profiled_constant"):
        load_model(p, trust_pickle=True, device="cpu")
    r = cli(["sample", p, "--trust-pickle", "--seeds", "0", "--out", tmp_path / "o", "--device", "cpu"])
    assert r.exit_code == 2 and "profiled_constant" in r.stderr and not (tmp_path / "o").exists()
