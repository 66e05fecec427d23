// The recording rules (prometheusRules): what the alerts and the dashboard share.
// Per-service ones keep the labels job, instance, host, binary, zone; per-group ones
// say which labels they keep.
{
  prometheusRules+:: {
    groups+: [
      {
        name: 'cinder-exporter.recording',
        rules: [
          {
            comment:: |||
              Enabled services that cinder-api shows down, labelled with the one cause the
              exporter diagnosed (value 1). The dashboard counts them; CinderServiceDown
              and the cause-specific alerts select from them.
            |||,
            record: 'cinder:service_down:cause',
            expr: |||
              (cinder_service_down_cause == 1)
                and on(job, instance, host, binary, zone) (cinder_service_up == 0)
                and on(job, instance, host, binary, zone) (cinder_service_enabled == 1)
            |||,
          },
          {
            comment:: |||
              Enabled services per (job, instance, zone, binary).
            |||,
            record: 'cinder:service_enabled:sum_by_zone_binary',
            expr: |||
              sum by (job, instance, zone, binary) (cinder_service_enabled)
            |||,
          },
          {
            comment:: |||
              Enabled services that cinder-api shows up, per (job, instance, zone, binary).
            |||,
            record: 'cinder:service_enabled_up:sum_by_zone_binary',
            expr: |||
              sum by (job, instance, zone, binary) (
                cinder_service_up * on(job, instance, host, binary, zone) cinder_service_enabled
              )
            |||,
          },
          {
            comment:: |||
              The least clock skew the exporter's bound proves: |offset| - uncertainty,
              floored at 0. Absent until the exporter has bracketed a heartbeat.
            |||,
            record: 'cinder:service_clock_skew_seconds:lower_bound',
            expr: |||
              clamp_min(
                abs(cinder_service_clock_offset_seconds)
                  - on(job, instance, host, binary, zone) cinder_service_clock_offset_uncertainty_seconds,
                0
              )
            |||,
          },
          {
            comment:: |||
              That proven skew as a fraction of the skew budget (service_down_time -
              report_interval): above 1 the service flaps or stays down in cinder-api.
            |||,
            record: 'cinder:service_clock_skew_seconds:lower_bound_ratio_budget',
            expr: |||
              cinder:service_clock_skew_seconds:lower_bound
                / on(job, instance) group_left cinder_service_skew_budget_seconds
            |||,
          },
          {
            comment:: |||
              Observed mean heartbeat interval as a multiple of report_interval (1 = on time).
            |||,
            record: 'cinder:service_heartbeat_interval_seconds:ratio_report_interval',
            expr: |||
              cinder_service_heartbeat_interval_seconds
                / on(job, instance) group_left cinder_config_report_interval_seconds
            |||,
          },
        ],
      },
    ],
  },
}
