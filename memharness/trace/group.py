"""One (sampler, guidance scale) of a fixture across all prompts (:class:`Group`), and the bounded cache
of its per-step Gram columns (:class:`ColumnCache`) that the reader (``trace.store.Fixture``) fills."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from memharness.analysis import guidance_magnitude
from memharness.errors import MemharnessError
from memharness.trace import schema

# How much stacked Gram data (float32 columns as stored, float64 columns as read) a Fixture keeps; beyond it the
# least recently used columns go and are read again from the files when asked for. At the paper's scale (436
# prompts) everything fits; at 10x it bounds memory. MEMHARNESS_GROUP_CACHE_MB overrides it.
DEFAULT_COLUMN_CACHE_BYTES = 512 * 2**20

# Gram columns in the order they are kept when not all fit in the cache at stacking time: the ones the claims
# read over every step first (the x̂0 error, x_t against x_T, x and x_0), the first-step residuals after.
_PAIR_PRIORITY = (("x0_err", "x0_err"), ("x0_err", "x"), ("x_t", "x_T"), ("x_t", "x"), ("x_t", "x_0"),
                  ("x_t", "x_t"), ("x_t", "x0_err"), ("x0_err", "x_T"))


def column_order(pairs: tuple[tuple[str, str], ...]) -> list[int]:
    """Indices of a group's Gram columns (``pairs`` = schema.step_pairs), most read first (_PAIR_PRIORITY)."""
    return sorted(range(len(pairs)), key=lambda k: next(
        (i for i, pair in enumerate(_PAIR_PRIORITY) if pair in (pairs[k], pairs[k][::-1])), len(_PAIR_PRIORITY)))


class ColumnCache:
    """Least-recently-used store of Gram columns, keyed (sampler, g, column, dtype), bounded in bytes."""

    def __init__(self, budget: int):
        self.budget = budget
        self.entries: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self.bytes = 0

    def get(self, key: tuple) -> np.ndarray | None:
        value = self.entries.get(key)
        if value is not None:
            self.entries.move_to_end(key)
        return value

    def pop(self, key: tuple) -> np.ndarray | None:
        value = self.entries.pop(key, None)
        if value is not None:
            self.bytes -= value.nbytes
        return value

    def make_room(self, nbytes: int) -> None:
        while self.entries and self.bytes + nbytes > self.budget:
            _, old = self.entries.popitem(last=False)
            self.bytes -= old.nbytes

    def put(self, key: tuple, value: np.ndarray) -> None:
        self.pop(key)
        self.make_room(value.nbytes)
        self.entries[key] = value
        self.bytes += value.nbytes

    def room_for(self, nbytes: int) -> int:
        """How many columns of nbytes fit, after evicting everything older if need be."""
        return self.budget // nbytes if nbytes else 0


@dataclass(frozen=True)
class Group:
    """One (sampler, guidance scale) across all prompts of a fixture, arrays stacked on axis 0 (P).

    ``arrays`` holds the small per-group arrays (gram_final, trace_cov, pc1_cos_x, pc1_var_ratio,
    final_cos, and guidance_norm where every prompt file has it) as stored. The per-step Gram matrix is
    kept column by column (one column per pair, (P, N, S)): :meth:`inner` casts a column to float64 once
    and keeps the cast, read-only, in the fixture's bounded column cache; a column no longer cached is
    read again from the fixture's files.
    """

    sampler: str
    guidance: float
    timesteps: np.ndarray  # (S,)
    seeds: tuple[int, ...]
    prompt_ids: tuple[str, ...]
    with_uncond: bool
    arrays: dict[str, np.ndarray]
    column: Callable[[int], np.ndarray] | None = field(default=None, repr=False, compare=False)
    _final64: dict[int, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def _gram_column(self, index: int) -> np.ndarray:
        if self.column is not None:
            return self.column(index)
        return self.arrays["gram"][..., index].astype(np.float64)  # a Group built by hand, with a whole gram

    def inner(self, a: str, b: str) -> np.ndarray:
        """⟨a, b⟩ per prompt, seed and step: (P, N, S), float64, read-only. One of a, b must be a step vector."""
        pairs = schema.step_pairs(self.with_uncond)
        for key in ((a, b), (b, a)):
            if key in pairs:
                return self._gram_column(pairs.index(key))
        raise MemharnessError(f"fixture {self.sampler} g={self.guidance:g}: no inner product ⟨{a}, {b}⟩ recorded")

    def inner_final(self, a: str, b: str) -> np.ndarray:
        """⟨a, b⟩ among x_T, x_0, x per prompt and seed: (P, N), float64, read-only."""
        pairs = schema.const_pairs()
        for key in ((a, b), (b, a)):
            if key in pairs:
                index = pairs.index(key)
                if index not in self._final64:  # cast once: (P, N) per pair is small
                    value = self.arrays["gram_final"][..., index].astype(np.float64)
                    value.setflags(write=False)
                    self._final64[index] = value
                return self._final64[index]
        raise MemharnessError(f"fixture: no final inner product ⟨{a}, {b}⟩ recorded")

    def guidance_norms(self) -> np.ndarray:
        """‖ε_c − ε_u‖ per prompt, seed and step (Wen et al.'s magnitude; §4): (P, N, S), float64. Needs ε_u (g ≠ 1).

        The recorded ``guidance_norm`` where the fixture has it; older fixtures lack it, and it is rebuilt from
        the Gram entries as ‖r_c − r_u‖ (r = ε − x_T), which cancels where ε_c ≈ ε_u (late steps)."""
        if not self.with_uncond:
            raise MemharnessError(f"fixture {self.sampler} g={self.guidance:g}: ε_u is not recorded at g = 1; "
                                  "use a run with g ≠ 1")
        recorded = self.arrays.get("guidance_norm")
        if recorded is not None:
            return recorded.astype(np.float64)
        return guidance_magnitude(self.inner("eps_c_res", "eps_c_res"), self.inner("eps_u_res", "eps_u_res"),
                                  self.inner("eps_u_res", "eps_c_res"))

    def inner_states(self, a_state: str, b: str) -> np.ndarray:
        """⟨x_state, b⟩ for all S+1 states x_T … x_0, with b in x_T, x_0, x: (P, N, S+1)."""
        del a_state  # the state vector is x_t by construction; kept for readable call sites
        return np.concatenate([self.inner("x_t", b), self.inner_final("x_0", b)[..., None]], axis=-1)

    def norm2_states(self) -> np.ndarray:
        """‖x_state‖² for all S+1 states: (P, N, S+1)."""
        return np.concatenate([self.inner("x_t", "x_t"), self.inner_final("x_0", "x_0")[..., None]], axis=-1)
