"""The `loglytics` command line: a thin wrapper over Faust's own CLI.

`worker` (and any other Faust command) goes to Faust after the embedded stack
is brought up when no service is configured; the product's own commands
(`stack`, `send`, `mine`, `findings`, `demo`, `ask`, `tenants`, `incidents`,
`bench`) are
plain subcommands that talk to Kafka as any client would, so they work while
a worker runs in another shell.
"""

from __future__ import annotations

import argparse
import atexit
import sys
from collections.abc import Callable, Sequence

from loglytics.settings import SettingsError, get_settings, load_settings

OWN_COMMANDS = (
    "stack",
    "send",
    "mine",
    "parse",
    "findings",
    "demo",
    "ask",
    "tenants",
    "incidents",
    "bench",
    "api",
    "check",
)


def _stack(args: argparse.Namespace) -> int:
    from loglytics.embedded import stack

    settings = load_settings()
    if args.action == "up":
        state = stack.up(settings)
        print(f"stack up (state in {settings.stack_file})")
        for name, addr in stack.status(settings).items():
            print(f"  {name:11s} {addr}")
        del state
    elif args.action == "down":
        stopped = stack.down(settings)
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    else:
        for name, addr in stack.status(settings).items():
            print(f"{name:11s} {addr}")
    return 0


def _mine(args: argparse.Namespace) -> int:
    from loglytics.mining import write_mine_csv

    if args.file and args.file != "-":
        with open(args.file, encoding="utf-8", errors="replace") as fh:
            write_mine_csv((line.rstrip("\r\n") for line in fh), sys.stdout)
    else:
        write_mine_csv((line.rstrip("\r\n") for line in sys.stdin), sys.stdout)
    return 0


def _bench(args: argparse.Namespace) -> int:
    from loglytics.bench import run_benchmark

    return run_benchmark(args.name, args.rest)


def _lazy(module: str, func: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        import importlib

        handler: Callable[[argparse.Namespace], int] = getattr(
            importlib.import_module(module), func
        )
        return handler(args)

    return run


class _IntermixedParser(argparse.ArgumentParser):
    """Positionals may follow options (`ask chat --tenant t Why is it slow?`).

    Plain argparse stops filling a `nargs="*"` positional at the first option,
    so TEXT after `--tenant` would be "unrecognized"; intermixed parsing is
    argparse's own fix, routed through `parse_known_args` (which it calls
    back, hence the guard).
    """

    _inner = False

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if self._inner:
            return super().parse_known_args(args, namespace)
        self._inner = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inner = False


def _add_http_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`api` (the HTTP gateway) and `check` (a running API, route by route)."""
    p = sub.add_parser("api", help="the HTTP API gateway (FastAPI on uvicorn)")
    p.add_argument("--host", default=None, help="default: API_HOST (127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="default: API_PORT (8000)")
    p.set_defaults(func=_lazy("loglytics.gateway.server", "run"))

    p = sub.add_parser("check", help="check a running HTTP API: every route, pass/fail table")
    p.add_argument("base_url", nargs="?", default=None, help="default: http://API_HOST:API_PORT")
    p.add_argument("--api-key", required=True)
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per call")
    p.set_defaults(func=_lazy("loglytics.commands.check", "run"))


def _add_incidents_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`incidents list|show|ack|resolve|mute|unmute` (loglytics.commands.incidents)."""
    p = sub.add_parser("incidents", help="incidents: list, show, ack, resolve, mute, unmute")
    p.add_argument("action", choices=("list", "show", "ack", "resolve", "mute", "unmute"))
    p.add_argument("id", nargs="?", help="an incident id (show, ack, resolve) or a mute id")
    p.add_argument("--tenant", default=None, help="required for ack, resolve, mute, unmute")
    p.add_argument("--all", action="store_true", help="list: resolved incidents too")
    p.add_argument("--template", action="append", default=[], help="mute: a template id")
    p.add_argument("--incident", default=None, help="mute: that incident's signature")
    p.add_argument("--source", action="append", default=[], help="mute: only on this source")
    p.add_argument(
        "--reason", choices=("false_positive", "expected", "maintenance"), help="mute: why"
    )
    p.add_argument(
        "--for",
        dest="duration",
        default=None,
        help="mute: e.g. 2h, at most 3660d (else until unmuted)",
    )
    p.add_argument("--by", default="", help="who gives the feedback")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_lazy("loglytics.commands.incidents", "run"))


