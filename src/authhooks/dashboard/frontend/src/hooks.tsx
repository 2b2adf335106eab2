// Hooks by extensibility point (the points as GET /api/v2/points lists them), in
// flow order, with their enabled switch; and the form that starts a new hook in
// either calling convention, in Python or JavaScript.

import { useEffect, useState } from "preact/hooks";

import { hooks as hooksApi, points as allPoints, problem } from "./api";
import { CONVENTIONS, LANGUAGES, languageLabel, starter, variant } from "./conventions";
import type { ConventionName, Hook, Invocation, Point, Runtime } from "./types";

type Last = Pick<Invocation, "outcome" | "started_at">;

/** Each hook's newest invocation (by hook id), asked for all hooks at once. */
async function lastInvocations(found: Hook[]): Promise<Record<string, Last>> {
  const pages = await Promise.all(found.map((hook) => hooksApi.logs(hook.id, 1)));
  const last: Record<string, Last> = {};
  found.forEach((hook, index) => {
    const newest = pages[index].logs[0];
    if (newest) last[hook.id] = newest;
  });
  return last;
}

/** The points and the hooks; the points asked for again when a hook names one the
 * list lacks (declared since it was read). */
async function pointsAndHooks(): Promise<[Point[], Hook[]]> {
  const [listed, found] = await Promise.all([allPoints(), hooksApi.all()]);
  const unknown = found.some((hook) => !listed.some((point) => point.id === hook.triggerId));
  return [unknown ? await allPoints(true) : listed, found];
}

/** A point's flow: its hooks in the order they run. */
export function flowOf(found: Hook[], pointId: string): Hook[] {
  return found
    .filter((hook) => hook.triggerId === pointId)
    .sort((a, b) => a.order - b.order || a.created_at.localeCompare(b.created_at));
}

