"""The demo's shipped checkpoints: present, small, made by the CLI recipe, matching the demo's data."""
from __future__ import annotations

import json

from ambient_eval.demo import pretrained as P
from ambient_eval.demo.settings import MODELS, DemoSettings


def test_shipped_checkpoints_match_the_default_demo_settings():
    s = DemoSettings()
    assert P.available(s), "ambient_eval/demo/checkpoints is missing or stale: run `make demo-models`"
    files = list(P.CHECKPOINT_DIR.iterdir())
    assert sum(f.stat().st_size for f in files) < 2_000_000
    recipe = json.loads((P.CHECKPOINT_DIR / P.RECIPE).read_text())
    assert recipe["commands"] == [["ambient-eval", *c] for c in P.commands(s, P.Path("WORK"))]
    trains = [c for c in recipe["commands"] if c[1] == "train"]
    assert len(trains) == len(MODELS) and all(str(s.steps) in c for c in trains)
    # another setting (e.g. the quick preset) does not use them
    assert not P.available(DemoSettings.quick()) and not DemoSettings.quick().pretrained


def test_shipped_models_install_into_a_demo_directory(tmp_path):
    """The demo's own data preparation reproduces the recipe's training images bit for bit."""
    from ambient_eval.demo import data as D
    from ambient_eval.models import load_model

    s = DemoSettings(device="cpu")
    data = D.prepare_data(s, tmp_path)
    res = P.install(data, tmp_path)
    assert res is not None, "the demo's training images differ from the recipe's"
    sigma, _, info = res
    assert sigma.shape == (len(data.labels),) and float(sigma[~data.corrupted].max()) == 0.0
    assert float(sigma[data.corrupted].min()) > 0
    for label, *_ in MODELS:
        model = load_model(tmp_path / "train" / label / "final", device="cpu")
        assert model.img_resolution == 8 and info[label]["shipped"]
        assert (tmp_path / "train" / label / "loss.csv").is_file()
