//! Signing keys and their rotation.
//!
//! Each algorithm has at most one *active* key (signs), may have a *next* key (published in
//! JWKS, signs from `activates_at` so RPs caching JWKS learn it first), and *retired* keys
//! (no longer sign, still published until every token they signed has expired, then pruned).
//! The server keeps a snapshot (active kid per algorithm and the JWKS document) refreshed
//! from the database. A change made by another process (the CLI's `keys rotate`) is seen
//! within a second: the server compares the key set's fingerprint every second
//! (`refresh_if_changed`, a one-row read) and, after reloading, records in `settings` which
//! set it serves, so the CLI can say whether a running server took it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::{Value, json};

use crate::clock::UnixTime;
use crate::config::Config;
use crate::crypto::CryptoError;
use crate::crypto::key_pairs::{self, Alg, KeyPair};
use crate::crypto::master_key::MasterKey;
use crate::store::signing_keys::StoredKey;
use crate::store::{self, Db, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("no active signing key for {0}")]
    NoActiveKey(&'static str),
}

/// A key as listed by `keys list` and the console.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: String,
    pub state: &'static str,
    pub created_at: UnixTime,
    pub activates_at: UnixTime,
    pub retired_at: Option<UnixTime>,
    pub prune_after: Option<UnixTime>,
}

#[derive(Default)]
struct Snapshot {
    active: HashMap<Alg, String>,
    jwks: Arc<Vec<u8>>,
    /// The earliest future moment at which the snapshot changes (a next key activates).
    valid_until: UnixTime,
}

pub struct KeyManager {
    db: Db,
    master: Arc<MasterKey>,
    rotation_period: i64,
    publish_grace: i64,
    /// How long a retired key stays published: the longest lifetime of a token it signed.
    max_token_ttl: i64,
    snapshot: RwLock<Snapshot>,
    /// The fingerprint of the key set the snapshot was made from.
    loaded: std::sync::Mutex<String>,
}

fn seal_context(kid: &str) -> String {
    format!("signing_key:{kid}")
}

impl KeyManager {
    pub fn new(db: Db, master: Arc<MasterKey>, config: &Config) -> Self {
        let max_token_ttl = [config.id_token_ttl, config.access_token_ttl]
            .iter()
            .map(|d| d.as_secs() as i64)
            .max()
            .unwrap_or(3600);
        Self {
            db,
            master,
            rotation_period: config.key_rotation_period.as_secs() as i64,
            publish_grace: config.key_publish_grace.as_secs() as i64,
            max_token_ttl,
            snapshot: RwLock::new(Snapshot::default()),
            loaded: std::sync::Mutex::new(String::new()),
        }
    }

    /// Makes keys that are due (a first key per algorithm; a next key when the active one is
    /// near the end of its period), retires keys whose successor is active, prunes expired
    /// ones, then reloads the snapshot. Runs at start and periodically (jobs).
    pub fn maintain(&self, now: UnixTime) -> Result<(), KeyError> {
        let master = self.master.clone();
        let (period, grace) = (self.rotation_period, self.publish_grace);
        let client_max: i64 = self
            .db
            .read_blocking(store::clients::longest_token_ttl)?
            .unwrap_or(0);
        let keep = self.max_token_ttl.max(client_max);
        // Key generation (RSA takes ~100 ms) happens outside the transaction; the transaction
        // re-checks so two processes never both add a key.
        for alg in Alg::ALL {
            let existing = self.db.read_blocking(store::signing_keys::all)?;
            let plan = plan_for(alg, &existing, now, period, grace);
            if let Some(activates_at) = plan {
                let fresh = generate_stored(&master, alg, now, activates_at)?;
                self.db.write_blocking(|c| {
                    let again = store::signing_keys::all(c)?;
                    if plan_for(alg, &again, now, period, grace).is_some() {
                        store::signing_keys::insert(c, &fresh)?;
                    }
                    Ok(())
                })?;
            }
        }
        self.db.write_blocking(|c| {
            let all = store::signing_keys::all(c)?;
            for alg in Alg::ALL {
                let mut live: Vec<&StoredKey> = all
                    .iter()
                    .filter(|k| {
                        k.alg == alg.as_str() && k.retired_at.is_none() && k.activates_at <= now
                    })
                    .collect();
                live.sort_by_key(|k| (k.activates_at, k.created_at));
                // Every active key but the newest has been succeeded: retire it.
                if let Some((_, older)) = live.split_last() {
                    for k in older {
                        store::signing_keys::retire(c, &k.kid, now, now + keep)?;
                    }
                }
            }
            store::signing_keys::delete_pruned(c, now)?;
            Ok(())
        })?;
        self.reload(now)
    }

