-- Admin console and admin API: indexes for the paginated lists and audit filters.
-- (API keys live in `api_keys` from 0001; claim_scopes and groups.require_passkey exist.)

-- Applications are listed by name, 50 at a time.
CREATE INDEX clients_name ON clients(name COLLATE NOCASE);

-- All active sessions, most recently used first.
CREATE INDEX sessions_last_seen ON sessions(last_seen_at);

-- Audit log filtered by the person who acted (user filter matches actor or subject).
CREATE INDEX audit_events_actor ON audit_events(actor_id, at);

-- Revoked keys stay listed; lookups go by key_hash (UNIQUE) and list by creation.
CREATE INDEX api_keys_created ON api_keys(created_at);
