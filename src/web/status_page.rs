//! The live status page at `/`: every service with both of cinder's verdicts, its
//! cause and clock, the clusters, and the exporter's own state, as plain HTML that
//! refreshes itself and needs no JavaScript.
//!
//! It is rendered from a [`Judgement`] like `/metrics` (no query per view, and the
//! same verdicts, causes and freshness). Its cost is bounded by design: one pass over
//! the services picks at most [`MAX_ROWS`] to show (enabled services that are down
//! first), so a view at 50,000 services costs one cheap pass and a page of a few
//! hundred kilobytes, never a 50,000-row table no browser could use anyway; a note
//! says how many are not shown. Every text from the database is HTML-escaped: host
//! names and `disabled_reason` are free text any admin can set.

use std::fmt::Write as _;

use crate::cinder::{ClusterVerdict, Thresholds, Verdict};
use crate::judgement::{Freshness, Judgement};
use crate::snapshot::{ServiceState, Snapshot};

/// Most service rows (and, separately, cluster rows) a view shows.
pub const MAX_ROWS: usize = 500;

/// The page reloads itself this often, seconds.
pub const REFRESH_SECONDS: u32 = 10;

/// What the page needs besides the published state.
pub struct PageContext<'a> {
    pub telemetry_path: &'a str,
    /// The target shown, `None` for the top-level database.
    pub target: Option<&'a str>,
    /// Every configured target, linked at the foot of the page.
    pub targets: &'a [&'a str],
}

/// The whole page.
pub fn render(judgement: &Judgement, context: &PageContext) -> String {
    let mut out = String::with_capacity(64 * 1024);
    head(&mut out);
    out.push_str("<body>\n<header><h1>Cinder services");
    if let Some(target) = context.target {
        out.push_str(" &middot; target ");
        escape(&mut out, target);
    }
    out.push_str("</h1>");
    let _ = writeln!(
        out,
        "<p class=\"sub\">cinder_exporter {} &middot; refreshes every {REFRESH_SECONDS} s</p></header>",
        env!("CARGO_PKG_VERSION")
    );
    match (judgement.freshness(), judgement.services()) {
        (Freshness::Fresh, Some(snapshot)) => services_and_clusters(&mut out, snapshot, judgement),
        (Freshness::Stale, _) => out.push_str(
            "<p class=\"banner bad\">The last good poll of the database is older than \
             stale_after: services are withheld, as on /metrics, rather than shown with \
             ages that may no longer be true.</p>\n",
        ),
        _ => out.push_str("<p class=\"banner bad\">No successful poll of the database yet.</p>\n"),
    }
    exporter_state(&mut out, judgement);
    links(&mut out, context.telemetry_path, context.targets);
    out.push_str("</body>\n</html>\n");
    out
}

/// The page at `/` when there is no top-level database: the targets, each linked.
pub fn index(targets: &[&str], telemetry_path: &str) -> String {
    let mut out = String::with_capacity(4 * 1024);
    head(&mut out);
    out.push_str(
        "<body>\n<header><h1>Cinder services</h1></header>\n\
         <p>No top-level database is configured; each target has its own page.</p>\n",
    );
    links(&mut out, telemetry_path, targets);
    out.push_str("</body>\n</html>\n");
    out
}

