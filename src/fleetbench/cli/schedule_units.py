"""``fleetbench schedule --print cron|systemd|github-actions``: the same schedule for
people who prefer the platform's scheduler.

Each printed unit invokes ``fleetbench schedule ... --once`` often (every minute; every
5 minutes on GitHub, its shortest interval): an invocation records ticks that passed,
runs the one round that is due, if any, and exits. The schedule's grid and state stay
in the store, so the platform's timer only needs to fire often enough.
"""

from __future__ import annotations

import shlex

from fleetbench.errors import ConfigError

KINDS = ("cron", "systemd", "github-actions")


def render(kind: str, argv: list[str], workdir: str) -> str:
    command = " ".join(shlex.quote(a) for a in ["fleetbench", "schedule", *argv, "--once"])
    if kind == "cron":
        return (
            "# crontab -e; fleetbench runs a round only when one is due\n"
            f"* * * * * cd {shlex.quote(workdir)} && {command} >> fleetbench-schedule.log 2>&1\n"
        )
    if kind == "systemd":
        return (
            "# ~/.config/systemd/user/fleetbench-schedule.service\n"
            "[Unit]\nDescription=fleetbench: run the due round of a schedule\n\n"
            f"[Service]\nType=oneshot\nWorkingDirectory={workdir}\nExecStart={command}\n\n"
            "# ~/.config/systemd/user/fleetbench-schedule.timer\n"
            "[Unit]\nDescription=fleetbench schedule timer\n\n"
            "[Timer]\nOnCalendar=*-*-* *:*:00\nPersistent=true\n\n"
            "[Install]\nWantedBy=timers.target\n\n"
            "# systemctl --user enable --now fleetbench-schedule.timer\n"
        )
    if kind == "github-actions":
        return (
            "# .github/workflows/fleetbench-schedule.yml\n"
            "# The results folder must outlive the runner: it is restored and saved with the\n"
            "# cache action (or give the plan an upload: URL).\n"
            "name: fleetbench schedule\n"
            "on:\n  schedule:\n    - cron: '*/5 * * * *'\n  workflow_dispatch: {}\n"
            "jobs:\n  round:\n    runs-on: ubuntu-latest\n    timeout-minutes: 120\n"
            "    steps:\n      - uses: actions/checkout@v4\n"
            "      - uses: actions/setup-python@v5\n        with: {python-version: '3.11'}\n"
            "      - uses: actions/cache@v4\n        with:\n"
            "          path: fleetbench-results\n"
            "          key: fleetbench-${{ github.run_id }}\n"
            "          restore-keys: fleetbench-\n"
            "      - run: pip install fleetbench\n"
            f"      - run: {command}\n"
        )
    raise ConfigError(f"--print {kind!r}: unknown; valid: {', '.join(KINDS)}")
