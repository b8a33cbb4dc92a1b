"""The detector table of ``memharness detect``, rich or plain, and the notes printed under it."""

from __future__ import annotations

from rich import box
from rich.table import Table
from rich.text import Text

from memharness.detection.evaluate import DetectionResult, DetectorRow

_NONE = "—"


def _percent(value: float | None) -> str:
    return _NONE if value is None else f"{100 * value:.0f} %"


def _step(row: DetectorRow) -> str:
    return _NONE if row.step_mean is None else f"{row.step_mean:.2f} ± {row.step_std:.2f}"


def _auc_style(auc: float, plain: bool) -> str:
    if plain:
        return ""
    return "bold green" if auc >= 0.9 else "bold yellow" if auc >= 0.75 else "bold red"


def detector_table(result: DetectionResult, *, plain: bool = False) -> Table:
    fpr = result.settings["fpr"]
    table = Table(title=f"memharness detect · {result.model}", box=box.ASCII if plain else box.SIMPLE_HEAVY,
                  title_justify="left")
    table.add_column("detector", no_wrap=True)
    table.add_column("AUC", justify="right")
    table.add_column(f"TPR @ {100 * fpr:g}% FPR", justify="right", no_wrap=True)
    table.add_column("threshold", justify="right")
    table.add_column("step (mem)", justify="right", no_wrap=True)
    table.add_column("TPR @ γ", justify="right")
    table.add_column("FPR @ γ", justify="right")
    table.add_column("n mem/norm", justify="right")
    for row in result.rows:
        table.add_row(Text(row.label), Text(f"{row.auc:.3f}", style=_auc_style(row.auc, plain)), f"{row.tpr:.2f}",
                      f"{row.threshold:.4g}", _step(row), _percent(row.flagged_memorized),
                      _percent(row.flagged_normal), f"{row.n_memorized}/{row.n_normal}")
    return table


def note_lines(result: DetectionResult) -> list[str]:
    """What was scored and how, one line each (the table's footnotes)."""
    s = result.settings
    rho = "d" if s["rho2"] == s["latent_size"] else "set by --rho2"
    return [
        f"{s['sampler']} g={s['guidance']:g}, {s['steps']} steps × {s['seeds']} seeds; labels: {result.labels}",
        f"δ (App H): score = max δ over states {s['first_state']}–{s['window']}, mean over seeds; step = first "
        f"state ≥ {s['first_state']} with δ > −{s['gamma']:g} (a miss counts as {s['steps']}); "
        f"online: x̂0(t) rescaled to ρ² = {s['rho2']:g} ({rho}); TPR / FPR @ γ: memorized / normal generations "
        "the rule flags",
        f"Wen: ‖ε_c − ε_u‖ over steps [{s['wen_start']}, {s['wen_end']}), first {s['wen_generations']} seeds; "
        f"TPR at {100 * s['fpr']:g}% FPR flags score > threshold",
    ]
