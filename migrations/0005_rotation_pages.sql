-- A refresh rotation should write as few database pages as it can.
--
-- Every page a commit changes is written to the WAL and later again to the database file;
-- on this project's 2-core benchmark machine that disk work was the largest cost of a
-- rotation besides its two RSA signatures (BENCHMARKS.md, finding 14). Index entries keyed
-- by a random value each land on a page of their own, so the indexes touched by every
-- rotation go:
-- - access_tokens_family: revoking a family now scans the access tokens, a table that holds
--   only the minutes of tokens still live (the same trade as 0004);
-- - refresh_tokens_expires: the once-a-minute sweep already scans the table (to drop sealed
--   successors after their grace window), so it deletes expired families in the same kind of
--   pass;
-- - refresh_tokens_sid becomes partial: only a family's first token (the one from the code
--   exchange, which keeps code_hash; successors store none) is indexed, and signing out finds
--   the session's families through it, then their tokens through refresh_tokens_family.
-- New refresh tokens and access token ids begin with the time (crypto::secret::ordered_id),
-- so their primary-key entries are appended at the end of the index.
DROP INDEX IF EXISTS access_tokens_family;
DROP INDEX IF EXISTS refresh_tokens_expires;
DROP INDEX IF EXISTS refresh_tokens_sid;
CREATE INDEX refresh_tokens_first_sid ON refresh_tokens(sid) WHERE code_hash IS NOT NULL;
