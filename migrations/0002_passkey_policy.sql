-- Passkeys as a second factor, required per group by an administrator (a user can also
-- require it for themselves: users.require_passkey).
ALTER TABLE groups ADD COLUMN require_passkey INTEGER NOT NULL DEFAULT 0 CHECK (require_passkey IN (0, 1));
