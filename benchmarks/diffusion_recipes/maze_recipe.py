"""Recipe research for the tiny pixel-space MMDiT on maze level "8" (8x8 mazes drawn at 64 px).

Standalone on purpose (does not import diffthinker.diffusion): diffusers' QwenImageTransformer2DModel configured
tiny, one token per 8x8 px maze cell, the problem image's tokens concatenated after the noisy tokens (in-context
editing), a learned prompt embedding in place of a text encoder. Flow matching x_t = (1-s) x0 + s eps, Euler
sampling from the model's x0 estimate. Every lever of docs/diffusion_recipe_notes.md is a flag; runs are seeded.

Evaluation: the real puzzle layer on fresh seeded mazes never used for training (eval seeds 0..N-1 of level "8";
training seeds start at 10**7): task.verify(inst, task.parse(image, inst)).correct, one sample, K Euler steps.
Training time excludes evaluation time. Prints one JSON line per evaluation and a RESULT line at the end.

  python benchmarks/diffusion_recipes/maze_recipe.py --minutes 8 --eval-at 4,8 --pred delta --path-weight 10
"""
from __future__ import annotations

import argparse
import json
import math
import random
import time

import numpy as np
import torch
from diffusers import QwenImageTransformer2DModel

from diffthinker.tasks import get_task

CS = 8  # pixels per maze cell = patch size
TASK = get_task("maze")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=8.0, help="training wall time (evaluation excluded)")
    p.add_argument("--eval-at", default="4,8", help="comma list of training minutes at which to evaluate")
    p.add_argument("--max-steps", type=int, default=0,
                   help="step budget instead of wall time (fair under CPU contention); --eval-at is then in steps "
                        "and the cosine schedule runs over steps")
    p.add_argument("--eval-n", type=int, default=100)
    p.add_argument("--level", default="8", help="maze level trained (after any curriculum) and evaluated; "
                   "4 or 6 give a fast proxy where levers show an effect within minutes")
    p.add_argument("--eval-steps", default="20", help="comma list of Euler step counts used at each evaluation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    # model
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--head-dim", type=int, default=32)
    p.add_argument("--prompt-tokens", type=int, default=1)
    p.add_argument("--zero-cond-t", action="store_true", help="modulate the problem tokens with timestep 0")
    # objective
    p.add_argument("--pred", choices=["x0", "velocity", "delta"], default="x0",
                   help="x0: model output is x0; velocity: eps - x0; delta: x0 = cond + output")
    p.add_argument("--path-weight", type=float, default=1.0,
                   help="per-token loss weight of tokens whose solution patch differs from the problem patch")
    p.add_argument("--t-dist", choices=["logit_normal", "uniform"], default="logit_normal")
    p.add_argument("--t-mean", type=float, default=0.0, help="logit-normal mean (positive = more high noise)")
    p.add_argument("--t-std", type=float, default=1.0)
    p.add_argument("--shift", type=float, default=1.0, help="SD3 shift applied to sampled training sigmas")
    p.add_argument("--sample-shift", type=float, default=1.0, help="shift applied to the Euler sampling sigmas")
    # optimisation
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=0, help="linear warmup steps")
    p.add_argument("--schedule", choices=["const", "cosine"], default="const",
                   help="cosine: decays to --lr-min over the wall-time budget (time-based)")
    p.add_argument("--lr-min", type=float, default=0.0)
    p.add_argument("--wd", type=float, default=0.0)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--ema", type=float, default=0.0, help="EMA decay for evaluation weights (0 = off)")
    # data
    p.add_argument("--pool", type=int, default=0, help="pre-generate this many training pairs per size (0 = fresh)")
    p.add_argument("--curriculum", default="", help="e.g. '4:1,6:2': minutes on 4x4 then 6x6 before 8x8")
    p.add_argument("--mix-small", type=float, default=0.0,
                   help="after the curriculum, fraction of batches still drawn from the small levels")
    p.add_argument("--pixel-weight", type=float, default=1.0,
                   help="per-pixel loss weight of pixels whose solution value differs from the problem image")
    p.add_argument("--dump", default="", help="write a PNG of the first 8 eval samples per evaluation (prefix)")
    p.add_argument("--save", default="", help="save final weights (safetensors) here, under /tmp")
    return p.parse_args(argv)


# ---------------------------------------------------------------------------------------------------- data
def to_tok(img, n):  # PIL (8n x 8n) -> (n*n, 3*CS*CS) in [-1, 1]
    a = torch.from_numpy(np.asarray(img, np.float32) / 127.5 - 1).permute(2, 0, 1)
    return a.reshape(3, n, CS, n, CS).permute(1, 3, 0, 2, 4).reshape(n * n, 3 * CS * CS)


def from_tok(t, n):  # (n*n, 3*CS*CS) -> PIL
    from PIL import Image
    a = t.reshape(n, n, 3, CS, CS).permute(2, 0, 3, 1, 4).reshape(3, n * CS, n * CS)
    return Image.fromarray(((a.clamp(-1, 1) + 1) * 127.5).round().permute(1, 2, 0).numpy().astype(np.uint8))


