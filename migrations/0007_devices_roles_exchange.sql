-- Sign-in for devices (RFC 8628), roles per application, and token exchange (RFC 8693).

-- Per application: may it use the device authorization grant; may only people holding one of
-- its roles sign in; how long the tokens exchanged *for* it live (NULL = 60 s).
ALTER TABLE clients ADD COLUMN allow_device_code INTEGER NOT NULL DEFAULT 0 CHECK (allow_device_code IN (0, 1));
ALTER TABLE clients ADD COLUMN require_role INTEGER NOT NULL DEFAULT 0 CHECK (require_role IN (0, 1));
ALTER TABLE clients ADD COLUMN exchange_token_ttl INTEGER CHECK (exchange_token_ttl IS NULL OR exchange_token_ttl > 0);

-- The roles an application defines (Grafana: Admin, Editor, Viewer). Names are what the
-- `roles` claim carries; unique per application regardless of case.
CREATE TABLE client_roles (
    id          TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    name        TEXT NOT NULL COLLATE NOCASE CHECK (length(name) BETWEEN 1 AND 64),
    description TEXT,
    created_at  INTEGER NOT NULL,
    UNIQUE (client_id, name)
);

-- A role granted to one person or to one group (a person's roles in an application are their
-- own grants and those of their groups).
CREATE TABLE role_grants (
    role_id    TEXT NOT NULL REFERENCES client_roles(id) ON DELETE CASCADE,
    user_id    TEXT REFERENCES users(id) ON DELETE CASCADE,
    group_id   TEXT REFERENCES groups(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    CHECK ((user_id IS NULL) <> (group_id IS NULL))
);
CREATE UNIQUE INDEX role_grants_role_user ON role_grants(role_id, user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX role_grants_role_group ON role_grants(role_id, group_id) WHERE group_id IS NOT NULL;
CREATE INDEX role_grants_user ON role_grants(user_id) WHERE user_id IS NOT NULL;
CREATE INDEX role_grants_group ON role_grants(group_id) WHERE group_id IS NOT NULL;

-- RFC 8693: the applications allowed to exchange a person's access token for one addressed to
-- `client_id` (the target lists who may ask).
CREATE TABLE client_exchange_sources (
    client_id        TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    source_client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    PRIMARY KEY (client_id, source_client_id)
) WITHOUT ROWID;
CREATE INDEX client_exchange_sources_source ON client_exchange_sources(source_client_id);

-- RFC 8628 device authorizations. Both codes are stored hashed: the device code like every
-- token (SHA-256), the short user code keyed with a key derived from the master key, so a
-- copy of the database alone cannot be searched for live codes.
CREATE TABLE device_codes (
    device_code_hash TEXT PRIMARY KEY,
    user_code_hash   TEXT NOT NULL UNIQUE,
    client_id        TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    scope            TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'approved', 'denied', 'used')),
    user_id          TEXT REFERENCES users(id) ON DELETE CASCADE,
    sid              TEXT,
    auth_time        INTEGER,
    amr              TEXT NOT NULL DEFAULT '[]',
    acr              TEXT,
    -- What the person approving is shown about the device that asked.
    device_ip        TEXT,
    device_agent     TEXT,
    interval_secs    INTEGER NOT NULL,
    last_polled_at   INTEGER,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    decided_at       INTEGER
);
CREATE INDEX device_codes_expires ON device_codes(expires_at);
