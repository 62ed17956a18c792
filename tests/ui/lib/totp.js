// RFC 6238 TOTP (SHA-1, 6 digits, 30 s) computed by the test itself from the key the page
// shows, with node's crypto; and the RFC 4648 base32 decoding it needs.

import { createHmac } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export function base32Decode(text) {
  const clean = text.replace(/[\s=]/g, '').toUpperCase();
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of clean) {
    const idx = ALPHABET.indexOf(ch);
    if (idx < 0) throw new Error(`not base32: ${ch}`);
    value = (value << 5) | idx;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** RFC 4226 HOTP of `counter`. */
export function hotp(key, counter) {
  const message = Buffer.alloc(8);
  message.writeBigUInt64BE(BigInt(counter));
  const digest = createHmac('sha1', key).update(message).digest();
  const offset = digest[digest.length - 1] & 0x0f;
  const binary = digest.readUInt32BE(offset) & 0x7fffffff;
  return String(binary % 1_000_000).padStart(6, '0');
}

export const STEP_SECONDS = 30;

export function currentStep(nowMs = Date.now()) {
  return Math.floor(nowMs / 1000 / STEP_SECONDS);
}

/**
 * Codes for one secret that nosd will accept: nosd takes a step within ±1 of now but only one
 * newer than the last used, so this hands out now, then now+1, and waits only when both are
 * spent. It never hands out now-1 (a step boundary during the request would reject it).
 */
export class Authenticator {
  constructor(secretBase32) {
    this.key = base32Decode(secretBase32);
    this.lastStep = -1;
  }

  async nextCode() {
    let step = Math.max(this.lastStep + 1, currentStep());
    while (step > currentStep() + 1) {
      const nextBoundaryMs = (currentStep() + 1) * STEP_SECONDS * 1000;
      await new Promise((resolve) => setTimeout(resolve, nextBoundaryMs - Date.now() + 50));
      step = Math.max(this.lastStep + 1, currentStep());
    }
    this.lastStep = step;
    return hotp(this.key, step);
  }
}