def pair(level, seed):
    inst = TASK.generate(level, seed)
    n = inst.n
    return to_tok(TASK.render(inst, size=CS * n), n), to_tok(TASK.render(inst, TASK.solve(inst), size=CS * n), n)


class Data:
    """Training pairs from seeds >= 10**7 (eval uses 0..eval_n-1): fresh each batch, or a fixed pre-generated pool."""

    def __init__(self, args):
        self.args, self.rng, self.next_seed, self.pools = args, random.Random(args.seed + 1), 10 ** 7, {}
        self.gen_time = 0.0

    def _fresh(self, level):
        s = self.next_seed
        self.next_seed += 1
        return pair(level, s)

    def batch(self, level, bs):
        t = time.time()
        if self.args.pool:
            if level not in self.pools:
                self.pools[level] = [self._fresh(level) for _ in range(self.args.pool)]
            items = [self.pools[level][self.rng.randrange(self.args.pool)] for _ in range(bs)]
        else:
            items = [self._fresh(level) for _ in range(bs)]
        self.gen_time += time.time() - t
        return torch.stack([a for a, _ in items]), torch.stack([b for _, b in items])


# ---------------------------------------------------------------------------------------------------- model
class Denoiser(torch.nn.Module):
    def __init__(self, args):
        super().__init__()
        hd = args.head_dim
        # rope axes must sum to the head dim: (frame, row, col)
        a = hd // 4
        axes = (hd - 2 * ((hd - a) // 2), (hd - a) // 2, (hd - a) // 2)
        self.m = QwenImageTransformer2DModel(
            patch_size=1, in_channels=3 * CS * CS, out_channels=3 * CS * CS, num_layers=args.layers,
            attention_head_dim=hd, num_attention_heads=args.heads, joint_attention_dim=32, axes_dims_rope=axes,
            zero_cond_t=args.zero_cond_t)
        self.txt = torch.nn.Parameter(torch.randn(1, args.prompt_tokens, 32) * 0.02)
        self.pred = args.pred

    def forward(self, xt, cond, sig, n):
        """Raw output for the noisy tokens (B, n*n, C)."""
        b, g = xt.shape[0], n * n
        out = self.m(hidden_states=torch.cat([xt, cond], 1),
                     encoder_hidden_states=self.txt.expand(b, -1, -1),
                     encoder_hidden_states_mask=torch.ones(b, self.txt.shape[1], dtype=torch.long),
                     timestep=sig, img_shapes=[[(1, n, n), (1, n, n)]] * b).sample
        return out[:, :g]

    def x0(self, xt, cond, sig, n):
        out = self(xt, cond, sig, n)
        if self.pred == "x0":
            return out
        if self.pred == "delta":
            return cond + out
        return xt - sig[:, None, None] * out  # velocity v = eps - x0 ; x_t = x0 + s v


def shift_sigma(s, shift):
    return shift * s / (1 + (shift - 1) * s) if shift != 1 else s


def sample_sigma(args, bs, g):
    if args.t_dist == "uniform":
        s = torch.rand(bs, generator=g)
    else:
        s = torch.sigmoid(args.t_mean + args.t_std * torch.randn(bs, generator=g))
    return shift_sigma(s, args.shift).clamp(1e-4, 1.0)


def loss_fn(model, cond, x0, args, g, n):
    bs = x0.shape[0]
    sig = sample_sigma(args, bs, g)
    eps = torch.randn(x0.shape, generator=g)
    s = sig[:, None, None]
    xt = (1 - s) * x0 + s * eps
    out = model(xt, cond, sig, n)
    if args.pred == "x0":
        target = x0
    elif args.pred == "delta":
        target = x0 - cond
    else:
        target = eps - x0
    sq = (out - target) ** 2
    if args.pixel_weight != 1.0:
        pw = 1 + (args.pixel_weight - 1) * ((x0 - cond).abs() > 1e-3).float()
        sq = sq * pw / pw.mean()
    err = sq.mean(-1)  # per token (B, G)
    if args.path_weight != 1.0:
        changed = ((x0 - cond).abs().amax(-1) > 1e-3).float()
        w = 1 + (args.path_weight - 1) * changed
        return (err * w).sum() / w.sum()
    return err.mean()


# ---------------------------------------------------------------------------------------------------- eval
def make_eval(n_items, level="8"):
    insts = [TASK.generate(level, s) for s in range(n_items)]
    n = insts[0].n
    cond = torch.stack([to_tok(TASK.render(i, size=CS * n), n) for i in insts])
    paths = []
    for i in insts:
        cells = {tuple(c) for c in TASK.shortest_path(i)}
        paths.append(cells)
    return insts, cond, paths


@torch.no_grad()
def evaluate(model, ev, steps, args):
    insts, cond, paths = ev
    n = insts[0].n
    model.eval()
    g = torch.Generator().manual_seed(1234)
    x = torch.randn(cond.shape, generator=g)
    sigs = shift_sigma(torch.linspace(1, 0, steps + 1), args.sample_shift)
    for i in range(steps):
        s = sigs[i].repeat(x.shape[0])
        x0h = model.x0(x, cond, s, n).clamp(-1, 1)
        x = x0h if sigs[i + 1] == 0 else x + (sigs[i + 1] - sigs[i]) * (x - x0h) / sigs[i]
    model.train()
    if args.dump:
        from PIL import Image
        px = CS * n
        strip = Image.new("RGB", (px * 8, 2 * px))
        for k in range(8):
            strip.paste(from_tok(cond[k], n), (px * k, 0))
            strip.paste(from_tok(x[k], n), (px * k, px))
        evaluate.count = getattr(evaluate, "count", 0) + 1
        strip.resize((px * 8 * 3, 2 * px * 3), Image.NEAREST).save(f"{args.dump}_{evaluate.count}_{steps}.png")
    ok = exact_cells = 0
    cell_err = 0.0
    n_red = 0
    for k, inst in enumerate(insts):
        img = from_tok(x[k], n)
        ok += int(TASK.verify(inst, TASK.parse(img, inst)).correct)
        a = np.asarray(img).astype(int)
        red = (a[..., 0] > 150) & (a[..., 1] < 100) & (a[..., 2] < 100)
        on = {(r, c) for r in range(n) for c in range(n) if red[r * 8 + 2:r * 8 + 6, c * 8 + 2:c * 8 + 6].mean() > 0.3}
        exact_cells += int(on == paths[k])
        cell_err += len(on ^ paths[k])
        n_red += len(on)
    return ok / len(insts), exact_cells / len(insts), cell_err / len(insts), n_red / len(insts)


# ---------------------------------------------------------------------------------------------------- main
def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    model = Denoiser(args)
    nparam = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), args.lr, weight_decay=args.wd)
    ema = None
    if args.ema:
        ema = Denoiser(args)
        ema.load_state_dict(model.state_dict())
        ema.requires_grad_(False)
    data = Data(args)
    ev = make_eval(args.eval_n, args.level)
    eval_at = [float(x) for x in args.eval_at.split(",") if x]
    eval_steps = [int(x) for x in args.eval_steps.split(",")]
    curriculum = []  # (end_minute, level)
    t_acc = 0.0
    for item in [c for c in args.curriculum.split(",") if c]:
        lvl, mins = item.split(":")
        t_acc += float(mins)
        curriculum.append((t_acc, lvl))
    budget = args.minutes * 60
    train_time, step, losses, curve = 0.0, 0, [], []
    print(json.dumps(dict(config=vars(args), params=nparam)), flush=True)
    while True:
        minute = train_time / 60
        clock = step if args.max_steps else minute
        done = step >= args.max_steps if args.max_steps else train_time >= budget
        if eval_at and clock >= eval_at[0] or done:
            while eval_at and clock >= eval_at[0]:
                eval_at.pop(0)
            em = ema if ema is not None else model
            row = dict(minute=round(minute, 2), step=step, steps_per_s=round(step / max(train_time, 1e-9), 3),
                       loss=round(float(np.mean(losses[-50:])), 5) if losses else None,
                       data_share=round(data.gen_time / max(train_time, 1e-9), 3))
            te = time.time()
            for k in eval_steps:
                acc, cells, err, nred = evaluate(em, ev, k, args)
                row[f"red@{k}"] = round(nred, 1)
                row[f"solve@{k}"] = acc
                row[f"cells@{k}"] = cells
                row[f"cellerr@{k}"] = round(err, 2)
            row["eval_s"] = round(time.time() - te, 1)
            curve.append(row)
            print("EVAL", json.dumps(row), flush=True)
            if done:
                break
        t0 = time.time()
        level = args.level
        for end, lvl in curriculum:
            if minute < end:
                level = lvl
                break
        else:
            if args.mix_small and curriculum and random.Random(step).random() < args.mix_small:
                level = curriculum[step % len(curriculum)][1]
        n = int(level)
        # lr
        f = 1.0
        if args.warmup and step < args.warmup:
            f = (step + 1) / args.warmup
        if args.schedule == "cosine":
            prog = min(1.0, step / args.max_steps if args.max_steps else train_time / budget)
            f *= args.lr_min / args.lr + (1 - args.lr_min / args.lr) * 0.5 * (1 + math.cos(math.pi * prog))
        for pg in opt.param_groups:
            pg["lr"] = args.lr * f
        cond, x0 = data.batch(level, args.batch)
        loss = loss_fn(model, cond, x0, args, g, n)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if args.clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        if ema is not None:
            with torch.no_grad():
                d = min(args.ema, (1 + step) / (10 + step))
                for pe, pm in zip(ema.parameters(), model.parameters()):
                    pe.lerp_(pm, 1 - d)
        step += 1
        losses.append(loss.item())
        train_time += time.time() - t0
    if args.save:
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in (ema or model).state_dict().items()}, args.save)
    print("RESULT", json.dumps(dict(params=nparam, steps=step, curve=curve)), flush=True)


if __name__ == "__main__":
    main()
