"""Defaults of the mitigation methods, importable without torch (the CLI's parsers read them)."""

DEFAULT_GAMMA = 0.2  # App H, Fig 25
# Our choice for jain-static (Jain et al. pick theirs per model): with SD's 50 "leading" DDIM
# steps, t = 981 … 801 are the first 10 steps, the early phase where §3 places overestimation.
DEFAULT_TRANSITION_T = 800
# Every method `memharness mitigate --methods` knows (memharness.mitigation.policies says what each
# does); DEFAULT_METHODS, the ones it runs by default, are those the shipped analytic and digits
# fixtures recorded. Jain et al.'s own transition rule is jain-dynamic-min; jain-dynamic is our
# first reading of it (switch at the first rise of ‖ε_c − ε_u‖), kept so those fixtures stay valid.
MITIGATION_METHODS = ("delta", "jain-static", "jain-dynamic", "jain-static-neg", "jain-dynamic-min")
DEFAULT_METHODS = ("delta", "jain-static", "jain-dynamic")
