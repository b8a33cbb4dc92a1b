"""Helpers shared by the tests."""

from __future__ import annotations

from memharness.models.card import ModelCard, load_card

SMALL_PARAMS = {
    "seed": 3,
    "memorized_prompts": 6,
    "normal_prompts": 6,
    "background_classes": 16,
}


def small_card(**params) -> ModelCard:
    """The analytic card at a test size: 12 prompts, 4×4×4 latents."""
    base = load_card("analytic").to_dict()
    base["latent_shape"] = [4, 4, 4]
    base["params"] = {**base["params"], **SMALL_PARAMS, **params}
    return ModelCard.from_mapping(base, source="tests")


class _Wrapped:
    """A denoiser that changes what another one predicts (test models that lack a mechanism)."""

    def __init__(self, inner):
        self.inner = inner
        self.card, self.schedule, self.device, self.dtype = inner.card, inner.schedule, inner.device, inner.dtype

    def __getattr__(self, name):  # capability flags, decode, to_pixels: the wrapped model's
        return getattr(self.inner, name)

    def prompts(self):
        return self.inner.prompts()

    def encode(self, prompt):
        return self.inner.encode(prompt)

    def paired_latent(self, prompt):
        return self.inner.paired_latent(prompt)


class PromptBlind(_Wrapped):
    """The conditional ignores the prompt (ε_c = ε_u): guidance changes nothing, nothing is memorized."""

    def model_output(self, x_t, t, cond, *, need_uncond):
        eps_u, _ = self.inner.model_output(x_t, t, cond, need_uncond=True)
        return (eps_u if need_uncond else None), eps_u


class LeakyUnconditional(_Wrapped):
    """The unconditional knows the prompt (ε_u = ε_c), so it carries x: the opposite of §3.3 (B)."""

    def model_output(self, x_t, t, cond, *, need_uncond):
        _, eps_c = self.inner.model_output(x_t, t, cond, need_uncond=False)
        return (eps_c.clone() if need_uncond else None), eps_c


class BiasedPredictor(_Wrapped):
    """Both predictions carry a fixed offset twice as long as x_T: they no longer follow x_T (§3.3 (A))."""

    def __init__(self, inner):
        super().__init__(inner)
        import torch

        gen = torch.Generator().manual_seed(11)
        dim = int(torch.tensor(inner.card.latent_shape).prod())
        offset = torch.randn(dim, generator=gen, dtype=inner.dtype)
        self.offset = (2.0 * dim**0.5 * offset / offset.norm()).reshape(inner.card.latent_shape)

    def model_output(self, x_t, t, cond, *, need_uncond):
        eps_u, eps_c = self.inner.model_output(x_t, t, cond, need_uncond=need_uncond)
        return (None if eps_u is None else eps_u + self.offset), eps_c + self.offset


def write_kind_scores(root) -> None:
    """Scores from the model's ground truth (memorized 1.0, normal 0.5), for models whose outputs hide it."""
    _write_scores(root, lambda prompts: [1.0 if p.get("kind") == "memorized" else 0.5 for p in prompts],
                  scorer="ground truth (test)")


def write_random_scores(root, *, seed: int) -> None:
    """Replace a fixture's scores by random ones, the same at every guidance scale: labels unrelated to the data."""
    import numpy as np

    rng = np.random.default_rng(seed)
    _write_scores(root, lambda prompts: rng.uniform(0.3, 1.0, size=len(prompts)), scorer="random (test)")


def write_scores(root, draw, *, scorer: str = "fixed (test)") -> None:
    """Scores from ``draw(prompts)``, the same at every guidance scale."""
    _write_scores(root, draw, scorer=scorer)


def _write_scores(root, draw, *, scorer: str) -> None:
    from memharness.trace import Fixture, FixtureWriter, schema

    fixture = Fixture(root)
    scores = draw(fixture.prompts)
    per_prompt = {p["id"]: {"train": float(s), "generate": float(s), "score": float(s)}
                  for p, s in zip(fixture.prompts, scores, strict=True)}
    values = {run: {schema.guidance_key(g): per_prompt for g in fixture.guidance_scales(run)} for run in fixture.runs}
    writer = FixtureWriter(root, model=fixture.model, prompts=fixture.prompts,
                           prompt_set=fixture.manifest["prompt_set"]["name"])
    writer.write_scores({"scorer": scorer, "values": values})


def trace_small(denoiser, out, *, ddim_seeds=(0, 1, 2, 3), ddpm_seeds=(0, 1, 2), steps=10):
    """DDIM at g = 1, 2, 7.5 and DDPM at g = 1, 7.5, then latent scores: the shape of the shipped fixture."""
    from memharness.scoring.latent import write_latent_scores
    from memharness.trace.tracer import TraceSettings, trace

    trace(denoiser, out, TraceSettings(sampler="ddim", num_inference_steps=steps, guidance=(1.0, 2.0, 7.5),
                                       seeds=tuple(ddim_seeds)), prompt_set="small")
    trace(denoiser, out, TraceSettings(sampler="ddpm", num_inference_steps=steps, guidance=(1.0, 7.5),
                                       seeds=tuple(ddpm_seeds)), prompt_set="small")
    write_latent_scores(out)
    return out


def edit_manifest(root, edit):
    """Apply ``edit`` to a fixture's manifest.json in place; returns its path."""
    import json

    path = root / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return path


def rewrite_arrays(root, rel: str, edit):
    """Re-save one file with edited arrays and its new sha256 recorded (so only the content is wrong)."""
    import hashlib

    import numpy as np
    from safetensors.numpy import load as st_load
    from safetensors.numpy import save as st_save

    path = root / rel
    arrays = {name: np.array(value) for name, value in st_load(path.read_bytes()).items()}
    edit(arrays)
    data = st_save(arrays)
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()

    def fix(manifest: dict) -> None:
        for section in [*manifest["runs"].values(), manifest.get("mitigation") or {"files": {}}]:
            for entry in section["files"].values():
                if entry["file"] == rel:
                    entry["sha256"] = digest

    edit_manifest(root, fix)
    return path


def arrays_added_since(shipped_keys) -> set[str]:
    """What a fresh trace's prompt file holds beyond one recorded before issue 17, given the older file's keys:
    <g>/guidance_norm (‖ε_c − ε_u‖, recorded directly) of every guidance scale but 1. The shipped fixtures
    predate it and are not re-traced; everything else must be the same."""
    from memharness.trace import schema

    prefixes = {key.split("/")[0] for key in shipped_keys if key.endswith("/gram")}
    return {f"{prefix}/guidance_norm" for prefix in prefixes if prefix != schema.guidance_key(1.0)}
