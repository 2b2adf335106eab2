// Calls a team's code makes with Auth0's Node SDK, auth0 7.1, run by
// test_node_auth0.py with `node` in a process of its own. Both of its APIs:
// - the current one, require('auth0'): ManagementClient, which takes its own
//   token by client credentials (v7 ships no AuthenticationClient there);
// - the legacy one, require('auth0/legacy'): node-auth0 v4's ManagementClient
//   and AuthenticationClient (tokens, signup, change password).
// Prints one JSON object: each call's name, and what it answered ({"ok": ...})
// or what it threw ({"thrown": {name, message, statusCode, ...}}).
//
//   node node_auth0_calls.js <domain> <client id> <secret> <audience> <unique> [all|change-password]
'use strict';

const current = require('auth0');
const legacy = require('auth0/legacy');

const [domain, adminId, adminSecret, audience, unique, mode = 'all'] = process.argv.slice(2);
const REALM = 'Username-Password-Authentication';
const PASSWORD = 'Correct-Horse-42';
const GRANTS = 55;
const results = {};

// What each of the SDK's error classes carries of the server's answer:
// ManagementError (current), ManagementApiError and AuthApiError (legacy).
function describe(error) {
  const seen = { name: error.name, message: error.message };
  for (const key of ['statusCode', 'errorCode', 'error', 'error_description', 'body']) {
    if (error[key] !== undefined) seen[key] = error[key];
  }
  return seen;
}

async function call(name, action) {
  try {
    const answer = await action();
    results[name] = { ok: answer === undefined ? null : answer };
    return answer;
  } catch (error) {
    results[name] = { thrown: describe(error) };
    return undefined;
  }
}

const data = (response) => response.data; // the legacy client answers { data, headers, status }
const without = (object, ...keys) => Object.fromEntries(Object.entries(object).filter(([key]) => !keys.includes(key)));
const claims = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());

// Auth0's own fields, as its docs and the SDK's types have them.
const API_FIELDS = {
  scopes: [{ value: 'read:notes', description: 'Read notes' }],
  signing_alg: 'RS256',
  allow_offline_access: false,
  token_dialect: 'access_token',
};
const APP_FIELDS = {
  app_type: 'regular_web',
  oidc_conformant: true,
  jwt_configuration: { alg: 'RS256', lifetime_in_seconds: 36000 },
  grant_types: ['http://auth0.com/oauth/grant-type/password-realm', 'client_credentials'],
  callbacks: ['https://app.example.com/callback'],
};
const HOOK = {
  triggerId: 'credentials-exchange',
  dependencies: {},
  script: 'module.exports = function (client, scope, audience, context, cb) {\n  cb(null, { scope });\n};\n',
};

