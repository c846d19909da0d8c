//! The alert catalog: the manual's automatic-notification items.
//!
//! Keys are a contract (config keys, NATS subjects, dashboards); labels are
//! what a mail subject carries after `アラート発生通知:` / `Alert occurred: `.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The language of mails and reports (`[mail] language`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// Japanese, the printer's default.
    #[default]
    Ja,
    /// English.
    En,
}

/// How serious an active item is; decides a device's overall state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Printing goes on, someone should act soon.
    Warning,
    /// Printing is stopped or a person must act now.
    Error,
}

/// One automatic e-mail notification item of the manual (SPEC §1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlertItem {
    ServiceCall,
    TonerEmpty,
    TonerAlmostEmpty,
    PaperJam,
    CoverOpen,
    PaperOut,
    TrayError,
    UnitConnectionError,
    FirmwareUpdate,
    StorageAlmostFull,
    ProxyAuthError,
    AccessAttack,
    UnitReplacementSoon,
    UnitReplacementNow,
    TonerLowLevel,
}

/// One row of the catalog.
struct Entry {
    item: AlertItem,
    key: &'static str,
    ja: &'static str,
    en: &'static str,
    severity: Severity,
}

/// The catalog, in the manual's order.
const CATALOG: [Entry; 15] = [
    Entry {
        item: AlertItem::ServiceCall,
        key: "service_call",
        ja: "サービスコール",
        en: "Service call",
        severity: Severity::Error,
    },
    Entry {
        item: AlertItem::TonerEmpty,
        key: "toner_empty",
        ja: "トナー切れ",
        en: "Toner empty",
        severity: Severity::Error,
    },
    Entry {
        item: AlertItem::TonerAlmostEmpty,
        key: "toner_almost_empty",
        ja: "トナー残りわずか",
        en: "Toner almost empty",
        severity: Severity::Warning,
    },
    Entry {
        item: AlertItem::PaperJam,
        key: "paper_jam",
        ja: "用紙づまり",
        en: "Paper jam",
        severity: Severity::Error,
    },
    Entry {
        item: AlertItem::CoverOpen,
        key: "cover_open",
        ja: "カバーオープン",
        en: "Cover open",
        severity: Severity::Error,
    },
    Entry {
        item: AlertItem::PaperOut,
        key: "paper_out",
        ja: "用紙切れ",
        en: "Paper out",
        severity: Severity::Error,
    },
    Entry {
        item: AlertItem::TrayError,
        key: "tray_error",
        ja: "給紙トレイエラー",
        en: "Paper tray error",
        severity: Severity::Error,
    },
    Entry {
        item: AlertItem::UnitConnectionError,
        key: "unit_connection_error",
        ja: "ユニット接続エラー",
        en: "Unit connection error",
        severity: Severity::Error,
    },
    Entry {
        item: AlertItem::FirmwareUpdate,
        key: "firmware_update",
        ja: "ファームウェアアップデート確認",
        en: "Firmware update check",
        severity: Severity::Warning,
    },
    Entry {
        item: AlertItem::StorageAlmostFull,
        key: "storage_almost_full",
        ja: "文書保存領域残りわずか",
        en: "Document storage almost full",
        severity: Severity::Warning,
    },
    Entry {
        item: AlertItem::ProxyAuthError,
        key: "proxy_auth_error",
        ja: "プロキシ認証エラー",
        en: "Proxy authentication error",
        severity: Severity::Warning,
    },
    Entry {
        item: AlertItem::AccessAttack,
        key: "access_attack",
        ja: "アクセス攻撃検知",
        en: "Access attack detected",
        severity: Severity::Warning,
    },
    Entry {
        item: AlertItem::UnitReplacementSoon,
        key: "unit_replacement_soon",
        ja: "ユニット交換時期接近",
        en: "Unit replacement approaching",
        severity: Severity::Warning,
    },
    Entry {
        item: AlertItem::UnitReplacementNow,
        key: "unit_replacement_now",
        ja: "ユニット交換時期間近",
        en: "Unit replacement imminent",
        severity: Severity::Warning,
    },
    Entry {
        item: AlertItem::TonerLowLevel,
        key: "toner_low_level",
        ja: "トナー残量低下(残量レベル)",
        en: "Toner low (selected level)",
        severity: Severity::Warning,
    },
];

impl AlertItem {
    /// Every item, in the manual's order.
    pub const ALL: [AlertItem; 15] = [
        AlertItem::ServiceCall,
        AlertItem::TonerEmpty,
        AlertItem::TonerAlmostEmpty,
        AlertItem::PaperJam,
        AlertItem::CoverOpen,
        AlertItem::PaperOut,
        AlertItem::TrayError,
        AlertItem::UnitConnectionError,
        AlertItem::FirmwareUpdate,
        AlertItem::StorageAlmostFull,
        AlertItem::ProxyAuthError,
        AlertItem::AccessAttack,
        AlertItem::UnitReplacementSoon,
        AlertItem::UnitReplacementNow,
        AlertItem::TonerLowLevel,
    ];

    fn entry(self) -> &'static Entry {
        // CATALOG lists the variants in declaration order (checked by a test).
        &CATALOG[self as usize]
    }

    /// The stable key, e.g. `toner_empty`.
    pub fn key(self) -> &'static str {
        self.entry().key
    }

    /// The label a mail subject carries, in `lang`.
    pub fn label(self, lang: Language) -> &'static str {
        match lang {
            Language::Ja => self.entry().ja,
            Language::En => self.entry().en,
        }
    }

    /// How serious the item is while active.
    pub fn severity(self) -> Severity {
        self.entry().severity
    }

    /// Every valid key, for error messages.
    pub fn keys() -> impl Iterator<Item = &'static str> {
        CATALOG.iter().map(|e| e.key)
    }
}

