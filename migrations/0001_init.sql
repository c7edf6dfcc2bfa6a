-- Portcullis schema, version 1.
-- Time columns are INTEGER unix seconds. Tokens, codes, session ids and secrets are stored as
-- SHA-256 hashes (hex), never in the clear. Append-only: change the schema in 0002_… files.

CREATE TABLE users (
    id              TEXT PRIMARY KEY,              -- stable opaque `sub`, never changes
    username        TEXT NOT NULL COLLATE NOCASE UNIQUE CHECK (length(username) BETWEEN 1 AND 64),
    email           TEXT COLLATE NOCASE UNIQUE CHECK (email IS NULL OR instr(email, '@') > 1),
    email_verified  INTEGER NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1)),
    display_name    TEXT,
    given_name      TEXT,
    family_name     TEXT,
    picture         TEXT,
    password_hash   TEXT,                          -- argon2id PHC string; NULL = no password
    disabled        INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    require_passkey INTEGER NOT NULL DEFAULT 0 CHECK (require_passkey IN (0, 1)),
    claims          TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(claims)),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

CREATE TABLE groups (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL COLLATE NOCASE UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
    description TEXT,
    claims      TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(claims)),
    created_at  INTEGER NOT NULL
);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
) WITHOUT ROWID;
CREATE INDEX group_members_user ON group_members(user_id);

-- Custom claims: which scope releases a claim name (values live on users/groups as JSON).
CREATE TABLE claim_scopes (
    claim TEXT PRIMARY KEY,
    scope TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE clients (
    id                         TEXT PRIMARY KEY,   -- client_id
    name                       TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    secret_hash                TEXT,               -- NULL for public clients
    public                     INTEGER NOT NULL DEFAULT 0 CHECK (public IN (0, 1)),
    auth_method                TEXT CHECK (auth_method IS NULL OR auth_method IN
                                   ('client_secret_basic', 'client_secret_post', 'none')),
    require_pkce               INTEGER NOT NULL DEFAULT 1 CHECK (require_pkce IN (0, 1)),
    skip_consent               INTEGER NOT NULL DEFAULT 0 CHECK (skip_consent IN (0, 1)),
    allow_refresh              INTEGER NOT NULL DEFAULT 1 CHECK (allow_refresh IN (0, 1)),
    allow_client_credentials   INTEGER NOT NULL DEFAULT 0 CHECK (allow_client_credentials IN (0, 1)),
    allowed_scopes             TEXT,               -- space separated; NULL = every known scope
    signing_alg                TEXT NOT NULL DEFAULT 'RS256' CHECK (signing_alg IN ('RS256', 'ES256', 'EdDSA')),
    access_token_ttl           INTEGER CHECK (access_token_ttl IS NULL OR access_token_ttl > 0),
    id_token_ttl               INTEGER CHECK (id_token_ttl IS NULL OR id_token_ttl > 0),
    refresh_token_ttl          INTEGER CHECK (refresh_token_ttl IS NULL OR refresh_token_ttl > 0),
    backchannel_logout_uri     TEXT,
    backchannel_logout_session_required INTEGER NOT NULL DEFAULT 1 CHECK (backchannel_logout_session_required IN (0, 1)),
    frontchannel_logout_uri    TEXT,
    logo_url                   TEXT,
    created_at                 INTEGER NOT NULL,
    updated_at                 INTEGER NOT NULL,
    CHECK (public = 1 OR secret_hash IS NOT NULL)
);

CREATE TABLE client_redirect_uris (
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    kind      TEXT NOT NULL CHECK (kind IN ('login', 'post_logout')),
    uri       TEXT NOT NULL,                       -- stored byte for byte, compared exactly
    position  INTEGER NOT NULL,
    PRIMARY KEY (client_id, kind, uri)
) WITHOUT ROWID;

CREATE TABLE client_allowed_groups (
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    group_id  TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    PRIMARY KEY (client_id, group_id)
) WITHOUT ROWID;
CREATE INDEX client_allowed_groups_group ON client_allowed_groups(group_id);

CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY,                 -- sha256 of the cookie value
    sid          TEXT NOT NULL UNIQUE,             -- public `sid` claim
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    auth_time    INTEGER NOT NULL,
    amr          TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(amr)),
    acr          TEXT,
    user_agent   TEXT,
    ip           TEXT,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL                  -- absolute lifetime
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE INDEX sessions_expires ON sessions(expires_at);