    /// Publishes a new key for every algorithm now; it signs after the publish grace unless
    /// `immediately` (for a compromised key: RPs refetch JWKS on an unknown kid).
    pub fn rotate(&self, now: UnixTime, immediately: bool) -> Result<Vec<String>, KeyError> {
        let activates_at = if immediately {
            now
        } else {
            now + self.publish_grace
        };
        let mut kids = Vec::new();
        for alg in Alg::ALL {
            let fresh = generate_stored(&self.master, alg, now, activates_at)?;
            kids.push(fresh.kid.clone());
            self.db.write_blocking(|c| {
                // A rotation replaces a pending next key rather than queueing another.
                store::signing_keys::delete_pending(c, alg.as_str(), now)?;
                store::signing_keys::insert(c, &fresh)?;
                Ok(())
            })?;
        }
        self.maintain(now)?;
        Ok(kids)
    }

    /// Reloads the snapshot when the key set in the database is not the one it was made
    /// from (another process rotated), and says so in `settings`. Returns whether it did.
    pub fn refresh_if_changed(&self, now: UnixTime) -> Result<bool, KeyError> {
        let current = self.db.read_blocking(store::signing_keys::fingerprint)?;
        let known = self.loaded.lock().map(|l| l.clone()).unwrap_or_default();
        if current == known {
            return Ok(false);
        }
        self.reload(now)?;
        let loaded = self.loaded.lock().map(|l| l.clone()).unwrap_or_default();
        if !self.db.is_read_only() {
            self.db
                .write_blocking(|c| store::signing_keys::mark_served(c, &loaded))?;
        }
        tracing::info!("signing keys changed in the database; reloaded");
        Ok(true)
    }

    /// Reloads the snapshot from the database, parsing keys not yet in the registry.
    pub fn reload(&self, now: UnixTime) -> Result<(), KeyError> {
        let (all, fingerprint) = self.db.read_blocking(|c| {
            Ok((
                store::signing_keys::all(c)?,
                store::signing_keys::fingerprint(c)?,
            ))
        })?;
        let mut active: HashMap<Alg, (UnixTime, String)> = HashMap::new();
        let mut jwks = Vec::new();
        let mut valid_until = UnixTime::MAX;
        for k in &all {
            let Some(alg) = Alg::parse(&k.alg) else {
                continue;
            };
            if key_pairs::registered(&k.kid).is_none() {
                let der = self.master.open(&seal_context(&k.kid), &k.private_sealed)?;
                key_pairs::register(&k.kid, Arc::new(KeyPair::from_pkcs8(alg, &der)?));
            }
            jwks.push(store::json_col::<Value>(&k.public_jwk)?);
            if k.activates_at > now {
                valid_until = valid_until.min(k.activates_at);
            } else if k.retired_at.is_none()
                && active.get(&alg).is_none_or(|(at, _)| *at <= k.activates_at)
            {
                active.insert(alg, (k.activates_at, k.kid.clone()));
            }
        }
        let doc = serde_json::to_vec(&json!({ "keys": jwks })).unwrap_or_default();
        if let Ok(mut s) = self.snapshot.write() {
            *s = Snapshot {
                active: active.into_iter().map(|(a, (_, kid))| (a, kid)).collect(),
                jwks: Arc::new(doc),
                valid_until,
            };
        }
        if let Ok(mut l) = self.loaded.lock() {
            *l = fingerprint;
        }
        Ok(())
    }

    /// The kid that signs for `alg` now. A next key whose time has come is switched to
    /// without waiting for the periodic job.
    pub fn active_kid(&self, alg: Alg, now: UnixTime) -> Result<String, KeyError> {
        let stale = self
            .snapshot
            .read()
            .map(|s| s.valid_until <= now)
            .unwrap_or(true);
        if stale {
            self.reload(now)?;
        }
        self.snapshot
            .read()
            .ok()
            .and_then(|s| s.active.get(&alg).cloned())
            .ok_or(KeyError::NoActiveKey(alg.as_str()))
    }

    /// The JWKS document (every key that may still verify a live token).
    pub fn jwks(&self) -> Arc<Vec<u8>> {
        self.snapshot
            .read()
            .map(|s| s.jwks.clone())
            .unwrap_or_default()
    }

    pub fn list(&self, now: UnixTime) -> Result<Vec<KeyInfo>, KeyError> {
        Ok(self
            .db
            .read_blocking(store::signing_keys::all)?
            .into_iter()
            .map(|k| info(k, now))
            .collect())
    }
}

/// How many signing keys `conn` holds, and how many of them `master` opens (a restore
/// checks that a backup's key opens them all).
pub fn sealed_keys_open(
    conn: &rusqlite::Connection,
    master: &MasterKey,
) -> Result<(usize, usize), StoreError> {
    let all = store::signing_keys::all(conn)?;
    let opened = all
        .iter()
        .filter(|k| {
            master
                .open(&seal_context(&k.kid), &k.private_sealed)
                .is_ok()
        })
        .count();
    Ok((all.len(), opened))
}

fn info(k: StoredKey, now: UnixTime) -> KeyInfo {
    let state = if k.retired_at.is_some() {
        "retired"
    } else if k.activates_at > now {
        "next"
    } else {
        "active"
    };
    KeyInfo {
        kid: k.kid,
        alg: k.alg,
        state,
        created_at: k.created_at,
        activates_at: k.activates_at,
        retired_at: k.retired_at,
        prune_after: k.prune_after,
    }
}

