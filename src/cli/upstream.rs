//! `portcullis upstream …` — manage upstream identity providers from the command line.
//! `main.rs` holds the `Upstream` variant and calls `run`; everything else lives here.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use anyhow::{Context, bail};

use crate::config::Config;
use crate::crypto::secret::Secret;
use crate::ops::upstream_providers::{
    self as providers, Preset, ProviderInput, ProviderPatch, callback_url,
};
use crate::store;
use crate::store::upstream::{Kind, Policy};

fn parse_kind(s: &str) -> Result<Kind, String> {
    Kind::parse(s).ok_or_else(|| "use oidc or github".into())
}

fn parse_policy(s: &str) -> Result<Policy, String> {
    Policy::parse(s).ok_or_else(|| "use create, link_verified_email or existing_only".into())
}

fn parse_preset(s: &str) -> Result<Preset, String> {
    Preset::parse(s).ok_or_else(|| "use google or github".into())
}

fn parse_mapping(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((u, l)) if !u.trim().is_empty() && !l.trim().is_empty() => {
            Ok((u.trim().to_string(), l.trim().to_string()))
        }
        _ => Err("use UPSTREAM_GROUP=LOCAL_GROUP".into()),
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum UpstreamCmd {
    /// Add a provider. Prints the redirect URI to register at the provider.
    ///
    /// Google: `--slug google --client-id … --client-secret-stdin` (issuer
    /// https://accounts.google.com). GitHub: `--slug github --kind github …`. Any other OpenID
    /// Connect provider: `--slug … --name … --issuer https://id.example.com …`.
    Add {
        /// Short name in URLs: lowercase letters, digits and -.
        #[arg(long)]
        slug: String,
        /// Button text: "Continue with NAME" (defaults to Google/GitHub for the presets).
        #[arg(long)]
        name: Option<String>,
        /// oidc (by discovery) or github. Default: github for --preset github or slug github, else oidc.
        #[arg(long, value_parser = parse_kind)]
        kind: Option<Kind>,
        /// google or github: fills kind, issuer and name. Implied by slug google/github.
        #[arg(long, value_parser = parse_preset)]
        preset: Option<Preset>,
        /// OIDC issuer URL; for github, the GitHub Enterprise Server base URL (default github.com).
        #[arg(long)]
        issuer: Option<String>,
        #[arg(long)]
        client_id: String,
        /// Read the client secret from standard input (first line); it is stored encrypted.
        #[arg(long)]
        client_secret_stdin: bool,
        /// What happens on a first sign-in of an identity that is not linked yet.
        #[arg(long, value_parser = parse_policy, default_value = "existing_only")]
        policy: Policy,
        /// Group for accounts created on first sign-in (repeatable).
        #[arg(long = "default-group")]
        default_groups: Vec<String>,
        /// Map an upstream `groups` value to a local group (repeatable).
        #[arg(long = "map-group", value_parser = parse_mapping)]
        map_groups: Vec<(String, String)>,
        /// Space-separated scopes (default: openid email profile; github: read:user user:email).
        #[arg(long)]
        scopes: Option<String>,
        /// Button icon: an https:// or data:image/ URL.
        #[arg(long)]
        icon: Option<String>,
        /// Add it turned off.
        #[arg(long)]
        disabled: bool,
        #[arg(long)]
        json: bool,
    },
    /// List providers.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Change a provider's settings (only the options given).
    Edit {
        slug: String,
        #[arg(long = "slug")]
        new_slug: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        issuer: Option<String>,
        #[arg(long)]
        client_id: Option<String>,
        /// Replace the client secret with the first line of standard input.
        #[arg(long)]
        client_secret_stdin: bool,
        #[arg(long, value_parser = parse_policy)]
        policy: Option<Policy>,
        /// Replace the default groups (repeatable).
        #[arg(long = "default-group")]
        default_groups: Vec<String>,
        #[arg(long)]
        clear_default_groups: bool,
        /// Replace the group mapping (repeatable UPSTREAM=LOCAL).
        #[arg(long = "map-group", value_parser = parse_mapping)]
        map_groups: Vec<(String, String)>,
        #[arg(long)]
        clear_group_mapping: bool,
        #[arg(long)]
        scopes: Option<String>,
        #[arg(long)]
        icon: Option<String>,
        #[arg(long)]
        no_icon: bool,
        #[arg(long)]
        json: bool,
    },
    /// Delete a provider and unlink every identity linked through it.
    Delete { slug: String },
    /// Show the provider's button on the sign-in page again.
    Enable { slug: String },
    /// Hide the provider and refuse sign-ins through it.
    Disable { slug: String },
}

/// Runs the command on the data dir of `config` (stdin for secrets, stdout for output).
pub fn run(cmd: UpstreamCmd, config: &Config, now: i64) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut out = std::io::stdout();
    execute(cmd, config, now, &mut input, &mut out)
}

fn read_secret(input: &mut dyn BufRead) -> anyhow::Result<Secret<String>> {
    let mut line = String::new();
    input
        .read_line(&mut line)
        .context("reading the client secret from standard input")?;
    let secret = line.trim_end_matches(['\r', '\n']).to_string();
    if secret.is_empty() {
        bail!("client_secret: standard input is empty");
    }
    Ok(Secret::new(secret))
}

