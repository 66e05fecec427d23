// The Grafana dashboard (grafanaDashboards): every service as cinder judges it, why
// the down ones are down, their heartbeats and clocks, clusters, and the exporter.
local g = import 'lib/grafana.libsonnet';

local upDown = g.valueMapping([['1', 'up', 'green'], ['0', 'down', 'red']]);
local okFailing = g.valueMapping([['1', 'ok', 'green'], ['0', 'failing', 'red']]);

{
  grafanaDashboards+:: {
    local c = $._config,
    // The dashboard's filters, as label matchers.
    local job = 'job=~"$job"',
    local services = job + ',zone=~"$zone",binary=~"$binary",host=~"$host"',
    local groups = job + ',zone=~"$zone",binary=~"$binary"',
    local clusters = job + ',binary=~"$binary"',
    local perService = 'job, instance, host, binary, zone',

    local overview = [
      g.row(1, 'Overview', 0),
      g.stat(
        2,
        'Up',
        'Enabled services that cinder-api (openstack volume service list) shows up.',
        { h: 4, w: 4, x: 0, y: 1 },
        [g.instant('count((cinder_service_up{%s} == 1) and on(%s) (cinder_service_enabled{%s} == 1)) or vector(0)' % [services, perService, services])],
        'none',
        [['green', null]],
      ),
      g.stat(
        3,
        'Down',
        'Enabled services that cinder-api shows down (recording rule cinder:service_down:cause, as CinderServiceDown).',
        { h: 4, w: 4, x: 4, y: 1 },
        [g.instant('count(cinder:service_down:cause{%s}) or vector(0)' % services)],
        'none',
        [['green', null], ['red', 1]],
      ),
      g.stat(
        4,
        'Disabled',
        'Services an operator disabled (openstack volume service set --disable).',
        { h: 4, w: 4, x: 8, y: 1 },
        [g.instant('count(cinder_service_enabled{%s} == 0) or vector(0)' % services)],
        'none',
        [['blue', null]],
      ),
      g.stat(
        5,
        'Verdicts disagree',
        'Services that cinder-api and the scheduler judge differently: a clock ahead by more than service_down_time (down, yet scheduled) or no updated_at yet (up, yet not scheduled).',
        { h: 4, w: 4, x: 12, y: 1 },
        [g.instant('count(cinder_service_up{%s} != on(%s) cinder_service_scheduler_up{%s}) or vector(0)' % [services, perService, services])],
        'none',
        [['green', null], ['orange', 1]],
      ),
      g.stat(
        6,
        'Database read',
        "cinder_up: 1 if the exporter's latest poll of cinder's services table succeeded.",
        { h: 4, w: 4, x: 16, y: 1 },
        [g.instant('min(cinder_up{%s})' % job)],
        'none',
        [['red', null], ['green', 1]],
        [okFailing],
      ),
      g.stat(
        7,
        'Last successful poll',
        'Seconds since the exporter last read the services table (per-service series are withheld once this exceeds stale_after).',
        { h: 4, w: 4, x: 20, y: 1 },
        [g.instant('time() - min(cinder_exporter_last_successful_poll_timestamp_seconds{%s})' % job)],
        's',
        [['green', null], ['orange', 10], ['red', 30]],
      ),
      g.bargauge(
        8,
        'Enabled services up, per zone and binary',
        'Share of the enabled services of each binary in each zone that cinder-api shows up (recording rules cinder:service_enabled_up:sum_by_zone_binary / cinder:service_enabled:sum_by_zone_binary; 0 fires CinderBinaryDownInZone).',
        { h: 7, w: 12, x: 0, y: 5 },
        [g.instant(std.rstripChars(|||
          cinder:service_enabled_up:sum_by_zone_binary{%s}
            / on(job, instance, zone, binary)
          (cinder:service_enabled:sum_by_zone_binary{%s} > 0)
        ||| % [groups, groups], '\n'), legend='{{zone}} {{binary}}')],
        {
          unit: 'percentunit',
          min: 0,
          max: 1,
          thresholds: g.thresholds([['red', null], ['orange', 0.01], ['green', 1]]),
          color: { mode: 'thresholds' },
        },
      ),
      g.piechart(
        9,
        'Down services by cause',
        'Why the enabled services that are down are down, as the exporter diagnosed it: heartbeat_stopped, clock_skew, heartbeat_late, unknown (recording rule cinder:service_down:cause).',
        { h: 7, w: 12, x: 12, y: 5 },
        [g.instant('count by (cause) (cinder:service_down:cause{%s})' % services, legend='{{cause}}')],
      ),
    ],

    // The services table: one instant query per column, merged on the labels.
    local column(refId, metric, labels=perService, filter='') =
      g.instant('max by (%s) (%s{%s}%s)' % [labels, metric, services, filter], refId, format='table'),
    local seconds(name) = {
      matcher: { id: 'byName', options: name },
      properties: [{ id: 'unit', value: 's' }, { id: 'decimals', value: 1 }],
    },
    local mapped(name, mapping, cellType) = {
      matcher: { id: 'byName', options: name },
      properties: [
        { id: 'mappings', value: [mapping] },
        { id: 'custom.cellOptions', value: { type: cellType } },
      ],
    },
    local servicesRow = [
      g.row(10, 'Services', 12),
      g.table(
        11,
        'Services',
        "One row per service (host, binary, zone): cinder-api's verdict, the scheduler's, enabled, the diagnosed cause, heartbeat age (negative: clock ahead), clock offset (service minus database), observed heartbeat interval and the disabled reason. Instant queries merged on host, binary, zone.",
        { h: 10, w: 24, x: 0, y: 13 },
        [
          column('A', 'cinder_service_up'),
          column('B', 'cinder_service_scheduler_up'),
          column('C', 'cinder_service_enabled'),
          column('D', 'cinder_service_down_cause', perService + ', cause', ' == 1'),
          column('E', 'cinder_service_heartbeat_age_seconds'),
          column('F', 'cinder_service_clock_offset_seconds'),
          column('G', 'cinder_service_heartbeat_interval_seconds'),
          column('H', 'cinder_service_info', perService + ', disabled_reason, cluster'),
        ],
        [
          { id: 'merge', options: {} },
          {
            id: 'organize',
            options: {
              excludeByName: {
                Time: true,
                job: true,
                instance: true,
                'Value #D': true,
                'Value #H': true,
              },
              indexByName: {
                host: 0,
                binary: 1,
                zone: 2,
                'Value #A': 3,
                'Value #B': 4,
                'Value #C': 5,
                cause: 6,
                'Value #E': 7,
                'Value #F': 8,
                'Value #G': 9,
                disabled_reason: 10,
                cluster: 11,
              },
              renameByName: {
                'Value #A': 'cinder-api',
                'Value #B': 'scheduler',
                'Value #C': 'enabled',
                cause: 'cause',
                'Value #E': 'heartbeat age',
                'Value #F': 'clock offset',
                'Value #G': 'heartbeat interval',
                disabled_reason: 'disabled reason',
              },
            },
          },
        ],
        {
          defaults: {
            custom: { align: 'auto', cellOptions: { type: 'auto' }, filterable: true },
          },
          overrides: [
            mapped('cinder-api', upDown, 'color-background'),
            mapped('scheduler', upDown, 'color-background'),
            mapped(
              'enabled',
              g.valueMapping([['1', 'enabled', 'green'], ['0', 'disabled', 'blue']]),
              'color-text'
            ),
            mapped('cause', g.valueMapping([
              ['none', '', 'transparent'],
              ['heartbeat_stopped', 'heartbeat stopped', 'red'],
              ['clock_skew', 'clock skew', 'orange'],
              ['heartbeat_late', 'heartbeat late', 'yellow'],
              ['unknown', 'unknown', 'purple'],
            ]), 'color-text'),
            seconds('heartbeat age'),
            seconds('clock offset'),
            seconds('heartbeat interval'),
          ],
        },
        { showHeader: true, cellHeight: 'sm', sortBy: [{ displayName: 'cinder-api', desc: false }] },
      ),
      g.stateTimeline(
        12,
        'cinder-api verdict over time',
        'cinder_service_up per service: flapping shows as stripes.',
        { h: 8, w: 24, x: 0, y: 23 },
        [g.range('cinder_service_up{%s}' % services, '{{host}} {{binary}}')],
        upDown,
      ),
    ],

    local perHost = '{{host}} {{binary}}',
    local heartbeats = [
      g.row(13, 'Heartbeats and clocks', 31),
      g.timeseries(
        14,
        'Heartbeat age',
        'Database clock minus updated_at (or created_at). cinder-api shows a service down beyond +/- service_down_time; negative ages mean the service clock runs ahead.',
        { h: 8, w: 12, x: 0, y: 32 },
        [
          g.range('cinder_service_heartbeat_age_seconds{%s}' % services, perHost),
          g.range('max(cinder_config_service_down_time_seconds{%s})' % job, 'service_down_time', 'B'),
          g.range('-max(cinder_config_service_down_time_seconds{%s})' % job, '-service_down_time', 'C'),
        ],
        's',
        overrides=[g.referenceLine('^-?service_down_time$', 'red')],
      ),
      g.timeseries(
        15,
        'Clock offset (service minus database)',
        'Estimated clock offset of each service node (positive: ahead), with the skew budget service_down_time - report_interval on either side.',
        { h: 8, w: 12, x: 12, y: 32 },
        [
          g.range('cinder_service_clock_offset_seconds{%s}' % services, perHost),
          g.range('max(cinder_service_skew_budget_seconds{%s})' % job, 'skew budget', 'B'),
          g.range('-max(cinder_service_skew_budget_seconds{%s})' % job, '-skew budget', 'C'),
        ],
        's',
        overrides=[
          g.referenceLine('^-?skew budget$', 'orange'),
          {
            matcher: { id: 'byName', options: 'skew budget' },
            properties: [
              { id: 'custom.fillBelowTo', value: '-skew budget' },
              { id: 'custom.fillOpacity', value: 8 },
            ],
          },
        ],
      ),
      g.timeseries(
        16,
        'Proven clock skew, share of the budget',
        '(|offset| - uncertainty) / skew budget (recording rule cinder:service_clock_skew_seconds:lower_bound_ratio_budget): above 50% CinderServiceClockSkewNearBudget, above 100% CinderServiceClockSkew.',
        { h: 8, w: 12, x: 0, y: 40 },
        [g.range('cinder:service_clock_skew_seconds:lower_bound_ratio_budget{%s}' % services, perHost)],
        'percentunit',
        [['green', null], ['orange', 0.5], ['red', 1]],
        'dashed',
      ),
      g.timeseries(
        17,
        'Heartbeat interval',
        'Observed mean time between heartbeats, against report_interval (expected) and service_down_time (at or above it the service can never stay up).',
        { h: 8, w: 12, x: 12, y: 40 },
        [
          g.range('cinder_service_heartbeat_interval_seconds{%s}' % services, perHost),
          g.range('max(cinder_config_report_interval_seconds{%s})' % job, 'report_interval', 'B'),
          g.range('max(cinder_config_service_down_time_seconds{%s})' % job, 'service_down_time', 'C'),
        ],
        's',
        overrides=[
          g.referenceLine('^report_interval$', 'green'),
          g.referenceLine('^service_down_time$', 'red'),
        ],
      ),
      g.timeseries(
        24,
        'Heartbeats missed (early warning)',
        "Heartbeats missed in a row by each service's own observed interval, a heartbeat counting once half an interval overdue: silence / interval - 0.5, floored. At 2 CinderServiceHeartbeatsMissed fires, while cinder may still show the service up.",
        { h: 8, w: 12, x: 0, y: 48 },
        [g.range(std.rstripChars(|||
          clamp_min(
            floor(
              cinder_service_heartbeat_silence_seconds{%s}
                / on(%s) cinder_service_heartbeat_interval_seconds
              - 0.5
            ),
            0
          )
        ||| % [services, perService], '\n'), perHost)],
        'none',
        [['green', null], ['orange', 2]],
        'line',
        extra={ min: 0, decimals: 0 },
      ),
      g.timeseries(
        18,
        'Heartbeats per minute',
        'Heartbeats recorded per minute (rate of report_count), against the expected 60 / report_interval.',
        { h: 8, w: 12, x: 12, y: 48 },
        [
          g.range('rate(cinder_service_reports_total{%s}[$__rate_interval]) * 60' % services, perHost),
          g.range('60 / max(cinder_config_report_interval_seconds{%s})' % job, 'expected', 'B'),
        ],
        'none',
        overrides=[g.referenceLine('^expected$', 'green')],
      ),
    ],

    local clusterRow = [
      g.row(25, 'Clusters', 56),
      g.table(
        26,
        'Clusters',
        "Active-active clusters (services sharing a cluster_name) as cinder's Cluster.is_up judges them: up while the freshest member heartbeat is within service_down_time. Members up use the scheduler rule. No member up fires CinderClusterDown.",
        { h: 9, w: 12, x: 0, y: 57 },
        [
          g.instant('cinder_cluster_up{%s}' % clusters, 'A', null, 'table'),
          g.instant('cinder_cluster_services_up{%s}' % clusters, 'B', null, 'table'),
          g.instant('cinder_cluster_services{%s}' % clusters, 'C', null, 'table'),
        ],
        [
          { id: 'merge', options: {} },
          {
            id: 'organize',
            options: {
              excludeByName: { Time: true, job: true, instance: true },
              renameByName: {
                cluster: 'Cluster',
                binary: 'Binary',
                'Value #A': 'Up',
                'Value #B': 'Members up',
                'Value #C': 'Members',
              },
              indexByName: { cluster: 0, binary: 1, 'Value #A': 2, 'Value #B': 3, 'Value #C': 4 },
            },
          },
        ],
        {
          defaults: { custom: { align: 'auto' } },
          overrides: [
            mapped('Up', g.valueMapping([['0', 'down', 'red'], ['1', 'up', 'green']], false), 'color-background'),
          ],
        },
        { showHeader: true, sortBy: [{ displayName: 'Up', desc: false }] },
      ),
      g.stateTimeline(
        27,
        'Clusters up over time',
        'cinder_cluster_up per cluster: up while any member heartbeats within service_down_time.',
        { h: 9, w: 12, x: 12, y: 57 },
        [g.range('cinder_cluster_up{%s}' % clusters, '{{cluster}} {{binary}}')],
        upDown,
      ),
    ],

    local exporter = [
      g.row(19, 'Exporter', 66),
      g.timeseries(
        20,
        'Poll duration',
        "Wall time of the exporter's latest poll of the services table.",
        { h: 8, w: 6, x: 0, y: 67 },
        [g.range('cinder_exporter_poll_duration_seconds{%s}' % job, '{{instance}}')],
        's',
      ),
      g.timeseries(
        21,
        'Poll errors',
        'Failed polls per second (database unreachable, timed out, or not a cinder schema).',
        { h: 8, w: 6, x: 6, y: 67 },
        [g.range('rate(cinder_exporter_poll_errors_total{%s}[$__rate_interval])' % job, '{{instance}}')],
        'none',
      ),
      g.timeseries(
        22,
        'Exporter clock minus database clock',
        "Every heartbeat age is measured against the database clock; this is how far the exporter host's clock is from it (CinderExporterClockSkew beyond a tenth of the skew budget).",
        { h: 8, w: 6, x: 12, y: 67 },
        [g.range('cinder_exporter_database_clock_offset_seconds{%s}' % job, '{{instance}}')],
        's',
      ),
      g.stateTimeline(
        23,
        'Database read and scrape',
        "cinder_up (the exporter's latest poll of the database succeeded) and up (Prometheus scraped the exporter).",
        { h: 8, w: 6, x: 18, y: 67 },
        [
          g.range('cinder_up{%s}' % job, 'database {{instance}}'),
          g.range('up{%s}' % job, 'scrape {{instance}}', 'B'),
        ],
        okFailing,
      ),
    ],

    'cinder-services.json': {
      uid: c.dashboardUID,
      title: 'Cinder services',
      description: 'OpenStack Cinder services as cinder judges them, and why they are down (cinder_exporter). Needs the recording rules of alerts/cinder-exporter.rules.yml.',
      tags: ['cinder', 'openstack', 'cinder_exporter'],
      timezone: 'browser',
      editable: true,
      graphTooltip: 1,
      schemaVersion: 39,
      version: 1,
      refresh: '30s',
      time: { from: 'now-6h', to: 'now' },
      timepicker: {},
      fiscalYearStartMonth: 0,
      liveNow: false,
      links: [{
        title: 'Runbook',
        type: 'link',
        url: c.runbookURL,
        targetBlank: true,
        icon: 'doc',
        tooltip: 'What each cinder alert means and how to fix it',
      }],
      annotations: {
        list: [{
          builtIn: 1,
          datasource: { type: 'grafana', uid: '-- Grafana --' },
          enable: true,
          hide: true,
          iconColor: 'rgba(0, 211, 255, 1)',
          name: 'Annotations & Alerts',
          type: 'dashboard',
        }],
      },
      templating: {
        list: [
          {
            name: 'datasource',
            label: 'Data source',
            type: 'datasource',
            query: 'prometheus',
            current: {},
            hide: 0,
            refresh: 1,
            regex: '',
            options: [],
            multi: false,
            includeAll: false,
          },
          g.queryVariable('job', 'Job', 'cinder_up'),
          g.queryVariable('zone', 'Zone', 'cinder_service_up{job=~"$job"}'),
          g.queryVariable('binary', 'Binary', 'cinder_service_up{job=~"$job", zone=~"$zone"}'),
          g.queryVariable('host', 'Host', 'cinder_service_up{job=~"$job", zone=~"$zone", binary=~"$binary"}'),
        ],
      },
      panels: overview + servicesRow + heartbeats + clusterRow + exporter,
    },
  },
}
