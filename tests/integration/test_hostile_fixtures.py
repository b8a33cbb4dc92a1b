"""A hostile-fixture corpus, generated here on copies of fixtures/analytic (issue #15).

Every case is a fixture, prompt file, output path or second writer a careless or hostile user
could hand memharness. The contract for each: exit 2 with one line on stderr naming the file and
key (or the flag), no traceback, nothing outside the given folders touched, nothing recorded lost.
Laid out by kind: damaged bytes, wrong dtypes, wrong types, traversal and symlinks, FIFOs,
duplicate ids, nesting, outputs, no silent loss, concurrent writers, kill at a random point.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from memharness.cli import main
from memharness.shipped import shipped_fixture
from memharness.trace.safety import LOCK_NAME, FolderLock
from tests.helpers import edit_manifest, rewrite_arrays

SHIPPED = shipped_fixture("analytic")
PROMPT_FILE = "ddim/mem-02.safetensors"
MITIGATION_FILE = "mitigation/mem-02.safetensors"
PREFIX = "memharness: error: "
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NO_COLOR": "1"}


# --------------------------------------------------------------------------- helpers
@pytest.fixture(autouse=True)
def _one_thread():
    """In-process traces on one thread: the suite runs on 2 shared cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def one_line(rc: int, err: str, *needles: str) -> str:
    assert rc == 2, err
    assert "Traceback" not in err, err
    line = err.strip()
    assert "\n" not in line, f"more than one line on stderr:\n{err}"
    assert line.startswith(PREFIX), line
    for needle in needles:
        assert needle.lower() in line.lower(), f"{needle!r} not in {line!r}"
    return line


def snapshot(root: Path) -> dict[str, object]:
    """Every entry under root: bytes of files, targets of links, kinds of the rest."""
    if not root.exists():
        return {}
    out: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            out[key] = ("link", os.readlink(path))
        elif path.is_file():
            out[key] = path.read_bytes()
        else:
            out[key] = ("dir" if path.is_dir() else "other",)
    return out


@pytest.fixture
def world(tmp_path) -> dict[str, Path]:
    """A copy of fixtures/analytic and a folder of bystander files that nothing may touch."""
    fixture = tmp_path / "fx"
    shutil.copytree(SHIPPED, fixture)
    outside = tmp_path / "outside"
    (outside / "victim" / "figures").mkdir(parents=True)
    (outside / "victim" / "report.md").write_text("precious\n")
    (outside / "victim" / "figures" / "keep.png").write_bytes(b"png")
    (outside / "secret.txt").write_text("secret\n")
    shutil.copy(SHIPPED / PROMPT_FILE, outside / "valid.safetensors")
    return {"fixture": fixture, "outside": outside, "tmp": tmp_path}


def check_refused(world, capsys, *needles: str, argv: tuple[str, ...] = ()) -> str:
    fixture, outside = world["fixture"], world["outside"]
    before, bystanders = snapshot(fixture), snapshot(outside)
    rc = run_cli(["check", "--fixtures", str(fixture), *argv])
    _, err = capsys.readouterr()
    line = one_line(rc, err, *needles)
    assert snapshot(fixture) == before, "check changed the fixture"
    assert snapshot(outside) == bystanders, "something outside the fixture changed"
    return line


# --------------------------------------------------------------------------- damaged bytes: truncation, bit flips
@pytest.mark.parametrize("keep", [0, 1, 100, 0.5, -1], ids=["empty", "1-byte", "100-bytes", "half", "minus-1"])
def test_truncated_prompt_file(world, keep, capsys):
    path = world["fixture"] / PROMPT_FILE
    data = path.read_bytes()
    n = int(len(data) * keep) if isinstance(keep, float) else (len(data) + keep if keep < 0 else keep)
    path.write_bytes(data[:n])
    check_refused(world, capsys, str(path), "checksum")


@pytest.mark.parametrize("keep", [0, 0.3, 0.99])
def test_truncated_manifest(world, keep, capsys):
    path = world["fixture"] / "manifest.json"
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    check_refused(world, capsys, str(path), "JSON")


