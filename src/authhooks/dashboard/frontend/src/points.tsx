// The Points pages: every extensibility point (built in, from the operator's points
// file, or declared by an application), how many hooks each has, and a form that
// declares one; a point's page with its settings and schemas (editable only for a
// declared point), its hooks in flow order, a new hook on it, and deleting it.
// Whether a spec is right is the server's to say: its message is shown as it comes.

import { useEffect, useState } from "preact/hooks";

import { holds, hooks as hooksApi, points as allPoints, pointsApi, problem } from "./api";
import { CreateHook, flowOf } from "./hooks";
import { JsonField, parsed, shown } from "./json";
import type { CaptureMismatch, Hook, Point, PointCreate, PointSource, PointUpdate } from "./types";

const SOURCES: Record<PointSource, { badge: string; note: string }> = {
  server: { badge: "built-in", note: "Built in: part of the server's code, so its schemas are read-only." },
  points_file: {
    badge: "points file",
    note: "Declared in the server's points file (AUTHHOOKS_POINTS_FILE): change it there; it is read-only here.",
  },
  api: { badge: "declared", note: "" },
};

const pointLink = (id: string) => `#/points/${encodeURIComponent(id)}`;
const hookLink = (id: string) => `#/hooks/${encodeURIComponent(id)}`;

function Badge({ point }: { point: Point }) {
  return (
    <span class={`badge source-${point.source}`} data-source={point.source}>
      {SOURCES[point.source]?.badge ?? point.source}
    </span>
  );
}

function Kind({ point }: { point: Point }) {
  return (
    <span class="kind" title={point.blocking ? "its caller waits for its hooks" : "its hooks run later, from the queue"}>
      {point.blocking ? "blocking" : "async"}
    </span>
  );
}

const plural = (count: number, word: string) => `${count} ${word}${count === 1 ? "" : "s"}`;

/** A whole number from a field, undefined when it is empty. */
function wholeNumber(text: string): number | undefined {
  return text.trim() ? Number(text) : undefined;
}

