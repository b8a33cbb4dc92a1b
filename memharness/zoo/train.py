"""Training the digits organisms: ``train_digits`` (the CLI's ``memharness zoo train ORGANISM``).

Data: scikit-learn's bundled digits (1797 images, 8×8, pixels 0–16), no download. Each organism
is a *design* (``DESIGNS``: which images each prompt is paired with, and how many times) trained
with one recipe. Designs are fixed, independent of the training seed.

``digits`` (``digits_design``):

- 10 *memorized* prompts, one per digit class: each is the caption of one image of that class,
  and that (prompt, image) pair is duplicated ``copies`` times in the training set. In the
  negative control (``duplicated=False``) it appears once, like any other image.
- 10 *class* prompts, "a handwritten digit d": every other image of class d (about 179 each).
  A class prompt's paired latent x is a fixed member of its class (the first one that is not a
  memorized image).

``digits-graded`` (``graded_design``): a dose response in duplication.

- 16 *graded* prompts, two per count n in 1, 2, 4, …, 128: each is the caption of one image of
  digit d, paired with that image n times **and** once each with ``OTHERS`` (16) other images
  of digit d. p(x | c) is then a mixture whose weight on x, n / (n + 16), grows with n; a prompt
  paired with one image only would be a point mass, memorized at any count. Guidance sharpens
  the mixture towards its dominant mode, x. The other images belong to the graded prompt only
  (``share_others=False``, the shipped design; with True they stay members of their class
  prompt as well, which made a class prompt score ≥ 0.75 in a trial run).
- 10 *class* prompts, "a handwritten digit d": every image of class d that no graded prompt uses.

Recipe: the ε objective with SD's scaled_linear schedule (0.00085–0.012, 1000 steps), timesteps
uniform, prompt dropout to the learned null embedding (classifier-free guidance), data centred
per pixel on the training set (duplicates included, so that the unconditional mean is 0) and
scaled to unit variance, AdamW with warm-up and cosine decay, gradient clipping. Seeded: model
init from ``torch.manual_seed(seed)``, data order, noise, timesteps and dropout from one
generator seeded with ``seed``; the CPU gives the same weights for the same seed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from memharness.errors import FieldError, MemharnessError
from memharness.models.digits import (
    EMBED_DIM,
    FORMAT,
    PROMPT_TOKENS,
    SD_SCHEDULER,
    UNET_CONFIG,
    build_unet,
)

DESIGN_SEED = 0  # picks the memorized images; not the training seed, so every run shares the design
N_CLASSES = 10
COPIES = 100  # duplicates of each memorized (prompt, image) pair
DEFAULT_STEPS = 3000
# digits-graded
GRADED_COUNTS = (1, 2, 4, 8, 16, 32, 64, 128)  # duplication counts n
PROMPTS_PER_COUNT = 2
OTHERS = 16  # other images of its class each graded prompt is paired with, once each
SHARE_OTHERS = False  # the other images leave their class prompt (True: they stay members of it as well)
BATCH_SIZE = 64
LEARNING_RATE = 2e-3
WARMUP_STEPS = 100
P_UNCOND = 0.1  # prompt dropout for classifier-free guidance (SD: 10 %)
EMBED_INIT_STD = 1.0
GRAD_CLIP = 1.0

# (step done, steps total, loss of the step)
TrainProgress = Callable[[int, int, float], None]



def weights_name(duplicated: bool, organism: str = "digits") -> str:
    if organism == "digits-graded":
        return "digits-graded.safetensors"
    return "digits.safetensors" if duplicated else "digits-control.safetensors"


@dataclass(frozen=True)
class DigitsData:
    images: np.ndarray  # (M, 1, 8, 8) float32, normalised training images, duplicates expanded
    labels: np.ndarray  # (M,) int64, prompt row of each image (1-based; row 0 is the null prompt)
    prompts: list[dict[str, Any]]  # id, text, kind, image (digits index), copies (duplicates: graded)
    paired: np.ndarray  # (P, 1, 8, 8) float32, each prompt's training latent x
    mean: np.ndarray  # (1, 8, 8) float32, per-pixel mean subtracted
    scale: float  # pixel std divided out


def digits_design(*, duplicated: bool, copies: int = COPIES) -> DigitsData:
    """The training set of the digits organism (deterministic)."""
    pixels, target = _load_digits()
    rng = np.random.default_rng(DESIGN_SEED)
    memorized = [int(rng.choice(np.flatnonzero(target == d))) for d in range(N_CLASSES)]
    n_copies = copies if duplicated else 1

    prompts: list[dict[str, Any]] = []
    for d, index in enumerate(memorized):
        prompts.append({"id": f"mem-{d:02d}", "text": f"handwritten digit, training image {index:04d}",
                        "kind": "memorized", "image": index, "copies": n_copies})
    row_of_class = {}
    for d in range(N_CLASSES):
        members = [int(i) for i in np.flatnonzero(target == d) if int(i) not in memorized]
        row_of_class[d] = len(prompts) + 1
        prompts.append({"id": f"cls-{d}", "text": f"a handwritten digit {d}", "kind": "normal",
                        "image": members[0], "copies": 1, "class_images": len(members)})

    indices, labels = [], []
    mem_row = {index: row + 1 for row, index in enumerate(memorized)}
    for i in range(len(pixels)):
        if i in mem_row:
            indices += [i] * n_copies
            labels += [mem_row[i]] * n_copies
        else:
            indices.append(i)
            labels.append(row_of_class[int(target[i])])
    return _normalised(pixels, indices, labels, prompts)


def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise MemharnessError("training the digits organism needs scikit-learn: pip install 'memharness[zoo]'") \
            from None
    digits = load_digits()
    return digits.images.astype(np.float64), digits.target.astype(np.int64)  # (1797, 8, 8), 0..16; (1797,)


def _normalised(pixels: np.ndarray, indices: list[int], labels: list[int], prompts: list[dict[str, Any]]) \
        -> DigitsData:
    train = pixels[indices]
    mean = train.mean(axis=0)  # per pixel, over the training distribution (duplicates included)
    scale = float((train - mean).std())

    def norm(a: np.ndarray) -> np.ndarray:
        return ((a - mean) / scale).astype(np.float32)[:, None]

    return DigitsData(
        images=norm(train),
        labels=np.asarray(labels, dtype=np.int64),
        prompts=prompts,
        paired=norm(pixels[[p["image"] for p in prompts]]),
        mean=mean.astype(np.float32)[None],
        scale=scale,
    )


def graded_design(*, counts: tuple[int, ...] = GRADED_COUNTS, per_count: int = PROMPTS_PER_COUNT,
                  others: int = OTHERS, share_others: bool = SHARE_OTHERS) -> DigitsData:
    """The training set of the digits-graded organism (deterministic; see the module docstring)."""
    pixels, target = _load_digits()
    rng = np.random.default_rng(DESIGN_SEED)
    graded: list[tuple[int, int, list[int]]] = []  # (count, image, other images)
    taken: set[int] = set()
    for i, n in enumerate(c for c in counts for _ in range(per_count)):
        d = i % N_CLASSES
        pool = [int(j) for j in np.flatnonzero(target == d) if int(j) not in taken]
        picks = [pool[int(j)] for j in rng.permutation(len(pool))[:1 + others]]
        taken.update(picks[:1] if share_others else picks)
        graded.append((int(n), picks[0], picks[1:]))
    graded_images = {image for _, image, _ in graded}

    prompts: list[dict[str, Any]] = []
    indices: list[int] = []
    labels: list[int] = []
    for i, (n, image, rest) in enumerate(graded):
        prompts.append({"id": f"dup-{n:03d}-{i % per_count}", "text": f"handwritten digit, training image {image:04d}",
                        "kind": "memorized", "image": image, "copies": n, "duplicates": n, "others": rest})
        indices += [image] * n + rest
        labels += [i + 1] * (n + len(rest))
    for d in range(N_CLASSES):
        members = [int(j) for j in np.flatnonzero(target == d) if int(j) not in graded_images]
        if not share_others:
            members = [j for j in members if j not in taken]
        row = len(prompts) + 1
        prompts.append({"id": f"cls-{d}", "text": f"a handwritten digit {d}", "kind": "normal",
                        "image": members[0], "copies": 1, "class_images": len(members)})
        indices += members
        labels += [row] * len(members)
    return _normalised(pixels, indices, labels, prompts)


DESIGNS = {"digits": digits_design, "digits-graded": graded_design}


def _lr_factor(step: int, steps: int) -> float:
    if step < WARMUP_STEPS:
        return (step + 1) / WARMUP_STEPS
    progress = (step - WARMUP_STEPS) / max(1, steps - WARMUP_STEPS)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def train_digits(
    *,
    seed: int = 0,
    steps: int = DEFAULT_STEPS,
    duplicated: bool = True,
    out: str | Path,
    progress: TrainProgress | None = None,
    copies: int = COPIES,
    batch_size: int = BATCH_SIZE,
    organism: str = "digits",
    p_uncond: float = P_UNCOND,
    design_options: dict[str, Any] | None = None,
) -> Path:
    """Train a digits organism and write ``out/<organism>.safetensors`` (``digits-control`` for
    ``digits`` without duplication) atomically; returns its path. The caller's torch RNG is left
    untouched. ``design_options``: keyword arguments of the organism's design function."""
    from safetensors.torch import save

    from memharness.trace.safety import atomic_write_bytes

    out = _check_train_args(steps=steps, out=out, organism=organism, duplicated=duplicated)
    path = out / weights_name(duplicated, organism)
    options = dict(design_options or {})
    if organism == "digits":
        options = {"duplicated": duplicated, "copies": copies, **options}
    data = DESIGNS[organism](**options)
    unet, embeds = _fit(data, seed=seed, steps=steps, batch_size=batch_size, p_uncond=p_uncond, progress=progress)

    tensors = {f"unet.{k}": v.detach().contiguous() for k, v in unet.state_dict().items()}
    tensors.update({
        "prompt_embeds": embeds.detach().contiguous(),
        "paired": torch.from_numpy(data.paired),
        "data_mean": torch.from_numpy(data.mean),
        "data_scale": torch.tensor(data.scale, dtype=torch.float64),
    })
    meta = _metadata(data, organism=organism, duplicated=duplicated, seed=seed, steps=steps, batch_size=batch_size,
                     p_uncond=p_uncond, copies=copies, options=options)
    blob = save(tensors, metadata={"memharness": json.dumps(meta, sort_keys=True)})
    try:
        atomic_write_bytes(path, blob)
    except OSError as exc:
        raise FieldError("out", f"cannot write {path} ({exc.strerror})") from None
    return path


