// The mixin's settings. Override any of them when importing the mixin, e.g.
//   (import 'mixin/mixin.libsonnet') + { _config+:: { selector: 'job="cinder-eu"' } }
{
  _config+:: {
    // The exporter's series, as PromQL label matchers: every selector of every rule
    // and panel carries them. The default matches the scrape jobs of mixin/README.md:
    // `cinder` (one database on /metrics), `cinder-probe` (several, on /probe) and
    // `cinder-exporter` (the exporter process itself when it serves only targets).
    selector: 'job=~"cinder|cinder-probe|cinder-exporter"',

    // The label that tells one cinder database (a region) from another. `instance`
    // is the target: the exporter's address on /metrics, the target name on /probe
    // (the scrape config relabels __param_target to it). Any label Prometheus
    // attaches to every series of a target will do.
    regionLabel: 'instance',

    // The labels that identify a target, kept by every aggregation: job, instance
    // and the region label.
    targetLabels: std.join(', ', ['job', 'instance'] + (
      if std.member(['job', 'instance'], self.regionLabel) then [] else [self.regionLabel]
    )),

    // Where each alert's runbook_url points, followed by `#<alert name in lower case>`.
    runbookURL: 'https://github.com/cinder-exporter/cinder_exporter/blob/main/alerts/RUNBOOK.md',

    // The dashboard's uid, stable so that links to it keep working.
    dashboardUID: 'cinder-services',

    // Thresholds. The ones cinder defines (service_down_time, report_interval, the
    // skew budget) come from the exporter's own series; these are policy.
    //
    // CinderServiceHeartbeatsMissed: heartbeats missed in a row.
    heartbeatsMissed: 2,
    // CinderServiceClockSkewNearBudget: proven skew, as a share of the skew budget.
    clockSkewNearBudget: 0.5,
    // CinderServiceHeartbeatLate: observed interval, in report_intervals.
    heartbeatLateRatio: 1.5,
    // CinderServiceFlapping: verdict changes within the window.
    flappingChanges: 4,
    flappingWindow: '30m',
    // CinderServiceRecordStale: days without a heartbeat.
    recordStaleDays: 3,
    // CinderExporterClockSkew: exporter minus database clock, as a share of the
    // skew budget.
    exporterClockSkewShare: 0.1,
    // CinderExporterAbsent: how long a target that left the scrape configuration is
    // missed (the alert then resolves by itself).
    targetForgottenAfter: '1d',
  },
}
