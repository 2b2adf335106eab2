// The setup pages: clients, APIs (resource servers), client grants, users and admins —
// enough to prepare a demo without the CLI. Each lists what the API answers and
// creates through it; the server's errors are shown as they come.

import { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";

import { admins, clientGrants, clients, problem, resourceServers, users } from "./api";
import type { Admin } from "./types";

/** The list ``list`` answers (asked again when ``key`` changes), and ``act`` to change
 * something then list again; the server's errors as text. */
function useList<T>(list: () => Promise<T[]>, key = "") {
  const [items, setItems] = useState<T[] | null>(null);
  const [error, setError] = useState("");
  const failed = (failure: unknown) => setError(problem(failure));
  const load = () => list().then(setItems, failed);
  useEffect(() => {
    load();
  }, [key]);
  const act = async <A,>(action: () => Promise<A>): Promise<A | null> => {
    setError("");
    try {
      const answer = await action();
      await load();
      return answer;
    } catch (failure) {
      failed(failure);
      return null;
    }
  };
  return { items, error, act };
}

function Table({ head, rows }: { head: string[]; rows: ComponentChildren[][] }) {
  return (
    <table class="list">
      <thead>
        <tr>{head.map((cell) => <th key={cell}>{cell}</th>)}</tr>
      </thead>
      <tbody>
        {rows.map((row, index) => (
          <tr key={index}>{row.map((cell, at) => <td key={at}>{cell}</td>)}</tr>
        ))}
      </tbody>
    </table>
  );
}

const words = (text: string) => text.split(/[\s,]+/).filter(Boolean);

export function ClientsPage() {
  const { items, error, act } = useList(clients.list);
  const [name, setName] = useState("");
  const [appType, setAppType] = useState("non_interactive");
  const [secret, setSecret] = useState<{ id: string; secret: string } | null>(null);
  const create = async (event: Event) => {
    event.preventDefault();
    const made = await act(() => clients.create({ name, app_type: appType }));
    if (made) {
      setSecret({ id: made.client_id, secret: made.client_secret });
      setName("");
    }
  };
  return (
    <section>
      <h1>Clients</h1>
      <form class="inline" onSubmit={create}>
        <input name="client_name" placeholder="name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        <select aria-label="app type" value={appType} onChange={(e) => setAppType(e.currentTarget.value)}>
          {["non_interactive", "regular_web", "spa", "native"].map((type) => (
            <option key={type} value={type}>
              {type}
            </option>
          ))}
        </select>
        <button type="submit">Create client</button>
      </form>
      {secret && (
        <p class="notice" role="status">
          Client <code>{secret.id}</code> created. Its secret, shown this once: <code class="secret">{secret.secret}</code>
        </p>
      )}
      {error && <p class="error" role="alert">{error}</p>}
      {items && (
        <Table
          head={["Name", "Client ID", "Type", "Grant types"]}
          rows={items.map((client) => [
            <a href={`#/clients/${encodeURIComponent(client.client_id)}`}>{client.name}</a>,
            <code>{client.client_id}</code>,
            client.app_type,
            client.grant_types.join(", "),
          ])}
        />
      )}
    </section>
  );
}

export function ApisPage() {
  const { items, error, act } = useList(resourceServers.list);
  const [name, setName] = useState("");
  const [identifier, setIdentifier] = useState("");
  const [scopes, setScopes] = useState("");
  const create = async (event: Event) => {
    event.preventDefault();
    const made = await act(() =>
      resourceServers.create({ name, identifier, scopes: words(scopes).map((value) => ({ value })) }),
    );
    if (made) {
      setName("");
      setIdentifier("");
      setScopes("");
    }
  };
  return (
    <section>
      <h1>APIs</h1>
      <form class="inline" onSubmit={create}>
        <input name="api_name" placeholder="name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        <input name="identifier" placeholder="https://api.example.com/" value={identifier} onInput={(e) => setIdentifier(e.currentTarget.value)} />
        <input name="scopes" placeholder="read:things write:things" value={scopes} onInput={(e) => setScopes(e.currentTarget.value)} />
        <button type="submit">Create API</button>
      </form>
      {error && <p class="error" role="alert">{error}</p>}
      {items && (
        <Table
          head={["Name", "Identifier (audience)", "Scopes"]}
          rows={items.map((server) => [server.name, <code>{server.identifier}</code>, server.scopes.map((scope) => scope.value).join(" ")])}
        />
      )}
    </section>
  );
}

export function GrantsPage() {
  const { items, error, act } = useList(clientGrants.list);
  const [clientId, setClientId] = useState("");
  const [audience, setAudience] = useState("");
  const [scopes, setScopes] = useState("");
  const create = async (event: Event) => {
    event.preventDefault();
    const made = await act(() => clientGrants.create({ client_id: clientId.trim(), audience: audience.trim(), scope: words(scopes) }));
    if (made) setScopes("");
  };
  return (
    <section>
      <h1>Client grants</h1>
      <form class="inline" onSubmit={create}>
        <input name="grant_client_id" placeholder="client id" value={clientId} onInput={(e) => setClientId(e.currentTarget.value)} />
        <input name="grant_audience" placeholder="API identifier" value={audience} onInput={(e) => setAudience(e.currentTarget.value)} />
        <input name="grant_scopes" placeholder="scopes" value={scopes} onInput={(e) => setScopes(e.currentTarget.value)} />
        <button type="submit">Grant</button>
      </form>
      {error && <p class="error" role="alert">{error}</p>}
      {items && (
        <Table
          head={["Client ID", "API", "Scopes"]}
          rows={items.map((grant) => [<code>{grant.client_id}</code>, <code>{grant.audience}</code>, grant.scope.join(" ")])}
        />
      )}
    </section>
  );
}

export function UsersPage() {
  const [query, setQuery] = useState("");
  const [search, setSearch] = useState("");
  const { items, error } = useList(() => users.search(search), search);
  return (
    <section>
      <h1>Users</h1>
      <form
        class="inline"
        onSubmit={(event) => {
          event.preventDefault();
          setSearch(query.trim());
        }}
      >
        <input name="user_search" placeholder="part of an email or username" value={query} onInput={(e) => setQuery(e.currentTarget.value)} />
        <button type="submit">Search</button>
      </form>
      {error && <p class="error" role="alert">{error}</p>}
      {items && (
        <Table
          head={["Email", "User ID", "Created", "Metadata", "Blocked"]}
          rows={items.map((user) => [
            user.email,
            <code>{user.user_id}</code>,
            user.created_at,
            JSON.stringify(user.user_metadata),
            user.blocked ? "yes" : "",
          ])}
        />
      )}
    </section>
  );
}

export function AdminsPage() {
  const { items, error, act } = useList(admins.list);
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [scopes, setScopes] = useState("");
  const create = async (event: Event) => {
    event.preventDefault();
    const made = await act(() => admins.create({ email: email.trim(), password, scopes: words(scopes) }));
    if (made) {
      setEmail("");
      setPassword("");
      setScopes("");
    }
  };
  const remove = (admin: Admin) => {
    if (confirm(`Delete the admin ${admin.email}?`)) act(() => admins.remove(admin.id));
  };
  return (
    <section>
      <h1>Admins</h1>
      <form class="inline" onSubmit={create}>
        <input name="admin_email" type="email" placeholder="email" value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        <input name="admin_password" type="password" placeholder="password (12+ characters)" autoComplete="new-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        <input name="admin_scopes" placeholder="read:hooks update:hooks ..." value={scopes} onInput={(e) => setScopes(e.currentTarget.value)} />
        <button type="submit">Add admin</button>
      </form>
      {error && <p class="error" role="alert">{error}</p>}
      {items && (
        <Table
          head={["Email", "Scopes", "Last sign-in", ""]}
          rows={items.map((admin) => [
            admin.email,
            admin.scopes.join(" "),
            admin.last_login || "never",
            <button class="link" onClick={() => remove(admin)}>
              Delete
            </button>,
          ])}
        />
      )}
    </section>
  );
}
