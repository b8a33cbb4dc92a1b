"""Reporters: terminal, matrix, Markdown, JUnit and JSON from hand-built verdicts, and `check --format` end to end."""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import memharness.claims
from memharness.claims.regression import Change
from memharness.claims.verdict import Agreement, Outcome, Verdict
from memharness.cli import main
from memharness.cli.runtime import terminal
from memharness.report.junit import junit_xml
from memharness.report.markdown import markdown_report
from memharness.report.matrix import verdict_matrix
from memharness.report.model_report import ModelReport, json_report
from memharness.report.regressions import regression_table
from memharness.report.terminal import reason_lines, verdict_table

CLAIM = "linear-in-guidance"
N = {"memorized": 16, "normal": 16}
VERDICTS = (
    Verdict(id="alpha", title="A", reference="§3.3, Eq 13", verdict=Outcome.PASS, paper="x̂0(T) ≈ g·x",
            reason="slope 1.007 within [0.9, 1.1]", measured=1.00707, ci=(1.00368, 1.01046), n=N,
            test="bootstrap CI", p_value=0.0004, floor="mean within [0.9, 1.1]", paper_number=1.0,
            agreement=Agreement.MATCHES),
    Verdict(id="beta", title="B", reference="Fig 10f", verdict=Outcome.FAIL, paper="E[w0] > √ᾱ_t",
            reason="E[w0] − √ᾱ_t = -0.2 < 0", measured=-0.2, ci=(-0.31, -0.09), n=N, test="t-test", p_value=0.9,
            floor="mean > 0"),
    Verdict(id="gamma", title="C", reference="Fig 7", verdict=Outcome.INCONCLUSIVE, paper="|r| = 0.7148",
            reason="only 3 memorized prompts, need 5", measured=0.5, ci=(-0.2, 0.9), n={"memorized": 3, "normal": 9},
            floor="r < -0.6", paper_number=-0.7148, agreement=Agreement.MATCHES),
    Verdict(id="delta", title="D", reference="App H", verdict=Outcome.SKIP, paper="step 3.31 ± 3.69",
            reason="the fixture has no detection runs"),
)
DROP = Change(claim="alpha", kind="regression", baseline="PASS", now="PASS", baseline_measured=1.5, measured=1.00707,
              reason="measured 1.5 → 1.007, |Δ| = 0.493 > tolerance 0.05")
NOTE = Change(claim="omega", kind="missing", baseline="PASS", now=None, baseline_measured=None, measured=None,
              reason="in the baseline but not checked now (claim file removed?)")
TOY = ModelReport(model="toy", verdicts=VERDICTS, fixtures={"path": "fixtures/toy"})
TWIN = ModelReport(model="twin", verdicts=VERDICTS[:2], fixtures={"path": "fixtures/twin"},
                   changes=(DROP, NOTE), baseline="base.json")


def plain_text(renderable) -> str:
    """What the CLI prints into a file or a pipe: the console of cli.runtime.terminal, 120 columns, no styles."""
    console, plain = terminal(io.StringIO())
    assert plain
    console.print(renderable)
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines()) + "\n"


# --------------------------------------------------------------------------- rich renderables
def test_verdict_table_text():
    assert plain_text(verdict_table("toy", VERDICTS, plain=True)) == """\
memharness · toy
+----------------------------------------------------------------------------------------------------------------+
| claim | paper value      | measured [95% CI]   | floor                  | vs paper | n mem/norm | verdict      |
|-------+------------------+---------------------+------------------------+----------+------------+--------------|
| alpha | x̂0(T) ≈ g·x      | 1.007 [1.004, 1.01] | mean within [0.9, 1.1] | matches  |      16/16 | PASS         |
| beta  | E[w0] > √ᾱ_t     | -0.2 [-0.31, -0.09] | mean > 0               | —        |      16/16 | FAIL         |
| gamma | |r| = 0.7148     | 0.5 [-0.2, 0.9]     | r < -0.6               | matches  |        3/9 | INCONCLUSIVE |
| delta | step 3.31 ± 3.69 | —                   | —                      | —        |          — | SKIP         |
+----------------------------------------------------------------------------------------------------------------+
"""


def test_verdict_table_with_null_column():
    with_null = [dataclasses.replace(VERDICTS[0], null_pass_rate=0.05),
                 dataclasses.replace(VERDICTS[1], null_pass_rate=None, null_note="it reads only the scores")]
    text = plain_text(verdict_table("toy", with_null, plain=True))
    assert "| null PASS |" in text.splitlines()[2]
    assert text.splitlines()[4].endswith("|        5% |") and text.splitlines()[5].endswith("|       n/a |")
    assert reason_lines(with_null)[1].endswith("; null: n/a, it reads only the scores")


