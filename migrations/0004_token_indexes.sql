-- Token tables: keep only the indexes the token endpoint's hot paths need.
--
-- Every refresh inserts a refresh-token row and an access-token row; each secondary index is
-- another B-tree to update in the single writer, for every token. Indexes that serve only rare
-- operations go: code replay (an attack signal), withdrawing one app's access and revoking all
-- of a user's tokens now scan the table, which at a self-hosted installation's size costs
-- milliseconds; so does the once-a-minute sweep of access tokens, whose table holds only the
-- few minutes of tokens still live.
-- Kept: family (rotation, reuse detection, RFC 7009 revocation), sid (every sign-out), and
-- the refresh sweep by absolute expiry (refresh rows live for weeks).
DROP INDEX IF EXISTS access_tokens_code;
DROP INDEX IF EXISTS access_tokens_user_client;
DROP INDEX IF EXISTS access_tokens_expires;
DROP INDEX IF EXISTS refresh_tokens_user_client;
DROP INDEX IF EXISTS refresh_tokens_code;
