"""pytest plugin: every claim × model is a pytest item, so -k, -n auto and --junitxml work as usual.

    pytest --memharness-model analytic [--memharness-fixtures DIR] [--memharness-strict]
           [--memharness-baseline FILE [--memharness-fail-on-drift]] [-n auto]

Items are named ``memharness::<model>::<claim>``. The plugin is inert unless --memharness-model or
--memharness-fixtures is given. At start-up it imports only pytest; the claim engine (numpy, scipy,
safetensors, never torch) loads at collection, and each process opens each fixture once.

Outcomes: FAIL fails with the claim, measured value [CI], paper value and reason; SKIP skips;
INCONCLUSIVE skips too ("INCONCLUSIVE: reason"; the fixture decided nothing, so it is not a pass, as in
`check --format junit`), and fails with --memharness-strict. Against a baseline, as `check --baseline`:
a regression fails, a FAIL the baseline records passes with a ``KnownFailureWarning``, and with
--memharness-fail-on-drift drift away from the paper's value fails too. The verdict's numbers go to
``item.user_properties`` (hence --junitxml).
An item's location is its claim file (``<claim>.yaml:1``): failures, skips and warnings point there,
not at this plugin.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import pytest


class KnownFailureWarning(UserWarning):
    """A FAIL the baseline already records (--memharness-baseline): a known finding, not a regression."""


class ClaimFailed(Exception):
    """A FAIL verdict (or INCONCLUSIVE under --memharness-strict), or a regression; the message is the whole report."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("memharness", "claims of 'How Diffusion Models Memorize' as test items")
    group.addoption("--memharness-model", action="append", default=[], metavar="M",
                    help="check the claims on model M's fixtures (repeatable)")
    group.addoption("--memharness-fixtures", metavar="DIR",
                    help="one model's fixture folder, or with several models a folder of <model>/ folders "
                         "(default ./fixtures/<model>, else the shipped one)")
    group.addoption("--memharness-strict", action="store_true", help="an INCONCLUSIVE claim fails")
    group.addoption("--memharness-baseline", metavar="FILE",
                    help="a `memharness check --format json` report to compare with: only a regression against "
                         "it fails (a FAIL the baseline already records is a known finding), as `check --baseline`")
    group.addoption("--memharness-fail-on-drift", action="store_true",
                    help="with --memharness-baseline, drift away from the paper's value fails too, as "
                         "`check --fail-on-drift`; a move toward it never does")


_NODE_ID = re.compile(r"^(?:.*[/\\])?memharness::([^:]+)(?:::([^:]+))?$")


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    """Node ids rerun as printed: ``pytest memharness::analytic::linear-in-guidance`` (or the
    ``../memharness::…`` form a FAILED line shows from a subfolder) selects that item. pytest would
    take the argument for a path; it is taken out here, names the model when no --memharness-model
    does, and with no other path given nothing but the claims is collected."""
    selected = []
    for arg in list(args):
        match = _NODE_ID.match(arg)
        if match and not arg.startswith("-"):
            args.remove(arg)
            selected.append(match.groups())
    if not selected:
        return
    early_config.stash[_SELECTED] = selected
    given = {a.split("=")[0] for a in args if a.startswith("--memharness-")}
    if "--memharness-model" not in given:
        for model in dict.fromkeys(model for model, _ in selected):
            args.extend(["--memharness-model", model])
    if not any(not a.startswith("-") for a in _positionals(args)):
        args.append("--ignore-glob=*")  # the claims only, not the folder's own tests


def _positionals(args: list[str]) -> list[str]:
    """Arguments that are not options or option values (roughly: pytest's own parser decides)."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = "=" not in arg and arg in _VALUED
        else:
            out.append(arg)
    return out


_VALUED = {"--memharness-model", "--memharness-fixtures", "--memharness-baseline", "-k", "-m", "-p", "-n", "-c",
           "-o", "--junitxml", "--junit-xml", "--rootdir", "--confcutdir", "--basetemp", "-W", "--deselect",
           "--ignore", "--ignore-glob", "--maxfail", "--tb", "-r"}
_SELECTED = pytest.StashKey[list]()


# The plugin's option for each field a FieldError names; other fields keep their own name.
_OPTIONS = {"model": "--memharness-model", "fixtures": "--memharness-fixtures", "baseline": "--memharness-baseline"}


def _error_line(exc: BaseException) -> str:
    """The one line of a MemharnessError, a field named as this plugin's option (FieldError)."""
    from memharness.errors import FieldError

    def option(field: str) -> str:
        return _OPTIONS.get(field, field)

    text = exc.render(option(exc.field), option=option) if isinstance(exc, FieldError) else str(exc)
    return "memharness: error: " + text


def _active(config: pytest.Config) -> bool:
    return bool(config.getoption("memharness_model") or config.getoption("memharness_fixtures"))


def pytest_report_header(config: pytest.Config) -> str | None:
    if not _active(config):
        return None
    models = ", ".join(config.getoption("memharness_model")) or "the fixture's"
    return f"memharness: models {models}; fixtures {config.getoption('memharness_fixtures') or 'fixtures/<model>'}"


@pytest.hookimpl(tryfirst=True)  # before -k, -m and --deselect filter the items
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _active(config):
        return
    # genitems reports the collection like any other (counts, collection errors); the same
    # options give the same items in the same order on every xdist worker.
    items.extend(session.genitems(ClaimsCollector.from_parent(session, name="memharness", nodeid="memharness")))
    selected = config.stash.get(_SELECTED, None)
    if selected:  # node ids given as arguments: only those
        def wanted(item: pytest.Item) -> bool:
            parts = item.nodeid.split("::")
            if parts[0] != "memharness":
                return True  # the tests of a path given beside the node ids run as usual
            return any(
                len(parts) > 1 and parts[1] == model and (claim is None or parts[2:] == [claim])
                for model, claim in selected)

        keep = [item for item in items if wanted(item)]
        dropped = [item for item in items if not wanted(item)]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        items[:] = keep


