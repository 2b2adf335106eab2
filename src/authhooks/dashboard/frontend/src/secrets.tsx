// A hook's secrets beside its editor: names listed, values write-only.

import { useEffect, useState } from "preact/hooks";

import { hooks, problem } from "./api";

export function SecretsPanel({
  hookId,
  onNames,
}: {
  hookId: string;
  onNames: (names: string[]) => void;
}) {
  const [names, setNames] = useState<string[]>([]);
  const [name, setName] = useState("");
  const [value, setValue] = useState("");
  const [error, setError] = useState("");

  const failed = (failure: unknown) => setError(problem(failure));
  const load = async () => {
    const found = Object.keys(await hooks.secrets(hookId)).sort();
    setNames(found);
    onNames(found);
  };
  useEffect(() => {
    load().catch(failed);
  }, [hookId]);

  const save = async (event: Event) => {
    event.preventDefault();
    setError("");
    try {
      // Replace an existing value, or add a new secret.
      await hooks.setSecrets(hookId, { [name]: value }, names.includes(name));
      setName("");
      setValue(""); // never kept, never shown again
      await load();
    } catch (failure) {
      failed(failure);
    }
  };
  const remove = async (secret: string) => {
    if (!confirm(`Delete the secret ${secret}?`)) return;
    setError("");
    try {
      await hooks.deleteSecrets(hookId, [secret]);
      await load();
    } catch (failure) {
      failed(failure);
    }
  };

  return (
    <aside class="secrets">
      <h2>Secrets</h2>
      {names.length === 0 ? (
        <p class="empty">No secrets.</p>
      ) : (
        <ul>
          {names.map((secret) => (
            <li key={secret} data-secret={secret}>
              <code>{secret}</code> <span class="hidden-value">••••••</span>{" "}
              <button class="link" onClick={() => remove(secret)}>
                Delete
              </button>
            </li>
          ))}
        </ul>
      )}
      <form onSubmit={save}>
        <input name="secret_name" placeholder="NAME" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        <input
          name="secret_value"
          type="password"
          placeholder="value"
          autoComplete="off"
          value={value}
          onInput={(e) => setValue(e.currentTarget.value)}
        />
        <button type="submit">Set</button>
      </form>
      {error && <p class="error" role="alert">{error}</p>}
    </aside>
  );
}
