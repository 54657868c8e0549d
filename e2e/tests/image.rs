//! The container images, built and run as a user would: `e2e/scripts/build-images.sh` compiles
//! static musl binaries and assembles the Dockerfile's `broker-prebuilt` and `operator-prebuilt`
//! targets with podman (no base image is pulled); the broker image then serves Kafka clients
//! through a port published on 127.0.0.1, and the operator image accepts the flags the Helm chart
//! passes it.
//!
//! Podman runs with `--runtime runc` and explicit ulimits, which these machines need (see the
//! tooling notes); tools come from `e2e/install-tools.sh`. The musl release build takes minutes:
//! it has its own target dir (`target/musl`) so it never disturbs the debug builds.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use strom_e2e::{repo_root, tool, wait_until};

const BUILD_SCRIPT: &str = "e2e/scripts/build-images.sh";
const TOPIC: &str = "image-e2e";
const RECORDS: usize = 200;
/// A broker in a fresh container is up in well under a second; CI machines are shared.
const READY_DEADLINE: Duration = Duration::from_secs(60);
const CONSUME_DEADLINE: Duration = Duration::from_secs(60);

/// Flags every `podman run` needs on these machines.
const PODMAN_RUN: &[&str] = &[
    "run",
    "--runtime",
    "runc",
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
];

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn podman(args: &[&str]) -> Output {
    Command::new("podman")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run podman: {e}; run e2e/install-tools.sh"))
}

fn podman_ok(args: &[&str]) -> String {
    let out = podman(args);
    assert!(
        out.status.success(),
        "podman {} failed:\n{}{}",
        args.join(" "),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout).trim().to_string()
}

/// A container removed (with its anonymous volumes) when the test ends, pass or fail.
struct Container {
    name: String,
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rm", "--force", "--volumes", "--time", "5", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Images removed when the test ends: each run builds its own tag.
struct Images {
    names: Vec<String>,
}

impl Drop for Images {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = Command::new("podman")
                .args(["rmi", "--force", name])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A port that was free on 127.0.0.1 a moment ago. The broker must advertise the published
/// port before it starts, so podman cannot be left to choose it.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0")
}

/// Status code of `GET path` on 127.0.0.1:port, if the server answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

fn workspace_version() -> String {
    let manifest =
        std::fs::read_to_string(repo_root().join("Cargo.toml")).expect("reading Cargo.toml");
    manifest
        .split("[workspace.package]")
        .nth(1)
        .and_then(|section| {
            section
                .lines()
                .find(|l| l.trim_start().starts_with("version"))
        })
        .and_then(|line| line.split('"').nth(1))
        .expect("Cargo.toml has [workspace.package] version")
        .to_string()
}

/// Builds both images with the build script; returns (broker image, operator image).
fn build_images(tag: &str) -> (String, String) {
    for name in ["podman", "kcat", "helm"] {
        tool(name).unwrap_or_else(|e| panic!("{e:#}"));
    }
    let started = Instant::now();
    let out = Command::new("bash")
        .arg(repo_root().join(BUILD_SCRIPT))
        .env("STROM_IMAGE_TAG", tag)
        .env("CARGO_TARGET_DIR", repo_root().join("target/musl"))
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BUILD_SCRIPT}: {e}"));
    assert!(
        out.status.success(),
        "{BUILD_SCRIPT} failed (its output is above)"
    );
    let report = text(&out.stdout);
    println!("{report}images built in {:.0?}", started.elapsed());
    let image = |component: &str| {
        report
            .lines()
            .find_map(|line| {
                let mut fields = line.split_whitespace();
                (fields.next() == Some("image")).then_some(())?;
                let name = fields.next()?;
                name.contains(&format!("/strom-{component}:"))
                    .then(|| name.to_string())
            })
            .unwrap_or_else(|| panic!("{BUILD_SCRIPT} reported no {component} image:\n{report}"))
    };
    (image("broker"), image("operator"))
}

