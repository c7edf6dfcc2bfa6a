-- RFC 6749 §4.1.3: the token request must repeat redirect_uri when the authorization request
-- included it. A code now records whether it did (codes live a minute: those issued before
-- this migration count as having included it, the stricter reading).
ALTER TABLE authorization_codes ADD COLUMN redirect_uri_sent INTEGER NOT NULL DEFAULT 1;
