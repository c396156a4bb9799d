// Signs or verifies one request with the `http-message-signatures` npm package, as a
// JavaScript peer of s2s_auth would: its default signature parameters (keyid, alg,
// created, expires; no nonce), Content-Digest computed by the caller (the package
// does not compute it). One JSON object on stdin, one on stdout.
//
//   {"op": "sign", "method", "url", "headers", "body_b64", "fields", "key_pem", "keyid", "alg"}
//     -> {"headers": {...}}               the request headers, Signature* added
//   {"op": "verify", "method", "url", "headers", "key_pem", "alg", "required_fields"}
//     -> {"verified": true|false|null, "error": "..."}
'use strict';

const crypto = require('crypto');
const { httpbis, createSigner, createVerifier } = require('http-message-signatures');

function contentDigest(body) {
  return `sha-256=:${crypto.createHash('sha256').update(body).digest('base64')}:`;
}

async function sign(input) {
  const headers = { ...input.headers };
  const body = Buffer.from(input.body_b64 || '', 'base64');
  if (body.length) {
    headers['Content-Digest'] = contentDigest(body);
  }
  const key = createSigner(crypto.createPrivateKey(input.key_pem), input.alg, input.keyid);
  const signed = await httpbis.signMessage(
    { key, fields: input.fields },
    { method: input.method, url: input.url, headers },
  );
  return { headers: signed.headers };
}

async function verify(input) {
  const publicKey = crypto.createPublicKey(input.key_pem);
  const config = {
    keyLookup: async () => ({ id: input.keyid, algs: [input.alg], verify: createVerifier(publicKey, input.alg) }),
    requiredFields: input.required_fields || [],
    requiredParams: ['created', 'keyid'],
    maxAge: 300,
  };
  try {
    const verified = await httpbis.verifyMessage(config, {
      method: input.method, url: input.url, headers: input.headers,
    });
    return { verified };
  } catch (error) {
    return { verified: false, error: `${error.name}: ${error.message}` };
  }
}

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const input = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const output = input.op === 'sign' ? await sign(input) : await verify(input);
  process.stdout.write(JSON.stringify(output));
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
