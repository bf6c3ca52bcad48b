// A local authorization server for mailferry's tests: oidc-provider (a certified OpenID
// Provider) with the grants mailferry uses against Microsoft and Google:
//   - client credentials for app registrations (Microsoft 365's IMAP.AccessAsApp), JWT access
//     tokens whose `client_id` names the app;
//   - the RFC 7523 JWT-bearer grant for service accounts (Google's domain-wide delegation),
//     registered with registerGrantType: the assertion is verified with the client's own
//     registered public key, the token's `sub` is the mailbox it names;
//   - a user's sign-in: authorization code with PKCE for a native (loopback, any port) public
//     client, on oidc-provider's own login and consent pages (devInteractions: any login name,
//     any password; the account's `sub`, `email` and `preferred_username` are that name),
//     refresh tokens (offline_access; rotated on every use when the config says so, a used one
//     then revoking the whole grant if it comes again), ID tokens with the email claim, and JWT
//     access tokens for the IMAP resource whose `sub` is the account.
// Access tokens are RS256 JWTs with `typ: JWT` (Dovecot 2.3 refuses `at+jwt`), signed with a key
// generated here; its public half is written where Dovecot's oauth2 passdb reads keys for local
// validation (`<key_dir>/default/RS256/<kid>`).
//
// Usage: node authority.mjs CONFIG.json — prints one JSON line {"issuer": ...} when it listens.
// CONFIG: { key_dir, access_token_ttl, apps: [{client_id, client_secret | certificate_file}],
//           service_accounts: [{client_id, key_file}], sign_in_clients: [client_id],
//           rotate_refresh_tokens }
// Each service account gets a key pair made here; its key file (as Google gives one: type,
// client_email, private_key, private_key_id, token_uri) is written to `key_file`.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import * as querystring from 'node:querystring';

import Provider from 'oidc-provider';
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose';

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const MICROSOFT_RESOURCE = 'https://outlook.office365.com/';
const MICROSOFT_SCOPE = 'https://outlook.office365.com/.default';
const GOOGLE_RESOURCE = 'https://mail.google.com/';
const GOOGLE_SCOPE = 'https://mail.google.com/';
// A user's delegated IMAP access at Microsoft (the profile's user scope asks for it).
const MICROSOFT_USER_RESOURCE = 'https://outlook.office.com/';
const MICROSOFT_USER_SCOPE = 'https://outlook.office.com/IMAP.AccessAsUser.All';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const ttl = config.access_token_ttl ?? 3600;

