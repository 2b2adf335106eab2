// A hook's editor: its code in CodeMirror (Python, with completion of the point's
// arguments, context fields and the hook's secret names), save as a new version
// with the server's errors shown at their line, and a runner for unsaved code.

import { CompletionContext, CompletionResult, autocompletion } from "@codemirror/autocomplete";
import { python } from "@codemirror/lang-python";
import { Diagnostic, lintGutter, setDiagnostics } from "@codemirror/lint";
import { EditorView, basicSetup } from "codemirror";
import { useEffect, useRef, useState } from "preact/hooks";

import { ApiError, SignedOut, api } from "./api";
import { LogsPanel } from "./logs";
import { SecretsPanel } from "./secrets";
import { VersionsPanel } from "./versions";

type Point = { name: string; function: string; params: string[]; sample_event: unknown };
type Hook = { id: string; name: string; triggerId: string; script: string; version: number; enabled: boolean };
type Report = {
  outcome: string;
  duration_ms: number;
  result: unknown;
  error: { kind: string; message: string; type?: string; line?: number; traceback?: string[] } | null;
  console: { stream: string; text: string }[];
};

const CONTEXT_FIELDS = ["secrets", "request", "claims", "server", "connection", "event_id", "delivery"];

function completions(point: Point, secrets: { current: string[] }) {
  return (context: CompletionContext): CompletionResult | null => {
    const secret = context.matchBefore(/context\[["']secrets["']\]\[["'][A-Za-z0-9_]*/);
    if (secret) {
      const start = secret.to - (secret.text.match(/[A-Za-z0-9_]*$/)?.[0].length ?? 0);
      return {
        from: start,
        options: secrets.current.map((name) => ({ label: name, type: "constant", detail: "secret" })),
      };
    }
    const field = context.matchBefore(/context\[["'][a-z_]*/);
    if (field) {
      const start = field.to - (field.text.match(/[a-z_]*$/)?.[0].length ?? 0);
      return { from: start, options: CONTEXT_FIELDS.map((name) => ({ label: name, type: "property" })) };
    }
    const word = context.matchBefore(/\w+/);
    if (!word || (word.from === word.to && !context.explicit)) return null;
    return {
      from: word.from,
      options: [
        ...point.params.map((name) => ({ label: name, type: "variable", detail: "argument" })),
        { label: `def ${point.function}(${point.params.join(", ")}):`, type: "function", detail: point.name },
      ],
    };
  };
}

/** The page's CSP nonce, which lets the editor add its style sheets. */
function cspNonce(): string {
  return document.querySelector('meta[name="csp-nonce"]')?.getAttribute("content") ?? "";
}

function problem(failure: unknown): string {
  return failure instanceof ApiError ? failure.message : String(failure);
}

/** The innermost line of the hook's own code in a traceback ('File "hook.py", line 4'). */
function lastHookLine(traceback: string[]): number | null {
  let found: number | null = null;
  for (const line of traceback) {
    const match = line.match(/"hook\.py", line (\d+)/);
    if (match) found = Number(match[1]);
  }
  return found;
}

/** The line a server message names ("line 3: ..."), if any. */
function lineOf(message: string): number | null {
  const found = message.match(/line (\d+)/);
  return found ? Number(found[1]) : null;
}

function mark(view: EditorView, line: number | null, message: string) {
  const diagnostics: Diagnostic[] = [];
  if (line !== null && line >= 1 && line <= view.state.doc.lines) {
    const at = view.state.doc.line(line);
    diagnostics.push({ from: at.from, to: at.to, severity: "error", message });
  }
  view.dispatch(setDiagnostics(view.state, diagnostics));
}

export function EditorPage({ hookId, onSignedOut }: { hookId: string; onSignedOut: () => void }) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const secretNames = useRef<string[]>([]);
  const [hook, setHook] = useState<Hook | null>(null);
  const [point, setPoint] = useState<Point | null>(null);
  const [status, setStatus] = useState("");
  const [error, setError] = useState("");
  const [event, setEvent] = useState("");
  const [report, setReport] = useState<Report | null>(null);
  // Recent production invocations: a runner call can replay one's captured event.
  const [recent, setRecent] = useState<{ id: string; started_at: string; outcome: string }[]>([]);
  const [replay, setReplay] = useState("");

  const failed = (failure: unknown) => {
    if (failure instanceof SignedOut) onSignedOut();
    else setError(problem(failure));
  };

  useEffect(() => {
    (async () => {
      const loaded: Hook = await api("GET", `/hooks/${encodeURIComponent(hookId)}`);
      const pointOf: Point = await api("GET", `/points/${encodeURIComponent(loaded.triggerId)}`);
      setHook(loaded);
      setPoint(pointOf);
      setEvent(JSON.stringify(pointOf.sample_event, null, 2));
      const page = await api("GET", `/logs?hook_id=${encodeURIComponent(hookId)}&take=50`);
      setRecent(page.logs.filter((record: { test: boolean }) => !record.test));
      view.current = new EditorView({
        doc: loaded.script,
        parent: host.current!,
        extensions: [
          EditorView.cspNonce.of(cspNonce()),
          basicSetup,
          python(),
          lintGutter(),
          autocompletion({ override: [completions(pointOf, secretNames)] }),
        ],
      });
    })().catch(failed);
    return () => view.current?.destroy();
  }, [hookId]);

  const save = async () => {
    if (!view.current || !hook) return;
    setError("");
    setStatus("");
    try {
      const saved: Hook = await api("PATCH", `/hooks/${encodeURIComponent(hook.id)}`, { script: view.current.state.doc.toString() });
      setHook(saved);
      mark(view.current, null, "");
      setStatus(`Saved: version ${saved.version}`);
    } catch (failure) {
      failed(failure);
      if (failure instanceof ApiError) mark(view.current, lineOf(failure.message), failure.message);
    }
  };

  const run = async () => {
    if (!view.current || !hook) return;
    setError("");
    setReport(null);
    const body: { script: string; event?: unknown; replay?: string } = {
      script: view.current.state.doc.toString(),
    };
    if (replay) body.replay = replay;
    else {
      try {
        body.event = JSON.parse(event);
      } catch (failure) {
        setError(`the event is not JSON: ${String(failure)}`);
        return;
      }
    }
    try {
      const answer: Report = await api("POST", `/hooks/${encodeURIComponent(hook.id)}/test`, body);
      setReport(answer);
      const failure = answer.error;
      mark(view.current, failure ? (failure.line ?? lastHookLine(failure.traceback ?? [])) : null, failure?.message ?? "");
    } catch (failure) {
      failed(failure);
      if (failure instanceof ApiError) mark(view.current, lineOf(failure.message), failure.message);
    }
  };

  return (
    <section class="editor-page">
      <p>
        <a href="#/hooks">Hooks</a> / {hook?.name ?? "…"}
      </p>
      <h1>{hook?.name ?? "Loading…"}</h1>
      {point && (
        <p class="signature">
          {point.name}: <code>{`def ${point.function}(${point.params.join(", ")})`}</code> — deployed version{" "}
          {hook?.version}
        </p>
      )}
      <div class="workbench">
        <div class="code">
          <div class="editor" ref={host} />
          <div class="actions">
            <button onClick={save}>Save</button>
            <span class="status" role="status">{status}</span>
          </div>
        </div>
        <SecretsPanel hookId={hookId} onNames={(names) => (secretNames.current = names)} onSignedOut={onSignedOut} />
      </div>
      {error && <p class="error" role="alert">{error}</p>}
      {hook && (
        <VersionsPanel
          hookId={hook.id}
          deployed={hook.version}
          onSignedOut={onSignedOut}
          onDeployed={async () => {
            const reloaded: Hook = await api("GET", `/hooks/${encodeURIComponent(hook.id)}`);
            setHook(reloaded);
            view.current?.dispatch({
              changes: { from: 0, to: view.current.state.doc.length, insert: reloaded.script },
            });
            setStatus(`Deployed version ${reloaded.version}`);
          }}
        />
      )}
      <LogsPanel hookId={hookId} onSignedOut={onSignedOut} />
      <h2>Runner</h2>
      <select aria-label="replay" value={replay} onChange={(e) => setReplay(e.currentTarget.value)}>
        <option value="">this event:</option>
        {recent.map((record) => (
          <option key={record.id} value={record.id}>
            {`replay ${record.id} (${record.outcome}, ${record.started_at})`}
          </option>
        ))}
      </select>
      <textarea
        class="event"
        aria-label="event"
        rows={10}
        disabled={replay !== ""}
        value={event}
        onInput={(e) => setEvent(e.currentTarget.value)}
      />
      <div class="actions">
        <button onClick={run}>Run unsaved code</button>
      </div>
      {report && (
        <div class="report" data-outcome={report.outcome}>
          <p>
            <strong class={report.outcome === "ok" ? "ok" : "failed"}>{report.outcome}</strong> in{" "}
            {report.duration_ms.toFixed(1)} ms
          </p>
          {report.console.length > 0 && (
            <pre class="console">{report.console.map((line) => line.text).join("\n")}</pre>
          )}
          {report.error && (
            <pre class="error">
              {[`${report.error.type ?? report.error.kind}: ${report.error.message}`, ...(report.error.traceback ?? [])].join("\n")}
            </pre>
          )}
          {report.outcome === "ok" && <pre class="result">{JSON.stringify(report.result, null, 2)}</pre>}
        </div>
      )}
    </section>
  );
}
