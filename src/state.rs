//! `AppState`: what every request and job shares — configuration, the database, the clock,
//! the services (password hasher, signing keys, outgoing HTTP, the WebAuthn relying party) and
//! small caches. It sits above the operations (it owns their services) and below every
//! surface; it knows no actix type.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ipnet::IpNet;

use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::master_key::MasterKey;
use crate::crypto::password::PasswordHasher;
use crate::ops::signing_keys::KeyManager;
use crate::store::Db;
use crate::store::clients::Client;

pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub hasher: PasswordHasher,
    pub master_key: Arc<MasterKey>,
    pub keys: Arc<KeyManager>,
    /// Outgoing HTTP (upstream providers, back-channel logout), under the address rule of
    /// `outbound`.
    pub outbound: crate::outbound::Outbound,
    pub trusted_proxies: Vec<IpNet>,
    /// `scheme://host[:port]` of the issuer, for Origin checks.
    pub issuer_origin: String,
    /// The issuer as a parsed URL ("return to" values are resolved against it).
    pub issuer_url: url::Url,
    /// Wakes the back-channel logout worker after a sign-out.
    pub logout_wake: tokio::sync::Notify,
    /// The discovery documents, built once (they depend only on configuration).
    pub discovery: OnceLock<Vec<u8>>,
    /// Origins of registered redirect URIs, for CORS.
    pub cors_origins: OriginCache,
    pub client_cache: ClientCache,
    pub oauth_metadata: OnceLock<Vec<u8>>,
    /// The WebAuthn relying party (`None` when the issuer cannot be one, e.g. a bare IP).
    pub webauthn: Option<webauthn_rs::Webauthn>,
    mac_key: hmac::Key,
}

impl AppState {
    pub fn new(
        config: Config,
        db: Db,
        clock: Arc<dyn Clock>,
        master_key: MasterKey,
    ) -> anyhow::Result<Self> {
        let hasher = PasswordHasher::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.argon2_parallelism,
            config.argon2_concurrency,
            config.argon2_queue,
        )?;
        let master_key = Arc::new(master_key);
        // A MAC key derived from the master key (never the master key itself), the same in
        // every process and after a restart: an open form survives both.
        let mac_key = hmac::Key::new(hmac::HMAC_SHA256, &master_key.derive("mac")?);
        let keys = Arc::new(KeyManager::new(db.clone(), master_key.clone(), &config));
        let issuer_url = url::Url::parse(&config.public_url)?;
        let issuer_origin = issuer_url.origin().ascii_serialization();
        crate::brand::set(&config.brand_name);
        crate::outbound::set_allow_link_local(config.outbound_allow_link_local);
        let webauthn =
            match crate::ops::passkeys::relying_party(&config.public_url, &config.brand_name) {
                Ok(w) => Some(w),
                Err(e) => {
                    tracing::warn!(error = %e, "passkeys disabled");
                    None
                }
            };
        Ok(Self {
            trusted_proxies: config.trusted_proxy_nets(),
            outbound: crate::outbound::Outbound::new(config.outbound_allow_link_local),
            config: Arc::new(config),
            db,
            clock,
            hasher,
            master_key,
            keys,
            issuer_origin,
            issuer_url,
            logout_wake: tokio::sync::Notify::new(),
            webauthn,
            discovery: OnceLock::new(),
            cors_origins: Default::default(),
            client_cache: Default::default(),
            oauth_metadata: OnceLock::new(),
            mac_key,
        })
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Wakes the back-channel logout worker now (after a sign-out ends sessions) instead of at
    /// its next tick.
    pub fn kick_logout_delivery(&self) {
        self.logout_wake.notify_one();
    }

    /// Waits for a kick or `max`, whichever comes first.
    pub async fn wait_for_logouts(&self, max: std::time::Duration) {
        let _ = tokio::time::timeout(max, self.logout_wake.notified()).await;
    }

    /// HMAC-SHA256 of `value` under a purpose label, base64url.
    pub fn mac(&self, purpose: &str, value: &str) -> String {
        let tag = hmac::sign(&self.mac_key, format!("{purpose}\0{value}").as_bytes());
        URL_SAFE_NO_PAD.encode(tag.as_ref())
    }

    /// An absolute URL under the issuer.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.config.public_url, path)
    }

    /// The client's IP: the `peer`, or — only when the peer is a trusted proxy — the
    /// right-most `X-Forwarded-For` entry (`forwarded`, every header joined) that is not
    /// itself a trusted proxy.
    pub fn client_ip(&self, peer: IpAddr, forwarded: &str) -> IpAddr {
        if !self.is_trusted_proxy(peer) {
            return peer;
        }
        let hops = forwarded
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .rev();
        for hop in hops {
            match hop.parse::<IpAddr>() {
                Ok(ip) if self.is_trusted_proxy(ip) => continue,
                Ok(ip) => return ip,
                Err(_) => return peer,
            }
        }
        peer
    }

    fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|n| n.contains(&ip))
    }
}

/// Registered origins, kept per server and read again after a second (the lookup runs only
/// for requests that carry an Origin header; a client added by the CLI in another process is
/// seen within that second).
#[derive(Default)]
pub struct OriginCache(RwLock<(Option<Instant>, Arc<Vec<String>>)>);

impl OriginCache {
    /// The origins, unless they were read more than a second ago (or never).
    pub fn get(&self) -> Option<Arc<Vec<String>>> {
        let g = self.0.read().ok()?;
        g.0.filter(|t| t.elapsed() < Duration::from_secs(1))
            .map(|_| g.1.clone())
    }

    pub fn put(&self, origins: Arc<Vec<String>>) {
        if let Ok(mut g) = self.0.write() {
            *g = (Some(Instant::now()), origins);
        }
    }
}

/// Registered clients as the token endpoint last read them, for at most `CLIENT_CACHE_TTL`.
/// A client_credentials grant is then pure CPU: no trip to the database at all. Changes made
/// in this process (console, admin API) clear the cache at once (`web::middleware`); a change
/// made by the CLI in another process is seen within the TTL. Only found clients are kept.
#[derive(Default)]
pub struct ClientCache(Mutex<HashMap<String, (Instant, Client)>>);

const CLIENT_CACHE_TTL: Duration = Duration::from_secs(1);
/// Entries beyond this are not kept (a flood of made-up ids must not grow memory).
const CLIENT_CACHE_MAX: usize = 256;

impl ClientCache {
    pub fn get(&self, id: &str) -> Option<Client> {
        let map = self.0.lock().ok()?;
        map.get(id)
            .filter(|(at, _)| at.elapsed() < CLIENT_CACHE_TTL)
            .map(|(_, c)| c.clone())
    }

    pub fn put(&self, client: &Client) {
        if let Ok(mut map) = self.0.lock() {
            if map.len() >= CLIENT_CACHE_MAX {
                map.retain(|_, (at, _)| at.elapsed() < CLIENT_CACHE_TTL);
                if map.len() >= CLIENT_CACHE_MAX {
                    return;
                }
            }
            map.insert(client.id.clone(), (Instant::now(), client.clone()));
        }
    }

    /// Forgets every client (after a change in this process).
    pub fn clear(&self) {
        if let Ok(mut map) = self.0.lock() {
            map.clear();
        }
    }
}