-- Clients that received tokens within a session (for logout fan-out).
CREATE TABLE session_clients (
    sid       TEXT NOT NULL REFERENCES sessions(sid) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    first_at  INTEGER NOT NULL,
    PRIMARY KEY (sid, client_id)
) WITHOUT ROWID;

CREATE TABLE consents (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    scopes     TEXT NOT NULL,                      -- space separated, sorted
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
) WITHOUT ROWID;
CREATE INDEX consents_client ON consents(client_id);

-- A pending authorization request, waiting for login or consent (bound to the browser).
CREATE TABLE auth_requests (
    id_hash    TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    browser    TEXT NOT NULL,                      -- hash of the browser-binding cookie
    params     TEXT NOT NULL CHECK (json_valid(params)),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX auth_requests_expires ON auth_requests(expires_at);

CREATE TABLE authorization_codes (
    code_hash        TEXT PRIMARY KEY,
    client_id        TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    sid              TEXT,
    redirect_uri     TEXT NOT NULL,
    scope            TEXT NOT NULL,
    nonce            TEXT,
    code_challenge   TEXT,
    challenge_method TEXT CHECK (challenge_method IS NULL OR challenge_method = 'S256'),
    claims           TEXT CHECK (claims IS NULL OR json_valid(claims)),
    auth_time        INTEGER NOT NULL,
    amr              TEXT NOT NULL DEFAULT '[]',
    acr              TEXT,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    consumed_at      INTEGER
);
CREATE INDEX authorization_codes_expires ON authorization_codes(expires_at);

-- Refresh tokens in families: a rotation inserts a successor; reuse of a rotated token
-- (outside the grace window) revokes the whole family.
CREATE TABLE refresh_tokens (
    token_hash     TEXT PRIMARY KEY,
    family_id      TEXT NOT NULL,
    client_id      TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    sid            TEXT,
    scope          TEXT NOT NULL,
    claims         TEXT CHECK (claims IS NULL OR json_valid(claims)),
    auth_time      INTEGER NOT NULL,
    amr            TEXT NOT NULL DEFAULT '[]',
    acr            TEXT,
    offline        INTEGER NOT NULL DEFAULT 0 CHECK (offline IN (0, 1)),
    code_hash      TEXT,                           -- the code this family came from
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,               -- sliding expiry of this token
    family_expires_at INTEGER NOT NULL,            -- absolute expiry of the family
    rotated_at     INTEGER,
    successor_hash TEXT,
    -- the successor's plaintext, encrypted, kept only during the grace window so a parallel
    -- refresh with the same token receives the same successor
    successor_sealed TEXT,
    revoked_at     INTEGER
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);
CREATE INDEX refresh_tokens_user_client ON refresh_tokens(user_id, client_id);
CREATE INDEX refresh_tokens_sid ON refresh_tokens(sid);
CREATE INDEX refresh_tokens_code ON refresh_tokens(code_hash);
CREATE INDEX refresh_tokens_expires ON refresh_tokens(family_expires_at);

-- Server-side record of issued access tokens (JWTs), so they can be revoked and introspected.
CREATE TABLE access_tokens (
    jti        TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    user_id    TEXT REFERENCES users(id) ON DELETE CASCADE,  -- NULL for client_credentials
    family_id  TEXT,
    code_hash  TEXT,
    sid        TEXT,
    scope      TEXT NOT NULL,
    claims     TEXT CHECK (claims IS NULL OR json_valid(claims)),
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX access_tokens_family ON access_tokens(family_id);
CREATE INDEX access_tokens_code ON access_tokens(code_hash);
CREATE INDEX access_tokens_user_client ON access_tokens(user_id, client_id);
CREATE INDEX access_tokens_expires ON access_tokens(expires_at);

CREATE TABLE signing_keys (
    kid            TEXT PRIMARY KEY,
    alg            TEXT NOT NULL CHECK (alg IN ('RS256', 'ES256', 'EdDSA')),
    private_sealed TEXT NOT NULL,                  -- PKCS#8 DER sealed with the master key
    public_jwk     TEXT NOT NULL CHECK (json_valid(public_jwk)),
    created_at     INTEGER NOT NULL,
    activates_at   INTEGER NOT NULL,               -- published first, signs from here
    retired_at     INTEGER,                        -- stopped signing (a successor took over)
    prune_after    INTEGER                         -- unpublished once every token it signed expired
);
CREATE INDEX signing_keys_alg ON signing_keys(alg, activates_at);

CREATE TABLE passkeys (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL UNIQUE,            -- base64url credential id
    name          TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    passkey       TEXT NOT NULL CHECK (json_valid(passkey)),  -- webauthn-rs Passkey
    sign_count    INTEGER NOT NULL DEFAULT 0,
    backup_eligible INTEGER NOT NULL DEFAULT 0,
    backup_state  INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
);
CREATE INDEX passkeys_user ON passkeys(user_id);

-- WebAuthn ceremony state, server side, single use.
CREATE TABLE webauthn_ceremonies (
    id_hash    TEXT PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('register', 'authenticate', 'second_factor')),
    user_id    TEXT REFERENCES users(id) ON DELETE CASCADE,
    state      TEXT NOT NULL CHECK (json_valid(state)),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX webauthn_ceremonies_expires ON webauthn_ceremonies(expires_at);

CREATE TABLE upstream_providers (
    id                TEXT PRIMARY KEY,
    slug              TEXT NOT NULL UNIQUE CHECK (slug GLOB '[a-z0-9]*' AND length(slug) BETWEEN 1 AND 32),
    kind              TEXT NOT NULL CHECK (kind IN ('oidc', 'github')),
    display_name      TEXT NOT NULL,
    icon              TEXT,
    issuer            TEXT,
    client_id         TEXT NOT NULL,
    client_secret_sealed TEXT,
    scopes            TEXT NOT NULL DEFAULT 'openid email profile',
    enabled           INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    account_policy    TEXT NOT NULL DEFAULT 'existing_only'
                          CHECK (account_policy IN ('create', 'link_verified_email', 'existing_only')),
    default_groups    TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(default_groups)),
    group_mapping     TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(group_mapping)),
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);

