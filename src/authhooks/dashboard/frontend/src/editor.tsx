// A hook's editor: its code in CodeMirror (Python or JavaScript, as the code reads,
// with completion from the point's hints for the convention the code uses, and the
// hook's secret names), save as a new version with the server's errors shown at
// their line, and a runner for unsaved code on the point's sample event.

import { autocompletion } from "@codemirror/autocomplete";
import { javascript } from "@codemirror/lang-javascript";
import { python } from "@codemirror/lang-python";
import { Diagnostic, lintGutter, setDiagnostics } from "@codemirror/lint";
import { Compartment, EditorState, Extension } from "@codemirror/state";
import { EditorView, basicSetup } from "codemirror";
import { useEffect, useRef, useState } from "preact/hooks";

import { ApiError, gitSources, hooks as hooksApi, point as pointNamed, problem } from "./api";
import { completions } from "./completion";
import { CONVENTIONS, LANGUAGES, conventionOf, label, languageLabel, languageOf, starter, variant } from "./conventions";
import { LogsPanel } from "./logs";
import { DependenciesPanel } from "./dependencies";
import { cspNonce } from "./json";
import { SchedulePanel } from "./schedule";
import { SecretsPanel } from "./secrets";
import type { ConventionName, Hook, Invocation, Point, RunnerReport, RunnerRequest, Runtime } from "./types";
import { VersionsPanel } from "./versions";

/** The innermost line of the hook's own code in a traceback: Python's lines end
 * with it ('File "hook.py", line 4'), JavaScript's stack starts with it
 * ('at module.exports (hook.js:4:9)'). */
function lastHookLine(traceback: string[]): number | null {
  let found: number | null = null;
  for (const line of traceback) {
    const python = line.match(/"hook\.py", line (\d+)/);
    if (python) found = Number(python[1]);
    const js = line.match(/hook\.js:(\d+)/);
    if (js && found === null) found = Number(js[1]);
  }
  return found;
}

