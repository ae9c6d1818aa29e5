import { expect } from "chai";
import { ConsortError, type ConsortErrorCode } from "../../node/errors.ts";

/** What an error must carry besides its code. */
export interface ExpectedError {
  /** details.field, for errors that name a field. */
  field?: string;
}

function check(error: unknown, code: ConsortErrorCode, expected: ExpectedError): ConsortError {
  expect(error, String(error)).to.be.instanceOf(ConsortError);
  const e = error as ConsortError;
  expect(e.code, e.message).to.equal(code);
  if (expected.field !== undefined) expect(e.details.field).to.equal(expected.field);
  return e;
}

/**
 * Asserts that `fn` throws a ConsortError with `code` (tests assert codes,
 * never messages) and returns it for checks on its details.
 */
export function expectCode(fn: () => unknown, code: ConsortErrorCode, expected: ExpectedError = {}): ConsortError {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  if (thrown === undefined) expect.fail(`expected ConsortError ${code}, but nothing was thrown`);
  return check(thrown, code, expected);
}

/** The same for something asynchronous: `work` rejects with a ConsortError with `code`. */
export async function expectRejection(work: Promise<unknown> | (() => Promise<unknown>), code: ConsortErrorCode, expected: ExpectedError = {}): Promise<ConsortError> {
  let thrown: unknown;
  try {
    await (typeof work === "function" ? work() : work);
  } catch (error) {
    thrown = error;
  }
  if (thrown === undefined) expect.fail(`expected a rejection with ConsortError ${code}, but it resolved`);
  return check(thrown, code, expected);
}
