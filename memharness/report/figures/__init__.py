"""The paper's figures, redrawn with matplotlib from fixtures (``memharness report``).

One :class:`FigureDef` per figure (:mod:`.catalogue`): which claims it illustrates, what the
paper's caption says, what the claim needs to see in it, where its numbers come from
(:mod:`memharness.report.series`) and how to draw one model's block of panels (one module per
figure family). :func:`render_figure` (:mod:`.render`) lays the models' blocks out as small
multiples and returns PNG bytes. What colour means is fixed project-wide (:mod:`.style`); the
bands of mean curves are t-based 95 % CIs (:mod:`.bands`).
"""

from memharness.report.figures.bands import mean_ci
from memharness.report.figures.catalogue import FIGURES, figures_for, render_all
from memharness.report.figures.render import FigureDef, Rendered, build_figure, render_figure

__all__ = ["FIGURES", "FigureDef", "Rendered", "build_figure", "figures_for", "mean_ci", "render_all",
           "render_figure"]
