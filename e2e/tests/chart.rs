//! The Helm chart (`charts/strom`) and the single-file install (`deploy/operator.yaml`), checked
//! with the real tools: `helm lint` and `helm template` (Helm 4), every rendered object validated
//! offline against the Kubernetes OpenAPI schemas with `kubernetes-validate --strict`, custom
//! resources against their CRD schemas, rule files with `promtool`.
//!
//! Tools come from `e2e/install-tools.sh` (helm in `e2e/.tools/bin`, the Python packages, the
//! Debian `prometheus` package for promtool). Rendered YAML is turned into JSON by PyYAML, the
//! parser `kubernetes-validate` itself uses, so both read the same documents.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};
use strom_e2e::{repo_root, tool};

const RELEASE: &str = "strom";
const NAMESPACE: &str = "strom-system";
/// Oldest Kubernetes the chart supports (`kubeVersion` in Chart.yaml) and the newest schema set
/// `kubernetes-validate` ships.
const KUBERNETES_VERSIONS: &[&str] = &["1.29.0", "1.37.0"];
const RENDER_SCRIPT: &str = "e2e/scripts/render-operator-yaml.sh";
const FULL_VALUES: &str = "e2e/testdata/chart-values-full.yaml";
/// API groups whose kinds `kubernetes-validate` has no schema for; each is checked otherwise.
const CUSTOM_GROUPS: &[&str] = &["strom.io", "monitoring.coreos.com"];

fn chart_dir() -> PathBuf {
    repo_root().join("charts/strom")
}

fn helm() -> PathBuf {
    tool("helm").unwrap_or_else(|e| panic!("{e:#} (helm 4 lands in e2e/.tools/bin/helm)"))
}

fn output_of(command: &mut Command, what: &str) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}; run e2e/install-tools.sh"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Fails with a message naming the installer unless python3 has the modules the checks use.
fn require_python_modules() {
    let out = output_of(
        Command::new("python3").args(["-c", "import yaml, jsonschema, kubernetes_validate"]),
        "python3",
    );
    assert!(
        out.status.success(),
        "python3 lacks pyyaml/jsonschema/kubernetes-validate ({}): run e2e/install-tools.sh",
        text(&out.stderr).trim()
    );
}

/// `helm template` of the chart; `Err(stderr)` when helm refuses (bad values, `fail`).
fn helm_template(values: &[&Path]) -> Result<String, String> {
    let mut command = Command::new(helm());
    command.args(["template", RELEASE]).arg(chart_dir()).args([
        "--namespace",
        NAMESPACE,
        "--include-crds",
    ]);
    for file in values {
        command.arg("--values").arg(file);
    }
    let out = output_of(&mut command, "helm template");
    if out.status.success() {
        Ok(text(&out.stdout))
    } else {
        Err(text(&out.stderr))
    }
}

fn helm_lint(values: &[&Path]) -> Output {
    let mut command = Command::new(helm());
    command.args(["lint", "--strict"]).arg(chart_dir());
    for file in values {
        command.arg("--values").arg(file);
    }
    output_of(&mut command, "helm lint")
}

fn render(values: &[&Path]) -> String {
    helm_template(values).unwrap_or_else(|stderr| panic!("helm template failed:\n{stderr}"))
}

fn write_temp(suffix: &str, contents: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new()
        .prefix("strom-chart-")
        .suffix(suffix)
        .tempfile()
        .expect("creating a temporary file");
    file.write_all(contents.as_bytes())
        .expect("writing a temporary file");
    file.flush().expect("flushing a temporary file");
    file
}

/// Every non-empty YAML document of `yaml` as JSON (PyYAML `safe_load_all`).
fn documents(yaml: &str) -> Vec<Value> {
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import sys, json, yaml\n\
             docs = [d for d in yaml.safe_load_all(sys.stdin) if d is not None]\n\
             json.dump(docs, sys.stdout)",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs (install it with e2e/install-tools.sh)");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(yaml.as_bytes())
        .expect("feeding YAML to python3");
    let out = child.wait_with_output().expect("python3 finishes");
    assert!(
        out.status.success(),
        "rendered YAML does not parse: {}",
        text(&out.stderr)
    );
    match serde_json::from_slice(&out.stdout).expect("python3 prints JSON") {
        Value::Array(docs) => docs,
        other => panic!("expected a list of documents, got {other}"),
    }
}