export function PointsPage() {
  const [points, setPoints] = useState<Point[] | null>(null);
  // Null when the admin may read points but not hooks (read:points alone).
  const [counts, setCounts] = useState<Record<string, number> | null>({});
  const [declared, setDeclared] = useState("");
  const [error, setError] = useState("");
  const load = async () => {
    // Asked for afresh: an application may have declared one since the sign-in.
    const [listed, found] = await Promise.all([allPoints(true), holds("read:hooks") ? hooksApi.points() : null]);
    const counted: Record<string, number> = {};
    for (const hook of found ?? []) counted[hook.triggerId] = (counted[hook.triggerId] ?? 0) + 1;
    setPoints(listed);
    setCounts(found ? counted : null);
  };
  useEffect(() => {
    load().catch((failure) => setError(problem(failure)));
  }, []);
  return (
    <section class="points">
      <h1>Points</h1>
      <p class="hint">
        Where hooks run: the server's own flows (built in), points the operator declares in the points file, and
        points applications declare and invoke with <code>{"POST /api/v2/points/{id}/invoke"}</code>.
      </p>
      {error && <p class="error" role="alert">{error}</p>}
      {declared && (
        <p class="notice" role="status">
          Point <a href={pointLink(declared)}>{declared}</a> declared.
        </p>
      )}
      {points === null ? (
        !error && <p>Loading…</p>
      ) : (
        <table class="list points-list">
          <thead>
            <tr>
              <th>Point</th>
              <th>From</th>
              <th>Kind</th>
              <th>Description</th>
              <th>Hooks</th>
            </tr>
          </thead>
          <tbody>
            {points.map((point) => (
              <tr key={point.id} data-point={point.id}>
                <td class="id">
                  <a href={pointLink(point.id)}>
                    <code>{point.id}</code>
                  </a>
                </td>
                <td>
                  <Badge point={point} />
                </td>
                <td>
                  <Kind point={point} />
                </td>
                <td class="description">{point.description}</td>
                <td class="hooks-count">
                  {counts ? (
                    <a href={pointLink(point.id)}>{plural(counts[point.id] ?? 0, "hook")}</a>
                  ) : (
                    <span class="empty" title="reading hooks needs read:hooks">?</span>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {holds("create:points") && (
        <DeclarePoint
          onDeclared={(point) => {
            setDeclared(point.id);
            load().catch((failure) => setError(problem(failure)));
          }}
        />
      )}
    </section>
  );
}

const EMPTY_SCHEMA = '{\n  "type": "object",\n  "properties": {},\n  "required": []\n}';

function DeclarePoint({ onDeclared }: { onDeclared: (point: Point) => void }) {
  const [id, setId] = useState("");
  const [description, setDescription] = useState("");
  const [blocking, setBlocking] = useState(true);
  const [eventSchema, setEventSchema] = useState(EMPTY_SCHEMA);
  const [resultSchema, setResultSchema] = useState(EMPTY_SCHEMA);
  const [sampleEvent, setSampleEvent] = useState("");
  const [timeout, setTimeoutMs] = useState("");
  const [maxHooks, setMaxHooks] = useState("");
  const [error, setError] = useState("");
  // A new key starts the JSON fields again, once a point is declared.
  const [round, setRound] = useState(0);
  const submit = async (event: Event) => {
    event.preventDefault();
    setError("");
    let body: PointCreate;
    try {
      body = {
        id: id.trim(),
        description: description.trim(),
        blocking,
        event_schema: parsed("event_schema", eventSchema),
        result_schema: blocking ? parsed("result_schema", resultSchema) : undefined,
        sample_event: parsed("sample_event", sampleEvent),
        timeout_ms: wholeNumber(timeout),
        max_hooks: wholeNumber(maxHooks),
      };
    } catch (failure) {
      setError(problem(failure));
      return;
    }
    try {
      const made = await pointsApi.create(body);
      setId("");
      setDescription("");
      setEventSchema(EMPTY_SCHEMA);
      setResultSchema(EMPTY_SCHEMA);
      setSampleEvent("");
      setTimeoutMs("");
      setMaxHooks("");
      setRound(round + 1);
      onDeclared(made);
    } catch (failure) {
      setError(problem(failure));
    }
  };
  return (
    <form class="point-form declare-point" onSubmit={submit} key={round}>
      <h2>Declare a point</h2>
      <p class="hint">
        Its hooks get the event (checked against the event schema) and, at a blocking point, build a result
        (checked against the result schema) that the caller waits for. Schemas are JSON Schema, draft 2020-12.
      </p>
      <label>
        id{" "}
        <input name="point_id" placeholder="price-quote" value={id} onInput={(e) => setId(e.currentTarget.value)} />
      </label>
      <label>
        description{" "}
        <input name="description" value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
      </label>
      <label class="check">
        <input type="checkbox" name="blocking" checked={blocking} onChange={(e) => setBlocking(e.currentTarget.checked)} />
        blocking: the caller waits for the hooks' result (otherwise they run later, from the queue)
      </label>
      <div class="field">
        event schema
        <JsonField key={`event-${round}`} name="event_schema" initial={eventSchema} onChange={setEventSchema} />
      </div>
      {blocking && (
        <div class="field">
          result schema (optional)
          <JsonField key={`result-${round}`} name="result_schema" initial={resultSchema} onChange={setResultSchema} />
        </div>
      )}
      <div class="field">
        sample event (optional: made from the event schema when empty; the runner starts from it)
        <JsonField key={`sample-${round}`} name="sample_event" initial={sampleEvent} onChange={setSampleEvent} />
      </div>
      <Bounds timeout={timeout} maxHooks={maxHooks} onTimeout={setTimeoutMs} onMaxHooks={setMaxHooks} />
      <button type="submit">Declare point</button>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}

function Bounds({
  timeout,
  maxHooks,
  onTimeout,
  onMaxHooks,
}: {
  timeout: string;
  maxHooks: string;
  onTimeout: (text: string) => void;
  onMaxHooks: (text: string) => void;
}) {
  return (
    <>
      <label>
        timeout_ms (optional, 100–20000: bounds its hooks' own timeouts){" "}
        <input name="timeout_ms" type="number" min={100} max={20000} value={timeout} onInput={(e) => onTimeout(e.currentTarget.value)} />
      </label>
      <label>
        max_hooks (optional, 1–100){" "}
        <input name="max_hooks" type="number" min={1} max={100} value={maxHooks} onInput={(e) => onMaxHooks(e.currentTarget.value)} />
      </label>
    </>
  );
}

export function PointPage({ pointId }: { pointId: string }) {
  const [point, setPoint] = useState<Point | null>(null);
  const [flow, setFlow] = useState<Hook[]>([]);
  const [saved, setSaved] = useState<Saved | null>(null);
  const [error, setError] = useState("");
  const failed = (failure: unknown) => setError(problem(failure));
  const load = async () => {
    const [found, hooks] = await Promise.all([
      pointsApi.get(pointId),
      holds("read:hooks") ? hooksApi.onPoint(pointId) : [],
    ]);
    setPoint(found);
    setFlow(flowOf(hooks, pointId));
  };
  useEffect(() => {
    load().catch(failed);
  }, [pointId]);

  const remove = async () => {
    // Its hooks go with it (``force``): the confirmation says which.
    const names = flow.map((hook) => hook.name).join(", ");
    const question = flow.length
      ? `Delete the point ${pointId} and its ${plural(flow.length, "hook")} (${names}), with their versions, secrets and logs?`
      : `Delete the point ${pointId}? Applications invoking it are refused from then on.`;
    if (!confirm(question)) return;
    setError("");
    try {
      await pointsApi.remove(pointId, flow.length > 0);
      location.hash = "#/points";
    } catch (failure) {
      failed(failure);
      load().catch(() => {}); // hooks added meanwhile: the count is shown again
    }
  };

  if (!point) {
    return (
      <section class="point-page">
        <p>
          <a href="#/points">Points</a> / {pointId}
        </p>
        {error ? <p class="error" role="alert">{error}</p> : <p>Loading…</p>}
      </section>
    );
  }
  const declared = point.source === "api";
  return (
    <section class="point-page" data-point={point.id}>
      <p>
        <a href="#/points">Points</a> / {point.id}
      </p>
      <h1>
        <code>{point.id}</code> <Badge point={point} /> <Kind point={point} />
      </h1>
      <p class="description">{point.description}</p>
      <table class="list point-details">
        <tbody>
          <tr>
            <th>Callers</th>
            <td>
              {point.blocking
                ? "wait for its hooks' result (a refusal is answered 403)"
                : "do not wait: its hooks run later, from the durable queue"}
            </td>
          </tr>
          {point.source !== "server" && (
            <tr>
              <th>Invoked with</th>
              <td>
                <code>POST /api/v2/points/{point.id}/invoke</code> (scope <code>invoke:points:{point.id}</code> or{" "}
                <code>invoke:points</code>)
              </td>
            </tr>
          )}
          <tr>
            <th>timeout_ms</th>
            <td>{point.timeout_ms ?? <span class="empty">none: each hook's own</span>}</td>
          </tr>
          <tr>
            <th>max_hooks</th>
            <td>{point.max_hooks ?? <span class="empty">no bound</span>}</td>
          </tr>
        </tbody>
      </table>
      {error && <p class="error" role="alert">{error}</p>}

      <h2>Hooks</h2>
      {!holds("read:hooks") ? (
        <p class="empty">Listing its hooks needs the read:hooks scope.</p>
      ) : flow.length === 0 ? (
        <p class="empty">No hooks.</p>
      ) : (
        <table class="list point-hooks">
          <thead>
            <tr>
              <th>Order</th>
              <th>Name</th>
              <th>Version</th>
              <th>Enabled</th>
            </tr>
          </thead>
          <tbody>
            {flow.map((hook) => (
              <tr key={hook.id} data-hook={hook.name}>
                <td>{hook.order}</td>
                <td>
                  <a href={hookLink(hook.id)}>{hook.name}</a>
                </td>
                <td>{hook.version}</td>
                <td>{hook.enabled ? "yes" : "no"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <p class="hint">
        Ordering, enabling and deleting hooks: on the <a href="#/hooks">Hooks</a> page.
      </p>
      <h3>New hook on this point</h3>
      <CreateHook points={[point]} fixed onCreated={(hook) => (location.hash = hookLink(hook.id))} />

      {declared && holds("update:points") ? (
        <>
          {/* Made again from the point as saved. */}
          <EditPoint
            key={JSON.stringify(point)}
            point={point}
            onSaved={(updated, answer) => {
              setPoint(updated);
              setSaved(answer);
            }}
          />
          {saved && <SaveReport saved={saved} flow={flow} />}
        </>
      ) : (
        <Schemas point={point} />
      )}
      {declared && holds("delete:points") && (
        <div class="actions">
          <button class="danger" onClick={remove}>
            Delete point
          </button>
        </div>
      )}
    </section>
  );
}

/** A point's schemas and sample event, to read. */
function Schemas({ point }: { point: Point }) {
  const note = SOURCES[point.source]?.note || "Changing it needs the update:points scope.";
  return (
    <div class="schemas">
      <h2>Schemas</h2>
      <p class="hint read-only">{note}</p>
      <h3>Event schema</h3>
      <pre class="json" data-field="event_schema">{shown(point.event_schema)}</pre>
      {point.result_schema && (
        <>
          <h3>Result schema</h3>
          <pre class="json" data-field="result_schema">{shown(point.result_schema)}</pre>
        </>
      )}
      <h3>Sample event</h3>
      <pre class="json" data-field="sample_event">{shown(point.sample_event)}</pre>
    </div>
  );
}

/** What differs from the point as it is: only those keys are sent, so that the
 * server checks captured events only when the event schema changed. */
function changes(point: Point, draft: Record<string, unknown>): PointUpdate {
  const changed: Record<string, unknown> = {};
  const current: Record<string, unknown> = { ...point };
  for (const [key, value] of Object.entries(draft)) {
    const was = current[key] ?? null;
    const now = value === undefined ? null : value;
    if (JSON.stringify(was) !== JSON.stringify(now)) changed[key] = now;
  }
  return changed as PointUpdate;
}

/** What a save answered: the keys it changed, and the captured events the new
 * event schema refuses (shown as a warning). */
type Saved = { text: string; mismatches: CaptureMismatch[] };

function EditPoint({ point, onSaved }: { point: Point; onSaved: (point: Point, saved: Saved) => void }) {
  const [description, setDescription] = useState(point.description);
  const [eventSchema, setEventSchema] = useState(shown(point.event_schema));
  const [resultSchema, setResultSchema] = useState(shown(point.result_schema));
  const [sampleEvent, setSampleEvent] = useState(shown(point.sample_event));
  const [timeout, setTimeoutMs] = useState(point.timeout_ms === null ? "" : String(point.timeout_ms));
  const [maxHooks, setMaxHooks] = useState(point.max_hooks === null ? "" : String(point.max_hooks));
  const [status, setStatus] = useState("");
  const [error, setError] = useState("");
  const save = async (event: Event) => {
    event.preventDefault();
    setError("");
    setStatus("");
    let body: PointUpdate;
    try {
      body = changes(point, {
        description: description.trim(),
        event_schema: parsed("event_schema", eventSchema),
        ...(point.blocking ? { result_schema: parsed("result_schema", resultSchema) } : {}),
        sample_event: parsed("sample_event", sampleEvent),
        timeout_ms: wholeNumber(timeout),
        max_hooks: wholeNumber(maxHooks),
      });
    } catch (failure) {
      setError(problem(failure));
      return;
    }
    if (Object.keys(body).length === 0) {
      setStatus("Nothing changed.");
      return;
    }
    try {
      const { mismatched_captures: found, ...updated } = await pointsApi.update(point.id, body);
      onSaved(updated, { text: `Saved: ${Object.keys(body).join(", ")}.`, mismatches: found });
    } catch (failure) {
      setError(problem(failure));
    }
  };
  return (
    <form class="point-form edit-point" onSubmit={save}>
      <h2>Settings and schemas</h2>
      <p class="hint">
        Its id and whether it blocks cannot change: its hooks are written for them. An empty sample event is made
        again from the event schema.
      </p>
      <label>
        description{" "}
        <input name="description" value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
      </label>
      <div class="field">
        event schema
        <JsonField name="event_schema" initial={eventSchema} onChange={setEventSchema} />
      </div>
      {point.blocking && (
        <div class="field">
          result schema (optional)
          <JsonField name="result_schema" initial={resultSchema} onChange={setResultSchema} />
        </div>
      )}
      <div class="field">
        sample event
        <JsonField name="sample_event" initial={sampleEvent} onChange={setSampleEvent} />
      </div>
      <Bounds timeout={timeout} maxHooks={maxHooks} onTimeout={setTimeoutMs} onMaxHooks={setMaxHooks} />
      <button type="submit">Save point</button>
      {status && (
        <p class="notice" role="status">
          {status}
        </p>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}

function SaveReport({ saved, flow }: { saved: Saved; flow: Hook[] }) {
  const hookName = (id: string) => flow.find((hook) => hook.id === id)?.name ?? id;
  return (
    <div class="save-report">
      <p class="notice" role="status">
        {saved.text}
      </p>
      {saved.mismatches.length > 0 && (
        <div class="notice mismatches" role="alert">
          <p>
            The new event schema refuses {plural(saved.mismatches.length, "captured event")} of this point's hooks:
            replaying them in the runner fails until they fit.
          </p>
          <ul>
            {saved.mismatches.map((each) => (
              <li key={each.invocation_id}>
                <code>{each.invocation_id}</code> of <a href={hookLink(each.hook_id)}>{hookName(each.hook_id)}</a>:{" "}
                {each.error}
              </li>
            ))}
          </ul>
        </div>
      )}
    </div>
  );
}
