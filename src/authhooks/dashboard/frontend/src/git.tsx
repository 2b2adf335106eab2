// The Git pages: the git sources (repositories whose pushes deploy hooks,
// docs/git.md), a form to connect one, and a source's page with its deployments.
// A webhook secret is shown once, in the answer that made it; credentials go in
// and never come out.

import { useEffect, useState } from "preact/hooks";

import { gitSources, problem } from "./api";
import type { DeploymentStatus, GitDeployment, GitSource, GitSourceCreate } from "./types";

const FINISHED: DeploymentStatus[] = ["succeeded", "failed"];
// How often a page with a deployment under way asks how it is going.
const REFRESH_MS = 1000;

export const shortCommit = (commit: string) => commit.slice(0, 12);

/** A commit, short, linked to its page when the repository's host has one. */
export function Commit({ commit, url }: { commit: string | null | undefined; url: string | null | undefined }) {
  if (!commit) return <span class="empty">—</span>;
  const text = <code title={commit}>{shortCommit(commit)}</code>;
  return url ? (
    <a class="commit" href={url} target="_blank" rel="noopener noreferrer">
      {text}
    </a>
  ) : (
    <span class="commit">{text}</span>
  );
}

function Status({ status }: { status: string }) {
  return <strong class={`deployment-status ${status}`}>{status}</strong>;
}

/** The webhook's URL and secret, shown this once, each with a copy button. */
function ShownOnce({ source, rotated }: { source: GitSource; rotated: boolean }) {
  const [copied, setCopied] = useState("");
  const copy = async (what: string, text: string) => {
    try {
      await navigator.clipboard.writeText(text);
      setCopied(`${what} copied`);
    } catch {
      setCopied(`The browser did not allow copying: select the ${what.toLowerCase()} and copy it.`);
    }
  };
  return (
    <div class="notice shown-once" role="status">
      <p>
        <strong>
          {rotated ? "A new webhook secret" : `Git source ${source.name} added`}. The secret is shown this once:
          set it on your git host's push webhook now.
        </strong>{" "}
        {rotated ? "The old secret is refused from now on." : "Rotate it to get a new one."}
      </p>
      <p>
        Webhook URL: <code class="webhook-url">{source.webhook_url}</code>{" "}
        <button type="button" data-copy="url" onClick={() => copy("URL", source.webhook_url)}>
          Copy
        </button>
      </p>
      <p>
        Secret: <code class="secret">{source.webhook_secret}</code>{" "}
        <button type="button" data-copy="secret" onClick={() => copy("Secret", source.webhook_secret ?? "")}>
          Copy
        </button>
      </p>
      {copied && <p class="copied">{copied}</p>}
    </div>
  );
}

type CredentialKind = "none" | "token" | "ssh_private_key";

/** An ssh:// URL or git's scp-like form (user@host:path): the server needs the host's keys. */
const overSsh = (repository: string) => /^ssh:\/\//.test(repository.trim()) || /^[^/:@\s]+@[^/:\s]+:/.test(repository.trim());

function AddSource({ onAdded }: { onAdded: (source: GitSource) => void }) {
  const [name, setName] = useState("");
  const [repository, setRepository] = useState("");
  const [branch, setBranch] = useState("main");
  const [path, setPath] = useState("");
  const [kind, setKind] = useState<CredentialKind>("none");
  const [credential, setCredential] = useState("");
  const [knownHosts, setKnownHosts] = useState("");
  const [poll, setPoll] = useState("");
  const [error, setError] = useState("");
  const submit = async (event: Event) => {
    event.preventDefault();
    setError("");
    const body: GitSourceCreate = {
      name: name.trim(),
      repository: repository.trim(),
      branch: branch.trim() || "main",
      path: path.trim(),
      credentials:
        kind === "token" ? { token: credential.trim() } : kind === "ssh_private_key" ? { ssh_private_key: credential } : null,
      ssh_known_hosts: overSsh(repository) && knownHosts.trim() ? knownHosts : null,
      poll_interval: poll.trim() ? Number(poll) : null,
    };
    try {
      const made = await gitSources.create(body);
      setName("");
      setRepository("");
      setBranch("main");
      setPath("");
      setKnownHosts("");
      setPoll("");
      onAdded(made);
    } catch (failure) {
      setError(problem(failure));
    } finally {
      setCredential(""); // write-only: never kept in the page once sent
    }
  };
  return (
    <form class="git-add" onSubmit={submit}>
      <h2>Connect a repository</h2>
      <label>
        Name <input name="source_name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
      </label>
      <label>
        Repository{" "}
        <input
          name="repository"
          placeholder="https://github.com/acme/identity-hooks.git"
          value={repository}
          onInput={(e) => setRepository(e.currentTarget.value)}
        />
      </label>
      <label>
        Branch <input name="branch" value={branch} onInput={(e) => setBranch(e.currentTarget.value)} />
      </label>
      <label>
        Folder holding hooks/{" "}
        <input name="path" placeholder="(the root)" value={path} onInput={(e) => setPath(e.currentTarget.value)} />
      </label>
      <label>
        Credentials{" "}
        <select
          name="credential_kind"
          value={kind}
          onChange={(e) => {
            setKind(e.currentTarget.value as CredentialKind);
            setCredential("");
          }}
        >
          <option value="none">none (a public repository)</option>
          <option value="token">an https token</option>
          <option value="ssh_private_key">an SSH deploy key</option>
        </select>
      </label>
      {kind === "token" && (
        <label>
          Token (write-only){" "}
          <input
            name="token"
            type="password"
            autoComplete="off"
            value={credential}
            onInput={(e) => setCredential(e.currentTarget.value)}
          />
        </label>
      )}
      {kind === "ssh_private_key" && (
        <label>
          SSH private key (write-only){" "}
          <textarea
            name="ssh_private_key"
            rows={4}
            autoComplete="off"
            spellcheck={false}
            value={credential}
            onInput={(e) => setCredential(e.currentTarget.value)}
          />
        </label>
      )}
      {overSsh(repository) && (
        <label>
          The host's keys, as in known_hosts (<code>ssh-keyscan HOST</code> prints them; check them against
          the host's published ones){" "}
          <textarea
            name="ssh_known_hosts"
            rows={3}
            spellcheck={false}
            value={knownHosts}
            onInput={(e) => setKnownHosts(e.currentTarget.value)}
          />
        </label>
      )}
      <label>
        Poll every (seconds, optional){" "}
        <input name="poll_interval" type="number" min={60} value={poll} onInput={(e) => setPoll(e.currentTarget.value)} />
      </label>
      <p class="hint">Credentials are stored sealed and are never shown again.</p>
      <button type="submit">Add source</button>
      {error && <p class="error" role="alert">{error}</p>}
    </form>
  );
}

