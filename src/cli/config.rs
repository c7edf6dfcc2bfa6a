//! `portcullis config check | example`.

use crate::config::Config;

#[derive(clap::Subcommand)]
pub enum ConfigCmd {
    /// Validate the configuration and print the effective values (secrets masked).
    Check,
    /// Print an annotated example configuration file.
    Example,
}

pub fn run(cmd: ConfigCmd, config: &Config) -> anyhow::Result<()> {
    match cmd {
        ConfigCmd::Check => {
            print!("{}", config.to_masked_toml());
            eprintln!("configuration is valid");
        }
        ConfigCmd::Example => print!("{}", Config::example()),
    }
    Ok(())
}
