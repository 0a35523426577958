// Reference Seal tokens made and checked with the official Sui TypeScript SDK, so the Rust
// validator is tested against what real Sui wallets produce. Every command prints one JSON line.
//
//   node mint.mjs keygen [ed25519|secp256k1|secp256r1]
//        -> {"secretKey":"suiprivkey1...","address":"0x...","scheme":"..."}
//   node mint.mjs sign <suiprivkey1...> <claims-json>
//        -> {"token":"seal1.<claims>.<sig>","address":"0x...","signature":"<base64>"}
//   node mint.mjs verify <token>
//        -> {"valid":true,"address":"0x..."} or {"valid":false,"error":"..."}
import { Ed25519Keypair } from '@mysten/sui/keypairs/ed25519';
import { Secp256k1Keypair } from '@mysten/sui/keypairs/secp256k1';
import { Secp256r1Keypair } from '@mysten/sui/keypairs/secp256r1';
import { decodeSuiPrivateKey } from '@mysten/sui/cryptography';
import { verifyPersonalMessageSignature } from '@mysten/sui/verify';

const KEYPAIRS = {
  ED25519: Ed25519Keypair,
  Secp256k1: Secp256k1Keypair,
  Secp256r1: Secp256r1Keypair,
};
const SCHEME_ARG = { ed25519: 'ED25519', secp256k1: 'Secp256k1', secp256r1: 'Secp256r1' };

// Unpadded base64url, the token's encoding.
const b64url = (bytes) => Buffer.from(bytes).toString('base64url');
const fromB64url = (text) => new Uint8Array(Buffer.from(text, 'base64url'));

function keypairFrom(secret) {
  const { schema, secretKey } = decodeSuiPrivateKey(secret);
  const Pair = KEYPAIRS[schema];
  if (!Pair) throw new Error(`unsupported scheme ${schema}`);
  return Pair.fromSecretKey(secretKey);
}

async function main(argv) {
  const [command, ...args] = argv;
  if (command === 'keygen') {
    const scheme = SCHEME_ARG[args[0] ?? 'ed25519'];
    if (!scheme) throw new Error(`unknown scheme ${args[0]}`);
    const pair = KEYPAIRS[scheme].generate();
    return { secretKey: pair.getSecretKey(), address: pair.toSuiAddress(), scheme };
  }
  if (command === 'sign') {
    const [secret, claims] = args;
    const pair = keypairFrom(secret);
    const bytes = new TextEncoder().encode(claims);
    const { signature } = await pair.signPersonalMessage(bytes);
    const sig = Buffer.from(signature, 'base64');
    return { token: `seal1.${b64url(bytes)}.${b64url(sig)}`, address: pair.toSuiAddress(), signature };
  }
  if (command === 'verify') {
    const parts = args[0].split('.');
    if (parts.length !== 3 || parts[0] !== 'seal1') return { valid: false, error: 'not a seal1 token' };
    const claims = fromB64url(parts[1]);
    const signature = Buffer.from(fromB64url(parts[2])).toString('base64');
    try {
      const key = await verifyPersonalMessageSignature(claims, signature);
      return { valid: true, address: key.toSuiAddress() };
    } catch (e) {
      return { valid: false, error: String(e.message ?? e) };
    }
  }
  throw new Error('usage: mint.mjs keygen [scheme] | sign <suiprivkey> <claims> | verify <token>');
}

main(process.argv.slice(2)).then(
  (out) => console.log(JSON.stringify(out)),
  (e) => { console.error(String(e.message ?? e)); process.exit(2); },
);