@pytest.mark.parametrize("seed", range(4))
def test_bit_flip_in_prompt_file(world, seed, capsys):
    rng = random.Random(seed)
    for rel in (PROMPT_FILE, MITIGATION_FILE):
        path = world["fixture"] / rel
        data = bytearray(path.read_bytes())
        position = rng.randrange(len(data))
        data[position] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(data))
    check_refused(world, capsys, "checksum")


# --------------------------------------------------------------------------- wrong dtypes and magnitudes
@pytest.mark.parametrize("dtype", ["float16", "int32", "uint8", "bool"])
def test_wrong_array_dtype(world, dtype, capsys):
    def cast(arrays):
        arrays["g7.5/gram"] = arrays["g7.5/gram"].astype(dtype)

    path = rewrite_arrays(world["fixture"], PROMPT_FILE, cast)
    check_refused(world, capsys, str(path), "g7.5/gram", "dtype")


def test_wrong_dtype_in_mitigation_file(world, capsys):
    def cast(arrays):
        arrays["delta/switch_step"] = arrays["delta/switch_step"].astype(np.float16)

    path = rewrite_arrays(world["fixture"], MITIGATION_FILE, cast)
    check_refused(world, capsys, str(path), "delta/switch_step", "dtype")


def test_absurd_magnitude(world, capsys):
    def scale(arrays):
        arrays["g7.5/gram"] = (arrays["g7.5/gram"].astype(np.float64) * 1e30)

    path = rewrite_arrays(world["fixture"], PROMPT_FILE, scale)
    check_refused(world, capsys, str(path), "g7.5/gram", "1e+15")


# --------------------------------------------------------------------------- wrong types in the manifest
def _set(*keys, value):
    def edit(manifest):
        node = manifest
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return edit


WRONG_TYPES = {
    "guidance-strings": (_set("runs", "ddim", "settings", "guidance", value=["x"]), "runs.ddim.settings.guidance[0]"),
    "latent-shape-string": (_set("model", "latent_shape", value="a"), "model.latent_shape"),
    "latent-shape-huge": (_set("model", "latent_shape", value=[10**9, 10**9, 10**9]), "model.latent_shape"),
    "latent-shape-overflow": (_set("model", "latent_shape", value=[60000, 60000, 60000]), "model.latent_shape"),
    "scores-values-list": (_set("scores", "values", value=[1, 2]), "scores.values"),
    "score-true": (_set("scores", "values", "ddim", "g7.5", "mem-02", "score", value=True), "mem-02.score"),
    "score-1e300": (_set("scores", "values", "ddim", "g7.5", "mem-02", "score", value=1e300), "mem-02.score"),
    "score-string": (_set("scores", "values", "ddim", "g7.5", "mem-02", "score", value="0.9"), "mem-02.score"),
    "seeds-string": (_set("runs", "ddim", "settings", "seeds", value="abc"), "runs.ddim.settings.seeds"),
    "seeds-negative": (_set("runs", "ddim", "settings", "seeds", value=[-1, 0]), "seeds[0]"),
    "steps-negative": (_set("runs", "ddim", "settings", "num_inference_steps", value=-1), "num_inference_steps"),
    "steps-mismatch": (_set("runs", "ddim", "settings", "num_inference_steps", value=49), "timesteps"),
    "model-id-number": (_set("model", "id", value=5), "model.id"),
    "prompt-id-number": (lambda m: m["prompts"][0].update(id=7), "prompts[0].id"),
    "prompt-kind-bogus": (lambda m: m["prompts"][0].update(kind="both"), "prompts[0].kind"),
    "duplicates-string": (lambda m: m["prompts"][0].update(duplicates="many"), "prompts[0].duplicates"),
    "beta-start-string": (_set("model", "scheduler", "beta_start", value="x"), "model.scheduler.beta_start"),
    "sha256-short": (_set("runs", "ddim", "files", "mem-02", "sha256", value="abc"), "sha256"),
    "file-entry-number": (_set("runs", "ddim", "files", "mem-02", "file", value=3), "runs.ddim.files.mem-02.file"),
    "runs-list": (_set("runs", value=[]), "runs"),
    "mitigation-seeds-list-of-str": (_set("mitigation", "settings", "seeds", value=["a"]), "mitigation.settings"),
    "zero-prompts": (_set("prompts", value=[]), "prompts"),
}


