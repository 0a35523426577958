//! Shared harness for the end-to-end tests and benchmarks: builds and starts the real binaries
//! (`nautilus-proxy dev`, which runs `nautilus-enclave` as its child) on loopback, runs the real
//! `kubectl`, and speaks HTTPS to the proxy with a small hyper + rustls client.

pub mod capture;
pub mod client;
pub mod kubemark;
pub mod kwok;
pub mod linearizability;
pub mod logged;
pub mod peers;
pub mod pki;
pub mod procfs;
pub mod scrape;
pub mod simulator;
pub mod tamper;
pub mod watch_check;
pub mod workload;

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Path of a workspace binary, built once per test process with the profile of the tests
/// (not built when `NAUTILUS_PREBUILT` is set: the caller built them already).
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let target = target_dir();
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    BUILT.get_or_init(|| {
        // Benchmarks run from a release build of the binaries alone (`cargo build --release
        // --workspace --bins`) say so, instead of building every test target in release too.
        if std::env::var_os("NAUTILUS_PREBUILT").is_some() {
            return;
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        // The same package and target set as `cargo test --workspace` (the README's test
        // command), so the binaries are built with the same unified features and this is a
        // no-op there; `-p nautilus-proxy -p nautilus-enclave` alone would resolve features
        // differently and rebuild the whole dependency tree (tonic, sui-rpc, ...) a second time.
        cmd.args(["build", "--quiet", "--workspace", "--tests", "--bins"]);
        if profile == "release" {
            cmd.arg("--release");
        }
        cmd.current_dir(workspace_dir());
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "cargo build of the binaries failed");
    });
    target.join(profile).join(name)
}

/// The workspace root (parent of this package).
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_dir().join("target"), PathBuf::from)
}

