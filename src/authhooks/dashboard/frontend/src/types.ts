// What the dashboard's session routes and the management API answer, as the pages
// read it: one type per shape, shared by every page (docs/management-api.md,
// docs/dashboard.md). Times are ISO 8601 strings, as they travel.

export type Session = {
  // Exactly one of these: the admin client, or the admin user, that signed in.
  client_id: string | null;
  admin: { id: string; email: string } | null;
  csrf_token: string;
  expires_at: string;
  scopes: string[];
};

/** POST /dashboard/session/token (RFC 6749 §5.1). */
export type TokenAnswer = { access_token: string; token_type: string; expires_in: number };

/** The error body of the session routes and of /api/v2 (and of OAuth, for the token). */
export type ErrorBody = { message?: string; error_description?: string; error?: string };

/** A hook's language, as the API names it. */
export type Runtime = "python" | "node";

export type Hook = {
  id: string;
  name: string;
  script: string;
  triggerId: string;
  runtime: Runtime;
  enabled: boolean;
  order: number;
  timeout_ms: number;
  on_error: string;
  capture_events: boolean;
  egress: string[];
  /** As declared: name -> exact version. */
  dependencies: Record<string, string>;
  /** Every package installed for them, theirs included. */
  resolved: ResolvedPackage[];
  version: number;
  /** The git source that keeps it (read-only here while it does), or null. */
  source_id?: string | null;
  /** When it runs: hooks of point schedule only (null for the others). */
  schedule?: Schedule | null;
  created_at: string;
  updated_at: string;
};

/** A scheduled hook's schedule: a cron expression (5 fields, or 6 with seconds last). */
export type Schedule = { cron: string; timezone: string; catch_up: boolean };

/** GET /hooks/{id}/schedule: the schedule, its next ticks and its last run. */
export type ScheduleStatus = Schedule & {
  next_runs: string[];
  last_run_at: string | null;
  last_status: string | null;
  running_since: string | null;
};

export type ResolvedPackage = { name: string; version: string; integrity: string | null };

export type HookCreate = {
  name: string;
  triggerId: string;
  script: string;
  runtime?: Runtime;
  enabled?: boolean;
  schedule?: Schedule;
};

export type HookUpdate = Partial<
  Pick<
    Hook,
    | "name"
    | "script"
    | "runtime"
    | "enabled"
    | "order"
    | "timeout_ms"
    | "on_error"
    | "capture_events"
    | "egress"
    | "dependencies"
    | "schedule"
  >
> & { exclusive?: boolean };

export type Version = {
  number: number;
  created_at: string;
  author: string;
  deployed: boolean;
  script?: string | null; // only when one version is asked for
  // Set on a version a git source's deployment made; the link only on a known host.
  source_id?: string | null;
  commit?: string | null;
  commit_url?: string | null;
};

/** GET /hooks/{id}/secrets: each name, with its value hidden. */
export type SecretNames = Record<string, string>;

/** A name an editor offers for completion, with the JSON type found there
 * ("object", "array", "string", "number", "boolean", "null", or "function"). */
export type Hint = { path: string; type: string };

export type ConventionName = "hooks" | "actions";

/** A convention in JavaScript, as Auth0 wrote it: ``module.exports = function (...,
 * cb)`` or ``exports.onExecuteX = async (event, api)``, camelCase ``api`` methods. */
export type JavaScriptConvention = {
  signature: string;
  template: string; // empty when the point lists none (a declared point)
  api: Record<string, string[]> | null;
  hints: Hint[];
};

/** One way of writing a hook for a point: Auth0's Hooks or Actions. */
export type Convention = {
  function: string;
  params: string[];
  signature: string;
  template: string;
  api: Record<string, string[]> | null; // Actions: namespace -> methods
  hints: Hint[];
  javascript: JavaScriptConvention;
};

/** Where a point comes from: the server's code (built in), the operator's points
 * file, or an application through the API (the only ones that change there). */
export type PointSource = "server" | "points_file" | "api";

/** GET /api/v2/points: an extensibility point, with what it takes to write hooks for it. */
export type Point = {
  id: string;
  description: string;
  blocking: boolean; // false: delivered later, after the flow that raised it
  built_in: boolean;
  source: PointSource;
  conventions: Record<ConventionName, Convention>;
  event_schema: Record<string, unknown>;
  result_schema: Record<string, unknown> | null; // blocking declared points only
  sample_event: Record<string, unknown>;
  timeout_ms: number | null; // a bound on its hooks' own timeouts
  max_hooks: number | null;
};

/** POST /api/v2/points: a point an application declares (docs/management-api.md). */
export type PointCreate = {
  id: string;
  description: string;
  blocking: boolean;
  event_schema: unknown;
  result_schema?: unknown;
  sample_event?: unknown;
  timeout_ms?: number;
  max_hooks?: number;
};

