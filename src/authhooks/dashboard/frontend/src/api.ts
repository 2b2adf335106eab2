// The dashboard's only ways out: its session routes, and the management API with
// short-lived tokens of the signed-in admin (docs/dashboard.md). Every call the
// pages make is a typed function here; the answers' shapes are in types.ts.

import type {
  Admin,
  ChangedPoint,
  Client,
  ClientGrant,
  ClientWithSecret,
  ErrorBody,
  GitDeployment,
  GitSource,
  GitSourceCreate,
  Hook,
  HookCreate,
  HookUpdate,
  InvocationPage,
  Point,
  PointCreate,
  PointUpdate,
  ResourceServer,
  RunnerReport,
  RunnerRequest,
  ScheduleStatus,
  SecretNames,
  Session,
  TokenAnswer,
  User,
  Version,
} from "./types";

export type { Session } from "./types";

/** The session has ended: the app is back at sign-in, so there is nothing to show. */
export class SignedOut extends Error {}

export class ApiError extends Error {
  constructor(
    public status: number,
    message: string,
  ) {
    super(message);
  }
}

/** What a page shows for a failed call: the server's message, or nothing once the
 * session has ended (the app has gone back to sign-in). */
export function problem(failure: unknown): string {
  if (failure instanceof SignedOut) return "";
  return failure instanceof ApiError ? failure.message : String(failure);
}

let session: Session | null = null;
let token: { value: string; until: number } | null = null;
let minting: Promise<string> | null = null;
let pointsCache: Promise<Point[]> | null = null;
let whenSignedOut: () => void = () => {};

/** Whether the signed-in admin may do what ``scope`` allows: pages offer only that. */
export function holds(scope: string): boolean {
  return session?.scopes.includes(scope) ?? false;
}

/** ``listener`` runs whenever the session ends, however it ended. */
export function onSignedOut(listener: () => void): void {
  whenSignedOut = listener;
}

/** The one way a session ends in the page: the sign-out button, a 401 from the API,
 * the log stream or the token route (an expired, revoked or deleted session). */
function ended(): SignedOut {
  session = null;
  token = null;
  pointsCache = null;
  whenSignedOut();
  return new SignedOut();
}

async function json(response: Response): Promise<unknown> {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    if (response.ok) throw new ApiError(response.status, "the server's answer is not JSON");
    return null; // an error page of a proxy, say: the status tells
  }
}

function failure(status: number, body: unknown): ApiError {
  const error = (body ?? {}) as ErrorBody;
  const message = error.message || error.error_description || error.error || `HTTP ${status}`;
  return new ApiError(status, String(message));
}

export async function currentSession(): Promise<Session | null> {
  const response = await fetch("/dashboard/session", { credentials: "same-origin" });
  if (response.status === 401) return null;
  const body = await json(response);
  if (!response.ok) throw failure(response.status, body);
  session = body as Session;
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
  session = body as Session;
  token = null;
  return session;
}

export async function signOut(): Promise<void> {
  try {
    if (session) {
      await fetch("/dashboard/session", {
        method: "DELETE",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": session.csrf_token },
      });
    }
  } catch {
    // Unreachable server: the page signs out all the same; the session ends when idle.
  }
  ended();
}

/** A management token: the current one, or one request for a new one shared by all callers. */
async function bearer(): Promise<string> {
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
  if (response.status === 401) throw ended();
  const body = await json(response);
  if (!response.ok) throw failure(response.status, body);
  const answer = body as TokenAnswer;
  token = { value: answer.access_token, until: Date.now() + answer.expires_in * 1000 };
  return token.value;
}

/** ``method`` on /api/v2 + ``path``: the answer's JSON, as the route's type says; or
 * ApiError with the server's message. */
async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Authorization: `Bearer ${await bearer()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`/api/v2${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await json(response);
  if (response.status === 401) throw ended();
  if (!response.ok) throw failure(response.status, answer);
  return answer as T;
}

/** GET /api/v2/logs/stream for a hook, as Server-Sent Events: the open response. */
export async function logStream(hookId: string, lastEventId: string | null, signal: AbortSignal): Promise<Response> {
  const headers: Record<string, string> = { Authorization: `Bearer ${await bearer()}` };
  if (lastEventId !== null) headers["Last-Event-ID"] = lastEventId;
  const response = await fetch(`/api/v2/logs/stream?hook_id=${encodeURIComponent(hookId)}`, { headers, signal });
  if (response.status === 401) throw ended();
  return response;
}

const at = (id: string) => `/hooks/${encodeURIComponent(id)}`;

/** Every item of a list, page by page: a list is never cut short at a page's end. */
async function every<T>(path: string): Promise<T[]> {
  const found: T[] = [];
  const joiner = path.includes("?") ? "&" : "?";
  for (let page = 0; ; page++) {
    const batch = await call<T[]>("GET", `${path}${joiner}per_page=100&page=${page}`);
    found.push(...batch);
    if (batch.length < 100) return found;
  }
}

/** Every point, asked for once per sign-in: they change only with the server's code,
 * or when a point is declared (``refresh`` asks again). */
export function points(refresh = false): Promise<Point[]> {
  if (!pointsCache || refresh) {
    const asked = every<Point>("/points");
    pointsCache = asked;
    asked.catch(() => {
      if (pointsCache === asked) pointsCache = null; // ask again next time
    });
  }
  return pointsCache;
}

