//! Link-time layout of the release binary, for idle memory (issue: idle RSS under 15 MB).
//!
//! The kernel maps an executable's code in 64 KiB windows around every page it touches, so a
//! server whose start-up and idle code is spread over all 13 MB of `.text` keeps ~10 MB of it
//! resident. `packaging/startup-symbols.txt` lists the functions that run at start and for
//! light requests, in the order they first run; the linker places them together at the front.
//! The list is made by `benches/startup_symbols.sh`. Names it no longer matches (another
//! rustc, changed dependencies, moved code) are ignored by the linker: a stale list costs
//! memory, never correctness. So staleness fails elsewhere, loudly: the test
//! `the_release_link_order_is_not_stale` (every `./test.sh`) checks the rustc, the
//! dependency versions and this crate's functions the list names; `benches/run.sh` fails when
//! idle memory is over its target.
//!
//! Applied only where the linker is known to be LLD (rust-lld is the default linker of
//! x86_64-unknown-linux-gnu since Rust 1.90). `PORTCULLIS_NO_LINK_ORDER=1` turns it off.

use std::env;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=packaging/startup-symbols.txt");
    println!("cargo:rerun-if-env-changed=PORTCULLIS_NO_LINK_ORDER");
    println!("cargo:rerun-if-env-changed=PORTCULLIS_LINK_MAP");
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER");

    let target = env::var("TARGET").unwrap_or_default();
    let release = env::var("PROFILE").is_ok_and(|p| p == "release");
    let opted_out = env::var_os("PORTCULLIS_NO_LINK_ORDER").is_some();
    // Someone chose another linker: its flags may differ from LLD's.
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let other_linker = env::var_os("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_some()
        || ["fuse-ld", "linker-features", "linker-flavor", "-Clinker="]
            .iter()
            .any(|f| flags.contains(f));
    if target != "x86_64-unknown-linux-gnu" || !release || opted_out || other_linker {
        return;
    }

    let manifest = env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let order = format!("{manifest}/packaging/startup-symbols.txt");
    if let Ok(list) = std::fs::read_to_string(&order) {
        println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={order}");
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
        // Rust symbol names change with the compiler: say so rather than lose memory silently.
        let made_with = list
            .lines()
            .take(5)
            .find_map(|l| l.split("with rustc ").nth(1))
            .and_then(|v| v.split_whitespace().next())
            .map(|v| v.trim_end_matches('.').to_string());
        let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        let ours = Command::new(rustc)
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|v| v.split_whitespace().nth(1).map(str::to_string));
        if let (Some(made_with), Some(ours)) = (made_with, ours)
            && made_with != ours
        {
            println!(
                "cargo:warning=packaging/startup-symbols.txt was made with rustc {made_with}, this \
                 is rustc {ours}: idle memory will be ~5 MB higher until \
                 benches/startup_symbols.sh is run again"
            );
        }
    }

    // benches/startup_symbols.sh reads the addresses of functions in the stripped binary from
    // the linker's map: an unstripped build would be another profile, with other symbol names.
    if let Ok(map) = env::var("PORTCULLIS_LINK_MAP") {
        println!("cargo:rustc-link-arg-bins=-Wl,-Map={map}");
        // Mangled names in the map, as the ordering file needs them.
        println!("cargo:rustc-link-arg-bins=-Wl,--no-demangle");
    }

    // Compact relative relocations (DT_RELR): the loader reads ~10 KB instead of ~530 KB of
    // .rela.dyn at every start. The binary then needs glibc 2.36 or newer (Debian 12+), so
    // only when the glibc it is built against is that new.
    if glibc_at_least(2, 36) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// The build machine's glibc version, from `getconf GNU_LIBC_VERSION` ("glibc 2.36").
fn glibc_at_least(major: u32, minor: u32) -> bool {
    let Ok(out) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(version) = text.split_whitespace().nth(1) else {
        return false;
    };
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    found >= (major, minor)
}
