"""The dashboard's reader of server-sent events (live.js), run in node on what the service's
stream sends: events split across reads, CRLF line ends, heartbeats, multi-line data."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.conftest import unavailable

LIVE_JS = Path(__file__).resolve().parents[2] / "service" / "ui" / "static" / "live.js"
SCRIPT = """
import { parseEvents } from %s;
const chunks = JSON.parse(process.argv[1]);
let buffer = "";
const seen = [];
for (const chunk of chunks) {
  const [events, rest] = parseEvents(buffer + chunk);
  buffer = rest;
  seen.push(...events);
}
console.log(JSON.stringify({ seen, rest: buffer }));
"""


def parse(chunks: list[str]) -> dict[str, object]:
    node = shutil.which("node")
    if node is None:
        unavailable("node is not installed")
    script = SCRIPT % json.dumps(LIVE_JS.as_uri())
    done = subprocess.run([str(node), "--input-type=module", "-e", script, json.dumps(chunks)],
                          capture_output=True, text=True, timeout=60, check=True)
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_events_split_across_reads_with_heartbeats_and_crlf() -> None:
    stream = ('id: 7\r\nevent: status\r\ndata: {"a": 1}\r\n\r\n: ping - 2026\r\n\r\n'
              'id: 8\r\nevent: metrics\r\ndata: line one\r\ndata: line two\r\n\r\n'
              'event: end\r\ndata: {}\r\n\r\nid: 9\r\nevent: sta')
    chunks = [stream[i:i + 11] for i in range(0, len(stream), 11)]
    result = parse(chunks)
    assert result["seen"] == [
        {"id": "7", "type": "status", "data": '{"a": 1}'},
        {"id": "8", "type": "metrics", "data": "line one\nline two"},
        {"id": None, "type": "end", "data": "{}"},
    ]
    assert result["rest"] == "id: 9\nevent: sta"  # kept for the next read


def test_a_read_that_ends_between_cr_and_lf_does_not_end_the_event() -> None:
    result = parse(['id: 1\r\nevent: status\r', '\ndata: x\r', '\n\r', '\n'])
    assert result["seen"] == [{"id": "1", "type": "status", "data": "x"}]
