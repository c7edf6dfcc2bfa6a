//! Start-up shared by `portcullis serve` and the integration tests: data dir checks, database,
//! master key, signing keys, the first-run setup link, then `serve`.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use actix_web::middleware::from_fn;
use actix_web::web;
use anyhow::{Context, bail};

use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::master_key::MasterKey;
use crate::crypto::secret::{hash_token, random_token};
use crate::state::AppState;
use crate::store::{self, Db};

/// Checks that the data dir exists (creating it 0700 if absent) and is writable.
pub fn prepare_data_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create data dir {}", dir.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
    }
    if !dir.is_dir() {
        bail!("data dir {} is not a directory", dir.display());
    }
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"")
        .with_context(|| format!("data dir {} is not writable", dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// Opens the database and master key of `config` (CLI and server alike).
pub fn open(config: &Config) -> anyhow::Result<(Db, MasterKey)> {
    if config.is_standby() {
        return open_standby(config);
    }
    prepare_data_dir(&config.data_dir)?;
    let db = Db::open(&config.database_path())
        .map_err(|e| anyhow::anyhow!("{}: {e}", config.database_path().display()))?;
    let (path, may_create) = MasterKey::locate(&config.master_key_file, &config.data_dir);
    // A new key for a database that holds values sealed with another would make them
    // unreadable (and the old key could no longer open a backup made after it): never.
    if may_create && !path.exists() && holds_sealed_values(&db)? {
        bail!(
            "the master key {} is missing, but the database {} holds values sealed with it \
             (signing keys, provider secrets); put the key back (from your backup: \
             `portcullis restore BACKUP`, or its master.key) or set master_key_file; \
             no new key was written",
            path.display(),
            config.database_path().display()
        );
    }
    let master = MasterKey::load_or_create(&path, may_create)?;
    Ok((db, master))
}

/// A standby's database (existing, opened read-only) and key (existing: it never makes one).
fn open_standby(config: &Config) -> anyhow::Result<(Db, MasterKey)> {
    let path = config.database_path();
    if !path.exists() {
        bail!(
            "role = standby, but there is no database at {} (restore or mount the replica there first)",
            path.display()
        );
    }
    let db = Db::open_read_only(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let (key_path, _) = MasterKey::locate(&config.master_key_file, &config.data_dir);
    let master = MasterKey::load_or_create(&key_path, false)
        .with_context(|| "a standby needs the primary's master key")?;
    Ok((db, master))
}

/// Whether the database holds anything sealed with a master key.
fn holds_sealed_values(db: &Db) -> anyhow::Result<bool> {
    Ok(db.read_blocking(|c| {
        Ok(!store::signing_keys::all(c)?.is_empty()
            || store::upstream::list(c, false)?
                .iter()
                .any(|p| p.client_secret_sealed.is_some()))
    })?)
}

/// Builds the state: opens storage, brings signing keys up to date.
pub fn build_state(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<AppState> {
    crate::crypto::jwt::install();
    let (db, master) = open(&config)?;
    let state = AppState::new(config, db, clock, master)?;
    if state.config.is_standby() {
        // A standby serves the primary's keys as they are; it never makes or retires one.
        state.keys.reload(state.now()).context("signing keys")?;
        return Ok(state);
    }
    state.keys.maintain(state.now()).context("signing keys")?;
    // Say which key set this server serves (what `keys rotate` waits to see).
    state
        .db
        .write_blocking(|c| {
            let served = store::signing_keys::fingerprint(c)?;
            store::signing_keys::mark_served(c, &served)
        })
        .context("signing keys")?;
    Ok(state)
}

/// When no administrator exists, a one-time setup link (1 hour, single use).
pub fn setup_link_if_needed(state: &AppState) -> anyhow::Result<Option<String>> {
    let now = state.now();
    let token = random_token();
    let hash = hash_token(&token);
    let created = state.db.write_blocking(|c| {
        if store::users::any_admin(c)? {
            return Ok(false);
        }
        store::links::insert(
            c,
            &hash,
            store::links::Purpose::Setup,
            None,
            false,
            now,
            now + 3600,
        )?;
        Ok(true)
    })?;
    Ok(created.then(|| state.url(&format!("/setup?token={token}"))))
}

/// Binds, logs the setup link if needed, and serves until SIGTERM.
pub async fn run(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    prepare_data_dir(&config.data_dir)?;
    // Held (shared) while the server runs; the kernel drops it when the process ends:
    // `restore` refuses a data dir a server runs on.
    let _lock = store::DataDirLock::shared(&config.data_dir).map_err(|e| anyhow::anyhow!(e))?;
    let listener = TcpListener::bind(&config.bind)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.bind))?;
    let state = build_state(config, clock)?;
    if state.config.is_standby() {
        tracing::warn!(
            "standby: serving discovery, JWKS and static files read-only; everything else answers 503"
        );
    } else if let Some(url) = setup_link_if_needed(&state)? {
        tracing::warn!("no administrator yet: open {url} within 1 hour to create one");
        // Also on stdout, so it is easy to find in `journalctl` output and terminals.
        println!("First run: create the administrator at {url}");
    }
    tracing::info!(bind = %listener.local_addr()?, issuer = %state.config.public_url, "listening");
    serve(listener, web::Data::new(state)).await?;
    Ok(())
}

/// Serves until SIGTERM/SIGINT; in-flight requests finish (graceful shutdown).
pub async fn serve(listener: TcpListener, state: web::Data<AppState>) -> std::io::Result<()> {
    let server_state = state.clone();
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(server_state.clone())
            .app_data(web::FormConfig::default().limit(64 * 1024))
            .app_data(web::PayloadConfig::default().limit(256 * 1024))
            .wrap(from_fn(crate::web::standby::gate))
            .wrap(from_fn(crate::web::middleware::middleware))
            .configure(crate::app::routes)
            .default_service(web::to(crate::web::middleware::not_found))
    })
    .listen(listener)?
    .shutdown_timeout(30)
    .run();
    let jobs = crate::jobs::spawn(state.clone().into_inner());
    let result = server.await;
    jobs.abort();
    state.db.checkpoint();
    tracing::info!("stopped");
    result
}
