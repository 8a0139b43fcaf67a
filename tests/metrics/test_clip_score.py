"""clipscore against torchmetrics' CLIPScore on identical random weights: one tiny CLIP built in
open_clip, its state dict mapped into a transformers CLIPModel of the same architecture (what
torchmetrics runs), and a CLIP tokenizer built from open_clip's own BPE vocabulary."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from ambient_eval.errors import AmbientError
from tests.conftest import random_images, write_images

pytest.importorskip("torchmetrics")
pytest.importorskip("transformers")

TINY = "ViT-tiny-clipscore-test"
SIZE, WIDTH, TEXT_WIDTH, EMBED = 32, 64, 32, 24
PROMPTS = ["a photo of a cat", "a red car on a street", "two dogs", "an apple", "a small boat at sea",
           "the night sky"]


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """(weights path, open_clip model) of a tiny random QuickGELU ViT CLIP registered with open_clip."""
    import open_clip
    from safetensors.torch import save_file

    d = tmp_path_factory.mktemp("clipscore")
    cfg = {"embed_dim": EMBED, "quick_gelu": True,
           "vision_cfg": {"image_size": SIZE, "layers": 2, "width": WIDTH, "patch_size": 16, "head_width": 32},
           "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": TEXT_WIDTH, "heads": 2, "layers": 2}}
    (d / f"{TINY}.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(d / f"{TINY}.json")
    torch.manual_seed(0)
    model = open_clip.create_model(TINY, pretrained=None, force_quick_gelu=True, pretrained_text=False).eval()
    with torch.no_grad():   # non-trivial norms and embeddings (random init leaves some at 1 / 0)
        for name, p in model.named_parameters():
            if "ln" in name or "positional" in name or "class_embedding" in name:
                p.add_(torch.randn_like(p) * 0.1)
    path = d / "tiny-clip.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path, model, d


def _attn(prefix_hf: str, prefix_oc: str, sd: dict, out: dict) -> None:
    w, b = sd[f"{prefix_oc}.attn.in_proj_weight"], sd[f"{prefix_oc}.attn.in_proj_bias"]
    for name, wi, bi in zip(("q", "k", "v"), w.chunk(3), b.chunk(3)):
        out[f"{prefix_hf}.self_attn.{name}_proj.weight"], out[f"{prefix_hf}.self_attn.{name}_proj.bias"] = wi, bi
    pairs = {"self_attn.out_proj": "attn.out_proj", "layer_norm1": "ln_1", "layer_norm2": "ln_2",
             "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}
    for hf, oc in pairs.items():
        for t in ("weight", "bias"):
            out[f"{prefix_hf}.{hf}.{t}"] = sd[f"{prefix_oc}.{oc}.{t}"]


def hf_clip_from_open_clip(model, tokenizer_dir):
    """transformers CLIPModel + CLIPProcessor holding exactly the open_clip model's tensors."""
    import open_clip
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    sd = model.state_dict()
    config = CLIPConfig(
        text_config=dict(vocab_size=49408, hidden_size=TEXT_WIDTH, intermediate_size=4 * TEXT_WIDTH,
                         num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=77,
                         hidden_act="quick_gelu", eos_token_id=2),   # 2: pool at the argmax token, as open_clip
        vision_config=dict(hidden_size=WIDTH, intermediate_size=4 * WIDTH, num_hidden_layers=2,
                           num_attention_heads=WIDTH // 32, image_size=SIZE, patch_size=16, hidden_act="quick_gelu"),
        projection_dim=EMBED)
    hf = CLIPModel(config).eval()
    m = {"text_model.embeddings.token_embedding.weight": sd["token_embedding.weight"],
         "text_model.embeddings.position_embedding.weight": sd["positional_embedding"],
         "text_model.final_layer_norm.weight": sd["ln_final.weight"], "text_model.final_layer_norm.bias": sd["ln_final.bias"],
         "text_projection.weight": sd["text_projection"].T,
         "vision_model.embeddings.class_embedding": sd["visual.class_embedding"],
         "vision_model.embeddings.patch_embedding.weight": sd["visual.conv1.weight"],
         "vision_model.embeddings.position_embedding.weight": sd["visual.positional_embedding"],
         "vision_model.pre_layrnorm.weight": sd["visual.ln_pre.weight"], "vision_model.pre_layrnorm.bias": sd["visual.ln_pre.bias"],
         "vision_model.post_layernorm.weight": sd["visual.ln_post.weight"],
         "vision_model.post_layernorm.bias": sd["visual.ln_post.bias"],
         "visual_projection.weight": sd["visual.proj"].T, "logit_scale": sd["logit_scale"]}
    for i in range(2):
        _attn(f"text_model.encoder.layers.{i}", f"transformer.resblocks.{i}", sd, m)
        _attn(f"vision_model.encoder.layers.{i}", f"visual.transformer.resblocks.{i}", sd, m)
    missing, unexpected = hf.load_state_dict(m, strict=False)
    assert not unexpected and all("position_ids" in k for k in missing), (missing, unexpected)
    for name in ("get_text_features", "get_image_features"):
        # torchmetrics 1.9 expects transformers 4's tensors; transformers 5 returns an output object
        # whose pooler_output holds the same projected embedding
        fn = getattr(hf, name)
        setattr(hf, name, lambda *a, _fn=fn, **k: (lambda o: o if torch.is_tensor(o) else o.pooler_output)(_fn(*a, **k)))
    # The HF tokenizer files from open_clip's BPE vocabulary (the same OpenAI vocabulary)
    tok = open_clip.tokenizer.SimpleTokenizer()
    special = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}   # HF's names
    (tokenizer_dir / "vocab.json").write_text(json.dumps({special.get(k, k): v for k, v in tok.encoder.items()}))
    merges = sorted(tok.bpe_ranks, key=tok.bpe_ranks.get)
    (tokenizer_dir / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(p) for p in merges) + "\n")
    tokenizer = CLIPTokenizer(str(tokenizer_dir / "vocab.json"), str(tokenizer_dir / "merges.txt"))
    mean, std = list(open_clip.OPENAI_DATASET_MEAN), list(open_clip.OPENAI_DATASET_STD)
    images = CLIPImageProcessor(size={"shortest_edge": SIZE}, crop_size={"height": SIZE, "width": SIZE},
                                image_mean=mean, image_std=std, resample=3)
    return hf, CLIPProcessor(image_processor=images, tokenizer=tokenizer)


