// A hook's versions: which is deployed, what each changed against the deployed one,
// and a button to deploy any of them (roll back, or forward).

import { diffLines } from "diff";
import { useEffect, useState } from "preact/hooks";

import { hooks, problem } from "./api";
import { Commit } from "./git";
import type { Hook, Version } from "./types";

export function VersionsPanel({
  hookId,
  deployed,
  onDeployed,
  managed = false,
}: {
  hookId: string;
  deployed: number;
  onDeployed: (hook: Hook) => void;
  /** Kept by a git source: deploying a version would be refused (409). */
  managed?: boolean;
}) {
  const [versions, setVersions] = useState<Version[]>([]);
  const [shown, setShown] = useState<{ number: number; parts: { value: string; added?: boolean; removed?: boolean }[] } | null>(null);
  const [error, setError] = useState("");
  const failed = (failure: unknown) => setError(problem(failure));
  useEffect(() => {
    hooks.versions(hookId).then(setVersions, failed);
  }, [hookId, deployed]);

  const compare = async (number: number) => {
    setError("");
    try {
      const [theirs, current] = await Promise.all([
        hooks.version(hookId, number),
        hooks.version(hookId, deployed),
      ]);
      setShown({ number, parts: diffLines(current.script ?? "", theirs.script ?? "") });
    } catch (failure) {
      failed(failure);
    }
  };
  const deploy = async (number: number) => {
    setError("");
    try {
      const hook = await hooks.deploy(hookId, number);
      setShown(null);
      onDeployed(hook);
    } catch (failure) {
      failed(failure);
    }
  };

  return (
    <section class="versions">
      <h2>Versions</h2>
      <table>
        <tbody>
          {versions.map((version) => (
            <tr key={version.number} data-version={version.number}>
              <td>v{version.number}</td>
              <td>{version.created_at}</td>
              <td>{version.author}</td>
              <td class="version-commit">{version.commit && <Commit commit={version.commit} url={version.commit_url} />}</td>
              <td>
                {version.deployed ? (
                  <strong>deployed</strong>
                ) : (
                  <>
                    <button class="link" onClick={() => compare(version.number)}>
                      Diff
                    </button>{" "}
                    {!managed && (
                      <button class="link" onClick={() => deploy(version.number)}>
                        Deploy
                      </button>
                    )}
                  </>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {error && <p class="error" role="alert">{error}</p>}
      {shown && (
        <pre class="diff" aria-label={`v${deployed} to v${shown.number}`}>
          {shown.parts.flatMap((part, index) =>
            part.value
              .replace(/\n$/, "")
              .split("\n")
              .map((line, at) => (
                <div key={`${index}-${at}`} class={part.added ? "added" : part.removed ? "removed" : ""}>
                  {(part.added ? "+ " : part.removed ? "- " : "  ") + line}
                </div>
              )),
          )}
        </pre>
      )}
    </section>
  );
}
