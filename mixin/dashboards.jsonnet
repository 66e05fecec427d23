// grafana/*.json: the mixin's dashboards, one file each (`jsonnet -m grafana`;
// mixin/build writes them).
(import 'mixin.libsonnet').grafanaDashboards
