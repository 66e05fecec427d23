//! deploy/kubernetes checked offline, as `kubectl apply -k` would take it: every object
//! `kubectl kustomize` builds passes the Kubernetes schemas (`kubernetes-validate
//! --strict`) or the Prometheus Operator's (tests/kubernetes/validate-operator-objects.py)
//! with unknown fields refused; the PrometheusRule is what jsonnet renders from the mixin
//! and holds the groups of the shipped rule file; and the Deployment's arguments with the
//! ConfigMap's config start the real binary against a real database, which then answers
//! the probes and scrapes the manifests point at.
//!
//! The tools come from PyPI into target/python-tools (`scripts/ensure-python-tools`, run
//! by `scripts/test`), jsonnet from Debian; no cluster is needed.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{repository, Database, Exporter, ExporterOptions, Schema, Scrape};
use serde::Deserialize;
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

/// The kustomize base: several databases, a Probe for each.
const BASE: &str = "deploy/kubernetes";
/// The kustomize Component turning the base into one database on /metrics.
const SINGLE_DATABASE: &str = "deploy/kubernetes/single-database";
const PROMETHEUS_RULE: &str = "deploy/kubernetes/prometheusrule.json";
const PROMETHEUS_RULE_SOURCE: &str = "deploy/kubernetes/prometheusrule.jsonnet";
const RULE_FILE: &str = "alerts/cinder-exporter.rules.yml";
const OPERATOR_VALIDATOR: &str = "tests/kubernetes/validate-operator-objects.py";
/// The oldest and newest Kubernetes releases kubernetes-validate ships schemas of.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.25.0", "1.37.0"];
const WAIT: Duration = Duration::from_secs(30);

/// The two ways the manifests are meant to be built.
#[derive(Clone, Copy, Debug)]
enum Variant {
    /// `kubectl kustomize deploy/kubernetes`.
    Targets,
    /// An overlay of the base with the single-database Component.
    SingleDatabase,
}

/// A program from the virtualenv `scripts/ensure-python-tools` makes.
fn python_tool(name: &str) -> PathBuf {
    let venv = std::env::var_os("CINDER_EXPORTER_PYTHON_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/python-tools"));
    let path = repository().join(venv).join("bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/ensure-python-tools",
        path.display()
    );
    path
}

/// Runs `command` in the repository; its stdout, or a panic with its stderr.
fn output_of(command: &mut Command) -> String {
    let output = command
        .current_dir(repository())
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// What `kubectl kustomize` builds for `variant`, one YAML document per object.
fn build(variant: Variant) -> Vec<Yaml> {
    let overlay = tempfile::tempdir().expect("temp dir");
    let directory = match variant {
        Variant::Targets => repository().join(BASE),
        Variant::SingleDatabase => {
            // kustomize takes only relative paths to other kustomizations.
            let root = "../".repeat(overlay.path().components().count() - 1);
            let repository = repository();
            let repository = repository.strip_prefix("/").expect("absolute path");
            let at = |dir: &str| format!("{root}{}/{dir}", repository.display());
            let kustomization = format!(
                "resources:\n  - {}\ncomponents:\n  - {}\n",
                at(BASE),
                at(SINGLE_DATABASE)
            );
            std::fs::write(overlay.path().join("kustomization.yaml"), kustomization)
                .expect("write overlay");
            overlay.path().to_path_buf()
        }
    };
    let text = output_of(
        Command::new(python_tool("kubectl"))
            .arg("kustomize")
            .arg(directory),
    );
    serde_yaml::Deserializer::from_str(&text)
        .map(|document| Yaml::deserialize(document).expect("kustomize writes YAML"))
        .collect()
}

/// `kind/name` in lower case, as both validators name an object.
fn kind_name(object: &Yaml) -> String {
    format!(
        "{}/{}",
        text(&object["kind"]).to_lowercase(),
        text(&object["metadata"]["name"])
    )
}

fn text(value: &Yaml) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value:?}"))
}

/// The one object of this kind.
fn object<'a>(objects: &'a [Yaml], kind: &str) -> &'a Yaml {
    let mut found = objects.iter().filter(|o| o["kind"].as_str() == Some(kind));
    let first = found.next().unwrap_or_else(|| panic!("no {kind}"));
    assert!(found.next().is_none(), "more than one {kind}");
    first
}

