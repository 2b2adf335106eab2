// The dashboard: a sign-in page, then the pages of the hash routes (#/hooks, ...).
// Everything shown comes from the management API and is rendered as text.

import "./app.css";

import { render } from "preact";
import { useEffect, useState } from "preact/hooks";

import { Credentials, Session, currentSession, onSignedOut, problem, signIn, signOut } from "./api";
import { EditorPage } from "./editor";
import { GitPage, GitSourcePage } from "./git";
import { HooksPage } from "./hooks";
import { PointPage, PointsPage } from "./points";
import { ClientPage } from "./client";
import { AdminsPage, ApisPage, ClientsPage, GrantsPage, UsersPage } from "./resources";

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const changed = () => setHash(location.hash);
    window.addEventListener("hashchange", changed);
    return () => window.removeEventListener("hashchange", changed);
  }, []);
  return hash;
}

// An admin user signs in with an email and a password; an admin client (the
// bootstrap admin, say) with its id and secret. The browser remembers which.
const SIGN_IN_WITH = "authhooks.signInWith";

function SignIn({ onSignedIn }: { onSignedIn: (session: Session) => void }) {
  const [asClient, setAsClient] = useState(localStorage.getItem(SIGN_IN_WITH) === "client");
  const [login, setLogin] = useState("");
  const [secret, setSecret] = useState("");
  const [error, setError] = useState("");
  const submit = async (event: Event) => {
    event.preventDefault();
    setError("");
    const credentials: Credentials = asClient
      ? { client_id: login.trim(), client_secret: secret }
      : { email: login.trim(), password: secret };
    try {
      onSignedIn(await signIn(credentials));
    } catch (failure) {
      setError(problem(failure));
    }
  };
  const switchTo = (client: boolean) => {
    localStorage.setItem(SIGN_IN_WITH, client ? "client" : "email");
    setAsClient(client);
    setLogin("");
    setSecret("");
    setError("");
  };
  return (
    <form class="sign-in" onSubmit={submit}>
      <h1>authhooks</h1>
      <label>
        {asClient ? "Client ID" : "Email"}
        <input
          name={asClient ? "client_id" : "email"}
          type="text"
          value={login}
          onInput={(e) => setLogin(e.currentTarget.value)}
          autoComplete="username"
        />
      </label>
      <label>
        {asClient ? "Client secret" : "Password"}
        <input
          name={asClient ? "client_secret" : "password"}
          type="password"
          value={secret}
          onInput={(e) => setSecret(e.currentTarget.value)}
          autoComplete="current-password"
        />
      </label>
      {error && <p class="error" role="alert">{error}</p>}
      <button type="submit">Sign in</button>
      <button type="button" class="link switch" onClick={() => switchTo(!asClient)}>
        {asClient ? "Sign in with an email instead" : "Sign in with a client ID and secret"}
      </button>
    </form>
  );
}

function Page({ hash }: { hash: string }) {
  if (hash.startsWith("#/hooks/")) {
    const hookId = decodeURIComponent(hash.slice("#/hooks/".length));
    // Keyed by hook: another hook is another page, with an editor of its own.
    return <EditorPage key={hookId} hookId={hookId} />;
  }
  if (hash.startsWith("#/clients/")) {
    const clientId = decodeURIComponent(hash.slice("#/clients/".length));
    return <ClientPage key={clientId} clientId={clientId} />;
  }
  if (hash.startsWith("#/points/")) {
    const pointId = decodeURIComponent(hash.slice("#/points/".length));
    return <PointPage key={pointId} pointId={pointId} />;
  }
  if (hash.startsWith("#/git/")) {
    const sourceId = decodeURIComponent(hash.slice("#/git/".length));
    return <GitSourcePage key={sourceId} sourceId={sourceId} />;
  }
  if (hash === "#/points") return <PointsPage />;
  if (hash === "#/git") return <GitPage />;
  if (hash === "#/clients") return <ClientsPage />;
  if (hash === "#/apis") return <ApisPage />;
  if (hash === "#/grants") return <GrantsPage />;
  if (hash === "#/users") return <UsersPage />;
  if (hash === "#/admins") return <AdminsPage />;
  return <HooksPage />;
}

function App() {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [fatal, setFatal] = useState("");
  const hash = useHash();
  useEffect(() => {
    // However the session ends, the page goes back to sign-in; its hash (the page) is kept.
    onSignedOut(() => setSession(null));
    currentSession().then(setSession, (failure) => setFatal(String(failure)));
  }, []);
  if (fatal) return <p class="error">{fatal}</p>;
  if (session === undefined) return <p>Loading…</p>;
  if (session === null) return <SignIn onSignedIn={setSession} />;
  return (
    <div>
      <header>
        <strong>authhooks</strong>
        <nav>
          <a href="#/hooks">Hooks</a>
          {(session.scopes.includes("read:points") || session.scopes.includes("read:hooks")) && (
            <a href="#/points">Points</a>
          )}
          {session.scopes.includes("read:git_sources") && <a href="#/git">Git</a>}
          <a href="#/clients">Clients</a>
          <a href="#/apis">APIs</a>
          <a href="#/grants">Grants</a>
          <a href="#/users">Users</a>
          {session.scopes.includes("read:admins") && <a href="#/admins">Admins</a>}
        </nav>
        <span class="who">{session.admin ? session.admin.email : session.client_id}</span>
        <button onClick={() => signOut()}>Sign out</button>
      </header>
      <main>
        <Page hash={hash} />
      </main>
    </div>
  );
}

render(<App />, document.getElementById("app")!);
