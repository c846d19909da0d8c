//! Walking the parsed TOML tree into typed values, collecting problems.
//!
//! Why not `#[derive(Deserialize)]` with `deny_unknown_fields`: serde stops
//! at the first error, and `serde_path_to_error` can only name that one.
//! An operator fixing a fleet's config wants every bad key at once, so the
//! sections walk a `toml::Table` through this [`Reader`], which records each
//! problem with its full dotted key and carries on. Every key a section asks
//! for is remembered, so whatever is left over is an unknown key, reported
//! with its path, the valid keys and the nearest spelling.
//!
//! Secrets are read by the same walker (see `secret.rs`).
//!
//! Things that live outside the file (a `*_file`, a `*_env` variable, a CA
//! file) are checked here too, but their failures are *deferred*: they are
//! tagged with the [`Scope`] that needs them and reported by the `require_*`
//! check of the service that uses that part, so one file can serve every
//! service while each container holds only its own secrets.

use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::{Table, Value};

use crate::env::Env;
use crate::error::Problem;

/// The part of the configuration a deferred problem belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Nats,
    Smtp,
    PopBeforeSmtp,
    Account,
    Receive,
    Devices,
}

/// A problem with something outside the file, reported by `require_*`.
#[derive(Debug, Clone)]
pub(crate) struct Deferred {
    pub scope: Scope,
    pub problem: Problem,
}

/// Collects problems while the sections read their keys.
pub(crate) struct Reader<'e> {
    pub problems: Vec<Problem>,
    pub deferred: Vec<Deferred>,
    pub env: &'e dyn Env,
    base_dir: &'e Path,
}

/// One TOML table being read, with the keys asked for so far.
pub(crate) struct Section<'a> {
    pub path: String,
    map: &'a Table,
    asked: Vec<String>,
}

impl<'a> Section<'a> {
    pub fn root(map: &'a Table) -> Self {
        Section {
            path: String::new(),
            map,
            asked: Vec::new(),
        }
    }

    /// A table under `path`; used with an empty table when a section is
    /// absent, so defaults and environment overrides still apply.
    pub fn new(path: String, map: &'a Table) -> Self {
        Section {
            path,
            map,
            asked: Vec::new(),
        }
    }

    /// The full path of `key` in this table.
    pub fn key(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// Whether the file gives `key` (without marking it as read).
    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// Every entry, for tables whose keys are names (groups, items); the
    /// caller handles them all, so none counts as unknown.
    pub fn entries(&mut self) -> impl Iterator<Item = (&'a String, &'a Value)> + use<'a> {
        self.asked.extend(self.map.keys().cloned());
        self.map.iter()
    }
}

/// `parent.key`, quoting a key that is not a bare TOML key.
pub(crate) fn join(parent: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let key = if bare {
        key.to_owned()
    } else {
        format!("\"{}\"", key.escape_debug())
    };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}

/// `what`, quoted and shortened for an error message, control characters
/// escaped so a problem stays on one line. Never call it on a secret.
pub(crate) fn echo(what: &str) -> String {
    const MAX: usize = 60;
    let mut out: String = what
        .chars()
        .take(MAX)
        .collect::<String>()
        .escape_debug()
        .to_string();
    if what.chars().nth(MAX).is_some() {
        out.push('…');
    }
    format!("`{out}`")
}

/// "a string", "an integer", ... for "expected X, found Y".
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date-time",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

impl<'e> Reader<'e> {
    pub fn new(env: &'e dyn Env, base_dir: &'e Path) -> Self {
        Reader {
            problems: Vec::new(),
            deferred: Vec::new(),
            env,
            base_dir,
        }
    }

    pub fn problem(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.problems.push(Problem::new(key, reason));
    }

    pub fn defer(&mut self, scope: Scope, key: impl Into<String>, reason: impl Into<String>) {
        self.deferred.push(Deferred {
            scope,
            problem: Problem::new(key, reason),
        });
    }

