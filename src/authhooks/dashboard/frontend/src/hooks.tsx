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
  const [error, setError] = useState("");
  const load = () =>
    allHooks().then(setHooks, (failure) => {
      if (failure instanceof SignedOut) onSignedOut();
      else setError(failure instanceof ApiError ? failure.message : String(failure));
    });
  useEffect(() => {
    load();
  }, []);
  const toggle = async (hook: Hook) => {
    setError("");
    try {
      await api("PATCH", `/hooks/${hook.id}`, { enabled: !hook.enabled });
      await load();
    } catch (failure) {
      if (failure instanceof SignedOut) onSignedOut();
      else setError(failure instanceof ApiError ? failure.message : String(failure));
    }
  };
  if (hooks === null) return error ? <p class="error">{error}</p> : <p>Loading…</p>;
  return (
    <section class="hooks">
      <h1>Hooks</h1>
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
                  </tr>
                </thead>
                <tbody>
                  {flow.map((hook) => (
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
