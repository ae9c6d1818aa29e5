import { expect } from "chai";
import fc from "fast-check";
import { FR_MODULUS, decodeSigned } from "../../node/math/field.ts";
import { encodeInputValues, encodeValue } from "../../node/program/input-values.ts";
import { ProgramBuilder } from "../../node/program/program-builder.ts";
import { field, fixed, int, type SecretType } from "../../node/program/secret-types.ts";
import { expectCode } from "../support/consort-error-assertions.ts";

/** A one-input program of `type` and `length`, opened as is. */
function single(type: SecretType, length = 1) {
  const p = new ProgramBuilder("single");
  p.output("x", p.input("x", { owner: 0, type, length }));
  return p.build();
}

describe("encodeInputValues", () => {
  it("accepts int(bits) values exactly at both ends of the range and rejects one beyond", () => {
    for (const bits of [1, 2, 8, 32, 53, 64, 127, 128]) {
      const program = single(int(bits));
      const min = -(1n << BigInt(bits - 1));
      const max = (1n << BigInt(bits - 1)) - 1n;
      expect(encodeInputValues(program, "x", [min]).map(decodeSigned)).to.deep.equal([min]);
      expect(encodeInputValues(program, "x", [max]).map(decodeSigned)).to.deep.equal([max]);
      expect(encodeInputValues(program, "x", [min.toString()]).map(decodeSigned)).to.deep.equal([min]);
      expect(encodeInputValues(program, "x", [max.toString()]).map(decodeSigned)).to.deep.equal([max]);
      const low = expectCode(() => encodeInputValues(program, "x", [min - 1n]), "INPUT_OUT_OF_RANGE");
      expectCode(() => encodeInputValues(program, "x", [max + 1n]), "INPUT_OUT_OF_RANGE");
      expectCode(() => encodeInputValues(program, "x", [(max + 1n).toString()]), "INPUT_OUT_OF_RANGE");
      expect(low.details).to.deep.include({ input: "x", index: 0 });
    }
  });

  it("embeds negative values as r - |v| (signed embedding)", () => {
    const program = single(int(64), 3);
    expect(encodeInputValues(program, "x", [-1n, 0, "5"])).to.deep.equal([FR_MODULUS - 1n, 0n, 5n]);
  });

  it("names the input and index of a bad value but never the value", () => {
    const program = single(int(64), 3);
    const secret = 98765432109876543210987654321n;
    const error = expectCode(() => encodeInputValues(program, "x", [1n, 2n, secret]), "INPUT_OUT_OF_RANGE");
    expect(error.details).to.deep.include({ input: "x", index: 2 });
    expect(error.message).to.not.include(secret.toString());
    expect(JSON.stringify(error.details)).to.not.include(secret.toString());
  });

  it("names the index as an index, the type's range and which way the value misses it", () => {
    const program = single(int(64), 3);
    const above = expectCode(() => encodeInputValues(program, "x", [0n, 1n << 70n, 0n]), "INPUT_OUT_OF_RANGE");
    expect(above.details).to.deep.include({ input: "x", index: 1, type: "int(64)", problem: "above" });
    expect(above.message).to.include("the value at index 1 is above the largest int(64) value");
    expect(above.message).to.include("-9223372036854775808 to 9223372036854775807");
    // The operator's report: "value 0 is out of range" read as if 0 were the value.
    const first = expectCode(() => encodeInputValues(program, "x", [-(1n << 63n) - 1n, 0n, 0n]), "INPUT_OUT_OF_RANGE");
    expect(first.message).to.match(/^input "x": the value at index 0 is below the smallest int\(64\) value/);
    expect(first.message).to.not.match(/value 0\b/);
    const word = expectCode(() => encodeInputValues(program, "x", [0n, 0n, "ten"]), "INPUT_OUT_OF_RANGE");
    expect(word.details).to.deep.include({ index: 2, problem: "not-a-number" });
    expect(word.message).to.not.include("ten");
    const fixedPoint = expectCode(() => encodeInputValues(single(fixed(12, 5)), "x", ["64"]), "INPUT_OUT_OF_RANGE");
    expect(fixedPoint.details).to.deep.include({ range: "-64 to 63.96875 in steps of 2^-5", problem: "above" });
    const bitValue = expectCode(() => encodeValue({ kind: "bit" }, 2n, "flag", 4), "INPUT_OUT_OF_RANGE");
    expect(bitValue.details).to.deep.include({ input: "flag", index: 4, range: "0 to 1", problem: "above" });
    const fieldValue = expectCode(() => encodeValue(field(), -1n, "f", 0), "INPUT_OUT_OF_RANGE");
    expect(fieldValue.details).to.deep.include({ problem: "below" });
  });

  it("accepts only safe-integer numbers and integer strings for int inputs", () => {
    const program = single(int(64));
    expect(encodeInputValues(program, "x", [Number.MAX_SAFE_INTEGER])).to.deep.equal([BigInt(Number.MAX_SAFE_INTEGER)]);
    expect(encodeInputValues(program, "x", ["+7"])).to.deep.equal([7n]);
    for (const bad of [2 ** 53, 1.5, Number.NaN, Number.POSITIVE_INFINITY, "1.0", "1e3", " 1", "", "0x10", "--1"]) {
      expectCode(() => encodeInputValues(program, "x", [bad]), "INPUT_OUT_OF_RANGE");
    }
    expectCode(() => encodeInputValues(program, "x", [true as unknown as bigint]), "INPUT_OUT_OF_RANGE");
  });

  it("checks the number of values and the input name (PROGRAM_INVALID)", () => {
    const program = single(int(8), 2);
    expectCode(() => encodeInputValues(program, "x", [1n]), "PROGRAM_INVALID");
    expectCode(() => encodeInputValues(program, "x", [1n, 2n, 3n]), "PROGRAM_INVALID");
    expectCode(() => encodeInputValues(program, "y", [1n, 2n]), "PROGRAM_INVALID");
  });

  describe("fixed point", () => {
    // fixed(16, 4): stored value v = x · 16 in [-32768, 32767], so x in [-2048, 2047.9375].
    const program = single(fixed(16, 4));
    const stored = (value: bigint | number | string): bigint => decodeSigned(encodeInputValues(program, "x", [value])[0]!);

    it("accepts the exact ends of the range and rejects values that round beyond them", () => {
      expect(stored("2047.9375")).to.equal(32767n);
      expect(stored("-2048")).to.equal(-32768n);
      expect(stored(-2048n)).to.equal(-32768n);
      expectCode(() => stored("2048"), "INPUT_OUT_OF_RANGE");
      expectCode(() => stored("-2048.0625"), "INPUT_OUT_OF_RANGE");
      // 32767.5 rounds half-to-even up to 32768: out of range.
      expectCode(() => stored("2047.96875"), "INPUT_OUT_OF_RANGE");
      // 32766.5 rounds half-to-even down to 32766.
      expect(stored("2047.90625")).to.equal(32766n);
      // -32768.5 rounds to -32768 (even): in range; -32769.5 rounds to -32770: out.
      expect(stored("-2048.03125")).to.equal(-32768n);
      expectCode(() => stored("-2048.09375"), "INPUT_OUT_OF_RANGE");
    });

    it("rounds to the nearest multiple of 2^-frac, ties to even", () => {
      expect(stored("0.03125")).to.equal(0n); // 0.5 -> 0
      expect(stored("0.09375")).to.equal(2n); // 1.5 -> 2
      expect(stored("0.15625")).to.equal(2n); // 2.5 -> 2
      expect(stored("-0.03125")).to.equal(0n); // -0.5 -> 0
      expect(stored("-0.09375")).to.equal(-2n); // -1.5 -> -2
      expect(stored("0.1")).to.equal(2n); // 1.6 -> 2
      expect(stored("-0.1")).to.equal(-2n);
      expect(stored("0.09")).to.equal(1n); // 1.44 -> 1
      expect(stored("12.3400000000000000000000000001")).to.equal(197n); // 197.44 -> 197
      expect(stored(0.1)).to.equal(2n); // the double nearest 0.1, exactly
      expect(stored(-1.25)).to.equal(-20n);
      expect(stored(3n)).to.equal(48n);
      expect(stored("007.5")).to.equal(120n);
    });

    it("rejects non-decimal syntax and non-finite numbers", () => {
      for (const bad of ["1e3", "1.", ".5", "", " 1", "1,5", "0x1", "--1", "1.2.3", Number.NaN, Number.NEGATIVE_INFINITY]) {
        expectCode(() => stored(bad), "INPUT_OUT_OF_RANGE");
      }
      expectCode(() => stored("1".repeat(500)), "INPUT_OUT_OF_RANGE");
    });

    it("agrees with exact rational rounding for random decimals (property)", () => {
      fc.assert(
        fc.property(fc.bigInt({ min: -(10n ** 12n), max: 10n ** 12n }), fc.integer({ min: 0, max: 8 }), (digits, scale) => {
          const den = 10n ** BigInt(scale);
          const negative = digits < 0n;
          const magnitude = (negative ? -digits : digits).toString().padStart(scale + 1, "0");
          const text = `${negative ? "-" : ""}${scale === 0 ? magnitude : `${magnitude.slice(0, -scale)}.${magnitude.slice(-scale)}`}`;
          const wide = single(fixed(64, 10));
          const v = decodeSigned(encodeInputValues(wide, "x", [text])[0]!);
          // |digits/den · 2^10 - v| <= 1/2, and on an exact tie v is even.
          const error = digits * 1024n - v * den; // (x·2^10 - v) · den
          const twice = 2n * (error < 0n ? -error : error);
          expect(twice <= den).to.equal(true);
          if (twice === den) expect(v % 2n).to.equal(0n);
        }),
        { seed: 42, numRuns: 500 },
      );
    });
  });

  it("accepts field values in [0, r) only", () => {
    const program = single(field());
    expect(encodeInputValues(program, "x", [FR_MODULUS - 1n])).to.deep.equal([FR_MODULUS - 1n]);
    expect(encodeInputValues(program, "x", ["0"])).to.deep.equal([0n]);
    expectCode(() => encodeInputValues(program, "x", [FR_MODULUS]), "INPUT_OUT_OF_RANGE");
    expectCode(() => encodeInputValues(program, "x", [-1n]), "INPUT_OUT_OF_RANGE");
  });

  it("round-trips every int value through the signed embedding (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 128 }), fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), (bits, raw) => {
        const span = 1n << BigInt(bits);
        const v = (raw % span) - span / 2n;
        const [x] = encodeInputValues(single(int(bits)), "x", [v]);
        expect(x! >= 0n && x! < FR_MODULUS).to.equal(true);
        expect(decodeSigned(x!)).to.equal(v);
        expect(encodeValue(int(bits), v.toString(), "x", 0)).to.equal(v);
      }),
      { seed: 42, numRuns: 300 },
    );
  });
});
