// The alerts (prometheusAlerts). Every alert has a `severity` (critical: page,
// warning: ticket, info: low priority), a `summary`, a `description` naming the next
// step in cinder's terms, and a `runbook_url` into alerts/RUNBOOK.md (anchor = the
// alert name in lower case), added here from _config.runbookURL. The per-service
// alerts' summaries and descriptions open with the region (_config.regionLabel) when
// Prometheus scrapes more than one target, added here too.

// A text block as one paragraph, its lines joined as YAML's folded blocks join them.
// (Not std.rstripChars: in jsonnet 0.18 it takes a third of a second on a paragraph.)
local prose(text) =
  local lines = std.split(text, '\n');
  std.join(' ', std.makeArray(std.length(lines) - 1, function(i) lines[i]));

{
  prometheusAlerts+:: {
    local c = $._config,
    local withRunbook(rules) = [
      rule { annotations+: { runbook_url: c.runbookURL + '#' + std.asciiLower(rule.alert) } }
      for rule in rules
    ],
    // `[region-two] ` when the selector matches targets of more than one region, else
    // nothing: a single-region operator reads no exporter address in every page. It
    // counts `up`, which stays while a target is down.
    local region = |||
      {{ if gt (len (query `count by (%(regionLabel)s) (up{%(selector)s})`)) 1 -}}
      [{{ $labels.%(regionLabel)s }}] {{ end -}}
    ||| % c,
    local inRegion(rules) = [
      rule {
        annotations+: {
          summary: prose(region) + super.summary,
          description: prose(region) + super.description,
        },
      }
      for rule in rules
    ],
    groups+: [
      {
        name: 'cinder-exporter.services',
        rules: withRunbook(inRegion([
          {
            comment:: |||
              The catch-all: an enabled service down in cinder-api's view, with its cause.
              The cause-specific alerts below fire sooner (shorter `for:`) and inhibit it
              in Alertmanager (alerts/alertmanager.example.yml). cinder's own verdict already
              tolerates missed heartbeats up to service_down_time; `for:` adds a margin on top.
            |||,
            alert: 'CinderServiceDown',
            expr: 'cinder:service_down:cause',
            'for': '3m',
            labels: { severity: 'critical' },
            annotations: {
              summary: '{{ $labels.binary }} on {{ $labels.host }} (zone {{ $labels.zone }}) is down: {{ $labels.cause }}',
              description: prose(|||
                cinder-api (openstack volume service list) shows the enabled
                {{ $labels.binary }} on {{ $labels.host }} down; cause: {{ $labels.cause }}.
                {{ if eq $labels.cause "heartbeat_stopped" -}}
                Its report_count has not advanced for longer than service_down_time: check the
                process on {{ reReplaceAll "@.*" "" $labels.host }} (systemctl status {{ $labels.binary }})
                and /var/log/cinder/{{ $labels.binary }}.log, then restart it.
                {{- else if eq $labels.cause "clock_skew" -}}
                It heartbeats, but its clock puts updated_at more than service_down_time away from
                the database clock: check chrony/NTP on {{ reReplaceAll "@.*" "" $labels.host }} (chronyc tracking).
                {{- else if eq $labels.cause "heartbeat_late" -}}
                It heartbeats, but too rarely: look for "run outlasted interval" in
                /var/log/cinder/{{ $labels.binary }}.log and compare [DEFAULT] report_interval with
                service_down_time in cinder.conf.
                {{- else -}}
                The exporter has not watched it long enough to tell why.
                {{- end }}
                Confirm with cinder-manage service list.
              |||),
            },
          },
          {
            alert: 'CinderServiceHeartbeatStopped',
            expr: 'cinder:service_down:cause{cause="heartbeat_stopped"}',
            'for': '2m',
            labels: { severity: 'critical' },
            annotations: {
              summary: '{{ $labels.binary }} on {{ $labels.host }} (zone {{ $labels.zone }}) stopped heartbeating',
              description: prose(|||
                The report_count of the enabled {{ $labels.binary }} on {{ $labels.host }} has not
                advanced for longer than service_down_time, so cinder-api and the scheduler show it
                down. The process is dead, hung, cannot reach the database or message queue, or its
                manager reports itself not working. On {{ reReplaceAll "@.*" "" $labels.host }}:
                systemctl status {{ $labels.binary }}, read /var/log/cinder/{{ $labels.binary }}.log,
                fix and restart; cinder-manage service list shows XXX until it heartbeats again.
              |||),
            },
          },
          {
            comment:: |||
              The early warning, before cinder notices: report_count has not advanced for two
              of the service's own observed heartbeat intervals, a heartbeat counting as
              missed once it is half an interval overdue. The silence is a lower bound by the
              database clock (a skewed clock cannot make a service look silent), so a node
              with a longer report_interval is judged by its own rhythm. No `for:`: the
              silence only grows until the next heartbeat and already includes the
              tolerance; a delay would only eat the warning's lead over cinder's verdict.
              It goes on firing once cinder shows the service down, until the heartbeats
              resume, so that there is no gap before CinderServiceHeartbeatStopped and
              CinderServiceDown fire and inhibit it in Alertmanager.
              Value: the number of heartbeats missed.
            |||,
            alert: 'CinderServiceHeartbeatsMissed',
            expr: |||
              floor(
                cinder_service_heartbeat_silence_seconds{%(selector)s}
                  / on(job, instance, host, binary, zone) cinder_service_heartbeat_interval_seconds{%(selector)s}
                - 0.5
              ) >= %(heartbeatsMissed)g
              and on(job, instance, host, binary, zone) (cinder_service_enabled{%(selector)s} == 1)
            ||| % c,
            'for': '0s',
            labels: { severity: 'warning' },
            annotations: {
              summary: '{{ $labels.binary }} on {{ $labels.host }} (zone {{ $labels.zone }}) missed {{ $value | printf "%.0f" }} heartbeats',
              description: prose(|||
                The enabled {{ $labels.binary }} on {{ $labels.host }} has missed
                {{ $value | printf "%.0f" }} heartbeats in a row by its own observed interval: its
                report_count has stopped advancing. cinder shows it down once service_down_time
                passes without a heartbeat, if it does not already. Check it now: on {{ reReplaceAll "@.*" "" $labels.host }}, systemctl status {{ $labels.binary }}
                and /var/log/cinder/{{ $labels.binary }}.log (a hung report_state, the database or
                message queue unreachable from there, or a manager reporting itself not working).
              |||),
            },
          },
          {
            comment:: |||
              The bound proves the skew exceeds the budget: the service flaps or stays down.
            |||,
            alert: 'CinderServiceClockSkew',
            expr: |||
              cinder_service_clock_offset_seconds{%(selector)s}
                and on(job, instance, host, binary, zone) (cinder:service_clock_skew_seconds:lower_bound_ratio_budget > 1)
                and on(job, instance, host, binary, zone) (cinder_service_enabled{%(selector)s} == 1)
            ||| % c,
            'for': '2m',
            labels: { severity: 'critical' },
            annotations: {
              summary: 'Clock of {{ $labels.host }} ({{ $labels.binary }}) runs {{ reReplaceAll "^-" "" (printf "%.1f" $value) }} s {{ if gt $value 0.0 }}ahead{{ else }}behind{{ end }}, beyond the skew budget',
              description: prose(|||
                The clock of {{ reReplaceAll "@.*" "" $labels.host }} runs about
                {{ reReplaceAll "^-" "" (printf "%.1f" $value) }} s
                {{ if gt $value 0.0 }}ahead of{{ else }}behind{{ end }} the database clock, provably more
                than the skew budget (service_down_time - report_interval), the most a clock may be off
                for cinder-api to show its {{ $labels.binary }} up steadily: expect it down or flapping
                there{{ if gt $value 0.0 }}, while the scheduler still sees it up and places volumes on
                it{{ end }}. Fix the clock on that node: chronyc tracking, chronyc sources, then chronyc
                makestep; do not raise service_down_time to hide it.
              |||),
            },
          },
          {
            alert: 'CinderServiceClockSkewNearBudget',
            expr: |||
              cinder_service_clock_offset_seconds{%(selector)s}
                and on(job, instance, host, binary, zone) (cinder:service_clock_skew_seconds:lower_bound_ratio_budget > %(clockSkewNearBudget)g)
            ||| % c,
            'for': '15m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Clock of {{ $labels.host }} ({{ $labels.binary }}) runs {{ reReplaceAll "^-" "" (printf "%.1f" $value) }} s {{ if gt $value 0.0 }}ahead{{ else }}behind{{ end }}, over half the skew budget',
              description: prose(|||
                The clock of {{ reReplaceAll "@.*" "" $labels.host }} runs about
                {{ reReplaceAll "^-" "" (printf "%.1f" $value) }} s
                {{ if gt $value 0.0 }}ahead of{{ else }}behind{{ end }} the database clock: provably more
                than half the skew budget (service_down_time - report_interval). A little more drift and
                cinder-api shows its {{ $labels.binary }} down. Check chrony/NTP there (chronyc tracking,
                chronyc sources) before it does.
              |||),
            },
          },
          {
            alert: 'CinderServiceHeartbeatLate',
            expr: 'cinder:service_heartbeat_interval_seconds:ratio_report_interval > %(heartbeatLateRatio)g' % c,
            'for': '15m',
            labels: { severity: 'warning' },
            annotations: {
              summary: '{{ $labels.binary }} on {{ $labels.host }} heartbeats at {{ $value | printf "%.1f" }} x report_interval',
              description: prose(|||
                {{ $labels.binary }} on {{ $labels.host }} records a heartbeat every
                {{ $value | printf "%.1f" }} report_intervals on average instead of every one: its
                report_state runs are slow or blocked (look for "run outlasted interval" and slow
                database calls in /var/log/cinder/{{ $labels.binary }}.log on
                {{ reReplaceAll "@.*" "" $labels.host }}), or the service runs with a larger
                [DEFAULT] report_interval in its cinder.conf than the exporter assumes. Late
                heartbeats eat the margin below service_down_time.
              |||),
            },
          },
          {
            alert: 'CinderServiceHeartbeatIntervalTooLong',
            expr: |||
              (
                cinder_service_heartbeat_interval_seconds{%(selector)s}
                  >= on(job, instance) group_left cinder_config_service_down_time_seconds{%(selector)s}
              )
              and on(job, instance, host, binary, zone) (cinder_service_enabled{%(selector)s} == 1)
            ||| % c,
            'for': '2m',
            labels: { severity: 'critical' },
            annotations: {
              summary: '{{ $labels.binary }} on {{ $labels.host }} heartbeats only every {{ $value | humanizeDuration }}, at or above service_down_time',
              description: prose(|||
                {{ $labels.binary }} on {{ $labels.host }} records a heartbeat only every
                {{ $value | humanizeDuration }}, at or above service_down_time: cinder-api shows it
                down before each next heartbeat, so it can never stay up. Either its report_state
                runs take that long (/var/log/cinder/{{ $labels.binary }}.log on
                {{ reReplaceAll "@.*" "" $labels.host }}: "run outlasted interval", slow database), or
                its cinder.conf sets [DEFAULT] report_interval >= service_down_time (cinder then only
                raises service_down_time inside that one process). Make report_interval well below
                service_down_time on every node and restart the service.
              |||),
            },
          },
          {
            comment:: |||
              Value: the signed heartbeat age (negative: the service clock is ahead).
            |||,
            alert: 'CinderServiceDownButScheduled',
            expr: |||
              cinder_service_heartbeat_age_seconds{%(selector)s}
                and on(job, instance, host, binary, zone) (cinder_service_up{%(selector)s} == 0)
                and on(job, instance, host, binary, zone) (cinder_service_scheduler_up{%(selector)s} == 1)
                and on(job, instance, host, binary, zone) (cinder_service_enabled{%(selector)s} == 1)
            ||| % c,
            'for': '5m',
            labels: { severity: 'warning' },
            annotations: {
              summary: '{{ $labels.binary }} on {{ $labels.host }} shows down, but the scheduler still uses it',
              description: prose(|||
                cinder-api shows {{ $labels.binary }} on {{ $labels.host }} down, yet the scheduler
                (and cinder-manage service list) sees it up and keeps placing volumes there: its
                heartbeat age is {{ $value | printf "%.0f" }} s, i.e. its clock runs ahead by more than
                service_down_time. Should the service die, the scheduler keeps choosing it until its
                future-dated updated_at falls behind. Fix chrony/NTP on
                {{ reReplaceAll "@.*" "" $labels.host }} (chronyc tracking).
              |||),
            },
          },
          {
            alert: 'CinderServiceUpButNotScheduled',
            expr: |||
              (cinder_service_scheduler_up{%(selector)s} == 0)
                and on(job, instance, host, binary, zone) (cinder_service_up{%(selector)s} == 1)
                and on(job, instance, host, binary, zone) (cinder_service_enabled{%(selector)s} == 1)
            ||| % c,
            'for': '5m',
            labels: { severity: 'warning' },
            annotations: {
              summary: '{{ $labels.binary }} on {{ $labels.host }} shows up, but the scheduler ignores it',
              description: prose(|||
                cinder-api shows {{ $labels.binary }} on {{ $labels.host }} up, but the scheduler
                (and cinder-manage service list, XXX) sees it down and places nothing there. Its row
                has no updated_at: the API falls back to created_at, the scheduler does not. The
                service was created but has not completed a heartbeat: read
                /var/log/cinder/{{ $labels.binary }}.log on {{ reReplaceAll "@.*" "" $labels.host }}
                (driver initialisation, database errors).
              |||),
            },
          },
          {
            comment:: |||
              A service whose state changes often never satisfies CinderServiceDown's `for:`.
            |||,
            alert: 'CinderServiceFlapping',
            expr: |||
              changes(cinder_service_up{%(selector)s}[%(flappingWindow)s]) >= %(flappingChanges)g
                and on(job, instance, host, binary, zone) (cinder_service_enabled{%(selector)s} == 1)
            ||| % c,
            'for': '5m',
            labels: { severity: 'warning' },
            annotations: {
              summary: '{{ $labels.binary }} on {{ $labels.host }} flaps between up and down',
              description: prose(|||
                cinder-api's verdict on {{ $labels.binary }} on {{ $labels.host }} changed
                {{ $value | printf "%%.0f" }} times in %(flappingWindow)s. Usual reasons: a clock skew near the
                skew budget (chronyc tracking on {{ reReplaceAll "@.*" "" $labels.host }}), heartbeats
                nearly service_down_time apart ("run outlasted interval" in
                /var/log/cinder/{{ $labels.binary }}.log), or a service that keeps restarting
                (systemctl status {{ $labels.binary }}).
              ||| % c),
            },
          },
          {
            comment:: |||
              A row nobody heartbeats for days: usually a decommissioned or renamed service.
              The number of days (three) is a policy choice, not a cinder threshold.
            |||,
            alert: 'CinderServiceRecordStale',
            expr: 'cinder_service_heartbeat_age_seconds{%(selector)s} > %(recordStaleDays)g * 86400' % c,
            'for': '1h',
            labels: { severity: 'info' },
            annotations: {
              summary: '{{ $labels.binary }} on {{ $labels.host }} has not heartbeated for {{ $value | humanizeDuration }}',
              description: prose(|||
                The services row of {{ $labels.binary }} on {{ $labels.host }} was last updated
                {{ $value | humanizeDuration }} ago. If that service was decommissioned or renamed,
                remove the row: cinder-manage service remove {{ $labels.binary }} {{ $labels.host }}
                (after checking cinder-manage service list that it is XXX and that no volumes still
                use that host). Otherwise bring it back.
              |||),
            },
          },
          {
            comment:: |||
              Every enabled service of one binary in one zone is down: e.g. no scheduler left,
              or no cinder-volume for that zone. Value: the number of enabled services.
            |||,
            alert: 'CinderBinaryDownInZone',
            expr: |||
              (cinder:service_enabled:sum_by_zone_binary > 0)
                and on(%(targetLabels)s, zone, binary) (cinder:service_enabled_up:sum_by_zone_binary == 0)
            ||| % c,
            'for': '2m',
            labels: { severity: 'critical' },
            annotations: {
              summary: 'All {{ $value }} enabled {{ $labels.binary }} in zone {{ $labels.zone }} are down',
              description: prose(|||
                cinder-api shows every enabled {{ $labels.binary }} in availability zone
                {{ $labels.zone }} down, all {{ $value }} of them.
                {{ if eq $labels.binary "cinder-scheduler" }}No scheduler is left: volume creation,
                retype and migration fail.{{ else if eq $labels.binary "cinder-volume" }}No backend
                is left in this zone: volumes there cannot be created, attached or deleted.{{ else -}}
                Nothing serves this binary in the zone.{{ end }} Look for the common cause: the
                database or message queue as these nodes see it, a clock source they share (chronyc
                tracking), a deployment. See cinder-manage service list and the per-service alerts'
                causes in the dashboard.
              |||),
            },
          },
          {
            comment:: |||
              Every member of an active-active cluster is down, as cinder's Cluster.is_up
              decides (its freshest member heartbeat is older than service_down_time): the
              volumes of that backend can be neither managed nor failed over. Clusters whose
              members are all disabled are left alone. A single member down in a cluster that
              is up stays a per-service alert. Value: the number of services in the cluster.
            |||,
            alert: 'CinderClusterDown',
            expr: |||
              cinder_cluster_services{%(selector)s}
                and on(%(targetLabels)s, cluster, binary) (cinder_cluster_up{%(selector)s} == 0)
                and on(%(targetLabels)s, cluster, binary)
              (
                sum by (%(targetLabels)s, cluster, binary) (
                  cinder_service_info{%(selector)s, cluster!=""}
                    * on(job, instance, host, binary, zone) group_left cinder_service_enabled{%(selector)s}
                ) > 0
              )
            ||| % c,
            'for': '1m',
            labels: { severity: 'critical' },
            annotations: {
              summary: 'Cluster {{ $labels.cluster }} ({{ $labels.binary }}) is down: none of its {{ $value }} services heartbeats',
              description: prose(|||
                cinder sees cluster {{ $labels.cluster }} down: no {{ $labels.binary }} of its
                {{ $value }} services has heartbeated within service_down_time, so nothing serves
                its volumes (create, attach, delete and failover fail). See cinder-manage cluster
                list, then the members' per-service alerts for their causes; bring at least one
                member back (systemctl status {{ $labels.binary }} on the nodes of
                cinder-manage service list | grep {{ $labels.cluster }}).
              |||),
            },
          },
        ])),
      },
      {
        name: 'cinder-exporter.exporter',
        rules: withRunbook([
          {
            alert: 'CinderExporterDatabaseUnreachable',
            expr: 'cinder_up{%(selector)s} == 0' % c,
            'for': '2m',
            labels: { severity: 'critical' },
            annotations: {
              summary: "cinder_exporter cannot read cinder's services table for {{ $labels.instance }}",
              description: prose(|||
                The exporter fails to poll the cinder database of target {{ $labels.instance }}
                (job {{ $labels.job }}); per-service series vanish after its stale_after, so no
                service alert can fire there. Read the exporter's log (journalctl -u
                prometheus-cinder-exporter): connection refused or timed out means the database or the
                network (cinder itself is then likely failing too: check openstack volume service
                list); access denied means the exporter's user lacks GRANT SELECT ON
                cinder.services; a missing table means the URL names the wrong database.
              |||),
            },
          },
          {
            comment:: |||
              One target per region: on /metrics the exporter (job cinder), on
              /probe?target= each database (job cinder-probe, instance = the target name),
              and the exporter process itself (job cinder-exporter). A target the exporter
              does not know fails its probe with 400.
            |||,
            alert: 'CinderExporterDown',
            expr: 'up{%(selector)s} == 0' % c,
            'for': '5m',
            labels: { severity: 'critical' },
            annotations: {
              summary: 'Prometheus cannot scrape cinder_exporter target {{ $labels.instance }} (job {{ $labels.job }})',
              description: prose(|||
                The scrape of {{ $labels.instance }} (job {{ $labels.job }}) fails, so the cinder
                services it serves are not watched. Check the exporter (systemctl status
                prometheus-cinder-exporter, journalctl -u prometheus-cinder-exporter; a
                configuration error exits with
                status 2 and names the line), that it listens on its --web.listen-address (:9847 by
                default), and the Prometheus targets page for the scrape error; a probe of a
                target name the exporter's targets: does not list fails with 400.
              |||),
            },
          },
          {
            comment:: |||
              No target at all; or a target scraped within targetForgottenAfter that is no
              longer (it left the scrape configuration or service discovery). The latter
              resolves by itself once its last scrape is that old.
            |||,
            alert: 'CinderExporterAbsent',
            expr: |||
              (
                max by (%(targetLabels)s) (max_over_time(up{%(selector)s}[%(targetForgottenAfter)s]))
                  unless on(%(targetLabels)s) up{%(selector)s}
              )
              or absent(up{%(selector)s})
            ||| % c,
            'for': '15m',
            labels: { severity: 'critical' },
            annotations: {
              summary: prose(|||
                {{ if $labels.instance }}Prometheus no longer scrapes cinder_exporter target
                {{ $labels.instance }} (job {{ $labels.job }}){{ else }}Prometheus has no
                cinder_exporter target{{ end }}
              |||),
              description: prose(|||
                {{ if $labels.instance -}}
                Target {{ $labels.instance }} of job {{ $labels.job }} was scraped within the last
                %(targetForgottenAfter)s but is no longer: it left the scrape configuration or
                service discovery, so nothing watches the cinder services it served. If it was
                removed on purpose, this resolves once its last scrape is %(targetForgottenAfter)s
                old (silence it until then).
                {{- else -}}
                No target matches {%(selector)s}, so nothing watches cinder's services and no other
                cinder alert can fire.
                {{- end }} Check the scrape configuration and service discovery (mixin/README.md
                shows the scrape jobs the rules expect).
              ||| % c),
            },
          },
          {
            comment:: |||
              Every heartbeat age is measured against the database clock; the exporter's clock
              disagreeing with it means one of the two hosts has a bad clock.
            |||,
            alert: 'CinderExporterClockSkew',
            expr: |||
              cinder_exporter_database_clock_offset_seconds{%(selector)s}
                and on(job, instance)
              (
                abs(cinder_exporter_database_clock_offset_seconds{%(selector)s})
                  > on(job, instance) %(exporterClockSkewShare)g * cinder_service_skew_budget_seconds{%(selector)s}
              )
            ||| % c,
            'for': '15m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'The clock of cinder_exporter is {{ $value | printf "%.1f" }} s off the database clock of {{ $labels.instance }}',
              description: prose(|||
                The exporter host's clock minus the clock of the cinder database server of
                {{ $labels.instance }} is
                {{ $value | printf "%%.1f" }} s, more than %(share)s of the skew budget. The exporter
                judges every heartbeat by the database clock, as cinder's API nodes judge them by
                their own: a database clock that is off shifts every verdict. Run chronyc tracking on
                the exporter host and on the database server and fix the one that is off.
              ||| % { share: '%g%%' % (100 * c.exporterClockSkewShare) }),
            },
          },
        ]),
      },
    ],
  },
}
