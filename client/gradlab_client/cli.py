"""`gradlab`: submit and follow training jobs from a shell or a pipeline.

Exit codes a pipeline can act on:
  0  success; for `submit --wait` and `watch`, the job succeeded
  1  an API or transport error (not found, unauthorized, unreachable, ...)
  2  usage or validation error: the offending field and message are printed
  3  the job diverged (non-finite loss)     [submit --wait, watch]
  4  the job failed                         [submit --wait, watch]
  5  the job was cancelled                  [submit --wait, watch]
  130  interrupted (Ctrl-C); the job itself keeps running
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from gradlab_client._cli_artifacts import ARTIFACT_COMMANDS
from gradlab_client._cli_commands import (
    COMMANDS,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    STATUS_EXIT,
    UsageError,
)
from gradlab_client._cli_study import STUDY_COMMANDS
from gradlab_client.client import API_KEY_ENV, URL_ENV, Client
from gradlab_client.errors import APIError, GradlabError, ValidationError

EXIT_INTERRUPTED = 130

Handler = Callable[[Client, argparse.Namespace], int]


def main(argv: Sequence[str] | None = None, *, http_client: httpx.Client | None = None) -> int:
    """Run the CLI and return its exit code. `http_client` is the seam for tests (and for
    callers that need a proxy or custom TLS): requests go through it instead of a new client."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help (0) and on usage errors (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    handler: Handler = args.handler
    try:
        with Client(base_url=args.url, api_key=args.api_key, http_client=http_client) as client:
            return handler(client, args)
    except UsageError as exc:
        _report(args, "usage", str(exc), exc.errors)
        return EXIT_USAGE
    except ValidationError as exc:
        _report_api_error(args, exc)
        return EXIT_USAGE
    except APIError as exc:
        _report_api_error(args, exc)
        return EXIT_ERROR
    except GradlabError as exc:
        _report(args, type(exc).__name__, str(exc))
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("\ninterrupted; jobs on the service keep running", file=sys.stderr)
        return EXIT_INTERRUPTED


def _report_api_error(args: argparse.Namespace, exc: APIError) -> None:
    if args.json:
        print(exc.problem.model_dump_json(), file=sys.stderr)
        return
    errors = [(error.field, error.message) for error in exc.errors]
    if not errors and exc.field:
        errors = [(exc.field, exc.detail or exc.title)]
    _report(args, exc.problem.describe(), "", errors)


def _report(
    args: argparse.Namespace, title: str, detail: str, errors: Sequence[tuple[str, str]] = ()
) -> None:
    """Errors go to stderr, so stdout holds only results; as one JSON object with --json."""
    if args.json:
        body: dict[str, Any] = {"title": title, "detail": detail}
        body["errors"] = [{"field": field, "message": message} for field, message in errors]
        print(json.dumps(body), file=sys.stderr)
        return
    print(f"gradlab: {title}" + (f": {detail}" if detail else ""), file=sys.stderr)
    for field, message in errors:
        print(f"  {field}: {message}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradlab",
        description="Submit and follow gradlab training jobs.",
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_global_options(parser, suppress=False)
    top = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # argparse's (private) type of add_subparsers(); a local annotation is never evaluated.
    groups: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]] = {}
    for command in [*COMMANDS, *ARTIFACT_COMMANDS, *STUDY_COMMANDS]:
        *group, name = command.name.split()  # "datasets upload": a group with subcommands
        target = top
        if group:
            if group[0] not in groups:
                group_parser = top.add_parser(group[0], help=f"{group[0]} commands")
                groups[group[0]] = group_parser.add_subparsers(
                    dest=f"{group[0]}_command", required=True, metavar="COMMAND"
                )
            target = groups[group[0]]
        sub = target.add_parser(name, help=command.help, description=command.help)
        _add_global_options(sub, suppress=True)
        command.add_arguments(sub)
        sub.set_defaults(handler=command.run)
    return parser


def _add_global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    # Accepted before or after the command (`gradlab --json list`, `gradlab list --json`); the
    # subcommand copies are SUPPRESSed so an absent flag does not reset one given before it.
    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument("--url", default=default(None), help=f"service URL (${URL_ENV})")
    parser.add_argument("--api-key", default=default(None), help=f"API key (${API_KEY_ENV})")
    parser.add_argument(
        "--json", action="store_true", default=default(False),
        help="machine-readable JSON on stdout (errors as JSON on stderr)",
    )


__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "STATUS_EXIT", "main"]

if __name__ == "__main__":
    sys.exit(main())