async function currentClient() {
  const tag = `${unique}-cur`;
  await call('cur_token', async () => {
    const provider = new current.TokenProvider({ domain, clientId: adminId, clientSecret: adminSecret, audience });
    return without(claims(await provider.getAccessToken()), 'scope');
  });
  await call('cur_wrong_secret', () =>
    new current.ManagementClient({ domain, clientId: adminId, clientSecret: 'wrong' }).clients.get(adminId),
  );
  // No audience given: the SDK's default, https://<domain>/api/v2/, is the server's.
  const management = new current.ManagementClient({ domain, clientId: adminId, clientSecret: adminSecret });

  await call('cur_create_api', () =>
    management.resourceServers.create({ name: tag, identifier: `https://${tag}.example.com/`, ...API_FIELDS }),
  );
  const app = await call('cur_create_client', () => management.clients.create({ name: tag, ...APP_FIELDS }));
  const read = app && (await call('cur_get_client', () => management.clients.get(app.client_id)));
  if (read) {
    await call('cur_update_client_as_read', () => management.clients.update(app.client_id, without(read, 'client_id')));
    await call('cur_update_client_read_only', () => management.clients.update(app.client_id, { client_id: 'another' }));
  }
  await call('cur_bad_client', () => management.clients.create({ name: '<b>' }));

  // 55 grants of one client, one per API (a grant is unique per client and API).
  const holder = await call('cur_grant_holder', () => management.clients.create({ name: `${tag}-grants` }));
  const identifiers = [];
  if (holder) {
    await call('cur_create_grants', async () => {
      for (let n = 0; n < GRANTS; n++) {
        const identifier = `https://${tag}-${n}.example.com/`;
        await management.resourceServers.create({ name: `${tag}-${n}`, identifier, ...API_FIELDS });
        await management.clientGrants.create({ client_id: holder.client_id, audience: identifier, scope: ['read:notes'] });
        identifiers.push(identifier);
      }
      return identifiers.length;
    });
    // Auto-pagination: the SDK follows `next` (from/take) for grants, 10 at a time.
    await call('cur_list_grants', async () => {
      const ids = [];
      for await (const grant of await management.clientGrants.list({ client_id: holder.client_id, take: 10 })) {
        ids.push(grant.id);
      }
      return ids;
    });
  }
  // Auto-pagination by page/per_page with totals, over every API of the server.
  await call('cur_list_apis', async () => {
    const page = await management.resourceServers.list({ per_page: 10, include_totals: true });
    const found = [];
    for await (const api of page) found.push(api.identifier);
    return { total: page.response.total, found };
  });
  await call('cur_list_apis_by_identifier', async () =>
    (await management.resourceServers.list({ identifiers: identifiers.slice(0, 2) })).data.map((api) => api.identifier),
  );
  await call('cur_list_clients', async () => {
    const page = await management.clients.list({ per_page: 2, include_totals: true });
    const ids = [];
    for await (const client of page) ids.push(client.client_id);
    return { total: page.response.total, ids };
  });
  await call('cur_list_web_apps', async () => {
    const types = [];
    for await (const client of await management.clients.list({ app_type: 'regular_web', per_page: 2 })) {
      types.push(client.app_type);
    }
    return types;
  });

  await call('cur_connections', async () => {
    const names = [];
    for await (const connection of await management.connections.list()) names.push(connection.name);
    return names;
  });
  await call('cur_connections_by_strategy', async () =>
    (await management.connections.list({ strategy: ['auth0', 'google-oauth2'] })).data.map((each) => each.name),
  );
  await call('cur_tenant_settings', () => management.tenants.settings.get());

  const hook = await call('cur_create_hook', () => management.hooks.create({ name: tag, ...HOOK }));
  const readHook = hook && (await call('cur_get_hook', () => management.hooks.get(hook.id)));
  if (readHook) {
    await call('cur_update_hook_as_read', () => management.hooks.update(hook.id, without(readHook, 'id')));
  }
  return management;
}

