//! The sealed durable log end to end (issue 16), behind `nautilus-proxy dev --durable-log`
//! (off by default): the cluster data key comes from dev's SIMULATED KMS through the relay
//! (attestation document, `Recipient`, CMS envelope), records go through the storage channel
//! to the proxy's segment files, and the enclave's hidden test record stream
//! (`--durable-test-listen`) appends them until core's change records are routed in
//! (issue 15). Processes are killed with SIGKILL, files are changed on disk, and a restart must
//! find every acknowledged record, or refuse to start (exit code 3) naming file and position.

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nautilus_tests::{binary, free_port};

/// One `nautilus-proxy dev --durable-log` run on `data` (kept across runs).
struct Dev {
    child: Child,
    data: PathBuf,
    log: PathBuf,
    port: u16,
}

impl Dev {
    fn start(data: &Path, logs: &Path, run: u32, extra: &[&str]) -> Self {
        let log = logs.join(format!("dev-{run}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let port = free_port();
        let mut cmd = Command::new(binary("nautilus-proxy"));
        cmd.arg("dev")
            .arg("--exit-with-parent")
            .arg("--durable-log")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data)
            .arg(format!(
                "--enclave-arg=--durable-test-listen={}",
                data.join("durable-test.sock").display()
            ))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file);
        let child = cmd.spawn().expect("start nautilus-proxy dev");
        Self {
            child,
            data: data.to_path_buf(),
            log,
            port,
        }
    }

