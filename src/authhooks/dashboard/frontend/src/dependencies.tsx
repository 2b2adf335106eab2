// A hook's packages beside its editor: declared, resolved, added and removed. Each
// change is a new version, deployed once the server has installed its packages.

import { useState } from "preact/hooks";

import { hooks, problem } from "./api";
import type { Hook } from "./types";

export function DependenciesPanel({
  hook,
  onSaved,
  readOnly = false,
}: {
  hook: Hook;
  onSaved: (saved: Hook) => void;
  /** Kept by a git source: its dependencies come from the repository. */
  readOnly?: boolean;
}) {
  const [name, setName] = useState("");
  const [version, setVersion] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const declared = hook.dependencies;
  const separator = hook.runtime === "node" ? "@" : "==";

  const change = async (next: Record<string, string>) => {
    setError("");
    setBusy(true);
    try {
      onSaved(await hooks.update(hook.id, { dependencies: next }));
      return true;
    } catch (failure) {
      setError(problem(failure));
      return false;
    } finally {
      setBusy(false);
    }
  };
  const add = async (event: Event) => {
    event.preventDefault();
    if (await change({ ...declared, [name.trim()]: version.trim() })) {
      setName("");
      setVersion("");
    }
  };
  const remove = (package_: string) => {
    const { [package_]: _, ...rest } = declared;
    return change(rest);
  };
  const transitive = hook.resolved.filter((found) => !(found.name in declared));

  return (
    <aside class="secrets dependencies">
      <h2>Dependencies</h2>
      {Object.keys(declared).length === 0 ? (
        <p class="empty">No packages.</p>
      ) : (
        <ul>
          {Object.entries(declared).map(([package_, exact]) => (
            <li key={package_} data-dependency={package_}>
              <code>
                {package_}
                {separator}
                {exact}
              </code>{" "}
              {!readOnly && (
                <button class="link" disabled={busy} onClick={() => remove(package_)}>
                  Remove
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      {transitive.length > 0 && (
        <p class="resolved" title={transitive.map((found) => `${found.name} ${found.version}`).join("\n")}>
          and {transitive.length} of theirs: {transitive.map((found) => found.name).join(", ")}
        </p>
      )}
      {!readOnly && <form onSubmit={add}>
        <input name="dependency_name" required placeholder={hook.runtime === "node" ? "lodash" : "python-slugify"} value={name} onInput={(e) => setName(e.currentTarget.value)} />
        <input name="dependency_version" required placeholder="exact version" value={version} onInput={(e) => setVersion(e.currentTarget.value)} />
        <button type="submit" disabled={busy}>
          {busy ? "Installing…" : "Add"}
        </button>
      </form>}
      {error && <p class="error" role="alert">{error}</p>}
    </aside>
  );
}
