import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { expect } from 'chai';
import { CsrError, createCsr, generateWorkloadKey, parseCsr } from '../../src/ca/csr.js';
import { pemBlocks, toPem } from '../../src/ca/der.js';

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

function expectCsrError(fn: () => unknown, code: string, message?: RegExp): void {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(CsrError);
    expect((err as CsrError).code).to.equal(code);
    if (message) expect((err as CsrError).message).to.match(message);
    return;
  }
  expect.fail(`expected CsrError ${code}`);
}

describe('ca/csr', () => {
  it('builds EC P-256 CSRs that verify, carrying the requested SANs for information only', async () => {
    const key = await generateWorkloadKey('ec-p256');
    const csr = createCsr(key, { uris: ['spiffe://cluster.local/ns/x/sa/y'], dnsNames: ['a.example'] });
    const parsed = parseCsr(csr);
    expect(parsed.publicKey.asymmetricKeyType).to.equal('ec');
    expect(parsed.requestedUris).to.deep.equal(['spiffe://cluster.local/ns/x/sa/y']);
  });

  it('builds RSA-2048 CSRs that verify', async () => {
    const key = await generateWorkloadKey('rsa-2048');
    const parsed = parseCsr(createCsr(key, { commonName: 'w' }));
    expect(parsed.publicKey.asymmetricKeyDetails?.modulusLength).to.equal(2048);
    expect(parsed.requestedUris).to.deep.equal([]);
  });

  it('rejects a CSR whose signature does not verify', async () => {
    const key = await generateWorkloadKey();
    const der = pemBlocks(createCsr(key), 'CERTIFICATE REQUEST')[0]!;
    der[der.length - 5]! ^= 0x01; // flip a bit inside the signature
    expectCsrError(() => parseCsr(toPem('CERTIFICATE REQUEST', der)), 'CSR_SIGNATURE');
  });

  it('rejects a CSR whose body was altered after signing (another key swapped in)', async () => {
    const a = await generateWorkloadKey();
    const b = await generateWorkloadKey();
    const derA = pemBlocks(createCsr(a), 'CERTIFICATE REQUEST')[0]!;
    const derB = pemBlocks(createCsr(b), 'CERTIFICATE REQUEST')[0]!;
    // Swap B's public key into A's request (same length): well-formed, but A's signature cannot verify.
    const p256 = Buffer.from('2a8648ce3d030107', 'hex'); // curve OID, then BIT STRING 03 42 00 04 X Y
    const spkiA = derA.indexOf(p256);
    const spkiB = derB.indexOf(p256);
    const forged = Buffer.from(derA);
    derB.copy(forged, spkiA, spkiB, spkiB + p256.length + 2 + 66);
    expect(forged.equals(derA)).to.equal(false);
    expectCsrError(() => parseCsr(toPem('CERTIFICATE REQUEST', forged)), 'CSR_SIGNATURE');
  });

  it('rejects malformed input with CSR_MALFORMED', () => {
    expectCsrError(() => parseCsr('hello'), 'CSR_MALFORMED', /no PEM/);
    expectCsrError(
      () => parseCsr(toPem('CERTIFICATE REQUEST', Buffer.from([0x30, 0x03, 0x02, 0x01]))),
      'CSR_MALFORMED',
    );
    expectCsrError(
      () => parseCsr(toPem('CERTIFICATE REQUEST', Buffer.from('not der at all'))),
      'CSR_MALFORMED',
      /not valid DER/,
    );
  });

  it('rejects weak or unsupported keys', () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    expectCsrError(() => parseCsr(createCsr(privateKey)), 'CSR_KEY_UNSUPPORTED', /1024 bits/);
    const secp256k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey;
    expect(() => createCsr(secp256k1)).to.throw(/unsupported EC curve/);
  });

  (hasOpenssl ? it : it.skip)('accepts CSRs made by openssl and produces CSRs openssl verifies', async () => {
    const made = spawnSync(
      'openssl',
      [
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        '/dev/null',
        '-subj',
        '/CN=x',
      ],
      { encoding: 'utf8' },
    );
    expect(made.status, made.stderr).to.equal(0);
    expect(parseCsr(made.stdout).publicKey.asymmetricKeyType).to.equal('ec');
    const ours = createCsr(await generateWorkloadKey(), { uris: ['spiffe://cluster.local/ns/a/sa/b'] });
    const check = spawnSync('openssl', ['req', '-noout', '-verify'], { input: ours, encoding: 'utf8' });
    expect(check.status, check.stderr).to.equal(0);
    expect(`${check.stdout}${check.stderr}`).to.match(/verify OK/i);
  });
});
