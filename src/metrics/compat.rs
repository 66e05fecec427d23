//! The openstack-exporter compatible series, opt-in per database
//! (`compatibility: {openstack_exporter: true}`): `openstack_cinder_agent_state` and
//! `openstack_cinder_up`, with openstack-exporter's names and labels, so that the alert
//! rules and dashboards operators already run keep selecting the same services when
//! this exporter replaces it.
//!
//! The values are ours, not a second reading: the agent state is the API verdict of
//! `cinder_service_up` at the same instant, and one series is published per service by
//! the same row choice as the native series. Unlike openstack-exporter, which reads the
//! API, `uuid` is the row's real `services.uuid`, so it is stable across scrapes.

use super::exposition::{Exposition, LabelSet};
use super::labels::text;
use super::schema::{self, AGENT_STATE_LABELS};
use crate::cinder::{ServiceRow, Verdict};
use crate::snapshot::ServiceState;

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

/// `openstack_cinder_up`, the same value as `cinder_up`.
pub fn render_up(out: &mut Exposition, up: f64) {
    out.family(&schema::COMPAT_UP);
    out.plain(schema::COMPAT_UP.name, up);
}

/// One service's `openstack_cinder_agent_state` sample: the API verdict, with the
/// labels built at poll time. A service polled while compatibility was off (none:
/// the setting is fixed for the process) has no labels and no sample.
pub fn agent_state_sample(
    out: &mut Exposition,
    name: &str,
    service: &ServiceState,
    verdict: Option<&Verdict>,
) {
    if let (Some(labels), Some(verdict)) = (&service.compat_labels, verdict) {
        let up = if verdict.api_up { 1.0 } else { 0.0 };
        out.sample(name, labels, "", up);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
