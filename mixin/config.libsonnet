// The mixin's settings. Override any of them when importing the mixin:
//   (import 'mixin/mixin.libsonnet') + { _config+:: { selector: 'job="cinder-eu"' } }
{
  _config+:: {
    // Which scrape jobs are the exporter's, as a PromQL label matcher.
    selector: 'job="cinder"',
    // Where each alert's runbook_url points, followed by `#<alert name in lower case>`.
    runbookURL: 'https://github.com/cinder-exporter/cinder_exporter/blob/main/alerts/RUNBOOK.md',
    // The dashboard's uid, stable so that links to it keep working.
    dashboardUID: 'cinder-services',
  },
}
