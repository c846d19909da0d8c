//! Secrets: passwords, tokens, nkey seeds and SNMP communities.
//!
//! A [`Secret`] wraps `secrecy::SecretString` (zeroed on drop) and prints as
//! `[redacted]` in `Debug` and `Display`, so `#[derive(Debug)]` on the
//! config structs and `{:?}` in a log line are safe. The only way to the
//! value is [`Secret::expose`], which makes every use greppable.
//!
//! Secrets are read here too: inline, `*_file` or `*_env`, at most one, and
//! an environment override above all three. A form error is a problem of
//! the file; an unreadable file or unset variable is deferred to the
//! service that uses the secret. No message built here contains a value.
//!
//! This module also holds the naming of the environment overrides
//! (`PRINTWATCH_MAIL_SMTP_PASSWORD`, ...), which win over whatever the file
//! says.

use std::fmt;
use std::io::Read;
use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use toml::Value;

use crate::read::{Reader, Scope, Section, echo};

/// A secret value.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(SecretString::from(value.into()))
    }

    /// The value, for the one place that must hand it to a protocol.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Whether the value is empty (a secret that could not be resolved is
    /// held as empty until the service's `require_*` check reports it).
    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret::new(value)
    }
}

/// Prefix of every environment override.
pub const OVERRIDE_PREFIX: &str = "PRINTWATCH_";

/// The environment variable that overrides the secret at `dotted_key`:
/// `PRINTWATCH_` + the key with `.` turned into `_`, upper-cased, any other
/// character that is not a letter or digit turned into `_`.
///
/// `mail.smtp.password` → `PRINTWATCH_MAIL_SMTP_PASSWORD`;
/// a device's community → `PRINTWATCH_DEVICES_<ID>_COMMUNITY`.
pub fn override_var(dotted_key: &str) -> String {
    let mut out = String::from(OVERRIDE_PREFIX);
    out.extend(dotted_key.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        }
    }));
    out
}

/// The override for device `id`'s SNMP community.
pub fn device_community_var(id: &str) -> String {
    override_var(&format!("devices.{id}.community"))
}

/// A secret as the file gives it.
pub(crate) enum Resolved {
    /// Not given at all.
    Absent,
    /// Given and read.
    Given(Secret),
    /// Given, but its file or variable could not be read (deferred problem
    /// recorded) or its form is wrong (problem recorded).
    Unavailable,
}

impl Resolved {
    /// Whether the file (or an override) gives the secret in some form.
    pub fn is_given(&self) -> bool {
        !matches!(self, Resolved::Absent)
    }

    /// The secret if it could be read.
    pub fn ok(self) -> Option<Secret> {
        match self {
            Resolved::Given(s) => Some(s),
            _ => None,
        }
    }

    /// The secret, or an empty placeholder when it was given but could not
    /// be read (the service's `require_*` check reports why).
    pub fn or_placeholder(self) -> Option<Secret> {
        match self {
            Resolved::Given(s) => Some(s),
            Resolved::Unavailable => Some(Secret::new(String::new())),
            Resolved::Absent => None,
        }
    }
}

/// The most a secret file may hold.
const MAX_SECRET_FILE: u64 = 64 * 1024;

