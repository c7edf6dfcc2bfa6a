//! Server configuration: defaults here, then an optional TOML file, then `PORTCULLIS_*`
//! environment variables (`PORTCULLIS_<KEY>` for every key below, upper-cased).
//!
//! Every field carries its meaning and default beside it; `portcullis config example` prints
//! them as an annotated file and a unit test keeps `packaging/config.example.toml` equal to it.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// One documented setting: its key, what it means. The default comes from `Config::default()`.
struct FieldDoc {
    key: &'static str,
    doc: &'static str,
    secret: bool,
}

const FIELDS: &[FieldDoc] = &[
    FieldDoc {
        key: "public_url",
        doc: "The issuer: the public base URL people and apps reach Portcullis at (no trailing slash).\nUse https in production; cookies are marked Secure whenever it is https.",
        secret: false,
    },
    FieldDoc {
        key: "bind",
        doc: "Address and port to listen on. Keep it on loopback behind a reverse proxy.",
        secret: false,
    },
    FieldDoc {
        key: "data_dir",
        doc: "Where the SQLite database and the master key live. Defaults to $STATE_DIRECTORY under systemd, else ./data.",
        secret: false,
    },
    FieldDoc {
        key: "master_key_file",
        doc: "File holding the master key that encrypts signing keys and upstream secrets at rest.\nEmpty: $CREDENTIALS_DIRECTORY/master-key if present (systemd LoadCredential), else <data_dir>/master.key (created 0600 on first start).",
        secret: true,
    },
    FieldDoc {
        key: "log",
        doc: "Log level or filter: error, warn, info, debug, trace (or a tracing filter such as \"portcullis=debug\").",
        secret: false,
    },
    FieldDoc {
        key: "log_format",
        doc: "Log format: text or json.",
        secret: false,
    },
    FieldDoc {
        key: "trusted_proxies",
        doc: "Reverse proxies (IP addresses or CIDR ranges) whose X-Forwarded-For header is believed for the client IP.",
        secret: false,
    },
    FieldDoc {
        key: "role",
        doc: "primary (the default), or standby: a read-only copy that follows a replica of the primary's database (LiteFS, or a Litestream restore), serves discovery, JWKS and static files, answers everything else 503 with Retry-After, and writes nothing. Promote it by setting primary and restarting.",
        secret: false,
    },
    FieldDoc {
        key: "backup_dir",
        doc: "Directory for scheduled backups (database, master key and manifest, one directory each); empty: no scheduled backups. Keep it as private as the data dir.",
        secret: false,
    },
    FieldDoc {
        key: "backup_interval",
        doc: "How often the server makes a scheduled backup (when backup_dir is set).",
        secret: false,
    },
    FieldDoc {
        key: "backup_keep",
        doc: "How many scheduled backups to keep; older ones are deleted after each new one.",
        secret: false,
    },
    FieldDoc {
        key: "outbound_allow_link_local",
        doc: "Allow upstream issuers and back-channel logout URIs on link-local addresses (169.254.0.0/16, fe80::/10) and cloud metadata services. Off: a URL there could read the host's cloud credentials. Loopback and LAN addresses are always allowed.",
        secret: false,
    },
    FieldDoc {
        key: "brand_name",
        doc: "Product name shown on pages and in page titles.",
        secret: false,
    },
    FieldDoc {
        key: "logo_url",
        doc: "Logo shown on pages. Empty: the built-in logo.",
        secret: false,
    },
    FieldDoc {
        key: "session_idle_timeout",
        doc: "A browser session ends after this long without use.",
        secret: false,
    },
    FieldDoc {
        key: "session_lifetime",
        doc: "A browser session ends this long after sign-in, however active.",
        secret: false,
    },
    FieldDoc {
        key: "password_min_length",
        doc: "Shortest password accepted (NIST SP 800-63B: at least 8).",
        secret: false,
    },
    FieldDoc {
        key: "argon2_memory_kib",
        doc: "argon2id memory cost in KiB (OWASP: 19456).",
        secret: false,
    },
    FieldDoc {
        key: "argon2_iterations",
        doc: "argon2id time cost (OWASP: 2).",
        secret: false,
    },
    FieldDoc {
        key: "argon2_parallelism",
        doc: "argon2id lanes (OWASP: 1).",
        secret: false,
    },
    FieldDoc {
        key: "argon2_concurrency",
        doc: "Password hashes computed at once; further sign-ins queue. Bounds memory: each takes argon2_memory_kib.",
        secret: false,
    },
    FieldDoc {
        key: "argon2_queue",
        doc: "Sign-ins that may wait for a password hash; beyond that they are answered 503 with Retry-After (never an unbounded queue).",
        secret: false,
    },
    FieldDoc {
        key: "login_throttle_threshold",
        doc: "Failed sign-ins (per account and per client IP) before each further attempt is slowed down.",
        secret: false,
    },
    FieldDoc {
        key: "login_throttle_max_delay",
        doc: "Longest slow-down after repeated failures (it doubles per failure up to this).",
        secret: false,
    },
    FieldDoc {
        key: "authorization_code_ttl",
        doc: "How long an authorization code may be redeemed.",
        secret: false,
    },
    FieldDoc {
        key: "access_token_ttl",
        doc: "Default access token lifetime (clients may override).",
        secret: false,
    },
    FieldDoc {
        key: "id_token_ttl",
        doc: "Default ID token lifetime (clients may override).",
        secret: false,
    },
    FieldDoc {
        key: "refresh_token_ttl",
        doc: "Sliding refresh token lifetime: unused this long, it expires (clients may override).",
        secret: false,
    },
    FieldDoc {
        key: "refresh_token_absolute_ttl",
        doc: "A refresh token family ends this long after sign-in, however often it is used.",
        secret: false,
    },
    FieldDoc {
        key: "refresh_token_reuse_grace",
        doc: "Window in which a just-rotated refresh token, used again in parallel, returns the same successor instead of revoking the family.",
        secret: false,
    },
    FieldDoc {
        key: "key_rotation_period",
        doc: "A new signing key is made this often.",
        secret: false,
    },
    FieldDoc {
        key: "key_publish_grace",
        doc: "A new key is published in JWKS this long before it signs, so apps caching JWKS know it first.",
        secret: false,
    },
    FieldDoc {
        key: "password_reset_ttl",
        doc: "How long a password reset or invite link stays valid.",
        secret: false,
    },
    FieldDoc {
        key: "audit_retention",
        doc: "Audit events older than this are deleted.",
        secret: false,
    },
];

