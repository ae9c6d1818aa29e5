import { expect } from "chai";
import { getBytes, hexlify } from "ethers";
import fc from "fast-check";
import { hexBytes, toHex } from "../../node/transport/binary-codec.ts";

describe("transport/binary-codec hex", () => {
  it("decodes 0x-prefixed hex of either case and refuses anything else", () => {
    expect(hexBytes("0x")).to.deep.equal(Buffer.alloc(0));
    expect(hexBytes("0x00ffAb")).to.deep.equal(Buffer.from([0x00, 0xff, 0xab]));
    for (const bad of ["", "00ff", "0X00", "0x0", "0x00f", "0xgg", "0x00zz", "0xzz00", "0x00 f", " 0x00", "0x00\n", 17, null, undefined]) {
      expect(hexBytes(bad), JSON.stringify(bad)).to.equal(undefined);
    }
  });

  it("agrees with ethers' getBytes and hexlify on any bytes and spelling (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (bytes, upper) => {
        const hex = toHex(bytes);
        expect(hex).to.equal(hexlify(bytes));
        const spelled = upper ? `0x${hex.slice(2).toUpperCase()}` : hex;
        expect(Buffer.from(hexBytes(spelled)!).equals(Buffer.from(getBytes(spelled)))).to.equal(true);
        expect(toHex(new Uint8Array([9, ...bytes]).subarray(1))).to.equal(hex);
      }),
      { seed: 7, numRuns: 300 },
    );
  });

  it("refuses a bad digit anywhere in a long payload", () => {
    const hex = toHex(new Uint8Array(100_000).fill(0xab));
    expect(hexBytes(hex)!.length).to.equal(100_000);
    for (const at of [2, 3, 100_001, hex.length - 1]) expect(hexBytes(`${hex.slice(0, at)}g${hex.slice(at + 1)}`), `at ${at}`).to.equal(undefined);
  });
});
