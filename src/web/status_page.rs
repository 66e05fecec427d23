//! The live status page at `/`: every service with both of cinder's verdicts, its
//! cause and clock, its early warning (what `CinderServiceHeartbeatsMissed` sees), the
//! clusters, and the exporter's own state, as plain HTML that refreshes itself and
//! needs no JavaScript. With only targets, `/` is the landing page instead: every
//! target's health, worst first.
//!
//! It is rendered from a [`Judgement`] like `/metrics` (no query per view, and the
//! same verdicts, causes and freshness); where a service stands and how they are
//! counted is the judgement's too. Its cost is bounded by design: one pass over
//! the services picks at most [`MAX_ROWS`] to show (enabled services that are down
//! first, then those missing heartbeats), so a view at 50,000 services costs one cheap pass and a page of a few
//! hundred kilobytes, never a 50,000-row table no browser could use anyway; a note
//! says how many are not shown. Every text from the database is HTML-escaped: host
//! names and `disabled_reason` are free text any admin can set.

use std::fmt::Write as _;

use crate::cinder::{ClusterVerdict, Thresholds};
use crate::judgement::{
    EarlyWarning, Freshness, JudgedService, Judgement, ServiceCounts, Standing,
    HEARTBEATS_MISSED_ALERT_AT,
};
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
    /// When the exporter is ready, for the databases it has, and whether it is now.
    pub readiness: &'a str,
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
    links(&mut out, context);
    out.push_str("</body>\n</html>\n");
    out
}

/// The page at `/` when there is no top-level database: why not, if it is only not
/// configured yet (`unconfigured`), then one row per target with its health, worst
/// first, each linked to its page and its metrics. `targets` are the targets judged at
/// one instant, by name; `context.target` is unused.
///
/// Its cost is one pass over each target's services (as a scrape of each), and at
/// most [`MAX_ROWS`] rows.
pub fn landing(
    targets: Vec<(&str, Judgement)>,
    context: &PageContext,
    unconfigured: Option<&str>,
) -> String {
    let mut out = String::with_capacity(16 * 1024);
    head(&mut out);
    let _ = writeln!(
        out,
        "<body>\n<header><h1>Cinder services &middot; {} targets</h1>\
         <p class=\"sub\">cinder_exporter {} &middot; refreshes every {REFRESH_SECONDS} s \
         &middot; no top-level database: each target has its own page</p></header>",
        targets.len(),
        env!("CARGO_PKG_VERSION")
    );
    if let Some(why) = unconfigured {
        out.push_str("<p class=\"banner bad\">");
        escape(&mut out, why);
        out.push_str("</p>\n");
    }
    let mut rows: Vec<TargetHealth> = targets
        .into_iter()
        .map(|(name, judgement)| TargetHealth {
            name,
            counts: judgement.service_counts(),
            judgement,
        })
        .collect();
    // Stable: equally bad targets stay in name order.
    rows.sort_by_key(TargetHealth::rank);
    target_table(&mut out, &rows);
    links(
        &mut out,
        &PageContext {
            targets: &[],
            ..*context
        },
    );
    out.push_str("</body>\n</html>\n");
    out
}

/// One target on the landing page: its judgement and how its services split.
struct TargetHealth<'a> {
    name: &'a str,
    judgement: Judgement,
    /// `None` when its services are withheld.
    counts: Option<ServiceCounts>,
}

impl TargetHealth<'_> {
    /// Worst first: database never read, then stale, then enabled services down (the
    /// most first), then the latest poll failed, then heartbeats missed, then healthy.
    fn rank(&self) -> (u8, std::cmp::Reverse<usize>) {
        let counts = self.counts.unwrap_or_default();
        let class = match self.judgement.freshness() {
            Freshness::NeverRead => 0,
            Freshness::Stale => 1,
            Freshness::Fresh if counts.enabled_down > 0 => 2,
            Freshness::Fresh if !self.judgement.health().last_poll_ok => 3,
            Freshness::Fresh if counts.warned > 0 => 4,
            Freshness::Fresh => 5,
        };
        (class, std::cmp::Reverse(counts.enabled_down))
    }

    /// The "database read" cell: a pill, then what it means.
    fn database_state(&self) -> &'static str {
        match (self.judgement.freshness(), self.judgement.health().last_poll_ok) {
            (Freshness::NeverRead, _) => "<span class=\"pill dn\">never read</span>",
            (Freshness::Stale, _) => {
                "<span class=\"pill dn\">stale</span> last good poll older than stale_after; \
                 services withheld"
            }
            (Freshness::Fresh, false) => {
                "<span class=\"pill dn\">latest poll failed</span> services shown from the last good one"
            }
            (Freshness::Fresh, true) => "<span class=\"pill up\">read</span>",
        }
    }
}

