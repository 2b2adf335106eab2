// The dashboard: a sign-in page, then the pages of the hash routes (#/hooks, ...).
// Everything shown comes from the management API and is rendered as text.

import "./app.css";

import { render } from "preact";
import { useEffect, useState } from "preact/hooks";

import { ApiError, Session, SignedOut, currentSession, signIn, signOut } from "./api";
import { EditorPage } from "./editor";
import { HooksPage } from "./hooks";
import { ApisPage, ClientsPage, GrantsPage, UsersPage } from "./resources";

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const changed = () => setHash(location.hash);
    window.addEventListener("hashchange", changed);
    return () => window.removeEventListener("hashchange", changed);
  }, []);
  return hash;
}

function SignIn({ onSignedIn }: { onSignedIn: (session: Session) => void }) {
  const [clientId, setClientId] = useState("");
  const [secret, setSecret] = useState("");
  const [error, setError] = useState("");
  const submit = async (event: Event) => {
    event.preventDefault();
    setError("");
    try {
      onSignedIn(await signIn(clientId.trim(), secret));
    } catch (failure) {
      setError(failure instanceof ApiError ? failure.message : String(failure));
    }
  };
  return (
    <form class="sign-in" onSubmit={submit}>
      <h1>authhooks</h1>
      <label>
        Client ID
        <input name="client_id" value={clientId} onInput={(e) => setClientId(e.currentTarget.value)} autoComplete="username" />
      </label>
      <label>
        Client secret
        <input name="client_secret" type="password" value={secret} onInput={(e) => setSecret(e.currentTarget.value)} autoComplete="current-password" />
      </label>
      {error && <p class="error" role="alert">{error}</p>}
      <button type="submit">Sign in</button>
    </form>
  );
}

function Page({ hash, onSignedOut }: { hash: string; onSignedOut: () => void }) {
  if (hash.startsWith("#/hooks/")) {
    return <EditorPage hookId={decodeURIComponent(hash.slice("#/hooks/".length))} onSignedOut={onSignedOut} />;
  }
  if (hash === "#/clients") return <ClientsPage onSignedOut={onSignedOut} />;
  if (hash === "#/apis") return <ApisPage onSignedOut={onSignedOut} />;
  if (hash === "#/grants") return <GrantsPage onSignedOut={onSignedOut} />;
  if (hash === "#/users") return <UsersPage onSignedOut={onSignedOut} />;
  return <HooksPage onSignedOut={onSignedOut} />;
}

function App() {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [fatal, setFatal] = useState("");
  const hash = useHash();
  useEffect(() => {
    currentSession().then(setSession, (failure) => setFatal(String(failure)));
    // A page whose session ended goes back to sign-in; its hash (the page) is kept.
    const signedOut = (event: PromiseRejectionEvent) => {
      if (event.reason instanceof SignedOut) {
        event.preventDefault();
        setSession(null);
      }
    };
    window.addEventListener("unhandledrejection", signedOut);
    return () => window.removeEventListener("unhandledrejection", signedOut);
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
          <a href="#/clients">Clients</a>
          <a href="#/apis">APIs</a>
          <a href="#/grants">Grants</a>
          <a href="#/users">Users</a>
        </nav>
        <span class="who">{session.client_id}</span>
        <button onClick={() => signOut().then(() => setSession(null))}>Sign out</button>
      </header>
      <main>
        <Page hash={hash} onSignedOut={() => setSession(null)} />
      </main>
    </div>
  );
}

render(<App />, document.getElementById("app")!);
