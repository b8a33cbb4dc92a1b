"""Fixtures: recording trajectories (``tracer``, ``recorder``) and the fixture format and store.

The names below are the package's curated API for reading and writing fixtures; each lives in the module
that does that one job (``store``: the verified reader, ``group``: one stacked (sampler, guidance scale),
``writer``, ``manifest``).
"""

from memharness.trace.group import Group
from memharness.trace.manifest import MANIFEST, prompt_set_hash, read_manifest
from memharness.trace.store import Fixture
from memharness.trace.writer import FixtureWriter, RunWriter

__all__ = ["MANIFEST", "Fixture", "FixtureWriter", "Group", "RunWriter", "prompt_set_hash", "read_manifest"]
