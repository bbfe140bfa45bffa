//! Builds every provider crate under `providers/` to a WebAssembly component, so a
//! plain `cargo build` or `cargo test` on a fresh clone has them. The bundled providers
//! (not `providers/testing/*`) are embedded in the binary; the test-only ones are left
//! in the guest folder for the integration tests (`authhost::testing::GUEST_DIR`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a build script reports failure by panicking"
)]

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const TARGET: &str = "wasm32-wasip2";
const PROFILE: &str = "guest";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets this"));
    let root = manifest_dir
        .parent()
        .expect("host/ sits in the workspace")
        .to_path_buf();
    for watched in ["wit", "providers", "Cargo.lock", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    let bundled = provider_crates(&root.join("providers"));
    let testing = provider_crates(&root.join("providers/testing"));
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("guests");

    build_guests(&root, &target_dir, bundled.iter().chain(&testing));

    let guest_dir = target_dir.join(TARGET).join(PROFILE);
    let mut code =
        String::from("/// Provider components built into this binary: (file name, bytes).\n");
    code.push_str("pub const BUNDLED: &[(&str, &[u8])] = &[\n");
    for name in &bundled {
        let file = guest_dir.join(format!("{}.wasm", name.replace('-', "_")));
        writeln!(
            code,
            "    ({:?}, include_bytes!({:?})),",
            format!("{name}.wasm"),
            file
        )
        .expect("writing to a String");
    }
    code.push_str("];\n");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets this"));
    fs::write(out.join("bundled.rs"), code).expect("write bundled.rs");
    println!("cargo:rustc-env=AUTHHOST_GUEST_DIR={}", guest_dir.display());
}

/// Package names of the component crates directly under `dir` (each a folder with a
/// Cargo.toml whose crate type is cdylib).
fn provider_crates(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| fs::read_to_string(entry.path().join("Cargo.toml")).ok())
        .filter(|manifest| manifest.contains("cdylib"))
        .filter_map(|manifest| package_name(&manifest))
        .collect();
    names.sort();
    names
}

fn package_name(manifest: &str) -> Option<String> {
    manifest
        .lines()
        .find_map(|line| line.trim().strip_prefix("name = "))
        .map(|quoted| quoted.trim_matches('"').to_string())
}

/// One nested cargo for all guests, in its own target folder so it never waits on the
/// outer build's lock, with the outer build's flags removed (they are for the host).
fn build_guests<'a>(root: &Path, target_dir: &Path, packages: impl Iterator<Item = &'a String>) {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args(["build", "--target", TARGET, "--profile", PROFILE])
        .arg("--target-dir")
        .arg(target_dir);
    for package in packages {
        cmd.args(["-p", package]);
    }
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        let outer_only = key == "RUSTFLAGS"
            || key == "CARGO_ENCODED_RUSTFLAGS"
            || key == "RUSTC_WRAPPER"
            || key == "RUSTC_WORKSPACE_WRAPPER"
            || key == "CARGO_TARGET_DIR"
            || key.starts_with("CARGO_BUILD_")
            || key.starts_with("CARGO_PROFILE_")
            || key.starts_with("CARGO_TARGET_")
            || key.starts_with("CARGO_CFG_")
            || key.starts_with("CARGO_FEATURE_")
            || key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_MANIFEST_");
        if outer_only {
            cmd.env_remove(key.as_ref());
        }
    }
    // The child's output goes to our stderr, which cargo shows when the build fails.
    cmd.stdout(Stdio::from(std::io::stderr()));
    let status = cmd.status().expect("run cargo for the provider components");
    if !status.success() {
        panic!(
            "building the provider components failed (see above). \
             Is the target installed? `rustup target add {TARGET}`"
        );
    }
}
