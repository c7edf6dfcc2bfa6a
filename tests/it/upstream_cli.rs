//! `portcullis upstream …` through `upstream::cli::execute` (the same function `main` calls):
//! presets, validation, the sealed secret, edit, enable/disable and delete.

use portcullis::cli::upstream::{UpstreamCmd, execute};
use portcullis::config::Config;
use portcullis::ops::upstream_providers;
use portcullis::store;

#[derive(clap::Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: UpstreamCmd,
}

fn run(config: &Config, args: &[&str], stdin: &str) -> anyhow::Result<String> {
    use clap::Parser;
    let mut argv = vec!["upstream"];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv)?;
    let mut input = std::io::Cursor::new(stdin.as_bytes().to_vec());
    let mut out = Vec::new();
    execute(cli.cmd, config, 1_800_000_000, &mut input, &mut out)?;
    Ok(String::from_utf8(out).unwrap())
}

#[test]
fn add_list_edit_disable_delete() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::support::test_config(dir.path(), 8080);

    let out = run(
        &config,
        &[
            "add",
            "--slug",
            "google",
            "--client-id",
            "123.apps.googleusercontent.com",
            "--client-secret-stdin",
            "--policy",
            "link_verified_email",
            "--default-group",
            "family",
            "--map-group",
            "staff=editors",
        ],
        "GOCSPX-secret\n",
    )
    .unwrap();
    assert!(
        out.contains("redirect_uri:  http://127.0.0.1:8080/login/upstream/callback"),
        "{out}"
    );
    assert!(
        out.contains("issuer:        https://accounts.google.com"),
        "{out}"
    );

    let out = run(
        &config,
        &["add", "--slug", "github", "--client-id", "Iv1.x"],
        "",
    )
    .unwrap();
    assert!(out.contains("kind:          github"), "{out}");

    // Generic OIDC needs an issuer, and slugs are checked.
    let e = run(
        &config,
        &[
            "add",
            "--slug",
            "corp",
            "--name",
            "Corp",
            "--client-id",
            "c",
        ],
        "",
    )
    .unwrap_err();
    assert!(e.to_string().contains("issuer"), "{e}");
    let e = run(
        &config,
        &[
            "add",
            "--slug",
            "Corp ID",
            "--name",
            "Corp",
            "--issuer",
            "https://id.example.com",
            "--client-id",
            "c",
        ],
        "",
    )
    .unwrap_err();
    assert!(e.to_string().contains("slug"), "{e}");
    let e = run(
        &config,
        &[
            "add",
            "--slug",
            "corp",
            "--name",
            "Corp",
            "--issuer",
            "http://id.example.com",
            "--client-id",
            "c",
        ],
        "",
    )
    .unwrap_err();
    assert!(e.to_string().contains("https"), "{e}");

    let list: serde_json::Value =
        serde_json::from_str(&run(&config, &["list", "--json"], "").unwrap()).unwrap();
    let google = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["slug"] == "google")
        .unwrap();
    assert_eq!(google["kind"], "oidc");
    assert_eq!(google["policy"], "link_verified_email");
    assert_eq!(google["has_client_secret"], true);
    assert_eq!(google["default_groups"], serde_json::json!(["family"]));
    assert_eq!(google["group_mapping"]["staff"], "editors");
    assert!(
        !list.to_string().contains("GOCSPX"),
        "the secret is never printed"
    );

    // The secret is stored sealed and opens with the master key.
    let (db, key) = portcullis::server::open(&config).unwrap();
    let p = db
        .read_blocking(|c| store::upstream::by_slug(c, "google"))
        .unwrap()
        .unwrap();
    assert!(!p.client_secret_sealed.clone().unwrap().contains("GOCSPX"));
    assert_eq!(
        upstream_providers::client_secret(&key, &p)
            .unwrap()
            .unwrap()
            .expose(),
        "GOCSPX-secret"
    );

    run(
        &config,
        &[
            "edit",
            "google",
            "--name",
            "Google Workspace",
            "--policy",
            "create",
            "--client-secret-stdin",
        ],
        "new-secret\n",
    )
    .unwrap();
    let p = db
        .read_blocking(|c| store::upstream::by_slug(c, "google"))
        .unwrap()
        .unwrap();
    assert_eq!(p.display_name, "Google Workspace");
    assert_eq!(p.policy, store::upstream::Policy::Create);
    assert_eq!(
        upstream_providers::client_secret(&key, &p)
            .unwrap()
            .unwrap()
            .expose(),
        "new-secret"
    );

    assert!(
        run(&config, &["disable", "github"], "")
            .unwrap()
            .contains("disabled")
    );
    assert!(
        db.read_blocking(|c| store::upstream::list(c, true))
            .unwrap()
            .iter()
            .all(|p| p.slug != "github")
    );
    run(&config, &["enable", "github"], "").unwrap();
    assert!(
        run(&config, &["delete", "github"], "")
            .unwrap()
            .contains("deleted github")
    );
    assert!(run(&config, &["delete", "github"], "").is_err());
    let table = run(&config, &["list"], "").unwrap();
    assert!(
        table.contains("google") && !table.contains("github"),
        "{table}"
    );
}
