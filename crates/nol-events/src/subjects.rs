//! The subject scheme.
//!
//! ```text
//! <prefix>.<province>.evt.<service>.<event>.<region>                  a province's own events
//! <prefix>.<dest-province>.xp.<origin-province>.<service>.<event>.<dest-region>
//!                                                                     cross-province messages
//! ```
//! Everything under `<prefix>.<province>.{evt,xp}.>` is stored by that province's stream `<PREFIX>_<province>`,
//! so a message addressed to another province is stored only by the destination's stream, and the
//! destination's ack is what the origin's relay waits for.

use nol_region::RegionCode;

use crate::EventType;

/// Subjects a province's NATS server may send and receive over the link between provinces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkPermissions {
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
}

/// Subjects and stream names for one deployment; the prefix lets tests and deployments share a
/// NATS account without seeing each other's messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectScheme {
    prefix: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a subject prefix is 1 to 32 lowercase letters, digits or '_', got {0:?}")]
pub struct SubjectSchemeError(String);

impl Default for SubjectScheme {
    fn default() -> Self {
        SubjectScheme { prefix: "nol".to_owned() }
    }
}

impl SubjectScheme {
    pub fn new(prefix: &str) -> Result<SubjectScheme, SubjectSchemeError> {
        let valid = !prefix.is_empty()
            && prefix.len() <= 32
            && prefix.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_');
        if !valid {
            return Err(SubjectSchemeError(prefix.to_owned()));
        }
        Ok(SubjectScheme { prefix: prefix.to_owned() })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The JetStream stream that stores everything addressed to `province`.
    pub fn stream_name(&self, province: &RegionCode) -> String {
        format!("{}_{}", self.prefix.to_ascii_uppercase(), province.province())
    }

    /// The subjects of that stream: the province's own events, and messages addressed to it.
    /// (Two filters rather than one `>`, so the link between provinces can allow exactly the
    /// second.)
    pub fn stream_subjects(&self, province: &RegionCode) -> Vec<String> {
        vec![
            format!("{}.{}.evt.>", self.prefix, province.province()),
            format!("{}.{}.xp.>", self.prefix, province.province()),
        ]
    }

    /// What a province's server may send over the link to other provinces (publish) and receive
    /// from them (subscribe): its own cross-province messages and the replies (stream acks) that
    /// travel on `_INBOX`. Nothing else crosses, in particular no province's own events.
    pub fn link_permissions(&self, province: &RegionCode) -> LinkPermissions {
        LinkPermissions {
            publish: vec![format!("{}.*.xp.{}.>", self.prefix, province.province()), "_INBOX.>".to_owned()],
            subscribe: vec![format!("{}.{}.xp.>", self.prefix, province.province()), "_INBOX.>".to_owned()],
        }
    }

    /// What one service of a province may do on its province's server: publish its own events
    /// (`<prefix>.<province>.evt.<service>.>`) and its own messages to other provinces
    /// (`<prefix>.*.xp.<province>.<service>.>`), use the JetStream API and acknowledge what it
    /// consumed; it receives only replies. It cannot publish another service's events.
    pub fn service_permissions(&self, province: &RegionCode, service: &str) -> LinkPermissions {
        let province = province.province();
        LinkPermissions {
            publish: vec![
                format!("{}.{province}.evt.{service}.>", self.prefix),
                format!("{}.*.xp.{province}.{service}.>", self.prefix),
                "$JS.API.>".to_owned(),
                "$JS.ACK.>".to_owned(),
            ],
            subscribe: vec!["_INBOX.>".to_owned()],
        }
    }

    /// A province's own event about `region`.
    pub fn local(&self, event_type: EventType, region: &RegionCode) -> String {
        format!("{}.{}.evt.{}.{}.{}", self.prefix, region.province(), event_type.service, event_type.name, region)
    }

    /// A message from `origin` to `destination`, stored by the destination's province.
    pub fn cross(&self, event_type: EventType, origin: &RegionCode, destination: &RegionCode) -> String {
        format!(
            "{}.{}.xp.{}.{}.{}.{}",
            self.prefix,
            destination.province(),
            origin.province(),
            event_type.service,
            event_type.name,
            destination
        )
    }

    /// Consumer filter: `province`'s own events of one type, for every region.
    pub fn local_filter(&self, province: &RegionCode, event_type: EventType) -> String {
        format!("{}.{}.evt.{}.{}.*", self.prefix, province.province(), event_type.service, event_type.name)
    }

    /// Consumer filter: messages of one type addressed to `province` from any province.
    pub fn cross_filter(&self, province: &RegionCode, event_type: EventType) -> String {
        format!("{}.{}.xp.*.{}.{}.*", self.prefix, province.province(), event_type.service, event_type.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CASE_OPENED, HANDOFF_REQUESTED};

    #[test]
    fn subjects_carry_province_and_region() {
        let scheme = SubjectScheme::default();
        let xuanwu = RegionCode::parse("320102").unwrap();
        let linquan = RegionCode::parse("341221").unwrap();
        assert_eq!(scheme.stream_name(&xuanwu), "NOL_320000");
        assert_eq!(scheme.stream_subjects(&xuanwu), ["nol.320000.evt.>", "nol.320000.xp.>"]);
        let link = scheme.link_permissions(&linquan);
        assert_eq!(link.publish, ["nol.*.xp.340000.>", "_INBOX.>"]);
        assert_eq!(link.subscribe, ["nol.340000.xp.>", "_INBOX.>"]);
        assert_eq!(scheme.local(CASE_OPENED, &xuanwu), "nol.320000.evt.cases.case_opened.320102");
        assert_eq!(
            scheme.cross(HANDOFF_REQUESTED, &xuanwu, &linquan),
            "nol.340000.xp.320000.transfer.handoff_requested.341221"
        );
        assert_eq!(scheme.cross_filter(&linquan, HANDOFF_REQUESTED), "nol.340000.xp.*.transfer.handoff_requested.*");
    }

    #[test]
    fn prefixes_are_single_tokens() {
        assert!(SubjectScheme::new("t_0a1b").is_ok());
        for bad in ["", "a.b", "A", "a>", "a*"] {
            assert!(SubjectScheme::new(bad).is_err(), "{bad}");
        }
    }
}