impl fmt::Display for AlertItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A key that names no alert item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown alert item `{0}` (expected one of: {keys})", keys = AlertItem::keys().collect::<Vec<_>>().join(", "))]
pub struct UnknownItem(pub String);

impl FromStr for AlertItem {
    type Err = UnknownItem;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CATALOG
            .iter()
            .find(|e| e.key == s)
            .map(|e| e.item)
            .ok_or_else(|| UnknownItem(s.to_owned()))
    }
}

impl Serialize for AlertItem {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.key())
    }
}

impl<'de> Deserialize<'de> for AlertItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A message the manual lists under "call your service provider"
/// (サービス実施店に連絡してください).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceCallMessage {
    /// Stable key, usable as a simulated condition's detail.
    pub key: &'static str,
    /// The printer's Japanese message, as the manual writes it.
    pub ja: &'static str,
    /// English rendering.
    pub en: &'static str,
}

impl ServiceCallMessage {
    /// The message in `lang`.
    pub fn text(&self, lang: Language) -> &'static str {
        match lang {
            Language::Ja => self.ja,
            Language::En => self.en,
        }
    }
}

/// The manual's service-call message list.
pub const SERVICE_CALL_MESSAGES: [ServiceCallMessage; 9] = [
    ServiceCallMessage {
        key: "tray_error",
        ja: "トレイ1~5エラーです",
        en: "Tray 1-5 error",
    },
    ServiceCallMessage {
        key: "option_ram_error",
        ja: "オプションRAMエラーです",
        en: "Option RAM error",
    },
    ServiceCallMessage {
        key: "address_book_error",
        ja: "アドレス帳データエラーです",
        en: "Address book data error",
    },
    ServiceCallMessage {
        key: "sd_card_auth_failed",
        ja: "SDカードからの認証に失敗しました",
        en: "Authentication from the SD card failed",
    },
    ServiceCallMessage {
        key: "hdd_board_error",
        ja: "HDDボードエラーです",
        en: "HDD board error",
    },
    ServiceCallMessage {
        key: "ethernet_board_error",
        ja: "イーサネットボードエラーです",
        en: "Ethernet board error",
    },
    ServiceCallMessage {
        key: "wireless_lan_error",
        ja: "無線LANエラーです(無線LANカードエラー)",
        en: "Wireless LAN error (wireless LAN card error)",
    },
    ServiceCallMessage {
        key: "usb_error",
        ja: "USBエラーです",
        en: "USB error",
    },
    ServiceCallMessage {
        key: "printer_error",
        ja: "プリンターエラーです",
        en: "Printer error",
    },
];

/// The service-call message a device's detail text names, if any: its key,
/// or its Japanese or English text, compared without letter case and
/// ignoring surrounding white space. `トレイ3エラーです` / `Tray 3 error`
/// match the tray message too.
pub fn service_call_message(detail: &str) -> Option<&'static ServiceCallMessage> {
    let d = detail.trim();
    if d.is_empty() {
        return None;
    }
    let lower = d.to_lowercase();
    if let Some(m) = SERVICE_CALL_MESSAGES
        .iter()
        .find(|m| m.key == lower || m.ja == d || m.en.to_lowercase() == lower)
    {
        return Some(m);
    }
    let tray =
        tray_number(d, "トレイ", "エラーです").or_else(|| tray_number(&lower, "tray ", " error"));
    tray.filter(|n| (1..=5).contains(n))
        .map(|_| &SERVICE_CALL_MESSAGES[0])
}

fn tray_number(s: &str, prefix: &str, suffix: &str) -> Option<u8> {
    s.strip_prefix(prefix)?
        .strip_suffix(suffix)?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_rows_follow_the_variant_order() {
        for (i, item) in AlertItem::ALL.iter().enumerate() {
            assert_eq!(*item as usize, i);
            assert_eq!(CATALOG[i].item, *item);
        }
    }

    #[test]
    fn every_key_parses_back_to_its_item_and_keys_are_subject_tokens() {
        for item in AlertItem::ALL {
            assert_eq!(item.key().parse::<AlertItem>(), Ok(item));
            assert!(
                item.key()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_')
            );
        }
        let err = "toner_emtpy".parse::<AlertItem>().unwrap_err();
        assert!(err.to_string().contains("toner_emtpy"));
        assert!(err.to_string().contains("toner_empty"));
    }

    #[test]
    fn labels_exist_in_both_languages() {
        assert_eq!(AlertItem::PaperJam.label(Language::Ja), "用紙づまり");
        assert_eq!(AlertItem::PaperJam.label(Language::En), "Paper jam");
        for item in AlertItem::ALL {
            assert!(!item.label(Language::Ja).is_empty());
            assert!(item.label(Language::En).is_ascii());
        }
    }

    #[test]
    fn service_call_messages_are_recognised_by_key_and_text() {
        assert_eq!(
            service_call_message("usb_error").map(|m| m.key),
            Some("usb_error")
        );
        assert_eq!(
            service_call_message("HDDボードエラーです").map(|m| m.key),
            Some("hdd_board_error")
        );
        assert_eq!(
            service_call_message(" printer error ").map(|m| m.key),
            Some("printer_error")
        );
        assert_eq!(
            service_call_message("トレイ3エラーです").map(|m| m.key),
            Some("tray_error")
        );
        assert_eq!(
            service_call_message("Tray 5 error").map(|m| m.key),
            Some("tray_error")
        );
        assert_eq!(service_call_message("Tray 6 error"), None);
        assert_eq!(service_call_message("fuser at 230 degrees"), None);
        assert_eq!(service_call_message(""), None);
    }
}
