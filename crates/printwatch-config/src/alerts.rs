//! `[alerts]`: the manual's automatic e-mail notification settings —
//! common body, notification groups, and per-item destinations with item
//! details (SPEC §1.1).
//!
//! Item keys are `printwatch_events::AlertItem` keys, so a misspelt item
//! (`toner_emtpy`) is an error that lists the valid ones instead of an
//! item that silently never mails.

use std::collections::BTreeMap;

use printwatch_events::AlertItem;
use toml::Value;

use crate::device::group_refs;
use crate::read::{Reader, Section, closest, echo, type_name};
use crate::validate;

/// The toner level that raises `toner_low_level` when none is set.
pub const DEFAULT_TONER_THRESHOLD_PERCENT: u8 = 20;

/// The used share, in percent, at or above which a real device's document
/// storage (hrStorage) raises `storage_almost_full`. No standard signal says
/// "nearly full", so the agent judges it.
pub const DEFAULT_STORAGE_THRESHOLD_PERCENT: u8 = 90;

/// `[alerts]`.
#[derive(Debug, Clone, Default)]
pub struct AlertsConfig {
    /// Free text added to every alert mail (共通本文).
    pub common_body: String,
    /// Notification groups (通知先グループ): name → addresses.
    pub groups: BTreeMap<String, Vec<String>>,
    /// Per-item settings (項目ごとの通知先); absent items use
    /// [`ItemConfig::default_for`].
    pub items: BTreeMap<AlertItem, ItemConfig>,
}

/// `[alerts.items.<key>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemConfig {
    /// Groups that get this item's mails.
    pub groups: Vec<String>,
    /// Also mail when the condition clears (アラート復旧通知).
    pub notify_recovery: bool,
    /// `toner_low_level`: the remaining level, in percent, at or below
    /// which the item is raised; `storage_almost_full`: the used share, in
    /// percent, at or above which a real device's storage raises it.
    pub threshold_percent: Option<u8>,
}

impl ItemConfig {
    /// The settings of an item the file does not mention: no groups,
    /// recovery mails on, the default toner threshold for `toner_low_level`.
    pub fn default_for(item: AlertItem) -> Self {
        ItemConfig {
            groups: Vec::new(),
            notify_recovery: true,
            threshold_percent: match item {
                AlertItem::TonerLowLevel => Some(DEFAULT_TONER_THRESHOLD_PERCENT),
                AlertItem::StorageAlmostFull => Some(DEFAULT_STORAGE_THRESHOLD_PERCENT),
                _ => None,
            },
        }
    }
}

impl AlertsConfig {
    /// The `toner_low_level` threshold in percent.
    pub fn toner_threshold_percent(&self) -> u8 {
        self.items
            .get(&AlertItem::TonerLowLevel)
            .and_then(|i| i.threshold_percent)
            .unwrap_or(DEFAULT_TONER_THRESHOLD_PERCENT)
    }

    /// The `storage_almost_full` threshold (used share) in percent.
    pub fn storage_threshold_percent(&self) -> u8 {
        self.items
            .get(&AlertItem::StorageAlmostFull)
            .and_then(|i| i.threshold_percent)
            .unwrap_or(DEFAULT_STORAGE_THRESHOLD_PERCENT)
    }

    /// The settings of `item`, defaults when the file has none.
    pub fn item(&self, item: AlertItem) -> ItemConfig {
        self.items
            .get(&item)
            .cloned()
            .unwrap_or_else(|| ItemConfig::default_for(item))
    }

    /// The addresses that get `item`'s mails for a device whose
    /// `extra_groups` are given: the item's groups, then the extra ones,
    /// each address once (compared without letter case), in order.
    pub fn recipients(&self, item: AlertItem, extra_groups: &[String]) -> Vec<String> {
        let item = self.item(item);
        let mut out: Vec<String> = Vec::new();
        for group in item.groups.iter().chain(extra_groups) {
            for addr in self.groups.get(group).into_iter().flatten() {
                if !out.iter().any(|a| a.eq_ignore_ascii_case(addr)) {
                    out.push(addr.clone());
                }
            }
        }
        out
    }
}