class ClaimsCollector(pytest.Collector):
    """``memharness``: opens the fixture of each model and yields one ModelCollector per model."""

    def collect(self) -> list[pytest.Collector]:
        from memharness.claims import load_specs
        from memharness.cli.runtime import fixture_targets, open_fixture

        config = self.config
        targets = fixture_targets(config.getoption("memharness_model"), config.getoption("memharness_fixtures"))
        specs = load_specs()
        baseline_file = config.getoption("memharness_baseline")
        baselines = None
        if baseline_file:
            from pathlib import Path

            from memharness.claims.regression import load_baseline

            baselines = load_baseline(Path(baseline_file))
        children = []
        for model, root in targets:
            model, fixture = open_fixture(model, root)
            base = None
            if baselines is not None:
                from pathlib import Path

                from memharness.claims.regression import baseline_for

                base = baseline_for(baselines, model, Path(baseline_file))
            children.append(ModelCollector.from_parent(self, name=model, fixture=fixture, specs=specs, base=base))
        return children

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str:
        from memharness.errors import MemharnessError

        if isinstance(excinfo.value, MemharnessError):
            return _error_line(excinfo.value)
        return super().repr_failure(excinfo)


class ModelCollector(pytest.Collector):
    """``memharness::<model>``: one ClaimItem per claim file."""

    def __init__(self, *, fixture: Any, specs: list[Any], base: dict | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.fixture, self.specs = fixture, specs  # one Fixture per process: its arrays load once
        self.base = base  # this model's baseline report (--memharness-baseline), or None

    def collect(self) -> list[pytest.Item]:
        return [ClaimItem.from_parent(self, name=spec.id, spec=spec) for spec in self.specs]


class ClaimItem(pytest.Item):
    """``memharness::<model>::<claim>``: runs one claim on the model's fixture."""

    def __init__(self, *, spec: Any, **kw: Any) -> None:
        super().__init__(**kw)
        self.spec = spec
        self.model = self.parent.name

    def runtest(self) -> None:
        from memharness.claims import Outcome, run_claims
        from memharness.report.junit import failure_text, verdict_properties

        verdict = run_claims(self.parent.fixture, [self.spec])[0]
        self.user_properties.extend(verdict_properties(verdict))
        strict = self.config.getoption("memharness_strict")
        if self.parent.base is not None and self._known_failure(verdict, strict=strict):
            return
        if verdict.verdict is Outcome.FAIL or (strict and verdict.verdict is Outcome.INCONCLUSIVE):
            raise ClaimFailed(failure_text(self.model, verdict))
        if verdict.verdict is Outcome.SKIP:
            pytest.skip(verdict.reason)
        if verdict.verdict is Outcome.INCONCLUSIVE:  # decided nothing: not a pass (as `check --format junit`)
            pytest.skip(f"INCONCLUSIVE: {verdict.reason}")

    def _known_failure(self, verdict: Any, *, strict: bool) -> bool:
        """Against the baseline, as `check --baseline`: a regression (or drift, with --memharness-fail-on-drift)
        fails; a FAIL the baseline records is a known finding, warned about (True: the item passes)."""
        from memharness.claims import Outcome
        from memharness.claims.regression import compare
        from memharness.report.junit import failure_text

        changes = compare(self.parent.base, [verdict], {self.spec.id: self.spec.regression_tolerance},
                          only=(self.spec.id,))
        baseline = self.config.getoption("memharness_baseline")
        fail_on_drift = self.config.getoption("memharness_fail_on_drift")
        self.user_properties.extend(("baseline_change", f"{c.kind}: {c.reason}") for c in changes)
        failing = [f"{c.kind} against {baseline}: {c.reason}" for c in changes if c.fails(fail_on_drift=fail_on_drift)]
        if failing:
            raise ClaimFailed("\n".join([failure_text(self.model, verdict), *failing]))
        if verdict.verdict is Outcome.FAIL and not strict:
            self._warn(KnownFailureWarning(f"known FAIL (the baseline {baseline} records it): "
                                           f"{failure_text(self.model, verdict)}"))
            return True
        return False

    @property
    def claim_file(self) -> str:
        """``<claim file>:1`` as pytest shows paths (relative to the rootdir)."""
        return f"{self.location[0]}:1"

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        from memharness.errors import MemharnessError

        if isinstance(excinfo.value, ClaimFailed):
            return f"{self.claim_file}: {excinfo.value}"
        if isinstance(excinfo.value, MemharnessError):
            return _error_line(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        """The claim file, line 0 (shown as 1): where a reader goes to see what the claim asserts."""
        from pathlib import Path

        return (Path(self.spec.source) if self.spec.source else self.path), 0, f"memharness::{self.model}::{self.name}"

    def _warn(self, warning: Warning) -> None:
        """A warning located at the claim file, not at the plugin's line that raised it."""
        warnings.warn_explicit(warning, type(warning), filename=self.location[0], lineno=1)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A claim's SKIP is reported at its claim file (pytest puts a pytest.skip() call at the caller's line)."""
    report = yield
    if isinstance(item, ClaimItem) and report.skipped and isinstance(report.longrepr, tuple):
        report.longrepr = (item.location[0], 1, report.longrepr[2])
    return report