fn head(out: &mut String) {
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Cinder services &ndash; cinder_exporter</title>\n<style>{STYLE}</style>\n</head>\n"
    );
}

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0 1.5rem 2rem;color:#1f2933;background:#f7f8fa;font-size:14px}\
header{border-bottom:1px solid #d9dee4;margin-bottom:1rem}h1{margin:1rem 0 .2rem;font-size:1.5rem}\
h2{font-size:1.1rem;margin:1.5rem 0 .5rem}.sub{margin:0 0 .8rem;color:#616e7c}\
.cards{display:flex;gap:.8rem;flex-wrap:wrap}.card{background:#fff;border:1px solid #d9dee4;border-radius:6px;padding:.5rem .9rem;min-width:7.5rem}\
.card b{display:block;font-size:1.4rem}.card.bad b{color:#c62828}.card.ok b{color:#2e7d32}\
table{border-collapse:collapse;background:#fff;border:1px solid #d9dee4;width:100%}\
th,td{padding:.3rem .6rem;text-align:left;border-bottom:1px solid #eef0f3;vertical-align:top}\
th{background:#eef0f3;font-weight:600;white-space:nowrap}td:nth-child(2),td:nth-child(3){white-space:nowrap}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
tr.down td{background:#fdecea}tr.disabled td{color:#7b8794}\
.pill{display:inline-block;border-radius:9px;padding:0 .5rem;font-size:.85em;font-weight:600}\
.up{background:#e3f4e4;color:#1b5e20}.dn{background:#c62828;color:#fff}.off{background:#e4e7eb;color:#52606d}\
.note{color:#616e7c}.banner{padding:.6rem .9rem;border-radius:6px}.banner.bad{background:#fdecea;color:#8e1c1c}\
dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem;background:#fff;border:1px solid #d9dee4;padding:.6rem .9rem;border-radius:6px}\
dt{color:#616e7c}dd{margin:0}.wrap{overflow-x:auto}footer{margin-top:1.5rem}footer a{margin-right:1rem}";

/// How the services split, counted in the one pass that also picks the rows shown.
#[derive(Default)]
struct Counts {
    enabled_down: usize,
    enabled_up: usize,
    disabled: usize,
}

fn services_and_clusters(out: &mut String, snapshot: &Snapshot, judgement: &Judgement) {
    let verdict = |s: &ServiceState| judgement.service(s);
    // One pass: counts, and the enabled-down services first (up to the cap), then the
    // others in table order, without sorting or keeping all verdicts.
    let mut counts = Counts::default();
    let mut shown_down = Vec::new();
    let mut shown_rest = Vec::new();
    for (index, service) in snapshot.services.iter().enumerate() {
        let v = verdict(service);
        let is_down = !(v.api_up && v.scheduler_up);
        if !service.enabled {
            counts.disabled += 1;
        } else if is_down {
            counts.enabled_down += 1;
        } else {
            counts.enabled_up += 1;
        }
        if service.enabled && is_down {
            if shown_down.len() < MAX_ROWS {
                shown_down.push((index, v));
            }
        } else if shown_rest.len() < MAX_ROWS {
            shown_rest.push((index, v));
        }
    }
    let shown: Vec<(usize, Verdict)> = shown_down
        .into_iter()
        .chain(shown_rest)
        .take(MAX_ROWS)
        .collect();
    let cluster_verdicts = judgement.clusters();
    summary(out, &counts, &cluster_verdicts);
    service_table(out, snapshot, &shown, judgement.thresholds());
    cluster_table(out, snapshot, &cluster_verdicts);
}

fn summary(out: &mut String, counts: &Counts, clusters: &[ClusterVerdict]) {
    let card = |out: &mut String, class: &str, value: String, label: &str| {
        let _ = write!(
            out,
            "<div class=\"card {class}\"><b>{value}</b>{label}</div>"
        );
    };
    out.push_str("<div class=\"cards\">");
    let down_class = if counts.enabled_down > 0 { "bad" } else { "ok" };
    card(
        out,
        down_class,
        counts.enabled_down.to_string(),
        "enabled, down",
    );
    card(out, "ok", counts.enabled_up.to_string(), "enabled, up");
    card(out, "", counts.disabled.to_string(), "disabled");
    if !clusters.is_empty() {
        let up = clusters.iter().filter(|c| c.up).count();
        let class = if up < clusters.len() { "bad" } else { "ok" };
        card(
            out,
            class,
            format!("{up} / {}", clusters.len()),
            "clusters up",
        );
    }
    out.push_str("</div>\n");
}

fn service_table(
    out: &mut String,
    snapshot: &Snapshot,
    shown: &[(usize, Verdict)],
    thresholds: &Thresholds,
) {
    let total = snapshot.services.len();
    let _ = writeln!(out, "<h2 id=\"services\">Services ({total})</h2>");
    if total > shown.len() {
        let _ = writeln!(
            out,
            "<p class=\"note\">Showing {} of {total} services: enabled services that are down \
             first, then the others by binary and host. Every service is on the metrics \
             endpoint and the dashboard.</p>",
            shown.len()
        );
    }
    let _ = writeln!(
        out,
        "<p class=\"note\">Down after {:.0} s without a heartbeat (service_down_time); \
         cinder-api judges abs(age), the scheduler judges updated_at alone.</p>",
        thresholds.service_down_time
    );
    out.push_str(
        "<div class=\"wrap\"><table>\n<thead><tr><th>Host</th><th>Binary</th><th>Zone</th>\
         <th>cinder-api</th><th>Scheduler</th><th>Status</th><th>Cause</th>\
         <th>Heartbeat age</th><th>Clock offset</th><th>Interval</th></tr></thead>\n<tbody>\n",
    );
    for (index, verdict) in shown {
        service_row(out, &snapshot.services[*index], verdict);
    }
    if shown.is_empty() {
        out.push_str("<tr><td colspan=\"10\" class=\"note\">No services in the table.</td></tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
}

fn service_row(out: &mut String, service: &ServiceState, v: &Verdict) {
    let class = match (service.enabled, v.api_up && v.scheduler_up) {
        (false, _) => "disabled",
        (true, false) => "down",
        (true, true) => "",
    };
    let _ = write!(out, "<tr class=\"{class}\"><td>");
    escape(out, &service.host());
    out.push_str("</td><td>");
    escape(out, &service.binary());
    out.push_str("</td><td>");
    escape(out, &service.zone());
    out.push_str("</td><td>");
    pill(out, v.api_up);
    out.push_str("</td><td>");
    pill(out, v.scheduler_up);
    out.push_str("</td><td>");
    if service.enabled {
        out.push_str("enabled");
    } else {
        out.push_str("<span class=\"pill off\">disabled</span>");
        let reason = service.disabled_reason();
        if !reason.is_empty() {
            out.push(' ');
            escape(out, &reason);
        }
    }
    let _ = write!(
        out,
        "</td><td>{}</td><td class=\"num\">",
        v.cause.as_str().replace('_', " ")
    );
    seconds(out, v.age, true);
    out.push_str("</td><td class=\"num\">");
    match service.diagnosis.clock_offset {
        Some(o) => {
            let _ = write!(out, "{:+.1} &plusmn; {:.1} s", o.estimate, o.uncertainty);
        }
        None => out.push_str("&ndash;"),
    }
    out.push_str("</td><td class=\"num\">");
    seconds(out, service.diagnosis.heartbeat_interval, false);
    out.push_str("</td></tr>\n");
}

fn cluster_table(out: &mut String, snapshot: &Snapshot, verdicts: &[ClusterVerdict]) {
    if snapshot.clusters.is_empty() {
        return;
    }
    let total = snapshot.clusters.len();
    let _ = writeln!(out, "<h2 id=\"clusters\">Clusters ({total})</h2>");
    // Down clusters first, then the others by name, within the same cap.
    let order = (0..total)
        .filter(|&i| !verdicts[i].up)
        .chain((0..total).filter(|&i| verdicts[i].up))
        .take(MAX_ROWS);
    if total > MAX_ROWS {
        let _ = writeln!(
            out,
            "<p class=\"note\">Showing {MAX_ROWS} of {total} clusters, those down first.</p>"
        );
    }
    out.push_str(
        "<p class=\"note\">A cluster is up while its freshest member heartbeat is within \
         service_down_time, as cinder's Cluster.is_up.</p>\n<div class=\"wrap\"><table>\n\
         <thead><tr><th>Cluster</th><th>Binary</th><th>State</th><th>Services up</th></tr></thead>\n<tbody>\n",
    );
    for index in order {
        let (cluster, v) = (&snapshot.clusters[index].cluster, &verdicts[index]);
        let class = if v.up { "" } else { "down" };
        let _ = write!(out, "<tr class=\"{class}\"><td>");
        escape(out, &cluster.name);
        out.push_str("</td><td>");
        escape(out, &cluster.binary);
        out.push_str("</td><td>");
        pill(out, v.up);
        let _ = writeln!(
            out,
            "</td><td class=\"num\">{} of {}</td></tr>",
            v.services_up, v.services
        );
    }
    out.push_str("</tbody></table></div>\n");
}

fn exporter_state(out: &mut String, judgement: &Judgement) {
    let health = judgement.health();
    out.push_str("<h2 id=\"exporter\">Exporter</h2>\n<dl>");
    let _ = write!(
        out,
        "<dt>Database</dt><dd>{}</dd>",
        if health.last_poll_ok {
            "<span class=\"pill up\">reachable</span> (latest poll succeeded)"
        } else {
            "<span class=\"pill dn\">unreachable</span> (latest poll failed; see the exporter's log)"
        }
    );
    out.push_str("<dt>Last good poll</dt><dd>");
    match (judgement.last_good_poll_age(), health.last_success_unix) {
        (Some(ago), Some(unix)) => {
            let when = chrono::DateTime::from_timestamp(unix as i64, 0)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_default();
            let _ = write!(out, "{:.1} s ago ({when})", ago.as_secs_f64());
        }
        _ => out.push_str("never"),
    }
    let _ = write!(
        out,
        "</dd><dt>Poll duration</dt><dd>{:.3} s</dd><dt>Failed polls</dt><dd>{}</dd>",
        health.last_poll_duration_seconds, health.errors_total
    );
    if let Some(offset) = health.database_clock_offset_seconds {
        let _ = write!(
            out,
            "<dt>Exporter clock &minus; database clock</dt><dd>{offset:+.3} s</dd>"
        );
    }
    let thresholds = judgement.thresholds();
    let _ = write!(
        out,
        "<dt>service_down_time</dt><dd>{:.0} s</dd>",
        thresholds.service_down_time
    );
    if thresholds.scheduler_service_down_time != thresholds.service_down_time {
        // cinder's service processes raise theirs when report_interval reaches it.
        let _ = write!(
            out,
            "<dt>service_down_time, scheduler</dt><dd>{:.0} s</dd>",
            thresholds.scheduler_service_down_time
        );
    }
    let _ = writeln!(
        out,
        "<dt>report_interval</dt><dd>{:.0} s</dd></dl>",
        judgement.config().judging.report_interval.as_secs_f64()
    );
}

fn links(out: &mut String, telemetry_path: &str, targets: &[&str]) {
    if !targets.is_empty() {
        out.push_str("<nav><h2>Targets</h2>");
        for target in targets {
            let mut name = String::new();
            escape(&mut name, target);
            let query: String = url::form_urlencoded::byte_serialize(target.as_bytes()).collect();
            let _ = write!(
                out,
                "<a href=\"/?target={query}\">{name}</a> (<a href=\"/probe?target={query}\">metrics</a>) "
            );
        }
        out.push_str("</nav>\n");
    }
    out.push_str("<footer><a href=\"");
    escape(out, telemetry_path);
    out.push_str(
        "\">Metrics</a><a href=\"/-/healthy\">Health</a><a href=\"/-/ready\">Readiness</a>\
         <span class=\"note\">ready once the first poll of the database succeeded</span></footer>\n",
    );
}

fn pill(out: &mut String, up: bool) {
    out.push_str(if up {
        "<span class=\"pill up\">up</span>"
    } else {
        "<span class=\"pill dn\">down</span>"
    });
}

/// Seconds with one decimal, signed if asked, or a dash when unknown.
fn seconds(out: &mut String, value: Option<f64>, signed: bool) {
    match value {
        Some(v) if signed => {
            let _ = write!(out, "{v:+.1} s");
        }
        Some(v) => {
            let _ = write!(out, "{v:.1} s");
        }
        None => out.push_str("&ndash;"),
    }
}

/// Appends `text` HTML-escaped, safe in element content and in quoted attributes.
pub fn escape(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cinder::Diagnosis;
    use crate::series::LabelSet;
    use crate::snapshot::{PollHealth, Published};
    use std::sync::Arc;
    use std::time::Instant;

    fn service(host: &str, enabled: bool, updated_at: i64) -> ServiceState {
        ServiceState {
            labels: LabelSet::new([
                ("host", host),
                ("binary", "cinder-volume"),
                ("zone", "nova"),
            ]),
            info_labels: LabelSet::new([
                ("cluster", ""),
                (
                    "disabled_reason",
                    if enabled {
                        ""
                    } else {
                        "<b>\"maint\" & 'x'</b>"
                    },
                ),
            ]),
            compat_labels: None,
            enabled,
            report_count: 1,
            last_heartbeat: Some(updated_at),
            updated_at: Some(updated_at),
            diagnosis: Diagnosis {
                heartbeat_interval: Some(10.0),
                clock_offset: None,
                count_seen_since: updated_at as f64,
                advance_seen: true,
            },
            heartbeat_silence: 0.0,
        }
    }

    fn page(services: Vec<ServiceState>) -> String {
        let now = Instant::now();
        let published = Published {
            snapshot: Some(Arc::new(Snapshot {
                reference_time: 1_000.0,
                taken_at: now,
                services,
                clusters: Vec::new(),
                compat_labels: false,
            })),
            health: PollHealth {
                last_poll_ok: true,
                last_success_unix: Some(1_000.0),
                ..PollHealth::default()
            },
        };
        let config = crate::config::parse_str("", "t.yml", Some("mysql://u@h/db".into()));
        let judgement = Judgement::at(Arc::new(published), Arc::new(config.unwrap()), now);
        let context = PageContext {
            telemetry_path: "/me\"trics",
            target: None,
            targets: &["east<1>"],
        };
        render(&judgement, &context)
    }

    #[test]
    fn free_text_is_escaped() {
        let html = page(vec![
            service("<script>alert(1)</script>@lvm", true, 995),
            service("b&b", false, 995),
        ]);
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;@lvm"));
        assert!(html.contains("&lt;b&gt;&quot;maint&quot; &amp; &#39;x&#39;&lt;/b&gt;"));
        assert!(html.contains("b&amp;b"));
        assert!(html.contains("href=\"/me&quot;trics\""));
    }

    #[test]
    fn enabled_services_that_are_down_come_first_and_rows_are_capped() {
        let mut services: Vec<ServiceState> = (0..MAX_ROWS + 10)
            .map(|i| service(&format!("up{i:04}"), true, 995))
            .collect();
        services.push(service("zz-down", true, 900));
        services.push(service("zz-disabled-down", false, 900));
        let html = page(services);
        let first_row = html.find("<tbody>").unwrap();
        let down = html.find("zz-down").expect("the down service is shown");
        let up = html[first_row..].find("up0000").unwrap() + first_row;
        assert!(down < up);
        assert!(!html.contains("zz-disabled-down"), "capped away");
        assert!(html.contains(&format!("Showing {MAX_ROWS} of {} services", MAX_ROWS + 12)));
        assert_eq!(html.matches("<tr class=").count(), MAX_ROWS);
    }
}
