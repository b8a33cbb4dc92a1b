"""Memorization detectors evaluated on recorded fixtures (App H's δ(t), Wen et al.'s ‖ε_c − ε_u‖)."""

from memharness.detection.evaluate import DetectionResult, DetectorRow, evaluate_detectors

__all__ = ["DetectionResult", "DetectorRow", "evaluate_detectors"]
