//! Reading the configuration file and replacing it atomically.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::process;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{ConfigError, Warning};
use crate::{Config, Loaded};

/// Where the daemon looks for its configuration unless told otherwise.
pub const DEFAULT_PATH: &str = "/etc/portcullis/portcullis.toml";

/// The file holds shared secrets and password hashes: owner read/write only.
const MODE: u32 = 0o600;

/// Makes temp file names unique among concurrent saves of one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Reads, parses and validates the file at `path`. A file that others may read (mode wider
/// than 0600) loads with a warning at path `file`.
pub fn load(path: impl AsRef<Path>) -> Result<Loaded, ConfigError> {
    let path = path.as_ref();
    let text = fs::read_to_string(path).map_err(|source| ConfigError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    let mut loaded = Config::from_toml(&text).map_err(|error| match error {
        ConfigError::Parse { message, .. } => ConfigError::Parse {
            path: Some(path.to_path_buf()),
            message,
        },
        other => other,
    })?;
    if let Some(warning) = mode_warning(path) {
        loaded.warnings.push(warning);
    }
    Ok(loaded)
}

/// Validates `config` and replaces the file at `path` with it, atomically: the TOML goes to
/// a temp file (mode 0600) in the same directory, which is fsynced, renamed over `path`, and
/// the directory fsynced so the rename survives a crash. If validation or any step up to the
/// rename fails, `path` is untouched and the temp file removed. A symlink at `path` is
/// followed, so the file it points to is replaced. Returns the validation warnings.
pub fn save(config: &Config, path: impl AsRef<Path>) -> Result<Vec<Warning>, ConfigError> {
    let warnings = config.validate()?;
    let text = config.to_toml()?;
    let path = path.as_ref();
    let target = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    write_atomically(&target, text.as_bytes())?;
    Ok(warnings)
}

/// Replaces `target` with `bytes` through a temp file; see [`save`].
fn write_atomically(target: &Path, bytes: &[u8]) -> Result<(), ConfigError> {
    let io_error = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source: io::Error| ConfigError::Io {
            action,
            path,
            source,
        }
    };
    let Some(name) = target.file_name() else {
        return Err(ConfigError::Io {
            action: "write",
            path: target.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "not a file name"),
        });
    };
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let temp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let file = create_private(&temp).map_err(io_error("create", &temp))?;
    let written = fill(file, bytes)
        .map_err(io_error("write", &temp))
        .and_then(|()| fs::rename(&temp, target).map_err(io_error("rename to", target)));
    if let Err(error) = written {
        // Best effort: the error being returned is the one that matters.
        let _ = fs::remove_file(&temp);
        return Err(error);
    }
    sync_dir(dir).map_err(io_error("sync", dir))
}

/// Removes the temp files an interrupted [`save`] of `target` left beside it (a crash or
/// SIGKILL between creating the temp file and renaming it). They hold the configuration,
/// secrets included. Call it at start-up, before anything saves. Returns how many it removed.
pub fn remove_leftovers(target: &Path) -> io::Result<usize> {
    let Some(name) = target.file_name() else {
        return Ok(0);
    };
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Creates a new file readable by its owner only. `create_new` refuses to follow a symlink
/// planted at the temp name.
fn create_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(MODE);
    }
    let file = options.open(path)?;
    // The umask can only narrow the creation mode; set it exactly in case it was odd.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(MODE))?;
    }
    Ok(file)
}