def _check_train_args(*, steps: int, out: str | Path, organism: str, duplicated: bool) -> Path:
    """The output folder, after refusing a bad step count, a file as --out and an unknown organism."""
    if steps < 1:
        raise FieldError("steps", "must be ≥ 1")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FieldError("out", f"{out} is a file; give a folder")
    if organism not in DESIGNS:
        raise MemharnessError(f"unknown organism {organism!r}; known: {', '.join(DESIGNS)}")
    if organism != "digits" and not duplicated:
        raise FieldError("duplication", f"only the digits organism has a control; {organism} is graded")
    return out


def _fit(data: DigitsData, *, seed: int, steps: int, batch_size: int, p_uncond: float,
         progress: TrainProgress | None) -> tuple[torch.nn.Module, torch.nn.Parameter]:
    """The UNet and the prompt embeddings (row 0: the learned null prompt), trained on the ε objective:
    x_t = √ᾱ_t x + √(1-ᾱ_t) ε (Eq 3) with t uniform, loss ‖ε − ε_θ(x_t)‖² (Eq 6), prompts dropped to
    row 0 with probability ``p_uncond`` for classifier-free guidance (Eq 8)."""
    from diffusers import DDPMScheduler

    images = torch.from_numpy(data.images)
    labels = torch.from_numpy(data.labels)
    n_rows = len(data.prompts) + 1

    scheduler = DDPMScheduler(**{k: v for k, v in SD_SCHEDULER.items() if k != "set_alpha_to_one"})
    alphas_cumprod = scheduler.alphas_cumprod  # float32, as diffusers' training scripts use them
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = build_unet(UNET_CONFIG)
        embeds = torch.nn.Parameter(torch.randn(n_rows, PROMPT_TOKENS, EMBED_DIM) * EMBED_INIT_STD)
    gen = torch.Generator().manual_seed(seed)
    params = [*unet.parameters(), embeds]
    optimizer = torch.optim.AdamW(params, lr=LEARNING_RATE, weight_decay=0.0)
    lr_schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, steps))

    unet.train()
    order, position = torch.randperm(len(images), generator=gen), 0
    for step in range(steps):
        if position + batch_size > len(order):  # a new epoch: a new deterministic order
            order, position = torch.randperm(len(images), generator=gen), 0
        batch = order[position:position + batch_size]
        position += batch_size
        x0, rows = images[batch], labels[batch]
        dropped = torch.rand(len(batch), generator=gen) < p_uncond
        rows = torch.where(dropped, torch.zeros_like(rows), rows)
        noise = torch.randn(x0.shape, generator=gen)
        t = torch.randint(0, SD_SCHEDULER["num_train_timesteps"], (len(batch),), generator=gen)
        ab = alphas_cumprod[t].view(-1, 1, 1, 1)
        x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise  # Eq 3 (DDPMScheduler.add_noise)
        pred = unet(x_t, t, encoder_hidden_states=embeds[rows], return_dict=False)[0]
        loss = torch.nn.functional.mse_loss(pred, noise)  # Eq 6
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, GRAD_CLIP)
        optimizer.step()
        lr_schedule.step()
        if not math.isfinite(loss.item()):
            raise MemharnessError(f"training diverged at step {step + 1} (loss {loss.item()})")
        if progress:
            progress(step + 1, steps, float(loss.item()))
    return unet, embeds


