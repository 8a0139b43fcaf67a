"""The demo's shipped-checkpoint mechanism: the CLI recipe, its record, and installation into a demo run."""
from __future__ import annotations

import json

import pytest

from ambient_eval.demo import pretrained as P
from ambient_eval.demo.settings import MODELS, DemoSettings

TINY = dict(n_train=120, classifier_steps=3, steps=4, batch=8, warmup_steps=1, annotate_grid=4, annotate_draws=1)


def test_recipe_commands_use_the_cli_with_the_demo_settings(tmp_path):
    s = DemoSettings()
    cmds = P.commands(s, tmp_path)
    assert [c[0] for c in cmds] == ["corrupt", "annotate"] + ["train"] * len(MODELS)
    trains = cmds[2:]
    assert all(c[c.index("--steps") + 1] == str(s.steps) and c[c.index("--batch") + 1] == str(s.batch)
               for c in trains)
    assert sum("--only-clean" in c for c in trains) == 2 and sum("ambient-omni" in c for c in trains) == 1
    assert not DemoSettings.quick().pretrained


@pytest.mark.slow
def test_build_then_install_reproduces_the_demo_data(tmp_path):
    """A tiny build with the real CLI; the demo's own data preparation hashes to the recipe's images."""
    from ambient_eval.demo import data as D
    from ambient_eval.models import load_model

    s = DemoSettings(device="cpu", **TINY)
    dest = tmp_path / "checkpoints"
    recipe = P.build(s, dest=dest)
    assert P.available(s, dest) and not P.available(DemoSettings(), dest)
    assert sum(f.stat().st_size for f in dest.iterdir()) < 2_000_000
    assert json.loads((dest / P.RECIPE).read_text())["commands"] == recipe["commands"]
    assert recipe["commands"][0][:2] == ["ambient-eval", "corrupt"] and "WORK" in recipe["commands"][0][4]
    data = D.prepare_data(s, tmp_path / "demo")
    res = P.install(data, tmp_path / "demo", dest)
    assert res is not None, "the demo's training images differ from the recipe's"
    sigma, _, info = res
    assert sigma.shape == (len(data.labels),) and float(sigma[~data.corrupted].max()) == 0.0
    for label, *_ in MODELS:
        model = load_model(tmp_path / "demo" / "train" / label / "final", device="cpu")
        assert model.img_resolution == data.images.shape[-1]
        assert info[label]["shipped"] and (tmp_path / "demo" / "train" / label / "loss.csv").is_file()
    # other images (another corruption seed) are refused: the demo then trains
    other = D.prepare_data(DemoSettings(device="cpu", **{**TINY, "seed": 1}), tmp_path / "demo2")
    assert P.install(other, tmp_path / "demo2", dest) is None
