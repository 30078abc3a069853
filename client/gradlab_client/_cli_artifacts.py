"""`gradlab artifacts ID`, `gradlab download ID NAME`, `gradlab delete ID` and `gradlab usage`:
what a finished job keeps, and the team's storage."""

from __future__ import annotations

import argparse
import sys

from gradlab_client import _cli_output as text
from gradlab_client._cli_commands import EXIT_OK, Command, emit
from gradlab_client.client import Client


def _artifacts(client: Client, args: argparse.Namespace) -> int:
    found = client.jobs.artifacts(args.id)
    rows = [(a.name, a.kind, a.which or "", f"{a.size:,}", a.sha256[:12]) for a in found]
    human = text.table(["name", "kind", "which", "bytes", "sha256"], rows) if rows else (
        f"job {args.id} keeps no artifacts (yet: they appear when it has succeeded)")
    emit(args, human, found)
    return EXIT_OK


def _download(client: Client, args: argparse.Namespace) -> int:
    path = client.jobs.download(args.id, name=args.name, path=args.output)
    print(f"saved {path} (sha256 checked)", file=sys.stderr)
    print(path)
    return EXIT_OK


def _delete(client: Client, args: argparse.Namespace) -> int:
    client.jobs.delete(args.id)
    print(f"deleted job {args.id} and its artifacts", file=sys.stderr)
    return EXIT_OK


def _usage(client: Client, args: argparse.Namespace) -> int:
    usage = client.usage()
    human = (f"artifacts {usage.artifact_bytes:,} B + uploads {usage.upload_bytes:,} B = "
             f"{usage.used_bytes:,} B of {usage.quota_bytes:,} B")
    emit(args, human, usage)
    return EXIT_OK


def _id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", help="the job id")


def _download_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", help="the job id")
    parser.add_argument("name", help="the artifact's name (see `gradlab artifacts ID`)")
    parser.add_argument("-o", "--output", default=".",
                        help="a file, or a folder to save it in (default: here)")


def _nothing(parser: argparse.ArgumentParser) -> None:
    pass


ARTIFACT_COMMANDS = [
    Command("artifacts", "the files a succeeded job keeps (weights, exports, model card)",
            _id, _artifacts),
    Command("download", "download a job's artifact, checking its sha256", _download_arguments,
            _download),
    Command("delete", "delete a finished job with its metrics and artifacts", _id, _delete),
    Command("usage", "the bytes your team keeps, and its quota", _nothing, _usage),
]
