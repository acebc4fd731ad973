"""The ``rigger-sandbox`` command: fire a file of events through the sandbox.

``rigger-sandbox run CONFIG --events EVENTS.jsonl`` starts one plugin process
per enabled instance of CONFIG, fires every event of the file in order and
prints a per-instance summary built from ``Rigger.stats()`` plus the final
global namespace. Without CONFIG it runs the bundled demo. The command line
uses only the public API; it is the one place that configures logging.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from . import ConfigError, Rigger, RiggerError
from ._cli_events import EVENT_EXAMPLE, Event, UsageError, load_events
from ._cli_summary import format_namespace, format_stats, json_safe, select_keys

logger = logging.getLogger("rigger_sandbox.cli")

EXIT_OK = 0
EXIT_HOOK_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``rigger-sandbox``."""
    parser = argparse.ArgumentParser(
        prog="rigger-sandbox",
        description="Event-hook framework where every plugin instance runs in "
        "its own process.",
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    run = commands.add_parser(
        "run",
        help="fire a file of events through the sandbox and print a summary",
        description="Start one process per enabled plugin instance of CONFIG, "
        "fire every event of EVENTS in order, then print a per-instance "
        "summary and the final global namespace. Without CONFIG, run the "
        "bundled demo (examples/demo.yaml with examples/demo_events.jsonl).",
        epilog=f"Each line of EVENTS is a JSON object such as {EVENT_EXAMPLE}; "
        "blank lines are skipped. Exit status: 0 when every event completed, "
        "1 when a failure was raised (squash_exceptions off) or the sandbox "
        "could not start, 2 for bad input (config, events, options), "
        "130 when interrupted.",
    )
    run.add_argument(
        "config",
        nargs="?",
        metavar="CONFIG",
        help="YAML configuration (default: the bundled demo)",
    )
    run.add_argument(
        "--events",
        metavar="EVENTS",
        help="events file, one JSON object per line ('-' reads "
        "standard input); required with CONFIG",
    )
    run.add_argument(
        "--squash",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="override squash_exceptions: log hook failures and "
        "carry on (--squash) or stop at the first (--no-squash)",
    )
    run.add_argument(
        "--threaded",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="override threaded: call the plugin processes of an event in parallel",
    )
    run.add_argument(
        "--start-method",
        choices=("fork", "forkserver", "spawn"),
        help="override start_method",
    )
    run.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="seed the global namespace before start; VALUE is "
        "read as JSON when it parses, else as a string "
        "(repeatable)",
    )
    run.add_argument(
        "--show",
        action="append",
        metavar="KEY",
        help="print only these global namespace keys (repeatable; default: all)",
    )
    run.add_argument(
        "--json",
        action="store_true",
        help="print the statistics and the global namespace as "
        "one JSON document instead of a table",
    )
    run.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="logging level on standard error (default: info)",
    )
    run.set_defaults(func=run_command)
    return parser


def _version() -> str:
    try:
        return f"%(prog)s {importlib.metadata.version('rigger_sandbox')}"
    except importlib.metadata.PackageNotFoundError:
        return "%(prog)s (not installed)"


def run_command(args: argparse.Namespace) -> int:
    """The ``run`` subcommand."""
    seed = parse_assignments(args.assignments)
    if args.config is None:
        config_path, demo_events = find_demo()
        events_path = args.events or str(demo_events)
        if "test_location" not in seed:
            seed["test_location"] = demo_artifact_dir()
    else:
        config_path = Path(args.config)
        if args.events is None:
            raise UsageError("--events EVENTS is required when CONFIG is given")
        events_path = args.events
    if not config_path.is_file():
        raise UsageError(f"config file '{config_path}' does not exist")
    events = load_events(events_path)

    overrides = {
        key: value
        for key, value in (
            ("squash_exceptions", args.squash),
            ("threaded", args.threaded),
            ("start_method", args.start_method),
        )
        if value is not None
    }
    rig = make_rigger(config_path, overrides)
    rig.global_data.update(seed)
    return fire_events(rig, config_path, events_path, events, args)


