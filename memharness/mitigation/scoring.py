"""SSCD scores (Eq 9) of the mitigated generations, for fixtures scored on images (no torch here).

``memharness mitigate --images DIR`` writes ``DIR/mitigation/<method>/<prompt>/<seed>.png``;
``memharness score --images DIR`` scores them with the same SSCD model as the fixture's runs and
stores the result in the manifest's mitigation section under "scores", where the mitigation
claim reads SSCD_train.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memharness.errors import MemharnessError
from memharness.trace.store import Fixture
from memharness.trace.writer import FixtureWriter


def has_mitigation_images(root: Path, images: Path) -> bool:
    fixture = Fixture(root)
    return fixture.mitigation is not None and (Path(images) / "mitigation").is_dir()


def score_mitigation_images(root: Path, images: Path, model: Any) -> dict[str, Any]:
    """SSCD (train, generate, score) per method and prompt of the mitigated images; written to the manifest."""
    from memharness.scoring.sscd import read_image, sscd_scores, training_image_paths

    root, images = Path(root), Path(images)
    fixture = Fixture(root)
    section = fixture.mitigation
    if section is None:
        raise MemharnessError(f"{root}: no mitigation runs; record them with `memharness mitigate --images DIR`")
    hint = f"record them with `memharness mitigate --images {images} --overwrite`"
    seeds = section["settings"]["seeds"]
    files = {}
    for method in section["settings"]["methods"]:
        for prompt in fixture.prompts:
            paths = [images / "mitigation" / method / prompt["id"] / f"{seed}.png" for seed in seeds]
            missing = next((p for p in paths if not p.is_file()), None)
            if missing is not None:
                raise MemharnessError(f"{missing}: mitigated image missing; {hint}")
            files[(method, prompt["id"])] = paths
    train_paths = training_image_paths(fixture)
    train = {pid: model.embed([read_image(path)])[0] for pid, path in train_paths.items()}
    values: dict[str, Any] = {}
    for (method, pid), paths in files.items():
        s_train, s_generate, score = sscd_scores(train[pid], model.embed([read_image(p) for p in paths]))
        values.setdefault(method, {})[pid] = {"train": s_train, "generate": s_generate, "score": score}
    section = dict(section, scores={"scorer": model.name, "values": values})
    writer = FixtureWriter(root, model=fixture.model, prompts=fixture.prompts,
                           prompt_set=fixture.manifest["prompt_set"]["name"])
    writer.write_section("mitigation", section)
    return section["scores"]