def _ours(folder, prompts, path, **kw):
    from ambient_eval import api

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return api.fid(folder, metrics=["clipscore"], prompts=prompts, clip_model=TINY, clip_weights=str(path),
                       device="cpu", cache=False, **kw)


def test_clipscore_equals_torchmetrics(tiny_clip, tmp_path):
    from torchmetrics.functional.multimodal.clip_score import _clip_score_update
    from torchmetrics.multimodal.clip_score import CLIPScore

    path, model, d = tiny_clip
    images = random_images(len(PROMPTS), size=SIZE, seed=5)     # model size: both resizes are the identity
    write_images(tmp_path / "gen", images)
    (tmp_path / "p.txt").write_text("\n".join(PROMPTS) + "\n")
    res = _ours(tmp_path / "gen", tmp_path / "p.txt", path)

    hf, processor = hf_clip_from_open_clip(model, d)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    per_image, _ = _clip_score_update(list(x), PROMPTS, hf, processor)     # 100 * cos per pair
    per_image = per_image.detach().double().numpy()
    want = np.maximum(per_image, 0).mean()
    assert res.metrics["clipscore"] == pytest.approx(want, rel=1e-5)
    assert (per_image > 1).sum() >= 2 and (per_image < -1).sum() >= 1     # both sides of the clip exercised
    # torchmetrics' CLIPScore module clips the mean, not each pair: compare it on the pairs with cos > 0
    keep = np.flatnonzero(per_image > 0)
    write_images(tmp_path / "pos", images[keep])
    (tmp_path / "pos.txt").write_text("\n".join(PROMPTS[i] for i in keep) + "\n")
    metric = CLIPScore(model_name_or_path=lambda: (hf, processor))
    metric.update(list(x[keep]), [PROMPTS[i] for i in keep])
    pos = _ours(tmp_path / "pos", tmp_path / "pos.txt", path)
    assert pos.metrics["clipscore"] == pytest.approx(float(metric.compute()), rel=1e-5)
    per = res.settings["per_metric"]["clipscore"]
    assert per["model"] == TINY and per["n_prompts"] == len(PROMPTS) and res.inputs["reference"]["type"] == "none"


def test_clipscore_scores_are_per_image_clipped():
    from ambient_eval.metrics.clip_score import clip_scores

    a = np.array([[1.0, 0.0], [1.0, 0.0]])
    b = np.array([[1.0, 1.0], [-1.0, 0.2]])
    np.testing.assert_allclose(clip_scores(a, b), [100 / np.sqrt(2), 0.0])


@pytest.mark.parametrize("prompts, match", [(None, "--prompts FILE"), (["one", "two"], "holds 2 prompts for 3")])
def test_clipscore_refuses_missing_or_miscounted_prompts(tiny_clip, tmp_path, prompts, match):
    write_images(tmp_path / "gen", random_images(3, size=SIZE, seed=1))
    with pytest.raises(AmbientError, match=match):
        _ours(tmp_path / "gen", prompts, tiny_clip[0])


def test_read_prompts_txt_and_csv(tmp_path):
    from ambient_eval.data.prompts import PromptRow, read_prompts

    (tmp_path / "a.txt").write_text("a cat\n\n a dog \n")
    (tmp_path / "b.csv").write_text("prompt,seed\na cat,3\n\"a dog, big\",\n")
    assert read_prompts(tmp_path / "a.txt") == [PromptRow("a cat"), PromptRow("a dog")]
    assert read_prompts(tmp_path / "b.csv") == [PromptRow("a cat", 3), PromptRow("a dog, big")]
    with pytest.raises(AmbientError, match="'prompt' column"):
        (tmp_path / "c.csv").write_text("text\nx\n")
        read_prompts(tmp_path / "c.csv")


def test_clipscore_cli_without_reference(tiny_clip, tmp_path, cli):
    write_images(tmp_path / "gen", random_images(3, size=SIZE, seed=2))
    (tmp_path / "p.txt").write_text("a\nb\nc\n")
    r = cli(["fid", tmp_path / "gen", "--metrics", "clipscore", "--prompts", tmp_path / "p.txt", "--clip-model", TINY,
             "--clip-weights", tiny_clip[0], "--no-report", "--no-cache", "--device", "cpu", "--out", tmp_path / "o"])
    assert r.exit_code == 0, r.output
    saved = json.loads((tmp_path / "o" / "results.json").read_text())
    assert "clipscore" in saved["metrics"] and saved["settings"]["per_metric"]["clipscore"]["model"] == TINY
    bad = cli(["fid", tmp_path / "gen", "--metrics", "clipscore", "--prompts", tmp_path / "missing.txt",
               "--clip-model", TINY, "--clip-weights", tiny_clip[0], "--no-report"])
    assert bad.exit_code == 2 and "Cannot read prompt file" in bad.output and "missing.txt" in bad.output
