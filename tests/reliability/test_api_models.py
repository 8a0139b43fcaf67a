"""Issue 26, item 3: ae.sample / ae.train / ae.annotate / ae.corrupt write what their CLI commands write.

For each command: the CLI, the API result's `.save(...)` and (where the API can write while it works)
`out=` give the same output tree on the same tiny inputs. Files are compared byte for byte, except:
  * .npz: compared member by member on the raw .npy bytes: the zip container stamps each member with
    the time it was written (numpy's savez), nothing else differs;
  * train's loss.csv: the `sec` column (wall-clock seconds since the start of the run) is dropped.
No JSON key is dropped: run.json, corruption.json, the settings record and the annotations header
hold no timestamps. `.to_pandas()` rows are checked against what was written, and the usage examples
in the four functions' docstrings are run.
"""
from __future__ import annotations

import csv
import doctest
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

import ambient_eval as ae
from tests.training.conftest import _one_torch_thread  # noqa: F401  (autouse: tiny CPU models, one thread)

SOURCE = "builtin:digits"


def _content(p: Path):
    if p.suffix == ".npz":
        with zipfile.ZipFile(p) as z:
            return {n: z.read(n) for n in sorted(z.namelist())}
    if p.name == "loss.csv":
        rows = list(csv.DictReader(io.StringIO(p.read_text())))
        assert rows and "sec" in rows[0]
        return [{k: v for k, v in r.items() if k != "sec"} for r in rows]
    return p.read_bytes()


def tree(root: Path) -> dict:
    """relative path -> content of every file under root (or of root itself when it is a file)."""
    if root.is_file():
        return {root.name: _content(root)}
    files = {p.relative_to(root).as_posix(): _content(p) for p in sorted(root.rglob("*")) if p.is_file()}
    assert files, f"{root} is empty"
    return files


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def rows(df) -> list[dict]:
    """DataFrame rows with pandas' missing values as None and numpy scalars as Python ones."""
    return json.loads(df.to_json(orient="records"))


@pytest.fixture(scope="module")
def corrupted(tmp_path_factory) -> Path:
    """12 digits, half blurred, written by the CLI's code path (a folder `train`/`annotate` read)."""
    out = tmp_path_factory.mktemp("src") / "blurred"
    ae.corrupt(SOURCE, "blur", 1.0, fraction=0.5, max_images=12, out=out)
    return out


@pytest.mark.parametrize("kind,level", [("blur", 1.0), ("noise", 0.2), ("label-flip", 0.5)])
def test_corrupt_cli_equals_api(cli, tmp_path, kind, level):
    args = dict(fraction=0.5, max_images=12, seed=3)
    r = cli(["corrupt", SOURCE, "-o", tmp_path / "cli", "--kind", kind, "--level", level, "--fraction", 0.5,
             "--max-images", 12, "--seed", 3])
    assert r.exit_code == 0, r.output
    mem = ae.corrupt(SOURCE, kind, level, **args)
    mem.save(tmp_path / "api")
    streamed = ae.corrupt(SOURCE, kind, level, out=tmp_path / "out", **args)
    want = tree(tmp_path / "cli")
    assert ("observations.npz" in want) == (kind == "noise")
    assert tree(tmp_path / "api") == want
    assert tree(tmp_path / "out") == want
    streamed.save(tmp_path / "copy")                      # a result written with out= copies its folder
    assert tree(tmp_path / "copy") == want
    written = jsonl(tmp_path / "cli" / "corruption.jsonl")
    assert rows(mem.to_pandas()) == written == rows(streamed.to_pandas())
    assert mem.summary == json.loads((tmp_path / "cli" / "corruption.json").read_text())


def test_annotate_cli_equals_api(cli, tmp_path, corrupted):
    opts = dict(steps=2, batch=4, draws=1, grid="0.01,10,4", seed=1)
    r = cli(["annotate", corrupted, corrupted, "-o", tmp_path / "cli.jsonl", "--steps", 2, "--batch", 4,
             "--draws", 1, "--grid", "0.01,10,4", "--seed", 1, "--device", "cpu", "--no-report",
             "--save-classifier", tmp_path / "cli.safetensors"])
    assert r.exit_code == 0, r.output
    ann = ae.annotate(str(corrupted), str(corrupted), device="cpu", save_classifier=True, **opts)
    summary = ann.save(tmp_path / "api.jsonl", classifier=tmp_path / "api.safetensors")
    assert (tmp_path / "api.jsonl").read_bytes() == (tmp_path / "cli.jsonl").read_bytes()
    assert (tmp_path / "api.safetensors").read_bytes() == (tmp_path / "cli.safetensors").read_bytes()
    written = jsonl(tmp_path / "cli.jsonl")
    assert rows(ann.to_pandas()) == written[1:]            # line 1 is the header
    assert summary["n_corrupted"] == written[0]["n_corrupted"] == 6
    with pytest.raises(ae.AmbientError, match="already exists"):
        ann.save(tmp_path / "api.jsonl", classifier=tmp_path / "api.safetensors")
    with pytest.raises(ae.AmbientError, match="pass classifier=PATH"):      # nothing written half-way
        ann.save(tmp_path / "other.jsonl")
    assert not (tmp_path / "other.jsonl").exists()