CREATE TABLE linked_identities (
    provider_id TEXT NOT NULL REFERENCES upstream_providers(id) ON DELETE CASCADE,
    subject     TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email       TEXT,
    linked_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    PRIMARY KEY (provider_id, subject)
) WITHOUT ROWID;
CREATE INDEX linked_identities_user ON linked_identities(user_id);

-- Upstream handshake state (state, nonce, PKCE verifier), bound to the browser, single use.
CREATE TABLE upstream_logins (
    state_hash  TEXT PRIMARY KEY,
    provider_id TEXT NOT NULL REFERENCES upstream_providers(id) ON DELETE CASCADE,
    browser     TEXT NOT NULL,
    data        TEXT NOT NULL CHECK (json_valid(data)),
    expires_at  INTEGER NOT NULL
);

-- One-time links: first-run setup, password reset, invite. Stored hashed, single use.
CREATE TABLE one_time_links (
    token_hash  TEXT PRIMARY KEY,
    purpose     TEXT NOT NULL CHECK (purpose IN ('setup', 'password_reset', 'invite')),
    user_id     TEXT REFERENCES users(id) ON DELETE CASCADE,
    allow_password INTEGER NOT NULL DEFAULT 1,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);
CREATE INDEX one_time_links_user ON one_time_links(user_id);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,
    created_by  TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at  INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at  INTEGER
);

-- Sign-in throttling: failures per key ('user:<id>' or 'ip:<addr>') in a sliding window.
CREATE TABLE login_failures (
    key          TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL,
    first_at     INTEGER NOT NULL,
    blocked_until INTEGER NOT NULL
) WITHOUT ROWID;

-- Back-channel logout outbox, delivered by a background worker.
CREATE TABLE logout_outbox (
    id           INTEGER PRIMARY KEY,
    client_id    TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL,
    sid          TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error   TEXT,
    created_at   INTEGER NOT NULL
);
CREATE INDEX logout_outbox_due ON logout_outbox(next_attempt_at);

CREATE TABLE audit_events (
    id         INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    actor_id   TEXT,                               -- who did it (user or admin), if known
    user_id    TEXT,                               -- whom it concerns
    client_id  TEXT,
    ip         TEXT,
    detail     TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(detail))
);
CREATE INDEX audit_events_at ON audit_events(at);
CREATE INDEX audit_events_user ON audit_events(user_id, at);
CREATE INDEX audit_events_client ON audit_events(client_id, at);
CREATE INDEX audit_events_kind ON audit_events(kind, at);

-- Small server facts (e.g. the instance's own secret-derived values).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