    /// The raw value of `key`, marking it as read.
    pub fn value<'a>(&mut self, s: &mut Section<'a>, key: &str) -> Option<&'a Value> {
        s.asked.push(key.to_owned());
        s.map.get(key)
    }

    pub(crate) fn wrong_type(&mut self, path: String, expected: &str, found: &Value) {
        self.problem(
            path,
            format!("expected {expected}, found {}", type_name(found)),
        );
    }

    pub fn string(&mut self, s: &mut Section<'_>, key: &str) -> Option<String> {
        match self.value(s, key)? {
            Value::String(v) => Some(v.clone()),
            other => {
                self.wrong_type(s.key(key), "a string", other);
                None
            }
        }
    }

    pub fn bool(&mut self, s: &mut Section<'_>, key: &str) -> Option<bool> {
        match self.value(s, key)? {
            Value::Boolean(v) => Some(*v),
            other => {
                self.wrong_type(s.key(key), "a boolean (true or false)", other);
                None
            }
        }
    }

    /// An integer in `min..=max`; `expected` describes the form.
    pub fn integer(
        &mut self,
        s: &mut Section<'_>,
        key: &str,
        min: i64,
        max: i64,
        expected: &str,
    ) -> Option<i64> {
        match self.value(s, key)? {
            Value::Integer(v) if (min..=max).contains(v) => Some(*v),
            Value::Integer(v) => {
                self.problem(s.key(key), format!("expected {expected}, found {v}"));
                None
            }
            other => {
                self.wrong_type(s.key(key), expected, other);
                None
            }
        }
    }

    pub fn port(&mut self, s: &mut Section<'_>, key: &str) -> Option<u16> {
        let v = self.integer(s, key, 1, 65535, "a port number 1..=65535")?;
        u16::try_from(v).ok()
    }

    /// A duration written as a string with a unit (`"300ms"`, `"5s"`,
    /// `"1m"`), within `min..=max`.
    pub fn duration(
        &mut self,
        s: &mut Section<'_>,
        key: &str,
        min: Duration,
        max: Duration,
    ) -> Option<Duration> {
        let path = s.key(key);
        let value = self.value(s, key)?;
        match crate::duration::parse(value, min, max) {
            Ok(d) => Some(d),
            Err(reason) => {
                self.problem(path, reason);
                None
            }
        }
    }

    /// One of `options` (matched without letter case).
    pub fn choice<T: Copy>(
        &mut self,
        s: &mut Section<'_>,
        key: &str,
        options: &[(&str, T)],
    ) -> Option<T> {
        let text = self.string(s, key)?;
        if let Some((_, v)) = options
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(text.trim()))
        {
            return Some(*v);
        }
        let names: Vec<String> = options.iter().map(|(n, _)| format!("\"{n}\"")).collect();
        self.problem(
            s.key(key),
            format!(
                "expected one of {}; found {}",
                names.join(", "),
                echo(&text)
            ),
        );
        None
    }

    /// An array of strings, each with its own path (`key[i]`).
    pub fn strings(&mut self, s: &mut Section<'_>, key: &str) -> Option<Vec<(String, String)>> {
        let path = s.key(key);
        match self.value(s, key)? {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(v) => out.push((format!("{path}[{i}]"), v.clone())),
                        other => self.wrong_type(format!("{path}[{i}]"), "a string", other),
                    }
                }
                Some(out)
            }
            other => {
                self.wrong_type(path, "an array of strings", other);
                None
            }
        }
    }

    /// A sub-table (`[parent.key]`).
    pub fn table<'a>(&mut self, s: &mut Section<'a>, key: &str) -> Option<Section<'a>> {
        match self.value(s, key)? {
            Value::Table(t) => Some(Section::new(s.key(key), t)),
            other => {
                let path = s.key(key);
                self.wrong_type(path.clone(), &format!("a table ([{path}])"), other);
                None
            }
        }
    }

    /// An array of tables (`[[key]]`), each with its path `key[i]`.
    pub fn tables<'a>(&mut self, s: &mut Section<'a>, key: &str) -> Vec<Section<'a>> {
        let path = s.key(key);
        let Some(value) = self.value(s, key) else {
            return Vec::new();
        };
        let Value::Array(items) = value else {
            self.wrong_type(
                path.clone(),
                &format!("an array of tables ([[{path}]])"),
                value,
            );
            return Vec::new();
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::Table(t) => out.push(Section::new(format!("{path}[{i}]"), t)),
                other => self.wrong_type(format!("{path}[{i}]"), "a table", other),
            }
        }
        out
    }

    /// A file path; a relative one is taken from the config file's folder.
    pub fn path(&mut self, s: &mut Section<'_>, key: &str) -> Option<PathBuf> {
        let text = self.string(s, key)?;
        self.resolve_path(s.key(key), &text)
    }

    pub(crate) fn resolve_path(&mut self, path_key: String, text: &str) -> Option<PathBuf> {
        if text.trim().is_empty() || text.contains('\0') {
            self.problem(
                path_key,
                "expected a file path, found an empty or invalid one",
            );
            return None;
        }
        let p = Path::new(text);
        Some(if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        })
    }

    /// Checks that `file` can be opened for reading; a failure is deferred
    /// to the `scope`'s service. Only opens it: a key file's content is
    /// nobody's business here.
    pub fn check_file(&mut self, scope: Scope, key: String, file: &Path) {
        match std::fs::metadata(file) {
            Ok(m) if m.is_dir() => self.defer(
                scope,
                key,
                format!("{} is a folder, expected a file", file.display()),
            ),
            Ok(_) => {
                if let Err(e) = std::fs::File::open(file) {
                    self.defer(scope, key, format!("cannot read {}: {e}", file.display()));
                }
            }
            Err(e) => self.defer(scope, key, format!("cannot read {}: {e}", file.display())),
        }
    }

    /// Reports every key of `s` that no one asked for.
    pub fn finish(&mut self, s: Section<'_>) {
        let mut valid: Vec<&str> = Vec::new();
        for k in &s.asked {
            if !valid.contains(&k.as_str()) {
                valid.push(k);
            }
        }
        for key in s.map.keys() {
            if valid.contains(&key.as_str()) {
                continue;
            }
            let hint = match closest(key, &valid) {
                Some(near) => format!(" (did you mean `{near}`?)"),
                None => String::new(),
            };
            let reason = if valid.is_empty() {
                format!("unknown key{hint}; this table takes no keys")
            } else {
                format!("unknown key{hint}; valid keys: {}", valid.join(", "))
            };
            self.problem(s.key(key), reason);
        }
    }
}

