//! `portcullis upstream …` — manage upstream identity providers from the command line.
//! `main.rs` holds the `Upstream` variant and calls `run`; everything else lives here.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use anyhow::{Context, bail};

use crate::config::Config;
use crate::crypto::master_key::MasterKey;
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
    Add(UpstreamAddArgs),
    /// List providers.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Change a provider's settings (only the options given).
    Edit(UpstreamEditArgs),
    /// Delete a provider and unlink every identity linked through it.
    Delete { slug: String },
    /// Show the provider's button on the sign-in page again.
    Enable { slug: String },
    /// Hide the provider and refuse sign-ins through it.
    Disable { slug: String },
}

#[derive(clap::Args, Debug)]
pub struct UpstreamAddArgs {
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
}

#[derive(clap::Args, Debug)]
pub struct UpstreamEditArgs {
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
    let ctx = Ctx {
        db: &db,
        master: &master,
        public_url: config.public_url.as_str(),
        now,
    };
    match cmd {
        UpstreamCmd::Add(a) => add(&ctx, a, input, out),
        UpstreamCmd::List { json } => list(&ctx, json, out),
        UpstreamCmd::Edit(a) => edit(&ctx, a, input, out),
        UpstreamCmd::Delete { slug } => delete(&ctx, &slug, out),
        UpstreamCmd::Enable { slug } => toggle(&db, &slug, true, now, out),
        UpstreamCmd::Disable { slug } => toggle(&db, &slug, false, now, out),
    }
}

/// What every subcommand works with: the opened database and master key, the public URL
/// (for the redirect URI it prints) and the time of the command.
struct Ctx<'a> {
    db: &'a store::Db,
    master: &'a MasterKey,
    public_url: &'a str,
    now: i64,
}

/// Prints one provider: as JSON, or as aligned lines ending with the redirect URI to register.
fn print_provider(
    out: &mut dyn Write,
    p: &store::upstream::Provider,
    json: bool,
    public_url: &str,
) -> anyhow::Result<()> {
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
}

/// The preset an `add` implies when none is given: GitHub by kind or slug, Google by issuer
/// or slug.
fn implied_preset(a: &UpstreamAddArgs) -> Option<Preset> {
    a.preset
        .or(match (a.kind, a.slug.as_str(), a.issuer.as_deref()) {
            (Some(Kind::Github), _, _) | (None, "github", None) => Some(Preset::Github),
            (None | Some(Kind::Oidc), _, Some(providers::GOOGLE_ISSUER))
            | (None, "google", None) => Some(Preset::Google),
            _ => None,
        })
}

/// `upstream add`: reads the secret (if asked), fills in the preset, creates the provider and
/// prints it.
fn add(
    ctx: &Ctx<'_>,
    a: UpstreamAddArgs,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let client_secret = if a.client_secret_stdin {
        Some(read_secret(input)?)
    } else {
        None
    };
    let preset = implied_preset(&a);
    let mut p = ProviderInput::new(
        &a.slug,
        a.kind.unwrap_or(Kind::Oidc),
        a.name.as_deref().unwrap_or(""),
        &a.client_id,
    );
    p.issuer = a.issuer;
    if let Some(preset) = preset {
        preset.apply(&mut p);
    }
    p.client_secret = client_secret;
    p.policy = a.policy;
    p.default_groups = a.default_groups;
    p.group_mapping = a.map_groups.into_iter().collect::<BTreeMap<_, _>>();
    p.scopes = a.scopes;
    p.icon = a.icon;
    p.enabled = !a.disabled;
    let created = ctx.db.try_write_blocking(|c| {
        providers::create(c, ctx.master, p, None, ctx.now).map_err(anyhow::Error::from)
    })?;
    print_provider(out, &created, a.json, ctx.public_url)
}

/// `upstream list`: a JSON array, a hint when there are none, or a table.
fn list(ctx: &Ctx<'_>, json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let list = ctx.db.read_blocking(|c| store::upstream::list(c, false))?;
    if json {
        let arr: Vec<_> = list
            .iter()
            .map(|p| providers::to_json(p, ctx.public_url))
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

/// The change `upstream edit` asks for: only the options given (the secret read from `input`);
/// a list option, or its clear flag, replaces the whole list.
fn edit_patch(a: UpstreamEditArgs, input: &mut dyn BufRead) -> anyhow::Result<ProviderPatch> {
    Ok(ProviderPatch {
        slug: a.new_slug,
        display_name: a.name,
        icon: if a.no_icon {
            Some(None)
        } else {
            a.icon.map(Some)
        },
        issuer: a.issuer,
        client_id: a.client_id,
        client_secret: if a.client_secret_stdin {
            Some(read_secret(input)?)
        } else {
            None
        },
        scopes: a.scopes,
        enabled: None,
        policy: a.policy,
        default_groups: if a.clear_default_groups || !a.default_groups.is_empty() {
            Some(a.default_groups)
        } else {
            None
        },
        group_mapping: if a.clear_group_mapping || !a.map_groups.is_empty() {
            Some(a.map_groups.into_iter().collect())
        } else {
            None
        },
    })
}

/// `upstream edit`: applies the patch and prints the provider as it now is.
fn edit(
    ctx: &Ctx<'_>,
    a: UpstreamEditArgs,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let (slug, json) = (a.slug.clone(), a.json);
    let patch = edit_patch(a, input)?;
    let edited = ctx.db.try_write_blocking(|c| {
        providers::edit(c, ctx.master, &slug, patch, None, ctx.now).map_err(anyhow::Error::from)
    })?;
    let Some(p) = edited else {
        bail!("no upstream provider {slug:?}");
    };
    print_provider(out, &p, json, ctx.public_url)
}

/// `upstream delete`: removes the provider and says how many linked identities went with it.
fn delete(ctx: &Ctx<'_>, slug: &str, out: &mut dyn Write) -> anyhow::Result<()> {
    let Some(links) = ctx
        .db
        .write_blocking(|c| providers::delete(c, slug, None, ctx.now))?
    else {
        bail!("no upstream provider {slug:?}");
    };
    writeln!(out, "deleted {slug} ({links} linked identities removed)")?;
    Ok(())
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