    /// `GET /readyz?verbose` through the proxy, with the kubeconfig's CA and admin token.
    fn readyz_verbose(&self) -> String {
        use base64::Engine as _;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // Read each time: dev rewrites the kubeconfig (new CA, new token) once its enclave
            // is up, which may be after the test stream answers.
            let text = std::fs::read_to_string(self.data.join("kubeconfig")).unwrap_or_default();
            let field = |name: &str| {
                text.lines()
                    .find_map(|l| {
                        l.trim()
                            .strip_prefix(name)
                            .map(|v| v.trim().trim_matches('"').to_string())
                    })
                    .unwrap_or_default()
            };
            let ca = base64::engine::general_purpose::STANDARD
                .decode(field("certificate-authority-data:"))
                .unwrap_or_default();
            let headers = [(
                "authorization".to_string(),
                format!("Bearer {}", field("token:")),
            )];
            match nautilus_tests::client::blocking_request(
                self.port,
                &ca,
                "GET",
                "/readyz?verbose",
                None,
                &headers,
            ) {
                Ok(reply) if reply.status == 200 => {
                    return String::from_utf8_lossy(&reply.body).into_owned();
                }
                other => assert!(
                    Instant::now() < deadline,
                    "never ready: {other:?}\n{}",
                    self.output()
                ),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn socket(&self) -> PathBuf {
        self.data.join("durable-test.sock")
    }

    /// Waits until the test record stream answers; returns `/recovered`.
    fn wait_recovered(&mut self) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok((200, body)) = http(&self.socket(), "GET", "/recovered", b"") {
                return serde_json::from_str(&body).expect("recovered is JSON");
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("dev exited early ({status}):\n{}", self.output());
            }
            assert!(
                Instant::now() < deadline,
                "the durable log never opened:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for dev to exit on its own (the enclave refused to start).
    fn wait_exit(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return self.output();
            }
            assert!(
                Instant::now() < deadline,
                "dev kept running:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILLs the enclave, then the proxy: nothing is flushed or stopped in order.
    fn kill_9(mut self) {
        let out = Command::new("pgrep")
            .arg("-f")
            .arg(format!("__enclave.*{}", self.data.display()))
            .output()
            .expect("pgrep");
        for pid in String::from_utf8_lossy(&out.stdout).lines() {
            if let Ok(pid) = pid.trim().parse::<u32>() {
                nautilus_tests::signal(pid, 9);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The enclave is gone before the next run binds the same sockets.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Command::new("pgrep")
            .arg("-f")
            .arg(format!("__enclave.*{}", self.data.display()))
            .output()
            .is_ok_and(|o| !o.stdout.is_empty())
        {
            assert!(Instant::now() < deadline, "the enclave outlived kill -9");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A failed assertion must not leave a cluster running (its enclave follows the proxy).
impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request over the Unix socket: `(status, body)`.
fn http(socket: &Path, method: &str, path: &str, body: &[u8]) -> Result<(u16, String), String> {
    let mut stream = UnixStream::connect(socket).map_err(|e| e.to_string())?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: durable\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .and_then(|()| stream.write_all(body))
    .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| e.to_string())?;
    let status = answer
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not HTTP: {answer:?}"))?;
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

fn append(dev: &Dev, revision: u64, record: &str) -> u64 {
    let (status, body) = http(
        &dev.socket(),
        "POST",
        &format!("/append?revision={revision}"),
        record.as_bytes(),
    )
    .expect("append");
    assert_eq!(status, 200, "append answered {body}");
    let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    answer["position"].as_u64().expect("position")
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn records(recovered: &serde_json::Value) -> Vec<(u64, u64, String)> {
    recovered["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| {
            (
                r["position"].as_u64().expect("position"),
                r["revision"].as_u64().expect("revision"),
                r["record"].as_str().expect("record").to_string(),
            )
        })
        .collect()
}

#[test]
fn acknowledged_records_survive_kill_9_and_tampering_stops_the_start() {
    let data = tempfile::tempdir().expect("temp dir");
    let logs = tempfile::tempdir().expect("temp dir");

    // First boot: KMS generates the data key; concurrent appends (group commit) are acked.
    let mut dev = Dev::start(data.path(), logs.path(), 1, &[]);
    let recovered = dev.wait_recovered();
    assert_eq!(records(&recovered), vec![], "a new cluster starts empty");
    assert!(dev.output().contains("SIMULATED KMS"), "{}", dev.output());
    let acked: Vec<(u64, u64, String)> = std::thread::scope(|s| {
        let writers: Vec<_> = (0..8u64)
            .map(|w| {
                let dev = &dev;
                s.spawn(move || {
                    (0..10u64)
                        .map(|i| {
                            let revision = w * 100 + i;
                            let record = format!("SECRET-MARKER-{w}-{i}");
                            (append(dev, revision, &record), revision, record)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        writers
            .into_iter()
            .flat_map(|w| w.join().expect("writer"))
            .collect()
    });
    let mut positions: Vec<u64> = acked.iter().map(|a| a.0).collect();
    positions.sort_unstable();
    assert_eq!(positions, (1..=80).collect::<Vec<_>>());
    dev.kill_9();

    // Nothing reached the host in clear: not the records, not the data key's plaintext.
    for file in files(data.path()) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(
            !bytes.windows(13).any(|w| w == b"SECRET-MARKER"),
            "{} holds a record in clear",
            file.display()
        );
    }
    // The host keeps KMS's CiphertextBlob, not the key.
    assert!(data.path().join("storage/blobs/cluster-key").exists());

    // Second boot: KMS decrypts the stored blob; every acknowledged record comes back.
    let mut dev = Dev::start(data.path(), logs.path(), 2, &[]);
    let mut found = records(&dev.wait_recovered());
    found.sort();
    let mut want = acked.clone();
    want.sort();
    assert_eq!(found, want);
    assert_eq!(append(&dev, 1000, "after-restart"), 81);
    let health = dev.readyz_verbose();
    assert!(
        health.contains("[+]durable-log ok: durable position 81")
            && health.contains("freshness: unverified"),
        "{health}"
    );
    dev.kill_9();

    // A flipped byte in the last record's tag: the enclave refuses to start, exit code 3,
    // naming the segment file and the position.
    let segment = files(&data.path().join("storage/wal"))
        .into_iter()
        .max()
        .expect("a segment file");
    let mut bytes = std::fs::read(&segment).expect("segment");
    let at = bytes.len() - 3;
    bytes[at] ^= 0x40;
    std::fs::write(&segment, &bytes).expect("tamper");
    let mut dev = Dev::start(data.path(), logs.path(), 3, &[]);
    let output = dev.wait_exit();
    assert!(output.contains("exit code 3"), "{output}");
    assert!(
        output.contains("does not verify")
            && output.contains("wal/")
            && output.contains("at position 81"),
        "{output}"
    );

    // --recover-to-last-valid cuts the log after record 80 and says what it dropped.
    let mut dev = Dev::start(
        data.path(),
        logs.path(),
        4,
        &["--enclave-arg=--recover-to-last-valid"],
    );
    let recovered = dev.wait_recovered();
    assert_eq!(records(&recovered).len(), 80);
    let dropped = recovered["dropped"].as_str().expect("dropped is said");
    assert!(dropped.contains("81"), "{dropped}");
    assert_eq!(append(&dev, 1001, "after-recovery"), 81);
    dev.kill_9();
}

#[test]
fn a_key_policy_that_wants_other_pcrs_keeps_the_enclave_from_its_data_key() {
    let data = tempfile::tempdir().expect("temp dir");
    let logs = tempfile::tempdir().expect("temp dir");
    let mut dev = Dev::start(
        data.path(),
        logs.path(),
        1,
        &[&format!("--simulated-kms-pcr=0={}", "ab".repeat(48))],
    );
    let output = dev.wait_exit();
    assert!(output.contains("AccessDeniedException"), "{output}");
    assert!(
        output.contains("the enclave exited during start-up"),
        "{output}"
    );
}