fn assert_image_metadata(image: &str, expected_ports: &[&str]) {
    let user = podman_ok(&["image", "inspect", "--format", "{{.Config.User}}", image]);
    assert_eq!(
        user, "65532:65532",
        "{image} runs as the unprivileged uid 65532"
    );
    let version = podman_ok(&[
        "image",
        "inspect",
        "--format",
        "{{index .Config.Labels \"org.opencontainers.image.version\"}}",
        image,
    ]);
    assert_eq!(
        version,
        workspace_version(),
        "{image} is labelled with the workspace version"
    );
    let ports = podman_ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.ExposedPorts}}",
        image,
    ]);
    for port in expected_ports {
        assert!(
            ports.contains(&format!("\"{port}/tcp\"")),
            "{image} exposes {port}: {ports}"
        );
    }
    let size = podman_ok(&["image", "inspect", "--format", "{{.Size}}", image]);
    println!("image {image}: {size} bytes");
}

/// Runs kcat with `args`, feeding `input`; returns its output.
fn kcat(args: &[&str], input: &str) -> Output {
    let mut child = Command::new("kcat")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run kcat: {e}; run e2e/install-tools.sh"));
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())
        .expect("feeding kcat");
    child.wait_with_output().expect("kcat finishes")
}

#[test]
fn images_build_from_static_binaries_and_the_broker_serves_kafka_clients() {
    let tag = format!("e2e-{}", std::process::id());
    let (broker_image, operator_image) = build_images(&tag);
    let _images = Images {
        names: vec![broker_image.clone(), operator_image.clone()],
    };

    assert_image_metadata(&broker_image, &["9092", "9404"]);
    assert_image_metadata(&operator_image, &["8080"]);

    check_operator_accepts_chart_flags(&operator_image);
    check_broker_round_trip(&broker_image, &tag);
}

