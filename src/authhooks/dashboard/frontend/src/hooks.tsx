// Hooks by extensibility point, in flow order, with their enabled switch.

import { useEffect, useState } from "preact/hooks";

import { ApiError, SignedOut, api } from "./api";

type Hook = {
  id: string;
  name: string;
  triggerId: string;
  enabled: boolean;
  order: number;
  version: number;
  created_at: string;
};

// The points in the order docs/hooks.md gives them.
const POINTS = [
  "credentials-exchange",
  "password-exchange",
  "pre-user-registration",
  "post-user-registration",
  "post-change-password",
];

type Last = { outcome: string; started_at: string };

/** Each hook's newest invocation (by hook id), asked for all hooks at once. */
async function lastInvocations(hooks: Hook[]): Promise<Record<string, Last>> {
  const pages = await Promise.all(
    hooks.map((hook) => api("GET", `/logs?hook_id=${encodeURIComponent(hook.id)}&take=1`)),
  );
  const found: Record<string, Last> = {};
  hooks.forEach((hook, index) => {
    const newest = pages[index].logs[0];
    if (newest) found[hook.id] = newest;
  });
  return found;
}

async function allHooks(): Promise<Hook[]> {
  const found: Hook[] = [];
  for (let page = 0; ; page++) {
    const batch: Hook[] = await api("GET", `/hooks?per_page=100&page=${page}`);
    found.push(...batch);
    if (batch.length < 100) return found;
  }
}

export function HooksPage({ onSignedOut }: { onSignedOut: () => void }) {
  const [hooks, setHooks] = useState<Hook[] | null>(null);
  const [last, setLast] = useState<Record<string, Last>>({});
  const [error, setError] = useState("");
  const load = () =>
    allHooks()
      .then(async (found) => {
        setHooks(found);
        setLast(await lastInvocations(found));
      })
      .catch((failure) => {
        if (failure instanceof SignedOut) onSignedOut();
        else setError(failure instanceof ApiError ? failure.message : String(failure));
      });
  useEffect(() => {
    load();
  }, []);
  const act = async (action: () => Promise<unknown>) => {
    setError("");
    try {
      await action();
      await load();
    } catch (failure) {
      if (failure instanceof SignedOut) onSignedOut();
      else setError(failure instanceof ApiError ? failure.message : String(failure));
    }
  };
  const toggle = (hook: Hook) => act(() => api("PATCH", `/hooks/${encodeURIComponent(hook.id)}`, { enabled: !hook.enabled }));
  const exclusive = (hook: Hook) =>
    act(() => api("PATCH", `/hooks/${encodeURIComponent(hook.id)}`, { enabled: true, exclusive: true }));
  const remove = (hook: Hook) => {
    if (!confirm(`Delete the hook ${hook.name}, its versions, secrets and logs?`)) return;
    act(() => api("DELETE", `/hooks/${encodeURIComponent(hook.id)}`));
  };
  // Moving a hook renumbers its point's flow 10, 20, 30... in the new order.
  const move = (flow: Hook[], index: number, by: number) =>
    act(async () => {
      const order = [...flow];
      const [moved] = order.splice(index, 1);
      order.splice(index + by, 0, moved);
      for (const [place, hook] of order.entries()) {
        if (hook.order !== (place + 1) * 10) {
          await api("PATCH", `/hooks/${encodeURIComponent(hook.id)}`, { order: (place + 1) * 10 });
        }
      }
    });
  if (hooks === null) return error ? <p class="error">{error}</p> : <p>Loading…</p>;
  return (
    <section class="hooks">
      <h1>Hooks</h1>
      <CreateHook onCreated={(hook) => (location.hash = `#/hooks/${encodeURIComponent(hook.id)}`)} onSignedOut={onSignedOut} />
      {error && <p class="error" role="alert">{error}</p>}
      {POINTS.map((point) => {
        const flow = hooks
          .filter((hook) => hook.triggerId === point)
          .sort((a, b) => a.order - b.order || a.created_at.localeCompare(b.created_at));
        return (
          <div class="point" data-point={point} key={point}>
            <h2>{point}</h2>
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
                      <td>{hook.version}</td>
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

/** A new hook for a point, starting from the point's template; disabled until enabled. */
function CreateHook({ onCreated, onSignedOut }: { onCreated: (hook: Hook) => void; onSignedOut: () => void }) {
  const [point, setPoint] = useState(POINTS[0]);
  const [name, setName] = useState("");
  const [error, setError] = useState("");
  const create = async (event: Event) => {
    event.preventDefault();
    setError("");
    try {
      const template: { template: string } = await api("GET", `/points/${point}`);
      onCreated(await api("POST", "/hooks", { name: name.trim(), triggerId: point, script: template.template }));
    } catch (failure) {
      if (failure instanceof SignedOut) onSignedOut();
      else setError(failure instanceof ApiError ? failure.message : String(failure));
    }
  };
  return (
    <form class="create-hook" onSubmit={create}>
      <select name="point" aria-label="point" value={point} onChange={(e) => setPoint(e.currentTarget.value)}>
        {POINTS.map((each) => (
          <option value={each} key={each}>
            {each}
          </option>
        ))}
      </select>
      <input name="hook_name" placeholder="name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
      <button type="submit">Create hook</button>
      {error && (
        <span class="error" role="alert">
          {error}
        </span>
      )}
    </form>
  );
}
