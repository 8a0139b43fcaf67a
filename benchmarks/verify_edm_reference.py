"""Compare `ambient-eval sample` with NVlabs/edm's generate.py and NVlabs/edm2's generate_images.

Needs local checkouts of the reference code (never vendored here; they are non-commercial):

    python benchmarks/verify_edm_reference.py --edm ~/src/edm --edm2 ~/src/edm2 --work /tmp/edmcheck

Phase 1, in a child process with the checkout on PYTHONPATH: build tiny random-weight networks with
the checkout's own classes, save them as its training loop does (EDM: {'ema', 'loss_fn',
'augment_pipe', 'dataset_kwargs'}; EDM2: an EasyDict with a float16 'ema', 'encoder',
'dataset_kwargs', 'loss_fn'), and generate PNGs with the checkout's samplers and per-seed
StackedRandomGenerator (EDM: generate.py's edm_sampler and its main() batch logic; EDM2:
generate_images.generate_images, latent models decoded by its StabilityVAEEncoder with the VAE
loader pointed at a tiny random diffusers AutoencoderKL saved locally).
EDM2 guidance: generate_images(net, gnet=PKL, guidance=W) with an unconditional gnet (classifier-free
guidance) and a smaller conditional gnet (autoguidance); ours with --gnet PKL --guidance W.
Phase 2, in a child process WITHOUT the checkout: `ambient-eval sample MODEL --trust-pickle` with the
same seeds / steps / churn / class, and a byte comparison of every PNG. CPU, 5-15 minutes.
Not part of the test suite (it needs the reference code).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

SEEDS = list(range(8))
SETTINGS = {
    "det": {},
    "churn": dict(S_churn=40, S_min=0.05, S_max=50, S_noise=1.003),
    "det-s1": dict(sigma_max=1.0),
    "churn-s1": dict(sigma_max=1.0, S_churn=40, S_min=0.05, S_max=0.5, S_noise=1.003),
}

EDM_CHILD = textwrap.dedent('''
    import copy, json, os, pickle, sys
    import numpy as np, torch, PIL.Image
    import dnnlib
    from training import networks, augment, loss
    from generate import edm_sampler, StackedRandomGenerator
    out, settings, seeds = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
    song = dict(model_type='SongUNet', embedding_type='positional', encoder_type='standard', decoder_type='standard',
                channel_mult_noise=1, resample_filter=[1, 1], model_channels=16, channel_mult=[1, 2], num_blocks=1,
                attn_resolutions=[4], dropout=0.1)
    ncsn = dict(song, embedding_type='fourier', encoder_type='residual', channel_mult_noise=2, resample_filter=[1, 3, 3, 1])
    adm = dict(model_type='DhariwalUNet', model_channels=32, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[4], dropout=0.1)
    configs = {'edm-ddpmpp-uncond': ('EDMPrecond', 0, song), 'vp-ddpmpp-cond': ('VPPrecond', 10, song),
               've-ncsnpp-uncond': ('VEPrecond', 0, ncsn), 'edm-adm-cond': ('EDMPrecond', 10, adm),
               'iddpm-adm-uncond': ('iDDPMPrecond', 0, adm)}
    manifest = []
    for k, (name, (precond, label_dim, kw)) in enumerate(configs.items()):
        torch.manual_seed(k)
        net = getattr(networks, precond)(img_resolution=8, img_channels=3, label_dim=label_dim, augment_dim=9, **kw)
        with torch.no_grad():                      # EDM zero-initialises output layers
            for p in net.parameters():
                p.add_(torch.randn_like(p) * 0.05)
        data = dict(ema=net, loss_fn=loss.EDMLoss(), augment_pipe=augment.AugmentPipe(p=0.12, xflip=1e8, yflip=1, scale=1),
                    dataset_kwargs=dict(class_name='training.dataset.ImageFolderDataset', path='x.zip'))
        for key, value in data.items():            # as EDM's training loop snapshots
            if isinstance(value, torch.nn.Module):
                data[key] = copy.deepcopy(value).eval().requires_grad_(False).cpu()
        pkl = os.path.join(out, name + '.pkl')
        with open(pkl, 'wb') as f:
            pickle.dump(data, f)
        net = data['ema']
        for sname, skw in settings.items():
            for cls in ([None, 3] if label_dim else [None]):
                for mb in (8, 3):                  # EDM batch sizes; ours always --batch 8
                    tag = f'{name}__{sname}__class{cls}__edmbatch{mb}'
                    for batch_seeds in torch.as_tensor(seeds).tensor_split((len(seeds) - 1) // mb + 1):
                        rnd = StackedRandomGenerator(torch.device('cpu'), batch_seeds)
                        n = len(batch_seeds)
                        latents = rnd.randn([n, net.img_channels, net.img_resolution, net.img_resolution])
                        labels = None
                        if net.label_dim:
                            labels = torch.eye(net.label_dim)[rnd.randint(net.label_dim, size=[n])]
                        if cls is not None:
                            labels[:, :] = 0
                            labels[:, cls] = 1
                        with torch.no_grad():
                            x = edm_sampler(net, latents, labels, randn_like=rnd.randn_like, num_steps=18, **skw)
                        imgs = (x * 127.5 + 128).clip(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
                        os.makedirs(os.path.join(out, 'ref', tag), exist_ok=True)
                        for s, im in zip(batch_seeds.tolist(), imgs):
                            PIL.Image.fromarray(im, 'RGB').save(os.path.join(out, 'ref', tag, f'{s:06d}.png'))
                    manifest.append(dict(tag=tag, pkl=pkl, cls=cls, steps=18, **skw))
    json.dump(manifest, open(os.path.join(out, 'manifest.json'), 'w'), indent=1)
''')

EDM2_CHILD = textwrap.dedent('''
    import copy, json, os, pickle, sys
    import torch
    torch.distributed.barrier = lambda *a, **k: None    # single process
    import dnnlib
    from training import networks_edm2, encoders
    import generate_images as g2
    from diffusers import AutoencoderKL
    out, settings, seeds = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
    guided_only = len(sys.argv) > 4 and sys.argv[4] == 'guided-only'
    torch.manual_seed(0)
    vae_dir = os.path.join(out, 'vae')
    AutoencoderKL(down_block_types=('DownEncoderBlock2D',) * 2, up_block_types=('UpDecoderBlock2D',) * 2,
                  block_out_channels=(8, 16), layers_per_block=1, latent_channels=4, norm_num_groups=4,
                  sample_size=16).save_pretrained(vae_dir)
    encoders.load_stability_vae = lambda vae_name, device=torch.device('cpu'): \\
        AutoencoderKL.from_pretrained(vae_dir).eval().requires_grad_(False).to(device)
    unet = dict(model_channels=32, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[4], logvar_channels=16)
    configs = {'edm2-pixel-cond': (3, 10, 'rgb'), 'edm2-pixel-uncond': (3, 0, None),
               'edm2-latent-cond': (4, 10, 'vae'), 'edm2-latent-uncond': (4, 0, 'vae'),
               'edm2-pixel-cond-xs': (3, 10, 'rgb'), 'edm2-pixel-uncond-xs': (3, 0, None)}  # -xs: autoguidance gnets
    guided = [('edm2-pixel-cond', 'edm2-pixel-uncond', 1.4), ('edm2-pixel-cond', 'edm2-pixel-cond-xs', 2.1),
              ('edm2-latent-cond', 'edm2-latent-uncond', 1.7), ('edm2-pixel-uncond', 'edm2-pixel-uncond-xs', 2.85)]
    manifest = []
    for k, (name, (ch, label_dim, enc)) in enumerate(configs.items()):
        torch.manual_seed(k)
        net = networks_edm2.Precond(img_resolution=8, img_channels=ch, label_dim=label_dim,
                                    **dict(unet, model_channels=16 if name.endswith('-xs') else 32))
        with torch.no_grad():                      # EDM2 zero-initialises the gains
            net.unet.out_gain.fill_(0.7)
            for n_, p in net.named_parameters():
                if n_.endswith('emb_gain'):
                    p.fill_(0.3)
        encoder = {'rgb': encoders.StandardRGBEncoder(), 'vae': encoders.StabilityVAEEncoder(), None: None}[enc]
        data = dnnlib.EasyDict(encoder=encoder, dataset_kwargs=dnnlib.EasyDict(path='x.zip'), loss_fn=None)
        data.ema = copy.deepcopy(net).cpu().eval().requires_grad_(False).to(torch.float16)
        if enc is None:
            del data['encoder']                    # also: a snapshot without an encoder record
        pkl = os.path.join(out, name + '.pkl')
        with open(pkl, 'wb') as f:
            pickle.dump(data, f)
        if guided_only or name.endswith('-xs'):
            continue
        for sname, skw in settings.items():
            for cls in ([None, 3] if label_dim else [None]):
                for steps in ((18, 32) if sname == 'churn-s1' else (18,)):
                    tag = f'{name}__{sname}__class{cls}__steps{steps}'
                    for _ in g2.generate_images(pkl, outdir=os.path.join(out, 'ref', tag), seeds=seeds, class_idx=cls,
                                                max_batch_size=8, device=torch.device('cpu'), num_steps=steps,
                                                verbose=False, **skw):
                        pass
                    manifest.append(dict(tag=tag, pkl=pkl, cls=cls, steps=steps,
                                         vae=vae_dir if enc == 'vae' else None, **skw))
    for name, gname, w in guided:                   # generate_images(net, gnet=..., guidance=W)
        pkl, gpkl = (os.path.join(out, n + '.pkl') for n in (name, gname))
        for sname in ('det', 'churn'):
            skw = settings[sname]
            for cls in ([None, 3] if configs[name][1] else [None]):
                tag = f'{name}__gnet-{gname}__w{w}__{sname}__class{cls}'
                for _ in g2.generate_images(pkl, gnet=gpkl, guidance=w, outdir=os.path.join(out, 'ref', tag),
                                            seeds=seeds, class_idx=cls, max_batch_size=8,
                                            device=torch.device('cpu'), num_steps=18, verbose=False, **skw):
                    pass
                manifest.append(dict(tag=tag, pkl=pkl, cls=cls, steps=18, gnet=gpkl, guidance=w,
                                     vae=vae_dir if configs[name][2] == 'vae' else None, **skw))
    json.dump(manifest, open(os.path.join(out, 'manifest.json'), 'w'), indent=1)
''')


def run_reference(child_src: str, checkout: Path, out: Path, guided_only: bool = False) -> None:
    out.mkdir(parents=True, exist_ok=True)
    script = out / "reference_child.py"
    script.write_text(child_src)
    env = dict(os.environ, PYTHONPATH=str(checkout))
    subprocess.run([sys.executable, str(script), str(out), json.dumps(SETTINGS), json.dumps(SEEDS),
                    "guided-only" if guided_only else "all"], check=True, cwd=str(checkout), env=env)


def compare(out: Path, repo: Path) -> int:
    import numpy as np
    from PIL import Image

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(repo)                    # our code only: no reference code importable
    bad = 0
    for m in json.loads((out / "manifest.json").read_text()):
        mine = out / "ours" / m["tag"]
        shutil.rmtree(mine, ignore_errors=True)
        cmd = [sys.executable, "-m", "ambient_eval", "sample", m["pkl"], "--trust-pickle", "--seeds",
               f"{SEEDS[0]}-{SEEDS[-1]}", "--batch", "8", "--steps", str(m["steps"]), "--device", "cpu",
               "--out", str(mine)]
        for k in ("sigma_max", "S_churn", "S_min", "S_max", "S_noise"):
            if k in m:
                cmd += [f"--{k.replace('_', '-')}", str(m[k])]
        if m.get("cls") is not None:
            cmd += ["--class", str(m["cls"])]
        if m.get("vae"):
            cmd += ["--vae", m["vae"]]
        if m.get("gnet"):
            cmd += ["--gnet", m["gnet"], "--guidance", str(m["guidance"])]
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd="/")
        if r.returncode:
            print(f"{m['tag']}: exit {r.returncode}\n{r.stderr[-1000:]}")
            bad += 1
            continue
        diffs = []
        for s in SEEDS:
            a = np.asarray(Image.open(out / "ref" / m["tag"] / f"{s:06d}.png")).astype(int)
            b = np.asarray(Image.open(mine / "000000" / f"{s:06d}.png")).astype(int)
            diffs.append(int(np.abs(a - b).max()) if a.shape == b.shape else f"shape {a.shape}/{b.shape}")
        ok = all(d == 0 for d in diffs)
        bad += not ok
        print(f"{m['tag']}: {'byte-identical' if ok else f'DIFFERENT, max |diff| per seed {diffs}'}")
    return bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--edm", type=Path, help="local checkout of NVlabs/edm")
    ap.add_argument("--edm2", type=Path, help="local checkout of NVlabs/edm2")
    ap.add_argument("--work", type=Path, default=Path("edm-verification"), help="scratch folder")
    ap.add_argument("--guided-only", action="store_true", help="EDM2: only the --gnet/--guidance cases")
    a = ap.parse_args()
    repo = Path(__file__).resolve().parents[1]
    bad = 0
    for flag, checkout, child in (("edm", a.edm, EDM_CHILD), ("edm2", a.edm2, EDM2_CHILD)):
        if checkout is None:
            continue
        out = (a.work / flag).resolve()
        run_reference(child, checkout.resolve(), out, a.guided_only and flag == "edm2")
        bad += compare(out, repo)
    print(f"mismatching cases: {bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