def test_train_cli_equals_api(cli, tmp_path, corrupted):
    r = cli(["train", corrupted, "-o", tmp_path / "cli", "--arch", "tiny", "--steps", 2, "--batch", 4,
             "--warmup", 1, "--checkpoint-every", 1, "--device", "cpu"])
    assert r.exit_code == 0, r.output
    run = ae.train(str(corrupted), tmp_path / "api", arch="tiny", steps=2, batch=4, warmup=1,
                   checkpoint_every=1, device="cpu")
    want = tree(tmp_path / "cli")
    assert "checkpoints/step-0000001/model.safetensors" in want and "final/model.safetensors" in want
    assert tree(tmp_path / "api") == want
    assert tree(run.save(tmp_path / "copy")) == want
    with pytest.raises(ae.AmbientError, match="not an empty directory"):
        run.save(tmp_path / "cli")
    with open(tmp_path / "api" / "loss.csv", newline="") as f:
        logged = list(csv.DictReader(f))
    df = run.to_pandas()
    assert [{k: str(v) for k, v in r.items()} for r in df.to_dict("records")] == logged
    assert run.summary["end_step"] == 2 and not run.already_complete
    again = ae.train(str(corrupted), tmp_path / "api", arch="tiny", steps=2, batch=4, warmup=1,
                     checkpoint_every=1, device="cpu")
    assert again.already_complete and tree(tmp_path / "api") == want


@pytest.fixture(scope="module")
def class_ckpt(tmp_path_factory) -> Path:
    """A class-conditional (3 classes) tiny U-Net at 8 px, random weights, saved natively."""
    import torch

    from ambient_eval.models import UNetConfig, build_native_model, native_config, save_native

    torch.manual_seed(7)
    cfg = native_config(UNetConfig.tiny(8, label_dim=3))
    model = build_native_model(cfg)
    with torch.no_grad():
        model.net.conv_out.weight.mul_(4.0)      # pixels vary (random init leaves F_x small)
    return save_native(model, tmp_path_factory.mktemp("ckpt") / "tiny", cfg, {"test": True})


@pytest.mark.parametrize("name", ["samples", "samples.npz"])
def test_sample_cli_equals_api(cli, tmp_path, class_ckpt, name):
    r = cli(["sample", class_ckpt, "--seeds", "0-4,7", "--out", tmp_path / "cli" / name, "--steps", 3,
             "--batch", 4, "--device", "cpu"])
    assert r.exit_code == 0, r.output
    opts = dict(steps=3, batch=4, device="cpu")        # --class: the default, EDM's seed-determined rule
    mem = ae.sample(class_ckpt, "0-4,7", **opts)
    assert mem.images.shape == (6, 8, 8, 3) and mem.images.dtype == np.uint8
    written = mem.save(tmp_path / "api" / name)
    streamed = ae.sample(class_ckpt, [0, 1, 2, 3, 4, 7], out=tmp_path / "out" / name, **opts)
    want = tree(tmp_path / "cli" / name)
    assert tree(tmp_path / "api" / name) == want
    assert tree(tmp_path / "out" / name) == want
    for res in (written, streamed):
        df = res.to_pandas()
        assert df["seed"].tolist() == [0, 1, 2, 3, 4, 7] and df["label"].tolist() == mem.labels.tolist()
        np.testing.assert_array_equal(res.load_images(), mem.images)
        if name.endswith(".npz"):
            with np.load(tmp_path / "cli" / name) as z:
                assert z["seeds"].tolist() == df["seed"].tolist() and z["labels"].tolist() == df["label"].tolist()
                np.testing.assert_array_equal(z["images"], mem.images)
        else:
            from PIL import Image

            for f, img in zip(df["file"], mem.images):
                np.testing.assert_array_equal(np.asarray(Image.open(f)), img)
    assert mem.to_pandas()["file"].isna().all()


@pytest.mark.parametrize("name", ["sample", "train", "annotate", "corrupt"])
def test_docstring_example_runs(name, tmp_path, monkeypatch):
    """The usage example in each function's docstring is executed (in an empty folder)."""
    monkeypatch.chdir(tmp_path)
    fn = getattr(ae, name)
    tests = doctest.DocTestFinder().find(fn, name, globs={})
    assert tests and tests[0].examples, f"ae.{name} has no example"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for t in tests:
        runner.run(t)
    assert runner.summarize(verbose=False).failed == 0


@pytest.mark.parametrize("name,result", [("sample", "SampleResult"), ("train", "TrainResult"),
                                         ("annotate", "AnnotateResult"), ("corrupt", "CorruptResult")])
def test_public_names(name, result):
    """ae.NAME is ambient_eval.api.NAME (the function), listed in both __all__, with its result class."""
    import dataclasses

    import ambient_eval.api as api

    assert name in ae.__all__ and name in api.__all__ and result in api.__all__
    assert getattr(ae, name) is getattr(api, name) and callable(getattr(api, name))
    assert dataclasses.is_dataclass(getattr(api, result)) and "Examples:" in getattr(api, name).__doc__