/** PATCH /api/v2/points/{id}: what may change; null removes an optional key. */
export type PointUpdate = {
  description?: string;
  event_schema?: unknown;
  result_schema?: unknown | null;
  sample_event?: unknown | null;
  timeout_ms?: number | null;
  max_hooks?: number | null;
};

/** A captured event of the point's hooks that a changed event schema refuses. */
export type CaptureMismatch = { invocation_id: string; hook_id: string; error: string };

export type ChangedPoint = Point & { mismatched_captures: CaptureMismatch[] };

export type ConsoleLine = { stream: string; text: string; at?: number };

/** A stored invocation record (GET /logs, and the live stream's ``invocation`` events). */
export type Invocation = {
  id: string;
  seq: number;
  hook_id: string;
  version: number;
  point: string;
  started_at: string;
  duration_ms: number;
  outcome: string;
  error: string | null;
  console: ConsoleLine[];
  truncated: boolean;
  test: boolean;
};

export type InvocationPage = { logs: Invocation[]; next: number | null };

/** A console line as a running hook writes it (the live stream's ``console`` events). */
export type LiveLine = { invocation_id: string; hook_id: string; point: string; stream: string; text: string };

/** Why the server ended a live stream for good (``end``), or dropped it (``dropped``). */
export type StreamEnd = { reason: string; message?: string };

export type RunnerRequest = { script: string; event?: unknown; replay?: string };

export type RunnerError = {
  kind: string;
  message: string;
  type?: string | null;
  traceback?: string[] | null;
  line?: number | null;
};

/** POST /hooks/{id}/test. */
export type RunnerReport = {
  invocation_id: string;
  version: number | null; // null for unsaved code
  outcome: string;
  result: unknown;
  error: RunnerError | null;
  console: ConsoleLine[];
  duration_ms: number;
  truncated: boolean;
};

export type Client = {
  client_id: string;
  name: string;
  description: string;
  app_type: string;
  grant_types: string[];
  client_metadata: Record<string, string>;
  signup_enabled: boolean;
  callbacks: string[];
  allowed_logout_urls: string[];
  web_origins: string[];
  allowed_origins: string[];
  token_endpoint_auth_method: "none" | "client_secret_post" | "client_secret_basic";
  is_first_party: boolean;
  refresh_token: RefreshTokenSettings;
  created_at: string;
  updated_at: string;
};

export type RefreshTokenSettings = {
  rotation_type: "rotating" | "non-rotating";
  expiration_type: "expiring" | "non-expiring";
  leeway: number;
  token_lifetime: number;
  idle_token_lifetime: number;
  infinite_token_lifetime: boolean;
  infinite_idle_token_lifetime: boolean;
};

export type ClientWithSecret = Client & { client_secret: string };

export type ResourceServer = {
  id: string;
  name: string;
  identifier: string;
  scopes: { value: string; description: string }[];
  token_lifetime: number | null;
  is_system: boolean;
  created_at: string;
  updated_at: string;
};

export type ClientGrant = {
  id: string;
  client_id: string;
  audience: string;
  scope: string[];
  created_at: string;
  updated_at: string;
};

export type User = {
  user_id: string;
  email: string;
  email_verified: boolean;
  username: string | null;
  phone_number: string | null;
  user_metadata: Record<string, unknown>;
  app_metadata: Record<string, unknown>;
  blocked: boolean;
  created_at: string;
  updated_at: string;
  last_password_reset: string | null;
  last_login: string | null;
  logins_count: number;
};

export type Admin = {
  id: string;
  email: string;
  scopes: string[];
  created_by: string;
  created_at: string;
  updated_at: string;
  last_login: string | null;
};

/** A repository whose pushes deploy hooks (docs/git.md). */
export type GitSource = {
  id: string;
  name: string;
  repository: string;
  branch: string;
  path: string;
  webhook_url: string;
  /** Only in the answer that made it (the create, a rotation): never shown again. */
  webhook_secret: string | null;
  credentials: { kind: string } | null;
  poll_interval: number | null;
  hooks: { id: string; name: string }[];
  created_at: string;
  updated_at: string;
};

export type GitSourceCreate = {
  name: string;
  repository: string;
  branch: string;
  path: string;
  credentials: { token: string } | { ssh_private_key: string } | null;
  ssh_known_hosts: string | null;
  poll_interval: number | null;
};

export type DeploymentStatus = "queued" | "running" | "succeeded" | "failed";

export type GitChange = { hook: string; hook_id?: string | null; action: string; details?: string[] };

export type GitDeployment = {
  id: string;
  source_id: string;
  commit: string | null;
  commit_url: string | null;
  ref: string;
  trigger: string;
  author: string | null;
  message: string | null;
  status: DeploymentStatus;
  error: string | null;
  changes: GitChange[];
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
};
