//! `save` replaces the file atomically: mode 0600, validation before any write, no temp
//! files left behind, the old file byte-identical after a refused save.

// Test helpers outside #[test] functions may fail loudly too.
#![allow(clippy::expect_used, clippy::panic)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use portcullis_config::{Config, ConfigError, load, save};

/// A fresh empty directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "portcullis-config-it-{name}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    /// Every file name in the directory, sorted.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.0)
            .expect("readable")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn example() -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/portcullis.toml");
    load(path).expect("the example is valid").config
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("exists").permissions().mode() & 0o777
}

#[test]
fn save_writes_mode_0600_and_leaves_only_the_file() {
    let dir = TempDir::new("fresh");
    let path = dir.0.join("portcullis.toml");
    let config = example();
    let warnings = save(&config, &path).expect("saves");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(mode(&path), 0o600);
    assert_eq!(dir.names(), ["portcullis.toml"]);
    let loaded = load(&path).expect("loads");
    assert_eq!(loaded.config, config);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn a_failed_validation_leaves_the_old_file_byte_identical() {
    let dir = TempDir::new("refused");
    let path = dir.0.join("portcullis.toml");
    let original = fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/portcullis.toml"))
        .expect("example readable");
    fs::write(&path, &original).expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).expect("chmod");

    let mut broken = example();
    broken.radius.servers[1].port = 0;
    broken.local_users[0].roles.push("Root".into());
    let error = save(&broken, &path).expect_err("invalid config is refused");
    let ConfigError::Invalid(errors) = &error else {
        panic!("expected Invalid, got {error:?}");
    };
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "radius.servers[1].port: 0 is outside 1..=65535",
            "local_users[0].roles[1]: \"Root\" is not a defined role (add it to `roles` first)",
        ]
    );
    assert_eq!(fs::read(&path).expect("still there"), original);
    assert_eq!(mode(&path), 0o640, "not even the mode changed");
    assert_eq!(dir.names(), ["portcullis.toml"]);
}

#[test]
fn a_successful_save_replaces_the_content_and_tightens_the_mode() {
    let dir = TempDir::new("replace");
    let path = dir.0.join("portcullis.toml");
    fs::write(&path, "# hand-written\n").expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
    let mut config = example();
    config.radius.settings.max_number_of_tries = 7;
    save(&config, &path).expect("saves");
    assert_eq!(mode(&path), 0o600);
    assert_eq!(load(&path).expect("loads").config, config);
    assert!(
        !fs::read_to_string(&path)
            .expect("text")
            .contains("hand-written")
    );
    assert_eq!(dir.names(), ["portcullis.toml"]);
}

#[test]
fn an_io_failure_leaves_no_temp_file() {
    let dir = TempDir::new("iofail");
    // A directory sits where the file should go: the rename fails after the temp file was
    // written and synced.
    let path = dir.0.join("portcullis.toml");
    fs::create_dir(&path).expect("mkdir");
    fs::write(path.join("inside"), "keep").expect("write");
    let error = save(&example(), &path).expect_err("rename over a directory fails");
    assert!(matches!(error, ConfigError::Io { .. }), "{error:?}");
    assert!(
        error.to_string().starts_with("cannot rename to "),
        "{error}"
    );
    assert_eq!(dir.names(), ["portcullis.toml"]);
    assert_eq!(
        fs::read_to_string(path.join("inside")).expect("kept"),
        "keep"
    );
}

#[test]
fn repeated_saves_leave_no_temp_files() {
    let dir = TempDir::new("repeat");
    let path = dir.0.join("portcullis.toml");
    let mut config = example();
    for dead_time in 0..20 {
        config.authentication.dead_time = dead_time;
        save(&config, &path).expect("saves");
    }
    assert_eq!(dir.names(), ["portcullis.toml"]);
    assert_eq!(
        load(&path).expect("loads").config.authentication.dead_time,
        19
    );
}

#[test]
fn the_saved_file_holds_the_real_secrets() {
    let dir = TempDir::new("secrets");
    let path = dir.0.join("portcullis.toml");
    save(&example(), &path).expect("saves");
    let text = fs::read_to_string(&path).expect("text");
    assert!(text.contains("secret = \"replace-with-a-long-random-secret-1\""));
    assert!(!text.contains("****************"));
}