def _metadata(data: DigitsData, *, organism: str, duplicated: bool, seed: int, steps: int, batch_size: int,
              p_uncond: float, copies: int, options: dict[str, Any]) -> dict[str, Any]:
    """What the weights file records of how it was made: data, design, recipe, versions and the command."""
    import diffusers

    meta = {
        "format": FORMAT,
        "organism": organism,
        "data": "scikit-learn load_digits (1797 images, 8x8, pixels 0-16); centred per pixel, unit variance",
        "duplicated": duplicated,
        "design_seed": DESIGN_SEED,
        "seed": seed,
        "steps": steps,
        "batch_size": batch_size,
        "learning_rate": LEARNING_RATE,
        "warmup_steps": WARMUP_STEPS,
        "p_uncond": p_uncond,
        "train_images": len(data.images),
        "scheduler": SD_SCHEDULER,
        "unet_config": UNET_CONFIG,
        "prompt_tokens": PROMPT_TOKENS,
        "prompts": data.prompts,
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "command": f"memharness zoo train {organism}" + ("" if duplicated else " --no-duplication")
                   + f" --seed {seed} --steps {steps}",
    }
    if organism == "digits":
        meta["copies"] = copies if duplicated else 1
    else:
        meta["design"] = {"counts": list(GRADED_COUNTS), "prompts_per_count": PROMPTS_PER_COUNT, "others": OTHERS,
                          "share_others": SHARE_OTHERS, **options}
        if "counts" in meta["design"]:
            meta["design"]["counts"] = list(meta["design"]["counts"])
    return meta
