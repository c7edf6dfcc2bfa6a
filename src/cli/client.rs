//! `portcullis client add | list | show | edit | delete | rotate-secret`: applications.

use anyhow::bail;

use super::shared::{CLI, op};
use crate::config::Config;
use crate::ops::OpError;
use crate::ops::clients::{self, ClientInput};
use crate::store::{self, Db};

#[derive(clap::Subcommand)]
pub enum ClientCmd {
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

#[derive(clap::Args)]
pub struct ClientEditArgs {
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
    /// Device sign-in (RFC 8628) on or off.
    #[arg(long, action = clap::ArgAction::Set)]
    device_code: Option<bool>,
    /// Only people with a role in this app may sign in, on or off.
    #[arg(long, action = clap::ArgAction::Set)]
    require_role: Option<bool>,
    /// This confidential app may exchange tokens for this one (repeatable; replaces the list).
    #[arg(long = "exchange-from", value_name = "CLIENT_ID")]
    exchange_sources: Vec<String>,
    /// No app may exchange tokens for this one any more.
    #[arg(long, conflicts_with = "exchange_sources")]
    no_exchange: bool,
    /// Seconds that exchanged tokens for this app live ("" = the default, 60).
    #[arg(long, value_name = "SECONDS")]
    exchange_token_ttl: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct ClientAddArgs {
    #[arg(long)]
    name: String,
    #[arg(long = "redirect-uri", required_unless_present_any = ["device_code", "client_credentials"])]
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
    /// Allow device sign-in (RFC 8628): a TV, a command line or a script shows a code that
    /// people enter at /device.
    #[arg(long)]
    device_code: bool,
    /// Only people with a role in this app may sign in.
    #[arg(long)]
    require_role: bool,
    /// This confidential app may exchange a person's token for one addressed to the new app
    /// (RFC 8693; repeatable).
    #[arg(long = "exchange-from", value_name = "CLIENT_ID")]
    exchange_sources: Vec<String>,
    /// Seconds that exchanged tokens for this app live (default 60).
    #[arg(long, value_name = "SECONDS")]
    exchange_token_ttl: Option<i64>,
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: ClientCmd, config: &Config, now: i64) -> anyhow::Result<()> {
    let (db, _) = crate::server::open(config)?;
    match cmd {
        ClientCmd::Add(a) => add(&db, config, a, now),
        ClientCmd::List { json } => list(&db, config, json),
        ClientCmd::Show { client_id, json } => {
            let Some(c) = db.read_blocking(|c| store::clients::by_id(c, &client_id))? else {
                bail!("no application with client id {client_id:?}");
            };
            print_client(config, &c, None, json)
        }
        ClientCmd::Delete { client_id } => {
            op(
                db.try_write_blocking(|c| clients::delete(c, &CLI, &client_id, now)),
                &format!("application with client id {client_id:?}"),
            )?;
            println!("deleted {client_id}");
            Ok(())
        }
        ClientCmd::Edit(a) => edit(&db, config, a, now),
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

fn print_client(
    config: &Config,
    c: &store::clients::Client,
    secret: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        let mut v = clients::to_json(c, &config.public_url);
        if let (Some(obj), Some(s)) = (v.as_object_mut(), secret) {
            obj.insert("client_secret".into(), serde_json::json!(s));
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("name:          {}", c.name);
    println!("client_id:     {}", c.id);
    if let Some(s) = secret {
        println!("client_secret: {s}");
        println!("(the secret is shown only now: copy it into the app's settings)");
    }
    let kind = if c.public {
        "public (PKCE)"
    } else {
        "confidential"
    };
    println!("type:          {kind}");
    for u in &c.redirect_uris {
        println!("redirect_uri:  {u}");
    }
    println!("issuer:        {}", config.public_url);
    println!(
        "discovery:     {}/.well-known/openid-configuration",
        config.public_url
    );
    Ok(())
}

fn add(db: &Db, config: &Config, a: ClientAddArgs, now: i64) -> anyhow::Result<()> {
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
        allow_device_code: a.device_code,
        require_role: a.require_role,
        exchange_sources: a.exchange_sources,
        exchange_token_ttl: a.exchange_token_ttl,
        ..ClientInput::default()
    };
    let (client, secret) = op(
        db.try_write_blocking(|c| clients::create_as(c, &CLI, input, now)),
        "application",
    )?;
    for w in clients::warnings(&client) {
        eprintln!("warning: {w}");
    }
    print_client(config, &client, secret.as_deref(), a.json)
}

fn list(db: &Db, config: &Config, json: bool) -> anyhow::Result<()> {
    let list = db.read_blocking(store::clients::list)?;
    if json {
        let arr: Vec<_> = list
            .iter()
            .map(|c| clients::to_json(c, &config.public_url))
            .collect();
        println!("{}", serde_json::to_string_pretty(&arr)?);
        return Ok(());
    }
    for c in list {
        println!("{:<34} {:<24} {}", c.id, c.name, c.redirect_uris.join(" "));
    }
    Ok(())
}

/// The application's input as it is, with the options given changed.
fn edited(mut i: ClientInput, a: ClientEditArgs, exchange_ttl: Option<Option<i64>>) -> ClientInput {
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
    if let Some(v) = a.device_code {
        i.allow_device_code = v;
    }
    if let Some(v) = a.require_role {
        i.require_role = v;
    }
    if a.no_exchange {
        i.exchange_sources.clear();
    } else if !a.exchange_sources.is_empty() {
        i.exchange_sources = a.exchange_sources;
    }
    if let Some(v) = exchange_ttl {
        i.exchange_token_ttl = v;
    }
    i
}

/// `--exchange-token-ttl`: a number of seconds, or "" for the default.
fn exchange_ttl_arg(v: Option<&str>) -> anyhow::Result<Option<Option<i64>>> {
    match v.map(str::trim) {
        None => Ok(None),
        Some("") => Ok(Some(None)),
        Some(n) => match n.parse::<i64>() {
            Ok(secs) => Ok(Some(Some(secs))),
            Err(_) => bail!(
                "--exchange-token-ttl takes a whole number of seconds, or \"\" for the default"
            ),
        },
    }
}

fn edit(db: &Db, config: &Config, a: ClientEditArgs, now: i64) -> anyhow::Result<()> {
    let (id, json) = (a.client_id.clone(), a.json);
    let exchange_ttl = exchange_ttl_arg(a.exchange_token_ttl.as_deref())?;
    let (client, secret) = op(
        db.try_write_blocking(|c| {
            let cur = store::clients::by_id(c, &id)?.ok_or(OpError::NotFound)?;
            let input = edited(clients::input_of(&cur), a, exchange_ttl);
            clients::update(c, &CLI, &id, input, now)
        }),
        &format!("application with client id {id:?}"),
    )?;
    for w in clients::warnings(&client) {
        eprintln!("warning: {w}");
    }
    print_client(config, &client, secret.as_deref(), json)
}