/// The object of this kind and name (kustomize rewrote the references to its hashed names).
fn named<'a>(objects: &'a [Yaml], kind: &str, name: &str) -> &'a Yaml {
    objects
        .iter()
        .find(|o| o["kind"].as_str() == Some(kind) && o["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// The objects written to a file, as `kubectl apply` would read them.
fn write_objects(objects: &[Yaml]) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    let documents: Vec<String> = objects
        .iter()
        .map(|o| serde_yaml::to_string(o).expect("YAML"))
        .collect();
    std::fs::write(file.path(), documents.join("---\n")).expect("write objects");
    file
}

/// Validates every object in `file`: the names that passed (the Kubernetes ones under
/// every version in [`KUBERNETES_VERSIONS`]) and what the validators said otherwise.
fn validate(file: &Path) -> (BTreeSet<String>, String) {
    let mut complaints = String::new();
    let mut passed_per_version = Vec::new();
    for version in KUBERNETES_VERSIONS {
        let output = Command::new(python_tool("kubernetes-validate"))
            .args(["--strict", "--no-warn", "--kubernetes-version", version])
            .arg(file)
            .output()
            .expect("run kubernetes-validate");
        let report = String::from_utf8_lossy(&output.stdout).into_owned();
        let passed: BTreeSet<String> = report
            .lines()
            .filter_map(|line| line.split(" passed for resource ").nth(1))
            .filter_map(|rest| rest.split_whitespace().next())
            .map(str::to_string)
            .collect();
        complaints.extend(
            report
                .lines()
                .filter(|l| !l.starts_with("INFO"))
                .map(|l| l.to_string() + "\n"),
        );
        passed_per_version.push(passed);
    }
    let mut passed = passed_per_version
        .into_iter()
        .reduce(|all, next| all.intersection(&next).cloned().collect())
        .unwrap_or_default();

    let output = Command::new(python_tool("python3"))
        .arg(repository().join(OPERATOR_VALIDATOR))
        .arg(file)
        .output()
        .expect("run the operator objects' validator");
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    for line in report.lines() {
        match line.strip_prefix("passed ") {
            Some(name) => {
                passed.insert(name.to_string());
            }
            None => complaints.push_str(&format!("{line}\n")),
        }
    }
    complaints.push_str(&String::from_utf8_lossy(&output.stderr));
    (passed, complaints)
}

#[test]
fn every_object_passes_the_kubernetes_or_operator_schemas_with_unknown_fields_refused() {
    for variant in [Variant::Targets, Variant::SingleDatabase] {
        let objects = build(variant);
        let all: BTreeSet<String> = objects.iter().map(kind_name).collect();
        let file = write_objects(&objects);
        let (passed, complaints) = validate(file.path());
        assert_eq!(
            passed, all,
            "{variant:?}: objects not validated:\n{complaints}"
        );
    }

    // The validators refuse a field the schema does not know, in a Kubernetes object and
    // in an operator's: a misspelt key must not pass for an ignored one.
    let mut objects = build(Variant::Targets);
    for object in objects.iter_mut() {
        let (parent, key) = match object["kind"].as_str() {
            Some("Deployment") => (
                &mut object["spec"]["template"]["spec"]["containers"][0],
                "readinesProbe",
            ),
            Some("Probe") => (&mut object["spec"]["prober"], "target"),
            _ => continue,
        };
        parent
            .as_mapping_mut()
            .expect("a mapping")
            .insert(key.into(), "/-/ready".into());
    }
    let file = write_objects(&objects);
    let (passed, complaints) = validate(file.path());
    for refused in ["deployment/cinder-exporter", "probe/cinder-exporter"] {
        assert!(
            !passed.contains(refused),
            "{refused} passed with an unknown field"
        );
    }
    for field in ["readinesProbe", "target"] {
        assert!(
            complaints.contains(field),
            "no complaint names {field}:\n{complaints}"
        );
    }
}

#[test]
fn the_prometheus_rule_is_the_mixin_rendered_and_holds_the_shipped_rule_groups() {
    let rendered = output_of(Command::new("jsonnet").arg(PROMETHEUS_RULE_SOURCE));
    let committed = std::fs::read_to_string(repository().join(PROMETHEUS_RULE)).expect("read");
    assert!(
        committed == rendered,
        "{PROMETHEUS_RULE} is not what jsonnet renders from {PROMETHEUS_RULE_SOURCE}: run deploy/kubernetes/build"
    );
    output_of(
        Command::new("jsonnetfmt")
            .arg("--test")
            .arg(PROMETHEUS_RULE_SOURCE),
    );

    let objects = build(Variant::Targets);
    let groups =
        serde_json::to_value(&object(&objects, "PrometheusRule")["spec"]["groups"]).expect("JSON");
    let rule_file: Yaml =
        serde_yaml::from_str(&std::fs::read_to_string(repository().join(RULE_FILE)).expect("read"))
            .expect("the rule file is YAML");
    let shipped = serde_json::to_value(&rule_file["groups"]).expect("JSON");
    assert!(
        matches!(&shipped, Json::Array(groups) if !groups.is_empty()),
        "{RULE_FILE} has no groups"
    );
    let names = |groups: &Json| -> Vec<String> {
        let groups = groups.as_array().map(Vec::as_slice).unwrap_or_default();
        groups.iter().map(|g| g["name"].to_string()).collect()
    };
    assert_eq!(names(&groups), names(&shipped), "group names and order");
    for (ours, theirs) in groups
        .as_array()
        .into_iter()
        .flatten()
        .zip(shipped.as_array().into_iter().flatten())
    {
        assert!(
            ours == theirs,
            "group {} of the PrometheusRule differs from {RULE_FILE}'s",
            ours["name"]
        );
    }
}

#[test]
fn the_manifests_agree_with_the_image_and_with_each_other() {
    let objects = build(Variant::Targets);
    let deployment = object(&objects, "Deployment");
    assert_eq!(deployment["spec"]["replicas"].as_u64(), Some(2));
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];

    // The image is the one scripts/package builds, of this version.
    let image = text(&container["image"]);
    assert_eq!(
        image.rsplit(':').next(),
        Some(env!("CARGO_PKG_VERSION")),
        "the image tag is not Cargo.toml's version: {image}"
    );
    let containerfile =
        std::fs::read_to_string(repository().join("Containerfile")).expect("read Containerfile");
    assert!(containerfile.contains("\nUSER 65534:65534\n"));
    assert_eq!(pod["securityContext"]["runAsUser"].as_u64(), Some(65534));
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(security["allowPrivilegeEscalation"].as_bool(), Some(false));
    for bound in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                container["resources"][bound][resource].is_string(),
                "no {bound}.{resource}"
            );
        }
    }

    // One port throughout: the image's, the listen address's, the Service's and the Probe's.
    let port = &container["ports"][0];
    let container_port = port["containerPort"].as_u64().expect("containerPort");
    assert!(containerfile.contains(&format!("\nEXPOSE {container_port}\n")));
    let listen = listen_address(container).expect("--web.listen-address in the args");
    assert_eq!(listen, format!(":{container_port}"));
    let service = object(&objects, "Service");
    let service_port = &service["spec"]["ports"][0];
    assert_eq!(service_port["targetPort"], port["name"]);
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["template"]["metadata"]["labels"]
    );
    let prober = &object(&objects, "Probe")["spec"]["prober"];
    let expected_url = format!(
        "{}.{}.svc:{}",
        text(&service["metadata"]["name"]),
        text(&service["metadata"]["namespace"]),
        service_port["port"].as_u64().expect("port")
    );
    assert_eq!(text(&prober["url"]), expected_url);
    let monitor = object(&objects, "ServiceMonitor");
    assert_eq!(
        monitor["spec"]["selector"]["matchLabels"],
        service["metadata"]["labels"]
    );
    assert_eq!(
        monitor["spec"]["endpoints"][0]["port"],
        service_port["name"]
    );
}

