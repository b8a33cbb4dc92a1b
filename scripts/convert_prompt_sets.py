"""Convert the published memorization prompt lists into memharness's package data (one-off).

Run from the repository root::

    python -m pip install pyarrow          # needed by this script only; NOT a memharness dependency
    python scripts/convert_prompt_sets.py --source <folder with the four source files>

It reads the four files described in that folder's SOURCE.md (the Webster SD v1 parquet, Wen et
al.'s 500-prompt jsonl, NeMo's label CSV for those 500, and the SD v2 list of 219), checks their
SHA-256 against the values pinned below, and writes

    memharness/data/sets/webster-sdv1.jsonl   Webster (2023) SD v1.4, 500 prompts, MV/TV/RV/N labels
    memharness/data/sets/wen-sdv1-500.jsonl   Wen et al. (2024) 500 memorized prompts (+ NeMo labels)
    memharness/data/sets/sd2-219.jsonl        SD v2 memorized prompts (Ren et al. 2024), captions only
    memharness/data/sets/PROVENANCE.md        sources, licenses, this command, output checksums

(``--out DIR`` writes elsewhere; the unit tests use it to check that a fresh run reproduces the
committed files byte for byte). The output is committed to the repository and ships in the wheel;
memharness reads it with the standard library alone (``memharness.data.prompt_sets``). Re-run this
only when the sources or the format change, then commit the result.

Output is deterministic: rows in source order, ``json.dumps(sort_keys=True, ensure_ascii=False)``,
``\\n`` line ends, floats written with the fewest digits that give back the same float32 (every float
column in the sources is float32 data), no timestamps or paths.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import struct
import sys
from pathlib import Path

CATEGORIES = ("MV", "TV", "RV", "N")

SOURCES = {  # file name -> SHA-256 of the copy described in SOURCE.md
    "sdv1_bb_edge_groundtruth.parquet": "6a4d6ae6bc051b1593aefa72ba05773613317d1cfdb02e88507e696321a47f23",
    "sdv1_500_memorized.jsonl": "8eb16c6ff1c7195cddf26b3207bdc7c6a905a20162c6070d79fe60336a525c60",
    "memorized_laion_prompts.csv": "0b527a5965dc463e7a3e0d234ff7fd5489b1a76869c456dbb209dc753cb4af25",
    "sd2_mem219.txt": "5776ec85cc25fde8c4843af990041a85813c3af7cb817c45dabb1a1bb9b6356f",
}
MD5 = {  # the checksums SOURCE.md cites from other repositories (independent confirmation)
    "sdv1_bb_edge_groundtruth.parquet": "72c2dded275dda496de9c3f7c33c4f3d",
    "sdv1_500_memorized.jsonl": "6526a7f82f6b17e37ea379e14711a53a",
    "memorized_laion_prompts.csv": "e7fa6c18bd3dc64a340915aba70db91b",
    "sd2_mem219.txt": "29d6df305fade495b34e14866033a88c",
}
OUTPUTS = ("webster-sdv1.jsonl", "wen-sdv1-500.jsonl", "sd2-219.jsonl")
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "memharness" / "data" / "sets"


def f32(x: float) -> float:
    """``x`` with the fewest significant digits that still round to the same float32."""
    if not math.isfinite(x):
        raise SystemExit(f"non-finite value {x!r} in a float column")
    target = struct.unpack("<f", struct.pack("<f", x))[0]
    if target != x:
        raise SystemExit(f"{x!r} is not a float32 value; the rounding rule assumes float32 columns")
    for digits in range(1, 10):
        short = float(f"{x:.{digits}g}")
        if struct.unpack("<f", struct.pack("<f", short))[0] == target:
            return short
    return x  # unreachable: 9 significant digits always round-trip a float32


def dumps(row: dict) -> str:
    return json.dumps(row, sort_keys=True, ensure_ascii=False, allow_nan=False)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_sources(source: Path) -> None:
    for name, digest in SOURCES.items():
        path = source / name
        if not path.is_file():
            raise SystemExit(f"{path}: missing; --source must be the folder described by SOURCE.md")
        if sha256(path) != digest:
            raise SystemExit(f"{path}: SHA-256 differs from the pinned {digest}; update SOURCES only on purpose")


def webster(source: Path) -> list[dict]:
    import pyarrow.parquet as pq  # only here: pyarrow is a one-off need of this script

    rows = pq.read_table(source / "sdv1_bb_edge_groundtruth.parquet").to_pylist()
    out = []
    for i, r in enumerate(rows):
        cat = r["overfit_type"]
        if cat not in CATEGORIES:
            raise SystemExit(f"parquet row {i}: unknown overfit_type {cat!r}")
        row = {
            "id": f"webster-{i:03d}",
            "text": r["caption"],
            "laion_index": int(r["index"]),
            "url": r["url"],
            "category": cat,
            "numdups": int(r["numdups"]),
            "scores": f32(r["scores"]),
            "edge_scores": f32(r["edge_scores"]),
            "mse_real_gen": f32(r["mse_real_gen"]),
            "webster_row": int(r["__index_level_0__"]),  # row in Webster's full ranked candidate list
        }
        seeds, urls = list(r["gen_seeds"] or []), list(r["retrieved_urls"] or [])
        if cat in ("TV", "RV"):
            row["gen_seeds"] = [int(s) for s in seeds]
            row["retrieved_urls"] = urls
        elif seeds or urls:
            raise SystemExit(f"parquet row {i}: {cat} row with gen_seeds/retrieved_urls; expected none")
        out.append(row)
    if len(out) != 500:
        raise SystemExit(f"parquet: {len(out)} rows, expected 500")
    for key in ("laion_index", "url", "text"):
        if len({row[key] for row in out}) != len(out):
            raise SystemExit(f"parquet: {key} values are not unique")
    return out


def wen(source: Path, webster_rows: list[dict]) -> list[dict]:
    lines = (source / "sdv1_500_memorized.jsonl").read_text(encoding="utf-8").splitlines()
    prompts = [json.loads(line) for line in lines if line.strip()]
    nemo = list(csv.DictReader((source / "memorized_laion_prompts.csv").read_text(encoding="utf-8").splitlines(),
                               delimiter=";"))
    if len(prompts) != 500 or len(nemo) != 500:
        raise SystemExit(f"wen: {len(prompts)} prompts and {len(nemo)} NeMo rows, expected 500 each")
    by_index = {row["laion_index"]: row for row in webster_rows}
    out = []
    for i, (p, n) in enumerate(zip(prompts, nemo, strict=True)):
        if (p["caption"], p["url"], str(p["index"])) != (n["Caption"], n["URL"], n["Index"]):
            raise SystemExit(f"wen line {i + 1}: NeMo CSV row {n['']} is a different prompt; the files must align")
        if n["type"] not in ("VM", "TM"):
            raise SystemExit(f"NeMo CSV row {n['']}: unknown type {n['type']!r}")
        row = {
            "id": f"wen-{i:03d}",
            "text": p["caption"],
            "laion_index": int(p["index"]),
            "url": p["url"],
            "nemo_type": n["type"],
        }
        for key in ("mean_sscd", "max_sscd"):
            if n[key]:
                row[f"nemo_{key}"] = f32(float(n[key]))
        match = by_index.get(row["laion_index"])
        if match is not None:  # Webster's own SD v1.4 label, joined on the (unique) LAION index
            if match["text"] != row["text"] or match["url"] != row["url"]:
                raise SystemExit(f"wen line {i + 1}: same LAION index as {match['id']} but another caption/url")
            row["category"] = match["category"]
            row["webster_id"] = match["id"]
        out.append(row)
    for key in ("laion_index", "url", "text"):
        if len({row[key] for row in out}) != len(out):
            raise SystemExit(f"wen: {key} values are not unique")
    return out


def sd2(source: Path) -> list[dict]:
    text = (source / "sd2_mem219.txt").read_text(encoding="utf-8")
    captions = [line for line in text.split("\n") if line.strip()]
    if len(captions) != 219 or len(set(captions)) != 219:
        raise SystemExit(f"sd2: {len(captions)} captions ({len(set(captions))} distinct), expected 219")
    return [{"id": f"sd2-{i:03d}", "text": c} for i, c in enumerate(captions)]


def counts(rows: list[dict], key: str, order: tuple[str, ...]) -> str:
    c = {k: sum(r.get(key) == k for r in rows) for k in order}
    return ", ".join(f"{k} {v}" for k, v in c.items())


PROVENANCE = """\
# Prompt sets shipped with memharness — provenance

