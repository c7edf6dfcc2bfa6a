//! The `portcullis` command: parses the CLI and calls the library. Errors print one line on
//! stderr and exit non-zero (2 for configuration problems).

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use portcullis::clients::{self, ClientInput};
use portcullis::clock::{Clock, SystemClock};
use portcullis::config::Config;
use portcullis::crypto::password::PasswordHasher;
use portcullis::crypto::secret::{hash_token, random_token};
use portcullis::server;
use portcullis::signing_keys::KeyManager;
use portcullis::store;
use portcullis::users::{self, NewUser};

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
    /// Manage applications (OAuth clients).
    #[command(subcommand)]
    Client(ClientCmd),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCmd),
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
    /// List users.
    List {
        #[arg(long)]
        json: bool,
    },
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
            let rt = tokio::runtime::Builder::new_multi_thread()
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
        Command::Client(cmd) => client_cmd(cmd, &config, clock.now()),
        Command::Keys(cmd) => {
            portcullis::crypto::jwt::install();
            let (db, master) = server::open(&config)?;
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
                    println!(
                        "published new keys {}; they sign {}",
                        kids.join(", "),
                        if immediately {
                            "now"
                        } else {
                            "after the publish grace (key_publish_grace)"
                        }
                    );
                }
            }
            Ok(())
        }
    }
}

fn read_stdin_line() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("reading standard input")?;
    Ok(text.lines().next().unwrap_or("").to_string())
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
            let user = db.try_write_blocking(|c| users::insert(c, &new, now))?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"id": user.id, "username": user.username, "email": user.email, "admin": admin})
                );
            } else {
                println!("created user {} (id {})", user.username, user.id);
                if new.password_hash.is_none() {
                    println!(
                        "no password set: create a link with `portcullis user reset-link {}`",
                        user.username
                    );
                }
            }
            Ok(())
        }
        UserCmd::List { json } => {
            let list = db.read_blocking(|c| store::users::list(c, "", u32::MAX, 0))?;
            if json {
                let arr: Vec<_> = list
                    .iter()
                    .map(|u| serde_json::json!({"id": u.id, "username": u.username, "email": u.email, "disabled": u.disabled}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&arr)?);
            } else {
                for u in list {
                    println!(
                        "{:<24} {:<32} {}",
                        u.username,
                        u.email.unwrap_or_default(),
                        if u.disabled { "disabled" } else { "" }
                    );
                }
            }
            Ok(())
        }
        UserCmd::Invite {
            username,
            allow_password,
        } => {
            let token = random_token();
            let hash = hash_token(&token);
            let ttl = config.password_reset_ttl.as_secs() as i64;
            let found = db.write_blocking(|c| {
                let Some(u) = store::users::by_username(c, &username)? else {
                    return Ok(false);
                };
                store::links::invalidate_for_user(c, &u.id, store::links::Purpose::Invite, now)?;
                store::links::insert(
                    c,
                    &hash,
                    store::links::Purpose::Invite,
                    Some(&u.id),
                    allow_password,
                    now,
                    now + ttl,
                )?;
                Ok(true)
            })?;
            if !found {
                bail!("no user named {username:?}");
            }
            println!("{}/invite?token={token}", config.public_url);
            Ok(())
        }
        UserCmd::ResetLink { username } => {
            let token = random_token();
            let hash = hash_token(&token);
            let ttl = config.password_reset_ttl.as_secs() as i64;
            let found = db.write_blocking(|c| {
                let Some(u) = store::users::by_username(c, &username)? else {
                    return Ok(false);
                };
                store::links::invalidate_for_user(
                    c,
                    &u.id,
                    store::links::Purpose::PasswordReset,
                    now,
                )?;
                store::links::insert(
                    c,
                    &hash,
                    store::links::Purpose::PasswordReset,
                    Some(&u.id),
                    true,
                    now,
                    now + ttl,
                )?;
                Ok(true)
            })?;
            if !found {
                bail!("no user named {username:?}");
            }
            println!("{}/reset?token={token}", config.public_url);
            Ok(())
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
            let (client, secret) = db.try_write_blocking(|c| clients::create(c, input, now))?;
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
            if !db.write_blocking(|c| store::clients::delete(c, &client_id))? {
                bail!("no application with client id {client_id:?}");
            }
            println!("deleted {client_id}");
            Ok(())
        }
        ClientCmd::RotateSecret { client_id, json } => {
            let Some(secret) = db.write_blocking(|c| clients::rotate_secret(c, &client_id, now))?
            else {
                bail!("no confidential application with client id {client_id:?}");
            };
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