fn target_table(out: &mut String, rows: &[TargetHealth]) {
    let problems = rows.iter().filter(|r| r.rank().0 < 5).count();
    let _ = writeln!(
        out,
        "<h2 id=\"targets\">Targets ({})</h2>\n<p class=\"note\">{problems} with a problem; \
         worst first: database not read, enabled services down, latest poll failed, \
         heartbeats missed.</p>",
        rows.len()
    );
    if rows.len() > MAX_ROWS {
        let _ = writeln!(
            out,
            "<p class=\"note\">Showing the {MAX_ROWS} worst of {} targets.</p>",
            rows.len()
        );
    }
    out.push_str(
        "<div class=\"wrap\"><table>\n<thead><tr><th>Target</th><th>Database</th>\
         <th>Last good poll</th><th>Enabled, down</th><th>Enabled, up</th><th>Disabled</th>\
         <th>Up, heartbeats missed</th><th>Metrics</th></tr></thead>\n<tbody>\n",
    );
    for row in rows.iter().take(MAX_ROWS) {
        target_row(out, row);
    }
    if rows.is_empty() {
        out.push_str("<tr><td colspan=\"8\" class=\"note\">No targets.</td></tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
}

fn target_row(out: &mut String, row: &TargetHealth) {
    let class = match row.rank().0 {
        0..=3 => "down",
        4 => "warn",
        _ => "",
    };
    let mut name = String::new();
    escape(&mut name, row.name);
    let query: String = url::form_urlencoded::byte_serialize(row.name.as_bytes()).collect();
    let _ = write!(
        out,
        "<tr class=\"{class}\"><td><a href=\"/?target={query}\">{name}</a></td><td>{}</td><td class=\"num\">",
        row.database_state()
    );
    match row.judgement.last_good_poll_age() {
        Some(age) => {
            let _ = write!(out, "{:.1} s ago", age.as_secs_f64());
        }
        None => out.push_str("never"),
    }
    out.push_str("</td>");
    match row.counts {
        Some(c) => {
            let down = match c.enabled_down {
                0 => "0".to_string(),
                n => format!("<span class=\"pill dn\">{n}</span>"),
            };
            let _ = write!(
                out,
                "<td class=\"num\">{down}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td>",
                c.enabled_up, c.disabled, c.warned
            );
        }
        None => out.push_str(&"<td class=\"num\">&ndash;</td>".repeat(4)),
    }
    let _ = writeln!(
        out,
        "<td><a href=\"/probe?target={query}\">metrics</a></td></tr>"
    );
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
tr.down td{background:#fdecea}tr.warn td{background:#fff8e1}.card.warn b{color:#b26a00}tr.disabled td{color:#7b8794}\
.pill{display:inline-block;border-radius:9px;padding:0 .5rem;font-size:.85em;font-weight:600}\
.up{background:#e3f4e4;color:#1b5e20}.dn{background:#c62828;color:#fff}.off{background:#e4e7eb;color:#52606d}\
.note{color:#616e7c}.banner{padding:.6rem .9rem;border-radius:6px}.banner.bad{background:#fdecea;color:#8e1c1c}\
dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem;background:#fff;border:1px solid #d9dee4;padding:.6rem .9rem;border-radius:6px}\
dt{color:#616e7c}dd{margin:0}.wrap{overflow-x:auto}footer{margin-top:1.5rem}footer a{margin-right:1rem}";

fn services_and_clusters(out: &mut String, snapshot: &Snapshot, judgement: &Judgement) {
    // One pass: counts, and the rows to show by standing (enabled and down, then
    // warned, then the others in table order), each list capped, without sorting or
    // keeping every verdict.
    let mut counts = ServiceCounts::default();
    let mut down = Vec::new();
    let mut warned = Vec::new();
    let mut rest = Vec::new();
    for (index, service) in snapshot.services.iter().enumerate() {
        let judged = judgement.judge(service);
        counts.add(judged.standing);
        let list = match judged.standing {
            Standing::EnabledDown => &mut down,
            Standing::EnabledWarned => &mut warned,
            Standing::EnabledUp | Standing::Disabled => &mut rest,
        };
        if list.len() < MAX_ROWS {
            list.push((index, judged));
        }
    }
    let shown: Vec<(usize, JudgedService)> = down
        .into_iter()
        .chain(warned)
        .chain(rest)
        .take(MAX_ROWS)
        .collect();
    let cluster_verdicts = judgement.clusters();
    summary(out, &counts, &cluster_verdicts);
    service_table(out, snapshot, &shown, judgement.thresholds());
    cluster_table(out, snapshot, &cluster_verdicts);
}

fn summary(out: &mut String, counts: &ServiceCounts, clusters: &[ClusterVerdict]) {
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
    if counts.warned > 0 {
        card(
            out,
            "warn",
            counts.warned.to_string(),
            "up, heartbeats missed",
        );
    }
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
    shown: &[(usize, JudgedService)],
    thresholds: &Thresholds,
) {
    let total = snapshot.services.len();
    let _ = writeln!(out, "<h2 id=\"services\">Services ({total})</h2>");
    if total > shown.len() {
        let _ = writeln!(
            out,
            "<p class=\"note\">Showing {} of {total} services: enabled services that are down \
             first, then those missing heartbeats, then the others by binary and host. Every service is on the metrics \
             endpoint and the dashboard.</p>",
            shown.len()
        );
    }
    let _ = writeln!(
        out,
        "<p class=\"note\">Down after {:.0} s without a heartbeat (service_down_time); \
         cinder-api judges abs(age), the scheduler judges updated_at alone. Heartbeats \
         missed: floor(silence / interval &minus; 0.5), as CinderServiceHeartbeatsMissed \
         computes it (it fires from {HEARTBEATS_MISSED_ALERT_AT} on an enabled service); \
         silence: how long report_count has certainly not advanced, as of the latest poll.</p>",
        thresholds.service_down_time
    );
    out.push_str(
        "<div class=\"wrap\"><table>\n<thead><tr><th>Host</th><th>Binary</th><th>Zone</th>\
         <th>cinder-api</th><th>Scheduler</th><th>Status</th><th>Cause</th>\
         <th>Heartbeat age</th><th>Clock offset</th><th>Interval</th>\
         <th>Heartbeats missed</th><th>Silence</th></tr></thead>\n<tbody>\n",
    );
    for (index, judged) in shown {
        service_row(out, &snapshot.services[*index], judged);
    }
    if shown.is_empty() {
        out.push_str("<tr><td colspan=\"12\" class=\"note\">No services in the table.</td></tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
}

fn service_row(out: &mut String, service: &ServiceState, judged: &JudgedService) {
    let v = &judged.verdict;
    let class = match judged.standing {
        Standing::Disabled => "disabled",
        Standing::EnabledDown => "down",
        Standing::EnabledWarned => "warn",
        Standing::EnabledUp => "",
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
    out.push_str("</td><td class=\"num\">");
    early_warning(out, &judged.early_warning);
    out.push_str("</td></tr>\n");
}

/// The early-warning cells: heartbeats missed (a pill when the alert fires), then
/// the silence.
fn early_warning(out: &mut String, warning: &EarlyWarning) {
    match warning.heartbeats_missed {
        Some(missed) if warning.alerting => {
            let _ = write!(out, "<span class=\"pill dn\">{missed}</span>");
        }
        Some(missed) => {
            let _ = write!(out, "{missed}");
        }
        None => out.push_str("&ndash;"),
    }
    out.push_str("</td><td class=\"num\">");
    seconds(out, Some(warning.silence), false);
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

fn links(out: &mut String, context: &PageContext) {
    if !context.targets.is_empty() {
        out.push_str("<nav><h2>Targets</h2>");
        for target in context.targets {
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
    escape(out, context.telemetry_path);
    out.push_str(
        "\">Metrics</a><a href=\"/-/healthy\">Health</a><a href=\"/-/ready\">Readiness</a>\
         <span class=\"note\" id=\"readiness\">",
    );
    escape(out, context.readiness);
    out.push_str("</span></footer>\n");
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
    use crate::snapshot::Published;
    use std::sync::Arc;
    use std::time::Instant;

    fn service(host: &str, enabled: bool, updated_at: i64) -> ServiceState {
        ServiceState {
            id: updated_at,
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
        let mut published = Published::polled(services, 1_000.0, now);
        published.health.last_success_unix = Some(1_000.0);
        let judgement = Judgement::at(Arc::new(published), crate::config::for_tests(""), now);
        let context = PageContext {
            telemetry_path: "/me\"trics",
            target: None,
            targets: &["east<1>"],
            readiness: "ready once <x>",
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