def test_matrix_text():
    assert plain_text(verdict_matrix([TOY, TWIN], plain=True)) == """\
memharness · claims × models
+-------------------------------+
| claim | toy          | twin   |
|-------+--------------+--------|
| alpha | PASS         | PASS ↓ |
| beta  | FAIL         | FAIL   |
| gamma | INCONCLUSIVE | —      |
| delta | SKIP         | —      |
+-------------------------------+
↓ regressed against the baseline
"""


def test_regression_table_text():
    assert plain_text(regression_table("twin", TWIN.changes, plain=True)) == """\
regressions · twin
+------------------------------------------------------------------------------------+
| claim | baseline → now        | why                                                |
|-------+-----------------------+----------------------------------------------------|
| alpha | PASS 1.5 → PASS 1.007 | measured 1.5 → 1.007, |Δ| = 0.493 > tolerance 0.05 |
+------------------------------------------------------------------------------------+
"""


def test_colours_only_on_a_terminal(monkeypatch):
    from rich.console import Console

    console = Console(file=io.StringIO(), force_terminal=True, color_system="standard", width=120)
    console.print(verdict_matrix([TOY, TWIN], plain=False))
    assert "\x1b[" in console.file.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in plain_text(verdict_matrix([TOY, TWIN], plain=True))


# --------------------------------------------------------------------------- Markdown
def test_markdown_text():
    assert markdown_report([TWIN]) == """\
## memharness · twin

| claim | paper ref | paper value | measured [95% CI] | floor | vs paper | n mem/norm | verdict |
| --- | --- | --- | --- | --- | --- | ---: | --- |
| alpha | §3.3, Eq 13 | x̂0(T) ≈ g·x | 1.007 [1.004, 1.01] | mean within [0.9, 1.1] | matches | 16/16 | PASS |
| beta | Fig 10f | E[w0] > √ᾱ\\_t | -0.2 [-0.31, -0.09] | mean > 0 | — | 16/16 | FAIL |

- **alpha** (PASS): slope 1.007 within [0.9, 1.1]
- **beta** (FAIL): E[w0] − √ᾱ\\_t = -0.2 < 0

2 claims: 1 PASS, 1 FAIL, 0 INCONCLUSIVE, 0 SKIP

### Regressions against `base.json`

| claim | baseline → now | why |
| --- | --- | --- |
| alpha | PASS 1.5 → PASS 1.007 | measured 1.5 → 1.007, \\|Δ\\| = 0.493 > tolerance 0.05 |

- note: omega: missing claim, PASS → —: in the baseline but not checked now (claim file removed?)

1 regression against base.json
"""


def test_markdown_with_several_models_starts_with_the_matrix():
    text = markdown_report([TOY, TWIN])
    lines = text.splitlines()
    assert lines[0] == "## memharness · claims × models"
    assert "| alpha | PASS | PASS ↓ |" in lines
    assert ("| gamma | Fig 7 | \\|r\\| = 0.7148 | 0.5 [-0.2, 0.9] | r < -0.6 | matches | 3/9 | INCONCLUSIVE |"
            in lines)  # pipes escaped
    assert [line for line in lines if line.startswith("### ")] == ["### memharness · toy", "### memharness · twin"]


# --------------------------------------------------------------------------- JUnit
def _cases(xml: str) -> dict[tuple[str, str], ET.Element]:
    root = ET.fromstring(xml)
    return {(case.get("classname"), case.get("name")): case for case in root.iter("testcase")}


def _props(case: ET.Element) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in case.find("properties")}


@pytest.mark.parametrize(("strict", "failures", "skipped"), [(False, 3, 2), (True, 5, 0)])
def test_junit_counts(strict, failures, skipped):
    """Only a PASS passes: INCONCLUSIVE and SKIP are skipped, or failures with strict."""
    root = ET.fromstring(junit_xml([TOY, TWIN], strict=strict))
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("skipped"), root.get("errors")) == (
        "6", str(failures), str(skipped), "0")
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["memharness.toy", "memharness.twin"]
    assert [(s.get("tests"), s.get("failures"), s.get("skipped")) for s in suites] == [
        ("4", str(failures - 2), str(skipped)), ("2", "2", "0")]
    for suite in suites:
        assert len(suite.findall("testcase")) == int(suite.get("tests"))


