// The dashboard's only ways out: its session routes, and the management API with
// short-lived tokens of the signed-in admin (docs/dashboard.md).

export type Session = {
  // Exactly one of these: the admin client, or the admin user, that signed in.
  client_id: string | null;
  admin: { id: string; email: string } | null;
  csrf_token: string;
  expires_at: string;
  scopes: string[];
};

export class SignedOut extends Error {}

export class ApiError extends Error {
  constructor(
    public status: number,
    message: string,
  ) {
    super(message);
  }
}

let session: Session | null = null;
let token: { value: string; until: number } | null = null;

async function json(response: Response): Promise<any> {
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

function failure(status: number, body: any): ApiError {
  const message =
    (body && (body.message || body.error_description || body.error)) || `HTTP ${status}`;
  return new ApiError(status, String(message));
}

export async function currentSession(): Promise<Session | null> {
  const response = await fetch("/dashboard/session", { credentials: "same-origin" });
  if (response.status === 401) return null;
  if (!response.ok) throw failure(response.status, await json(response));
  session = await json(response);
  return session;
}

export type Credentials = { email: string; password: string } | { client_id: string; client_secret: string };

export async function signIn(credentials: Credentials): Promise<Session> {
  const response = await fetch("/dashboard/session", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(credentials),
  });
  const body = await json(response);
  if (!response.ok) throw failure(response.status, body);
  session = body;
  token = null;
  return body;
}

export async function signOut(): Promise<void> {
  if (session) {
    await fetch("/dashboard/session", {
      method: "DELETE",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": session.csrf_token },
    });
  }
  session = null;
  token = null;
}

let minting: Promise<string> | null = null;

/** A management token: the current one, or one request for a new one shared by all callers. */
export async function bearer(): Promise<string> {
  if (token && token.until - 30_000 > Date.now()) return token.value;
  if (!minting) minting = mint().finally(() => (minting = null));
  return minting;
}

async function mint(): Promise<string> {
  if (!session) throw new SignedOut();
  const response = await fetch("/dashboard/session/token", {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-CSRF-Token": session.csrf_token },
  });
  if (response.status === 401) {
    session = null;
    throw new SignedOut();
  }
  const body = await json(response);
  if (!response.ok) throw failure(response.status, body);
  token = { value: body.access_token, until: Date.now() + body.expires_in * 1000 };
  return token.value;
}

/** ``method`` on /api/v2 + ``path``; the answer's JSON, or ApiError with the server's message. */
export async function api(method: string, path: string, body?: unknown): Promise<any> {
  const headers: Record<string, string> = { Authorization: `Bearer ${await bearer()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`/api/v2${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await json(response);
  if (response.status === 401) {
    token = null;
    throw new SignedOut();
  }
  if (!response.ok) throw failure(response.status, answer);
  return answer;
}