@pytest.mark.parametrize("case", WRONG_TYPES, ids=list(WRONG_TYPES))
def test_wrong_types_in_manifest(world, case, capsys):
    edit, key = WRONG_TYPES[case]
    path = edit_manifest(world["fixture"], edit)
    check_refused(world, capsys, str(path), key)


def test_prompt_duplicates_field_is_allowed(world, capsys):
    """`duplicates` (an integer, zoo organisms) is part of the schema."""
    from memharness.trace.store import Fixture

    edit_manifest(world["fixture"], lambda m: m["prompts"][0].update(duplicates=100))
    Fixture(world["fixture"]).verify()


def test_duplicate_prompt_ids_in_manifest(world, capsys):
    def dup(manifest):
        manifest["prompts"][1] = dict(manifest["prompts"][0])

    path = edit_manifest(world["fixture"], dup)
    check_refused(world, capsys, str(path), "prompts[1].id", "repeats")


# --------------------------------------------------------------------------- traversal and symlinks
@pytest.mark.parametrize("model_id", ["/elsewhere/victim", "../../outside/victim", ".hidden", "a/b", "x\\y"])
def test_model_id_that_is_a_path(world, model_id, capsys):
    """model.id decides reports/<id>; a path there is refused when the manifest is read."""
    path = edit_manifest(world["fixture"], _set("model", "id", value=model_id))
    check_refused(world, capsys, str(path), "model.id")
    cwd = os.getcwd()
    os.chdir(world["tmp"])
    try:
        before = snapshot(world["tmp"])
        rc = run_cli(["report", "--fixtures", str(world["fixture"])])
        _, err = capsys.readouterr()
        one_line(rc, err, "model.id")
        assert snapshot(world["tmp"]) == before, "report wrote or deleted something"
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize("entry", ["/etc/passwd", "../outside/valid.safetensors", "ddim/../../outside/secret.txt",
                                   "ddim//mem-02.safetensors"])
def test_file_entry_outside_the_folder(world, entry, capsys):
    path = edit_manifest(world["fixture"], _set("runs", "ddim", "files", "mem-02", "file", value=entry))
    check_refused(world, capsys, str(path), "runs.ddim.files.mem-02.file")


@pytest.mark.parametrize("where", ["runs", "mitigation"])
def test_file_entry_symlink_out(world, where, capsys):
    """A prompt file replaced by a symlink to a valid file elsewhere (right checksum) is not read."""
    rel = PROMPT_FILE if where == "runs" else MITIGATION_FILE
    target = world["outside"] / "elsewhere.safetensors"
    shutil.copy(world["fixture"] / rel, target)
    (world["fixture"] / rel).unlink()
    (world["fixture"] / rel).symlink_to(target)
    check_refused(world, capsys, "outside the fixture folder")


def test_folder_symlink_out(world, capsys):
    """The whole ddim/ folder a symlink to a copy elsewhere: refused as well."""
    copy = world["outside"] / "ddim-copy"
    shutil.copytree(world["fixture"] / "ddim", copy)
    shutil.rmtree(world["fixture"] / "ddim")
    (world["fixture"] / "ddim").symlink_to(copy)
    check_refused(world, capsys, "outside the fixture folder")


def test_symlink_inside_the_folder_is_fine(world, capsys):
    """A link that stays inside the folder (deduplicated files) still reads."""
    from memharness.trace.store import Fixture

    store = world["fixture"] / "store"
    store.mkdir()
    shutil.move(world["fixture"] / PROMPT_FILE, store / "mem-02.safetensors")
    (world["fixture"] / PROMPT_FILE).symlink_to(Path("..") / "store" / "mem-02.safetensors")
    Fixture(world["fixture"]).verify()