def test_junit_testcases():
    cases = _cases(junit_xml([TOY, TWIN]))
    passed = cases[("memharness.toy", "alpha")]
    assert passed.find("failure") is None and passed.find("skipped") is None
    props = _props(passed)
    assert (props["verdict"], props["measured"], props["ci_low"], props["ci_high"], props["p_value"]) == (
        "PASS", "1.00707", "1.00368", "1.01046", "0.0004")

    failed = cases[("memharness.toy", "beta")].find("failure")
    assert failed.get("message") == VERDICTS[1].reason and failed.get("type") == "FAIL"
    assert "paper E[w0] > √ᾱ_t" in failed.text

    inconclusive = cases[("memharness.toy", "gamma")]
    assert inconclusive.find("failure") is None  # INCONCLUSIVE is skipped unless strict, never passed
    assert inconclusive.find("skipped").get("message") == f"INCONCLUSIVE: {VERDICTS[2].reason}"
    assert cases[("memharness.toy", "delta")].find("skipped").get("message") == f"SKIP: {VERDICTS[3].reason}"

    regressed = cases[("memharness.twin", "alpha")].find("failure")
    assert regressed.get("type") == "regression"
    assert regressed.get("message") == f"regression against base.json: {DROP.reason}"
    both = cases[("memharness.twin", "beta")].find("failure")
    assert both.get("type") == "FAIL"


def test_junit_strict_fails_inconclusive():
    failure = _cases(junit_xml([TOY], strict=True))[("memharness.toy", "gamma")].find("failure")
    assert failure.get("type") == "INCONCLUSIVE" and failure.get("message") == VERDICTS[2].reason


def test_junit_survives_any_reason_text():
    odd = dataclasses.replace(VERDICTS[1], reason='a <b> & "c"\x00\x1b[31m\nsecond line')
    xml = junit_xml([ModelReport(model="toy", verdicts=(odd,), fixtures={})])
    failure = ET.fromstring(xml).find("testsuite/testcase/failure")
    assert failure.get("message").startswith('a <b> & "c"??[31m\nsecond line')


# --------------------------------------------------------------------------- JSON
def test_json_report_is_one_shape_for_any_number_of_models():
    from memharness import __version__

    one = json.loads(json_report([TOY]))
    assert (one["memharness_version"], one["schema_version"]) == (__version__, 2) and len(one["models"]) == 1
    [toy] = one["models"]
    assert toy["model"] == "toy" and "regressions" not in toy
    assert [c["verdict"] for c in toy["claims"]] == ["PASS", "FAIL", "INCONCLUSIVE", "SKIP"]
    assert "seconds" not in toy["claims"][0]  # a report is the same on every run
    both = json.loads(json_report([TOY, TWIN]))
    assert set(both) == set(one) and [r["model"] for r in both["models"]] == ["toy", "twin"]
    assert [r["claim"] for r in both["models"][1]["regressions"]] == ["alpha"]
    assert [c["claim"] for c in both["models"][1]["baseline"]["changes"]] == ["omega"]
    assert "regressions" not in json.loads(json_report([TWIN], with_baseline=False))["models"][0]


# --------------------------------------------------------------------------- check --format, end to end
def test_check_junit(small_fixture_master, tmp_path, capsys):
    target = tmp_path / "out" / "claims.xml"
    rc = main(["check", "--fixtures", str(small_fixture_master), "--claim", CLAIM, "--format", "junit",
               "--output", str(target)])
    assert rc == 0, capsys.readouterr().err
    suite = ET.parse(target).getroot().find("testsuite")
    assert (suite.get("name"), suite.get("tests"), suite.get("failures")) == ("memharness.analytic", "1", "0")
    assert _props(suite.find("testcase"))["verdict"] == "PASS"


def test_check_junit_counts_match_the_verdicts(small_fixture_master, capsys):
    assert main(["check", "--fixtures", str(small_fixture_master), "--format", "json"]) in (0, 1)
    verdicts = [c["verdict"] for c in json.loads(capsys.readouterr().out)["models"][0]["claims"]]
    main(["check", "--fixtures", str(small_fixture_master), "--format", "junit"])
    root = ET.fromstring(capsys.readouterr().out)
    assert int(root.get("tests")) == len(verdicts)
    assert int(root.get("failures")) == verdicts.count("FAIL")
    assert int(root.get("skipped")) == verdicts.count("SKIP") + verdicts.count("INCONCLUSIVE")