Plain-text package data, read by `memharness.data.prompt_sets` (`load_set("webster")`, `"wen"`,
`"sd2-219"`). Produced by `scripts/convert_prompt_sets.py` from the source files below; do not edit by
hand. Only prompts and LAION metadata are here: no images, no model outputs.

## How these files were made

    python -m pip install pyarrow   # the converter's own need; memharness does not depend on it
    python scripts/convert_prompt_sets.py --source <folder holding the four source files>

The converter refuses sources whose SHA-256 differs from the ones listed here. Rows keep source
order; each line is `json.dumps(row, sort_keys=True, ensure_ascii=False)`; float columns (all
float32 in the sources) are written with the fewest digits that round-trip the float32 value.
The unit tests re-run the converter (when pyarrow and the sources are present) and compare bytes.

## Source files

| file | SHA-256 | MD5 |
|---|---|---|
{source_table}

## webster-sdv1.jsonl — Webster (2023), Stable Diffusion v1.4, 500 prompts

- Source: `sdv1_bb_edge_groundtruth.parquet`, Ryan Webster's Hugging Face dataset
  `fraisdufour/templates-verbs`, path `groundtruth_parquets/sdv1_bb_edge_groundtruth.parquet`
  (linked from github `ryanwebster90/onestep-extraction`). Byte copy from github
  `ruchikachavhan/diffusion-models-moe` @ `a11ad7db1457611d66b157247be350bdbfae60fc`,
  `modularity/datasets/sdv1_bb_edge_groundtruth.parquet`; its MD5 equals the one pinned for the Hub
  file in github `yupeeee/WAH` (`src/wah/diffusion/memorization/datasets/sdv1.py`).
