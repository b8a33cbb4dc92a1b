"""The figures of the report: what each shows, what its claims need to see, and how it is drawn.

Every ``drawn`` text says what colour means in the figure and what a band is, so the caption
under the image reads it without the code.
"""

from __future__ import annotations

from collections.abc import Sequence

from memharness.report import series
from memharness.report.figures import decomposition, noise, overestimation, scores, trajectories, x0
from memharness.report.figures.bands import BAND_TEXT
from memharness.report.figures.render import FigureDef, Rendered, render_figure
from memharness.report.figures.style import GROUP_COLOURS, SCORE_COLOURS
from memharness.report.series import Source

FIGURES: tuple[FigureDef, ...] = (
    FigureDef(
        key="fig01", label="Fig 1", title="Guidance amplifies the presence of x",
        claims=("overfit-without-guidance", "loss-reversal-with-guidance", "direction-preserved"),
        paper="Squared ℓ2 distance (x-axis, log scale) and cosine similarity (y-axis) between x̂0(t) and x after "
              "1, 10 and 50 denoising steps; top row g = 1, bottom row g = 7.5; colour: memorization score.",
        look_for="Top row: memorized (yellow) points sit left of normal ones at every step (overfitting). "
                 "Bottom row, first step: they sit right of normal ones (the loss reverses), yet their cosine "
                 "stays near 1 in every panel: x̂0 ≈ k·x points along x.",
        drawn="DDIM run; one point per generation (prompt × seed); " + SCORE_COLOURS + " Exact zeros of "
              "‖x̂0 − x‖² are drawn at the left edge of the log axis.",
        data=series.x0_error_and_direction, draw=x0.draw_x0, panels=(2, 3), colorbar=True,
    ),
    FigureDef(
        key="fig03", label="Fig 3", title="Guidance drives memorization",
        claims=("guidance-drives-memorization",),
        paper="Memorization scores with (y-axis) and without (x-axis) classifier-free guidance, one point per prompt.",
        look_for="Points above the dashed diagonal: a prompt's score is higher with guidance.",
        drawn="Scores of the DDIM runs at g = 1 and g = 7.5 as stored in the fixture, one point per prompt; "
              + GROUP_COLOURS + " Dotted lines: the 0.75 threshold; dashed: y = x.",
        data=series.scores_with_and_without_guidance, draw=scores.draw_scores,
    ),
    FigureDef(
        key="fig05", label="Fig 5", title="Conditional noise prediction captures memorized data",
        claims=("predictions-follow-noise", "unconditional-blind", "conditional-injects-x"),
        paper="Cosine similarity between noise predictions and latents at t = T for normal (blue) and memorized "
              "(red) prompts under g = 7.5: (a) cos(ε_u, x_T), (b) cos(ε_c, x_T), (c) cos(ε_u − x_T, −x), "
              "(d) cos(ε_c − x_T, −x).",
        look_for="(a, b) near 1 for both groups: the predictions follow x_T. (c) near 0: the unconditional "
                 "prediction knows nothing of x. (d) high for memorized prompts only: the conditional prediction "
                 "carries −x.",
        drawn="DDIM run at g = 7.5, first step; box plots of one value per generation (box: quartiles, black "
              "line: median, whiskers: 1.5 IQR; the claims test prompt means); " + GROUP_COLOURS,
        data=series.noise_cosines, draw=noise.draw_noise_cosines, panels=(2, 2),
    ),
    FigureDef(
        key="fig07", label="Fig 7", title="x_t converges under early overestimation",
        claims=("diversity-collapse",),
        paper="Trace of the covariance matrix of x_t across seeds over the denoising steps; colour: score.",
        look_for="Memorized (yellow) lines fall below normal ones early; after 10 steps (dotted line) the trace "
                 "correlates with the score (the paper: r = 0.7148 in absolute value).",
        drawn="DDIM run at g = 7.5; one line per prompt over the states x_T … x_0, log scale; " + SCORE_COLOURS,
        data=series.trace_covariance, draw=trajectories.draw_trace, colorbar=True,
    ),
    FigureDef(
        key="fig08", label="Fig 8", title="Overestimation aligns denoising updates with memorized directions",
        claims=("update-alignment",),
        paper="Cosine similarity between the first principal component of Δx_{t−1} = x_{t−1} − x_t (across seeds) "
              "and the memorized training image x.",
        look_for="The memorized (red) line is high in the early steps, above the normal (blue) one.",
        drawn="DDIM run at g = 7.5; line: mean over the group's prompts; " + BAND_TEXT + "; " + GROUP_COLOURS
              + " The claim's PCA reading (centred or uncentred) is in the axis label.",
        data=series.update_alignment, draw=trajectories.draw_alignment,
    ),
    FigureDef(
        key="fig10", label="Fig 10", title="Faster dominance of x under memorization",
        claims=("decomposition-g1", "early-dominance"),
        paper="Least-squares decomposition x_t = w0·x + wT·x_T (or on the final latent x_0): w0 (blue, solid) and "
              "wT (red, solid) against √ᾱ_t (blue, dashed) and √(1−ᾱ_t) (red, dashed), one panel per group; "
              "top row g = 1, bottom row g = 7.5.",
        look_for="g = 1: memorized prompts follow the schedule. g = 7.5: for memorized prompts w0 rises "
                 "above √ᾱ_t and wT drops below √(1−ᾱ_t) early, on x and on x_0.",
        drawn="DDIM run, over the states x_T … x_0; rows g = 1 and g = 7.5, columns the decomposition on x and "
              "on x_0, both groups in each panel. Unlike the paper, " + GROUP_COLOURS + " Line style: solid w0, "
              "dashed wT; gray: the schedule, solid √ᾱ_t and dashed √(1−ᾱ_t). Line: mean over the group's prompts; "
              + BAND_TEXT + ".",
        data=series.decomposition, draw=decomposition.draw_decomposition, panels=(2, 2),
    ),
    FigureDef(
        key="fig11", label="Fig 11", title="Decomposition deviations predict memorization severity",
        claims=("deviation-predicts-severity",),
        paper="Memorization score against (a) Σ(E[w0] − √ᾱ_t) (blue), (b) −Σ(E[wT] − √(1−ᾱ_t)) (red) and "
              "(c) Σ δ(t) (purple), with Pearson's r (the paper: 0.9203, 0.6997, 0.9224).",
        look_for="Strong positive correlations in all three panels.",
        drawn="DDIM run at g = 7.5, decomposition on x, sums over t = T … 1; one point per prompt; r: Pearson over "
              "all prompts. Unlike the paper's panel colours, " + GROUP_COLOURS + " Dotted: the 0.75 threshold.",
        data=series.severity, draw=decomposition.draw_severity, panels=(1, 3),
    ),
    FigureDef(
        key="fig12", label="Fig 12", title="Overestimation occurs under memorization",
        claims=("overestimation",),
        paper="Distribution of k = ‖x̂0(t)‖/‖x‖ across timesteps; a dashed line marks k = 1.",
        look_for="At g = 7.5 the memorized (red) distribution lies right of k = 1 in the early steps (shaded).",
        drawn="DDIM run; per step the group's median (line), interquartile range (dark band) and 5–95 % range "
              "(light band) over all its generations: the bands are the spread of k, not a CI; " + GROUP_COLOURS
              + " g = 1 beside g = 7.5 for contrast.",
        data=series.overestimation_over_steps, draw=overestimation.draw_k, panels=(1, 2),
    ),
    FigureDef(
        key="eq13", label="Eq 13", title="Overestimation grows linearly with guidance",
        claims=("linear-in-guidance",),
        paper="No figure in the paper; Eq 13 (illustrated by Fig 6): under memorization the first-step estimate "
              "is x̂0(T) ≈ g·x, so k = ‖x̂0(T)‖/‖x‖ ≈ g.",
        look_for="Memorized (red) lines lie on the dashed line k = g, with slope 1.",
        drawn="DDIM run at every recorded guidance scale; thin lines: one per prompt, k at t = T (mean over "
              "seeds); thick line: the group's mean; " + BAND_TEXT + "; " + GROUP_COLOURS,
        data=series.overestimation_against_guidance, draw=overestimation.draw_k_against_g,
    ),
    FigureDef(
        key="fig13", label="Fig 13",
        title="Unconditional predictions replicate x_T, conditional ones also contain memorized information",
        claims=("unconditional-blind", "conditional-injects-x", "magnitude-explained"),
        paper="Distribution of the squared magnitude of the difference between x_T and (a) the unconditional and "
              "(b) the conditional noise prediction at t = T, normal (blue) and memorized (red).",
        look_for="(a) nearly zero for both groups; (b) normal like (a), memorized shifted to larger values. "
                 "(c), added here for the §4 claim: ‖ε_c − ε_u‖ ≈ s‖x‖ for memorized prompts (ratio ≈ 1).",
        drawn="DDIM run at g = 7.5, first step; (a, b) one value per generation on shared bins, (c) one value per "
              "prompt, s = √ᾱ_T / √(1−ᾱ_T); histograms are densities; " + GROUP_COLOURS,
        data=series.noise_residuals, draw=noise.draw_residuals, panels=(1, 3),
    ),
    FigureDef(
        key="fig15", label="Fig 15", title="Guidance amplifies the presence of x, under DDPM",
        claims=("sampler-agnostic",),
        paper="Fig 1 for DDPM sampling (App E).",
        look_for="The same pattern as Fig 1.",
        drawn="DDPM run; one point per generation; labels from the DDIM g = 7.5 scores, as the check; "
              + SCORE_COLOURS,
        data=lambda src: series.x0_error_and_direction(src, sampler=src.param("sampler-agnostic", "sampler")),
        draw=x0.draw_x0, panels=(2, 3), colorbar=True,
    ),
    FigureDef(
        key="fig16", label="Fig 16", title="Decomposition deviations predict memorization severity, under DDPM",
        claims=("sampler-agnostic",),
        paper="Fig 11 for DDPM sampling (App E).",
        look_for="Strong positive correlations, as in Fig 11.",
        drawn="DDPM run at g = 7.5; scores: the DDIM g = 7.5 scores, as the check; " + GROUP_COLOURS,
        data=lambda src: series.severity(src, sampler=src.param("sampler-agnostic", "sampler")),
        draw=decomposition.draw_severity, panels=(1, 3),
    ),
    FigureDef(
        key="dose", label="Dose response", title="Memorization grows with duplication, and guidance drives it",
        claims=("guidance-drives-memorization", "linear-in-guidance"),
        paper="No figure in the paper. For models whose prompts carry a duplication count (manifest field "
              "duplicates, e.g. the digits-graded organism): the score with and without guidance, and the "
              "first-step k, against how often the prompt's training image was duplicated.",
        look_for="(a) The score rises with the count; at middle counts it is below 0.75 at g = 1 and above it at "
                 "g = 7.5 (Fig 3's rise, per dose). (b) k at g = 7.5 rises with the count towards g (Eq 13).",
        drawn="DDIM runs at g = 1 and g = 7.5; one point per prompt with a count (mean over seeds); "
              + GROUP_COLOURS + " The guidance scale is the marker and line style (g = 1: open circles, dashed; "
              "g = 7.5: triangles, solid). Black lines join the means per count (no band: the points show the "
              "spread of the few prompts per count); gray: the mean of the prompts without a count (class "
              "prompts). ρ: Spearman against log count over the prompts with a count.",
        data=series.dose_response, draw=scores.draw_dose, panels=(1, 2), optional=True,
    ),
)


def figures_for(claim: str) -> list[FigureDef]:
    return [f for f in FIGURES if claim in f.claims]


def render_all(sources: Sequence[Source], figures: Sequence[FigureDef] = FIGURES) -> list[Rendered]:
    return [render_figure(defn, sources) for defn in figures]