def test_check_markdown(small_fixture_master, capsys):
    rc = main(["check", "--fixtures", str(small_fixture_master), "--claim", CLAIM, "--format", "markdown"])
    out, _ = capsys.readouterr()
    assert rc == 0
    assert out.startswith("## memharness · analytic\n")
    assert any(line.startswith(f"| {CLAIM} | ") and line.endswith(" | PASS |") for line in out.splitlines())
    assert "\x1b[" not in out


@pytest.fixture
def two_models(small_fixture_master, tmp_path) -> Path:
    """A folder of per-model fixture folders: analytic, and the same fixture recorded as model 'twin'."""
    root = tmp_path / "fixtures"
    shutil.copytree(small_fixture_master, root / "analytic")
    shutil.copytree(small_fixture_master, root / "twin")
    manifest = root / "twin" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["model"]["id"] = "twin"
    manifest.write_text(json.dumps(data))
    return root


def test_check_several_models(two_models, capsys):
    argv = ["check", "--fixtures", str(two_models), "--model", "analytic", "--model", "twin", "--claim", CLAIM]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "memharness · analytic" in out and "memharness · twin" in out
    matrix = out[out.index("memharness · claims × models"):].splitlines()
    assert "| claim" in matrix[2] and "analytic" in matrix[2] and "twin" in matrix[2]
    assert CLAIM in matrix[4] and matrix[4].count("PASS") == 2

    assert main([*argv, "--format", "json"]) == 0
    reports = json.loads(capsys.readouterr().out)["models"]
    assert [r["model"] for r in reports] == ["analytic", "twin"]


def test_check_several_models_need_a_folder_of_folders(small_fixture_master, two_models, capsys):
    rc = main(["check", "--fixtures", str(two_models), "--model", "analytic", "--model", "nope"])
    _, err = capsys.readouterr()
    assert rc == 2 and "nope" in err and len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------------- exit codes
def _fake_engine(monkeypatch, outcome: Outcome) -> None:
    """run_claims as the CLI calls it, returning one hand-built verdict."""

    def run_claims(fixture, specs, *, only=()):
        return [dataclasses.replace(VERDICTS[0], id=CLAIM, verdict=outcome, reason=f"forced {outcome.value}")]

    monkeypatch.setattr(memharness.claims, "run_claims", run_claims)


@pytest.mark.parametrize(
    ("outcome", "rc", "strict_rc"),
    [(Outcome.PASS, 0, 0), (Outcome.SKIP, 0, 1), (Outcome.INCONCLUSIVE, 0, 1), (Outcome.FAIL, 1, 1)],
)
def test_exit_codes(small_fixture_master, monkeypatch, capsys, outcome, rc, strict_rc):
    _fake_engine(monkeypatch, outcome)
    argv = ["check", "--fixtures", str(small_fixture_master)]
    assert main(argv) == rc
    assert f"forced {outcome.value}" in capsys.readouterr().out
    assert main([*argv, "--strict"]) == strict_rc
    capsys.readouterr()
    assert main([*argv, "--strict", "--format", "junit"]) == strict_rc
    assert int(ET.fromstring(capsys.readouterr().out).get("failures")) == strict_rc


@pytest.mark.parametrize("option", ["--output", "--write-baseline"])
def test_a_folder_is_not_a_report_file(small_fixture_master, tmp_path, capsys, option):
    rc = main(["check", "--fixtures", str(small_fixture_master), option, str(tmp_path)])
    _, err = capsys.readouterr()
    assert rc == 2 and option in err and "folder" in err and len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------------- issue 16: CI outputs
def test_junit_has_pytest_shape_and_times():
    timed = ModelReport(model="toy", verdicts=tuple(dataclasses.replace(v, seconds=0.25) for v in VERDICTS),
                        fixtures={})
    root = ET.fromstring(junit_xml([timed, TWIN]))
    suite = root.find("testsuite")
    assert {"name", "tests", "failures", "skipped", "errors", "time", "timestamp"} <= set(suite.attrib)
    assert [case.get("time") for case in suite.findall("testcase")] == ["0.250"] * 4
    assert (suite.get("time"), root.get("time")) == ("1.000", "1.000")  # TWIN's hand-built verdicts: no time
    for case in root.iter("testcase"):
        assert {"classname", "name", "time"} <= set(case.attrib)