/// Effective configuration. Field docs live in `FIELDS` (printed by `config example`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub public_url: String,
    pub bind: String,
    pub data_dir: PathBuf,
    pub master_key_file: String,
    pub log: String,
    pub log_format: String,
    pub trusted_proxies: Vec<String>,
    pub outbound_allow_link_local: bool,
    pub role: String,
    pub backup_dir: String,
    #[serde(with = "duration_str")]
    pub backup_interval: Duration,
    pub backup_keep: u32,
    pub brand_name: String,
    pub logo_url: String,
    #[serde(with = "duration_str")]
    pub session_idle_timeout: Duration,
    #[serde(with = "duration_str")]
    pub session_lifetime: Duration,
    pub password_min_length: u32,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    pub argon2_concurrency: u32,
    pub argon2_queue: u32,
    pub login_throttle_threshold: u32,
    #[serde(with = "duration_str")]
    pub login_throttle_max_delay: Duration,
    #[serde(with = "duration_str")]
    pub authorization_code_ttl: Duration,
    #[serde(with = "duration_str")]
    pub access_token_ttl: Duration,
    #[serde(with = "duration_str")]
    pub id_token_ttl: Duration,
    #[serde(with = "duration_str")]
    pub refresh_token_ttl: Duration,
    #[serde(with = "duration_str")]
    pub refresh_token_absolute_ttl: Duration,
    #[serde(with = "duration_str")]
    pub refresh_token_reuse_grace: Duration,
    #[serde(with = "duration_str")]
    pub key_rotation_period: Duration,
    #[serde(with = "duration_str")]
    pub key_publish_grace: Duration,
    #[serde(with = "duration_str")]
    pub password_reset_ttl: Duration,
    #[serde(with = "duration_str")]
    pub audit_retention: Duration,
}

const DAY: u64 = 86_400;