# --------------------------------------------------------------------------- FIFOs
def test_fifo_as_prompt_file(world, capsys):
    path = world["fixture"] / PROMPT_FILE
    path.unlink()
    os.mkfifo(path)
    check_refused(world, capsys, str(path), "missing")


def test_fifo_as_manifest(world, capsys):
    path = world["fixture"] / "manifest.json"
    path.unlink()
    os.mkfifo(path)
    check_refused(world, capsys, "manifest.json")


# --------------------------------------------------------------------------- nesting
@pytest.mark.parametrize("depth", [40, 100_000])
def test_deep_nesting_in_manifest(world, depth, capsys):
    path = world["fixture"] / "manifest.json"
    text = path.read_text()
    nested = "[" * depth + "]" * depth
    path.write_text(text.replace('"params": {', f'"deep": {nested}, "params": {{', 1))
    check_refused(world, capsys, str(path), "nests")


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_deep_nesting_in_prompt_file(tmp_path, suffix, capsys):
    prompts = tmp_path / f"prompts{suffix}"
    prompts.write_text("[" * 100_000 + "]" * 100_000 + "\n")
    rc = run_cli(["trace", "--prompts", str(prompts), "--out", str(tmp_path / "out"), "--steps", "2", "--seeds", "2"])
    _, err = capsys.readouterr()
    one_line(rc, err, str(prompts))
    assert not (tmp_path / "out").exists()


def test_deep_nesting_in_model_card(tmp_path, capsys):
    card = tmp_path / "card.yaml"
    card.write_text("id: x\nparams: " + "[" * 5000 + "]" * 5000 + "\n")
    rc = run_cli(["trace", "--model", str(card), "--out", str(tmp_path / "out")])
    _, err = capsys.readouterr()
    one_line(rc, err, str(card))