- License: none stated by the publisher. Captions and URLs are LAION-2B metadata.
- Rows: 500, parquet row order. Categories: {webster_counts} — the denominators of the
  paper's Appendix A Table 1, row "SD v1.4".
- Fields: `id` (`webster-000`…`webster-499`), `text` (`caption`), `laion_index` (`index`), `url`,
  `category` (`overfit_type`: MV matching verbatim, TV template verbatim, RV retrieved verbatim,
  N none), `numdups`, `scores` (white-box attack score), `edge_scores` (one-step black-box edge
  score), `mse_real_gen` (min pixel SSE of generations vs the real image at 256×256; MV iff < 2.5e3
  and no template hit), `webster_row` (the parquet's pandas index: the row in Webster's ranked
  candidate list); TV/RV rows only: `gen_seeds`, `retrieved_urls` (seeds that gave the
  template/retrieved copy, and the template or retrieved image URLs).

## wen-sdv1-500.jsonl — Wen et al. (ICLR 2024), 500 memorized SD v1.4 prompts, with NeMo labels

- Sources: `sdv1_500_memorized.jsonl`, github `YuxinWenRick/diffusion_memorization` @
  `ca60157f40a5d3bc41763e922ce27187fdf1adc4`, `examples/sdv1_500_memorized.jsonl` (license: none
  stated); and `memorized_laion_prompts.csv`, NeMo (Hintersdorf et al., NeurIPS 2024), github
  `ml-research/localizing_memorization_in_diffusion_models` @
  `c8de0c620ec511cdb9e937905d1503cd9758910b`, `prompts/memorized_laion_prompts.csv` — MIT License,
  Copyright (c) 2024 ml-research@TUDarmstadt. The CSV lists the same 500 prompts in the same order
  (the converter checks caption, URL and index row by row), so its labels are merged here rather
  than shipped as a fourth set that would repeat the prompts.
