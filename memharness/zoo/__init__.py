"""Model organisms: small diffusers networks trained here, on bundled data, whose memorization
emerged from training (not by construction, as in the analytic model).

``digits``: a ``UNet2DConditionModel`` with cross-attention over learned prompt embeddings,
trained on scikit-learn's 8×8 digits with designed duplication (``memharness zoo train digits``).
Its weights ship in ``memharness/zoo/weights/`` with a model card (``digits.md``).

``digits-graded``: the same network and recipe, with prompts whose training image is duplicated
at graded counts 1…128 and mixed with other images of its class, so that memorization grows with
the count and guidance drives it (``memharness zoo train digits-graded``; ``digits-graded.md``).
"""

ORGANISMS = ("digits", "digits-graded")

__all__ = ["ORGANISMS"]