export function GitPage() {
  const [sources, setSources] = useState<GitSource[] | null>(null);
  const [last, setLast] = useState<Record<string, GitDeployment | null>>({});
  const [added, setAdded] = useState<GitSource | null>(null);
  const [error, setError] = useState("");
  const load = async () => {
    try {
      const listed = await gitSources.list();
      const newest = await Promise.all(listed.map((each) => gitSources.deployments(each.id, 1)));
      setLast(Object.fromEntries(listed.map((each, at) => [each.id, newest[at][0] ?? null])));
      setSources(listed);
    } catch (failure) {
      setError(problem(failure));
    }
  };
  useEffect(() => {
    load();
  }, []);
  return (
    <section class="git">
      <h1>Git</h1>
      <p class="hint">Repositories whose pushes deploy hooks. Their hooks are read-only elsewhere.</p>
      {added && <ShownOnce source={added} rotated={false} />}
      {error && <p class="error" role="alert">{error}</p>}
      {sources && sources.length === 0 && <p class="empty">No git sources yet.</p>}
      {sources && sources.length > 0 && (
        <table class="list git-sources">
          <thead>
            <tr>
              <th>Name</th>
              <th>Repository</th>
              <th>Branch</th>
              <th>Hooks</th>
              <th>Last deployment</th>
            </tr>
          </thead>
          <tbody>
            {sources.map((each) => {
              const newest = last[each.id];
              return (
                <tr key={each.id} data-source={each.name}>
                  <td>
                    <a href={`#/git/${encodeURIComponent(each.id)}`}>{each.name}</a>
                  </td>
                  <td>
                    <code>{each.repository}</code>
                  </td>
                  <td>{each.branch}</td>
                  <td>{each.hooks.length}</td>
                  <td class="last-deployment">
                    {newest ? (
                      <>
                        <Status status={newest.status} /> <Commit commit={newest.commit} url={newest.commit_url} />
                      </>
                    ) : (
                      <span class="empty">none yet</span>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <AddSource
        onAdded={(made) => {
          setAdded(made);
          load();
        }}
      />
    </section>
  );
}

/** A deployment; a changed hook links to its page (by its id, or by the name of a
 * hook the source keeps: a created hook's id is not in the record). */
function Deployment({ deployment, hookIds }: { deployment: GitDeployment; hookIds: Record<string, string> }) {
  const message = (deployment.message ?? "").split("\n")[0];
  return (
    <li class={`deployment ${deployment.status}`} data-deployment={deployment.id} data-status={deployment.status}>
      <p>
        <Status status={deployment.status} /> <Commit commit={deployment.commit} url={deployment.commit_url} />{" "}
        {message && <span class="message">{message}</span>}
        {deployment.author && <span class="author"> — {deployment.author}</span>}
      </p>
      <p class="when">
        {deployment.trigger}, {deployment.created_at}
        {deployment.finished_at && `, finished ${deployment.finished_at}`}
      </p>
      {deployment.error && <pre class="error deployment-error">{deployment.error}</pre>}
      {deployment.changes.length > 0 && (
        <ul class="changes">
          {deployment.changes.map((change) => {
            const hookId = change.action === "deleted" ? null : (change.hook_id ?? hookIds[change.hook] ?? null);
            return (
              <li key={`${change.action}-${change.hook}`}>
                {change.action}{" "}
                {hookId ? <a href={`#/hooks/${encodeURIComponent(hookId)}`}>{change.hook}</a> : change.hook}
                {change.details && change.details.length > 0 && `: ${change.details.join("; ")}`}
              </li>
            );
          })}
        </ul>
      )}
      {FINISHED.includes(deployment.status) && !deployment.error && deployment.changes.length === 0 && (
        <p class="empty">no changes</p>
      )}
    </li>
  );
}

export function GitSourcePage({ sourceId }: { sourceId: string }) {
  const [source, setSource] = useState<GitSource | null>(null);
  const [deployments, setDeployments] = useState<GitDeployment[]>([]);
  const [rotated, setRotated] = useState<GitSource | null>(null);
  const [status, setStatus] = useState("");
  const [error, setError] = useState("");
  const failed = (failure: unknown) => setError(problem(failure));
  const load = async () => {
    const [found, recent] = await Promise.all([gitSources.get(sourceId), gitSources.deployments(sourceId, 20)]);
    setSource(found);
    setDeployments(recent);
  };
  useEffect(() => {
    load().catch(failed);
  }, [sourceId]);
  // While a deployment is queued or running, ask again until it is done.
  const underWay = deployments.some((each) => !FINISHED.includes(each.status));
  useEffect(() => {
    if (!underWay) return;
    const timer = window.setInterval(() => load().catch(failed), REFRESH_MS);
    return () => window.clearInterval(timer);
  }, [underWay, sourceId]);

  const act = async (action: () => Promise<unknown>, done: string) => {
    setError("");
    setStatus("");
    try {
      await action();
      await load();
      setStatus(done);
    } catch (failure) {
      failed(failure);
    }
  };
  const sync = () => act(() => gitSources.sync(sourceId), "Sync queued");
  const rotate = () => {
    if (!confirm("Make a new webhook secret? The old one is refused from then on.")) return;
    act(async () => setRotated(await gitSources.rotateSecret(sourceId)), "");
  };
  const detach = () => {
    if (!confirm(`Detach ${source?.name}? Its hooks become hand-made hooks, editable here; the source stays.`)) return;
    act(() => gitSources.detach(sourceId), "Detached: its hooks are hand-made now");
  };
  const remove = async () => {
    if (!confirm(`Delete the git source ${source?.name} and its deployments' record? Its hooks stay, editable again.`))
      return;
    setError("");
    try {
      await gitSources.remove(sourceId);
      location.hash = "#/git";
    } catch (failure) {
      failed(failure);
    }
  };

  return (
    <section class="git-source">
      <p>
        <a href="#/git">Git</a> / {source?.name ?? "…"}
      </p>
      <h1>{source?.name ?? "Loading…"}</h1>
      {rotated && <ShownOnce source={rotated} rotated={true} />}
      {source && (
        <table class="list source-details">
          <tbody>
            <tr>
              <th>Repository</th>
              <td>
                <code>{source.repository}</code>
              </td>
            </tr>
            <tr>
              <th>Branch</th>
              <td>{source.branch}</td>
            </tr>
            <tr>
              <th>Folder</th>
              <td>{source.path || "(the root)"}</td>
            </tr>
            <tr>
              <th>Webhook URL</th>
              <td>
                <code class="webhook-url">{source.webhook_url}</code>
              </td>
            </tr>
            <tr>
              <th>Credentials</th>
              <td>{source.credentials ? `${source.credentials.kind} (write-only)` : "none"}</td>
            </tr>
            <tr>
              <th>Polling</th>
              <td>{source.poll_interval ? `every ${source.poll_interval} s` : "no (webhooks only)"}</td>
            </tr>
            <tr>
              <th>Hooks</th>
              <td class="source-hooks">
                {source.hooks.length === 0
                  ? "none"
                  : source.hooks.map((hook, at) => (
                      <span key={hook.id}>
                        {at > 0 && ", "}
                        <a href={`#/hooks/${encodeURIComponent(hook.id)}`}>{hook.name}</a>
                      </span>
                    ))}
              </td>
            </tr>
          </tbody>
        </table>
      )}
      <div class="actions">
        <button onClick={sync}>Sync now</button>
        <button onClick={rotate}>Rotate secret</button>
        <button onClick={detach}>Detach</button>
        <button class="danger" onClick={remove}>
          Delete
        </button>
        <span class="status" role="status">
          {status}
        </span>
      </div>
      {error && <p class="error" role="alert">{error}</p>}
      <h2>Deployments</h2>
      {deployments.length === 0 ? (
        <p class="empty">No deployments yet: push to {source?.branch ?? "the branch"}, or sync now.</p>
      ) : (
        <ul class="deployments">
          {deployments.map((deployment) => (
            <Deployment
              key={deployment.id}
              deployment={deployment}
              hookIds={Object.fromEntries((source?.hooks ?? []).map((hook) => [hook.name, hook.id]))}
            />
          ))}
        </ul>
      )}
    </section>
  );
}