def test_check_junit_times_each_claim(small_fixture_master, capsys):
    main(["check", "--fixtures", str(small_fixture_master), "--format", "junit"])
    root = ET.fromstring(capsys.readouterr().out)
    times = [float(case.get("time")) for case in root.iter("testcase")]
    assert times and all(t >= 0 for t in times) and sum(t > 0 for t in times) >= len(times) // 2
    assert float(root.get("time")) == pytest.approx(sum(times), abs=0.01 * len(times))


def test_zero_memorized_prompts_is_not_green(small_fixture, capsys):
    """Issue 16's 'done when': a fixture with no memorized prompt (every score the same, low) decides
    nothing: --strict exits 1 and JUnit reports the claims skipped, none passed for want of data."""
    from tests.helpers import write_scores

    write_scores(small_fixture, lambda prompts: [0.0] * len(prompts))
    argv = ["check", "--fixtures", str(small_fixture), "--format", "json"]
    main(argv)
    claims = json.loads(capsys.readouterr().out)["models"][0]["claims"]
    undecided = {c["id"] for c in claims if c["verdict"] in ("INCONCLUSIVE", "SKIP")}
    assert undecided, [(c["id"], c["verdict"]) for c in claims]
    assert main(["check", "--fixtures", str(small_fixture), "--strict"]) == 1
    capsys.readouterr()
    main(["check", "--fixtures", str(small_fixture), "--format", "junit"])
    cases = {case.get("name"): case for case in ET.fromstring(capsys.readouterr().out).iter("testcase")}
    for claim in undecided:
        assert cases[claim].find("skipped") is not None and cases[claim].find("failure") is None


def _github_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("::")]


def test_github_annotations():
    from memharness.report.github import github_annotations

    source = str(Path("memharness") / "claims" / "definitions" / "beta.yaml")
    out = github_annotations([TOY, TWIN], sources={"beta": source})
    lines = _github_lines(out)
    assert lines[0].startswith("::error file=memharness/claims/definitions/beta.yaml,line=1,"
                               "title=memharness toy · beta%3A FAIL::")
    assert any(line.startswith("::warning title=memharness toy · gamma%3A INCONCLUSIVE::") for line in lines)
    assert any(line.startswith("::notice title=memharness toy · delta%3A SKIP::") for line in lines)
    assert not any("alpha%3A PASS" in line for line in lines)
    # TWIN is compared with a baseline: its FAIL is known (a warning); its regression is an error
    assert any(line.startswith("::warning file=") and "twin · beta%3A known FAIL" in line for line in lines)
    assert any(line.startswith("::error title=memharness twin · alpha%3A regression against base.json::")
               for line in lines)
    assert "memharness · toy: 4 claims: 1 PASS, 1 FAIL, 1 INCONCLUSIVE, 1 SKIP" in out.splitlines()
    strict = _github_lines(github_annotations([TOY], sources={}, strict=True))
    assert [line.split("::")[1].split()[0] for line in strict] == ["error"] * 3


def test_github_annotation_escapes():
    from memharness.report.github import annotation

    assert annotation("error", "a: b, c", "50% off\nline two") == "::error title=a%3A b%2C c::50%25 off%0Aline two"


def test_check_format_github(small_fixture_master, monkeypatch, capsys):
    _fake_engine(monkeypatch, Outcome.FAIL)
    assert main(["check", "--fixtures", str(small_fixture_master), "--format", "github"]) == 1
    [line] = _github_lines(capsys.readouterr().out)
    assert line.startswith("::error file=")
    assert f"{CLAIM}.yaml,line=1,title=memharness analytic · {CLAIM}%3A FAIL::" in line
    assert line.endswith("forced FAIL (measured 1.007 [1.004, 1.01], paper x̂0(T) ≈ g·x)")


def test_append_adds_to_the_output_file(small_fixture_master, tmp_path, capsys):
    summary = tmp_path / "summary.md"
    summary.write_text("# CI\n")
    argv = ["check", "--fixtures", str(small_fixture_master), "--claim", CLAIM, "--format", "markdown",
            "--output", str(summary)]
    assert main([*argv, "--append"]) == 0
    assert main([*argv, "--append"]) == 0
    text = summary.read_text()
    assert text.startswith("# CI\n## memharness · analytic\n") and text.count("## memharness · analytic") == 2
    assert not list(tmp_path.glob("*.tmp"))
    assert main(argv) == 0  # without --append the file is replaced
    assert summary.read_text().count("## memharness · analytic") == 1
    assert main(["check", "--fixtures", str(small_fixture_master), "--append"]) == 2
    assert "--append" in capsys.readouterr().err
