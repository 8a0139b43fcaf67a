"""--shards: on-disk shard search equals in-memory search; shards resume; on-disk IVF merges."""
from __future__ import annotations

import numpy as np
import pytest

from ambient_eval.audits import search as S
from ambient_eval.audits import shards as SH
from ambient_eval.audits.memorization_run import MemorizationConfig, run_memorization
from ambient_eval.data import ArraySource
from ambient_eval.errors import AmbientError
from tests.audits.planted import planted_set


def _unit(n, d, seed):
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _write_shards(tmp_path, xb, size):
    files = []
    for i, s in enumerate(range(0, len(xb), size)):
        SH._write_shard(tmp_path, i, xb[s:s + size], "k", s, min(s + size, len(xb)))
        files.append(tmp_path / f"emb-{i:05d}.npy")
    return SH.ShardArray(files)


def test_shard_array_indexing_and_blocks(tmp_path):
    xb = _unit(250, 8, 0)
    arr = _write_shards(tmp_path, xb, 64)
    assert arr.shape == (250, 8) and len(arr.files) == 4
    rows = np.array([0, 63, 64, 130, 249, 5])
    np.testing.assert_array_equal(arr[rows], xb[rows])
    np.testing.assert_array_equal(arr[60:70], xb[60:70])
    np.testing.assert_array_equal(np.concatenate(list(arr.blocks(rows=50))), xb)


@pytest.mark.parametrize("kind", ["flat", "ivf", "ivfpq"])
def test_on_disk_search_equals_in_memory(tmp_path, kind):
    xb, xq = _unit(3000, 32, 1), _unit(50, 32, 2)
    arr = _write_shards(tmp_path, xb, 700)
    ondisk = SH.open_index(arr, kind, tmp_path, {"t": 1}, use_gpu=False)
    mem = S.build_index(S.iter_blocks(xb), 32, kind, nb=len(xb), use_gpu=False,
                        train_x=S.train_sample(xb) if kind != "flat" else None)
    D1, I1 = S.search(ondisk, xq, 5)
    D2, I2 = S.search(mem, xq, 5)
    np.testing.assert_array_equal(I1, I2)
    np.testing.assert_allclose(D1, D2, atol=1e-5)
    if kind != "flat":   # merged on disk, memory-mapped; reopened without rebuilding
        assert (tmp_path / f"{kind}.ivfdata").is_file() and not list(tmp_path.glob("*-part-*"))
        mtime = (tmp_path / f"{kind}.index").stat().st_mtime_ns
        again = SH.open_index(arr, kind, tmp_path, {"t": 1}, use_gpu=False)
        assert (tmp_path / f"{kind}.index").stat().st_mtime_ns == mtime
        np.testing.assert_array_equal(S.search(again, xq, 5)[1], I2)


def test_memorization_with_shards_equals_in_memory_and_resumes(tmp_path):
    train, gen, _ = planted_set()
    models, tr = {"gen": ArraySource(gen)}, ArraySource(train)
    base = MemorizationConfig(embed="pixel", device="cpu", n_boot=10)
    ref = run_memorization(models, tr, base).models[0].table
    cfg = MemorizationConfig(embed="pixel", device="cpu", n_boot=10, shards=str(tmp_path / "sh"), shard_size=37)
    first = run_memorization(models, tr, cfg)
    cols = ["top1_index", "index_2", "index_5"]
    np.testing.assert_array_equal(first.models[0].table[cols].to_numpy(), ref[cols].to_numpy())
    np.testing.assert_allclose(first.models[0].table["sim_3"], ref["sim_3"], atol=1e-6)
    assert first.index["n_shards"] == 6 and first.index["shards_reused"] == 0
    # resumable: valid shards are reused; a corrupted one is re-embedded
    shard = tmp_path / "sh" / "emb-00002.npy"
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF
    shard.write_bytes(bytes(data))
    second = run_memorization(models, tr, cfg)
    assert second.index["shards_reused"] == 5
    np.testing.assert_array_equal(second.models[0].table[cols].to_numpy(), ref[cols].to_numpy())
    # approximate search on shards: recall@1 vs exact is measured and recorded
    ivf = run_memorization(models, tr, MemorizationConfig(embed="pixel", device="cpu", n_boot=10, index="ivf",
                                                          shards=str(tmp_path / "sh"), shard_size=37))
    assert ivf.index["shards_reused"] == 6 and 0.0 <= ivf.index["recall_at_1"] <= 1.0
    assert ivf.index["n_queries"] == len(gen)
    # another training set in the same directory is refused
    with pytest.raises(AmbientError, match="another training set"):
        run_memorization(models, ArraySource(train[:100]), cfg)
    with pytest.raises(AmbientError, match="--shards"):
        run_memorization(models, tr, MemorizationConfig(embed="pixel", shards=str(tmp_path / "x"), index="hnsw"))


def test_cli_shards_and_tta(cli, tmp_path):
    import json

    train, gen, _ = planted_set()
    np.save(tmp_path / "train.npy", train)
    np.save(tmp_path / "gen.npy", gen)
    base = ["memorization", str(tmp_path / "gen.npy"), "--train", str(tmp_path / "train.npy"), "--embed", "pixel",
            "--bootstrap", "10"]
    r = cli([*base, "--shards", str(tmp_path / "sh"), "--shard-size", "64", "--index", "ivf", "--tta", "flip",
             "--nprobe", "2", "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert "recall@1 vs exact" in r.output
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    assert res["settings"]["tta"] == "flip" and res["extra"]["index"]["n_shards"] == 4
    assert res["extra"]["index"]["nprobe"] == 2
    assert "top1_view" in (tmp_path / "out" / "samples.csv").read_text().splitlines()[0]
    bad = cli([*base, "--tta", "rotate", "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "Unknown --tta" in bad.output and "Traceback" not in bad.output
    assert not (tmp_path / "bad" / "results.json").exists()


def test_nprobe_in_memory_and_refused_for_flat():
    train, gen, _ = planted_set()
    models, tr = {"gen": ArraySource(gen)}, ArraySource(train)
    audit = run_memorization(models, tr, MemorizationConfig(embed="pixel", device="cpu", n_boot=10, index="ivf",
                                                            nprobe=1))
    assert audit.index["nprobe"] == 1 and "recall_at_1" in audit.index
    with pytest.raises(AmbientError, match="--nprobe"):
        run_memorization(models, tr, MemorizationConfig(embed="pixel", device="cpu", n_boot=10, nprobe=4))