/// `run` with explicit input and output (tests).
pub fn execute(
    cmd: UpstreamCmd,
    config: &Config,
    now: i64,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let (db, master) = crate::server::open(config)?;
    let public_url = config.public_url.as_str();
    let print = |out: &mut dyn Write,
                 p: &store::upstream::Provider,
                 json: bool|
     -> anyhow::Result<()> {
        if json {
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&providers::to_json(p, public_url))?
            )?;
        } else {
            writeln!(out, "slug:          {}", p.slug)?;
            writeln!(out, "name:          {}", p.display_name)?;
            writeln!(out, "kind:          {}", p.kind.as_str())?;
            if let Some(i) = &p.issuer {
                writeln!(out, "issuer:        {i}")?;
            }
            writeln!(out, "client_id:     {}", p.client_id)?;
            writeln!(out, "policy:        {}", p.policy.as_str())?;
            writeln!(out, "enabled:       {}", p.enabled)?;
            writeln!(out, "redirect_uri:  {}", callback_url(public_url))?;
            writeln!(
                out,
                "(register the redirect URI at the provider; the button shows on the sign-in page)"
            )?;
        }
        Ok(())
    };
    match cmd {
        UpstreamCmd::Add {
            slug,
            name,
            kind,
            preset,
            issuer,
            client_id,
            client_secret_stdin,
            policy,
            default_groups,
            map_groups,
            scopes,
            icon,
            disabled,
            json,
        } => {
            let client_secret = if client_secret_stdin {
                Some(read_secret(input)?)
            } else {
                None
            };
            let preset = preset.or(match (kind, slug.as_str(), issuer.as_deref()) {
                (Some(Kind::Github), _, _) | (None, "github", None) => Some(Preset::Github),
                (None | Some(Kind::Oidc), _, Some(providers::GOOGLE_ISSUER))
                | (None, "google", None) => Some(Preset::Google),
                _ => None,
            });
            let mut p = ProviderInput::new(
                &slug,
                kind.unwrap_or(Kind::Oidc),
                name.as_deref().unwrap_or(""),
                &client_id,
            );
            p.issuer = issuer;
            if let Some(preset) = preset {
                preset.apply(&mut p);
            }
            p.client_secret = client_secret;
            p.policy = policy;
            p.default_groups = default_groups;
            p.group_mapping = map_groups.into_iter().collect::<BTreeMap<_, _>>();
            p.scopes = scopes;
            p.icon = icon;
            p.enabled = !disabled;
            let created = db.try_write_blocking(|c| {
                providers::create(c, &master, p, None, now).map_err(anyhow::Error::from)
            })?;
            print(out, &created, json)
        }
        UpstreamCmd::List { json } => {
            let list = db.read_blocking(|c| store::upstream::list(c, false))?;
            if json {
                let arr: Vec<_> = list
                    .iter()
                    .map(|p| providers::to_json(p, public_url))
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&arr)?)?;
            } else if list.is_empty() {
                writeln!(
                    out,
                    "no upstream providers; add one with `portcullis upstream add`"
                )?;
            } else {
                writeln!(
                    out,
                    "{:<16} {:<16} {:<7} {:<20} {:<9} ISSUER",
                    "SLUG", "NAME", "KIND", "POLICY", "ENABLED"
                )?;
                for p in list {
                    writeln!(
                        out,
                        "{:<16} {:<16} {:<7} {:<20} {:<9} {}",
                        p.slug,
                        p.display_name,
                        p.kind.as_str(),
                        p.policy.as_str(),
                        if p.enabled { "yes" } else { "no" },
                        p.issuer.as_deref().unwrap_or("-")
                    )?;
                }
            }
            Ok(())
        }
        UpstreamCmd::Edit {
            slug,
            new_slug,
            name,
            issuer,
            client_id,
            client_secret_stdin,
            policy,
            default_groups,
            clear_default_groups,
            map_groups,
            clear_group_mapping,
            scopes,
            icon,
            no_icon,
            json,
        } => {
            let patch = ProviderPatch {
                slug: new_slug,
                display_name: name,
                icon: if no_icon { Some(None) } else { icon.map(Some) },
                issuer,
                client_id,
                client_secret: if client_secret_stdin {
                    Some(read_secret(input)?)
                } else {
                    None
                },
                scopes,
                enabled: None,
                policy,
                default_groups: if clear_default_groups || !default_groups.is_empty() {
                    Some(default_groups)
                } else {
                    None
                },
                group_mapping: if clear_group_mapping || !map_groups.is_empty() {
                    Some(map_groups.into_iter().collect())
                } else {
                    None
                },
            };
            let edited = db.try_write_blocking(|c| {
                providers::edit(c, &master, &slug, patch, None, now).map_err(anyhow::Error::from)
            })?;
            let Some(p) = edited else {
                bail!("no upstream provider {slug:?}");
            };
            print(out, &p, json)
        }
        UpstreamCmd::Delete { slug } => {
            let Some(links) = db.write_blocking(|c| providers::delete(c, &slug, None, now))? else {
                bail!("no upstream provider {slug:?}");
            };
            writeln!(out, "deleted {slug} ({links} linked identities removed)")?;
            Ok(())
        }
        UpstreamCmd::Enable { slug } => toggle(&db, &slug, true, now, out),
        UpstreamCmd::Disable { slug } => toggle(&db, &slug, false, now, out),
    }
}

fn toggle(
    db: &store::Db,
    slug: &str,
    enabled: bool,
    now: i64,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if db
        .write_blocking(|c| providers::set_enabled(c, slug, enabled, None, now))?
        .is_none()
    {
        bail!("no upstream provider {slug:?}");
    }
    writeln!(
        out,
        "{slug} is {}",
        if enabled { "enabled" } else { "disabled" }
    )?;
    Ok(())
}
