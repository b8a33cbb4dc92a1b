"""Model organisms: small diffusers networks trained here, on bundled data, whose memorization
emerged from training (not by construction, as in the analytic model).

``digits``: a ``UNet2DConditionModel`` with cross-attention over learned prompt embeddings,
trained on scikit-learn's 8×8 digits with designed duplication (``memharness zoo train digits``).
Its weights ship in ``memharness/zoo/weights/`` with a model card (``digits.md``).
"""

ORGANISMS = ("digits",)

__all__ = ["ORGANISMS"]
