import { expect } from 'chai';
import {
  children,
  DerError,
  decodeOid,
  namedBits,
  oid,
  readRoot,
  readTlv,
  seq,
  TAG,
  time,
  unsignedInteger,
} from '../../src/ca/der.js';

describe('ca/der', () => {
  it('round-trips OIDs, including multi-byte arcs', () => {
    for (const o of ['1.2.840.113549.1.1.11', '2.5.29.17', '1.3.6.1.5.5.7.3.2', '2.999.1']) {
      const der = oid(o);
      expect(decodeOid(der.subarray(2))).to.equal(o);
    }
  });

  it('encodes INTEGERs minimally and positive', () => {
    expect(unsignedInteger(Buffer.from([0, 0, 5])).toString('hex')).to.equal('020105');
    expect(unsignedInteger(Buffer.from([0x80])).toString('hex')).to.equal('02020080');
  });

  it('encodes keyUsage named bits with the unused-bit count', () => {
    expect(namedBits([0]).toString('hex')).to.equal('03020780');
    expect(namedBits([0, 2]).toString('hex')).to.equal('030205a0');
  });

  it('uses UTCTime before 2050 and GeneralizedTime after', () => {
    expect(time(new Date('2030-01-02T03:04:05.678Z')).subarray(2).toString()).to.equal('300102030405Z');
    expect(time(new Date('2051-01-02T03:04:05Z')).subarray(2).toString()).to.equal('20510102030405Z');
  });

  it('reads nested elements with long-form lengths', () => {
    const big = Buffer.alloc(300, 1);
    const der = seq(Buffer.concat([Buffer.from([TAG.octetString, 0x82, 0x01, 0x2c]), big]), oid('2.5.4.3'));
    const root = readRoot(der, TAG.sequence);
    const [a, b] = children(der, root);
    expect(a!.end - a!.valueStart).to.equal(300);
    expect(b!.tag).to.equal(TAG.oid);
  });

  it('rejects truncated, indefinite-length and trailing input', () => {
    expect(() => readTlv(Buffer.from([0x30, 0x05, 0x01]))).to.throw(DerError, /past its container/);
    expect(() => readTlv(Buffer.from([0x30, 0x80, 0x00, 0x00]))).to.throw(DerError, /indefinite/);
    expect(() => readRoot(Buffer.from([0x30, 0x00, 0x00]), TAG.sequence)).to.throw(DerError, /trailing/);
    expect(() => readTlv(Buffer.from([0x30]))).to.throw(DerError, /truncated/);
  });
});