/** A point by id, from the list; asked for again when the list does not have it yet. */
export async function point(id: string): Promise<Point> {
  const found = (await points()).find((each) => each.id === id);
  if (found) return found;
  const again = (await points(true)).find((each) => each.id === id);
  if (again) return again;
  return call<Point>("GET", `/points/${encodeURIComponent(id)}`); // its 404, with the server's message
}

const pointAt = (id: string) => `/points/${encodeURIComponent(id)}`;

/** A point as the server has it now, and declaring, changing and deleting points;
 * the list is asked for again after each change, so that every page (the hooks'
 * point chooser, the editor's hints and sample event) sees it. */
export const pointsApi = {
  get: (id: string) => call<Point>("GET", pointAt(id)),
  create: (body: PointCreate) => changing(call<Point>("POST", "/points", body)),
  update: (id: string, body: PointUpdate) => changing(call<ChangedPoint>("PATCH", pointAt(id), body)),
  /** ``force`` deletes the point's hooks with it (and needs delete:hooks too). */
  remove: (id: string, force: boolean) => changing(call<null>("DELETE", `${pointAt(id)}${force ? "?force=true" : ""}`)),
};

async function changing<T>(done: Promise<T>): Promise<T> {
  const answer = await done;
  await points(true).catch(() => {}); // a page that reads the list reports its own failure
  return answer;
}

export const hooks = {
  all: () => every<Hook>("/hooks"),
  /** Every hook's point, for counting them (the code and the rest left out). */
  points: () => every<Pick<Hook, "id" | "triggerId">>("/hooks?fields=id,triggerId"),
  /** A point's hooks. */
  onPoint: (pointId: string) => every<Hook>(`/hooks?triggerId=${encodeURIComponent(pointId)}`),
  get: (id: string) => call<Hook>("GET", at(id)),
  create: (body: HookCreate) => call<Hook>("POST", "/hooks", body),
  update: (id: string, body: HookUpdate) => call<Hook>("PATCH", at(id), body),
  remove: (id: string) => call<null>("DELETE", at(id)),
  run: (id: string, body: RunnerRequest) => call<RunnerReport>("POST", `${at(id)}/test`, body),
  versions: (id: string) => call<Version[]>("GET", `${at(id)}/versions`),
  version: (id: string, number: number) => call<Version>("GET", `${at(id)}/versions/${number}`),
  deploy: (id: string, number: number) => call<Hook>("POST", `${at(id)}/versions/${number}/deploy`),
  secrets: (id: string) => call<SecretNames>("GET", `${at(id)}/secrets`),
  // POST adds new names, PATCH replaces values of existing ones.
  setSecrets: (id: string, values: Record<string, string>, replace: boolean) =>
    call<SecretNames>(replace ? "PATCH" : "POST", `${at(id)}/secrets`, values),
  deleteSecrets: (id: string, names: string[]) => call<null>("DELETE", `${at(id)}/secrets`, names),
  schedule: (id: string) => call<ScheduleStatus>("GET", `${at(id)}/schedule`),
  /** The hook's newest invocation records (production and runner's), newest first. */
  logs: (id: string, take: number) => call<InvocationPage>("GET", `/logs?hook_id=${encodeURIComponent(id)}&take=${take}`),
};

export const clients = {
  list: () => every<Client>("/clients"),
  create: (body: { name: string; app_type: string }) => call<ClientWithSecret>("POST", "/clients", body),
  get: (id: string) => call<Client>("GET", `/clients/${encodeURIComponent(id)}`),
  update: (id: string, body: Partial<Client>) => call<Client>("PATCH", `/clients/${encodeURIComponent(id)}`, body),
};

export const resourceServers = {
  list: () => every<ResourceServer>("/resource-servers"),
  create: (body: { name: string; identifier: string; scopes: { value: string }[] }) =>
    call<ResourceServer>("POST", "/resource-servers", body),
};

export const clientGrants = {
  list: () => every<ClientGrant>("/client-grants"),
  create: (body: { client_id: string; audience: string; scope: string[] }) =>
    call<ClientGrant>("POST", "/client-grants", body),
};

export const users = {
  search: (query: string) => call<User[]>("GET", `/users?per_page=50${query ? `&q=${encodeURIComponent(query)}` : ""}`),
};

export const admins = {
  list: () => every<Admin>("/admins"),
  create: (body: { email: string; password: string; scopes: string[] }) => call<Admin>("POST", "/admins", body),
  remove: (id: string) => call<null>("DELETE", `/admins/${encodeURIComponent(id)}`),
};

const source = (id: string) => `/git-sources/${encodeURIComponent(id)}`;

export const gitSources = {
  list: () => every<GitSource>("/git-sources"),
  get: (id: string) => call<GitSource>("GET", source(id)),
  create: (body: GitSourceCreate) => call<GitSource>("POST", "/git-sources", body),
  /** A new webhook secret, in this answer only. */
  rotateSecret: (id: string) => call<GitSource>("PATCH", source(id), { rotate_webhook_secret: true }),
  remove: (id: string) => call<null>("DELETE", source(id)),
  detach: (id: string) => call<GitSource>("POST", `${source(id)}/detach`),
  sync: (id: string) => call<GitDeployment>("POST", `${source(id)}/sync`),
  /** The newest ``take`` deployments, newest first. */
  deployments: (id: string, take: number) =>
    call<GitDeployment[]>("GET", `${source(id)}/deployments?per_page=${take}&page=0`),
};
