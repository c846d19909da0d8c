//! `[agent.vendor_signals]` and `[devices.vendor_signals]`: vendor
//! extensions mapped to alert items.
//!
//! Some items have no standard signal at all (proxy authentication error,
//! access attack; see `shared/printer-signals.md`), and many printers report
//! more through their own MIB or IPP keywords than the standard tables
//! carry. A table of `"signal" = "item_key"` lets the operator name them:
//!
//! - a key that is a numeric OID (`"1.3.6.1.4.1.367.…"`, leading dot
//!   optional) is polled on SNMP devices; the item is active while the value
//!   (or any instance below the OID) is a non-zero integer;
//! - any other key is an IPP `printer-state-reasons` keyword (without the
//!   `-report`/`-warning`/`-error` suffix), for IPP devices.
//!
//! `[agent.vendor_signals]` applies to every device; a device's own table
//! adds to it and wins for the same signal.

use std::collections::BTreeMap;

use printwatch_events::AlertItem;
use toml::Value;

use crate::read::{Reader, Section, closest, echo, type_name};

/// One configured vendor signal.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum VendorSignal {
    /// A numeric OID without the leading dot, polled over SNMP.
    Oid(String),
    /// An IPP printer-state-reasons keyword, suffix stripped.
    IppKeyword(String),
}

impl std::fmt::Display for VendorSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VendorSignal::Oid(o) => f.write_str(o),
            VendorSignal::IppKeyword(k) => f.write_str(k),
        }
    }
}

/// Vendor signals → items.
pub type VendorSignals = BTreeMap<VendorSignal, AlertItem>;

/// Classifies one key: an OID when it starts with a digit or a dot.
pub fn parse_signal(key: &str) -> Result<VendorSignal, String> {
    let key = key.trim();
    if key.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        let oid = key.trim_start_matches('.');
        let arcs: Vec<&str> = oid.split('.').collect();
        let numeric = arcs
            .iter()
            .all(|a| !a.is_empty() && a.len() <= 10 && a.bytes().all(|b| b.is_ascii_digit()));
        if !numeric || arcs.len() < 2 {
            return Err(format!(
                "expected a numeric OID such as 1.3.6.1.4.1.367.3.2.1.2.24.1.1.5.1, found {}",
                echo(key)
            ));
        }
        return Ok(VendorSignal::Oid(oid.to_owned()));
    }
    let ok = !key.is_empty()
        && key.len() <= 255
        && key.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        });
    if !ok {
        return Err(format!(
            "expected a numeric OID or an IPP keyword (lower-case letters, digits, `-`, `_`, `.`), found {}",
            echo(key)
        ));
    }
    let stripped = ["-report", "-warning", "-error"]
        .iter()
        .find_map(|s| key.strip_suffix(s))
        .unwrap_or(key);
    Ok(VendorSignal::IppKeyword(stripped.to_owned()))
}

/// Reads the `vendor_signals` table of `s`, if any.
pub(crate) fn read(r: &mut Reader<'_>, s: &mut Section<'_>) -> VendorSignals {
    let mut out = VendorSignals::new();
    let path = s.key("vendor_signals");
    let Some(value) = r.value(s, "vendor_signals") else {
        return out;
    };
    let Value::Table(table) = value else {
        r.problem(
            path.clone(),
            format!("expected a table ([{path}]), found {}", type_name(value)),
        );
        return out;
    };
    let mut t = Section::new(path, table);
    let valid: Vec<&str> = AlertItem::keys().collect();
    let entries: Vec<(&String, &Value)> = t.entries().collect();
    for (key, value) in entries {
        let key_path = t.key(key);
        let signal = match parse_signal(key) {
            Ok(s) => s,
            Err(e) => {
                r.problem(key_path, e);
                continue;
            }
        };
        let Value::String(item_key) = value else {
            r.problem(
                key_path,
                format!(
                    "expected an alert item key as a string, found {}",
                    type_name(value)
                ),
            );
            continue;
        };
        match item_key.trim().parse::<AlertItem>() {
            Ok(item) => {
                out.insert(signal, item);
            }
            Err(_) => {
                let hint = closest(item_key.trim(), &valid)
                    .map(|n| format!(" (did you mean `{n}`?)"))
                    .unwrap_or_default();
                r.problem(
                    key_path,
                    format!(
                        "unknown alert item {}{hint}; expected one of: {}",
                        echo(item_key),
                        valid.join(", ")
                    ),
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_and_keywords_are_told_apart() {
        assert_eq!(
            parse_signal(".1.3.6.1.4.1.367.1"),
            Ok(VendorSignal::Oid("1.3.6.1.4.1.367.1".into()))
        );
        assert_eq!(
            parse_signal("ricoh-proxy-auth-failed-error"),
            Ok(VendorSignal::IppKeyword("ricoh-proxy-auth-failed".into()))
        );
        assert!(parse_signal("1.3..6").is_err());
        assert!(parse_signal("1").is_err());
        assert!(parse_signal("Bad Keyword").is_err());
        assert!(parse_signal("").is_err());
        assert!(parse_signal("1.3.6.99999999999").is_err());
    }
}