/// Writes everything and forces it to disk before the rename makes it visible.
fn fill(mut file: File, bytes: &[u8]) -> io::Result<()> {
    file.write_all(bytes)?;
    file.sync_all()
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// A warning when group or others may access the file at `path`.
fn mode_warning(path: &Path) -> Option<Warning> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then(|| Warning {
            path: "file".into(),
            message: format!(
                "{} has mode {mode:04o}; it holds secrets, make it {MODE:04o}",
                path.display()
            ),
        })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    /// The temp files [`save`] would leave in `dir` for `target` if it crashed mid-write; used
    /// by tests to prove none are left behind.
    fn leftovers(dir: &Path, target: &str) -> Vec<PathBuf> {
        let prefix = format!(".{target}.tmp-");
        fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.path())
                    .filter(|p| {
                        p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A fresh empty directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let path = std::env::temp_dir().join(format!(
                "portcullis-config-{name}-{}-{}",
                process::id(),
                TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(&path).expect("create temp dir");
            Self(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn save_then_load_round_trips_with_mode_0600() {
        let dir = TempDir::new("roundtrip");
        let path = dir.0.join("portcullis.toml");
        let warnings = save(&Config::default(), &path).expect("saves");
        assert!(warnings.is_empty());
        let mode = fs::metadata(&path).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let loaded = load(&path).expect("loads");
        assert_eq!(loaded.config, Config::default());
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        assert!(leftovers(&dir.0, "portcullis.toml").is_empty());
    }

    #[test]
    fn save_replaces_and_keeps_0600() {
        let dir = TempDir::new("replace");
        let path = dir.0.join("p.toml");
        fs::write(&path, "# old\n").expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        let mut config = Config::default();
        config.authentication.dead_time = 5;
        save(&config, &path).expect("saves");
        let mode = fs::metadata(&path).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            load(&path).expect("loads").config.authentication.dead_time,
            5
        );
    }

    #[test]
    fn a_failed_rename_removes_the_temp_file() {
        let dir = TempDir::new("rename");
        // A non-empty directory where the file should be: the rename fails.
        let target = dir.0.join("cfg.toml");
        fs::create_dir(&target).expect("mkdir");
        fs::write(target.join("keep"), "x").expect("write");
        let error = save(&Config::default(), &target).expect_err("cannot rename over a dir");
        let ConfigError::Io { action, path, .. } = &error else {
            panic!("expected Io, got {error:?}");
        };
        assert_eq!(*action, "rename to");
        assert_eq!(path, &target);
        assert!(leftovers(&dir.0, "cfg.toml").is_empty());
        assert_eq!(fs::read_to_string(target.join("keep")).expect("kept"), "x");
    }

    #[test]
    fn a_missing_directory_is_an_io_error_naming_the_temp_path() {
        let dir = TempDir::new("missing");
        let target = dir.0.join("absent").join("cfg.toml");
        let error = save(&Config::default(), &target).expect_err("no such directory");
        let ConfigError::Io {
            action,
            path,
            source,
        } = &error
        else {
            panic!("expected Io, got {error:?}");
        };
        assert_eq!(*action, "create");
        assert!(path.starts_with(dir.0.join("absent")), "{}", path.display());
        assert_eq!(source.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn load_names_the_file_in_errors_and_warns_about_wide_modes() {
        let dir = TempDir::new("load");
        let missing = dir.0.join("nope.toml");
        let error = load(&missing).expect_err("missing");
        assert!(matches!(&error, ConfigError::Io { action: "read", path, .. } if path == &missing));

        let bad = dir.0.join("bad.toml");
        fs::write(&bad, "[radius\n").expect("write");
        let error = load(&bad).expect_err("not TOML");
        assert!(
            matches!(&error, ConfigError::Parse { path: Some(p), .. } if p == &bad),
            "{error:?}"
        );
        assert!(error.to_string().starts_with(&bad.display().to_string()));

        let open = dir.0.join("open.toml");
        fs::write(&open, "").expect("write");
        fs::set_permissions(&open, fs::Permissions::from_mode(0o644)).expect("chmod");
        let loaded = load(&open).expect("valid");
        assert_eq!(loaded.warnings.len(), 1);
        assert_eq!(loaded.warnings[0].path, "file");
        assert!(
            loaded.warnings[0].message.contains("mode 0644"),
            "{}",
            loaded.warnings[0]
        );
    }

    #[test]
    fn save_follows_a_symlink() {
        let dir = TempDir::new("symlink");
        let real = dir.0.join("real.toml");
        let link = dir.0.join("link.toml");
        fs::write(&real, "").expect("write");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        let mut config = Config::default();
        config.authentication.fallback_on_reject = true;
        save(&config, &link).expect("saves");
        assert!(
            fs::symlink_metadata(&link)
                .expect("link")
                .file_type()
                .is_symlink()
        );
        assert!(
            load(&real)
                .expect("loads")
                .config
                .authentication
                .fallback_on_reject
        );
    }

    #[test]
    fn leftovers_of_an_interrupted_save_are_removed() {
        let dir = TempDir::new("leftovers");
        let target = dir.0.join("portcullis.toml");
        fs::write(&target, "").expect("target");
        fs::write(dir.0.join(".portcullis.toml.tmp-1-2"), "secret").expect("leftover");
        fs::write(dir.0.join("other.toml"), "").expect("other");
        assert_eq!(remove_leftovers(&target).expect("remove"), 1);
        assert!(leftovers(&dir.0, "portcullis.toml").is_empty());
        assert!(dir.0.join("other.toml").exists());
        assert!(target.exists());
        assert_eq!(
            remove_leftovers(&dir.0.join("missing/x.toml")).expect("none"),
            0
        );
    }
}
