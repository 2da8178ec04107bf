//! Errors and warnings of loading, validating and saving a configuration.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a configuration could not be loaded, validated or saved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file system call failed; `path` is the file or directory it was about.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done: "read", "create", "write", "sync", "rename to", ...
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The text is not TOML, or does not fit the schema (wrong type, unknown field, value that
    /// does not fit the field's type). `message` is toml's, with line, column and a snippet.
    #[error("{}{message}", path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    Parse {
        /// The file the text came from, when it came from a file.
        path: Option<PathBuf>,
        /// toml's description of the problem, including the line and column.
        message: String,
    },
    /// The configuration could not be written as TOML.
    #[error("cannot write the configuration as TOML: {0}")]
    Serialize(String),
    /// The configuration parsed but breaks one or more rules; every broken rule is listed.
    #[error("{}", Invalid(.0))]
    Invalid(Vec<FieldError>),
}

/// Formats the list of a [`ConfigError::Invalid`], one error per line.
struct Invalid<'a>(&'a [FieldError]);

impl fmt::Display for Invalid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.len();
        write!(
            f,
            "invalid configuration ({count} error{}):",
            if count == 1 { "" } else { "s" }
        )?;
        for error in self.0 {
            write!(f, "\n  {error}")?;
        }
        Ok(())
    }
}

/// One broken rule: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Where the field is, in TOML terms with 0-based array indices:
    /// `radius.servers[1].port`.
    pub path: String,
    /// What is wrong with it: `0 is outside 1..=65535`.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Something legal but unwise (a short secret, a sequence naming a method without servers).
/// Warnings never stop a configuration from loading or saving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Where the field is, in the same form as [`FieldError::path`].
    pub path: String,
    /// What is unwise about it.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Collects every error and warning of one validation pass.
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// Broken rules found so far.
    pub(crate) errors: Vec<FieldError>,
    /// Unwise settings found so far.
    pub(crate) warnings: Vec<Warning>,
}

impl Report {
    /// Records a broken rule at `path`.
    pub(crate) fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Records an unwise setting at `path`.
    pub(crate) fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Warning {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Records an error unless `low <= value <= high`.
    pub(crate) fn range<T>(&mut self, path: impl Into<String>, value: T, low: T, high: T)
    where
        T: PartialOrd + fmt::Display,
    {
        if value < low || value > high {
            self.error(path, format!("{value} is outside {low}..={high}"));
        }
    }

    /// The warnings if no rule was broken, else every broken rule.
    pub(crate) fn finish(self) -> Result<Vec<Warning>, ConfigError> {
        if self.errors.is_empty() {
            Ok(self.warnings)
        } else {
            Err(ConfigError::Invalid(self.errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_lists_every_error_on_its_own_line() {
        let mut report = Report::default();
        report.range("radius.servers[1].port", 0u16, 1, 65535);
        report.range("radius.settings.max_number_of_tries", 11u32, 1, 10);
        report.range("tacacs.settings.connection_timeout", 5u32, 1, 60);
        let error = report.finish().expect_err("two values are out of range");
        assert_eq!(
            error.to_string(),
            "invalid configuration (2 errors):\n  radius.servers[1].port: 0 is outside \
             1..=65535\n  radius.settings.max_number_of_tries: 11 is outside 1..=10"
        );
    }

    #[test]
    fn a_single_error_is_not_plural() {
        let mut report = Report::default();
        report.error("roles[0]", "must not be empty");
        let error = report.finish().expect_err("one error");
        assert_eq!(
            error.to_string(),
            "invalid configuration (1 error):\n  roles[0]: must not be empty"
        );
    }

    #[test]
    fn warnings_alone_do_not_fail() {
        let mut report = Report::default();
        report.warn("radius.servers[0].secret", "short");
        let warnings = report.finish().expect("warnings are not errors");
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].to_string(), "radius.servers[0].secret: short");
    }

    #[test]
    fn parse_and_io_errors_name_the_file() {
        let parse = ConfigError::Parse {
            path: Some(PathBuf::from("/etc/portcullis/portcullis.toml")),
            message: "boom".into(),
        };
        assert_eq!(parse.to_string(), "/etc/portcullis/portcullis.toml: boom");
        let parse = ConfigError::Parse {
            path: None,
            message: "boom".into(),
        };
        assert_eq!(parse.to_string(), "boom");
        let io = ConfigError::Io {
            action: "read",
            path: PathBuf::from("/nonexistent"),
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        assert!(io.to_string().starts_with("cannot read /nonexistent: "));
    }
}
