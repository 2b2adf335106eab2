// One client's settings for browser sign-in (Auth0's fields): where it may be sent
// back to, which origins may call the token endpoint, how it authenticates, whether
// people are asked to consent, and how its refresh tokens rotate and expire.
// Saved with one PATCH; the server's refusal is shown as it comes.

import { useEffect, useState } from "preact/hooks";

import { clients, problem } from "./api";
import type { Client } from "./types";

const GRANTS = ["authorization_code", "refresh_token", "client_credentials", "password"];
type ListField = "callbacks" | "allowed_logout_urls" | "web_origins";
const lines = (text: string) => text.split("\n").map((line) => line.trim()).filter(Boolean);

export function ClientPage({ clientId }: { clientId: string }) {
  const [client, setClient] = useState<Client | null>(null);
  const [draft, setDraft] = useState<Client | null>(null);
  const [error, setError] = useState("");
  const [saved, setSaved] = useState(false);
  const [texts, setTexts] = useState<Partial<Record<ListField, string>>>({});
  useEffect(() => {
    clients.get(clientId).then(
      (found) => {
        setClient(found);
        setDraft(found);
      },
      (failure) => setError(problem(failure)),
    );
  }, [clientId]);
  if (!draft || !client) return error ? <p class="error" role="alert">{error}</p> : <p>Loading…</p>;

  const change = (part: Partial<Client>) => {
    setSaved(false);
    setDraft({ ...draft, ...part });
  };
  // The lists are edited as text, one entry a line, and split when saved.
  const list = (field: ListField) => (
    <label>
      {field}
      <textarea
        name={field}
        rows={3}
        value={texts[field] ?? draft[field].join("\n")}
        onInput={(e) => {
          setSaved(false);
          setTexts({ ...texts, [field]: e.currentTarget.value });
        }}
      />
    </label>
  );
  const listed = (field: ListField) => (texts[field] === undefined ? draft[field] : lines(texts[field]));
  const save = async (event: Event) => {
    event.preventDefault();
    setError("");
    try {
      const updated = await clients.update(clientId, {
        callbacks: listed("callbacks"),
        allowed_logout_urls: listed("allowed_logout_urls"),
        web_origins: listed("web_origins"),
        grant_types: draft.grant_types,
        token_endpoint_auth_method: draft.token_endpoint_auth_method,
        is_first_party: draft.is_first_party,
        refresh_token: draft.refresh_token,
      });
      setClient(updated);
      setDraft(updated);
      setTexts({});
      setSaved(true);
    } catch (failure) {
      setError(problem(failure));
    }
  };
  const refresh = draft.refresh_token;
  return (
    <section class="client-page">
      <h1>{client.name}</h1>
      <p>
        <code>{client.client_id}</code> · {client.app_type} · <a href="#/clients">all clients</a>
      </p>
      <form class="client-settings" onSubmit={save}>
        <h2>Sign-in</h2>
        {list("callbacks")}
        {list("allowed_logout_urls")}
        {list("web_origins")}
        <fieldset>
          <legend>Grant types</legend>
          {GRANTS.map((grant) => (
            <label key={grant} class="check">
              <input
                type="checkbox"
                name="grant_types"
                value={grant}
                checked={draft.grant_types.includes(grant)}
                onChange={(e) =>
                  change({
                    grant_types: e.currentTarget.checked
                      ? [...draft.grant_types, grant]
                      : draft.grant_types.filter((each) => each !== grant),
                  })
                }
              />
              {grant}
            </label>
          ))}
        </fieldset>
        <label>
          token_endpoint_auth_method
          <select
            name="token_endpoint_auth_method"
            value={draft.token_endpoint_auth_method}
            onChange={(e) => change({ token_endpoint_auth_method: e.currentTarget.value as Client["token_endpoint_auth_method"] })}
          >
            {["none", "client_secret_post", "client_secret_basic"].map((method) => (
              <option key={method} value={method}>
                {method}
              </option>
            ))}
          </select>
        </label>
        <label class="check">
          <input
            type="checkbox"
            name="is_first_party"
            checked={draft.is_first_party}
            onChange={(e) => change({ is_first_party: e.currentTarget.checked })}
          />
          first party (people are not asked to consent)
        </label>
        <h2>Refresh tokens</h2>
        <label>
          rotation
          <select
            name="rotation_type"
            value={refresh.rotation_type}
            onChange={(e) => change({ refresh_token: { ...refresh, rotation_type: e.currentTarget.value as "rotating" } })}
          >
            <option value="rotating">rotating</option>
            <option value="non-rotating">non-rotating</option>
          </select>
        </label>
        <label>
          absolute lifetime (seconds)
          <input
            name="token_lifetime"
            type="number"
            min={60}
            value={refresh.token_lifetime}
            onInput={(e) => change({ refresh_token: { ...refresh, token_lifetime: Number(e.currentTarget.value) } })}
          />
        </label>
        <label>
          idle lifetime (seconds)
          <input
            name="idle_token_lifetime"
            type="number"
            min={60}
            value={refresh.idle_token_lifetime}
            onInput={(e) => change({ refresh_token: { ...refresh, idle_token_lifetime: Number(e.currentTarget.value) } })}
          />
        </label>
        <button type="submit">Save</button>
        {saved && (
          <p class="notice" role="status">
            Saved.
          </p>
        )}
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
      </form>
    </section>
  );
}
