//! One `/metrics` response parsed with a real exposition-format parser
//! (openmetrics-parser, which unlike prometheus-parse resolves the escapes in label
//! values), and looked up by metric and labels.

use std::collections::{BTreeMap, BTreeSet};

/// One parsed `/metrics` response.
pub struct Scrape {
    pub text: String,
    pub samples: Vec<Sample>,
    /// Every family announced by `# TYPE`/`# HELP`, with or without samples.
    pub families: BTreeSet<String>,
}

/// One sample, label values unescaped.
#[derive(Clone, Debug)]
pub struct Sample {
    pub metric: String,
    pub labels: Labels,
    pub value: f64,
}

/// A sample's labels.
#[derive(Clone, Debug, Default)]
pub struct Labels(pub BTreeMap<String, String>);

impl Labels {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

impl Scrape {
    /// Parses the text exposition format with openmetrics-parser, which (unlike
    /// prometheus-parse) resolves the escapes in label values.
    pub fn parse(text: &str) -> Scrape {
        use openmetrics_parser::PrometheusValue;
        let exposition = openmetrics_parser::prometheus::parse_prometheus(text)
            .unwrap_or_else(|e| panic!("unparseable exposition: {e:?}\n{text}"));
        let mut samples = Vec::new();
        let mut families = BTreeSet::new();
        for (name, family) in &exposition.families {
            families.insert(name.clone());
            for sample in family.iter_samples() {
                let labels = sample
                    .get_labelset()
                    .map(|set| set.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default();
                let labels: BTreeMap<String, String> = labels;
                let value = match &sample.value {
                    PrometheusValue::Gauge(n) | PrometheusValue::Unknown(n) => n.as_f64(),
                    PrometheusValue::Counter(c) => c.value.as_f64(),
                    // A histogram is read as Prometheus stores it: _bucket, _sum, _count.
                    PrometheusValue::Histogram(h) => {
                        for bucket in &h.buckets {
                            let mut labels = labels.clone();
                            labels.insert("le".into(), bucket.upper_bound.to_string());
                            samples.push(Sample {
                                metric: format!("{name}_bucket"),
                                labels: Labels(labels),
                                value: bucket.count.as_f64(),
                            });
                        }
                        let sum = h.sum.as_ref().map_or(f64::NAN, |s| s.as_f64());
                        samples.push(Sample {
                            metric: format!("{name}_sum"),
                            labels: Labels(labels.clone()),
                            value: sum,
                        });
                        h.count.map_or(f64::NAN, |c| c as f64)
                    }
                    other => panic!("{name}: unexpected sample {other:?}"),
                };
                let metric = match &sample.value {
                    PrometheusValue::Histogram(_) => format!("{name}_count"),
                    _ => name.clone(),
                };
                samples.push(Sample {
                    metric,
                    labels: Labels(labels),
                    value,
                });
            }
        }
        Scrape {
            text: text.to_string(),
            samples,
            families,
        }
    }

    /// The samples of `metric` whose labels include all of `labels`.
    pub fn find(&self, metric: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| {
                s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
            })
            .collect()
    }

    /// The value of the one sample of `metric` matching `labels`; `None` if absent,
    /// panics if several match.
    pub fn value(&self, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found = self.find(metric, labels);
        assert!(
            found.len() <= 1,
            "{metric} {labels:?} matches {} samples",
            found.len()
        );
        found.first().map(|s| s.value)
    }

    /// The `cause` whose one-hot `cinder_service_down_cause` sample is 1.
    pub fn cause(&self, host: &str, binary: &str) -> Option<String> {
        let hot: Vec<_> = self
            .find(
                "cinder_service_down_cause",
                &[("host", host), ("binary", binary)],
            )
            .into_iter()
            .filter(|s| s.value == 1.0)
            .collect();
        assert!(hot.len() <= 1, "several causes for {host}/{binary}");
        hot.first()
            .and_then(|s| s.labels.get("cause").map(str::to_string))
    }

    /// The duration of the poll this scrape shows: the database read its clock (the
    /// reference for every age) at some moment within it.
    pub fn poll_duration(&self) -> f64 {
        self.value("cinder_exporter_poll_duration_seconds", &[])
            .expect("poll duration published")
    }

    /// Names of the metric families that have samples.
    pub fn metric_names(&self) -> BTreeSet<String> {
        self.samples.iter().map(|s| s.metric.clone()).collect()
    }
}