fn kind(object: &Value) -> &str {
    object["kind"].as_str().unwrap_or_default()
}

fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

fn namespace(object: &Value) -> &str {
    object["metadata"]["namespace"].as_str().unwrap_or_default()
}

fn api_group(object: &Value) -> &str {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

fn is_custom(object: &Value) -> bool {
    CUSTOM_GROUPS.contains(&api_group(object))
}

fn find<'a>(objects: &'a [Value], kind_name: &str, object_name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| kind(o) == kind_name && name(o) == object_name)
        .unwrap_or_else(|| panic!("no {kind_name} named {object_name} in the rendering"))
}

fn all_of<'a>(objects: &'a [Value], kind_name: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| kind(o) == kind_name).collect()
}

/// Runs `kubernetes-validate --strict` on `yaml` for each supported Kubernetes version and checks
/// that every built-in object passed and that only the custom kinds lacked a schema.
fn validate_with_kubernetes_schemas(yaml: &str, objects: &[Value]) {
    let file = write_temp(".yaml", yaml);
    let path = file.path().display().to_string();
    for version in KUBERNETES_VERSIONS {
        let out = output_of(
            Command::new("python3")
                .args([
                    "-m",
                    "kubernetes_validate",
                    "--strict",
                    "--kubernetes-version",
                    version,
                ])
                .arg(file.path()),
            "kubernetes-validate",
        );
        let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(
            out.status.success(),
            "kubernetes-validate --strict (Kubernetes {version}) rejected the rendering:\n{report}"
        );
        let mut passed: Vec<String> = report
            .lines()
            .filter_map(|line| line.strip_prefix(&format!("INFO {path} passed for resource ")))
            .filter_map(|rest| rest.split_whitespace().next())
            .map(str::to_string)
            .collect();
        passed.sort();
        let mut expected: Vec<String> = objects
            .iter()
            .filter(|o| !is_custom(o))
            .map(|o| format!("{}/{}", kind(o).to_lowercase(), name(o)))
            .collect();
        expected.sort();
        assert_eq!(
            passed, expected,
            "every built-in object must be validated (Kubernetes {version}); report:\n{report}"
        );
        for line in report.lines().filter(|l| l.starts_with("WARN")) {
            assert!(
                CUSTOM_GROUPS
                    .iter()
                    .any(|g| line.contains(&format!("api version {g}/"))),
                "unexpected warning from kubernetes-validate: {line}"
            );
        }
    }
}

/// Validates a custom resource against the `openAPIV3Schema` of its CRD version (from `crds`),
/// the check the API server does on create (CEL rules aside). `nullable: true` becomes a `null`
/// type, as the API server reads it.
fn validate_custom_resource(object: &Value, crds: &[&Value]) {
    const VALIDATE: &str = "import json, sys, jsonschema\n\
        crd, cr = (json.load(open(p)) for p in sys.argv[1:3])\n\
        version = cr['apiVersion'].split('/')[1]\n\
        schema = next(v['schema']['openAPIV3Schema'] for v in crd['spec']['versions'] if v['name'] == version)\n\
        def nullable(node):\n\
        \x20   if isinstance(node, dict):\n\
        \x20       if node.get('nullable') and 'type' in node:\n\
        \x20           node['type'] = [node['type'], 'null']\n\
        \x20       for child in node.values():\n\
        \x20           nullable(child)\n\
        \x20   elif isinstance(node, list):\n\
        \x20       for child in node:\n\
        \x20           nullable(child)\n\
        nullable(schema)\n\
        errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(cr), key=str)\n\
        for e in errors:\n\
        \x20   print('/'.join(map(str, e.absolute_path)) + ': ' + e.message)\n\
        sys.exit(1 if errors else 0)\n";
    let group = api_group(object);
    let crd = crds
        .iter()
        .find(|crd| crd["spec"]["group"] == group && crd["spec"]["names"]["kind"] == kind(object))
        .unwrap_or_else(|| {
            panic!(
                "no CRD for {} {} in charts/strom/crds/",
                group,
                kind(object)
            )
        });
    let crd_file = write_temp(".json", &crd.to_string());
    let cr_file = write_temp(".json", &object.to_string());
    let out = output_of(
        Command::new("python3")
            .args(["-c", VALIDATE])
            .arg(crd_file.path())
            .arg(cr_file.path()),
        "python3 jsonschema",
    );
    assert!(
        out.status.success(),
        "{} {} does not match its CRD schema:\n{}{}",
        kind(object),
        name(object),
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn operator_deployment<'a>(objects: &'a [Value], fullname: &str) -> &'a Value {
    find(objects, "Deployment", &format!("{fullname}-operator"))
}