def _add_log_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The commands on logs and findings: `stack`, `send`, `mine`, `parse`, `findings`."""
    p = sub.add_parser("stack", help="the embedded stack: up, down, status")
    p.add_argument("action", choices=("up", "down", "status"))
    p.set_defaults(func=_stack)

    p = sub.add_parser("send", help="ship log lines from a file or stdin to logs.raw")
    p.add_argument("--tenant", required=True)
    p.add_argument("--source", required=True)
    p.add_argument("--format", default=None, help="a named format (default: detect)")
    p.add_argument("--batch-lines", type=int, default=500)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("file", nargs="?", default="-")
    p.set_defaults(func=_lazy("loglytics.commands.send", "run"))

    p = sub.add_parser("mine", help="template-mine lines; CSV line,template_id,template")
    p.add_argument("file", nargs="?", default="-")
    p.set_defaults(func=_mine)

    p = sub.add_parser("parse", help="parse lines into events; JSON per event with --json")
    p.add_argument("file", nargs="?", default="-")
    p.add_argument("--format", default=None, help="a named format, or auto (default: detect)")
    p.add_argument("--json", action="store_true", help="one JSON object per event")
    p.set_defaults(func=_lazy("loglytics.commands.parse", "run"))

    p = sub.add_parser("findings", help="print findings from the findings topic")
    p.add_argument("--tenant", default=None)
    p.add_argument("--since", default="1h", help="e.g. 30s, 15m, 2h, 1d")
    p.add_argument("--follow", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_lazy("loglytics.commands.findings", "run"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loglytics",
        description="Streaming log analysis. Faust commands (worker, ...) pass through to Faust.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    _add_log_commands(sub)

    p = sub.add_parser("demo", help="the live demo on the embedded stack")
    p.add_argument("--duration", type=float, default=180.0, help="seconds of generated traffic")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    p.add_argument("--window-seconds", type=float, default=10.0)
    p.set_defaults(func=_lazy("loglytics.commands.demo", "run"))

    p = sub.add_parser("ask", help="send an on-demand request and print the reply")
    p.__class__ = _IntermixedParser  # TEXT may follow the options
    p.add_argument("task")
    p.add_argument("--tenant", required=True)
    p.add_argument("--api-key", required=True)
    p.add_argument("--stream", action="store_true")
    p.add_argument("--file", default=None, help="JSON file with the task input (entries ...)")
    p.add_argument("--finding-id", default=None, help="root-cause: a stored finding's id")
    p.add_argument("--last-hours", type=int, default=None, help="summarize: the time range")
    p.add_argument("--max-tokens", type=int, default=None)
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--json", action="store_true", help="print every reply record as JSON")
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("text", nargs="*")
    p.set_defaults(func=_lazy("loglytics.commands.ask", "run"))

    p = sub.add_parser("tenants", help="manage tenants: add, list, set-tier, delete")
    p.add_argument("action", choices=("add", "list", "set-tier", "delete"))
    p.add_argument("name", nargs="?")
    p.add_argument("tier", nargs="?", choices=("free", "pro"))
    p.add_argument("--tier", dest="tier_opt", choices=("free", "pro"), default=None)
    p.set_defaults(func=_lazy("loglytics.commands.tenants", "run"))

    _add_http_commands(sub)

    _add_incidents_command(sub)

    p = sub.add_parser("bench", help="benchmarks: mining, ingest, providers, detection")
    p.add_argument("name")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=_bench)
    return parser


def _ensure_stack_for_worker() -> None:
    """`worker` with no services configured starts the embedded stack, tied to it."""
    from loglytics.embedded import stack

    settings = load_settings()
    if settings.kafka_bootstrap_servers or (
        settings.stack_file.exists()
        and all((stack.read_state(settings) or stack.StackState()).running().values())
    ):
        return
    stack.up(settings, tied=True)
    atexit.register(stack.down, settings)


def main(argv: Sequence[str] | None = None) -> None:
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        load_settings()
    except SettingsError as exc:
        print(f"loglytics: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if (
        (args_list and args_list[0] in OWN_COMMANDS)
        or not args_list
        or args_list[0] in ("-h", "--help")
    ):
        args = build_parser().parse_args(args_list)
        raise SystemExit(args.func(args))
    if args_list[0] == "worker":
        _ensure_stack_for_worker()
        if not any(a.startswith(("-l", "--loglevel")) for a in args_list):
            args_list += ["-l", get_settings().log_level.lower()]
    from loglytics.worker import build_worker

    sys.argv = ["loglytics", *args_list]
    build_worker(get_settings()).app.main()
