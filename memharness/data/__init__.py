"""Prompt sets and their paired training images."""

from memharness.data.prompts import load_prompt_file

__all__ = ["load_prompt_file"]
