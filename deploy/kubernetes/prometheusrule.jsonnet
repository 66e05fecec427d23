// The PrometheusRule of deploy/kubernetes: the mixin's recording rules and alerts, the
// same groups as alerts/cinder-exporter.rules.yml. deploy/kubernetes/build writes
// prometheusrule.json from it; tests/kubernetes.rs holds the two equal. To change the
// selectors or thresholds, override the mixin's _config here.
local mixin = import '../../mixin/mixin.libsonnet';

{
  apiVersion: 'monitoring.coreos.com/v1',
  kind: 'PrometheusRule',
  metadata: {
    name: 'cinder-exporter',
    labels: { 'app.kubernetes.io/name': 'cinder-exporter' },
  },
  spec: {
    groups: mixin.prometheusRules.groups + mixin.prometheusAlerts.groups,
  },
}