/// The value of `--web.listen-address=` among the container's args.
fn listen_address(container: &Yaml) -> Option<String> {
    container["args"]
        .as_sequence()?
        .iter()
        .find_map(|arg| arg.as_str()?.strip_prefix("--web.listen-address="))
        .map(str::to_string)
}

/// The exporter started as the Deployment starts it: its args, the ConfigMap's files
/// and the Secret's keys in a directory per volume, the mount paths (and only they)
/// pointing there, each Secret key holding the URL `url_for` gives it, and the listen
/// address on loopback (the manifests' own port is checked apart).
fn start_as_deployed(
    objects: &[Yaml],
    url_for: impl Fn(&str) -> String,
) -> (Exporter, tempfile::TempDir) {
    let pod = &object(objects, "Deployment")["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let root = tempfile::tempdir().expect("temp dir");
    let mut mounts = Vec::new();
    for mount in container["volumeMounts"]
        .as_sequence()
        .expect("volumeMounts")
    {
        let name = text(&mount["name"]);
        let directory = root.path().join(name);
        std::fs::create_dir(&directory).expect("create volume dir");
        let volume = pod["volumes"]
            .as_sequence()
            .expect("volumes")
            .iter()
            .find(|v| v["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("no volume {name}"));
        if let Some(config_map) = volume["configMap"]["name"].as_str() {
            for (key, value) in named(objects, "ConfigMap", config_map)["data"]
                .as_mapping()
                .expect("data")
            {
                std::fs::write(directory.join(text(key)), text(value)).expect("write config");
            }
        } else if let Some(secret) = volume["secret"]["secretName"].as_str() {
            for key in named(objects, "Secret", secret)["data"]
                .as_mapping()
                .expect("data")
                .keys()
            {
                std::fs::write(directory.join(text(key)), url_for(text(key))).expect("write URL");
            }
        } else {
            panic!("volume {name} is neither a ConfigMap nor a Secret");
        }
        mounts.push((text(&mount["mountPath"]).to_string(), directory));
    }
    let relocate = |text: &str| {
        mounts
            .iter()
            .fold(text.to_string(), |text, (path, directory)| {
                text.replace(path.as_str(), &directory.display().to_string())
            })
    };
    for (_, directory) in &mounts {
        for file in std::fs::read_dir(directory).expect("read volume dir") {
            let path = file.expect("entry").path();
            let content = std::fs::read_to_string(&path).expect("read");
            std::fs::write(&path, relocate(&content)).expect("rewrite");
        }
    }
    let args: Vec<String> = container["args"]
        .as_sequence()
        .expect("args")
        .iter()
        .map(text)
        // Exporter::start gives it 127.0.0.1:0 (the flag may be given once).
        .filter(|arg| !arg.starts_with("--web.listen-address="))
        .map(relocate)
        .collect();
    let exporter = Exporter::start(ExporterOptions {
        config: None,
        env: Vec::new(),
        args,
    });
    (exporter, root)
}

/// Waits until GET `path` answers 200 (the kubelet's probes take any 2xx).
fn wait_for_status_ok(exporter: &Exporter, path: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = exporter.get(path);
        if status == 200 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "GET {path}: {status} {body}\nlog:\n{}",
            exporter.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until GET `path` shows `cinder_up 1`.
fn wait_for_database_read(exporter: &Exporter, path: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = exporter.get(path);
        if status == 200 && Scrape::parse(&body).value("cinder_up", &[]) == Some(1.0) {
            return;
        }
        // A name or path the exporter does not know is no question of waiting.
        assert!(status < 400, "GET {path}: {status}: {body}");
        assert!(
            Instant::now() < deadline,
            "GET {path}: {status} without cinder_up 1:\n{body}\nlog:\n{}",
            exporter.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The kubelet's probes, as the Deployment names them, answer 200.
fn check_kubelet_probes(objects: &[Yaml], exporter: &Exporter) {
    let container = &object(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    for probe in ["readinessProbe", "livenessProbe"] {
        wait_for_status_ok(exporter, text(&container[probe]["httpGet"]["path"]));
    }
}

#[test]
fn the_deployment_starts_the_binary_which_answers_the_probe_for_every_target() {
    let objects = build(Variant::Targets);
    let probe = &object(&objects, "Probe")["spec"];
    let targets: Vec<&str> = probe["targets"]["staticConfig"]["static"]
        .as_sequence()
        .expect("static targets")
        .iter()
        .map(text)
        .collect();
    assert!(
        targets.len() >= 2,
        "the base shows several targets: {targets:?}"
    );
    let databases: Vec<(String, Database)> = targets
        .iter()
        .map(|name| (name.to_string(), Database::create(Schema::Cinder29)))
        .collect();
    let (exporter, _volumes) = start_as_deployed(&objects, |key| {
        let (_, database) = databases
            .iter()
            .find(|(name, _)| name == key)
            .unwrap_or_else(|| panic!("the Secret's key {key} is no target of the Probe"));
        database.url()
    });

    check_kubelet_probes(&objects, &exporter);
    // What Prometheus asks for each static target: prober.path?target=NAME.
    let path = text(&probe["prober"]["path"]);
    for target in &targets {
        wait_for_database_read(&exporter, &format!("{path}?target={target}"));
    }
}

#[test]
fn the_single_database_variant_starts_the_binary_which_answers_the_service_monitor() {
    let objects = build(Variant::SingleDatabase);
    assert!(
        !objects.iter().any(|o| o["kind"].as_str() == Some("Probe")),
        "the single-database variant has no targets to probe"
    );
    let database = Database::create(Schema::Cinder29);
    let (exporter, _volumes) = start_as_deployed(&objects, |_| database.url());

    check_kubelet_probes(&objects, &exporter);
    let endpoint = &object(&objects, "ServiceMonitor")["spec"]["endpoints"][0];
    wait_for_database_read(&exporter, text(&endpoint["path"]));
}