- Rows: 500, source order. Fields: `id` (`wen-000`…`wen-499`), `text` (`caption`), `laion_index`
  (`index`), `url`; from NeMo: `nemo_type` (VM verbatim / TM template memorization: {nemo_counts}),
  `nemo_mean_sscd`, `nemo_max_sscd` (SSCD vs the training image; absent on the 13 rows where the
  CSV has none). NeMo's VM/TM are not Webster's categories and are not put in `category`.
- `category` / `webster_id`: Webster's own SD v1.4 label and row, joined on the LAION index (the
  converter checks caption and URL agree), present on {wen_labelled} rows: {wen_counts}. The
  other {wen_unlabelled} come from elsewhere in Webster's extraction and carry no category.

## sd2-219.jsonl — Stable Diffusion v2, 219 memorized prompts

- Source: `sd2_mem219.txt`, github `renjie3/MemAttn` (Ren et al., ECCV 2024) @
  `c66efd22d8ffd4b1c6b87835708fa1437a2e076b`, `prompt/sd2_mem219.txt` — MIT License,
  Copyright (c) 2024 Jie Ren.
- Rows: 219, file order. Fields: `id` (`sd2-000`…`sd2-218`), `text`. The source has no labels,
  URLs or indices. 219 = 4 MV + 215 TV by the paper's Table 1 (the non-N part of Webster's SD v2
  parquet), but the per-prompt split is unknown: that parquet was not found, so no `category` is
  given. (166 captions also occur in the SD v1 set; SD v1 labels do not apply to SD v2.)

## License notes

The prompts and URLs are LAION-2B metadata (LAION publishes its metadata under CC-BY 4.0); the
images they point to belong to their owners and are not included. The Webster and Wen lists carry
no license statement of their own; they are redistributed here as research metadata with
attribution. The NeMo labels and the SD v2 list are MIT-licensed; their copyright notices are
reproduced above.

## Produced files

| file | rows | bytes | SHA-256 |
|---|---|---|---|
{output_table}
"""


def write(out: Path, source: Path) -> None:
    check_sources(source)
    web = webster(source)
    sets = {"webster-sdv1.jsonl": web, "wen-sdv1-500.jsonl": wen(source, web), "sd2-219.jsonl": sd2(source)}
    out.mkdir(parents=True, exist_ok=True)
    table = []
    for name in OUTPUTS:
        data = "".join(dumps(row) + "\n" for row in sets[name]).encode("utf-8")
        (out / name).write_bytes(data)
        table.append(f"| `{name}` | {len(sets[name])} | {len(data)} | `{hashlib.sha256(data).hexdigest()}` |")
    wen_rows = sets["wen-sdv1-500.jsonl"]
    labelled = sum("category" in r for r in wen_rows)
    text = PROVENANCE.format(
        source_table="\n".join(f"| `{n}` | `{d}` | `{MD5[n]}` |" for n, d in SOURCES.items()),
        webster_counts=counts(web, "category", CATEGORIES),
        nemo_counts=counts(wen_rows, "nemo_type", ("VM", "TM")),
        wen_labelled=labelled, wen_unlabelled=len(wen_rows) - labelled,
        wen_counts=counts(wen_rows, "category", CATEGORIES),
        output_table="\n".join(table),
    )
    (out / "PROVENANCE.md").write_bytes(text.encode("utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help="folder holding the four source files")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise SystemExit("this converter needs pyarrow: python -m pip install pyarrow") from None
    write(args.out, args.source)
    for name in (*OUTPUTS, "PROVENANCE.md"):
        print(f"{args.out / name}: {(args.out / name).stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