/// The valid key nearest to a misspelt one, if it is close.
pub(crate) fn closest<'v>(key: &str, valid: &[&'v str]) -> Option<&'v str> {
    let len = key.chars().count();
    let limit = if len <= 3 { 1 } else { (len / 3).clamp(2, 3) };
    valid
        .iter()
        .map(|v| (distance(key, v), *v))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v)
}

/// Levenshtein distance (keys are short; std has none).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let subst = prev.get(j).copied().unwrap_or(usize::MAX / 2) + usize::from(ca != *cb);
            let del = prev.get(j + 1).copied().unwrap_or(usize::MAX / 2) + 1;
            let ins = cur.get(j).copied().unwrap_or(usize::MAX / 2) + 1;
            cur.push(subst.min(del).min(ins));
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_quote_keys_that_are_not_bare() {
        assert_eq!(join("", "mail"), "mail");
        assert_eq!(join("mail", "smtp"), "mail.smtp");
        assert_eq!(join("alerts.groups", "a b"), "alerts.groups.\"a b\"");
        assert_eq!(join("x", "a\nb"), "x.\"a\\nb\"");
    }

    #[test]
    fn near_misses_are_suggested() {
        assert_eq!(closest("prot", &["host", "port"]), Some("port"));
        assert_eq!(closest("sorce", &["id", "source"]), Some("source"));
        assert_eq!(closest("zzzzzz", &["host", "port"]), None);
    }

    #[test]
    fn echo_stays_on_one_line_and_short() {
        assert_eq!(echo("a\r\nb"), "`a\\r\\nb`");
        assert!(echo(&"x".repeat(500)).chars().count() < 70);
    }
}