def fire_events(
    rig: Rigger,
    config_path: Path,
    events_path: str,
    events: list[Event],
    args: argparse.Namespace,
) -> int:
    """Start ``rig``, fire ``events``, shut down and print the summary."""
    try:
        rig.start()
    except ConfigError as exc:
        raise UsageError(config_error_text(exc, config_path)) from exc
    except RiggerError as exc:
        print(f"rigger-sandbox: the sandbox could not start: {exc}", file=sys.stderr)
        return EXIT_HOOK_FAILED
    except KeyboardInterrupt:
        # start() has stopped whatever it had started before re-raising.
        print("rigger-sandbox: interrupted while starting", file=sys.stderr)
        return EXIT_INTERRUPTED

    status = EXIT_OK
    completed = 0
    snapshot: dict[str, dict[str, Any]] = {}
    try:
        for event in events:
            logger.debug("%s:%d: firing %r", events_path, event.line, event.hook)
            try:
                rig.fire_hook(event.hook, **event.kwargs)
            except RiggerError as exc:
                print(
                    f"rigger-sandbox: {events_path}:{event.line}: event "
                    f"{event.hook!r} failed, stopping: {exc}",
                    file=sys.stderr,
                )
                status = EXIT_HOOK_FAILED
                break
            completed += 1
        # State and pid as the run left them; shutdown turns them into
        # "stopped" and None.
        snapshot = rig.stats()
    except KeyboardInterrupt:
        print("rigger-sandbox: interrupted, stopping the plugins", file=sys.stderr)
        status = EXIT_INTERRUPTED
    finally:
        rig.shutdown()

    # Counters after shutdown, which waits for outstanding background hooks.
    stats = rig.stats()
    for ident, before in snapshot.items():
        if ident in stats:
            stats[ident] = {
                **stats[ident],
                "state": before["state"],
                "pid": before["pid"],
            }
    shown = select_keys(rig.global_data, args.show)
    if args.json:
        document = {
            "events": {"total": len(events), "completed": completed},
            "stats": stats,
            "global": shown,
        }
        print(json.dumps(json_safe(document), indent=2))
    else:
        print(
            f"Completed {completed} of {len(events)} events from {events_path} "
            f"with {config_path}.\n"
        )
        print(format_stats(stats))
        print()
        print(format_namespace(shown))
    return status


def make_rigger(config_path: Path, overrides: Mapping[str, Any]) -> Rigger:
    """A Rigger for ``config_path``, with top-level keys overridden.

    Without overrides the engine reads the file itself. With them the file is
    read here and handed over as a mapping, so relative ``path/file.py:Class``
    plugin references are first made absolute against the config's folder,
    as the engine does for a file.
    """
    if not overrides:
        return Rigger(config_file=str(config_path))
    try:
        with open(config_path, encoding="utf-8") as stream:
            raw = yaml.safe_load(stream)
    except OSError as exc:
        raise UsageError(
            f"{config_path}: cannot read the file: {exc.strerror}"
        ) from exc
    except yaml.YAMLError as exc:
        raise UsageError(f"{config_path}: invalid YAML: {exc}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UsageError(
            f"{config_path}: the document must be a mapping of keys, "
            f"got {type(raw).__name__}"
        )
    config = {**raw, **overrides}
    plugins = config.get("plugins")
    if isinstance(plugins, dict):
        config["plugins"] = {
            ident: absolute_plugin_path(entry, config_path.resolve().parent)
            for ident, entry in plugins.items()
        }
    return Rigger(config=config)


def absolute_plugin_path(entry: object, base: Path) -> object:
    """``entry`` with a relative ``path/file.py:Class`` made absolute."""
    if not isinstance(entry, dict) or not isinstance(entry.get("plugin"), str):
        return entry
    target, colon, attr = entry["plugin"].rpartition(":")
    is_file = target.endswith(".py") or "/" in target or os.sep in target
    if not colon or not is_file or os.path.isabs(target):
        return entry
    return {**entry, "plugin": f"{base / target}:{attr}"}


def config_error_text(error: ConfigError, config_path: Path) -> str:
    """The message of ``error``, naming the config file when it does not."""
    text = str(error)
    if getattr(error, "source", None) is None and str(config_path) not in text:
        text = f"{config_path}: {text}"
    return text


def parse_assignments(assignments: Sequence[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` options as a mapping; VALUE as JSON when it parses."""
    seed: dict[str, Any] = {}
    for text in assignments:
        key, equals, value = text.partition("=")
        if not equals or not key:
            raise UsageError(f"--set expects KEY=VALUE, got {text!r}")
        try:
            seed[key] = json.loads(value)
        except json.JSONDecodeError:
            seed[key] = value
    return seed


def find_demo() -> tuple[Path, Path]:
    """The bundled demo's configuration and events file."""
    candidates = [
        Path(__file__).resolve().parent.parent / "examples",
        Path(sys.prefix) / "share" / "rigger_sandbox" / "examples",
    ]
    for folder in candidates:
        config, events = folder / "demo.yaml", folder / "demo_events.jsonl"
        if config.is_file() and events.is_file():
            return config, events
    searched = ", ".join(str(folder) for folder in candidates)
    raise UsageError(
        f"the bundled demo was not found (searched {searched}); "
        "install from a clone with 'pip install -e .', or pass "
        "CONFIG and --events"
    )


def demo_artifact_dir() -> str:
    """A folder for the demo's artifact logs: var/demo in the clone, else a temp."""
    folder = Path(__file__).resolve().parent.parent / "var" / "demo"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return tempfile.mkdtemp(prefix="rigger-sandbox-demo-")
    if not os.access(folder, os.W_OK):
        return tempfile.mkdtemp(prefix="rigger-sandbox-demo-")
    return str(folder)
