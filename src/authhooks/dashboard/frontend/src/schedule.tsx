// A scheduled hook's schedule beside its editor: the cron expression, its time zone
// and catch_up, changed in place; the next runs and how the last one went.

import { useEffect, useState } from "preact/hooks";

import { hooks, problem } from "./api";
import type { Hook, ScheduleStatus } from "./types";

export function SchedulePanel({
  hook,
  readOnly,
  onSaved,
}: {
  hook: Hook;
  readOnly: boolean;
  onSaved: (hook: Hook) => void;
}) {
  const [status, setStatus] = useState<ScheduleStatus | null>(null);
  const [cron, setCron] = useState(hook.schedule?.cron ?? "");
  const [timezone, setTimezone] = useState(hook.schedule?.timezone ?? "UTC");
  const [catchUp, setCatchUp] = useState(hook.schedule?.catch_up ?? false);
  const [error, setError] = useState("");

  const load = async () => setStatus(await hooks.schedule(hook.id));
  // Enabling, disabling or a new schedule changes the next runs.
  useEffect(() => {
    load().catch((failure) => setError(problem(failure)));
  }, [hook.id, hook.enabled, hook.updated_at]);

  const save = async (event: Event) => {
    event.preventDefault();
    setError("");
    try {
      onSaved(await hooks.update(hook.id, { schedule: { cron: cron.trim(), timezone: timezone.trim(), catch_up: catchUp } }));
      await load();
    } catch (failure) {
      setError(problem(failure));
    }
  };

  return (
    <aside class="schedule">
      <h2>Schedule</h2>
      <form onSubmit={save}>
        <input
          name="cron"
          aria-label="cron expression"
          placeholder="*/5 * * * *"
          value={cron}
          disabled={readOnly}
          onInput={(e) => setCron(e.currentTarget.value)}
        />
        <input
          name="timezone"
          aria-label="time zone"
          placeholder="UTC"
          value={timezone}
          disabled={readOnly}
          onInput={(e) => setTimezone(e.currentTarget.value)}
        />
        <label>
          <input
            type="checkbox"
            name="catch_up"
            checked={catchUp}
            disabled={readOnly}
            onChange={(e) => setCatchUp(e.currentTarget.checked)}
          />
          catch up missed ticks
        </label>
        {!readOnly && <button type="submit">Save schedule</button>}
      </form>
      <p class="hint">5 fields (minute hour day month weekday), or 6: the sixth is seconds.</p>
      {status && (
        <>
          <h3>Next runs (UTC)</h3>
          {status.next_runs.length === 0 ? (
            <p class="empty">None while the hook is disabled.</p>
          ) : (
            <ol class="next-runs">
              {status.next_runs.map((run) => (
                <li key={run}>
                  <time dateTime={run}>{run}</time>
                </li>
              ))}
            </ol>
          )}
          <p class="last-run">
            {status.last_run_at ? `Last run: ${status.last_run_at}, ${status.last_status}` : "Not run yet."}
            {status.running_since && ` Running since ${status.running_since}.`}
          </p>
        </>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </aside>
  );
}