/// Runs an external client program (a real client library's own build, e.g. `tests/clientgo`,
/// `tests/kubers`) against a fresh dev cluster, its kubeconfig as the only argument: it must
/// exit 0 and print `done_marker` on its last step. `name` labels the messages.
pub fn run_client_program(name: &str, program: &Path, done_marker: &str) {
    let cluster = DevCluster::start();
    let start = Instant::now();
    let out = Command::new(program)
        .arg(&cluster.kubeconfig)
        .output()
        .unwrap_or_else(|e| panic!("run the {name} program: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the {name} program failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}\ncluster logs:\n{}",
        out.status,
        cluster.logs()
    );
    assert!(
        stdout.contains(done_marker),
        "the {name} program did not finish:\n{stdout}\n{stderr}"
    );
    println!(
        "{name}: ran in {:.1}s:\n{stdout}",
        start.elapsed().as_secs_f64()
    );
}

/// A free TCP port (bound on every address and released), below the kernel's ephemeral range:
/// a port from that range (what binding port 0 gives) can be taken by any outgoing connection
/// between this check and the server's bind, which ten kubelets starting at once did. Each port
/// is handed out once per process.
pub fn free_port() -> u16 {
    static HANDED: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    let (low, high) = (10_000u32, ephemeral_low.min(65_535));
    if high > low + 1_000 {
        let span = high - low;
        // Start somewhere of this process's own, so concurrent test processes seldom meet.
        let start = std::process::id().wrapping_mul(2_654_435_761) % span;
        let mut handed = HANDED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for step in 0..span {
            let port = (low + (start + step.wrapping_mul(7_919)) % span) as u16;
            if !handed.contains(&port) && std::net::TcpListener::bind(("0.0.0.0", port)).is_ok() {
                handed.push(port);
                return port;
            }
        }
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

/// One `nautilus-proxy dev` process (with its enclave child) on a private port and data dir.
pub struct DevCluster {
    child: Child,
    /// The data directory (`--data-dir`).
    pub dir: tempfile::TempDir,
    /// The proxy's port on 127.0.0.1.
    pub port: u16,
    /// The kubeconfig `dev` wrote.
    pub kubeconfig: PathBuf,
    /// The admin bearer token from the kubeconfig.
    pub token: String,
    /// The dev CA certificate (PEM) from the kubeconfig.
    pub ca_pem: Vec<u8>,
    /// Everything the process printed (stdout and stderr), for assertions on logs.
    pub output: Arc<Mutex<Vec<String>>>,
    cli: Kubectl,
}

impl DevCluster {
    /// Starts `dev` with default options.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts `dev`, passing each of `enclave_args` to the enclave with `--enclave-arg`.
    pub fn start_with(enclave_args: &[&str]) -> Self {
        Self::start_opts(&[], enclave_args)
    }

    /// Starts `dev` with `proxy_args` (e.g. `--enclave-tls`) and each of `enclave_args` passed
    /// to the enclave with `--enclave-arg`.
    pub fn start_opts(proxy_args: &[&str], enclave_args: &[&str]) -> Self {
        Self::start_in(
            tempfile::tempdir().expect("temp dir"),
            proxy_args,
            enclave_args,
        )
    }

    /// Starts `dev` on the data directory `dir` (one an earlier cluster left with
    /// [`DevCluster::stop`]: its state comes back), on a new port.
    pub fn start_in(dir: tempfile::TempDir, proxy_args: &[&str], enclave_args: &[&str]) -> Self {
        let port = free_port();
        let mut cmd = Command::new(binary("nautilus-proxy"));
        cmd.arg("dev")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(proxy_args);
        for arg in enclave_args {
            cmd.arg(format!("--enclave-arg={arg}"));
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start nautilus-proxy dev");
        let output = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    output.lock().expect("log lock").push(line);
                }
            });
        }
        let kubeconfig = dir.path().join("kubeconfig");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let printed = output
                .lock()
                .expect("log lock")
                .iter()
                .any(|l| l.contains("kubeconfig"));
            if kubeconfig.exists()
                && printed
                && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "nautilus-proxy dev exited early ({status}):\n{}",
                    output.lock().expect("log lock").join("\n")
                );
            }
            assert!(
                Instant::now() < deadline,
                "dev did not come up:\n{}",
                output.lock().expect("log lock").join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let (token, ca_pem) = read_kubeconfig(&kubeconfig);
        let cluster = Self {
            cli: Kubectl::new(&kubeconfig),
            child,
            dir,
            port,
            kubeconfig,
            token,
            ca_pem,
            output,
        };
        cluster.wait_ready();
        cluster
    }

    /// Waits until `/readyz` answers 200 through the proxy.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.request("GET", "/readyz", None, &[]).map(|r| r.status) == Ok(200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("never ready:\n{}", self.logs());
    }

    /// Everything the processes printed so far.
    pub fn logs(&self) -> String {
        self.output.lock().expect("log lock").join("\n")
    }

    /// Runs the real `kubectl` with this cluster's kubeconfig and a private cache dir.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.cli.run(args, None)
    }

    /// Runs kubectl with `input` on stdin.
    pub fn kubectl_with_input(&self, args: &[&str], input: Option<&str>) -> Output {
        self.cli.run(args, input)
    }

    /// A kubectl command ready to spawn (for watches that run in the background).
    pub fn kubectl_command(&self, args: &[&str]) -> Command {
        self.cli.command(args)
    }

    /// Runs kubectl and returns stdout, failing the test with stderr when it fails.
    #[track_caller]
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        self.cli.ok(args)
    }

    /// Runs kubectl expecting failure; returns stderr.
    #[track_caller]
    pub fn kubectl_err(&self, args: &[&str]) -> String {
        self.cli.err(args)
    }

    /// One HTTPS request to the proxy with the admin token; `None` body sends none.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> Result<client::Reply, String> {
        let mut all: Vec<(String, String)> =
            vec![("authorization".into(), format!("Bearer {}", self.token))];
        all.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        client::blocking_request(self.port, &self.ca_pem, method, path, body, &all)
    }

    /// A request with no credentials at all.
    pub fn anonymous(&self, method: &str, path: &str) -> Result<client::Reply, String> {
        client::blocking_request(self.port, &self.ca_pem, method, path, None, &[])
    }

    /// Pid of the enclave child process.
    pub fn enclave_pid(&self) -> Option<u32> {
        let out = Command::new("pgrep")
            .arg("-f")
            .arg(format!("__enclave.*{}", self.dir.path().display()))
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// Kills the enclave with SIGKILL, as a crash would, and waits until `dev` has restarted
    /// it and it answers `/readyz`; the restarted enclave recovers from the sealed log. In
    /// enclave TLS mode the new enclave has a new TLS key, which `dev` pins again in the
    /// kubeconfig: the CA taken from it here follows.
    pub fn kill_enclave(&mut self) {
        let old = self.enclave_pid().expect("the enclave runs");
        signal(old, libc::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.enclave_pid().is_none_or(|pid| pid == old) {
            assert!(Instant::now() < deadline, "the enclave did not come back");
            std::thread::sleep(Duration::from_millis(100));
        }
        loop {
            (self.token, self.ca_pem) = read_kubeconfig(&self.kubeconfig);
            if self.request("GET", "/readyz", None, &[]).map(|r| r.status) == Ok(200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "never ready after the restart:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The folder of replica `slot` of a `dev --replicas N` cluster: `DATA/replica-<slot>/`,
    /// with its `enclave.sock` and the `enclave.pid` of its current process.
    pub fn replica_dir(&self, slot: usize) -> PathBuf {
        self.dir.path().join(format!("replica-{slot}"))
    }

    /// The pid `dev` wrote for replica `slot`'s current process.
    pub fn replica_pid(&self, slot: usize) -> Option<u32> {
        std::fs::read_to_string(self.replica_dir(slot).join("enclave.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// One HTTP/1.1 request on replica `slot`'s own socket, as the proxy would send it (its
    /// preamble line first), with the admin token: the status and the (de-chunked) body. A
    /// replica that does not answer within 2 s is an error (a stopped process still accepts).
    pub fn replica_request(
        &self,
        slot: usize,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<(u16, String), String> {
        self.replica_request_within(slot, method, path, body, Duration::from_secs(2))
    }

    /// [`DevCluster::replica_request`], answered within `timeout`.
    pub fn replica_request_within(
        &self,
        slot: usize,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<(u16, String), String> {
        use std::io::Read as _;
        let socket = self.replica_dir(slot).join("enclave.sock");
        let mut stream =
            std::os::unix::net::UnixStream::connect(&socket).map_err(|e| e.to_string())?;
        for set in [
            std::os::unix::net::UnixStream::set_read_timeout,
            std::os::unix::net::UnixStream::set_write_timeout,
        ] {
            set(&stream, Some(timeout)).map_err(|e| e.to_string())?;
        }
        let body = body.unwrap_or_default();
        let head = format!(
            "{}{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            nautilus_wire::preamble::line("", &[]),
            self.token,
            body.len(),
        );
        stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(body))
            .map_err(|e| e.to_string())?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&answer);
        let (head, rest) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("no HTTP answer: {text:?}"))?;
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("no status: {head}"))?;
        let chunked = head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked");
        Ok((
            status,
            if chunked {
                dechunk(rest)
            } else {
                rest.to_string()
            },
        ))
    }

    /// Replica `slot`'s `/readyz?verbose` line about itself (`[+]replica ok: slot=.. id=..
    /// role=.. term=.. applied=..`, or `[-]replica failed: ..` while it has no leader).
    pub fn replica_line(&self, slot: usize) -> Option<String> {
        let (_, body) = self
            .replica_request(slot, "GET", "/readyz?verbose", None)
            .ok()?;
        body.lines()
            .find(|l| l.starts_with("[+]replica") || l.starts_with("[-]replica"))
            .map(str::to_string)
    }

    /// Sends one command to `dev --replica-faults`'s control socket (`cut I J`, `delay I J MS`,
    /// `reset I J`, `heal I J`, `heal`, `isolate K`), failing the test unless it answers `ok`.
    #[track_caller]
    pub fn replica_fault(&self, command: &str) {
        use std::io::Read as _;
        let socket = self.dir.path().join("replica-faults.sock");
        let answer = std::os::unix::net::UnixStream::connect(&socket).and_then(|mut stream| {
            stream.set_read_timeout(Some(Duration::from_secs(5)))?;
            stream.write_all(format!("{command}\n").as_bytes())?;
            let mut answer = String::new();
            stream.read_to_string(&mut answer)?;
            Ok(answer)
        });
        match answer {
            Ok(answer) if answer == "ok\n" => {}
            Ok(answer) => panic!("replica fault {command:?}: {}", answer.trim_end()),
            Err(e) => panic!("replica fault {command:?}: {}: {e}", socket.display()),
        }
    }

    /// Pid of the proxy process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops `dev` (SIGTERM, as an operator would) and hands back its data directory, for
    /// [`DevCluster::start_in`].
    pub fn stop(mut self) -> tempfile::TempDir {
        let placeholder = tempfile::tempdir().expect("temp dir");
        std::mem::replace(&mut self.dir, placeholder)
    }
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        // SAFETY-free: kill(2) through libc with our own child's pid.
        let pid = libc::pid_t::try_from(self.child.id()).unwrap_or(0);
        if pid > 0 {
            #[allow(unsafe_code)]
            // SAFETY: sending a signal to a pid we spawned has no memory-safety implications.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A chunked HTTP/1.1 body's data.
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        let Some(data) = after.get(..size).filter(|_| size > 0) else {
            break;
        };
        out.push_str(data);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

/// The admin token and the CA (PEM) of the kubeconfig `dev` wrote.
fn read_kubeconfig(path: &Path) -> (String, Vec<u8>) {
    let text = std::fs::read_to_string(path).expect("read kubeconfig");
    let field = |name: &str| {
        text.lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix(name)
                    .map(|v| v.trim().trim_matches('"').to_string())
            })
            .unwrap_or_else(|| panic!("kubeconfig has no {name}:\n{text}"))
    };
    use base64::Engine as _;
    let ca_pem = base64::engine::general_purpose::STANDARD
        .decode(field("certificate-authority-data:"))
        .expect("CA data is base64");
    (field("token:"), ca_pem)
}

/// The real `kubectl` bound to one kubeconfig, with a private cache dir so that discovery cached
/// for one server is never reused for another.
pub struct Kubectl {
    kubeconfig: PathBuf,
    cache_dir: tempfile::TempDir,
}

impl Kubectl {
    /// A kubectl for `kubeconfig`.
    pub fn new(kubeconfig: &Path) -> Self {
        Self {
            kubeconfig: kubeconfig.to_path_buf(),
            cache_dir: tempfile::tempdir().expect("kubectl cache dir"),
        }
    }

    /// A command ready to spawn (for watches that run in the background).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.cache_dir.path())
            .args(args);
        cmd
    }

    /// Runs kubectl with `input` on stdin (none if `None`).
    pub fn run(&self, args: &[&str], input: Option<&str>) -> Output {
        let mut cmd = self.command(args);
        cmd.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("kubectl on PATH");
        if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin
                .write_all(input.as_bytes())
                .expect("write kubectl stdin");
        }
        child.wait_with_output().expect("kubectl output")
    }

    /// Runs kubectl and returns stdout, failing the test with stderr when it fails.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, None);
        assert!(
            out.status.success(),
            "kubectl {} failed ({}):\nstdout: {}\nstderr: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("kubectl prints UTF-8")
    }

    /// Runs kubectl expecting failure; returns stderr.
    #[track_caller]
    pub fn err(&self, args: &[&str]) -> String {
        let out = self.run(args, None);
        assert!(
            !out.status.success(),
            "kubectl {} should fail but printed:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).expect("kubectl prints UTF-8")
    }
}

/// Sends SIGTERM/SIGKILL to `pid`.
pub fn signal(pid: u32, sig: i32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        #[allow(unsafe_code)]
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// Runs `promtool check metrics` (Debian package `prometheus`) on `text`, failing the test with
/// its complaints.
#[track_caller]
pub fn promtool_check(what: &str, text: &str) {
    use std::io::Write as _;
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!(
            "promtool is missing: install it with `apt-get update && apt-get install -y \
             prometheus` (Debian package `prometheus`) ({e})"
        ),
    };
    child
        .stdin
        .take()
        .expect("promtool stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let out = child.wait_with_output().expect("promtool output");
    assert!(
        out.status.success(),
        "promtool check metrics rejects the {what} metrics ({}):\n{}{}\n--- metrics ---\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs kubectl with `token` and expects it refused with kube's Forbidden line: `Error from
/// server (Forbidden): ` followed by `message`.
#[track_caller]
pub fn kubectl_forbidden(
    c: &DevCluster,
    token: &str,
    args: &[&str],
    input: Option<&str>,
    message: &str,
) {
    let mut all = vec!["--token", token];
    all.extend_from_slice(args);
    let out = c.kubectl_with_input(&all, input);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "kubectl {} succeeded: {} {stderr}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains(&format!("Error from server (Forbidden): {message}")),
        "kubectl {}: {stderr}",
        args.join(" ")
    );
}
