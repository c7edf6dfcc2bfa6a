//! The `portcullis` command: parses the CLI and calls the library. Errors print one line on
//! stderr and exit non-zero (2 for configuration problems).

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use portcullis::clock::{Clock, SystemClock};
use portcullis::config::Config;
use portcullis::crypto::password::PasswordHasher;
use portcullis::ops::clients::{self, ClientInput};
use portcullis::ops::groups::{self, GroupInput};
use portcullis::ops::signing_keys::KeyManager;
use portcullis::ops::users::{self, LinkKind, NewUser, UserEdit};
use portcullis::ops::{self, Actor, OpError};
use portcullis::server;
use portcullis::store;

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "A self-contained OpenID Connect identity provider"
)]
struct Cli {
    /// Configuration file (TOML). Every setting can also come from PORTCULLIS_* variables.
    #[arg(long, global = true, env = "PORTCULLIS_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (logs a one-time setup link while no administrator exists).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Check or print configuration.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Manage users.
    #[command(subcommand)]
    User(UserCmd),
    /// Manage groups (their names are what the `groups` claim carries).
    #[command(subcommand)]
    Group(GroupCmd),
    /// Manage applications (OAuth clients).
    #[command(subcommand)]
    Client(ClientCmd),
    /// Manage upstream identity providers (Sign in with Google, GitHub, any OpenID Connect provider).
    #[command(subcommand)]
    Upstream(portcullis::cli::upstream::UpstreamCmd),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Manage keys for the admin HTTP API (/admin/api).
    #[command(subcommand)]
    Apikey(ApiKeyCmd),
    /// Read the audit log.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Write a consistent copy of the database to FILE (safe while the server runs).
    Backup { file: PathBuf },
    /// Print the version.
    Version,
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Validate the configuration and print the effective values (secrets masked).
    Check,
    /// Print an annotated example configuration file.
    Example,
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add a user. The password is read from standard input.
    Add {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: Option<String>,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Group to add the user to (repeatable; created if missing).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Make the user an administrator (member of the `admins` group).
        #[arg(long)]
        admin: bool,
        /// Read the password from standard input (first line).
        #[arg(long)]
        password_stdin: bool,
        /// Print the created user as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List users (all of them, by username).
    List {
        /// Only users whose username, email or name contains this.
        #[arg(long)]
        search: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show one user (by username or id).
    Show {
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Change a user; only the options given change.
    Edit(UserEditArgs),
    /// Disable a user: signs them out everywhere and revokes their tokens.
    Disable { user: String },
    /// Enable a disabled user.
    Enable { user: String },
    /// Delete a user (their sessions end first, so their apps are told).
    Delete { user: String },
    /// Print a one-time link that lets the user set a new password.
    ResetLink { username: String },
    /// Print a one-time invite link where the user registers a passkey.
    Invite {
        username: String,
        /// Also let them choose a password instead.
        #[arg(long)]
        allow_password: bool,
    },
}

#[derive(Args)]
struct UserEditArgs {
    /// The user to change (username or id).
    user: String,
    #[arg(long)]
    username: Option<String>,
    /// New email address ("" removes it).
    #[arg(long)]
    email: Option<String>,
    #[arg(long, action = clap::ArgAction::Set)]
    email_verified: Option<bool>,
    /// Display name ("" removes it).
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    given_name: Option<String>,
    #[arg(long)]
    family_name: Option<String>,
    /// Replace the groups with these (repeatable).
    #[arg(long = "group")]
    groups: Vec<String>,
    /// Add to a group (repeatable).
    #[arg(long = "add-group")]
    add_groups: Vec<String>,
    /// Remove from a group (repeatable).
    #[arg(long = "remove-group")]
    remove_groups: Vec<String>,
    /// Custom claims, a JSON object (replaces the current ones).
    #[arg(long)]
    claims: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum GroupCmd {
    /// List groups with their member counts.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Create a group.
    Add {
        name: String,
        #[arg(long)]
        description: Option<String>,
        /// Members must also use a passkey after their password.
        #[arg(long)]
        require_passkey: bool,
        #[arg(long)]
        json: bool,
    },
    /// Delete a group (by name or id).
    Delete { group: String },
    /// List the members of a group.
    Members {
        group: String,
        #[arg(long)]
        json: bool,
    },
    /// Add a user to a group.
    AddMember { group: String, user: String },
    /// Remove a user from a group.
    RemoveMember { group: String, user: String },
}

#[derive(Subcommand)]
enum ApiKeyCmd {
    /// Create an API key; prints it once.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// List API keys (never the keys themselves).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke an API key by id.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Print the latest events, oldest first; with --follow, keep printing new ones.
    Tail {
        /// How many of the latest events to print first.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: u32,
        /// Keep printing new events as they happen (checks every second).
        #[arg(long)]
        follow: bool,
        /// Only events of this kind or kind prefix (e.g. `login`).
        #[arg(long)]
        kind: Option<String>,
        /// Only events by or about this user (username or id).
        #[arg(long)]
        user: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ClientCmd {
    /// Register an application; prints its client id and (once) its secret.
    Add(ClientAddArgs),
    /// List applications.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one application.
    Show {
        client_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete an application and everything issued to it.
    Delete { client_id: String },
    /// Replace the secret; prints the new one once.
    RotateSecret {
        client_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Change an application; only the options given change (list options replace the list).
    Edit(ClientEditArgs),
}

#[derive(Args)]
struct ClientEditArgs {
    client_id: String,
    #[arg(long)]
    name: Option<String>,
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    #[arg(long = "post-logout-redirect-uri")]
    post_logout_redirect_uris: Vec<String>,
    /// Only members of this group may sign in (repeatable; replaces the list).
    #[arg(long = "allowed-group")]
    allowed_groups: Vec<String>,
    /// Let everyone sign in again.
    #[arg(long, conflicts_with = "allowed_groups")]
    everyone: bool,
    #[arg(long, action = clap::ArgAction::Set)]
    skip_consent: Option<bool>,
    #[arg(long, action = clap::ArgAction::Set)]
    require_pkce: Option<bool>,
    #[arg(long, action = clap::ArgAction::Set)]
    refresh_tokens: Option<bool>,
    #[arg(long, action = clap::ArgAction::Set)]
    client_credentials: Option<bool>,
    #[arg(long, value_parser = ["RS256", "ES256", "EdDSA"])]
    signing_alg: Option<String>,
    /// "" removes it.
    #[arg(long)]
    backchannel_logout_uri: Option<String>,
    /// Space-separated scopes the client may request ("" = all).
    #[arg(long)]
    scopes: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ClientAddArgs {
    #[arg(long)]
    name: String,
    #[arg(long = "redirect-uri", required = true)]
    redirect_uris: Vec<String>,
    #[arg(long = "post-logout-redirect-uri")]
    post_logout_redirect_uris: Vec<String>,
    /// A public client (native or single-page app): no secret, PKCE required.
    #[arg(long)]
    public: bool,
    #[arg(long, value_parser = ["client_secret_basic", "client_secret_post", "none"])]
    auth_method: Option<String>,
    /// Do not require PKCE (confidential legacy clients only).
    #[arg(long)]
    no_pkce: bool,
    /// First-party app: never ask for consent.
    #[arg(long)]
    skip_consent: bool,
    /// Only members of this group may sign in (repeatable).
    #[arg(long = "allowed-group")]
    allowed_groups: Vec<String>,
    #[arg(long, value_parser = ["RS256", "ES256", "EdDSA"], default_value = "RS256")]
    signing_alg: String,
    /// Where Portcullis POSTs a logout token when a session of this app ends.
    #[arg(long)]
    backchannel_logout_uri: Option<String>,
    /// Loaded in a hidden iframe (with iss and sid) on the signed-out page.
    #[arg(long)]
    frontchannel_logout_uri: Option<String>,
    /// Allow the client_credentials grant.
    #[arg(long)]
    client_credentials: bool,
    /// Space-separated scopes the client may request (default: all).
    #[arg(long)]
    scopes: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum KeysCmd {
    /// List signing keys with their state.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Publish new keys now; they sign after the publish grace (or at once with --immediately).
    Rotate {
        #[arg(long)]
        immediately: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            for line in e.to_string().lines() {
                eprintln!("portcullis: configuration: {line}");
            }
            return ExitCode::from(2);
        }
    };
    portcullis::outbound::set_allow_link_local(config.outbound_allow_link_local);
    match run(cli.command, config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portcullis: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

fn one_line(e: &anyhow::Error) -> String {
    e.chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ")
        .replace('\n', "; ")
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    if config.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn run(command: Command, config: Config) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match command {
        Command::Serve => {
            init_logging(&config);
            // actix-web runs its own worker threads; the main runtime only accepts connections
            // and runs the periodic jobs, so one thread is enough (and keeps idle memory low).
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(server::run(config, clock))
        }
        Command::Migrate => {
            let (db, _) = server::open(&config)?;
            let version = db.read_blocking(store::migrate::current_version)?;
            println!(
                "database {} is at schema version {version}",
                db.path().display()
            );
            Ok(())
        }
        Command::Config(ConfigCmd::Check) => {
            print!("{}", config.to_masked_toml());
            eprintln!("configuration is valid");
            Ok(())
        }
        Command::Config(ConfigCmd::Example) => {
            print!("{}", Config::example());
            Ok(())
        }
        Command::Version => {
            println!("portcullis {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Backup { file } => {
            if file.exists() {
                bail!("{} already exists; choose a new file name", file.display());
            }
            let (db, _) = server::open(&config)?;
            db.backup_to(&file)
                .with_context(|| format!("backup to {}", file.display()))?;
            println!("backed up to {}", file.display());
            Ok(())
        }
        Command::User(cmd) => user_cmd(cmd, &config, clock.now()),
        Command::Group(cmd) => group_cmd(cmd, &config, clock.now()),
        Command::Client(cmd) => client_cmd(cmd, &config, clock.now()),
        Command::Apikey(cmd) => apikey_cmd(cmd, &config, clock.now()),
        Command::Audit(cmd) => audit_cmd(cmd, &config),
        Command::Upstream(cmd) => portcullis::cli::upstream::run(cmd, &config, clock.now()),
        Command::Keys(cmd) => {
            portcullis::crypto::jwt::install();
            let (db, master) = server::open(&config)?;
            let keys_db = db.clone();
            let keys = KeyManager::new(db, Arc::new(master), &config);
            let now = clock.now();
            keys.maintain(now)?;
            match cmd {
                KeysCmd::List { json } => {
                    let list = keys.list(now)?;
                    if json {
                        println!("{}", serde_json::to_string_pretty(&list)?);
                    } else {
                        println!(
                            "{:<18} {:<6} {:<8} {:<12} UNPUBLISHED AFTER",
                            "KID", "ALG", "STATE", "SIGNS FROM"
                        );
                        for k in list {
                            println!(
                                "{:<18} {:<6} {:<8} {:<12} {}",
                                k.kid,
                                k.alg,
                                k.state,
                                k.activates_at,
                                k.prune_after
                                    .map(|p| p.to_string())
                                    .unwrap_or_else(|| "-".into())
                            );
                        }
                    }
                }
                KeysCmd::Rotate { immediately } => {
                    let kids = keys.rotate(now, immediately)?;
                    keys_db.write_blocking(|c| {
                        ops::record(
                            c,
                            &CLI,
                            "keys.rotated",
                            ops::Subject {
                                detail: Some(
                                    serde_json::json!({"kids": kids, "immediately": immediately}),
                                ),
                                ..Default::default()
                            },
                            now,
                        )
                    })?;
                    let listed = keys.list(now)?;
                    let new: Vec<String> = listed
                        .iter()
                        .filter(|k| kids.contains(&k.kid))
                        .map(|k| format!("{} ({})", k.kid, k.alg))
                        .collect();
                    println!("Added signing keys {}.", new.join(", "));
                    if immediately {
                        println!("They sign from now on; the keys they replace are retired.");
                    } else {
                        let grace = humantime::format_duration(config.key_publish_grace);
                        println!(
                            "They are published now and sign after the publish grace ({grace}), so apps learn them first."
                        );
                    }
                    let wanted =
                        keys_db.read_blocking(portcullis::store::signing_keys::fingerprint)?;
                    println!("{}", served_report(&keys_db, &wanted)?);
                }
            }
            Ok(())
        }
    }
}

/// Waits (up to 2.5 s) for a running server on this database to serve the key set
/// `wanted`; says what happened.
fn served_report(db: &portcullis::store::Db, wanted: &str) -> anyhow::Result<String> {
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_millis(2500) {
        if db
            .read_blocking(portcullis::store::signing_keys::served)?
            .as_deref()
            == Some(wanted)
        {
            return Ok(format!(
                "The running server serves them (it picked them up after {:.1} s).",
                started.elapsed().as_secs_f64()
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Ok(
        "No running server picked them up within 2.5 s (is one running on this data dir?); \
        a server serves them as soon as it starts."
            .into(),
    )
}

fn read_stdin_line() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("reading standard input")?;
    Ok(text.lines().next().unwrap_or("").to_string())
}

/// The CLI's name in the audit log.
const CLI: Actor = Actor::Cli;

/// An operation's error as one line: "not found" names what was looked for.
fn op<T>(r: Result<T, OpError>, what: &str) -> anyhow::Result<T> {
    r.map_err(|e| match e {
        OpError::NotFound => anyhow::anyhow!("no {what}"),
        OpError::Invalid(f) | OpError::Conflict(f) => anyhow::anyhow!("{}: {}", f.field, f.message),
        OpError::Store(s) => anyhow::anyhow!(s),
    })
}

fn find_user(db: &store::Db, user: &str) -> anyhow::Result<store::users::User> {
    let u = user.to_string();
    db.read_blocking(move |c| users::find(c, &u))?
        .with_context(|| format!("no user named {user:?}"))
}

fn print_json(v: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn issue_link(
    db: &store::Db,
    config: &Config,
    user: &str,
    kind: LinkKind,
    now: i64,
) -> anyhow::Result<()> {
    let u = find_user(db, user)?;
    let ttl = config.password_reset_ttl.as_secs() as i64;
    let token = op(
        db.try_write_blocking(|c| users::issue_link(c, &CLI, &u.id, kind, ttl, now)),
        "such user",
    )?;
    println!("{}{}", config.public_url, kind.path(&token));
    Ok(())
}

fn user_cmd(cmd: UserCmd, config: &Config, now: i64) -> anyhow::Result<()> {
    let (db, _) = server::open(config)?;
    match cmd {
        UserCmd::Add {
            username,
            email,
            name,
            groups,
            admin,
            password_stdin,
            json,
        } => {
            let password_hash = if password_stdin {
                let pw = read_stdin_line()?;
                users::validate_password(&pw, config.password_min_length)?;
                let hasher = PasswordHasher::new(
                    config.argon2_memory_kib,
                    config.argon2_iterations,
                    config.argon2_parallelism,
                    1,
                    0,
                )?;
                Some(hasher.hash_now(&pw)?)
            } else {
                None
            };
            let new = NewUser {
                username,
                email_verified: email.is_some(),
                email,
                display_name: name,
                password_hash,
                groups,
                admin,
            };
            let user = db.try_write_blocking(|c| {
                let user = users::insert(c, &new, now)?;
                ops::record(
                    c,
                    &CLI,
                    "user.created",
                    ops::Subject {
                        user_id: Some(&user.id),
                        detail: Some(serde_json::json!({"username": user.username})),
                        ..Default::default()
                    },
                    now,
                )?;
                Ok::<_, users::UserError>(user)
            })?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"id": user.id, "username": user.username, "email": user.email, "admin": admin})
                );
            } else {
                println!("created user {} (id {})", user.username, user.id);
                if new.password_hash.is_none() {
                    println!(
                        "no password set: send a set-up link from `portcullis user invite {}`",
                        user.username
                    );
                }
            }
            Ok(())
        }
        UserCmd::List { search, json } => {
            let search = search.unwrap_or_default();
            let list = db.read_blocking(|c| {
                let mut out = Vec::new();
                for u in store::users::list(c, &search, u32::MAX, 0)? {
                    let g = store::users::group_names(c, &u.id)?;
                    out.push((u, g));
                }
                Ok(out)
            })?;
            if json {
                let arr: Vec<_> = list.iter().map(|(u, g)| users::to_json(u, g)).collect();
                print_json(&serde_json::json!(arr))?;
            } else {
                for (u, g) in list {
                    println!(
                        "{:<24} {:<32} {:<24} {}",
                        u.username,
                        u.email.unwrap_or_default(),
                        g.join(","),
                        if u.disabled { "disabled" } else { "" }
                    );
                }
            }
            Ok(())
        }
        UserCmd::Show { user, json } => {
            let u = find_user(&db, &user)?;
            let uid = u.id.clone();
            let groups = db.read_blocking(|c| store::users::group_names(c, &uid))?;
            let v = users::to_json(&u, &groups);
            if json {
                return print_json(&v);
            }
            println!("id:             {}", u.id);
            println!("username:       {}", u.username);
            println!(
                "name:           {}",
                u.display_name.as_deref().unwrap_or("-")
            );
            println!(
                "email:          {}{}",
                u.email.as_deref().unwrap_or("-"),
                if u.email_verified { " (verified)" } else { "" }
            );
            println!("groups:         {}", groups.join(", "));
            println!(
                "password:       {}",
                if u.password_hash.is_some() {
                    "set"
                } else {
                    "none"
                }
            );
            println!("disabled:       {}", if u.disabled { "yes" } else { "no" });
            if !u.claims.is_empty() {
                println!(
                    "claims:         {}",
                    serde_json::Value::Object(u.claims.clone())
                );
            }
            Ok(())
        }
        UserCmd::Edit(a) => {
            let u = find_user(&db, &a.user)?;
            let claims = match &a.claims {
                Some(text) => Some(users::parse_claims(text)?),
                None => None,
            };
            let id = u.id.clone();
            let updated = op(
                db.try_write_blocking(|c| {
                    let mut e = UserEdit::of(&u, store::users::group_names(c, &id)?);
                    if let Some(v) = a.username {
                        e.username = v;
                    }
                    if let Some(v) = a.email {
                        e.email = Some(v);
                    }
                    if let Some(v) = a.email_verified {
                        e.email_verified = v;
                    }
                    if let Some(v) = a.name {
                        e.display_name = Some(v);
                    }
                    if let Some(v) = a.given_name {
                        e.given_name = Some(v);
                    }
                    if let Some(v) = a.family_name {
                        e.family_name = Some(v);
                    }
                    if !a.groups.is_empty() {
                        e.groups = a.groups;
                    }
                    e.groups.extend(a.add_groups);
                    e.groups
                        .retain(|g| !a.remove_groups.iter().any(|r| r.eq_ignore_ascii_case(g)));
                    if let Some(v) = claims {
                        e.claims = v;
                    }
                    let u = users::update(c, &CLI, &id, e, now)?;
                    let g = store::users::group_names(c, &id)?;
                    Ok::<_, OpError>(users::to_json(&u, &g))
                }),
                "such user",
            )?;
            if a.json {
                print_json(&updated)
            } else {
                println!("updated user {}", a.user);
                Ok(())
            }
        }
        UserCmd::Disable { user } => {
            let u = find_user(&db, &user)?;
            op(
                db.try_write_blocking(|c| users::set_disabled(c, &CLI, &u.id, true, now)),
                "such user",
            )?;
            println!(
                "disabled {}: signed out everywhere, tokens revoked",
                u.username
            );
            Ok(())
        }
        UserCmd::Enable { user } => {
            let u = find_user(&db, &user)?;
            op(
                db.try_write_blocking(|c| users::set_disabled(c, &CLI, &u.id, false, now)),
                "such user",
            )?;
            println!("enabled {}", u.username);
            Ok(())
        }
        UserCmd::Delete { user } => {
            let u = find_user(&db, &user)?;
            op(
                db.try_write_blocking(|c| users::delete(c, &CLI, &u.id, now)),
                "such user",
            )?;
            println!("deleted {}", u.username);
            Ok(())
        }
        UserCmd::Invite {
            username,
            allow_password,
        } => issue_link(
            &db,
            config,
            &username,
            LinkKind::Invite { allow_password },
            now,
        ),
        UserCmd::ResetLink { username } => {
            issue_link(&db, config, &username, LinkKind::PasswordReset, now)
        }
    }
}

fn group_cmd(cmd: GroupCmd, config: &Config, now: i64) -> anyhow::Result<()> {
    let (db, _) = server::open(config)?;
    let find = |g: &str| -> anyhow::Result<store::groups::GroupDetail> {
        let name = g.to_string();
        db.read_blocking(move |c| groups::find(c, &name))?
            .with_context(|| format!("no group named {g:?}"))
    };
    match cmd {
        GroupCmd::List { json } => {
            let list = db.read_blocking(store::groups::list_details)?;
            if json {
                let arr: Vec<_> = list.iter().map(groups::to_json).collect();
                return print_json(&serde_json::json!(arr));
            }
            for g in list {
                println!(
                    "{:<24} {:>6} members  {}",
                    g.name,
                    g.members,
                    g.description.unwrap_or_default()
                );
            }
            Ok(())
        }
        GroupCmd::Add {
            name,
            description,
            require_passkey,
            json,
        } => {
            let input = GroupInput {
                name,
                description,
                require_passkey,
                ..Default::default()
            };
            let g = op(
                db.try_write_blocking(|c| groups::create(c, &CLI, input, now)),
                "such group",
            )?;
            if json {
                print_json(&groups::to_json(&g))
            } else {
                println!("created group {} (id {})", g.name, g.id);
                Ok(())
            }
        }
        GroupCmd::Delete { group } => {
            let g = find(&group)?;
            op(
                db.try_write_blocking(|c| groups::delete(c, &CLI, &g.id, now)),
                "such group",
            )?;
            println!("deleted group {}", g.name);
            Ok(())
        }
        GroupCmd::Members { group, json } => {
            let g = find(&group)?;
            let gid = g.id.clone();
            let list = db.read_blocking(move |c| store::groups::members(c, &gid, u32::MAX, 0))?;
            if json {
                let arr: Vec<_> = list
                    .iter()
                    .map(|m| serde_json::json!({"id": m.user_id, "username": m.username, "display_name": m.display_name, "disabled": m.disabled}))
                    .collect();
                return print_json(&serde_json::json!(arr));
            }
            for m in list {
                println!("{}", m.username);
            }
            Ok(())
        }
        GroupCmd::AddMember { group, user } => {
            let g = find(&group)?;
            let u = op(
                db.try_write_blocking(|c| groups::add_member(c, &CLI, &g.id, &user, now)),
                "such group",
            )?;
            println!("{} is a member of {}", u.username, g.name);
            Ok(())
        }
        GroupCmd::RemoveMember { group, user } => {
            let g = find(&group)?;
            let removed = op(
                db.try_write_blocking(|c| groups::remove_member(c, &CLI, &g.id, &user, now)),
                "such group",
            )?;
            if !removed {
                bail!("{user:?} is not a member of {}", g.name);
            }
            println!("removed {user} from {}", g.name);
            Ok(())
        }
    }
}

fn apikey_cmd(cmd: ApiKeyCmd, config: &Config, now: i64) -> anyhow::Result<()> {
    let (db, _) = server::open(config)?;
    match cmd {
        ApiKeyCmd::Create { name, json } => {
            let (k, key) = op(
                db.try_write_blocking(|c| portcullis::ops::api_keys::create(c, &CLI, &name, now)),
                "key",
            )?;
            if json {
                let mut v = portcullis::ops::api_keys::to_json(&k);
                if let Some(o) = v.as_object_mut() {
                    o.insert("key".into(), serde_json::json!(key));
                }
                return print_json(&v);
            }
            println!("{key}");
            eprintln!(
                "API key {:?} (id {}): shown only now; send it as `Authorization: Bearer <key>` to {}/admin/api/",
                k.name, k.id, config.public_url
            );
            Ok(())
        }
        ApiKeyCmd::List { json } => {
            let list = db.read_blocking(store::api_keys::list)?;
            if json {
                let arr: Vec<_> = list
                    .iter()
                    .map(portcullis::ops::api_keys::to_json)
                    .collect();
                return print_json(&serde_json::json!(arr));
            }
            for k in list {
                println!(
                    "{:<34} {:<24} {}",
                    k.id,
                    k.name,
                    if k.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    }
                );
            }
            Ok(())
        }
        ApiKeyCmd::Revoke { id } => {
            op(
                db.try_write_blocking(|c| portcullis::ops::api_keys::revoke(c, &CLI, &id, now)),
                "API key with that id",
            )?;
            println!("revoked {id}");
            Ok(())
        }
    }
}

/// One audit event as a line: time, kind, who, about whom, which app, where, details.
fn audit_line(e: &store::audit::Event, names: &mut dyn FnMut(&str) -> Option<String>) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(e.at).unwrap_or(0));
    let mut name = |id: &Option<String>| {
        id.as_deref()
            .map(|i| names(i).unwrap_or_else(|| i.to_string()))
            .unwrap_or_else(|| "-".into())
    };
    let (by, about) = (name(&e.actor_id), name(&e.user_id));
    let detail = match &e.detail {
        serde_json::Value::Object(m) if m.is_empty() => String::new(),
        v => v.to_string(),
    };
    format!(
        "{}  {:<28} by={} user={} client={} ip={} {}",
        humantime::format_rfc3339_seconds(t),
        e.kind,
        by,
        about,
        e.client_id.as_deref().unwrap_or("-"),
        e.ip.as_deref().unwrap_or("-"),
        detail
    )
}

fn audit_cmd(cmd: AuditCmd, config: &Config) -> anyhow::Result<()> {
    let (db, _) = server::open(config)?;
    let AuditCmd::Tail {
        lines,
        follow,
        kind,
        user,
        json,
    } = cmd;
    let user_id = user.map(|u| find_user(&db, &u).map(|x| x.id).unwrap_or(u));
    let mut filter = store::audit::Filter {
        user_id,
        kind_prefix: kind,
        ..Default::default()
    };
    let mut cache: std::collections::HashMap<String, Option<String>> = Default::default();
    let db2 = db.clone();
    let mut names = move |id: &str| -> Option<String> {
        cache
            .entry(id.to_string())
            .or_insert_with(|| {
                db2.read_blocking(|c| store::users::by_id(c, id))
                    .ok()
                    .flatten()
                    .map(|u| u.username)
            })
            .clone()
    };
    let mut print = |events: Vec<store::audit::Event>| -> anyhow::Result<Option<i64>> {
        let mut last = None;
        for e in events {
            if json {
                println!("{}", serde_json::to_string(&e)?);
            } else {
                println!("{}", audit_line(&e, &mut names));
            }
            last = Some(e.id);
        }
        use std::io::Write;
        std::io::stdout().flush()?;
        Ok(last)
    };
    // The latest `lines` events, oldest first.
    let f2 = filter.clone();
    let mut latest: Vec<store::audit::Event> = db
        .read_blocking(|c| store::audit::search(c, &f2, None, lines))?
        .into_iter()
        .map(|n| n.event)
        .collect();
    latest.reverse();
    let mut last = print(latest)?.unwrap_or(0);
    if !follow {
        return Ok(());
    }
    if last == 0 {
        last = db.read_blocking(store::audit::latest_id)?;
    }
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
        filter.after_id = Some(last);
        // At most 500 a second: a burst is printed over the next seconds, never skipped.
        let f2 = filter.clone();
        let batch = db.read_blocking(|c| store::audit::list(c, &f2, 500, 0))?;
        if let Some(id) = print(batch)? {
            last = id;
        }
    }
}

fn client_cmd(cmd: ClientCmd, config: &Config, now: i64) -> anyhow::Result<()> {
    let (db, _) = server::open(config)?;
    let print_client =
        |c: &store::clients::Client, secret: Option<&str>, json: bool| -> anyhow::Result<()> {
            if json {
                let mut v = clients::to_json(c, &config.public_url);
                if let (Some(obj), Some(s)) = (v.as_object_mut(), secret) {
                    obj.insert("client_secret".into(), serde_json::json!(s));
                }
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("name:          {}", c.name);
                println!("client_id:     {}", c.id);
                if let Some(s) = secret {
                    println!("client_secret: {s}");
                    println!("(the secret is shown only now: copy it into the app's settings)");
                }
                println!(
                    "type:          {}",
                    if c.public {
                        "public (PKCE)"
                    } else {
                        "confidential"
                    }
                );
                for u in &c.redirect_uris {
                    println!("redirect_uri:  {u}");
                }
                println!("issuer:        {}", config.public_url);
                println!(
                    "discovery:     {}/.well-known/openid-configuration",
                    config.public_url
                );
            }
            Ok(())
        };
    match cmd {
        ClientCmd::Add(a) => {
            let input = ClientInput {
                name: a.name,
                redirect_uris: a.redirect_uris,
                post_logout_redirect_uris: a.post_logout_redirect_uris,
                public: a.public,
                auth_method: a.auth_method,
                require_pkce: !a.no_pkce,
                skip_consent: a.skip_consent,
                allowed_groups: a.allowed_groups,
                signing_alg: a.signing_alg,
                backchannel_logout_uri: a.backchannel_logout_uri,
                frontchannel_logout_uri: a.frontchannel_logout_uri,
                allow_client_credentials: a.client_credentials,
                allowed_scopes: a.scopes,
                ..ClientInput::default()
            };
            let (client, secret) = op(
                db.try_write_blocking(|c| clients::create_as(c, &CLI, input, now)),
                "application",
            )?;
            for w in clients::warnings(&client) {
                eprintln!("warning: {w}");
            }
            print_client(&client, secret.as_deref(), a.json)
        }
        ClientCmd::List { json } => {
            let list = db.read_blocking(store::clients::list)?;
            if json {
                let arr: Vec<_> = list
                    .iter()
                    .map(|c| clients::to_json(c, &config.public_url))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&arr)?);
            } else {
                for c in list {
                    println!("{:<34} {:<24} {}", c.id, c.name, c.redirect_uris.join(" "));
                }
            }
            Ok(())
        }
        ClientCmd::Show { client_id, json } => {
            let Some(c) = db.read_blocking(|c| store::clients::by_id(c, &client_id))? else {
                bail!("no application with client id {client_id:?}");
            };
            print_client(&c, None, json)
        }
        ClientCmd::Delete { client_id } => {
            op(
                db.try_write_blocking(|c| clients::delete(c, &CLI, &client_id, now)),
                &format!("application with client id {client_id:?}"),
            )?;
            println!("deleted {client_id}");
            Ok(())
        }
        ClientCmd::Edit(a) => {
            let id = a.client_id.clone();
            let (client, secret) = op(
                db.try_write_blocking(|c| {
                    let cur = store::clients::by_id(c, &id)?.ok_or(OpError::NotFound)?;
                    let mut i = clients::input_of(&cur);
                    if let Some(v) = a.name {
                        i.name = v;
                    }
                    if !a.redirect_uris.is_empty() {
                        i.redirect_uris = a.redirect_uris;
                    }
                    if !a.post_logout_redirect_uris.is_empty() {
                        i.post_logout_redirect_uris = a.post_logout_redirect_uris;
                    }
                    if a.everyone {
                        i.allowed_groups.clear();
                    } else if !a.allowed_groups.is_empty() {
                        i.allowed_groups = a.allowed_groups;
                    }
                    if let Some(v) = a.skip_consent {
                        i.skip_consent = v;
                    }
                    if let Some(v) = a.require_pkce {
                        i.require_pkce = v;
                    }
                    if let Some(v) = a.refresh_tokens {
                        i.allow_refresh = v;
                    }
                    if let Some(v) = a.client_credentials {
                        i.allow_client_credentials = v;
                    }
                    if let Some(v) = a.signing_alg {
                        i.signing_alg = v;
                    }
                    if let Some(v) = a.backchannel_logout_uri {
                        i.backchannel_logout_uri = Some(v).filter(|s| !s.is_empty());
                    }
                    if let Some(v) = a.scopes {
                        i.allowed_scopes = Some(v).filter(|s| !s.trim().is_empty());
                    }
                    clients::update(c, &CLI, &id, i, now)
                }),
                &format!("application with client id {:?}", a.client_id),
            )?;
            for w in clients::warnings(&client) {
                eprintln!("warning: {w}");
            }
            print_client(&client, secret.as_deref(), a.json)
        }
        ClientCmd::RotateSecret { client_id, json } => {
            let secret = op(
                db.try_write_blocking(|c| clients::regenerate_secret(c, &CLI, &client_id, now)),
                &format!("application with client id {client_id:?}"),
            )?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"client_id": client_id, "client_secret": secret})
                );
            } else {
                println!("client_secret: {secret}\n(the secret is shown only now)");
            }
            Ok(())
        }
    }
}