impl Reader<'_> {
    /// A secret given as `key = "…"`, `key_file = "path"` or
    /// `key_env = "VAR"` (at most one), overridden by the environment
    /// variable `override_var` when it is set and not empty.
    pub fn secret(
        &mut self,
        s: &mut Section<'_>,
        key: &str,
        scope: Scope,
        override_var: Option<&str>,
    ) -> Resolved {
        self.secret_if(s, key, scope, override_var, true)
    }

    /// [`Reader::secret`], but when `resolve` is false (the secret is not
    /// used, e.g. `enabled = false`) only its form is checked and nothing
    /// is read: an unused secret must not stop a service.
    pub fn secret_if(
        &mut self,
        s: &mut Section<'_>,
        key: &str,
        scope: Scope,
        override_var: Option<&str>,
        resolve: bool,
    ) -> Resolved {
        let file_key = format!("{key}_file");
        let env_key = format!("{key}_env");
        let inline = self.value(s, key);
        let file = self.value(s, &file_key);
        let var = self.value(s, &env_key);
        let forms = [inline, file, var].iter().filter(|v| v.is_some()).count();
        if forms > 1 {
            self.problem(
                s.key(key),
                format!("give only one of `{key}`, `{file_key}` and `{env_key}`"),
            );
            return Resolved::Unavailable;
        }
        // The form must be right even when an override makes it unused.
        // Only the value's type is ever named, never the value.
        for (k, v) in [
            (key, inline),
            (file_key.as_str(), file),
            (env_key.as_str(), var),
        ] {
            if let Some(v) = v.filter(|v| !v.is_str()) {
                self.wrong_type(s.key(k), "a string", v);
                return Resolved::Unavailable;
            }
        }
        if !resolve {
            return if forms == 0 {
                Resolved::Absent
            } else {
                Resolved::Unavailable
            };
        }
        if let Some(name) = override_var
            && let Some(value) = self.env.var(name).filter(|v| !v.is_empty())
        {
            return Resolved::Given(Secret::new(value));
        }
        if let Some(Value::String(v)) = inline {
            if v.is_empty() {
                self.problem(s.key(key), "is empty; give the secret or remove the key");
                return Resolved::Unavailable;
            }
            return Resolved::Given(Secret::new(v.clone()));
        }
        if let Some(Value::String(path)) = file {
            let Some(path) = self.resolve_path(s.key(&file_key), path) else {
                return Resolved::Unavailable;
            };
            return match read_secret_file(&path) {
                Ok(v) => Resolved::Given(Secret::new(v)),
                Err(reason) => {
                    self.defer(scope, s.key(&file_key), reason);
                    Resolved::Unavailable
                }
            };
        }
        if let Some(Value::String(name)) = var {
            if name.is_empty() || name.contains(['=', '\0']) {
                self.problem(
                    s.key(&env_key),
                    format!(
                        "expected an environment variable name, found {}",
                        echo(name)
                    ),
                );
                return Resolved::Unavailable;
            }
            return match self.env.var(name) {
                Some(v) if !v.is_empty() => Resolved::Given(Secret::new(v)),
                Some(_) => {
                    self.defer(
                        scope,
                        s.key(&env_key),
                        format!("environment variable {name} is empty"),
                    );
                    Resolved::Unavailable
                }
                None => {
                    self.defer(
                        scope,
                        s.key(&env_key),
                        format!("environment variable {name} is not set"),
                    );
                    Resolved::Unavailable
                }
            };
        }
        Resolved::Absent
    }
}

/// Reads a secret file: at most 64 KiB of UTF-8, one trailing newline
/// dropped. The error names the path and what failed, never the content.
fn read_secret_file(path: &Path) -> Result<String, String> {
    let shown = path.display();
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot read secret file {shown}: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read secret file {shown}: {e}"))?;
    if bytes.len() as u64 > MAX_SECRET_FILE {
        return Err(format!(
            "secret file {shown} is larger than 64 KiB; it should hold only the secret"
        ));
    }
    let mut text =
        String::from_utf8(bytes).map_err(|_| format!("secret file {shown} is not UTF-8 text"))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        return Err(format!("secret file {shown} is empty"));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_print_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        assert_eq!(s.clone().expose(), "hunter2");
    }

    #[test]
    fn override_names_follow_the_key() {
        assert_eq!(
            override_var("mail.smtp.password"),
            "PRINTWATCH_MAIL_SMTP_PASSWORD"
        );
        assert_eq!(
            override_var("mail.pop_before_smtp.password"),
            "PRINTWATCH_MAIL_POP_BEFORE_SMTP_PASSWORD"
        );
        assert_eq!(
            device_community_var("lobby-1"),
            "PRINTWATCH_DEVICES_LOBBY_1_COMMUNITY"
        );
    }
}