async function legacyClient() {
  const tag = `${unique}-leg`;
  const admin = new legacy.AuthenticationClient({ domain, clientId: adminId, clientSecret: adminSecret });
  await call('leg_token', async () => without((await admin.oauth.clientCredentialsGrant({ audience })).data, 'access_token'));
  await call('leg_wrong_secret', () =>
    new legacy.AuthenticationClient({ domain, clientId: adminId, clientSecret: 'wrong' }).oauth.clientCredentialsGrant({ audience }),
  );
  const management = new legacy.ManagementClient({ domain, clientId: adminId, clientSecret: adminSecret });

  const api = await call('leg_create_api', () =>
    management.resourceServers.create({ name: tag, identifier: `https://${tag}.example.com/`, ...API_FIELDS }).then(data),
  );
  const app = await call('leg_create_client', () => management.clients.create({ name: tag, ...APP_FIELDS }).then(data));
  const read = app && (await call('leg_get_client', () => management.clients.get({ client_id: app.client_id }).then(data)));
  if (read) {
    await call('leg_update_client_as_read', () =>
      management.clients.update({ client_id: app.client_id }, without(read, 'client_id')).then(data),
    );
    await call('leg_update_client_read_only', () =>
      management.clients.update({ client_id: app.client_id }, { client_id: 'another' }).then(data),
    );
  }
  await call('leg_bad_client', () => management.clients.create({ name: '<b>' }).then(data));
  await call('leg_list_clients', () => management.clients.getAll({ per_page: 2, page: 0, include_totals: true }).then(data));

  const holder = await call('leg_grant_holder', () => management.clients.create({ name: `${tag}-grants` }).then(data));
  if (holder) {
    await call('leg_create_grants', async () => {
      for (let n = 0; n < GRANTS; n++) {
        const identifier = `https://${tag}-${n}.example.com/`;
        await management.resourceServers.create({ name: `${tag}-${n}`, identifier, ...API_FIELDS });
        await management.clientGrants.create({ client_id: holder.client_id, audience: identifier, scope: ['read:notes'] });
      }
      return GRANTS;
    });
    // The legacy client pages by hand: page/per_page with totals, and from/take.
    await call('leg_list_grants_by_page', async () => {
      const ids = [];
      const totals = [];
      for (let page = 0; page < 20; page++) {
        const answer = (await management.clientGrants.getAll({ client_id: holder.client_id, page, per_page: 10, include_totals: true })).data;
        totals.push(answer.total);
        ids.push(...answer.client_grants.map((grant) => grant.id));
        if (answer.client_grants.length < 10) break;
      }
      return { ids, totals };
    });
    await call('leg_list_grants_by_checkpoint', async () => {
      const ids = [];
      let from;
      for (let page = 0; page < 20; page++) {
        const answer = (await management.clientGrants.getAll({ client_id: holder.client_id, take: 10, from })).data;
        ids.push(...answer.client_grants.map((grant) => grant.id));
        from = answer.next;
        if (!from) break;
      }
      return ids;
    });
  }

  await call('leg_connections', () => management.connections.getAll().then(data));
  await call('leg_tenant_settings', () => management.tenants.getSettings().then(data));

  const hook = await call('leg_create_hook', () => management.hooks.create({ name: tag, ...HOOK }).then(data));
  const readHook = hook && (await call('leg_get_hook', () => management.hooks.get({ id: hook.id }).then(data)));
  if (readHook) {
    await call('leg_update_hook_as_read', () => management.hooks.update({ id: hook.id }, without(readHook, 'id')).then(data));
  }

  if (!app || !api) return undefined;
  // People: sign up through the app, log in with the password-realm grant.
  const email = `${tag}@example.com`;
  const people = new legacy.AuthenticationClient({ domain, clientId: app.client_id, clientSecret: app.client_secret });
  await call('leg_signup', () => people.database.signUp({ email, password: PASSWORD, connection: REALM }).then(data));
  await call('leg_login', async () => {
    const answer = await people.oauth.passwordGrant({ username: email, password: PASSWORD, realm: REALM, audience: api.identifier, scope: 'read:notes' });
    return { ...without(answer.data, 'access_token'), sub: claims(answer.data.access_token).sub };
  });
  await call('leg_wrong_password', () =>
    people.oauth.passwordGrant({ username: email, password: 'Wrong-Horse-42', realm: REALM, audience: api.identifier }).then(data),
  );
  await call('leg_change_password', () => people.database.changePassword({ email, connection: REALM }).then(data));
  await call('leg_users_by_email', () => management.usersByEmail.getByEmail({ email }).then(data));
  return email;
}

// With mail on: a person signs up and asks for a reset link, as an app does.
async function changePassword() {
  const management = new current.ManagementClient({ domain, clientId: adminId, clientSecret: adminSecret });
  const app = await management.clients.create({ name: unique, ...APP_FIELDS });
  const people = new legacy.AuthenticationClient({ domain, clientId: app.client_id, clientSecret: app.client_secret });
  const email = `${unique}@example.com`;
  await call('leg_signup', () => people.database.signUp({ email, password: PASSWORD, connection: REALM }).then(data));
  await call('leg_change_password', () => people.database.changePassword({ email, connection: REALM }).then(data));
}

async function main() {
  if (mode === 'change-password') {
    await changePassword();
  } else {
    const management = await currentClient();
    const email = await legacyClient();
    if (email) {
      // The current client reads the person the legacy one signed up.
      await call('cur_users_by_email', () => management.users.listUsersByEmail({ email }));
    }
  }
  process.stdout.write(JSON.stringify(results));
}

main().catch((error) => {
  process.stderr.write(String((error && error.stack) || error));
  process.exit(1);
});
