//! The proxy's Sui byte relay, end to end with `nautilus-proxy dev --sui-node`: a target off
//! the allowlist is refused and logged, and what the relay carries to the full node is TLS
//! (records only, no gRPC path, event type or package id in the clear) while the enclave still
//! reads the stake through it.

// Included by path until tests/src/lib.rs exports it (`pub mod sui_fixture;`).
#[path = "../src/sui_fixture/mod.rs"]
#[allow(dead_code, unreachable_pub)]
mod sui_fixture;

use std::io::{BufRead, BufReader, Write};
use std::sync::{Arc, Mutex};

use nautilus_core::token::{ed25519_address, hex32};
use sui_fixture::dev::{SuiDev, runtime};
use sui_fixture::{ChainEvent, ChainState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn ask(dev: &SuiDev, line: &str) -> String {
    let mut stream =
        std::os::unix::net::UnixStream::connect(dev.dir.path().join("sui-relay.sock")).unwrap();
    stream.write_all(line.as_bytes()).unwrap();
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).unwrap();
    answer
}

#[test]
fn targets_off_the_allowlist_are_refused_and_logged() {
    let rt = runtime();
    let package = [0x31; 32];
    let chain = Arc::new(Mutex::new(ChainState::default()));
    chain.lock().unwrap().push(vec![]);
    let node = sui_fixture::start(rt.handle(), package, chain);
    let dev = SuiDev::start(&package, &[node.addr], &node.ca_pem, &[]);
    let unlisted = format!("127.0.0.1:{}", node.addr.port() + 1);
    for target in ["127.0.0.1:22", "metadata.google.internal:80", &unlisted] {
        let answer = ask(&dev, &format!("CONNECT {target}\n"));
        assert!(answer.starts_with("DENIED "), "{target}: {answer}");
        assert!(
            answer.contains("not an allowlisted Sui full node"),
            "{answer}"
        );
    }
    assert!(ask(&dev, "GET / HTTP/1.1\n").starts_with("DENIED expected CONNECT"));
    // The answer is written after the log line, so the refusals are logged by now (give the
    // log pipe a moment).
    std::thread::sleep(std::time::Duration::from_millis(300));
    let logs = dev.logs();
    for target in ["127.0.0.1:22", "metadata.google.internal:80", &unlisted] {
        assert!(
            logs.lines()
                .any(|l| l.contains("sui relay: refused a connection") && l.contains(target)),
            "{target} not logged:\n{logs}"
        );
    }
    // The allowlisted node is reachable.
    assert_eq!(ask(&dev, &format!("CONNECT {}\n", node.addr)), "OK\n");

    // The proxy's metrics count the refusals and the relayed connections and bytes per node
    // (the enclave's own reader connects through the relay too, so wait for its bytes).
    let node_label = format!("node=\"{}\"", node.addr);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let metrics = dev.proxy_metrics();
        let value = |name: &str| -> Option<f64> {
            metrics
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        };
        let denied = value("nautilus_proxy_sui_relay_refused_total{reason=\"denied\"}");
        let connections = value(&format!(
            "nautilus_proxy_sui_relay_connections_total{{{node_label}}}"
        ));
        let from_node = value(&format!(
            "nautilus_proxy_sui_relay_bytes_total{{{node_label},direction=\"from_node\"}}"
        ));
        assert_eq!(denied, Some(4.0), "{metrics}");
        if connections.is_some_and(|n| n >= 1.0) && from_node.is_some_and(|n| n > 0.0) {
            nautilus_tests::promtool_check("proxy", &metrics);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no relayed bytes counted:\n{metrics}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn the_relay_carries_only_tls_between_the_enclave_and_the_full_node() {
    let rt = runtime();
    let package = [0x32; 32];
    let (secret, stake) = ([33u8; 32], [34u8; 32]);
    let chain = Arc::new(Mutex::new(ChainState::default()));
    chain.lock().unwrap().push(vec![vec![ChainEvent::Deposit {
        stake,
        owner: ed25519_address(&secret).0,
        amount: 2_000_000_000,
    }]]);
    let node = sui_fixture::start(rt.handle(), package, chain);
    // A tap between the relay and the node records every byte in each direction.
    let to_node = Arc::new(Mutex::new(Vec::<u8>::new()));
    let from_node = Arc::new(Mutex::new(Vec::<u8>::new()));
    let tap = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let tap_addr = tap.local_addr().unwrap();
    let (up, down, target) = (to_node.clone(), from_node.clone(), node.addr);
    rt.spawn(async move {
        while let Ok((client, _)) = tap.accept().await {
            let server = tokio::net::TcpStream::connect(target).await.unwrap();
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = server.into_split();
            let (up, down) = (up.clone(), down.clone());
            tokio::spawn(async move {
                let mut buf = [0u8; 16384];
                while let Ok(n) = cr.read(&mut buf).await {
                    if n == 0 || sw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    up.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
            tokio::spawn(async move {
                let mut buf = [0u8; 16384];
                while let Ok(n) = sr.read(&mut buf).await {
                    if n == 0 || cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    down.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
    });
    let dev = SuiDev::start(
        &package,
        &[tap_addr],
        &node.ca_pem,
        &["--min-trust-level=node-read"],
    );
    dev.register_until(&secret, &stake, "tls-worker", 200);

    let up = to_node.lock().unwrap().clone();
    let down = from_node.lock().unwrap().clone();
    // TLS records: handshake (0x16) first, version 0x03xx.
    assert_eq!(&up[..2], &[0x16, 0x03], "enclave → node is not TLS");
    assert_eq!(&down[..2], &[0x16, 0x03], "node → enclave is not TLS");
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    for needle in [
        b"sui.rpc.v2".as_slice(),
        b"GetCheckpoint",
        b"StakeDeposited",
        b"staking",
        hex32(&package).as_bytes(),
        &package,
        &stake,
    ] {
        assert!(!contains(&up, needle), "plaintext to the node: {needle:?}");
        assert!(
            !contains(&down, needle),
            "plaintext from the node: {needle:?}"
        );
    }
}
