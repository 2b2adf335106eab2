// The live logs of a hook: its invocations as they happen (Server-Sent Events over
// fetch, since EventSource cannot send a bearer token), each with its console
// lines, coloured by outcome; pausing keeps what arrives in a buffer. A stream
// whose access was taken away ends with an ``end`` event and is not reopened.

import { useEffect, useRef, useState } from "preact/hooks";

import { SignedOut, logStream } from "./api";
import type { Invocation, LiveLine, StreamEnd } from "./types";

type Entry = { id: string; lines: string[]; record: Invocation | null };
/** The events the panel shows: a stored record, or a line as it is written. */
type Event = { kind: "invocation"; data: Invocation } | { kind: "console"; data: LiveLine };

const invocationOf = (event: Event) => (event.kind === "console" ? event.data.invocation_id : event.data.id);

const KEEP = 200;

/** Read the stream until ``signal`` aborts or the server ends it for good (the answer:
 * why); reconnect with Last-Event-ID whenever else it ends. ``onLive`` hears whether
 * the stream is open now. */
async function follow(
  hookId: string,
  onEvent: (event: Event) => void,
  onLive: (live: boolean) => void,
  signal: AbortSignal,
): Promise<string | null> {
  let position: string | null = null;
  while (!signal.aborted) {
    try {
      const response = await logStream(hookId, position, signal);
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      onLive(true);
      let buffer = "";
      let kind = "message";
      let data: string[] = [];
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let newline: number;
        while ((newline = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, newline).replace(/\r$/, "");
          buffer = buffer.slice(newline + 1);
          if (line === "") {
            const payload: unknown = data.length ? JSON.parse(data.join("\n")) : null;
            if (payload !== null && kind === "end") {
              await reader.cancel();
              const end = payload as StreamEnd;
              return end.message ?? end.reason;
            }
            if (payload !== null && kind === "invocation") onEvent({ kind, data: payload as Invocation });
            if (payload !== null && kind === "console") onEvent({ kind, data: payload as LiveLine });
            kind = "message";
            data = [];
          } else if (line.startsWith("id:")) position = line.slice(3).trim();
          else if (line.startsWith("event:")) kind = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
      }
    } catch (failure) {
      if (signal.aborted) return null;
      if (failure instanceof SignedOut) throw failure;
    } finally {
      onLive(false);
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
  return null;
}

export function LogsPanel({ hookId }: { hookId: string }) {
  const [entries, setEntries] = useState<Entry[]>([]);
  const [paused, setPaused] = useState(false);
  const [outcome, setOutcome] = useState("all");
  const buffer = useRef<Event[]>([]);
  const pausedRef = useRef(false);
  const [waiting, setWaiting] = useState(0); // invocations in the buffer
  const [ended, setEnded] = useState<string | null>(null); // why the server ended the stream
  const [live, setLive] = useState(false); // the stream is open

  const apply = (events: Event[]) =>
    setEntries((current) => {
      const next = [...current];
      for (const event of events) {
        const id = invocationOf(event);
        let entry = next.find((each) => each.id === id);
        if (!entry) {
          entry = { id, lines: [], record: null };
          next.unshift(entry);
        }
        if (event.kind === "console") entry.lines = [...entry.lines, event.data.text];
        else {
          entry.record = event.data;
          entry.lines = entry.record.console.map((line) => line.text);
        }
      }
      return next.slice(0, KEEP);
    });

  useEffect(() => {
    const stop = new AbortController();
    setEnded(null);
    follow(
      hookId,
      (event) => {
        if (pausedRef.current) {
          buffer.current.push(event);
          setWaiting(new Set(buffer.current.map(invocationOf)).size);
        } else apply([event]);
      },
      setLive,
      stop.signal,
    )
      .then(setEnded)
      .catch(() => {}); // only SignedOut gets here, and the app is back at sign-in
    return () => stop.abort();
  }, [hookId]);

  const togglePause = () => {
    pausedRef.current = !pausedRef.current;
    setPaused(pausedRef.current);
    if (!pausedRef.current) {
      apply(buffer.current);
      buffer.current = [];
      setWaiting(0);
    }
  };
  const shown = entries.filter((entry) => {
    if (outcome === "all") return true;
    if (!entry.record) return false;
    return outcome === "ok" ? entry.record.outcome === "ok" : entry.record.outcome !== "ok";
  });

  return (
    <section class="logs" data-live={live ? "true" : "false"}>
      <h2>
        Live logs{" "}
        <span class="status" role="status">
          {ended !== null ? "stopped" : live ? "live" : "connecting…"}
        </span>
      </h2>
      <div class="actions">
        <button onClick={togglePause}>{paused ? `Resume (${waiting} waiting)` : "Pause"}</button>
        <select aria-label="outcome" value={outcome} onChange={(e) => setOutcome(e.currentTarget.value)}>
          <option value="all">all outcomes</option>
          <option value="ok">ok</option>
          <option value="failed">failed</option>
        </select>
      </div>
      {ended !== null && (
        <p class="error ended" role="alert">
          The live logs stopped: {ended}
        </p>
      )}
      {shown.length === 0 && ended === null && <p class="empty">Waiting for invocations…</p>}
      {shown.map((entry) => (
        <div class={`invocation ${entry.record ? (entry.record.outcome === "ok" ? "ok" : "failed") : "running"}`} key={entry.id} data-invocation={entry.id}>
          <div class="head">
            <span class="outcome">{entry.record ? entry.record.outcome : "running"}</span>{" "}
            {entry.record && (
              <span>
                v{entry.record.version} · {entry.record.duration_ms.toFixed(1)} ms · {entry.record.started_at}
                {entry.record.test ? " · test" : ""}
              </span>
            )}
          </div>
          {entry.lines.length > 0 && <pre class="console">{entry.lines.join("\n")}</pre>}
          {entry.record?.error && <pre class="error">{entry.record.error}</pre>}
        </div>
      ))}
    </section>
  );
}