impl Default for Config {
    fn default() -> Self {
        Self {
            public_url: "http://localhost:8080".into(),
            bind: "127.0.0.1:8080".into(),
            data_dir: default_data_dir(),
            master_key_file: String::new(),
            log: "info".into(),
            log_format: "text".into(),
            trusted_proxies: Vec::new(),
            outbound_allow_link_local: false,
            role: "primary".into(),
            backup_dir: String::new(),
            backup_interval: Duration::from_secs(DAY),
            backup_keep: 7,
            brand_name: "Portcullis".into(),
            logo_url: String::new(),
            session_idle_timeout: Duration::from_secs(14 * DAY),
            session_lifetime: Duration::from_secs(30 * DAY),
            password_min_length: 8,
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            argon2_concurrency: 2,
            argon2_queue: 128,
            login_throttle_threshold: 5,
            login_throttle_max_delay: Duration::from_secs(15 * 60),
            authorization_code_ttl: Duration::from_secs(60),
            access_token_ttl: Duration::from_secs(10 * 60),
            id_token_ttl: Duration::from_secs(60 * 60),
            refresh_token_ttl: Duration::from_secs(30 * DAY),
            refresh_token_absolute_ttl: Duration::from_secs(90 * DAY),
            refresh_token_reuse_grace: Duration::from_secs(10),
            key_rotation_period: Duration::from_secs(30 * DAY),
            key_publish_grace: Duration::from_secs(DAY),
            password_reset_ttl: Duration::from_secs(DAY),
            audit_retention: Duration::from_secs(180 * DAY),
        }
    }
}

fn default_data_dir() -> PathBuf {
    match std::env::var_os("STATE_DIRECTORY") {
        // systemd may pass several colon-separated directories; the first is ours.
        Some(dirs) if !dirs.is_empty() => {
            let dirs = dirs.to_string_lossy().into_owned();
            PathBuf::from(dirs.split(':').next().unwrap_or("./data"))
        }
        _ => PathBuf::from("./data"),
    }
}

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Loads defaults, then `file` (if any), then the environment, then validates.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(file, &env)
    }

    /// As `load`, with the environment given (tests pass their own).
    pub fn load_from(file: Option<&Path>, env: &[(String, String)]) -> Result<Self, ConfigError> {
        let defaults = toml::Table::try_from(Config::default())
            .map_err(|e| ConfigError::Invalid(format!("internal: {e}")))?;
        let mut table = toml::Table::new();
        let mut origin = String::from("environment");
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.display().to_string(),
                source,
            })?;
            table = text
                .parse::<toml::Table>()
                .map_err(|e| ConfigError::Parse {
                    path: path.display().to_string(),
                    message: e.message().to_string(),
                })?;
            origin = path.display().to_string();
        }
        for (name, raw) in env {
            let Some(key) = name.strip_prefix("PORTCULLIS_") else {
                continue;
            };
            let key = key.to_ascii_lowercase();
            if key == "config" {
                continue;
            }
            let Some(default) = defaults.get(&key) else {
                // Most likely a typo, but scripts may set their own PORTCULLIS_ variables:
                // warn rather than refuse to start.
                eprintln!(
                    "portcullis: warning: {name} is not a setting (see `portcullis config example`); ignored"
                );
                continue;
            };
            table.insert(key.clone(), env_value(&key, raw, default)?);
        }
        let config: Config =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    path: origin.clone(),
                    message: e.message().to_string(),
                })?;
        config.validate()?;
        Ok(config)
    }

    /// Reports every problem at once, one per line, each naming its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        match url::Url::parse(&self.public_url) {
            Ok(u) if !matches!(u.scheme(), "http" | "https") => {
                problems.push("public_url: must be an http or https URL".to_string())
            }
            Ok(u) if u.query().is_some() || u.fragment().is_some() => {
                problems.push("public_url: must not have a query or fragment".into())
            }
            Ok(_) if self.public_url.ends_with('/') => {
                problems.push("public_url: remove the trailing slash".into())
            }
            Ok(_) => {}
            Err(e) => problems.push(format!("public_url: not a URL ({e})")),
        }
        if self.bind.parse::<std::net::SocketAddr>().is_err() {
            problems.push(format!(
                "bind: {:?} is not an address:port such as 127.0.0.1:8080",
                self.bind
            ));
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            problems.push(format!(
                "log_format: {:?} must be text or json",
                self.log_format
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log).is_err() {
            problems.push(format!("log: {:?} is not a log level or filter", self.log));
        }
        for p in &self.trusted_proxies {
            if p.parse::<IpNet>().is_err() && p.parse::<IpAddr>().is_err() {
                problems.push(format!(
                    "trusted_proxies: {p:?} is not an IP address or CIDR range"
                ));
            }
        }
        if self.password_min_length < 8 {
            problems.push("password_min_length: must be at least 8".into());
        }
        if self.password_min_length > 64 {
            problems.push("password_min_length: must be at most 64".into());
        }
        if self.argon2_memory_kib < 8 * self.argon2_parallelism.max(1) {
            problems.push("argon2_memory_kib: too small".into());
        }
        if self.argon2_iterations == 0 {
            problems.push("argon2_iterations: must be at least 1".into());
        }
        if self.argon2_parallelism == 0 {
            problems.push("argon2_parallelism: must be at least 1".into());
        }
        if !matches!(self.role.as_str(), "primary" | "standby") {
            problems.push("role: must be primary or standby".into());
        }
        if self.argon2_concurrency == 0 {
            problems.push("argon2_concurrency: must be at least 1".into());
        }
        for (key, d) in [
            ("session_idle_timeout", self.session_idle_timeout),
            ("session_lifetime", self.session_lifetime),
            ("authorization_code_ttl", self.authorization_code_ttl),
            ("access_token_ttl", self.access_token_ttl),
            ("id_token_ttl", self.id_token_ttl),
            ("refresh_token_ttl", self.refresh_token_ttl),
            (
                "refresh_token_absolute_ttl",
                self.refresh_token_absolute_ttl,
            ),
            ("key_rotation_period", self.key_rotation_period),
            ("password_reset_ttl", self.password_reset_ttl),
            ("audit_retention", self.audit_retention),
        ] {
            if d.is_zero() {
                problems.push(format!("{key}: must be longer than zero"));
            }
        }
        if self.authorization_code_ttl > Duration::from_secs(600) {
            problems.push("authorization_code_ttl: at most 10m (RFC 6749 §4.1.2)".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems.join("\n")))
        }
    }

    /// The issuer exactly as it appears in discovery and every token.
    pub fn issuer(&self) -> &str {
        &self.public_url
    }

    /// A standby only reads its database (see `role`).
    pub fn is_standby(&self) -> bool {
        self.role == "standby"
    }

    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    pub fn trusted_proxy_nets(&self) -> Vec<IpNet> {
        self.trusted_proxies
            .iter()
            .filter_map(|p| {
                p.parse::<IpNet>()
                    .ok()
                    .or_else(|| p.parse::<IpAddr>().ok().map(IpNet::from))
            })
            .collect()
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("portcullis.db")
    }

    /// The effective configuration as TOML with secrets masked (`config check`).
    pub fn to_masked_toml(&self) -> String {
        let mut table = toml::Table::try_from(self).unwrap_or_default();
        for f in FIELDS.iter().filter(|f| f.secret) {
            if let Some(toml::Value::String(s)) = table.get_mut(f.key)
                && !s.is_empty()
                && f.key != "master_key_file"
            {
                *s = "********".into();
            }
        }
        toml::to_string(&table).unwrap_or_default()
    }

    /// An annotated example file with every key at its default.
    pub fn example() -> String {
        let defaults = Config {
            data_dir: PathBuf::from("./data"),
            ..Config::default()
        };
        let table = toml::Table::try_from(&defaults).unwrap_or_default();
        let mut out = String::from(
            "# Portcullis configuration. Every key is optional; shown here at its default.\n\
             # Each key can also be set in the environment as PORTCULLIS_<KEY> (upper case),\n\
             # e.g. PORTCULLIS_PUBLIC_URL=https://auth.example.com. Durations: 90s, 15m, 12h, 30d.\n",
        );
        for f in FIELDS {
            out.push('\n');
            for line in f.doc.lines() {
                out.push_str("# ");
                out.push_str(line);
                out.push('\n');
            }
            let mut one = toml::Table::new();
            if let Some(v) = table.get(f.key) {
                one.insert(f.key.to_string(), v.clone());
            }
            out.push_str(&toml::to_string(&one).unwrap_or_default());
        }
        out
    }
}

