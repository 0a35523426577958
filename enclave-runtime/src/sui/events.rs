//! Turns a `LedgerService` checkpoint into the core's plain staking events: the configured
//! package's `staking::{StakeDeposited,StakeWithdrawn,StakeSlashed}` events, in transaction
//! and event order, decoded from their BCS contents (the on-chain bytes, not the JSON view).
//! Anything that claims to be ours but does not decode refuses the whole checkpoint.

use nautilus_core::stake::{EventBatch, EventId, StakeEvent, StakeEventKind};
use nautilus_core::token::SuiAddress;
use sui_rpc::proto::sui::rpc::v2::Checkpoint;

/// Why a checkpoint was refused.
pub(crate) type Refusal = String;

/// The staking events of `package` in `checkpoint` (already checked to be `expected`).
pub(crate) fn extract(
    checkpoint: &Checkpoint,
    expected: u64,
    package: &[u8; 32],
) -> Result<EventBatch, Refusal> {
    let sequence = checkpoint
        .sequence_number
        .ok_or("the checkpoint has no sequence number")?;
    if sequence != expected {
        return Err(format!(
            "asked for checkpoint {expected}, the node answered {sequence}"
        ));
    }
    let mut events = Vec::new();
    let mut foreign = 0usize;
    for (t, tx) in checkpoint.transactions.iter().enumerate() {
        let Some(tx_events) = tx.events.as_ref() else {
            continue;
        };
        for (i, event) in tx_events.events.iter().enumerate() {
            let ty = event.event_type.as_deref().unwrap_or_default();
            let Some(name) = our_event(ty, package) else {
                foreign += 1;
                continue;
            };
            let digest = tx
                .digest
                .as_deref()
                .filter(|d| {
                    (32..=44).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_alphanumeric())
                })
                .ok_or_else(|| format!("transaction {t} has no valid digest"))?;
            let bytes = event
                .contents
                .as_ref()
                .and_then(|c| c.value.as_deref())
                .ok_or_else(|| format!("event {digest}/{i} has no BCS contents"))?;
            let (stake_id, kind) = decode(name, bytes)
                .ok_or_else(|| format!("event {digest}/{i} ({name}) does not match the schema"))?;
            events.push(StakeEvent {
                id: EventId {
                    tx_digest: digest.to_string(),
                    event_seq: i as u64,
                },
                stake_id,
                kind,
            });
        }
    }
    Ok(EventBatch {
        checkpoint: sequence,
        events,
        foreign,
    })
}

/// The event name when `ty` is `<package>::staking::<one of ours>` (address in long or short
/// hex form).
fn our_event<'a>(ty: &'a str, package: &[u8; 32]) -> Option<&'a str> {
    let mut parts = ty.splitn(3, "::");
    let (addr, module, name) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = addr.strip_prefix("0x")?;
    if digits.is_empty() || digits.len() > 64 {
        return None;
    }
    let padded = format!("{digits:0>64}");
    let addr: [u8; 32] = hex::decode(padded).ok()?.try_into().ok()?;
    (addr == *package
        && module == "staking"
        && matches!(name, "StakeDeposited" | "StakeWithdrawn" | "StakeSlashed"))
    .then_some(name)
}

/// BCS of the Move structs: `StakeDeposited { stake_id: ID, owner: address, amount: u64 }`,
/// `StakeWithdrawn { stake_id: ID }`, `StakeSlashed { stake_id: ID, amount: u64 }` (IDs and
/// addresses are 32 bytes, u64 little-endian; BCS has no framing, so lengths are exact).
pub(crate) fn decode(name: &str, bytes: &[u8]) -> Option<([u8; 32], StakeEventKind)> {
    let id = |at: usize| -> Option<[u8; 32]> { bytes.get(at..at + 32)?.try_into().ok() };
    let u64_at = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
    };
    match (name, bytes.len()) {
        ("StakeDeposited", 72) => Some((
            id(0)?,
            StakeEventKind::Deposited {
                owner: SuiAddress(id(32)?),
                amount: u64_at(64)?,
            },
        )),
        ("StakeWithdrawn", 32) => Some((id(0)?, StakeEventKind::Withdrawn)),
        ("StakeSlashed", 40) => Some((
            id(0)?,
            StakeEventKind::Slashed {
                amount: u64_at(32)?,
            },
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_package_and_module_count() {
        let pkg = [0xab; 32];
        let long = format!("0x{}", hex::encode(pkg));
        assert_eq!(
            our_event(&format!("{long}::staking::StakeDeposited"), &pkg),
            Some("StakeDeposited")
        );
        assert_eq!(our_event(&format!("{long}::staking::Other"), &pkg), None);
        assert_eq!(
            our_event(&format!("{long}::other::StakeDeposited"), &pkg),
            None
        );
        assert_eq!(our_event("0x2::staking::StakeDeposited", &pkg), None);
        assert_eq!(our_event("garbage", &pkg), None);
    }

    #[test]
    fn bcs_layouts_are_exact() {
        let mut deposit = vec![1u8; 32];
        deposit.extend([2u8; 32]);
        deposit.extend(5u64.to_le_bytes());
        let (stake, kind) = decode("StakeDeposited", &deposit).unwrap();
        assert_eq!(stake, [1; 32]);
        assert_eq!(
            kind,
            StakeEventKind::Deposited {
                owner: SuiAddress([2; 32]),
                amount: 5
            }
        );
        assert!(decode("StakeDeposited", &deposit[..71]).is_none());
        assert!(decode("StakeWithdrawn", &deposit).is_none());
        assert_eq!(
            decode("StakeWithdrawn", &[3; 32]).unwrap().1,
            StakeEventKind::Withdrawn
        );
        assert!(decode("StakeSlashed", &[3; 33]).is_none());
    }
}
