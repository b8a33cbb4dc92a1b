"""Defaults of the mitigation methods, importable without torch (the CLI's parsers read them)."""

DEFAULT_GAMMA = 0.2  # App H, Fig 25
# Our choice for jain-static (Jain et al. pick theirs per model): with SD's 50 "leading" DDIM
# steps, t = 981 … 801 are the first 10 steps, the early phase where §3 places overestimation.
DEFAULT_TRANSITION_T = 800
MITIGATION_METHODS = ("delta", "jain-static", "jain-dynamic")
