//! What a bad configuration looks like to the operator.
//!
//! Every problem names the full dotted key (`mail.smtp.port`,
//! `devices[2].source`) and a reason that says the expected form, so
//! `printwatch config check` and a service failing at start print the same
//! lines. Reasons never carry a secret's value: the code that builds them
//! only ever sees secret *keys* and file paths.

use std::fmt;
use std::path::PathBuf;

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The full dotted path of the key, e.g. `mail.smtp.prot`,
    /// `devices[2].source`, `alerts.items.toner_emtpy`. Empty when the
    /// problem is the file as a whole (unreadable, TOML syntax).
    pub key: String,
    /// Why, naming the expected form.
    pub reason: String,
}

impl Problem {
    /// A problem at `key`.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Problem {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.key, self.reason)
        }
    }
}

/// A configuration that cannot be used, with every problem found.
///
/// `Display` writes one line per problem: `<file>: <key>: <reason>`
/// (without the file part when the text did not come from a file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigError {
    /// The file the configuration came from, if any.
    pub file: Option<PathBuf>,
    /// Every problem, in the order found (file order, then cross-checks).
    pub problems: Vec<Problem>,
}

impl ConfigError {
    /// The exit code a binary uses for a bad configuration (SPEC §3.1).
    pub const EXIT_CODE: u8 = 2;

    pub(crate) fn new(file: Option<PathBuf>, problems: Vec<Problem>) -> Self {
        ConfigError { file, problems }
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            if let Some(file) = &self.file {
                out.push_str(&file.display().to_string());
                out.push_str(": ");
            }
            out.push_str(&p.to_string());
        }
        if self.problems.is_empty() {
            out.push_str("invalid configuration");
        }
        out
    }
}
