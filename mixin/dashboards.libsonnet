// The Grafana dashboard (grafanaDashboards): every service as cinder judges it, why
// the down ones are down, their heartbeats and clocks, clusters, and the exporter.
// Every query carries _config.selector and the variables; a region variable
// (_config.regionLabel, multi-select) picks the cinder databases shown, and every
// list, legend, threshold line and "database read" names or splits by the region.
local g = import 'lib/grafana.libsonnet';

local upDown = g.valueMapping([['1', 'up', 'green'], ['0', 'down', 'red']]);
local okFailing = g.valueMapping([['1', 'ok', 'green'], ['0', 'failing', 'red']]);

{
  grafanaDashboards+:: {
    local c = $._config,
    local region = c.regionLabel,
    // The dashboard's filters, as label matchers: the selected targets (regions), and
    // their services, zones and binaries.
    local target = '%s,job=~"$job",%s=~"$%s"' % [c.selector, region, region],
    local services = target + ',zone=~"$zone",binary=~"$binary",host=~"$host"',
    local groups = target + ',zone=~"$zone",binary=~"$binary"',
    local clusters = target + ',binary=~"$binary"',
    // Joins stay within one target; aggregations keep the target's labels.
    local perService = 'job, instance, host, binary, zone',
    local byService = c.targetLabels + ', host, binary, zone',
    local inRegion = '{{%s}}' % region,
    local perHost = inRegion + ' {{host}} {{binary}}',
    // A threshold of each region (cinder.conf's, as the exporter publishes it), for a
    // dashed reference line named `name <region>`.
    local threshold(refId, name, metric, sign='', times='') =
      g.range('%s%smax by (%s) (%s{%s})' % [times, sign, region, metric, target], name + ' ' + inRegion, refId),

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
        "cinder_up per region: 1 if the exporter's latest poll of that region's services table succeeded.",
        { h: 4, w: 4, x: 16, y: 1 },
        [g.instant('min by (%s) (cinder_up{%s})' % [region, target], legend=inRegion)],
        'none',
        [['red', null], ['green', 1]],
        [okFailing],
        textMode='value_and_name',
      ),
      g.stat(
        7,
        'Last successful poll',
        "Seconds since the exporter last read each region's services table (per-service series are withheld once this exceeds stale_after).",
        { h: 4, w: 4, x: 20, y: 1 },
        [g.instant(
          'time() - max by (%s) (cinder_exporter_last_successful_poll_timestamp_seconds{%s})' % [region, target],
          legend=inRegion,
        )],
        's',
        [['green', null], ['orange', 10], ['red', 30]],
        textMode='value_and_name',
      ),
      g.bargauge(
        8,
        'Enabled services up, per region, zone and binary',
        'Share of the enabled services of each binary in each zone of each region that cinder-api shows up (recording rules cinder:service_enabled_up:sum_by_zone_binary / cinder:service_enabled:sum_by_zone_binary; 0 fires CinderBinaryDownInZone).',
        { h: 7, w: 12, x: 0, y: 5 },
        [g.instant(std.rstripChars(|||
          cinder:service_enabled_up:sum_by_zone_binary{%s}
            / on(%s, zone, binary)
          (cinder:service_enabled:sum_by_zone_binary{%s} > 0)
        ||| % [groups, c.targetLabels, groups], '\n'), legend=inRegion + ' {{zone}} {{binary}}')],
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
        [g.instant(
          'count by (%s, cause) (cinder:service_down:cause{%s})' % [region, services],
          legend=inRegion + ' {{cause}}',
        )],
      ),
    ],

    // The services table: one instant query per column, merged on the labels.
    local column(refId, metric, labels=byService, filter='') =
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
        "One row per service (region, host, binary, zone): cinder-api's verdict, the scheduler's, enabled, the diagnosed cause, heartbeat age (negative: clock ahead), clock offset (service minus database), observed heartbeat interval and the disabled reason. Instant queries merged on region, host, binary, zone.",
        { h: 10, w: 24, x: 0, y: 13 },
        [
          column('A', 'cinder_service_up'),
          column('B', 'cinder_service_scheduler_up'),
          column('C', 'cinder_service_enabled'),
          column('D', 'cinder_service_down_cause', byService + ', cause', ' == 1'),
          column('E', 'cinder_service_heartbeat_age_seconds'),
          column('F', 'cinder_service_clock_offset_seconds'),
          column('G', 'cinder_service_heartbeat_interval_seconds'),
          column('H', 'cinder_service_info', byService + ', disabled_reason, cluster'),
        ],
        [
          { id: 'merge', options: {} },
          {
            id: 'organize',
            options: {
              excludeByName: {
                Time: true,
                job: true,
                'Value #D': true,
                'Value #H': true,
              } + (if region == 'instance' then {} else { instance: true }),
              indexByName: {
                [region]: 0,
                host: 1,
                binary: 2,
                zone: 3,
                'Value #A': 4,
                'Value #B': 5,
                'Value #C': 6,
                cause: 7,
                'Value #E': 8,
                'Value #F': 9,
                'Value #G': 10,
                disabled_reason: 11,
                cluster: 12,
              },
              renameByName: {
                [region]: 'region',
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
        [g.range('cinder_service_up{%s}' % services, perHost)],
        upDown,
      ),
    ],

    local heartbeats = [
      g.row(13, 'Heartbeats and clocks', 31),
      g.timeseries(
        14,
        'Heartbeat age',
        "Database clock minus updated_at (or created_at). cinder-api shows a service down beyond +/- service_down_time (each region's); negative ages mean the service clock runs ahead.",
        { h: 8, w: 12, x: 0, y: 32 },
        [
          g.range('cinder_service_heartbeat_age_seconds{%s}' % services, perHost),
          threshold('B', 'service_down_time', 'cinder_config_service_down_time_seconds'),
          threshold('C', '-service_down_time', 'cinder_config_service_down_time_seconds', '-'),
        ],
        's',
        overrides=[g.referenceLine('^-?service_down_time ', 'red')],
      ),
      g.timeseries(
        15,
        'Clock offset (service minus database)',
        "Estimated clock offset of each service node (positive: ahead), with each region's skew budget service_down_time - report_interval on either side.",
        { h: 8, w: 12, x: 12, y: 32 },
        [
          g.range('cinder_service_clock_offset_seconds{%s}' % services, perHost),
          threshold('B', 'skew budget', 'cinder_service_skew_budget_seconds'),
          threshold('C', '-skew budget', 'cinder_service_skew_budget_seconds', '-'),
        ],
        's',
        overrides=[g.referenceLine('^-?skew budget ', 'orange')],
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
        "Observed mean time between heartbeats, against each region's report_interval (expected) and service_down_time (at or above it the service can never stay up).",
        { h: 8, w: 12, x: 12, y: 40 },
        [
          g.range('cinder_service_heartbeat_interval_seconds{%s}' % services, perHost),
          threshold('B', 'report_interval', 'cinder_config_report_interval_seconds'),
          threshold('C', 'service_down_time', 'cinder_config_service_down_time_seconds'),
        ],
        's',
        overrides=[
          g.referenceLine('^report_interval ', 'green'),
          g.referenceLine('^service_down_time ', 'red'),
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
                / on(%s) cinder_service_heartbeat_interval_seconds{%s}
              - 0.5
            ),
            0
          )
        ||| % [services, perService, services], '\n'), perHost)],
        'none',
        [['green', null], ['orange', 2]],
        'line',
        extra={ min: 0, decimals: 0 },
      ),
      g.timeseries(
        18,
        'Heartbeats per minute',
        'Heartbeats recorded per minute (rate of report_count), against the expected 60 / report_interval of each region.',
        { h: 8, w: 12, x: 12, y: 48 },
        [
          g.range('rate(cinder_service_reports_total{%s}[$__rate_interval]) * 60' % services, perHost),
          threshold('B', 'expected', 'cinder_config_report_interval_seconds', times='60 / '),
        ],
        'none',
        overrides=[g.referenceLine('^expected ', 'green')],
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
              excludeByName: { Time: true, job: true }
                             + (if region == 'instance' then {} else { instance: true }),
              renameByName: {
                [region]: 'Region',
                cluster: 'Cluster',
                binary: 'Binary',
                'Value #A': 'Up',
                'Value #B': 'Members up',
                'Value #C': 'Members',
              },
              indexByName: {
                [region]: 0,
                cluster: 1,
                binary: 2,
                'Value #A': 3,
                'Value #B': 4,
                'Value #C': 5,
              },
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
        [g.range('cinder_cluster_up{%s}' % clusters, inRegion + ' {{cluster}} {{binary}}')],
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
        [g.range('cinder_exporter_poll_duration_seconds{%s}' % target, inRegion)],
        's',
      ),
      g.timeseries(
        21,
        'Poll errors',
        'Failed polls per second (database unreachable, timed out, or not a cinder schema).',
        { h: 8, w: 6, x: 6, y: 67 },
        [g.range('rate(cinder_exporter_poll_errors_total{%s}[$__rate_interval])' % target, inRegion)],
        'none',
      ),
      g.timeseries(
        22,
        'Exporter clock minus database clock',
        "Every heartbeat age is measured against the database clock; this is how far the exporter host's clock is from it (CinderExporterClockSkew beyond a tenth of the skew budget).",
        { h: 8, w: 6, x: 12, y: 67 },
        [g.range('cinder_exporter_database_clock_offset_seconds{%s}' % target, inRegion)],
        's',
      ),
      g.stateTimeline(
        23,
        'Database read and scrape',
        "cinder_up (the exporter's latest poll of the database succeeded) and up (Prometheus scraped the exporter).",
        { h: 8, w: 6, x: 18, y: 67 },
        [
          g.range('cinder_up{%s}' % target, 'database ' + inRegion),
          g.range('up{%s}' % target, 'scrape ' + inRegion, 'B'),
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
          g.queryVariable('job', 'Job', 'cinder_up{%s}' % c.selector),
          g.queryVariable(region, 'Region', 'cinder_up{%s, job=~"$job"}' % c.selector),
          g.queryVariable('zone', 'Zone', 'cinder_service_up{%s, job=~"$job", %s=~"$%s"}' % [c.selector, region, region]),
          g.queryVariable(
            'binary',
            'Binary',
            'cinder_service_up{%s, job=~"$job", %s=~"$%s", zone=~"$zone"}' % [c.selector, region, region]
          ),
          g.queryVariable(
            'host',
            'Host',
            'cinder_service_up{%s, job=~"$job", %s=~"$%s", zone=~"$zone", binary=~"$binary"}' % [c.selector, region, region]
          ),
        ],
      },
      panels: overview + servicesRow + heartbeats + clusterRow + exporter,
    },
  },
}
