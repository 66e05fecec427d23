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

use super::exposition::Exposition;
use crate::cinder::Verdict;
use crate::series::schema;
use crate::snapshot::ServiceState;

/// `openstack_cinder_up`, the same value as `cinder_up`.
pub fn render_up(out: &mut Exposition, up: f64) {
    out.family(&schema::COMPAT_UP);
    out.plain(schema::COMPAT_UP.name, up);
}

/// One service's `openstack_cinder_agent_state` sample: the API verdict, with the
/// labels built at poll time. A service polled while compatibility was off has no
/// labels and no sample (the family is written only after a poll that built them).
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