/// When a key must be added for `alg`, the moment it should start signing.
fn plan_for(
    alg: Alg,
    keys: &[StoredKey],
    now: UnixTime,
    period: i64,
    grace: i64,
) -> Option<UnixTime> {
    let mine: Vec<&StoredKey> = keys
        .iter()
        .filter(|k| k.alg == alg.as_str() && k.retired_at.is_none())
        .collect();
    if mine.is_empty() {
        return Some(now); // first start: nothing to be published ahead of
    }
    if mine.iter().any(|k| k.activates_at > now) {
        return None; // a next key is already published
    }
    let newest = mine.iter().map(|k| k.activates_at).max().unwrap_or(now);
    // Publish the successor `grace` before the active key's period ends.
    (now >= newest + period - grace).then_some((newest + period).max(now + grace.min(period)))
}

fn generate_stored(
    master: &MasterKey,
    alg: Alg,
    now: UnixTime,
    activates_at: UnixTime,
) -> Result<StoredKey, KeyError> {
    let (der, pair) = key_pairs::generate(alg)?;
    let kid = crate::crypto::secret::random_id()
        .chars()
        .take(16)
        .collect::<String>();
    let public_jwk = pair.public_jwk(&kid, alg).to_string();
    key_pairs::register(&kid, Arc::new(pair));
    Ok(StoredKey {
        private_sealed: master.seal(&seal_context(&kid), &der)?,
        kid,
        alg: alg.as_str().into(),
        public_jwk,
        created_at: now,
        activates_at,
        retired_at: None,
        prune_after: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manager(db: &Db) -> KeyManager {
        let master = Arc::new(MasterKey::from_bytes(&[1u8; 32]).unwrap());
        KeyManager::new(db.clone(), master, &Config::default())
    }

    #[test]
    fn first_start_makes_one_active_key_per_algorithm() {
        let (_d, db) = store::test_db();
        let m = manager(&db);
        m.maintain(1000).unwrap();
        let list = m.list(1000).unwrap();
        assert_eq!(list.len(), 3);
        assert!(list.iter().all(|k| k.state == "active"));
        let jwks: Value = serde_json::from_slice(&m.jwks()).unwrap();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 3);
        for k in jwks["keys"].as_array().unwrap() {
            assert!(k["kid"].is_string() && k["alg"].is_string() && k["use"] == "sig");
            assert!(k.get("d").is_none(), "no private part in JWKS");
        }
    }

    #[test]
    fn rotation_publishes_first_signs_later_and_prunes_after_tokens_expire() {
        let (_d, db) = store::test_db();
        let m = manager(&db);
        let day = 86_400;
        m.maintain(0).unwrap();
        let first = m.active_kid(Alg::RS256, 0).unwrap();
        // Near the end of the period a next key is published but does not sign yet.
        let t = 30 * day - day;
        m.maintain(t).unwrap();
        assert_eq!(m.active_kid(Alg::RS256, t).unwrap(), first);
        let next: Vec<KeyInfo> = m
            .list(t)
            .unwrap()
            .into_iter()
            .filter(|k| k.state == "next")
            .collect();
        assert_eq!(next.len(), 3);
        let rs_next = next.iter().find(|k| k.alg == "RS256").unwrap().kid.clone();
        let jwks = String::from_utf8(m.jwks().to_vec()).unwrap();
        assert!(jwks.contains(&rs_next), "published before it signs");
        // Once its time comes it signs; the old key stays published.
        let t2 = 30 * day;
        assert_eq!(m.active_kid(Alg::RS256, t2).unwrap(), rs_next);
        m.maintain(t2).unwrap();
        let old = m
            .list(t2)
            .unwrap()
            .into_iter()
            .find(|k| k.kid == first)
            .unwrap();
        assert_eq!(old.state, "retired");
        assert!(
            String::from_utf8(m.jwks().to_vec())
                .unwrap()
                .contains(&first)
        );
        // After every token it signed has expired, it is pruned.
        m.maintain(t2 + 2 * 3600).unwrap();
        assert!(
            !String::from_utf8(m.jwks().to_vec())
                .unwrap()
                .contains(&first)
        );
    }

    #[test]
    fn manual_rotation_waits_for_the_grace_unless_immediate() {
        let (_d, db) = store::test_db();
        let m = manager(&db);
        m.maintain(0).unwrap();
        let before = m.active_kid(Alg::ES256, 10).unwrap();
        m.rotate(10, false).unwrap();
        assert_eq!(m.active_kid(Alg::ES256, 10).unwrap(), before);
        let kids = m.rotate(20, true).unwrap();
        assert!(kids.contains(&m.active_kid(Alg::ES256, 20).unwrap()));
    }

    #[test]
    fn keys_are_sealed_at_rest() {
        let (_d, db) = store::test_db();
        manager(&db).maintain(0).unwrap();
        let stored = db.read_blocking(store::signing_keys::all).unwrap();
        let other = MasterKey::from_bytes(&[2u8; 32]).unwrap();
        assert!(
            other
                .open(&seal_context(&stored[0].kid), &stored[0].private_sealed)
                .is_err()
        );
    }
}
