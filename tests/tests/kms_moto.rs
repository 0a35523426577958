//! The enclave's KMS client against `moto` (PyPI), a real implementation of the AWS KMS API
//! run locally with TLS: `dev --kms-endpoint` points the enclave at it through the proxy's
//! relay, so the request shapes (`GenerateDataKey` with the encryption context on the first
//! start, `Decrypt` of the stored `CiphertextBlob` on restarts), SigV4 headers and answers are
//! those of the real service. moto ignores `Recipient` and answers `Plaintext`, which the
//! enclave accepts only with the test flag `--kms-accept-plaintext`; the `Recipient` path is
//! tested against dev's simulated KMS (`durable_log.rs`, `durable_cluster.rs`).

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nautilus_tests::{DevCluster, free_port, workspace_dir};

/// moto's server, killed on drop.
struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `moto_server` on the PATH or in the test tools' virtualenv.
fn moto_server() -> String {
    let venv = workspace_dir().join("target/tools/venv/bin/moto_server");
    if venv.exists() {
        return venv.display().to_string();
    }
    "moto_server".to_string()
}

fn start_moto(dir: &Path) -> Moto {
    let pki = nautilus_tests::pki::pki();
    std::fs::write(dir.join("moto.crt"), &pki.cert_pem).expect("cert");
    std::fs::write(dir.join("moto.key"), &pki.key_pem).expect("key");
    std::fs::write(dir.join("moto-ca.crt"), &pki.ca_pem).expect("ca");
    let port = free_port();
    let child = Command::new(moto_server())
        .args(["-H", "127.0.0.1", "-p", &port.to_string(), "-c"])
        .arg(dir.join("moto.crt"))
        .arg("-k")
        .arg(dir.join("moto.key"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server (pip install 'moto[server]'; tests/install-deps.sh does)");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto_server did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    Moto { child, port }
}

/// Creates a symmetric key in moto with boto3 (moto's own client library); its id.
fn create_key(moto: &Moto, ca: &Path) -> String {
    let script = format!(
        "import boto3\n\
         kms = boto3.client('kms', endpoint_url='https://127.0.0.1:{}', region_name='us-east-1',\n\
             aws_access_key_id='test', aws_secret_access_key='test', verify='{}')\n\
         print(kms.create_key(Description='nautilus cluster data key')['KeyMetadata']['KeyId'])\n",
        moto.port,
        ca.display()
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "create_key: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn dev_on(dir: &Path, moto: &Moto, key_id: &str) -> DevCluster {
    let endpoint = format!("--kms-endpoint=127.0.0.1:{}", moto.port);
    let ca = format!("--kms-ca-file={}", dir.join("moto-ca.crt").display());
    let key = format!("--kms-key-id={key_id}");
    DevCluster::start_opts(&[&endpoint, &ca, &key], &["--kms-accept-plaintext"])
}

#[test]
fn the_cluster_data_key_comes_from_moto_kms_and_survives_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let moto = start_moto(dir.path());
    let key_id = create_key(&moto, &dir.path().join("moto-ca.crt"));

    // First start: GenerateDataKey; the host keeps only KMS's CiphertextBlob.
    let mut c = dev_on(dir.path(), &moto, &key_id);
    assert!(c.logs().contains("generated=true"), "{}", c.logs());
    assert!(
        !c.logs().contains("SIMULATED KMS"),
        "dev started its simulated KMS anyway"
    );
    c.kubectl_ok(&["create", "configmap", "kept", "--from-literal=k=v"]);
    let uid = c.kubectl_ok(&["get", "configmap", "kept", "-o", "jsonpath={.metadata.uid}"]);
    assert!(
        c.dir.path().join("storage/blobs/cluster-key").exists(),
        "no CiphertextBlob on the host"
    );

    // The enclave killed and restarted by dev: Decrypt of the stored blob gives the same key,
    // so the sealed log opens and the ConfigMap is back.
    c.kill_enclave();
    assert!(c.logs().contains("generated=false"), "{}", c.logs());
    let again = c.kubectl_ok(&["get", "configmap", "kept", "-o", "jsonpath={.metadata.uid}"]);
    assert_eq!(again, uid);
    drop(c);

    // A key KMS does not have: the enclave cannot get its data key and does not start.
    let missing = "11111111-2222-3333-4444-555555555555";
    let endpoint = format!("--kms-endpoint=127.0.0.1:{}", moto.port);
    let ca = format!("--kms-ca-file={}", dir.path().join("moto-ca.crt").display());
    let key = format!("--kms-key-id={missing}");
    let data = format!("--data-dir={}", dir.path().join("other").display());
    let listen = format!("--listen=127.0.0.1:{}", free_port());
    let out = Command::new(nautilus_tests::binary("nautilus-proxy"))
        .args([
            "dev",
            "--exit-with-parent",
            &listen,
            &endpoint,
            &ca,
            &key,
            &data,
            "--enclave-arg=--kms-accept-plaintext",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run dev");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "dev started without a data key:\n{text}"
    );
    assert!(
        text.contains("NotFoundException") && text.contains(missing),
        "{text}"
    );
}
