//! The label sets of a service's series, built once per poll from its row with the
//! label names of the schema: escaped, and bounded in length.

use super::label_set::LabelSet;
use super::schema::{
    AGENT_STATE_LABELS, CLUSTER_LABELS, INFO, MAX_LABEL_VALUE_BYTES, SERVICE_LABELS,
};
use crate::cinder::{Cluster, ServiceRow};

/// `host`, `binary`, `zone`: the identity labels of every per-service series.
pub fn identity_labels(row: &ServiceRow) -> LabelSet {
    let values = [&row.host, &row.binary, &row.availability_zone].map(text);
    LabelSet::new(SERVICE_LABELS.into_iter().zip(values))
}

/// The labels `cinder_service_info` adds to the identity, in the schema's order.
/// NULL and columns this schema lacks read as "".
pub fn info_labels(row: &ServiceRow) -> LabelSet {
    let values = [
        text(&row.cluster_name),
        bounded(row.backend()),
        text(&row.disabled_reason),
        text(&row.uuid),
        text(&row.rpc_current_version),
        text(&row.object_current_version),
        text(&row.replication_status),
        flag(row.frozen),
        text(&row.active_backend_id),
    ];
    LabelSet::new(INFO.labels.iter().copied().zip(values))
}

/// The label set of a service's `openstack_cinder_agent_state`, built once per poll:
/// `uuid`, `hostname` (host), `service` (binary), `adminState`, `zone`,
/// `disabledReason`. NULL (and columns this schema lacks, `uuid` before Queens) read
/// as "", as openstack-exporter shows a missing reason.
pub fn agent_state_labels(row: &ServiceRow) -> LabelSet {
    let admin_state = if row.enabled() { "enabled" } else { "disabled" };
    let values = [
        text(&row.uuid),
        text(&row.host),
        text(&row.binary),
        admin_state,
        text(&row.availability_zone),
        text(&row.disabled_reason),
    ];
    LabelSet::new(AGENT_STATE_LABELS.into_iter().zip(values))
}

/// `cluster`, `binary`: the labels of every per-cluster series.
pub fn cluster_labels(cluster: &Cluster) -> LabelSet {
    let values = [cluster.name.as_str(), cluster.binary.as_str()].map(bounded);
    LabelSet::new(CLUSTER_LABELS.into_iter().zip(values))
}

/// A nullable text column as a label value: "" for NULL, bounded.
pub fn text(value: &Option<String>) -> &str {
    bounded(value.as_deref().unwrap_or(""))
}

fn flag(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "true",
        Some(false) => "false",
        None => "",
    }
}

/// Cuts `value` to at most [`MAX_LABEL_VALUE_BYTES`] bytes on a character boundary.
pub fn bounded(value: &str) -> &str {
    if value.len() <= MAX_LABEL_VALUE_BYTES {
        return value;
    }
    let mut end = MAX_LABEL_VALUE_BYTES;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_cuts_on_a_char_boundary() {
        let long = "é".repeat(MAX_LABEL_VALUE_BYTES);
        let cut = bounded(&long);
        assert!(cut.len() <= MAX_LABEL_VALUE_BYTES && cut.len() >= MAX_LABEL_VALUE_BYTES - 1);
        assert_eq!(bounded("short"), "short");
    }

    #[test]
    fn labels_follow_the_schema_names() {
        let row = ServiceRow {
            host: Some("ctl1@lvm".into()),
            binary: Some("cinder-volume".into()),
            disabled_reason: Some("say \"hi\"".into()),
            frozen: Some(false),
            ..Default::default()
        };
        assert_eq!(
            identity_labels(&row).as_str(),
            r#"host="ctl1@lvm",binary="cinder-volume",zone="""#
        );
        assert_eq!(
            info_labels(&row).as_str(),
            r#"cluster="",backend="lvm",disabled_reason="say \"hi\"",uuid="",rpc_version="",object_version="",replication_status="",frozen="false",active_backend_id="""#
        );
    }

    #[test]
    fn labels_are_openstack_exporters() {
        let row = ServiceRow {
            host: Some("ctl1@lvm".into()),
            binary: Some("cinder-volume".into()),
            availability_zone: Some("nova".into()),
            disabled: Some(true),
            disabled_reason: Some("disk \"swap\"".into()),
            uuid: Some("5f0c".into()),
            ..Default::default()
        };
        assert_eq!(
            agent_state_labels(&row).as_str(),
            r#"uuid="5f0c",hostname="ctl1@lvm",service="cinder-volume",adminState="disabled",zone="nova",disabledReason="disk \"swap\"""#
        );
        let bare = ServiceRow::default();
        assert_eq!(
            agent_state_labels(&bare).as_str(),
            r#"uuid="",hostname="",service="",adminState="enabled",zone="",disabledReason="""#
        );
    }
}
