// Reference OpenID Provider for the side-by-side benchmarks in ../run.sh:
// node `oidc-provider` (a certified OP) configured like the Portcullis bench set-up.
//
//   PORT=9100 MINT_PORT=9101 node server.mjs
//
// * Issuer http://127.0.0.1:$PORT, loopback only.
// * Two confidential clients (client_secret_basic): `bench-rs` (RS256) and `bench-es`
//   (ES256), each allowed authorization_code, refresh_token and client_credentials.
// * client_credentials access tokens are JWTs signed with the client's algorithm (through
//   the resourceIndicators feature: one default resource server, accessTokenFormat "jwt"), so
//   a token response costs one signature, as in Portcullis.
// * Refresh tokens always rotate (rotateRefreshToken: () => true), as in Portcullis.
// * introspection and revocation are enabled.
// * Storage: an unbounded in-memory adapter (a Map). oidc-provider's built-in memory adapter
//   is an LRU of 1,000 entries, which evicts the grant under sustained refresh load.
//
// Tokens for userinfo / introspection / refresh are minted in-process through the Provider
// API (Grant, AccessToken, RefreshToken models) instead of driving the interactive
// code flow: GET http://127.0.0.1:$MINT_PORT/mint?client=bench-rs&n=64 answers
//   {"access_token": "...", "refresh_tokens": ["...", ...]}
// The tokens are the same objects a code flow with scope "openid email profile
// offline_access" would have stored (gty authorization_code, a Grant with those scopes).
import http from 'node:http';
import crypto from 'node:crypto';

import Provider from 'oidc-provider';

const PORT = Number(process.env.PORT || 9100);
const MINT_PORT = Number(process.env.MINT_PORT || PORT + 1);
const ISSUER = `http://127.0.0.1:${PORT}`;
const REDIRECT = 'http://127.0.0.1:1/cb';
const RESOURCE = 'urn:bench:api';

// ---- storage: unbounded Map adapter -------------------------------------------------------
const store = new Map();
const grantIndex = new Map(); // grantId -> Set of keys

class MapAdapter {
  constructor(name) {
    this.name = name;
  }

  key(id) {
    return `${this.name}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    const exp = expiresIn ? Date.now() + expiresIn * 1000 : undefined;
    store.set(key, { payload, exp });
    if (payload.grantId) {
      let set = grantIndex.get(payload.grantId);
      if (!set) grantIndex.set(payload.grantId, (set = new Set()));
      set.add(key);
    }
    if (payload.uid) store.set(`uid:${this.name}:${payload.uid}`, { payload: id, exp });
    if (payload.userCode) store.set(`userCode:${payload.userCode}`, { payload: id, exp });
  }

  get(key) {
    const e = store.get(key);
    if (!e) return undefined;
    if (e.exp && e.exp < Date.now()) {
      store.delete(key);
      return undefined;
    }
    return e.payload;
  }

  async find(id) {
    return this.get(this.key(id));
  }

  async findByUid(uid) {
    const id = this.get(`uid:${this.name}:${uid}`);
    return id ? this.find(id) : undefined;
  }

  async findByUserCode(userCode) {
    const id = this.get(`userCode:${userCode}`);
    return id ? this.find(id) : undefined;
  }

  async consume(id) {
    const p = this.get(this.key(id));
    if (p) p.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    store.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    const set = grantIndex.get(grantId);
    if (set) for (const k of set) store.delete(k);
    grantIndex.delete(grantId);
  }
}

// ---- keys: RSA-2048 and P-256, generated at start ----------------------------------------
const jwk = (alg, pair, kid) => ({ ...pair.privateKey.export({ format: 'jwk' }), alg, use: 'sig', kid });
const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });

const clientMeta = (id, alg) => ({
  client_id: id,
  client_secret: `${id}-secret`,
  grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
  response_types: ['code'],
  redirect_uris: [REDIRECT],
  token_endpoint_auth_method: 'client_secret_basic',
  id_token_signed_response_alg: alg,
  scope: 'openid email profile offline_access api',
});

const USERS = {
  bench: { sub: 'bench', email: 'bench@example.test', email_verified: true, name: 'Bench User', preferred_username: 'bench' },
};

const provider = new Provider(ISSUER, {
  adapter: MapAdapter,
  clients: [clientMeta('bench-rs', 'RS256'), clientMeta('bench-es', 'ES256')],
  jwks: { keys: [jwk('RS256', rsa, 'rs1'), jwk('ES256', ec, 'es1')] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
  },
  scopes: ['openid', 'email', 'profile', 'offline_access', 'api'],
  async findAccount(ctx, id) {
    const claims = USERS[id];
    if (!claims) return undefined;
    return { accountId: id, async claims() { return claims; } };
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // client_credentials without a resource parameter gets the bench API as audience.
      defaultResource(ctx) {
        return ctx.oidc.params?.grant_type === 'client_credentials' ? RESOURCE : undefined;
      },
      getResourceServerInfo(ctx, resourceIndicator, client) {
        return {
          scope: 'api',
          audience: RESOURCE,
          accessTokenTTL: 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: client.idTokenSignedResponseAlg } },
        };
      },
      useGrantedResource: () => false,
    },
  },
  rotateRefreshToken: () => true,
  ttl: {
    AccessToken: 600,
    ClientCredentials: 600,
    IdToken: 3600,
    RefreshToken: 30 * 86400,
    Grant: 30 * 86400,
    Session: 14 * 86400,
    Interaction: 3600,
    AuthorizationCode: 60,
  },
  pkce: { required: () => true },
});
provider.proxy = false;

provider.on('server_error', (ctx, err) => console.error('server_error', err));

// ---- minting, on a separate loopback port ------------------------------------------------
async function mint(clientId, n) {
  const client = await provider.Client.find(clientId);
  if (!client) throw new Error(`unknown client ${clientId}`);
  const scope = 'openid email profile offline_access';
  const accountId = 'bench';
  const newGrant = async () => {
    const grant = new provider.Grant({ accountId, clientId });
    grant.addOIDCScope(scope);
    return grant.save();
  };
  const now = Math.floor(Date.now() / 1000);
  const grantId = await newGrant();
  const at = new provider.AccessToken({
    accountId, client, grantId, scope: 'openid email profile', gty: 'authorization_code', claims: undefined,
  });
  const accessToken = await at.save();
  const refreshTokens = [];
  for (let i = 0; i < n; i += 1) {
    // One grant (one "sign-in") per refresh token, like n separate code flows.
    const gid = await newGrant();
    const rt = new provider.RefreshToken({
      accountId, client, grantId: gid, scope, gty: 'authorization_code', authTime: now, iat: now,
    });
    refreshTokens.push(await rt.save());
  }
  return { access_token: accessToken, refresh_tokens: refreshTokens };
}

http.createServer(async (req, res) => {
  try {
    const u = new URL(req.url, `http://127.0.0.1:${MINT_PORT}`);
    if (u.pathname !== '/mint') { res.writeHead(404).end(); return; }
    const out = await mint(u.searchParams.get('client') || 'bench-rs', Number(u.searchParams.get('n') || 0));
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(out));
  } catch (e) {
    res.writeHead(500, { 'content-type': 'text/plain' }).end(String(e?.stack || e));
  }
}).listen(MINT_PORT, '127.0.0.1');

provider.listen(PORT, '127.0.0.1');
console.log(`oidc-provider ${ISSUER} ready (mint on 127.0.0.1:${MINT_PORT})`);