fn container(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]["containers"][0]
}

fn args(deployment: &Value) -> Vec<String> {
    container(deployment)["args"]
        .as_array()
        .expect("the operator container has args")
        .iter()
        .map(|a| a.as_str().expect("args are strings").to_string())
        .collect()
}

/// One permission: (apiGroup, resource, verb).
type Grant = (String, String, String);

/// Every (apiGroup, resource, verb) a list of PolicyRules grants.
fn grants(rules: &Value) -> BTreeSet<Grant> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|s| s.as_str().expect("RBAC lists hold strings").to_string())
            .collect()
    };
    let mut out = BTreeSet::new();
    for rule in rules.as_array().expect("rules is a list") {
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    out.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    out
}

/// The operator's own permission table, `RULES` in operator/src/rbac.rs, read from its source:
/// `PolicyRule { api_groups: &[..], resources: &[..], verbs: &[..] }` entries, however
/// rustfmt lays them out.
fn operator_rbac_table() -> BTreeSet<Grant> {
    let path = repo_root().join("operator/src/rbac.rs");
    let source = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let rules = source
        .split_once("pub const RULES")
        .and_then(|(_, rest)| rest.split_once("];"))
        .map(|(rules, _)| rules)
        .unwrap_or_else(|| {
            panic!(
                "no `pub const RULES: &[PolicyRule] = &[..];` in {}",
                path.display()
            )
        });
    let list = |entry: &str, field: &str| -> Vec<String> {
        let start = entry
            .find(&format!("{field}: &["))
            .unwrap_or_else(|| panic!("rbac.rs rule without {field}: {entry}"));
        let rest = &entry[start + field.len() + 4..];
        let end = rest.find(']').expect("a closing bracket");
        // Raw items are quoted (`""` is the core group); an empty raw item is a trailing comma.
        rest[..end]
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| item.trim_matches('"').to_string())
            .collect()
    };
    let mut table = BTreeSet::new();
    for entry in rules.split("PolicyRule {").skip(1) {
        for group in list(entry, "api_groups") {
            for resource in list(entry, "resources") {
                for verb in list(entry, "verbs") {
                    table.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    assert!(
        !table.is_empty(),
        "no PolicyRule found in {}",
        path.display()
    );
    table
}

/// The part of the operator's table whose resources are cluster-scoped, granted by the
/// ClusterRole whatever the watch namespaces.
fn is_cluster_scoped(grant: &Grant) -> bool {
    grant.0 == "apiextensions.k8s.io"
}

/// The part granted only in the lease namespace.
fn is_lease(grant: &Grant) -> bool {
    grant.0 == "coordination.k8s.io"
}

fn subset(table: &BTreeSet<Grant>, keep: impl Fn(&Grant) -> bool) -> BTreeSet<Grant> {
    table.iter().filter(|g| keep(g)).cloned().collect()
}

/// Fails listing what `rules` grants beyond `expected` and what it lacks.
fn assert_grants(rules: &Value, expected: &BTreeSet<Grant>, what: &str) {
    let actual = grants(rules);
    let extra: Vec<_> = actual.difference(expected).collect();
    let missing: Vec<_> = expected.difference(&actual).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "{what} must grant exactly its part of operator/src/rbac.rs (mirrored in \
         charts/strom/templates/_helpers.tpl): extra {extra:?}, missing {missing:?}"
    );
}

fn assert_restricted_pod_security(deployment: &Value) {
    let pod = &deployment["spec"]["template"]["spec"];
    let container = container(deployment);
    let context = &container["securityContext"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(context["allowPrivilegeEscalation"], false);
    assert_eq!(context["readOnlyRootFilesystem"], true);
    assert_eq!(context["capabilities"]["drop"], json!(["ALL"]));
}

#[test]
fn helm_lint_passes_with_default_and_full_values() {
    let full = repo_root().join(FULL_VALUES);
    for values in [vec![], vec![full.as_path()]] {
        let out = helm_lint(&values);
        assert!(
            out.status.success(),
            "helm lint --strict {values:?} failed:\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

#[test]
fn default_rendering_is_a_valid_cluster_wide_install() {
    require_python_modules();
    let yaml = render(&[]);
    let objects = documents(&yaml);
    validate_with_kubernetes_schemas(&yaml, &objects);

    let crds: BTreeSet<&str> = all_of(&objects, "CustomResourceDefinition")
        .into_iter()
        .map(name)
        .collect();
    assert_eq!(
        crds,
        BTreeSet::from(["clusters.strom.io", "topics.strom.io"]),
        "chart CRDs"
    );
    assert!(
        objects.iter().all(|o| !is_custom(o)),
        "defaults render no custom resource (ServiceMonitor, PrometheusRule, Cluster are opt-in)"
    );

    let deployment = operator_deployment(&objects, RELEASE);
    assert_eq!(namespace(deployment), NAMESPACE);
    assert_restricted_pod_security(deployment);
    let app_version = chart_app_version();
    assert_eq!(
        container(deployment)["image"],
        format!("ghcr.io/strom-io/strom-operator:{app_version}")
    );
    assert_eq!(
        args(deployment),
        vec![
            "--metrics-listen=0.0.0.0:8080".to_string(),
            "--leader-election=true".to_string(),
            "--lease-name=strom-operator".to_string(),
            format!("--lease-namespace={NAMESPACE}"),
            "--log-format=json".to_string(),
            format!("--broker-image=ghcr.io/strom-io/strom-broker:{app_version}"),
        ],
        "no --namespace flag: the operator watches every namespace"
    );
    let env: BTreeMap<&str, &Value> = container(deployment)["env"]
        .as_array()
        .expect("env list")
        .iter()
        .map(|e| (e["name"].as_str().unwrap_or_default(), e))
        .collect();
    assert_eq!(
        env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    assert_eq!(
        env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    assert_eq!(env["RUST_LOG"]["value"], "info");
    assert_eq!(
        container(deployment)["livenessProbe"]["httpGet"]["path"],
        "/healthz"
    );
    assert_eq!(
        container(deployment)["readinessProbe"]["httpGet"]["path"],
        "/readyz"
    );

    // The metrics Service selects exactly the operator pods and names the probe port.
    let service = find(&objects, "Service", "strom-operator-metrics");
    let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
    for (key, value) in service["spec"]["selector"].as_object().expect("selector") {
        assert_eq!(
            &pod_labels[key], value,
            "Service selector {key} must match the pod labels"
        );
    }
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "metrics");

    // RBAC: exactly the operator's table; the Lease only in the lease namespace, the rest
    // cluster-wide.
    let table = operator_rbac_table();
    let cluster_role = find(&objects, "ClusterRole", "strom-operator");
    let lease_role = find(&objects, "Role", "strom-operator-leader-election");
    assert_eq!(namespace(lease_role), NAMESPACE);
    assert_grants(
        &cluster_role["rules"],
        &subset(&table, |g| !is_lease(g)),
        "the ClusterRole (no watch namespaces)",
    );
    assert_grants(
        &lease_role["rules"],
        &subset(&table, is_lease),
        "the leader-election Role",
    );
    let service_account = find(&objects, "ServiceAccount", "strom-operator");
    for binding in [
        find(&objects, "ClusterRoleBinding", "strom-operator"),
        find(&objects, "RoleBinding", "strom-operator-leader-election"),
    ] {
        assert_eq!(binding["subjects"][0]["name"], name(service_account));
        assert_eq!(binding["subjects"][0]["namespace"], NAMESPACE);
    }
    assert_eq!(
        deployment["spec"]["template"]["spec"]["serviceAccountName"],
        name(service_account)
    );
}

#[test]
fn full_values_render_namespaced_rbac_monitoring_dashboards_and_a_cluster() {
    require_python_modules();
    let full = repo_root().join(FULL_VALUES);
    let yaml = render(&[&full]);
    let objects = documents(&yaml);
    validate_with_kubernetes_schemas(&yaml, &objects);
    let crds = all_of(&objects, "CustomResourceDefinition");

    let deployment = operator_deployment(&objects, "strom-test");
    assert_restricted_pod_security(deployment);
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(
        container(deployment)["image"],
        "registry.example.com:5000/platform/strom-operator@sha256:\
         0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "a digest pins the image and wins over the tag"
    );
    assert_eq!(
        args(deployment),
        vec![
            "--metrics-listen=0.0.0.0:9090",
            "--namespace=team-a",
            "--namespace=team-b",
            "--leader-election=true",
            "--lease-name=strom-operator-leader",
            "--lease-namespace=strom-leases",
            "--log-format=text",
            "--broker-image=registry.example.com:5000/platform/strom-broker:0.1.0-rc.1",
        ],
        "watch namespaces are passed once each, in order"
    );

    // Watch namespaces: the ClusterRole keeps only cluster-scoped rules; each namespace gets a
    // Role with the namespaced ones, bound to the operator's ServiceAccount.
    let table = operator_rbac_table();
    let cluster_role = find(&objects, "ClusterRole", "strom-test-operator");
    assert_grants(
        &cluster_role["rules"],
        &subset(&table, is_cluster_scoped),
        "the ClusterRole with watch namespaces (cluster-scoped rules only)",
    );
    let roles: Vec<&Value> = all_of(&objects, "Role")
        .into_iter()
        .filter(|r| name(r) == "strom-test-operator")
        .collect();
    let role_namespaces: Vec<&str> = roles.iter().map(|r| namespace(r)).collect();
    assert_eq!(role_namespaces, vec!["team-a", "team-b"]);
    for role in &roles {
        assert_grants(
            &role["rules"],
            &subset(&table, |g| !is_cluster_scoped(g) && !is_lease(g)),
            &format!("the Role in watch namespace {}", namespace(role)),
        );
    }
    let bindings: Vec<&Value> = all_of(&objects, "RoleBinding")
        .into_iter()
        .filter(|b| name(b) == "strom-test-operator")
        .collect();
    assert_eq!(bindings.len(), 2);
    for binding in bindings {
        assert_eq!(binding["subjects"][0]["name"], "strom-operator-sa");
        assert_eq!(binding["subjects"][0]["namespace"], NAMESPACE);
    }
    assert_eq!(
        namespace(find(
            &objects,
            "Role",
            "strom-test-operator-leader-election"
        )),
        "strom-leases"
    );

    // The ServiceMonitor scrapes the metrics Service by its labels and port name.
    let service = find(&objects, "Service", "strom-test-operator-metrics");
    let monitor = find(&objects, "ServiceMonitor", "strom-test-operator");
    for (key, value) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("selector")
    {
        assert_eq!(
            &service["metadata"]["labels"][key], value,
            "ServiceMonitor selects {key}"
        );
    }
    assert_eq!(
        monitor["spec"]["endpoints"][0]["port"],
        service["spec"]["ports"][0]["name"]
    );
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(
        monitor["spec"]["endpoints"][0]["honorLabels"], true,
        "the operator's own `cluster` label is kept"
    );
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(
        monitor["spec"]["namespaceSelector"]["matchNames"],
        json!([NAMESPACE])
    );

    assert_prometheus_rules_match_deploy(&objects);
    assert_dashboards_match_deploy(&objects);

    let cluster = find(&objects, "Cluster", "events");
    assert_eq!(namespace(cluster), "team-a");
    assert_eq!(cluster["spec"]["replicas"], 3);
    assert_eq!(cluster["spec"]["storage"]["size"], "20Gi");
    validate_custom_resource(cluster, &crds);
}

/// One PrometheusRule per `deploy/prometheus/*.rules.yaml`, holding that file's groups, and
/// accepted by promtool.
fn assert_prometheus_rules_match_deploy(objects: &[Value]) {
    let rule_files = deploy_files("deploy/prometheus", ".rules.yaml");
    let rules = all_of(objects, "PrometheusRule");
    assert_eq!(
        rules.len(),
        rule_files.len(),
        "one PrometheusRule per rule file"
    );
    let promtool = tool("promtool").unwrap_or_else(|e| panic!("{e:#}"));
    for file in rule_files {
        let file_name = file
            .file_name()
            .and_then(|n| n.to_str())
            .expect("UTF-8 file name");
        let stem = file_name
            .trim_end_matches(".rules.yaml")
            .to_lowercase()
            .replace(['_', '.'], "-");
        let object = find(
            objects,
            "PrometheusRule",
            &format!("strom-test-{stem}-rules"),
        );
        let source = std::fs::read_to_string(&file).expect("reading a rule file");
        let expected = documents(&source);
        assert_eq!(
            object["spec"]["groups"], expected[0]["groups"],
            "PrometheusRule from {file_name} must hold the file's groups unchanged"
        );
        // promtool reads the rule-file format; JSON is YAML, so the spec is written as is.
        let spec = write_temp(".rules.yaml", &object["spec"].to_string());
        let out = output_of(
            Command::new(&promtool)
                .args(["check", "rules"])
                .arg(spec.path()),
            "promtool",
        );
        assert!(
            out.status.success(),
            "promtool check rules rejects the PrometheusRule from {file_name}:\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

/// One ConfigMap per `deploy/grafana/*.json`, labelled for the Grafana sidecar, holding the
/// dashboard unchanged.
fn assert_dashboards_match_deploy(objects: &[Value]) {
    let dashboards = deploy_files("deploy/grafana", ".json");
    let config_maps: Vec<&Value> = all_of(objects, "ConfigMap")
        .into_iter()
        .filter(|c| c["metadata"]["labels"]["grafana_dashboard"] == "1")
        .collect();
    assert_eq!(
        config_maps.len(),
        dashboards.len(),
        "one ConfigMap per dashboard"
    );
    for file in dashboards {
        let file_name = file
            .file_name()
            .and_then(|n| n.to_str())
            .expect("UTF-8 file name");
        let config_map = config_maps
            .iter()
            .find(|c| c["data"].get(file_name).is_some())
            .unwrap_or_else(|| panic!("no ConfigMap holds {file_name}"));
        assert_eq!(namespace(config_map), "monitoring");
        assert_eq!(
            config_map["metadata"]["annotations"]["grafana_folder"],
            "Strom"
        );
        let embedded: Value = serde_json::from_str(
            config_map["data"][file_name]
                .as_str()
                .expect("dashboard data is a string"),
        )
        .unwrap_or_else(|e| panic!("{file_name} in its ConfigMap is not JSON: {e}"));
        let original: Value =
            serde_json::from_slice(&std::fs::read(&file).expect("reading a dashboard"))
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", file.display()));
        assert_eq!(
            embedded, original,
            "{file_name} must reach Grafana unchanged"
        );
    }
}

/// Files of `dir` (relative to the repository) whose names end in `suffix`, sorted; at least one.
fn deploy_files(dir: &str, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join(dir))
        .unwrap_or_else(|e| panic!("cannot read {dir}: {e}"))
        .map(|entry| entry.expect("reading a directory entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(suffix))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{dir} holds no *{suffix} file");
    files
}

fn chart_app_version() -> String {
    let chart =
        std::fs::read_to_string(chart_dir().join("Chart.yaml")).expect("reading Chart.yaml");
    documents(&chart)[0]["appVersion"]
        .as_str()
        .expect("Chart.yaml has appVersion")
        .to_string()
}

#[test]
fn values_schema_and_template_guards_reject_bad_values() {
    // (values, text the error must contain): each is a mistake a user makes.
    let cases: &[(&str, &str)] = &[
        ("watchNamespace: [team-a]\n", "watchNamespace"),
        (
            "image:\n  repository: strom\n  pullPolicy: Sometimes\n",
            "pullPolicy",
        ),
        (
            "image:\n  repository: strom\n  pullPolicy: Always\n  digest: latest\n",
            "digest",
        ),
        ("logging:\n  level: info\n  format: xml\n", "format"),
        (
            "leaderElection:\n  enabled: true\n  leaseName: x\n  leaseNamspace: y\n",
            "leaseNamspace",
        ),
        (
            "metrics:\n  serviceMonitor:\n    interval: soon\n",
            "interval",
        ),
        ("watchNamespaces: [Team_A]\n", "watchNamespaces"),
        ("cluster:\n  enabled: yes-please\n", "enabled"),
        (
            "replicaCount: 2\nleaderElection:\n  enabled: false\n  leaseName: x\n",
            "leaderElection/enabled",
        ),
        ("serviceAccount:\n  create: false\n", "serviceAccount/name"),
    ];
    for (values, needle) in cases {
        let file = write_temp(".yaml", values);
        let err = helm_template(&[file.path()])
            .err()
            .unwrap_or_else(|| panic!("helm template accepted bad values:\n{values}"));
        assert!(
            err.contains(needle),
            "the error for\n{values}should name {needle}, got:\n{err}"
        );
        let lint = helm_lint(&[file.path()]);
        assert!(
            !lint.status.success(),
            "helm lint accepted bad values:\n{values}"
        );
    }
}

#[test]
fn deploy_operator_yaml_is_the_chart_rendering() {
    let script = repo_root().join(RENDER_SCRIPT);
    let out = output_of(
        Command::new("bash").arg(&script).arg("--print"),
        RENDER_SCRIPT,
    );
    assert!(
        out.status.success(),
        "{RENDER_SCRIPT} --print failed:\n{}",
        text(&out.stderr)
    );
    let fresh = text(&out.stdout);
    let committed = std::fs::read_to_string(repo_root().join("deploy/operator.yaml"))
        .unwrap_or_else(|e| panic!("deploy/operator.yaml: {e}; run {RENDER_SCRIPT}"));
    assert!(
        committed == fresh,
        "deploy/operator.yaml is stale (the chart or its CRDs changed): run {RENDER_SCRIPT}"
    );

    // It installs into its own namespace, first object first, ready for `kubectl apply`.
    require_python_modules();
    let objects = documents(&committed);
    assert_eq!(kind(&objects[0]), "Namespace");
    assert_eq!(name(&objects[0]), NAMESPACE);
    assert_eq!(
        objects[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "restricted",
        "the operator pod meets the restricted Pod Security Standard"
    );
    assert!(
        objects
            .iter()
            .filter(|o| o["metadata"]["namespace"].is_string())
            .all(|o| namespace(o) == NAMESPACE),
        "every namespaced object lands in {NAMESPACE}"
    );
    validate_with_kubernetes_schemas(&committed, &objects);
}

#[test]
fn chart_copies_of_rules_and_dashboards_match_deploy() {
    for (source, copy, suffix) in [
        (
            "deploy/prometheus",
            "charts/strom/files/prometheus",
            ".rules.yaml",
        ),
        ("deploy/grafana", "charts/strom/files/grafana", ".json"),
    ] {
        let names = |dir: &str| -> BTreeMap<String, Vec<u8>> {
            let Ok(entries) = std::fs::read_dir(repo_root().join(dir)) else {
                return BTreeMap::new();
            };
            entries
                .map(|e| e.expect("reading a directory entry").path())
                .filter(|p| p.to_str().is_some_and(|n| n.ends_with(suffix)))
                .map(|p| {
                    let bytes = std::fs::read(&p).expect("reading a file");
                    (
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .unwrap_or_default()
                            .to_string(),
                        bytes,
                    )
                })
                .collect()
        };
        let originals = names(source);
        let copies = names(copy);
        assert!(!originals.is_empty(), "{source} holds no *{suffix} file");
        assert_eq!(
            originals.keys().collect::<Vec<_>>(),
            copies.keys().collect::<Vec<_>>(),
            "{copy} must hold exactly the files of {source}: run {RENDER_SCRIPT}"
        );
        for (file, bytes) in &originals {
            assert!(
                copies[file] == *bytes,
                "{copy}/{file} differs from {source}/{file}: run {RENDER_SCRIPT}"
            );
        }
    }
}

#[test]
fn chart_app_version_is_the_workspace_version() {
    require_python_modules();
    let manifest =
        std::fs::read_to_string(repo_root().join("Cargo.toml")).expect("reading Cargo.toml");
    let workspace_version = manifest
        .split("[workspace.package]")
        .nth(1)
        .and_then(|section| {
            section
                .lines()
                .find(|l| l.trim_start().starts_with("version"))
        })
        .and_then(|line| line.split('"').nth(1))
        .expect("Cargo.toml has [workspace.package] version");
    assert_eq!(
        chart_app_version(),
        workspace_version,
        "charts/strom/Chart.yaml appVersion is the default image tag: it must name the version \
         the workspace builds"
    );
}

/// The fenced blocks of `markdown` opened with "```" followed by `language`.
fn fenced_blocks(markdown: &str, language: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match &mut current {
            Some(block) if line.trim_start().starts_with("```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None if line.trim_start() == format!("```{language}") => current = Some(String::new()),
            None => {}
        }
    }
    blocks
}

/// `deploy/kind-quickstart.md` against the chart: the install command renders what the guide
/// then waits on, its manifests validate against the chart's CRDs and describe a 3-broker
/// cluster, and every address it connects to is the one the operator gives that Cluster.
#[test]
fn kind_quickstart_matches_what_the_chart_renders() {
    require_python_modules();
    let guide = std::fs::read_to_string(repo_root().join("deploy/kind-quickstart.md"))
        .expect("deploy/kind-quickstart.md is readable");
    let install = guide
        .lines()
        .find(|l| l.starts_with("helm install "))
        .expect("the guide installs the chart with helm");
    let words: Vec<&str> = install.split_whitespace().collect();
    assert_eq!(words.get(2), Some(&RELEASE), "release name in `{install}`");
    assert_eq!(
        words.get(3),
        Some(&"charts/strom"),
        "chart path in `{install}`"
    );
    let flag = |name: &str| {
        words
            .iter()
            .position(|w| *w == name)
            .and_then(|i| words.get(i + 1))
            .copied()
    };
    assert_eq!(
        flag("--namespace"),
        Some(NAMESPACE),
        "namespace in `{install}`"
    );
    assert!(
        !words
            .iter()
            .any(|w| *w == "--set" || *w == "--values" || *w == "-f"),
        "the guide installs with the chart's defaults, as this test renders it: `{install}`"
    );
    let objects = documents(&render(&[]));

    let rollout = guide
        .lines()
        .find(|l| l.contains("rollout status deployment/"))
        .expect("the guide waits for the operator");
    let rollout_words: Vec<&str> = rollout.split_whitespace().collect();
    let rollout_namespace = rollout_words
        .iter()
        .position(|w| *w == "-n")
        .and_then(|i| rollout_words.get(i + 1))
        .expect("the rollout names its namespace");
    let deployment_name = rollout_words
        .iter()
        .find_map(|w| w.strip_prefix("deployment/"))
        .expect("the rollout names the Deployment");
    let deployment = find(&objects, "Deployment", deployment_name);
    assert_eq!(namespace(deployment), *rollout_namespace);

    let crds = all_of(&objects, "CustomResourceDefinition");
    let manifests: Vec<Value> = fenced_blocks(&guide, "yaml")
        .iter()
        .flat_map(|block| documents(block))
        .collect();
    for manifest in &manifests {
        validate_custom_resource(manifest, &crds);
    }
    let cluster = manifests
        .iter()
        .find(|m| kind(m) == "Cluster")
        .expect("the guide creates a Cluster");
    assert_eq!(cluster["spec"]["replicas"], 3, "a 3-broker cluster");
    assert_eq!(cluster["spec"]["controller"]["voters"], 3);
    let cluster_name = name(cluster);
    let cluster_namespace = namespace(cluster);
    for topic in manifests.iter().filter(|m| kind(m) == "Topic") {
        assert_eq!(topic["spec"]["clusterRef"]["name"], cluster_name);
        assert_eq!(namespace(topic), cluster_namespace);
        assert!(
            topic["spec"]["replicationFactor"].as_i64() <= cluster["spec"]["replicas"].as_i64(),
            "{topic}"
        );
    }

    // What the operator names the Cluster's objects (status.bootstrapServers, the pods and
    // their advertised DNS names): every address the guide uses must be one of them.
    let port = cluster["spec"]["listeners"]["port"]
        .as_i64()
        .unwrap_or(9092);
    let bootstrap = format!("{cluster_name}-bootstrap.{cluster_namespace}.svc:{port}");
    let mut addresses = 0;
    for word in guide.split(|c: char| c.is_whitespace() || "`'\"()".contains(c)) {
        if word.contains("-bootstrap.") {
            assert_eq!(word, bootstrap, "bootstrap address in the guide");
            addresses += 1;
        }
        if let Some(pod) = word.strip_prefix(&format!("{cluster_name}-broker-")) {
            let ordinal: String = pod.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(id) = ordinal.parse::<i64>() {
                assert!(
                    id < 3,
                    "the guide names broker pod {word} of a 3-broker cluster"
                );
                let rest = &pod[ordinal.len()..];
                assert!(
                    rest.is_empty()
                        || rest == format!(".{cluster_name}-brokers.{cluster_namespace}.svc")
                        || rest
                            == format!(".{cluster_name}-brokers.{cluster_namespace}.svc:{port}"),
                    "pod address {word} in the guide"
                );
            }
        }
    }
    assert!(addresses > 0, "the guide connects clients to {bootstrap}");
}