function highlighting(language: Runtime): Extension {
  return language === "node" ? javascript() : python();
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

export function EditorPage({ hookId }: { hookId: string }) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const pointRef = useRef<Point | null>(null);
  const secretNames = useRef<string[]>([]);
  const languageRef = useRef<Runtime>("python");
  const [hook, setHook] = useState<Hook | null>(null);
  const [point, setPoint] = useState<Point | null>(null);
  const [convention, setConvention] = useState<ConventionName | null>(null);
  const [language, setLanguage] = useState<Runtime>("python");
  const [status, setStatus] = useState("");
  const [error, setError] = useState("");
  const [event, setEvent] = useState("");
  const [report, setReport] = useState<RunnerReport | null>(null);
  // Recent production invocations: a runner call can replay one's captured event.
  const [recent, setRecent] = useState<Invocation[]>([]);
  const [replay, setReplay] = useState("");
  // The git source that keeps the hook, by name when it can be read.
  const [keptBy, setKeptBy] = useState<{ id: string; name: string | null } | null>(null);

  useEffect(() => {
    // The view is made once the hook has loaded; leaving the page before then
    // must not make one, and leaving it after destroys it (its listeners on the
    // window and document go with it).
    let live = true;
    let made: EditorView | null = null;
    (async () => {
      const loaded = await hooksApi.get(hookId);
      const pointOf = await pointNamed(loaded.triggerId);
      if (!live) return;
      pointRef.current = pointOf;
      const written = languageOf(loaded.script, loaded.runtime);
      languageRef.current = written;
      setHook(loaded);
      setPoint(pointOf);
      setLanguage(written);
      setConvention(conventionOf(loaded.script, pointOf, written));
      setEvent(JSON.stringify(pointOf.sample_event, null, 2));
      // A hook a git source keeps is edited in its repository: the editor only shows it.
      const sourceId = loaded.source_id ?? null;
      if (sourceId) {
        setKeptBy({ id: sourceId, name: null });
        gitSources.get(sourceId).then(
          (found) => live && setKeptBy({ id: sourceId, name: found.name }),
          () => {}, // without read:git_sources the note names its id
        );
      }
      // The highlighting follows the code's language: a template of the other
      // language, or code pasted in, switches it in the same transaction.
      const highlighter = new Compartment();
      made = new EditorView({
        doc: loaded.script,
        parent: host.current!,
        extensions: [
          EditorView.cspNonce.of(cspNonce()),
          basicSetup,
          ...(sourceId ? [EditorState.readOnly.of(true), EditorView.editable.of(false)] : []),
          highlighter.of(highlighting(written)),
          EditorState.transactionExtender.of((transaction) => {
            if (!transaction.docChanged) return null;
            const next = languageOf(transaction.newDoc.toString(), languageRef.current);
            if (next === languageRef.current) return null;
            languageRef.current = next;
            return { effects: highlighter.reconfigure(highlighting(next)) };
          }),
          lintGutter(),
          autocompletion({
            override: [completions(() => pointRef.current, () => secretNames.current, () => languageRef.current)],
          }),
          EditorView.updateListener.of((update) => {
            if (!update.docChanged) return;
            setLanguage(languageRef.current);
            setConvention(conventionOf(update.state.doc.toString(), pointOf, languageRef.current));
          }),
        ],
      });
      view.current = made;
      const page = await hooksApi.logs(hookId, 50);
      if (live) setRecent(page.logs.filter((record) => !record.test));
    })().catch((failure) => live && setError(problem(failure)));
    return () => {
      live = false;
      made?.destroy();
      view.current = null;
    };
  }, [hookId]);

  /** Replace the code with a convention's template (unsaved; undo brings it back). */
  const startFrom = (name: ConventionName, written: Runtime) => {
    if (!view.current || !point) return;
    view.current.dispatch({
      changes: { from: 0, to: view.current.state.doc.length, insert: starter(point, name, written) },
    });
    view.current.focus();
  };

  /** Mark ``line`` in the editor, unless the page was left while the server answered. */
  const markIn = (editor: EditorView, line: number | null, message: string) => {
    if (view.current === editor) mark(editor, line, message);
  };

  const save = async () => {
    const editor = view.current;
    if (!editor || !hook) return;
    setError("");
    setStatus("");
    try {
      // The language is sent as the editor reads the code: the server would infer it
      // the same way from most code, but not from all (``module.exports.onExecuteX``).
      const saved = await hooksApi.update(hook.id, { script: editor.state.doc.toString(), runtime: languageRef.current });
      setHook(saved);
      markIn(editor, null, "");
      setStatus(`Saved: version ${saved.version}`);
    } catch (failure) {
      setError(problem(failure));
      if (failure instanceof ApiError) markIn(editor, lineOf(failure.message), failure.message);
    }
  };

  const run = async () => {
    const editor = view.current;
    if (!editor || !hook) return;
    setError("");
    setReport(null);
    const body: RunnerRequest = { script: editor.state.doc.toString() };
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
      const answer = await hooksApi.run(hook.id, body);
      setReport(answer);
      const failure = answer.error;
      markIn(editor, failure ? (failure.line ?? lastHookLine(failure.traceback ?? [])) : null, failure?.message ?? "");
    } catch (failure) {
      setError(problem(failure));
      if (failure instanceof ApiError) markIn(editor, lineOf(failure.message), failure.message);
    }
  };

  return (
    <section class="editor-page">
      <p>
        <a href="#/hooks">Hooks</a> / {hook?.name ?? "…"}
      </p>
      <h1>{hook?.name ?? "Loading…"}</h1>
      {keptBy && (
        <p class="notice managed" role="note">
          Kept by the git source{" "}
          <a href={`#/git/${encodeURIComponent(keptBy.id)}`}>{keptBy.name ?? keptBy.id}</a>: its code and settings
          come from the repository and are read-only here (saving would be refused). Push to the repository to change
          it, or detach or delete the source to edit it here. Its secrets can be set.
        </p>
      )}
      {point && (
        <div class="signature" data-language={language}>
          <p>
            <a class="point-link" href={`#/points/${encodeURIComponent(point.id)}`}>
              {point.id}
            </a>{" "}
            ({convention ? `${label(convention)}, ` : ""}
            {languageLabel(language)}):{" "}
            {convention ? (
              <code>{variant(point, convention, language).signature}</code>
            ) : (
              <>
                the code defines neither <code>{variant(point, "hooks", language).signature}</code> nor{" "}
                <code>{variant(point, "actions", language).signature}</code>
              </>
            )}{" "}
            — deployed version {hook?.version}
          </p>
          {!keptBy && <p class="templates">
            Replace the code with a template (undo brings it back):
            {/* The code's language first: its buttons are the ones most often wanted. */}
            {[language, ...LANGUAGES.map((each) => each.name).filter((each) => each !== language)].map((written) => (
              <span key={written} class="language">
                {" "}
                {languageLabel(written)}:
                {CONVENTIONS.map(({ name, label: text }) => (
                  <button
                    key={name}
                    class="link"
                    data-template={name}
                    data-language={written}
                    onClick={() => startFrom(name, written)}
                  >
                    {text}
                  </button>
                ))}
              </span>
            ))}
          </p>}
        </div>
      )}
      <div class="workbench">
        <div class="code">
          <div class="editor" ref={host} />
          <div class="actions">
            {!keptBy && <button onClick={save}>Save</button>}
            <span class="status" role="status">{status}</span>
          </div>
        </div>
        <div class="side">
          <SecretsPanel hookId={hookId} onNames={(names) => (secretNames.current = names)} />
          {hook?.schedule && (
            <SchedulePanel
              hook={hook}
              readOnly={Boolean(keptBy)}
              onSaved={(saved) => {
                setHook(saved);
                setStatus("Schedule saved");
              }}
            />
          )}
          {hook && (
            <DependenciesPanel
              hook={hook}
              readOnly={Boolean(keptBy)}
              onSaved={(saved) => {
                setHook(saved);
                setStatus(`Dependencies installed: version ${saved.version}`);
              }}
            />
          )}
        </div>
      </div>
      {error && <p class="error" role="alert">{error}</p>}
      {hook && (
        <VersionsPanel
          hookId={hook.id}
          deployed={hook.version}
          managed={Boolean(keptBy)}
          onDeployed={(deployed) => {
            setHook(deployed);
            view.current?.dispatch({
              changes: { from: 0, to: view.current.state.doc.length, insert: deployed.script },
            });
            setStatus(`Deployed version ${deployed.version}`);
          }}
        />
      )}
      <LogsPanel hookId={hookId} />
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