/// Turns an environment string into the TOML type of the key's default.
fn env_value(key: &str, raw: &str, default: &toml::Value) -> Result<toml::Value, ConfigError> {
    let bad = |what: &str| {
        ConfigError::Invalid(format!(
            "PORTCULLIS_{}: {raw:?} is not {what}",
            key.to_ascii_uppercase()
        ))
    };
    Ok(match default {
        toml::Value::Integer(_) => {
            toml::Value::Integer(raw.trim().parse().map_err(|_| bad("a whole number"))?)
        }
        toml::Value::Boolean(_) => toml::Value::Boolean(match raw.trim() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => return Err(bad("true or false")),
        }),
        toml::Value::Array(_) => toml::Value::Array(
            raw.split([',', ' '])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        ),
        _ => toml::Value::String(raw.to_string()),
    })
}

/// Durations as human strings ("15m", "30d") in TOML and the environment.
mod duration_str {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        let secs = d.as_secs();
        let text = if secs.is_multiple_of(86_400) && secs > 0 {
            format!("{}d", secs / 86_400)
        } else if secs.is_multiple_of(3600) && secs > 0 {
            format!("{}h", secs / 3600)
        } else if secs.is_multiple_of(60) && secs > 0 {
            format!("{}m", secs / 60)
        } else {
            format!("{secs}s")
        };
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(text.trim()).map_err(|e| {
            serde::de::Error::custom(format!(
                "{text:?} is not a duration such as 90s, 15m or 30d ({e})"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_valid() {
        assert!(Config::default().validate().is_ok());
        assert_eq!(Config::default().public_url, "http://localhost:8080");
        assert_eq!(Config::default().bind, "127.0.0.1:8080");
    }

    #[test]
    fn every_field_is_documented() {
        let table = toml::Table::try_from(Config::default()).unwrap();
        for key in table.keys() {
            assert!(FIELDS.iter().any(|f| f.key == key), "{key} has no doc");
        }
        assert_eq!(table.len(), FIELDS.len());
    }

    #[test]
    fn environment_variables_operators_use() {
        let c = Config::load_from(
            None,
            &env(&[
                ("PORTCULLIS_PUBLIC_URL", "https://auth.example.com"),
                ("PORTCULLIS_BIND", "0.0.0.0:9000"),
                ("PORTCULLIS_DATA_DIR", "/var/lib/portcullis"),
                ("PORTCULLIS_LOG", "debug"),
                ("PORTCULLIS_LOG_FORMAT", "json"),
                ("PORTCULLIS_TRUSTED_PROXIES", "10.0.0.1, 192.168.0.0/16"),
                ("PORTCULLIS_SESSION_LIFETIME", "7d"),
                ("PORTCULLIS_PASSWORD_MIN_LENGTH", "12"),
            ]),
        )
        .unwrap();
        assert_eq!(c.public_url, "https://auth.example.com");
        assert_eq!(c.bind, "0.0.0.0:9000");
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/portcullis"));
        assert_eq!(c.log_format, "json");
        assert_eq!(c.trusted_proxy_nets().len(), 2);
        assert_eq!(c.session_lifetime, Duration::from_secs(7 * DAY));
        assert_eq!(c.password_min_length, 12);
        assert!(c.secure_cookies());
    }

    #[test]
    fn environment_overrides_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "bind = \"127.0.0.1:1\"\nbrand_name = \"Home\"\n").unwrap();
        let c =
            Config::load_from(Some(&path), &env(&[("PORTCULLIS_BIND", "127.0.0.1:2")])).unwrap();
        assert_eq!(c.bind, "127.0.0.1:2");
        assert_eq!(c.brand_name, "Home");
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = Config::load_from(None, &env(&[("PORTCULLIS_BIND", "nope")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("bind"), "{e}");
        let e = Config::load_from(
            None,
            &env(&[("PORTCULLIS_PUBLIC_URL", "https://a.example/")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("public_url") && e.contains("trailing slash"),
            "{e}"
        );
        let e = Config::load_from(None, &env(&[("PORTCULLIS_PASSWORD_MIN_LENGTH", "x")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("PORTCULLIS_PASSWORD_MIN_LENGTH"), "{e}");
        let e = Config::load_from(None, &env(&[("PORTCULLIS_SESSION_LIFETIME", "forever")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("duration"), "{e}");
        assert!(
            Config::load_from(None, &env(&[("PORTCULLIS_TYPO", "1")])).is_ok(),
            "unknown variables are ignored"
        );
    }

    #[test]
    fn unknown_file_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "bnid = \"x\"\n").unwrap();
        let e = Config::load_from(Some(&path), &[]).unwrap_err().to_string();
        assert!(e.contains("bnid"), "{e}");
    }

    #[test]
    fn validate_reports_every_problem_at_once() {
        let c = Config {
            bind: "x".into(),
            log_format: "xml".into(),
            ..Config::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("bind") && e.contains("log_format"), "{e}");
    }

    #[test]
    fn example_parses_back_to_the_defaults() {
        let text = Config::example();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, &text).unwrap();
        let c = Config::load_from(Some(&path), &[]).unwrap();
        let want = Config {
            data_dir: PathBuf::from("./data"),
            ..Config::default()
        };
        assert_eq!(c, want);
    }

    #[test]
    fn packaged_example_equals_generated() {
        let packaged = include_str!("../packaging/config.example.toml");
        assert_eq!(
            packaged,
            Config::example(),
            "run `portcullis config example > packaging/config.example.toml`"
        );
    }
}
