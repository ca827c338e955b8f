"""`dcops rules ...`: check rule files and run their unit tests, as promtool does."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from dcops.cli.common import err, friendly, out

app = typer.Typer(help="Alerting and recording rule files.", no_args_is_help=True)


@app.command("check")
@friendly
def check(paths: list[Path] = typer.Argument(..., help="rule files or directories")) -> None:
    """Validate rule files: fields, durations, names, PromQL and templates, with lines."""
    from dcops.alerts.model import AlertingRule
    from dcops.alerts.rulefile import load_rule_text, rule_files

    for path in rule_files(paths):
        groups = load_rule_text(path.read_text(), str(path))
        rules = [r for g in groups for r in g.rules]
        alerts = sum(isinstance(r, AlertingRule) for r in rules)
        out.print(f"{path}: SUCCESS: {len(groups)} groups, {alerts} alerting and "
                  f"{len(rules) - alerts} recording rules", highlight=False, soft_wrap=True)


@app.command("test")
@friendly
def test(paths: list[Path] = typer.Argument(..., help="test files (promtool's format)")) -> None:
    """Run rule unit tests written for `promtool test rules`; exit 1 if any fails."""
    from dcops.alerts.ruletest import run_test_file

    failed = 0
    for path in paths:
        outcome = run_test_file(path)
        out.print(f"Unit Testing: {path}", highlight=False, soft_wrap=True)
        if outcome.ok:
            out.print("  SUCCESS", highlight=False)
            continue
        failed += 1
        err.print("  FAILED:", highlight=False)
        for failure in outcome.failures:
            err.print(f"    {failure}", highlight=False, markup=False, soft_wrap=True)
    if failed:
        sys.exit(1)


@app.command("pack")
def pack() -> None:
    """Print where dcops's default GPU-datacenter rules and their tests are."""
    from dcops.alerts.pack import PACK_DIR

    out.print(str(PACK_DIR), highlight=False, soft_wrap=True)
