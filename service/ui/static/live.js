// Following a job or a study from its server-sent events. The browser's EventSource cannot send
// the Authorization header (and the key is kept out of URLs and cookies on purpose), so the
// stream is read with fetch and this small parser of the SSE wire format; the rest of the
// format (retry:, multi-line data) is kept as the spec says.
import { apiKey } from "./api.js";

// Split complete events off `buffer`: [events, the unfinished rest]. Comment lines (the
// server's heartbeats) are skipped.
export function parseEvents(buffer) {
  // A read may end between the \r and the \n of one line end: a last \r waits for the next.
  const blocks = buffer.replace(/\r\n/g, "\n").replace(/\r(?!$)/g, "\n").split("\n\n");
  const rest = blocks.pop();
  const events = [];
  for (const block of blocks) {
    const event = { id: null, type: "message", data: [] };
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event.type = value;
      else if (field === "data") event.data.push(value);
      else if (field === "id") event.id = value;
    }
    if (event.data.length) events.push({ ...event, data: event.data.join("\n") });
  }
  return [events, rest];
}

// Read the stream at `path` and call onEvent for each event, resuming after `lastId`. Resolves
// with the last id when the stream closes (true `ended` once its `end` came), rejects when it
// cannot be read (the caller polls instead).
export async function follow(path, onEvent, { signal, lastId = null } = {}) {
  const headers = { Authorization: `Bearer ${apiKey() || ""}`, Accept: "text/event-stream" };
  if (lastId !== null) headers["Last-Event-ID"] = lastId;
  const response = await fetch(new URL(path, window.location.origin), { headers, signal });
  if (!response.ok || !response.body) throw new Error(`event stream: ${response.status}`);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return { lastId, ended: false };
    const [events, rest] = parseEvents(buffer + value);
    buffer = rest;
    for (const event of events) {
      if (event.id !== null) lastId = event.id;
      if (event.type === "end") {
        reader.cancel().catch(() => {});
        return { lastId, ended: true };
      }
      onEvent(event);
    }
  }
}
