//! Who gets an event's mail (SPEC §1.1 notification groups and per-item
//! destinations): the item's groups plus the device's `extra_groups`, each
//! address once; nothing for an item without groups, nor for a recovery
//! of an item with `notify_recovery = false`.

use printwatch_config::Config;
use printwatch_events::{AlertItem, TransitionKind};

/// Why an event is not mailed at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unrouted {
    /// Neither the item nor the device names a group.
    NoGroups,
    /// A recovery of an item with `notify_recovery = false`.
    RecoveryOff,
}

impl Unrouted {
    pub fn as_str(self) -> &'static str {
        match self {
            Unrouted::NoGroups => "no group is set for this item or device",
            Unrouted::RecoveryOff => "notify_recovery is off for this item",
        }
    }
}

/// The recipients of `item`'s `transition` on `device_id`, in a stable
/// order. A device this notifier's config does not list (another agent's)
/// is routed by its item alone.
pub fn recipients(
    cfg: &Config,
    device_id: &str,
    item: AlertItem,
    transition: TransitionKind,
) -> Result<Vec<String>, Unrouted> {
    if transition == TransitionKind::Recovered && !cfg.alerts.item(item).notify_recovery {
        return Err(Unrouted::RecoveryOff);
    }
    let extra = cfg
        .device(device_id)
        .map(|d| d.extra_groups.as_slice())
        .unwrap_or_default();
    let out = cfg.alerts.recipients(item, extra);
    if out.is_empty() {
        Err(Unrouted::NoGroups)
    } else {
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use printwatch_config::NoEnv;

    fn cfg(text: &str) -> Config {
        printwatch_config::parse(text, std::path::Path::new("."), &NoEnv).unwrap()
    }

    const FLEET: &str = r#"
[alerts.groups]
admins = ["a@example.test", "Shared@example.test"]
supplies = ["s@example.test", "shared@example.test"]
facilities = ["f@example.test"]

[alerts.items.toner_empty]
groups = ["admins", "supplies"]
[alerts.items.toner_almost_empty]
groups = ["supplies"]
notify_recovery = false

[[devices]]
id = "lobby"
source = "simulated"
extra_groups = ["facilities"]

[[devices]]
id = "office"
source = "simulated"
"#;

    #[test]
    fn a_recipient_in_several_groups_gets_one_mail() {
        let c = cfg(FLEET);
        let r = recipients(
            &c,
            "office",
            AlertItem::TonerEmpty,
            TransitionKind::Occurred,
        )
        .unwrap();
        assert_eq!(
            r,
            ["a@example.test", "Shared@example.test", "s@example.test"]
        );
    }

    #[test]
    fn a_devices_extra_groups_get_every_alert_of_that_device_only() {
        let c = cfg(FLEET);
        let r = recipients(&c, "lobby", AlertItem::PaperJam, TransitionKind::Occurred).unwrap();
        assert_eq!(r, ["f@example.test"]);
        assert_eq!(
            recipients(&c, "office", AlertItem::PaperJam, TransitionKind::Occurred),
            Err(Unrouted::NoGroups)
        );
        // A device of another agent, not in this config: the item decides.
        let r = recipients(
            &c,
            "elsewhere",
            AlertItem::TonerAlmostEmpty,
            TransitionKind::Occurred,
        )
        .unwrap();
        assert_eq!(r, ["s@example.test", "shared@example.test"]);
    }

    #[test]
    fn recovery_mails_follow_notify_recovery() {
        let c = cfg(FLEET);
        assert!(
            recipients(
                &c,
                "office",
                AlertItem::TonerEmpty,
                TransitionKind::Recovered
            )
            .is_ok()
        );
        assert_eq!(
            recipients(
                &c,
                "office",
                AlertItem::TonerAlmostEmpty,
                TransitionKind::Recovered
            ),
            Err(Unrouted::RecoveryOff)
        );
    }
}
