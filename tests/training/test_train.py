"""Training loop: the loss goes down, resume is bit-exact, checkpoints load, bad input exits 2."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from ambient_eval.training.config import TrainConfig
from ambient_eval.training.dataset import load_train_data
from ambient_eval.training.loop import train

TINY = dict(arch="tiny", batch=8, lr=2e-3, warmup_steps=5, ema_halflife_kimg=0.05)


def _weights(run, name="state.safetensors"):
    return load_file(str(run / name))


def test_tiny_model_loss_decreases(tiny_folder, tmp_path):
    data = load_train_data(tiny_folder)
    res = train(data, TrainConfig(steps=200, checkpoint_every=200, **TINY), tmp_path / "run")
    assert res["finished"] and res["final_loss"] < 0.8 * res["first_loss"], res
    from ambient_eval.models import load_model

    model = load_model(tmp_path / "run" / "final", device="cpu")
    meta = json.loads((tmp_path / "run" / "final" / "config.json").read_text())["metadata"]
    assert meta["method"] == "baseline" and meta["steps"] == 200 and meta["data_fingerprint"] == data.fingerprint
    x = model(torch.zeros(2, 3, 8, 8), torch.tensor([1.0, 1.0]))
    assert x.shape == (2, 3, 8, 8) and torch.isfinite(x).all()


@pytest.mark.parametrize("method,extra", [("baseline", {}), ("ambient-omni", {}), ("cep", {}),
                                          ("ambient-omni", {"ambient_target": "ambient-loss", "batch_order": "walk"})])
def test_resume_after_interruption_is_bit_exact(tiny_folder, tmp_path, method, extra):
    data = load_train_data(tiny_folder)
    sigma_tn = np.where(np.arange(len(data)) % 2 == 0, 0.0, 0.3).astype(np.float32) if method == "ambient-omni" else None
    cfg = TrainConfig(method=method, steps=12, checkpoint_every=4, cond=(method == "cep"), **extra, **TINY)
    full, part = tmp_path / "full", tmp_path / "part"
    train(data, cfg, full, sigma_tn=sigma_tn)
    # "kill" after 6 steps: the last checkpoint is at step 4, steps 5-6 are lost as after a real kill
    r = train(data, cfg, part, sigma_tn=sigma_tn, stop_after=6)
    assert not r["finished"] and json.loads(json.dumps(r))["end_step"] == 6
    r = train(data, cfg, part, sigma_tn=sigma_tn)
    assert r["start_step"] == 4 and r["finished"]
    a, b = _weights(full), _weights(part)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    fa, fb = _weights(full, "final/model.safetensors"), _weights(part, "final/model.safetensors")
    assert all(torch.equal(fa[k], fb[k]) for k in fa)
    rows = (part / "loss.csv").read_text().splitlines()
    assert len(rows) == 13 and [int(r.split(",")[0]) for r in rows[1:]] == list(range(1, 13))


def test_cep_and_noisy_change_training(tiny_folder, tmp_path, cli):
    data = load_train_data(tiny_folder)
    base = TrainConfig(method="baseline", cond=True, steps=3, checkpoint_every=3, **TINY)
    train(data, base, tmp_path / "b")
    from dataclasses import replace

    train(data, replace(base, method="cep"), tmp_path / "c")
    a, c = _weights(tmp_path / "b"), _weights(tmp_path / "c")
    assert any(not torch.equal(a[k], c[k]) for k in a if k.startswith("model."))
    noisy = tmp_path / "noisy"
    assert cli(["corrupt", tiny_folder, "-o", noisy, "--kind", "noise", "--level", "0.2", "--fraction", "1"]).exit_code == 0
    r = cli(["train", noisy, "-o", tmp_path / "n", "--method", "noisy", "--arch", "tiny", "--steps", "3",
             "--batch", "4", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    run = json.loads((tmp_path / "n" / "run.json").read_text())
    assert run["n_corrupted"] == 40 and run["data"].startswith("observations")


def _corrupt_and_annotate(cli, tiny_folder, tmp_path):
    blurred, ann = tmp_path / "blurred", tmp_path / "ann.jsonl"
    assert cli(["corrupt", tiny_folder, "-o", blurred, "--kind", "blur", "--level", "1"]).exit_code == 0
    assert cli(["annotate", blurred, blurred, "-o", ann, "--fixed-sigma", "0.4", "--no-report"]).exit_code == 0
    return blurred, ann


def test_train_cli_ambient_and_clean_only(cli, tiny_folder, tmp_path):
    blurred, ann = _corrupt_and_annotate(cli, tiny_folder, tmp_path)
    base = ["--arch", "tiny", "--steps", "4", "--batch", "4", "--checkpoint-every", "2", "--device", "cpu"]
    r = cli(["train", blurred, "-o", tmp_path / "amb", "--method", "ambient-omni", "--annotations", ann, *base])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "amb" / "checkpoints" / "step-0000002" / "model.safetensors").is_file()
    meta = json.loads((tmp_path / "amb" / "final" / "config.json").read_text())["metadata"]
    assert meta["method"] == "ambient-omni" and meta["annotations_fingerprint"]
    r = cli(["train", blurred, "-o", tmp_path / "co", "--annotations", ann, "--only-clean", *base])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "co" / "run.json").read_text())["n_images"] == 4
    # same command again: already complete; different settings: refused
    r = cli(["train", blurred, "-o", tmp_path / "co", "--annotations", ann, "--only-clean", *base])
    assert r.exit_code == 0 and "already complete" in r.output
    r = cli(["train", blurred, "-o", tmp_path / "co", "--annotations", ann, "--only-clean", *base, "--lr", "0.1"])
    assert r.exit_code == 2 and "different settings" in " ".join(r.output.split())


def _files(p):
    return sorted(str(f.relative_to(p)) for f in p.rglob("*")) if p.exists() else []


def test_train_cli_bad_inputs(cli, tiny_folder, tmp_path):
    blurred, ann = _corrupt_and_annotate(cli, tiny_folder, tmp_path)
    base = ["--arch", "tiny", "--steps", "2", "--batch", "4", "--device", "cpu"]
    run = tmp_path / "run"
    cases = [
        ([blurred, "--method", "magic"], "Unknown method"),
        ([blurred, "--method", "ambient-omni"], "needs --annotations"),
        ([blurred, "--method", "cep"], "--cond"),
        ([blurred, "--method", "noisy"], "--sigma-n"),
    ]
    # annotations for the right count but a different dataset: fingerprint mismatch
    other = tmp_path / "other"
    assert cli(["corrupt", tiny_folder, "-o", other, "--kind", "blur", "--level", "2"]).exit_code == 0
    cases.append(([other, "--method", "ambient-omni", "--annotations", ann], "fingerprint"))
    few = tmp_path / "few"
    few.mkdir()
    for f in sorted(tiny_folder.glob("*.png"))[:10]:
        (few / f.name).write_bytes(f.read_bytes())
    cases.append(([few, "--method", "ambient-omni", "--annotations", ann], "describe 40 samples"))
    bad_ann = tmp_path / "bad.jsonl"
    bad_ann.write_text("not json\n")
    cases.append(([blurred, "--method", "ambient-omni", "--annotations", bad_ann], "Cannot read annotations"))
    # corrupt data: a truncated PNG
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in sorted(tiny_folder.glob("*.png"))[:5]:
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "000002.png").write_bytes((tiny_folder / "000002.png").read_bytes()[:40])
    cases.append(([broken], "000002.png"))
    for args, msg in cases:
        r = cli(["train", args[0], "-o", run, *args[1:], *base])
        assert r.exit_code == 2, (args, r.output)
        assert msg in " ".join(r.output.split()), (msg, r.output)
        assert _files(run) == [], (args, _files(run))


@pytest.mark.parametrize("cmd", ["train", "corrupt", "annotate"])
def test_help(cli, cmd):
    r = cli([cmd, "--help"])
    assert r.exit_code == 0 and "Examples:" in r.output


def test_short_run_loss_summary_compares_disjoint_windows(cli, tiny_folder, tmp_path):
    """Issue 24: under 100 steps the first and last 50 steps overlapped, printing `loss X -> X`."""
    import re

    r = cli(["train", tiny_folder, "-o", tmp_path / "r", "--arch", "tiny", "--steps", "4", "--batch", "4",
             "--device", "cpu"])
    m = re.search(r"loss (\S+) -> (\S+)\.", r.output)
    assert r.exit_code == 0 and m and m.group(1) != m.group(2), r.output
