"""What every claim check needs: its parameters, labels, fixture groups and the verdict it returns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from memharness.analysis import decomposition_weights, overestimation_factor, x0_hat_cosine, x0_hat_norm2
from memharness.claims import needs
from memharness.claims.checks.registry import CHECKS, COMMON_PARAMS
from memharness.claims.params import SAMPLERS, Param, resolve
from memharness.claims.spec import ClaimSpec
from memharness.claims.statistics import Decision
from memharness.claims.verdict import Outcome, Verdict
from memharness.schedule import NoiseSchedule
from memharness.scoring.labels import Labels, memorization_labels
from memharness.trace.group import Group
from memharness.trace.store import Fixture

# Declarations several checks share.
SAMPLER = Param(str, "ddim", choices=SAMPLERS, doc="the sampler of the run the check reads")
MIN_AUC = Param(float, 0.75, low=0.5, high=1.0,
                doc="the AUC a memorized-versus-normal contrast must clear (ours: 3 in 4 pairs; the paper gives none)")
EARLY_STEPS = Param(int, 10, low=1, high=10_000,
                    doc="the first steps, where overestimation lives (Fig 12); 10 of 50 is our 'early' (t = 40)")


def guidance(default: float, doc: str = "the guidance scale g (Eq 8) of the run the check reads") -> Param:
    """One g. The names: ``guidance`` (the run's g), ``baseline_guidance`` (the g a contrast starts from),
    ``guidance_scales`` (several g's), ``label_guidance`` (the g of the scores the labels come from);
    memharness.claims.needs.RUN_SCALES lists those that name the run."""
    return Param(float, default, low=0.0, high=100.0, doc=doc)


class Context:
    """One claim checked against one fixture, with the claim file's parameters validated."""

    def __init__(self, fixture: Fixture, spec: ClaimSpec, *, declared: Mapping[str, Param] | None = None):
        self.fixture, self.spec = fixture, spec
        if declared is None:
            declared = CHECKS[spec.id].params if spec.id in CHECKS else COMMON_PARAMS
        self.params = resolve(declared, spec.parameters, source=spec.source or spec.id)
        self._labels: Labels | None = None

    def unmet_needs(self) -> str | None:
        """Why the fixture lacks what the claim file's ``needs`` and run parameters ask for, or None."""
        return needs.unmet(self.fixture, self.spec.needs, self.params)

    def param(self, name: str) -> Any:
        """A declared parameter's value (the claim file's, else the declaration's default)."""
        return self.params[name]

    @property
    def schedule(self) -> NoiseSchedule:
        return NoiseSchedule.from_config(self.fixture.model["scheduler"])

    def labels(self) -> Labels | None:
        if self._labels is None:
            self._labels = memorization_labels(
                self.fixture, sampler=self.param("label_sampler"), guidance=float(self.param("label_guidance")),
                threshold=float(self.param("threshold")),
            )
        return self._labels

    def missing(self, sampler: str, *scales: float) -> str | None:
        """Why the fixture cannot feed this claim (a SKIP reason), or None."""
        if reason := needs.run_unmet(self.fixture, sampler, scales):
            return reason
        if self.labels() is None:
            return (f"the fixture has no memorization scores for {self.param('label_sampler')} "
                    f"g={float(self.param('label_guidance')):g}")
        return None

    def preflight(self, sampler: str, *scales: float) -> Verdict | None:
        """SKIP when the fixture lacks the data; INCONCLUSIVE when a group is under ``min_group``; else None."""
        if reason := self.missing(sampler, *scales):
            return self.skip(reason)
        n, least = self.labels().n, int(self.param("min_group"))
        small = [f"{size} {name}" for name, size in n.items() if size < least]
        if small:
            return Verdict(id=self.spec.id, title=self.spec.title, reference=self.spec.reference,
                           verdict=Outcome.INCONCLUSIVE, paper=self.spec.paper_value, n=n,
                           reason=f"{' and '.join(small)} prompts, fewer than {least} in a group",
                           details={"labels": self._label_source()}, scope=self.spec.scope)
        return None

    def group(self, sampler: str, guidance: float) -> Group:
        return self.fixture.group(sampler, float(guidance))

    def decide_opts(self) -> dict[str, Any]:
        return {"min_group": self.param("min_group"), "alpha": self.param("alpha")}

    def verdict(self, decision: Decision, **details: Any) -> Verdict:
        labels = self.labels()
        n = labels.n if labels is not None else {}
        if labels is not None:
            details.setdefault("labels", self._label_source())
        return Verdict(
            id=self.spec.id, title=self.spec.title, reference=self.spec.reference, verdict=decision.outcome,
            paper=self.spec.paper_value, reason=decision.reason, measured=decision.measured, ci=decision.ci, n=n,
            test=decision.test, statistic=decision.statistic, p_value=decision.p_value, details=details,
            scope=self.spec.scope, floor=decision.floor, higher_is_stronger=decision.higher_is_stronger,
        )

    def _label_source(self) -> str:
        labels = self.labels()
        return f"{labels.scorer} score on {labels.source} ≥ {self.param('threshold'):g}"

    def skip(self, reason: str) -> Verdict:
        return Verdict(id=self.spec.id, title=self.spec.title, reference=self.spec.reference,
                       verdict=Outcome.SKIP, paper=self.spec.paper_value, reason=reason, scope=self.spec.scope)


def run_check(fixture: Fixture, spec: ClaimSpec) -> Verdict:
    """The claim's check on ``fixture``, or SKIP naming what its ``needs`` lack there."""
    ctx = Context(fixture, spec)
    if reason := ctx.unmet_needs():
        return ctx.skip(reason)
    return CHECKS[spec.id](ctx)


# --- per-seed quantities of a Group, shaped (P, N, S) or (P, N, S+1) ---------------------------------
def x_norm2(group: Group) -> np.ndarray:
    return group.inner_final("x", "x")[..., None]  # (P, N, 1), broadcasts over steps


def x0_error_norm2(group: Group) -> np.ndarray:
    """‖x̂0(t) − x‖² per step (Eq 10, Fig 1 x-axis)."""
    return group.inner("x0_err", "x0_err")


def overestimation(group: Group) -> np.ndarray:
    """k = ‖x̂0(t)‖/‖x‖ per step (App B.1)."""
    x2 = x_norm2(group)
    return overestimation_factor(x0_hat_norm2(x0_error_norm2(group), group.inner("x0_err", "x"), x2), x2)


def x0_direction(group: Group) -> np.ndarray:
    """cos(x̂0(t), x) per step (Fig 1 y-axis)."""
    return x0_hat_cosine(x0_error_norm2(group), group.inner("x0_err", "x"), x_norm2(group))


def weights(group: Group, reference: str) -> tuple[np.ndarray, np.ndarray]:
    """Eq 14 least-squares weights (w0, wT) of every state x_T … x_0 on (reference, x_T): (P, N, S+1)."""
    ref_xT = group.inner_final(reference, "x_T")[..., None]
    return decomposition_weights(
        group.inner_states("x_t", reference),
        group.inner_states("x_t", "x_T"),
        group.inner_final(reference, reference)[..., None],
        ref_xT,
        group.inner_final("x_T", "x_T")[..., None],
    )


def state_schedule(ctx: Context, group: Group, *, sampler: str) -> tuple[np.ndarray, np.ndarray]:
    """(√ᾱ, √(1−ᾱ)) of every state x_T … x_0 (the final state per set_alpha_to_one): (S+1,)."""
    states = np.append(group.timesteps, -1)
    return ctx.schedule.theoretical_weights(states, sampler=sampler)