pub(crate) fn read(r: &mut Reader<'_>, root: &mut Section<'_>) -> AlertsConfig {
    let mut c = AlertsConfig::default();
    let Some(mut s) = r.table(root, "alerts") else {
        return c;
    };
    if let Some(body) = r.string(&mut s, "common_body") {
        match validate::body_text(&body) {
            Ok(()) => c.common_body = body,
            Err(e) => r.problem(s.key("common_body"), e),
        }
    }
    if let Some(mut g) = r.table(&mut s, "groups") {
        c.groups = groups(r, &mut g);
        r.finish(g);
    }
    if let Some(mut t) = r.table(&mut s, "items") {
        c.items = items(r, &mut t, &c.groups);
        r.finish(t);
    }
    r.finish(s);
    c
}

fn groups(r: &mut Reader<'_>, g: &mut Section<'_>) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for (name, value) in g.entries() {
        let path = g.key(name);
        if let Err(e) = validate::token(name, "a group name") {
            r.problem(path.clone(), e);
        }
        let Value::Array(items) = value else {
            r.problem(
                path,
                format!(
                    "expected a list of e-mail addresses, found {}",
                    type_name(value)
                ),
            );
            continue;
        };
        let mut addrs: Vec<String> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let key = format!("{path}[{i}]");
            match item {
                Value::String(a) => match validate::email(a) {
                    Ok(()) if addrs.iter().any(|x| x.eq_ignore_ascii_case(a)) => {
                        r.problem(key, format!("{} is listed twice", echo(a)));
                    }
                    Ok(()) => addrs.push(a.clone()),
                    Err(e) => r.problem(key, e),
                },
                other => r.problem(
                    key,
                    format!(
                        "expected an e-mail address string, found {}",
                        type_name(other)
                    ),
                ),
            }
        }
        if items.is_empty() {
            r.problem(path, "expected at least one e-mail address");
        }
        out.insert(name.clone(), addrs);
    }
    out
}

fn items(
    r: &mut Reader<'_>,
    t: &mut Section<'_>,
    groups: &BTreeMap<String, Vec<String>>,
) -> BTreeMap<AlertItem, ItemConfig> {
    let mut out = BTreeMap::new();
    let valid: Vec<&str> = AlertItem::keys().collect();
    let entries: Vec<(&String, &Value)> = t.entries().collect();
    for (key, value) in entries {
        let path = t.key(key);
        let Ok(item) = key.parse::<AlertItem>() else {
            let hint = closest(key, &valid)
                .map(|n| format!(" (did you mean `{n}`?)"))
                .unwrap_or_default();
            r.problem(
                path,
                format!(
                    "unknown alert item{hint}; expected one of: {}",
                    valid.join(", ")
                ),
            );
            continue;
        };
        let Value::Table(table) = value else {
            r.problem(
                path.clone(),
                format!("expected a table ([{path}]), found {}", type_name(value)),
            );
            continue;
        };
        let mut s = Section::new(path, table);
        let mut cfg = ItemConfig::default_for(item);
        cfg.groups = group_refs(r, &mut s, "groups", groups);
        if let Some(b) = r.bool(&mut s, "notify_recovery") {
            cfg.notify_recovery = b;
        }
        let takes_threshold = matches!(
            item,
            AlertItem::TonerLowLevel | AlertItem::StorageAlmostFull
        );
        if s.has("threshold_percent") && !takes_threshold {
            r.value(&mut s, "threshold_percent");
            r.problem(
                s.key("threshold_percent"),
                "only toner_low_level and storage_almost_full take a threshold",
            );
        } else if let Some(n) = r.integer(&mut s, "threshold_percent", 1, 99, "a percentage 1..=99")
        {
            cfg.threshold_percent = u8::try_from(n).ok();
        }
        r.finish(s);
        out.insert(item, cfg);
    }
    out
}
