// Key material for the envtest control plane: a CA, an apiserver serving cert signed by it
// (valid for 127.0.0.1 / localhost / the in-cluster names) and a service-account key pair.
// Keys come from Node's native generator (fast); node-forge only builds the X.509 certs.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

export interface ControlPlaneCerts {
  caCert: string;
  caKey: string;
  servingCert: string;
  servingKey: string;
  saPublicKey: string;
  saPrivateKey: string;
}

function rsaKeyPair(): { publicKey: string; privateKey: string } {
  return generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
}

function newCert(publicKeyPem: string, subjectCN: string): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKeyPem);
  const serial = randomBytes(16);
  serial[0] = serial[0]! & 0x7f; // keep the serial positive
  cert.serialNumber = serial.toString('hex');
  const now = Date.now();
  cert.validity.notBefore = new Date(now - 60 * 60 * 1000);
  cert.validity.notAfter = new Date(now + 10 * 24 * 60 * 60 * 1000);
  cert.setSubject([{ name: 'commonName', value: subjectCN }]);
  return cert;
}

export function generateControlPlaneCerts(): ControlPlaneCerts {
  const ca = rsaKeyPair();
  const caForgeKey = forge.pki.privateKeyFromPem(ca.privateKey);
  const caCert = newCert(ca.publicKey, 'isthmus-envtest-ca');
  caCert.setIssuer(caCert.subject.attributes);
  caCert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  caCert.sign(caForgeKey, forge.md.sha256.create());

  const serving = rsaKeyPair();
  const servingCert = newCert(serving.publicKey, 'kube-apiserver');
  servingCert.setIssuer(caCert.subject.attributes);
  servingCert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [
        { type: 7, ip: '127.0.0.1' },
        { type: 7, ip: '10.96.0.1' },
        ...['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc'].map((value) => ({
          type: 2,
          value,
        })),
        { type: 2, value: 'kubernetes.default.svc.cluster.local' },
      ],
    },
  ]);
  servingCert.sign(caForgeKey, forge.md.sha256.create());

  const sa = rsaKeyPair();
  return {
    caCert: forge.pki.certificateToPem(caCert),
    caKey: ca.privateKey,
    servingCert: forge.pki.certificateToPem(servingCert),
    servingKey: serving.privateKey,
    saPublicKey: sa.publicKey,
    saPrivateKey: sa.privateKey,
  };
}
