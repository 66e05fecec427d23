// The recording rules (prometheusRules): what the alerts and the dashboard share.
// Per-service ones keep the labels job, instance, host, binary, zone (and every other
// label of the target); per-group ones keep the target's labels (_config.targetLabels)
// and say which others they keep. Their inputs carry _config.selector; what they
// record is selected by name only.
{
  prometheusRules+:: {
    local c = $._config,
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
              (cinder_service_down_cause{%(selector)s} == 1)
                and on(job, instance, host, binary, zone) (cinder_service_up{%(selector)s} == 0)
                and on(job, instance, host, binary, zone) (cinder_service_enabled{%(selector)s} == 1)
            ||| % c,
          },
          {
            comment:: |||
              Enabled services per target, zone and binary.
            |||,
            record: 'cinder:service_enabled:sum_by_zone_binary',
            expr: |||
              sum by (%(targetLabels)s, zone, binary) (cinder_service_enabled{%(selector)s})
            ||| % c,
          },
          {
            comment:: |||
              Enabled services that cinder-api shows up, per target, zone and binary.
            |||,
            record: 'cinder:service_enabled_up:sum_by_zone_binary',
            expr: |||
              sum by (%(targetLabels)s, zone, binary) (
                cinder_service_up{%(selector)s} * on(job, instance, host, binary, zone) cinder_service_enabled{%(selector)s}
              )
            ||| % c,
          },
          {
            comment:: |||
              The least clock skew the exporter's bound proves: |offset| - uncertainty,
              floored at 0. Absent until the exporter has bracketed a heartbeat.
            |||,
            record: 'cinder:service_clock_skew_seconds:lower_bound',
            expr: |||
              clamp_min(
                abs(cinder_service_clock_offset_seconds{%(selector)s})
                  - on(job, instance, host, binary, zone) cinder_service_clock_offset_uncertainty_seconds{%(selector)s},
                0
              )
            ||| % c,
          },
          {
            comment:: |||
              That proven skew as a fraction of the skew budget (service_down_time -
              report_interval): above 1 the service flaps or stays down in cinder-api.
            |||,
            record: 'cinder:service_clock_skew_seconds:lower_bound_ratio_budget',
            expr: |||
              cinder:service_clock_skew_seconds:lower_bound
                / on(job, instance) group_left cinder_service_skew_budget_seconds{%(selector)s}
            ||| % c,
          },
          {
            comment:: |||
              Observed mean heartbeat interval as a multiple of report_interval (1 = on time).
            |||,
            record: 'cinder:service_heartbeat_interval_seconds:ratio_report_interval',
            expr: |||
              cinder_service_heartbeat_interval_seconds{%(selector)s}
                / on(job, instance) group_left cinder_config_report_interval_seconds{%(selector)s}
            ||| % c,
          },
        ],
      },
    ],
  },
}