export function HooksPage() {
  const [points, setPoints] = useState<Point[]>([]);
  const [hooks, setHooks] = useState<Hook[] | null>(null);
  const [last, setLast] = useState<Record<string, Last>>({});
  const [error, setError] = useState("");
  const load = () =>
    pointsAndHooks()
      .then(async ([listed, found]) => {
        setPoints(listed);
        setHooks(found);
        setLast(await lastInvocations(found));
      })
      .catch((failure) => setError(problem(failure)));
  useEffect(() => {
    load();
  }, []);
  const act = async (action: () => Promise<unknown>) => {
    setError("");
    try {
      await action();
      await load();
    } catch (failure) {
      setError(problem(failure));
    }
  };
  const toggle = (hook: Hook) => act(() => hooksApi.update(hook.id, { enabled: !hook.enabled }));
  const exclusive = (hook: Hook) => act(() => hooksApi.update(hook.id, { enabled: true, exclusive: true }));
  const remove = (hook: Hook) => {
    if (!confirm(`Delete the hook ${hook.name}, its versions, secrets and logs?`)) return;
    act(() => hooksApi.remove(hook.id));
  };
  // Moving a hook renumbers its point's flow 10, 20, 30... in the new order.
  const move = (flow: Hook[], index: number, by: number) =>
    act(async () => {
      const order = [...flow];
      const [moved] = order.splice(index, 1);
      order.splice(index + by, 0, moved);
      for (const [place, hook] of order.entries()) {
        if (hook.order !== (place + 1) * 10) await hooksApi.update(hook.id, { order: (place + 1) * 10 });
      }
    });
  if (hooks === null) return error ? <p class="error" role="alert">{error}</p> : <p>Loading…</p>;
  // A hook of a point the server no longer lists still shows, under its point's id.
  const orphans = [...new Set(hooks.map((hook) => hook.triggerId))].filter(
    (id) => !points.some((point) => point.id === id),
  );
  const groups: { id: string; point: Point | null }[] = [
    ...points.map((point) => ({ id: point.id, point })),
    ...orphans.map((id) => ({ id, point: null })),
  ];
  return (
    <section class="hooks">
      <h1>Hooks</h1>
      <CreateHook points={points} onCreated={(hook) => (location.hash = `#/hooks/${encodeURIComponent(hook.id)}`)} />
      {error && <p class="error" role="alert">{error}</p>}
      {groups.map(({ id, point }) => {
        const flow = flowOf(hooks, id);
        return (
          <div class="point" data-point={id} key={id}>
            <h2>{point ? <a href={`#/points/${encodeURIComponent(id)}`}>{id}</a> : id}</h2>
            <p class="description">
              {point ? point.description : "A point this server does not list."}
              {point && <span class="kind">{point.blocking ? "blocking" : "delivered later"}</span>}
            </p>
            {flow.length === 0 ? (
              <p class="empty">No hooks.</p>
            ) : (
              <table>
                <thead>
                  <tr>
                    <th>Order</th>
                    <th>Name</th>
                    <th>Version</th>
                    <th>Enabled</th>
                    <th>Last run</th>
                    <th />
                  </tr>
                </thead>
                <tbody>
                  {flow.map((hook, index) => (
                    <tr data-hook={hook.name} key={hook.id}>
                      <td>{hook.order}</td>
                      <td class="name">
                        <a href={`#/hooks/${encodeURIComponent(hook.id)}`}>{hook.name}</a>
                      </td>
                      <td>
                        {hook.version}
                        {hook.runtime === "node" && <span class="language-tag">{languageLabel(hook.runtime)}</span>}
                      </td>
                      <td>
                        <input
                          type="checkbox"
                          aria-label={`enabled: ${hook.name}`}
                          checked={hook.enabled}
                          onChange={() => toggle(hook)}
                        />
                      </td>
                      <td class="last-run">
                        {last[hook.id] ? (
                          <span class={last[hook.id].outcome === "ok" ? "ok" : "failed"}>
                            {last[hook.id].outcome} · {last[hook.id].started_at}
                          </span>
                        ) : (
                          <span class="empty">never</span>
                        )}
                      </td>
                      <td class="row-actions">
                        <button class="link" title="run earlier" disabled={index === 0} onClick={() => move(flow, index, -1)}>
                          ↑
                        </button>
                        <button class="link" title="run later" disabled={index === flow.length - 1} onClick={() => move(flow, index, 1)}>
                          ↓
                        </button>
                        <button class="link" onClick={() => exclusive(hook)}>
                          Enable only this
                        </button>
                        <button class="link" onClick={() => remove(hook)}>
                          Delete
                        </button>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </div>
        );
      })}
    </section>
  );
}

/** A new hook for a point (chosen among ``points``, or the one point a point's page
 * gives), starting from the template of the chosen convention in the chosen
 * language; disabled until enabled. */
export function CreateHook({
  points,
  onCreated,
  fixed = false,
}: {
  points: Point[];
  onCreated: (hook: Hook) => void;
  fixed?: boolean; // the first point, not a choice
}) {
  const [pointId, setPointId] = useState("");
  const [convention, setConvention] = useState<ConventionName>("hooks");
  const [language, setLanguage] = useState<Runtime>("python");
  const [name, setName] = useState("");
  // Hooks of point schedule need a cron expression from the start.
  const [cron, setCron] = useState("*/5 * * * *");
  const [error, setError] = useState("");
  const point = points.find((each) => each.id === pointId) ?? points[0];
  if (!point) return null;
  const create = async (event: Event) => {
    event.preventDefault();
    setError("");
    try {
      onCreated(
        await hooksApi.create({
          name: name.trim(),
          triggerId: point.id,
          script: starter(point, convention, language),
          runtime: language,
          ...(point.id === "schedule" ? { schedule: { cron: cron.trim(), timezone: "UTC", catch_up: false } } : {}),
        }),
      );
    } catch (failure) {
      setError(problem(failure));
    }
  };
  return (
    <form class="create-hook" onSubmit={create}>
      {!fixed ? (
        <select name="point" aria-label="point" value={point.id} onChange={(e) => setPointId(e.currentTarget.value)}>
          {points.map((each) => (
            <option value={each.id} key={each.id}>
              {each.id}
            </option>
          ))}
        </select>
      ) : (
        <code class="point-id">{point.id}</code>
      )}
      <fieldset class="choice" aria-label="language">
        {LANGUAGES.map(({ name: each, label }) => (
          <label key={each}>
            <input
              type="radio"
              name="language"
              value={each}
              checked={language === each}
              onChange={() => setLanguage(each)}
            />
            {label}
          </label>
        ))}
      </fieldset>
      <fieldset class="choice" aria-label="convention">
        {CONVENTIONS.map(({ name: each, label }) => (
          <label key={each}>
            <input
              type="radio"
              name="convention"
              value={each}
              checked={convention === each}
              onChange={() => setConvention(each)}
            />
            {label}
          </label>
        ))}
      </fieldset>
      <input name="hook_name" placeholder="name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
      {point.id === "schedule" && (
        <input name="cron" aria-label="cron expression" value={cron} onInput={(e) => setCron(e.currentTarget.value)} />
      )}
      <button type="submit">Create hook</button>
      <code class="signature">{variant(point, convention, language).signature}</code>
      {error && (
        <span class="error" role="alert">
          {error}
        </span>
      )}
    </form>
  );
}
