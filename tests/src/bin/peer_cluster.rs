//! A reference Kubernetes control plane from the real peers (etcd on tmpfs, kube-apiserver,
//! kube-controller-manager, kube-scheduler; no nodes), up until SIGTERM or Ctrl-C: what
//! `tests/peers/conformance.sh --against kube` runs the e2e suite on, to check the harness.
//!
//! `peer_cluster --kubeconfig PATH` writes the admin kubeconfig to PATH, then prints `ready`.

use std::io::Read as _;
use std::path::PathBuf;

use nautilus_tests::peers::{self, Etcd, KubeApiServer, KubeControllerManager, KubeScheduler};

fn main() {
    if let Err(e) = run() {
        eprintln!("peer_cluster: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let kubeconfig = match (args.next().as_deref(), args.next()) {
        (Some("--kubeconfig"), Some(path)) => PathBuf::from(path),
        _ => return Err("usage: peer_cluster --kubeconfig PATH".into()),
    };
    let mut seed = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut seed)?;
    let token = hex::encode(seed);

    let data = peers::tmpfs_dir()?;
    let etcd = Etcd::start(data.path())?;
    let api = KubeApiServer::start(&etcd, &token)?;
    let controllers = KubeControllerManager::start(&api)?;
    let scheduler = KubeScheduler::start(&api.kubeconfig)?;
    std::fs::copy(&api.kubeconfig, &kubeconfig)?;
    println!("ready: {} (kubeconfig {})", api.url, kubeconfig.display());

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok::<_, std::io::Error>(())
    })?;
    // Stopped in the reverse order of their start, the store last.
    drop(scheduler);
    drop(controllers);
    drop(api);
    drop(etcd);
    Ok(())
}
