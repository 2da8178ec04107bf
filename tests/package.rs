//! The Debian package: `cargo deb` (cargo-deb) packs the binary the tests already built, and
//! `dpkg-deb` shows what it installs: the binary, the systemd unit, the service user and its
//! directories, the example configuration under /etc/portcullis, and the man pages. The man
//! pages in `doc/man/` are what `portcullis man` generates now.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Builds the package from the test build's binary (the release command is in the README).
fn build_deb(out: &Path) -> PathBuf {
    let binary = Path::new(env!("CARGO_BIN_EXE_portcullis"));
    // <target>/debug/portcullis
    let target = binary.parent().and_then(Path::parent).unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let version = Command::new(&cargo).args(["deb", "--version"]).output();
    assert!(
        version.is_ok_and(|o| o.status.success()),
        "cargo-deb is missing: cargo install cargo-deb --locked (scripts/test-all does)"
    );
    run(Command::new(&cargo)
        .current_dir(ROOT)
        .env("CARGO_TARGET_DIR", target)
        .args([
            "deb",
            "--no-build",
            "--profile",
            "dev",
            "--fast",
            "--output",
        ])
        .arg(out));
    let debs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    assert_eq!(debs.len(), 1, "{debs:?}");
    debs.into_iter().next().unwrap()
}

#[test]
fn the_debian_package_installs_binary_unit_config_state_and_man_pages() {
    let out = tempfile::tempdir().unwrap();
    let deb = build_deb(out.path());

    let contents = run(Command::new("dpkg-deb").arg("-c").arg(&deb));
    let entry = |path: &str| {
        contents
            .lines()
            .find(|l| l.ends_with(&format!(" ./{path}")))
            .unwrap_or_else(|| panic!("{path} is not in the package:\n{contents}"))
            .to_string()
    };
    assert!(entry("usr/bin/portcullis").starts_with("-rwxr-xr-x"));
    for path in [
        "lib/systemd/system/portcullis.service",
        "usr/lib/sysusers.d/portcullis.conf",
        "usr/lib/tmpfiles.d/portcullis.conf",
        "etc/portcullis/portcullis.toml.example",
        "usr/share/man/man8/portcullis.8.gz",
        "usr/share/man/man8/portcullis-serve.8.gz",
        "usr/share/doc/portcullis/README.md",
    ] {
        assert!(entry(path).starts_with("-rw-r--r--"), "{path}");
    }

    let info = run(Command::new("dpkg-deb").arg("-I").arg(&deb));
    assert!(info.contains("Package: portcullis"), "{info}");
    assert!(info.contains("postinst"), "{info}");
    let control = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb")
        .arg("-e")
        .arg(&deb)
        .arg(control.path()));
    let conffiles = std::fs::read_to_string(control.path().join("conffiles")).unwrap();
    assert!(
        conffiles
            .lines()
            .any(|l| l == "/etc/portcullis/portcullis.toml.example"),
        "{conffiles}"
    );
    let postinst = std::fs::read_to_string(control.path().join("postinst")).unwrap();
    assert!(postinst.contains("systemd-sysusers portcullis.conf"));

    // What it unpacks: the unit as in the repository, the state directory declared, a
    // binary that runs and accepts the example configuration.
    let root = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(root.path()));
    let unit =
        std::fs::read_to_string(root.path().join("lib/systemd/system/portcullis.service")).unwrap();
    assert_eq!(
        unit,
        std::fs::read_to_string(Path::new(ROOT).join("systemd/portcullis.service")).unwrap()
    );
    let tmpfiles =
        std::fs::read_to_string(root.path().join("usr/lib/tmpfiles.d/portcullis.conf")).unwrap();
    assert!(
        tmpfiles
            .lines()
            .any(|l| l.starts_with("d /var/lib/portcullis") && l.contains("0700 portcullis")),
        "{tmpfiles}"
    );
    let sysusers =
        std::fs::read_to_string(root.path().join("usr/lib/sysusers.d/portcullis.conf")).unwrap();
    assert!(sysusers.lines().any(|l| l.starts_with("u portcullis ")));
    let binary = root.path().join("usr/bin/portcullis");
    assert!(run(Command::new(&binary).arg("--version")).starts_with("portcullis "));
    let checked = run(Command::new(&binary)
        .arg("check-config")
        .arg(root.path().join("etc/portcullis/portcullis.toml.example")));
    assert!(checked.trim_end().ends_with(": ok"), "{checked}");
}

#[test]
fn committed_man_pages_match_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    run(Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("man")
        .arg(dir.path()));
    let committed = Path::new(ROOT).join("doc/man");
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(
        names.contains(&"portcullis-serve.8".to_string()),
        "{names:?}"
    );
    let mut in_repo: Vec<String> = std::fs::read_dir(&committed)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    in_repo.sort();
    assert_eq!(names, in_repo, "regenerate: portcullis man doc/man");
    for name in names {
        assert_eq!(
            std::fs::read_to_string(dir.path().join(&name)).unwrap(),
            std::fs::read_to_string(committed.join(&name)).unwrap(),
            "{name} is stale; regenerate: cargo run -- man doc/man"
        );
    }
}