// The signing key, and its public half for Dovecot.
const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const kid = crypto.randomBytes(8).toString('hex');
const signingJwk = { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
const keyPath = path.join(config.key_dir, 'default', 'RS256');
fs.mkdirSync(keyPath, { recursive: true });
fs.writeFileSync(path.join(keyPath, kid), publicKey.export({ format: 'pem', type: 'spki' }));

const server = http.createServer();
await new Promise((resolve) => { server.listen(0, '127.0.0.1', resolve); });
const issuer = `http://127.0.0.1:${server.address().port}`;

function serviceAccountJwk(sa) {
  const pair = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyId = crypto.randomBytes(8).toString('hex');
  fs.writeFileSync(sa.key_file, JSON.stringify({
    type: 'service_account',
    client_email: sa.client_id,
    private_key_id: keyId,
    private_key: pair.privateKey.export({ format: 'pem', type: 'pkcs8' }),
    token_uri: `${issuer}/token`,
  }), { mode: 0o600 });
  return { ...pair.publicKey.export({ format: 'jwk' }), kid: keyId, alg: 'RS256', use: 'sig' };
}

// An app that proves itself with a certificate (a signed client assertion, RFC 7523 section
// 2.2): its public key, read from the certificate the testbed made, verifies the assertions.
function certificateAuth(file) {
  const pem = fs.readFileSync(file, 'utf8');
  const cert = pem.slice(pem.indexOf('-----BEGIN CERTIFICATE-----'), pem.indexOf('-----END CERTIFICATE-----') + 25);
  const jwk = crypto.createPublicKey(cert).export({ format: 'jwk' });
  const alg = jwk.kty === 'EC' ? 'ES256' : 'RS256';
  return {
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: alg,
    jwks: { keys: [{ ...jwk, alg, use: 'sig' }] },
  };
}

const clients = [
  ...config.apps.map((app) => ({
    client_id: app.client_id,
    ...(app.certificate_file ? certificateAuth(app.certificate_file) : {
      client_secret: app.client_secret,
      token_endpoint_auth_method: 'client_secret_post',
    }),
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    scope: MICROSOFT_SCOPE,
  })),
  ...(config.sign_in_clients ?? []).map((clientId) => ({
    client_id: clientId,
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    // RFC 8252: a native client's loopback redirect may use any port.
    redirect_uris: ['http://127.0.0.1/api/sign-in/callback'],
    scope: `openid email profile offline_access ${MICROSOFT_USER_SCOPE}`,
  })),
  ...config.service_accounts.map((sa) => ({
    client_id: sa.client_id,
    grant_types: [JWT_BEARER],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'none',
    jwks: { keys: [serviceAccountJwk(sa)] },
    scope: GOOGLE_SCOPE,
  })),
];

const provider = new Provider(issuer, {
  clients,
  jwks: { keys: [signingJwk] },
  scopes: ['openid', 'offline_access', 'email', 'profile', MICROSOFT_SCOPE, GOOGLE_SCOPE, MICROSOFT_USER_SCOPE],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['preferred_username'] },
  // The ID token from the token endpoint carries the claims its scopes ask for.
  conformIdTokenClaims: false,
  findAccount: async (ctx, id) => ({
    accountId: id,
    async claims() { return { sub: id, email: id, email_verified: true, preferred_username: id }; },
  }),
  rotateRefreshToken: config.rotate_refresh_tokens === true,
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: (ctx, client) => {
        if (client.grantTypes.includes('client_credentials')) return MICROSOFT_RESOURCE;
        if (client.grantTypes.includes('authorization_code')) return MICROSOFT_USER_RESOURCE;
        return GOOGLE_RESOURCE;
      },
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => ({
        scope: {
          [MICROSOFT_RESOURCE]: MICROSOFT_SCOPE,
          [MICROSOFT_USER_RESOURCE]: MICROSOFT_USER_SCOPE,
        }[resource] ?? GOOGLE_SCOPE,
        audience: resource,
        accessTokenFormat: 'jwt',
        accessTokenTTL: ttl,
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  formats: {
    customizers: {
      // Dovecot 2.3's local validation wants `typ: JWT`.
      jwt: (ctx, token, jwt) => { jwt.header = { typ: 'JWT' }; },
    },
  },
  ttl: { ClientCredentials: ttl, AccessToken: ttl },
});
provider.proxy = false;

// RFC 7523: the assertion is signed by the service account's key and names the mailbox as `sub`.
provider.registerGrantType(JWT_BEARER, async (ctx) => {
  const { client } = ctx.oidc;
  const tokenUrl = `${issuer}${ctx.path}`;
  let payload;
  try {
    ({ payload } = await jwtVerify(ctx.oidc.params.assertion, createLocalJWKSet(client.jwks), {
      issuer: client.clientId,
      audience: tokenUrl,
      maxTokenAge: '1h',
    }));
  } catch (error) {
    ctx.status = 400;
    ctx.body = { error: 'invalid_grant', error_description: `invalid assertion: ${error.code ?? error.message}` };
    return;
  }
  if (typeof payload.sub !== 'string' || payload.scope !== GOOGLE_SCOPE) {
    ctx.status = 400;
    ctx.body = { error: 'unauthorized_client', error_description: 'Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.' };
    return;
  }
  const token = new provider.AccessToken({
    accountId: payload.sub,
    client,
    scope: GOOGLE_SCOPE,
    gty: 'jwt_bearer',
  });
  token.resourceServer = new provider.ResourceServer(GOOGLE_RESOURCE, {
    scope: GOOGLE_SCOPE,
    audience: GOOGLE_RESOURCE,
    accessTokenFormat: 'jwt',
    accessTokenTTL: ttl,
    jwt: { sign: { alg: 'RS256' } },
  });
  ctx.oidc.entity('AccessToken', token);
  const value = await token.save();
  ctx.body = {
    access_token: value, token_type: 'Bearer', expires_in: token.expiration, scope: GOOGLE_SCOPE,
  };
}, ['assertion']);

// Google's token endpoint takes a JWT-bearer grant without client_id (the assertion's `iss`
// names the service account); oidc-provider wants one, so it is read from the assertion.
provider.use(async (ctx, next) => {
  if (ctx.method === 'POST' && ctx.path === '/token' && ctx.is('application/x-www-form-urlencoded')) {
    const chunks = [];
    for await (const chunk of ctx.req) chunks.push(chunk);
    const body = querystring.parse(Buffer.concat(chunks).toString());
    if (body.grant_type === JWT_BEARER && !body.client_id && typeof body.assertion === 'string') {
      try { body.client_id = decodeJwt(body.assertion).iss; } catch { /* refused by the grant */ }
    }
    ctx.request.body = body;
  }
  await next();
});

// One line per token issued, for the tests that count renewals (never the token itself).
provider.on('grant.success', (ctx) => {
  process.stderr.write(`${JSON.stringify({
    event: 'token_issued', client_id: ctx.oidc.client?.clientId, grant_type: ctx.oidc.params?.grant_type,
  })}\n`);
});

// The grants of users' sign-ins by account, so a test can withdraw one as the user would
// (POST /test/revoke?account=…): the grant and its refresh tokens end. Loopback-only test aid.
const grantsOf = new Map();
provider.on('refresh_token.saved', (token) => {
  if (!grantsOf.has(token.accountId)) grantsOf.set(token.accountId, new Set());
  grantsOf.get(token.accountId).add(token.grantId);
});
provider.use(async (ctx, next) => {
  if (ctx.method === 'POST' && ctx.path === '/test/revoke') {
    const account = ctx.query.account;
    const grants = [...(grantsOf.get(account) ?? [])];
    for (const grantId of grants) {
      await provider.RefreshToken.revokeByGrantId(grantId);
      await provider.AccessToken.revokeByGrantId(grantId);
      const grant = await provider.Grant.find(grantId);
      if (grant) await grant.destroy();
    }
    grantsOf.delete(account);
    process.stderr.write(`${JSON.stringify({ event: 'grants_revoked', account, count: grants.length })}\n`);
    ctx.body = { revoked: grants.length };
    return;
  }
  await next();
});

// Why a grant was refused (oidc-provider keeps the detail out of the answer).
provider.on('grant.error', (ctx, err) => {
  process.stderr.write(`${JSON.stringify({
    event: 'grant_error', grant_type: ctx.oidc?.params?.grant_type, error: err.error, detail: err.error_detail,
  })}\n`);
});

server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ issuer, kid })}\n`);
