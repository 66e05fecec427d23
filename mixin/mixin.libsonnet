// The cinder_exporter monitoring mixin: _config, prometheusRules (recording rules),
// prometheusAlerts and grafanaDashboards, as node_exporter's and mysqld_exporter's
// mixins lay them out. mixin/build writes the shipped files from it.
(import 'config.libsonnet')
+ (import 'rules.libsonnet')
+ (import 'alerts.libsonnet')
+ (import 'dashboards.libsonnet')