/// The operator image starts its binary, and every flag the chart renders (defaults and the
/// full test values) parses: clap rejects an unknown flag or bad value before it reaches the
/// trailing `--help`, which then exits 0.
fn check_operator_accepts_chart_flags(image: &str) {
    let out = podman(&[PODMAN_RUN, &["--rm", image, "--help"]].concat());
    assert!(
        out.status.success(),
        "`/strom-operator --help` in {image} failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    for values in [
        None,
        Some(repo_root().join("e2e/testdata/chart-values-full.yaml")),
    ] {
        let mut flags = chart_operator_args(values.as_deref());
        flags.push("--help".to_string());
        let flag_refs: Vec<&str> = flags.iter().map(String::as_str).collect();
        let out = podman(&[PODMAN_RUN, &["--rm", image], &flag_refs].concat());
        assert!(
            out.status.success(),
            "the operator rejects the chart's flags {flags:?}:\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

/// The operator container's args as the chart renders them.
fn chart_operator_args(values: Option<&Path>) -> Vec<String> {
    let helm = tool("helm").unwrap_or_else(|e| panic!("{e:#}"));
    let mut command = Command::new(helm);
    command
        .args(["template", "strom"])
        .arg(repo_root().join("charts/strom"))
        .args([
            "--namespace",
            "strom-system",
            "--show-only",
            "templates/030-Deployment.yaml",
        ]);
    if let Some(values) = values {
        command.arg("--values").arg(values);
    }
    let rendered = command.output().expect("running helm template");
    assert!(
        rendered.status.success(),
        "helm template: {}",
        text(&rendered.stderr)
    );
    let mut python = Command::new("python3")
        .args([
            "-c",
            "import sys, yaml\n\
             d = yaml.safe_load(sys.stdin)\n\
             print('\\n'.join(d['spec']['template']['spec']['containers'][0]['args']))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs (e2e/install-tools.sh)");
    python
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(&rendered.stdout)
        .expect("feeding python3");
    let out = python.wait_with_output().expect("python3 finishes");
    assert!(out.status.success(), "cannot read the Deployment's args");
    text(&out.stdout).lines().map(str::to_string).collect()
}

/// The broker image, run the way the operator's StatefulSet runs it (read-only root
/// filesystem, a volume at the data dir, node id from the pod name's ordinal) with its Kafka and
/// admin ports published on 127.0.0.1: readiness over HTTP, records produced and consumed back
/// with kcat (librdkafka), the partition log on the volume, and a clean exit on SIGTERM (the
/// binary is PID 1 in the container).
fn check_broker_round_trip(image: &str, tag: &str) {
    let kafka_port = free_port();
    let admin_port = free_port();
    let container = Container {
        name: format!("strom-broker-{tag}"),
    };
    let kafka_publish = format!("127.0.0.1:{kafka_port}:9092");
    let admin_publish = format!("127.0.0.1:{admin_port}:9404");
    let advertised = format!("127.0.0.1:{kafka_port}");
    podman_ok(
        &[
            PODMAN_RUN,
            &["--detach", "--name", &container.name, "--read-only"],
            &["--volume", "/var/lib/strom", "--env", "POD_NAME=strom-0"],
            &[
                "--publish",
                &kafka_publish,
                "--publish",
                &admin_publish,
                image,
            ],
            &["--data-dir", "/var/lib/strom", "--listen", "0.0.0.0:9092"],
            &["--advertised-listener", &advertised],
            &["--admin-listen", "0.0.0.0:9404", "--node-id", "ordinal"],
        ]
        .concat(),
    );
    let logs = || podman(&["logs", &container.name]);
    let started = Instant::now();
    let ready = wait_until("the broker's /readyz to answer 200", READY_DEADLINE, || {
        (http_status(admin_port, "/readyz") == Some(200)).then_some(())
    });
    if let Err(e) = ready {
        let out = logs();
        panic!(
            "{e:#}\ncontainer logs:\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    println!("broker container ready in {:.0?}", started.elapsed());
    assert_eq!(http_status(admin_port, "/healthz"), Some(200));

    let bootstrap = format!("127.0.0.1:{kafka_port}");
    let records: Vec<(String, String)> = (0..RECORDS)
        .map(|i| {
            (
                format!("key-{i:04}"),
                format!("value {i:04} through the image: {}", "x".repeat(i % 50)),
            )
        })
        .collect();
    let input: String = records.iter().map(|(k, v)| format!("{k}\t{v}\n")).collect();
    let produced = kcat(
        &[
            "-P", "-b", &bootstrap, "-t", TOPIC, "-p", "0", "-K", "\t", "-X", "acks=all",
        ],
        &input,
    );
    assert!(
        produced.status.success() && !text(&produced.stderr).contains("Delivery failed"),
        "kcat could not produce through the published port:\n{}",
        text(&produced.stderr)
    );

    let consumed = wait_until(
        "kcat to consume every produced record",
        CONSUME_DEADLINE,
        || {
            let out = kcat(
                &[
                    "-C",
                    "-b",
                    &bootstrap,
                    "-t",
                    TOPIC,
                    "-p",
                    "0",
                    "-o",
                    "beginning",
                    "-e",
                    "-q",
                    "-c",
                    &RECORDS.to_string(),
                    "-f",
                    "%o\t%k\t%s\n",
                ],
                "",
            );
            let lines: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
            (lines.len() >= RECORDS).then_some(lines)
        },
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    let expected: Vec<String> = records
        .iter()
        .enumerate()
        .map(|(offset, (k, v))| format!("{offset}\t{k}\t{v}"))
        .collect();
    assert_eq!(
        consumed, expected,
        "records come back in order, at offsets 0..{RECORDS}"
    );

    // The partition log lives on the data volume, written as uid 65532 (the image's user owns
    // the data dir, which podman carries over to the new volume as Kubernetes' fsGroup does).
    let volume = podman_ok(&[
        "inspect",
        "--format",
        "{{range .Mounts}}{{.Source}}{{end}}",
        &container.name,
    ]);
    let partition_dir = Path::new(&volume).join(format!("{TOPIC}-0"));
    let metadata = std::fs::metadata(&partition_dir).unwrap_or_else(|e| {
        panic!(
            "no partition directory {} on the data volume: {e}",
            partition_dir.display()
        )
    });
    assert_eq!(
        metadata.uid(),
        65532,
        "{} is owned by the broker's uid",
        partition_dir.display()
    );

    podman_ok(&["stop", "--time", "30", &container.name]);
    let exit_code = podman_ok(&[
        "inspect",
        "--format",
        "{{.State.ExitCode}}",
        &container.name,
    ]);
    let out = logs();
    assert_eq!(
        exit_code,
        "0",
        "the broker exits cleanly on SIGTERM as PID 1; logs:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn dockerfile_version_default_is_the_workspace_version() {
    let dockerfile =
        std::fs::read_to_string(repo_root().join("Dockerfile")).expect("reading the Dockerfile");
    let default = dockerfile
        .lines()
        .find_map(|line| line.strip_prefix("ARG VERSION="))
        .expect("the Dockerfile declares ARG VERSION=<default>");
    assert_eq!(
        default,
        workspace_version(),
        "the Dockerfile's VERSION default labels images built without --build-arg VERSION"
    );
}