@pytest.mark.parametrize(("key", "value", "needle"), [
    ("beta_start", '"x"', "scheduler.beta_start"),
    ("latent_shape", "[100000, 100000, 100000]", "latent_shape"),
    ("id", '"../evil"', "id"),
])
def test_bad_model_card(tmp_path, key, value, needle, capsys):
    from memharness.models import load_card

    text = (Path(load_card.__code__.co_filename).parent / "cards" / "analytic.yaml").read_text()
    card = tmp_path / "card.yaml"
    if key == "beta_start":
        text = text.replace("beta_start: 0.00085", f"beta_start: {value}")
    elif key == "latent_shape":
        text = text.replace("latent_shape: [4, 8, 8]", f"latent_shape: {value}")
    else:
        text = text.replace("id: analytic", f"id: {value}")
    card.write_text(text)
    rc = run_cli(["trace", "--model", str(card), "--out", str(tmp_path / "out"), "--steps", "2", "--seeds", "2"])
    _, err = capsys.readouterr()
    one_line(rc, err, str(card), needle)
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- prompt files: traversal, duplicates, types
def _prompt_rows(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.mark.parametrize("bad_id", ["../../../X", "/elsewhere/ABS", ".hidden", "a\\b", "a\x01b", "x" * 201, " "])
def test_prompt_id_traversal(tmp_path, bad_id, capsys):
    outside = tmp_path / "outside"
    outside.mkdir()
    prompts = _prompt_rows(tmp_path, [{"id": "mem-00", "text": "memorized training image 00"},
                                      {"id": bad_id, "text": "memorized training image 01"}])
    out = tmp_path / "a" / "b" / "out"
    rc = run_cli(["trace", "--prompts", str(prompts), "--out", str(out), "--steps", "2", "--seeds", "2"])
    _, err = capsys.readouterr()
    one_line(rc, err, str(prompts), "line 2")
    assert not (tmp_path / "a").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outside", "prompts.jsonl"]
    assert not (Path("/elsewhere") / "ABS.safetensors").exists()


def test_prompt_file_duplicate_ids(tmp_path, capsys):
    prompts = _prompt_rows(tmp_path, [{"id": "mem-00", "text": "a"}, {"id": "mem-00", "text": "b"}])
    rc = run_cli(["trace", "--prompts", str(prompts), "--out", str(tmp_path / "out")])
    _, err = capsys.readouterr()
    one_line(rc, err, str(prompts), "repeats")


@pytest.mark.parametrize("row", [{"id": 5, "text": "a"}, {"id": "p", "text": ["a"]}, {"id": "p", "text": "a", "x": 1},
                                 {"id": "p", "text": "a", "duplicates": "many"}, {"id": "p", "text": "a", "kind": 1}])
def test_prompt_file_wrong_types(tmp_path, row, capsys):
    prompts = _prompt_rows(tmp_path, [row])
    rc = run_cli(["trace", "--prompts", str(prompts), "--out", str(tmp_path / "out")])
    _, err = capsys.readouterr()
    one_line(rc, err, str(prompts))
    assert not (tmp_path / "out").exists()


def test_prompt_file_duplicates_field_is_allowed(tmp_path):
    from memharness.data import load_prompt_file

    prompts = _prompt_rows(tmp_path, [{"id": "p", "text": "a", "duplicates": 100}])
    assert [p.id for p in load_prompt_file(prompts)] == ["p"]


# --------------------------------------------------------------------------- outputs
def test_output_dash_is_stdout(world, capsys):
    rc = run_cli(["check", "--fixtures", str(world["fixture"]), "--format", "json", "--output", "-"])
    out, _ = capsys.readouterr()
    assert rc in (0, 1)
    assert json.loads(out)
    assert not Path("-").exists()


def test_output_to_fifo_is_written_not_replaced(world, capsys):
    fifo = world["tmp"] / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    rc = run_cli(["check", "--fixtures", str(world["fixture"]), "--format", "json", "--output", str(fifo)])
    reader.join(timeout=30)
    assert rc in (0, 1), capsys.readouterr().err
    assert json.loads(received[0])
    assert fifo.is_fifo()


def test_output_symlink_stays_a_symlink(world, capsys):
    target = world["tmp"] / "real.json"
    target.write_text("old\n")
    link = world["tmp"] / "link.json"
    link.symlink_to(target)
    rc = run_cli(["check", "--fixtures", str(world["fixture"]), "--format", "json", "--output", str(link)])
    assert rc in (0, 1), capsys.readouterr().err
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert json.loads(target.read_text())


def test_output_to_devices_in_a_subprocess(world):
    """/dev/stdout is written (a pipe here), /dev/full fails in one line; neither is replaced."""
    argv = [sys.executable, "-m", "memharness", "check", "--fixtures", str(world["fixture"]), "--format", "json"]
    before = {p: os.lstat(p) for p in ("/dev/stdout", "/dev/full")}
    done = subprocess.run([*argv, "--output", "/dev/stdout"], capture_output=True, text=True, env=ENV, timeout=120)
    assert done.returncode in (0, 1), done.stderr
    assert json.loads(done.stdout)
    done = subprocess.run([*argv, "--output", "/dev/full"], capture_output=True, text=True, env=ENV, timeout=120)
    one_line(done.returncode, done.stderr, "--output", "/dev/full")
    after = {p: os.lstat(p) for p in before}
    for path in before:
        assert (before[path].st_mode, before[path].st_ino) == (after[path].st_mode, after[path].st_ino), path


@pytest.mark.parametrize("rel", ["manifest.json", "ddim/mem-02.safetensors", "new.json", "ddim/sub/new.json"])
def test_output_inside_the_fixture_is_refused(world, rel, capsys):
    target = world["fixture"] / rel
    check_refused(world, capsys, "--output", "inside the fixture folder", argv=("--output", str(target)))


def test_report_out_inside_the_fixture_is_refused(world, capsys):
    before = snapshot(world["fixture"])
    rc = run_cli(["report", "--fixtures", str(world["fixture"]), "--out", str(world["fixture"] / "rep")])
    _, err = capsys.readouterr()
    one_line(rc, err, "--out", "inside the fixture folder")
    assert snapshot(world["fixture"]) == before


# --------------------------------------------------------------------------- nothing recorded is lost
def _trace(out: Path, *extra: str) -> int:
    return run_cli(["trace", "--model", "analytic", "--out", str(out), "--steps", "3", "--seeds", "2", *extra])


def _fake_sscd(root: Path) -> dict:
    """Give a fixture scores as `memharness score --images` would: scorer sscd, other values."""
    def edit(manifest):
        scores = manifest["scores"]
        scores["scorer"] = "sscd_disc_mixup"
        scores["threshold"] = 0.75
        for by_g in scores["values"].values():
            for by_prompt in by_g.values():
                for entry in by_prompt.values():
                    entry["score"] = round(entry["score"] * 0.5, 6)

    edit_manifest(root, edit)
    return json.loads((root / "manifest.json").read_text())["scores"]


def test_trace_rerun_keeps_sscd_scores(tmp_path, capsys):
    out = tmp_path / "fx"
    assert _trace(out) == 0
    scores = _fake_sscd(out)
    assert _trace(out) == 0  # every prompt already done
    assert json.loads((out / "manifest.json").read_text())["scores"] == scores
    assert _trace(out, "--sampler", "ddpm") == 0  # a new run
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["scores"] == scores, "a new run replaced or deleted the SSCD scores"
    assert set(manifest["runs"]) == {"ddim", "ddpm"}
    capsys.readouterr()
    rc = run_cli(["score", "--fixtures", str(out)])
    _, err = capsys.readouterr()
    one_line(rc, err, "sscd_disc_mixup", "--overwrite")
    assert json.loads((out / "manifest.json").read_text())["scores"] == scores


def test_new_run_and_overwrite_keep_what_they_did_not_make(tmp_path, capsys):
    """A new run keeps the other runs' scores and the mitigation runs; --overwrite of a run drops
    only its own scores (and the mitigation runs only when they pair with it)."""
    out = tmp_path / "fx"
    assert _trace(out) == 0
    assert run_cli(["mitigate", "--model", "analytic", "--fixtures", str(out), "--methods", "delta"]) == 0
    before = json.loads((out / "manifest.json").read_text())
    assert _trace(out, "--sampler", "ddpm") == 0
    after = json.loads((out / "manifest.json").read_text())
    assert after["mitigation"] == before["mitigation"]
    assert after["scores"]["values"]["ddim"] == before["scores"]["values"]["ddim"]
    assert after["runs"]["ddim"] == before["runs"]["ddim"]
    scores = _fake_sscd(out)
    assert _trace(out, "--sampler", "ddpm", "--seeds", "3", "--overwrite") == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["scores"]["values"]["ddim"] == scores["values"]["ddim"]
    assert "ddpm" not in manifest["scores"]["values"]
    assert manifest["mitigation"] == before["mitigation"]


def test_no_complete_run_exits_2(world, capsys):
    """A trace that stopped before finishing any run: check (also --strict) fails in one line."""
    def cut(manifest):
        for run in manifest["runs"].values():
            run["files"] = dict(list(run["files"].items())[:3])

    edit_manifest(world["fixture"], cut)
    check_refused(world, capsys, "no complete run", "memharness trace")
    check_refused(world, capsys, "no complete run", argv=("--strict",))


def test_failed_trace_leaves_nothing(tmp_path, capsys, monkeypatch):
    """A trace that fails before its first prompt leaves no folder, no manifest and no lock behind."""
    import memharness.trace.tracer as tracer

    def boom(*args, **kwargs):
        raise tracer.MemharnessError("prompt mem-00: the model diverged")

    monkeypatch.setattr(tracer, "sample", boom)
    out = tmp_path / "new" / "fx"
    rc = _trace(out)
    _, err = capsys.readouterr()
    one_line(rc, err, "diverged")
    assert not (tmp_path / "new" / "fx").exists()


# --------------------------------------------------------------------------- --device
@pytest.mark.parametrize(("device", "needle"), [("bogus", "unknown device"), ("cuda:99", "--device cuda:99"),
                                                ("tpu", "--device")])
def test_bad_device(tmp_path, device, needle, capsys):
    import torch

    if device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.device_count() > 99:
        pytest.skip("a machine with 100 GPUs")
    rc = run_cli(["trace", "--model", "analytic", "--out", str(tmp_path / "out"), "--device", device])
    _, err = capsys.readouterr()
    one_line(rc, err, needle)
    assert not (tmp_path / "out").exists()


def test_cuda_without_cuda(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is present")
    rc = run_cli(["trace", "--model", "analytic", "--out", str(tmp_path / "out"), "--device", "cuda"])
    _, err = capsys.readouterr()
    one_line(rc, err, "--device cuda", "no CUDA")


# --------------------------------------------------------------------------- concurrent writers
def _cli(*argv: str) -> list[str]:
    return [sys.executable, "-m", "memharness", *argv]


@pytest.mark.parametrize("command", ["trace", "score", "mitigate", "data-fetch"])
def test_second_writer_fails_at_once_naming_the_holder(world, command, capsys):
    fixture = world["fixture"]
    argv = {
        "trace": ["trace", "--model", "analytic", "--out", str(fixture)],
        "score": ["score", "--fixtures", str(fixture)],
        "mitigate": ["mitigate", "--model", "analytic", "--fixtures", str(fixture)],
        "data-fetch": ["data", "fetch", "--set", "webster", "--out", str(fixture)],
    }[command]
    before = snapshot(fixture)
    with FolderLock(fixture, command="memharness trace --sampler ddpm --out fx"):
        started = time.perf_counter()
        rc = run_cli(argv)
        _, err = capsys.readouterr()
        one_line(rc, err, str(fixture), "memharness trace --sampler ddpm --out fx", f"pid {os.getpid()}", "--wait")
        assert time.perf_counter() - started < 10
    assert snapshot(fixture) == before
    assert not (fixture / LOCK_NAME).exists()


def test_wait_waits_for_the_holder(tmp_path):
    out = tmp_path / "fx"
    lock = FolderLock(out, command="holder")
    lock.__enter__()
    proc = subprocess.Popen(_cli("trace", "--model", "analytic", "--out", str(out), "--steps", "3", "--seeds", "2",
                                 "--wait"), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    assert proc.poll() is None, proc.communicate()
    assert not (out / "manifest.json").exists()
    lock.__exit__(None, None, None)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert json.loads((out / "manifest.json").read_text())["runs"]["ddim"]["files"]


def _owned_files(root: Path) -> set[str]:
    manifest = json.loads((root / "manifest.json").read_text())
    return {entry["file"] for run in manifest["runs"].values() for entry in run["files"].values()}


@pytest.mark.parametrize("wait", [False, True], ids=["fail-fast", "wait"])
def test_concurrent_ddim_and_ddpm_traces(tmp_path, wait):
    out = tmp_path / "fx"
    procs = [subprocess.Popen(_cli("trace", "--model", "analytic", "--out", str(out), "--steps", "6", "--seeds", "2",
                                   "--sampler", sampler, *(["--wait"] if wait else [])),
                              env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for sampler in ("ddim", "ddpm")]
    results = [(p.wait(timeout=300), p.communicate()[1]) for p in procs]
    finished = [sampler for sampler, (rc, err) in zip(("ddim", "ddpm"), results, strict=True) if rc == 0]
    for rc, err in results:
        if rc != 0:
            one_line(rc, err, "another writer holds it", "memharness trace")
    assert finished, results
    if wait:
        assert finished == ["ddim", "ddpm"], results
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(manifest["runs"]) == sorted(finished), "a finished run is missing from the manifest"
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*.safetensors")}
    assert on_disk == _owned_files(out), "orphaned files"
    assert not list(out.rglob("*.tmp")) and not (out / LOCK_NAME).exists()


# --------------------------------------------------------------------------- kill at a random point
KILL_ARGV = ("trace", "--model", "analytic", "--steps", "12", "--seeds", "2")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict[str, object]:
    out = tmp_path_factory.mktemp("reference") / "fx"
    done = subprocess.run(_cli(*KILL_ARGV, "--out", str(out)), env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return snapshot(out)


@pytest.mark.parametrize("seed", range(2))  # kills after about 3.5 s (mid-trace) and 1 s (while starting)
def test_kill_at_a_random_point(tmp_path, seed, uninterrupted):
    """SIGKILL a trace anywhere (before, during or after its prompts): the folder is absent, or a
    fixture that says it is incomplete, or complete; the same command then finishes it, byte-identical
    to an uninterrupted run."""
    out = tmp_path / "killed"
    proc = subprocess.Popen(_cli(*KILL_ARGV, "--out", str(out)), env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(random.Random(seed).uniform(0.5, 4.0))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    if (out / "manifest.json").exists():
        done = subprocess.run(_cli("check", "--fixtures", str(out)), env=ENV, capture_output=True, text=True,
                              timeout=120)
        if done.returncode == 2:
            one_line(done.returncode, done.stderr, str(out))
        else:
            assert done.returncode in (0, 1), done.stderr
    assert not out.exists() or {n for n in os.listdir(out) if not n.endswith(".tmp")} <= {
        "manifest.json", "ddim", LOCK_NAME}
    done = subprocess.run(_cli(*KILL_ARGV, "--out", str(out)), env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    got, want = snapshot(out), dict(uninterrupted)
    assert got.keys() == want.keys()
    for key in want:
        if key != "manifest.json":
            assert got[key] == want[key], key
    assert strip_provenance(got["manifest.json"]) == strip_provenance(want["manifest.json"])


def strip_provenance(raw: bytes) -> dict:
    """A manifest without what says how and when it was made (harness version; each run's provenance,
    which dates every session and lists resumed ones)."""
    manifest = {k: v for k, v in json.loads(raw).items() if k != "harness_version"}
    for run in manifest.get("runs", {}).values():
        run.pop("provenance", None)
    return manifest


def test_model_path_error_has_no_warnings_before_it(tmp_path):
    """Loading a broken pipeline folder: one line, not transformers' warnings and then the error."""
    folder = tmp_path / "pipeline"
    folder.mkdir()
    (folder / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline", '
                                             '"unet": ["diffusers", "UNet2DConditionModel"]}')
    done = subprocess.run(_cli("trace", "--model-path", str(folder), "--out", str(tmp_path / "out")), env=ENV,
                          capture_output=True, text=True, timeout=300)
    one_line(done.returncode, done.stderr, "--model-path", str(folder))


@pytest.mark.parametrize("case", ["out-under-a-file", "out-name-too-long", "output-name-too-long",
                                  "fixtures-name-too-long", "baseline-too-deep"])
def test_odd_paths_are_one_line(world, case, capsys):
    tmp = world["tmp"]
    (tmp / "notes.txt").write_text("notes\n")
    long_name = str(tmp / ("x" * 300))
    argv = {
        "out-under-a-file": ["trace", "--model", "analytic", "--out", str(tmp / "notes.txt" / "sub")],
        "out-name-too-long": ["trace", "--model", "analytic", "--out", long_name],
        "output-name-too-long": ["check", "--fixtures", str(world["fixture"]), "--output", long_name],
        "fixtures-name-too-long": ["check", "--fixtures", long_name],
        "baseline-too-deep": ["check", "--fixtures", str(world["fixture"]), "--baseline", str(tmp / "deep.json")],
    }[case]
    (tmp / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    before = snapshot(tmp)
    rc = run_cli(argv)
    _, err = capsys.readouterr()
    one_line(rc, err)
    if case == "baseline-too-deep":
        assert "deep.json" in err and "nested too deeply" in err
    assert snapshot(tmp) == before


def test_readers_never_see_a_half_written_manifest(tmp_path):
    """While a trace writes, every read of the manifest is whole and valid (or absent before the first prompt)."""
    from memharness.errors import MemharnessError
    from memharness.trace import read_manifest

    out = tmp_path / "fx"
    proc = subprocess.Popen(_cli(*KILL_ARGV, "--out", str(out)), env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    reads = 0
    while proc.poll() is None:
        time.sleep(0.02)  # leave the writer the CPU
        try:
            manifest = read_manifest(out)
        except MemharnessError as exc:
            assert "no fixture here" in str(exc), exc
            continue
        reads += 1
        assert manifest["prompts"]
    assert proc.wait() == 0, proc.stderr.read()
    read_manifest(out)
